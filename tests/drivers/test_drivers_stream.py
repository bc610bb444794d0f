"""Stream properties of every driver: any split of a vector, and byte-by-byte feeding, give the
same readings as one feed; arbitrary bytes never raise and never grow a buffer past its bound.
Also the ``chairside decode`` command on the vectors.
"""

from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chairside.commands.decode import text_to_wire
from chairside.drivers import get_driver

ROOT = Path(__file__).resolve().parents[2]
VEC = ROOT.parent / "shared" / "vectors"


def vector_wire(driver: str, path: Path, mllp: bool = False) -> bytes:
    if path.suffix == ".txt":
        data = text_to_wire(driver, path.read_text())
        if mllp:  # the same messages, each in an MLLP block
            msgs = [b"MSH" + m for m in data.split(b"MSH") if m]
            data = b"".join(b"\x0b" + m + b"\x1c\r" for m in msgs)
        return data
    return path.read_bytes()


def decode_all(driver: str, chunks) -> tuple[list, tuple, bytes]:
    d = get_driver(driver)
    out = []
    for c in chunks:
        out += d.feed(c)
    out += d.flush()
    st_ = d.stats
    return out, (st_.frames_decoded, st_.frames_rejected, st_.bytes_skipped), d.take_output()


CASES = [
    ("ge-s5", VEC / "ge-s5" / "short.raw", False),
    ("masimo", VEC / "masimo" / "ascii-samples.txt", False),
    ("hl7", VEC / "hl7" / "ihe-pcd-tf-appendix-e.hl7.txt", False),
    ("hl7", VEC / "hl7" / "ihe-pcd-tf-appendix-e.hl7.txt", True),
    ("hl7", VEC / "hl7" / "ihe-pcd01-nist-variant.hl7.txt", True),
]
IDS = [f"{d}-{p.name}{'-mllp' if m else ''}" for d, p, m in CASES]


# short.raw (17.6 KB) at every offset costs ~20 s; its first 6,000 bytes (7 frames of both record
# types, 8 escaped bytes, a partial frame at the end) are split at every offset, the whole file at
# every 7th offset.
EVERY_OFFSET_LIMIT = {"short.raw": 6000}


@pytest.mark.parametrize("driver, path, mllp", CASES, ids=IDS)
def test_split_at_every_offset(driver, path, mllp):
    data = vector_wire(driver, path, mllp)
    whole = decode_all(driver, [data])
    assert whole[0], "the vector decodes to something"
    limit = EVERY_OFFSET_LIMIT.get(path.name)
    if limit is not None:
        for cut in range(0, len(data) + 1, 7):
            assert decode_all(driver, [data[:cut], data[cut:]]) == whole, f"split at byte {cut}"
        data = data[:limit]
        whole = decode_all(driver, [data])
        assert data.count(b"\x7d") >= 5 and len(whole[0]) >= 12
    for cut in range(len(data) + 1):
        assert decode_all(driver, [data[:cut], data[cut:]]) == whole, f"split at byte {cut}"


@pytest.mark.parametrize("driver, path, mllp", CASES, ids=IDS)
def test_byte_by_byte(driver, path, mllp):
    data = vector_wire(driver, path, mllp)
    whole = decode_all(driver, [data])
    assert decode_all(driver, [data[i:i + 1] for i in range(len(data))]) == whole


@pytest.mark.parametrize("name", ["db02.raw", "db01-bad-checksums.raw"])
def test_big_ge_captures_random_chunks(name):
    data = (VEC / "ge-s5" / name).read_bytes()[:400_000]
    whole = decode_all("ge-s5", [data])
    rng = random.Random(name)
    for _ in range(3):
        cuts = sorted(rng.sample(range(1, len(data)), 400))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        assert decode_all("ge-s5", chunks) == whole


# --- fuzz -----------------------------------------------------------------------------------
SPECIAL = [b"\x7e", b"\x7d", b"\x7d\x5e", b"\x0b", b"\x1c\r", b"\r", b"\n", b"\r\n", b"MSH|^~\\&|", b"OBX|1|NM|",
           b"150021^", b"|", b"^", b"SPO2=", b"EXC=", b"ALARM=", b"---", b"098%", b"01/02/03 04:05:06 "]
chunk = st.one_of(st.binary(max_size=300), st.sampled_from(SPECIAL),
                  st.lists(st.sampled_from(SPECIAL), max_size=20).map(b"".join))


def _seed_material() -> list[bytes]:
    ge = (VEC / "ge-s5" / "short.raw").read_bytes()[:3000]
    return [ge, vector_wire("hl7", VEC / "hl7" / "ihe-pcd-tf-appendix-e.hl7.txt", True),
            vector_wire("masimo", VEC / "masimo" / "ascii-samples.txt")]


SEEDS = _seed_material()


@pytest.mark.parametrize("driver", ["ge-s5", "masimo", "hl7"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(chunk, max_size=25))
def test_arbitrary_bytes_never_raise_and_stay_bounded(driver, chunks):
    d = get_driver(driver)
    for c in chunks:
        out = d.feed(c)
        assert isinstance(out, list)
        assert d.buffered <= d.MAX_BUFFER
        d.take_output()
    d.flush()
    assert d.buffered == 0 or d.buffered <= d.MAX_BUFFER
    s = d.stats
    assert min(s.frames_decoded, s.frames_rejected, s.bytes_skipped, s.readings) >= 0
    assert len(s.errors) <= 20


@pytest.mark.parametrize("driver", ["ge-s5", "masimo", "hl7"])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_mutated_vectors_never_raise(driver, data):
    seed = SEEDS[["ge-s5", "hl7", "masimo"].index(driver)]
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(0, 30))):
        i = data.draw(st.integers(0, len(buf) - 1))
        op = data.draw(st.sampled_from(["flip", "del", "dup"]))
        if op == "flip":
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "del":
            del buf[i]
        else:
            buf.insert(i, buf[i])
    d = get_driver(driver)
    step = data.draw(st.integers(1, 700))
    for i in range(0, len(buf), step):
        d.feed(bytes(buf[i:i + step]))
        assert d.buffered <= d.MAX_BUFFER
    d.flush()


# --- the decode command ---------------------------------------------------------------------
def run_cli(argv: list[str], stdin: bytes = b"") -> tuple[int, str, str]:
    from chairside.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr = out, err
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        rc = main(argv)
    finally:
        sys.stdout, sys.stderr, sys.stdin = old
    return rc, out.getvalue(), err.getvalue()


def test_decode_ge_json_lines_and_summary():
    rc, out, err = run_cli(["decode", "--driver", "ge-s5", str(VEC / "ge-s5" / "short.raw")])
    assert rc == 0
    rows = [json.loads(ln) for ln in out.splitlines()]
    for row in rows:
        keys = {"t", "param", "value", "unit", "valid", "flags"} | ({"source"} if row["param"] == "pr" else set())
        assert set(row) == keys
    # README: first of db02.raw/short.raw: HR 80, NIBP 93/48 (69), SpO2 96.65, PR 83 (r_time 2018-07-26 17:06:05Z)
    assert [(r["param"], r["value"]) for r in rows[:6]] == [
        ("hr", 80), ("nibp_sys", 93), ("nibp_dia", 48), ("nibp_map", 69), ("spo2", 96.65), ("pr", 83)]
    assert rows[0]["t"] == "2018-07-26T17:06:05+00:00" and rows[5]["source"] == "spo2"
    last = err.strip().splitlines()[-1]
    assert "frames decoded" in last and "rejected" in last and "bytes skipped" in last


def test_decode_text_vectors_and_stdin():
    rc, out, err = run_cli(["decode", "--driver", "hl7", str(VEC / "hl7" / "ihe-pcd01-nist-variant.hl7.txt")])
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert rc == 0 and [(r["param"], r["value"]) for r in rows] == [
        ("nibp_sys", 120), ("nibp_dia", 80), ("nibp_map", 93), ("pr", 63)]
    assert rows[-1]["source"] == "nibp"
    rc, out, _ = run_cli(["decode", "--driver", "masimo", "--status", str(VEC / "masimo" / "ascii-samples.txt")])
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert any(r.get("status") == "probe_off" for r in rows)
    spo2 = [r for r in rows if r.get("param") == "spo2"]
    assert spo2[0] == {"t": "2008-09-21T09:56:08+00:00", "param": "spo2", "value": None, "unit": "%",
                       "valid": False, "flags": ["sensor_off"]}
    data = (VEC / "ge-s5" / "short.raw").read_bytes()
    rc, out, _ = run_cli(["decode", "--driver", "ge-s5", "-"], stdin=data)
    assert rc == 0 and json.loads(out.splitlines()[0])["value"] == 80


def test_decode_bad_input_exits_2():
    rc, _, err = run_cli(["decode", "--driver", "ge-s5", "/nonexistent/file.raw"])
    assert rc == 2 and "/nonexistent/file.raw" in err
