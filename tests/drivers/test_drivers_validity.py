"""One validity rule for every driver (#15 item 2): a value that is not a finite number, is
negative, or is outside the parameter's plausible range in ``chairside/data/plausible.toml``
is an invalid reading (value None, a flag saying why), never a valid one; ``decode`` prints
strict JSON (``null``, never ``NaN``/``Infinity``).

The frames are built here from each protocol's own layout (../shared/vectors/README.md):
Masimo ``KEY=VALUE`` lines, HL7 ORU^R01 segments, and S/5 records written byte by byte at
the README's offsets. Expected bounds are read from the data file, not from the driver.
"""

from __future__ import annotations

import json
import math
import struct
import tomllib
from pathlib import Path

import pytest

from chairside.domain.readings import Reading
from chairside.drivers import get_driver

ROOT = Path(__file__).resolve().parents[2]
PLAUSIBLE = tomllib.loads((ROOT / "src" / "chairside" / "data" / "plausible.toml").read_text())
TAGS = ("[P]", "[P*]", "[S]", "[C]")


def bounds(param: str) -> tuple[float, float]:
    return PLAUSIBLE[param]["min"]["value"], PLAUSIBLE[param]["max"]["value"]


def readings(driver: str, data: bytes) -> dict[str, Reading]:
    d = get_driver(driver)
    out = d.feed(data) + d.flush()
    return {r.param: r for r in out if isinstance(r, Reading)}


def assert_invalid(r: Reading, flag_prefix: str) -> None:
    assert r.value is None and r.valid is False, r
    assert any(f.split(":", 1)[0] == flag_prefix for f in r.flags), r.flags


# --- the data file ----------------------------------------------------------------------------
def test_every_bound_has_a_source_tag_and_a_basis():
    params = [k for k, v in PLAUSIBLE.items() if isinstance(v, dict)]
    assert {"spo2", "hr", "pr", "nibp_sys", "nibp_dia", "nibp_map", "rr", "pi"} <= set(params)
    for p in params:
        for end in ("min", "max"):
            spec = PLAUSIBLE[p][end]
            assert spec["source"] in TAGS and spec["basis"], (p, end)
        lo, hi = bounds(p)
        assert lo <= hi
    assert bounds("spo2")[1] == 100  # a saturation above 100 % does not exist


# --- Masimo ASCII 1: "MM/DD/YY HH:MM:SS KEY=VALUE ..." CR LF -----------------------------------
def masimo(spo2: str, bpm: str, pi: str = "03.20") -> bytes:
    return f"02/22/16 22:47:45 SN=0000012345 SPO2={spo2}% BPM={bpm} PI={pi}% ALARM=0000 EXC=000800\r\n".encode()


@pytest.mark.parametrize("text", ["NaN", "nan", "inf", "-inf", "Infinity", "1e999", "1e2", "1_000", "0x10"])
def test_masimo_non_numbers_are_invalid(text):
    got = readings("masimo", masimo(text, "072"))
    assert_invalid(got["spo2"], "not_numeric")
    assert got["pr"].value == 72 and got["pr"].valid  # the rest of the line is unharmed


def test_masimo_negative_and_impossible_values():
    got = readings("masimo", masimo("101", "-5"))
    assert_invalid(got["spo2"], "out_of_range")
    assert_invalid(got["pr"], "negative")
    assert "negative:-5" in got["pr"].flags
    lo, hi = bounds("pr")
    got = readings("masimo", masimo("100", f"{hi + 1:.0f}", pi="25.00"))
    assert got["spo2"].value == 100 and got["spo2"].valid  # the bound itself is possible
    assert_invalid(got["pr"], "out_of_range")
    assert_invalid(got["pi"], "out_of_range")


def test_masimo_huge_digit_string_is_not_finite():
    got = readings("masimo", masimo("9" * 400, "072"))
    assert_invalid(got["spo2"], "not_finite")


# --- HL7 ORU^R01 (IHE PCD-01): OBX-3 MDC code, OBX-5 value, OBX-6 unit, OBX-11 status ---------
def oru(*obx: str) -> bytes:
    segs = ["MSH|^~\\&|MON|ICU|||20240101120000+0000||ORU^R01^ORU_R01|C1|P|2.6|||AL|NE",
            "PID|||1", "OBR|1|||182777000^monitoring of patient^SCT|||20240101115900", *obx]
    return b"\x0b" + "".join(s + "\r" for s in segs).encode() + b"\x1c\r"


def spo2_obx(value: str) -> str:
    return f"OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.1|{value}|262688^MDC_DIM_PERCENT^MDC|||||F"


@pytest.mark.parametrize("text", ["1_000", "1e3", "NaN", "inf", "-Infinity", "0x64", "9_7"])
def test_hl7_nm_grammar(text):
    # HL7 v2 NM: optional sign, digits, optional decimal point; float() would take all of these
    got = readings("hl7", oru(spo2_obx(text)))
    assert_invalid(got["spo2"], "not_numeric")


def test_hl7_1_000_is_never_1000_percent():
    got = readings("hl7", oru(spo2_obx("1_000")))
    assert got["spo2"].value != 1000 and got["spo2"].valid is False


def test_hl7_negative_out_of_range_and_after_unit_conversion():
    got = readings("hl7", oru(
        "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|-5|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F",
        spo2_obx("100.5"),
        # 45 kPa = 337.5 mmHg: beyond what a cuff can measure once converted
        "OBX|3|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.1.1.1|45|kPa^kPa^UCUM|||||F",
        "OBX|4|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.1.1.2|+80.0|266016^MDC_DIM_MMHG^MDC|||||F"))
    assert_invalid(got["hr"], "negative")
    assert_invalid(got["spo2"], "out_of_range")
    assert 45 * 7.500616827 > bounds("nibp_sys")[1]
    assert_invalid(got["nibp_sys"], "out_of_range")
    assert got["nibp_dia"].value == 80 and got["nibp_dia"].valid  # a signed decimal is an NM


# --- GE/Datex S/5: a displayed-values record written at the README's offsets -------------------
def s5_frame(*, hr: int, sys_: int, dia: int, mean: int, spo2: int, pr: int, r_time: int = 1_700_000_000) -> bytes:
    groups = bytearray(270)
    st = 0x3  # status: bit 0 exists, bit 1 active
    struct.pack_into("<I", groups, 0, st)
    struct.pack_into("<h", groups, 6, hr)
    struct.pack_into("<I", groups, 72, st)
    struct.pack_into("<hhh", groups, 78, sys_, dia, mean)
    struct.pack_into("<I", groups, 118, st)
    struct.pack_into("<hh", groups, 124, spo2, pr)
    sub = struct.pack("<I", r_time) + bytes(groups) + bytes([0, 0]) + struct.pack("<H", 0 << 8)  # class 0
    descs = struct.pack("<hB", 0, 1) + struct.pack("<hB", 0, 0xFF) + bytes(3 * 6)
    r_len = 40 + len(sub)
    header = struct.pack("<hBBHI4xh", r_len, 1, 0, 0, r_time, 0) + descs
    assert len(header) == 40
    record = header + sub
    body = record + bytes([sum(record) & 0xFF])
    stuffed = body.replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e")
    return b"\x7e" + stuffed + b"\x7e"


def test_s5_negative_and_impossible_values_are_invalid():
    got = readings("ge-s5", s5_frame(hr=-5, sys_=12000, dia=8000, mean=9300, spo2=12000, pr=31000))
    assert_invalid(got["hr"], "negative")
    assert got["nibp_sys"].value == 120 and got["nibp_sys"].valid  # hundredths of mmHg
    assert_invalid(got["spo2"], "out_of_range")  # 120.00 %
    assert_invalid(got["pr"], "out_of_range")  # 31000 bpm
    # a marker stays a marker (README: values <= -32001 are markers, not data)
    got = readings("ge-s5", s5_frame(hr=-32767, sys_=-32001, dia=8000, mean=9300, spo2=9700, pr=80))
    assert got["hr"].flags == ("marker:no_data",)
    assert got["spo2"].value == 97 and got["pr"].value == 80


# --- decode prints strict JSON --------------------------------------------------------------------
def _no_constants(name: str):
    raise AssertionError(f"decode printed {name}, which is not JSON")


def test_decode_prints_null_and_a_flag_never_nan(tmp_path):
    from tests.drivers.test_drivers_stream import run_cli

    path = tmp_path / "masimo.raw"
    path.write_bytes(masimo("NaN", "-5") + masimo("inf", "1e999") + masimo("1e999", "072"))
    rc, out, _ = run_cli(["decode", "--driver", "masimo", str(path)])
    assert rc == 0
    rows = [json.loads(ln, parse_constant=_no_constants) for ln in out.splitlines()]
    spo2 = [r for r in rows if r["param"] == "spo2"]
    assert [r["value"] for r in spo2] == [None, None, None]
    assert all(r["valid"] is False and r["flags"] for r in spo2)
    pr = [r for r in rows if r["param"] == "pr"]
    assert [(r["value"], r["valid"]) for r in pr] == [(None, False), (None, False), (72, True)]
    for r in rows:
        assert r["value"] is None or math.isfinite(r["value"])
