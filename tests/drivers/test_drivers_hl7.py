"""HL7 v2 / IHE PCD-01 driver against ../shared/vectors/hl7 and hand-written messages.

Expected values are the ``# Expected:`` notes of the vector files (copied below as
literals), the HL7 TS rules, and python-hl7's independent parse of our encoder's output.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import hl7 as python_hl7
import pytest

from chairside.domain.readings import DeviceStatus, Reading
from chairside.drivers.hl7 import Hl7Driver, encode_oru_r01, parse_ts

ROOT = Path(__file__).resolve().parents[2]
VEC = ROOT.parent / "shared" / "vectors" / "hl7"
APPENDIX_E = VEC / "ihe-pcd-tf-appendix-e.hl7.txt"
NIST = VEC / "ihe-pcd01-nist-variant.hl7.txt"


def messages(path: Path) -> list[list[str]]:
    """The vector file's messages as lists of segments (comments dropped)."""
    msgs: list[list[str]] = []
    for ln in path.read_text().splitlines():
        if not ln.strip() or ln.startswith("#"):
            continue
        if ln.startswith("MSH"):
            msgs.append([])
        msgs[-1].append(ln)
    return msgs


def wire(msgs: list[list[str]], mode: str) -> bytes:
    if mode == "mllp":
        return b"".join(b"\x0b" + "".join(s + "\r" for s in m).encode() + b"\x1c\r" for m in msgs)
    sep = {"cr": "\r", "lf": "\n", "crlf": "\r\n"}[mode]
    return "".join(s + sep for m in msgs for s in m).encode()


def run(data: bytes, **kw) -> tuple[Hl7Driver, list]:
    d = Hl7Driver(**kw)
    out = d.feed(data)
    out += d.flush()
    return d, out


def r(param, value, when, source, flags=()):
    return (param, value, True, tuple(flags), when, source)


def tuples(out) -> list[tuple]:
    return [(x.param, x.value, x.valid, x.flags, x.device_time, x.source) for x in out if isinstance(x, Reading)]


# From the vector notes: E.1.1 NIBP 117/82 (90) [OBX-11 X], HR 80, resp 30, SpO2 99, PI 3.9; OBX-14 only on
# NIBP -> else OBR-7 (20150122182656; MSH-7 offset +0000). E.1.2: NIBP 111/60 (80), pulse (NIBP) 63, OBX-14.
NIBP_T = datetime(2015, 1, 22, 11, 50, 0, tzinfo=UTC)
OBR_T = datetime(2015, 1, 22, 18, 26, 56, tzinfo=UTC)
ACME_T = datetime(2011, 6, 2, 4, 58, 42, tzinfo=UTC)
Q = ("questionable", "status:X")  # OBX-11 X with a value (driver docstring table)
APPENDIX_E_READINGS = [
    r("nibp_sys", 117, NIBP_T, "nibp", Q), r("nibp_dia", 82, NIBP_T, "nibp", Q), r("nibp_map", 90, NIBP_T, "nibp", Q),
    r("hr", 80, OBR_T, "ecg", Q), r("rr", 30, OBR_T, "resp", Q), r("spo2", 99, OBR_T, "spo2", Q),
    r("pi", 3.9, OBR_T, "spo2", Q),
    r("nibp_sys", 111, ACME_T, "nibp"), r("nibp_dia", 60, ACME_T, "nibp"), r("nibp_map", 80, ACME_T, "nibp"),
    r("pr", 63, ACME_T, "nibp"),
]
NIST_READINGS = [r("nibp_sys", 120, ACME_T, "nibp"), r("nibp_dia", 80, ACME_T, "nibp"),
                 r("nibp_map", 93, ACME_T, "nibp"), r("pr", 63, ACME_T, "nibp")]


@pytest.mark.parametrize("mode", ["mllp", "cr", "lf", "crlf"])
def test_appendix_e_examples(mode):
    d, out = run(wire(messages(APPENDIX_E), mode))
    assert tuples(out) == APPENDIX_E_READINGS
    units = {x.param: x.unit for x in out if isinstance(x, Reading)}
    assert units == {"nibp_sys": "mmHg", "nibp_dia": "mmHg", "nibp_map": "mmHg", "hr": "bpm", "rr": "/min",
                     "spo2": "%", "pi": "%", "pr": "bpm"}
    # E.3.1: alarm MDC_EVT_LO on 150456 SpO2=88 % (limits 90-96), phase start, state active, inactivation enabled
    alarms = [x for x in out if isinstance(x, DeviceStatus)]
    assert len(alarms) == 1
    a = alarms[0]
    assert (a.kind, a.active, a.param, a.value, a.priority) == ("device_alarm", True, "spo2", 88.0, "medium")
    assert a.detail.startswith("MDC_EVT_LO")
    assert {"phase:start", "state:active", "inactivation:enabled", "limits:90-96"} <= set(a.flags)
    assert a.device_time == datetime(2012, 1, 11, 21, 4, 57, tzinfo=UTC)  # 15:04:57 -0600
    assert (d.stats.frames_decoded, d.stats.frames_rejected, d.stats.bytes_skipped) == (3, 0, 0)


@pytest.mark.parametrize("mode", ["mllp", "cr"])
def test_nist_variant(mode):
    d, out = run(wire(messages(NIST), mode))
    assert tuples(out) == NIST_READINGS
    assert d.stats.frames_decoded == 1


def test_acks_for_mllp_senders_that_ask():
    msgs = messages(APPENDIX_E)
    d, _ = run(wire(msgs, "mllp"))
    acks = d.take_output()
    assert d.take_output() == b""
    blocks = [b for b in acks.split(b"\x1c\r") if b]
    assert len(blocks) == 3  # all three messages have MSH-15 = AL
    controls = [m[0].split("|")[9] for m in msgs]
    for block, control in zip(blocks, controls):
        assert block[:1] == b"\x0b"
        parsed = python_hl7.parse(block[1:].decode())
        assert str(parsed.segment("MSA")[1]) == "AA"
        assert str(parsed.segment("MSA")[2]) == control
        assert str(parsed.segment("MSH")[9][0][0]) == "ACK"
    # plain (non-MLLP) messages: no ACK; MSH-15 NE: no ACK
    d, _ = run(wire(msgs, "cr"))
    assert d.take_output() == b""
    ne = [[m[0].replace("|AL|NE|", "|NE|NE|")] + m[1:] for m in msgs]
    d, _ = run(wire(ne, "mllp"))
    assert d.take_output() == b""


def _msg(*obx: str, msh_ts: str = "20240101120000+0000", obr_ts: str = "20240101115900") -> bytes:
    segs = [f"MSH|^~\\&|MON|ICU|||{msh_ts}||ORU^R01^ORU_R01|C1|P|2.6|||AL|NE",
            "PID|||1", f"OBR|1|||182777000^monitoring of patient^SCT|||{obr_ts}", *obx]
    return b"\x0b" + "".join(s + "\r" for s in segs).encode() + b"\x1c\r"


def _sentinels() -> list[float]:
    return tomllib.loads((ROOT / "src" / "chairside" / "data" / "hl7_sentinels.toml").read_text())["sentinels"]


def test_sentinel_file_has_the_readme_values_and_a_source():
    doc = tomllib.loads((ROOT / "src" / "chairside" / "data" / "hl7_sentinels.toml").read_text())
    assert {-999, -99.9, -100, -1} <= set(doc["sentinels"])  # README: "-999, -99.9, -100, -1"
    assert doc["sentinels_source"] in ("[P]", "[P*]", "[S]", "[C]") and doc["sentinels_ref"]


@pytest.mark.parametrize("raw", [str(s) for s in _sentinels()] + ["-999.0", ""])
def test_sentinels_and_empty_are_missing(raw):
    _, out = run(_msg(f"OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.1|{raw}|262688^MDC_DIM_PERCENT^MDC|||||R"))
    (x,) = [x for x in out if isinstance(x, Reading)]
    assert x.param == "spo2" and x.value is None and x.valid is False
    assert x.flags == (("empty",) if raw == "" else (f"sentinel:{raw}",))


def test_questionable_wrong_and_missing_status():
    _, out = run(_msg("OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||X",
                      "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.1|97|%^%^UCUM|||||W",
                      "OBX|3|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.3.1.2||{beat}/min^{beat}/min^UCUM|||||X"))
    got = {x.param: (x.value, x.valid, x.flags) for x in out}
    assert got["hr"] == (72.0, True, ("questionable", "status:X"))  # X with a value: still a value
    assert got["spo2"] == (97.0, False, ("status:W",))
    assert got["pr"] == (None, False, ("empty", "status:X"))


def test_cuff_codes_units_and_kpa():
    _, out = run(_msg("OBX|1|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1.1.1.1|16|kPa^kPa^UCUM|||||R",
                      "OBX|2|NM|150302^MDC_PRESS_CUFF_DIA^MDC|1.1.1.2|80|266016^MDC_DIM_MMHG^MDC|||||R",
                      "OBX|3|NM|150303^MDC_PRESS_CUFF_MEAN^MDC|1.1.1.3|93|furlongs|||||R",
                      "OBX|4|NM|147842^MDC_ECG_CARD_BEAT_RATE^MDC|1.2.1.1|64||||||R"))
    got = {x.param: (x.value, x.valid, x.flags, x.unit) for x in out}
    assert got["nibp_sys"] == (pytest.approx(16 * 7.50062, abs=0.06), True, ("converted:kPa",), "mmHg")
    assert got["nibp_dia"] == (80.0, True, (), "mmHg")
    assert got["nibp_map"] == (93.0, False, ("unit:furlongs",), "mmHg")
    assert got["hr"] == (64.0, True, (), "bpm")  # no unit: the parameter's own


def test_times_obx14_obr7_and_offsets():
    _, out = run(_msg("OBX|1|NM|150021^X^MDC|1|120|mm[Hg]^mm[Hg]^UCUM|||||R|||20240101113000-0500",
                      "OBX|2|NM|147842^X^MDC|1|70|{beat}/min^{beat}/min^UCUM|||||R",
                      msh_ts="20240101120000+0100", obr_ts="20240101115900"))
    got = {x.param: x.device_time for x in out}
    assert got["nibp_sys"] == datetime(2024, 1, 1, 16, 30, tzinfo=UTC)  # 11:30 -0500
    assert got["hr"] == datetime(2024, 1, 1, 10, 59, tzinfo=UTC)  # OBR-7 naive: MSH-7's +0100
    assert parse_ts(b"20240101") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_ts(b"202401011230") == datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
    assert parse_ts(b"20240101123015.25+0000") == datetime(2024, 1, 1, 12, 30, 15, 250000, tzinfo=UTC)
    assert parse_ts(b"garbage") is None and parse_ts(b"20241399") is None


def test_nibp_repeated_measurement_emitted_once():
    msg = _msg("OBX|1|NM|150021^X^MDC|1|120|mm[Hg]|||||R|||20240101113000",
               "OBX|2|NM|147842^X^MDC|1|70|{beat}/min|||||R")
    d, out = run(msg + msg)
    assert [x.param for x in out] == ["nibp_sys", "hr", "hr"]


def test_r40_alarm_end_phase_is_inactive():
    segs = ["MSH|^~\\&|GW|H|||20240101120000+0000||ORU^R40^ORU_R40|9|P|2.6|||AL|NE",
            "OBR|1|||196616^MDC_EVT_ALARM^MDC|||20240101120000+0000",
            "OBX|1|ST|196674^MDC_EVT_HI^MDC|1.2.1.147842.1|HR high|||H~PH~SP|||F",
            "OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.147842.2|131|{beat}/min^{beat}/min^UCUM|50-120||||F",
            "OBX|3|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.2.1.147842.3|end||||||F"]
    _, out = run("".join(s + "\r" for s in segs).encode())
    (a,) = out
    assert (a.kind, a.active, a.param, a.value, a.priority) == ("device_alarm", False, "hr", 131.0, "high")


def test_garbage_and_blocks_without_msh():
    good = _msg("OBX|1|NM|150456^X^MDC|1|95|%|||||R")
    d, out = run(b"noise before\r" + b"\x0bPID|||1\r\x1c\r" + good)
    assert d.stats.frames_rejected == 1 and d.stats.frames_decoded == 1
    assert d.stats.bytes_skipped == len(b"noise before\r") + len(b"PID|||1\r")
    assert [x.value for x in out] == [95.0]


def test_encoder_parsed_by_python_hl7_and_round_trip():
    when = datetime(2026, 1, 1, 9, 0, 5, tzinfo=UTC)
    nibp_t = datetime(2026, 1, 1, 8, 58, tzinfo=UTC)
    values = {"hr": 72.0, "pr": 71.0, "spo2": 97.5, "nibp_sys": 118.0, "nibp_dia": 76.0, "nibp_map": 90.0,
              "pr_nibp": 70.0}
    data = encode_oru_r01(when=when, values=values, nibp_time=nibp_t, control_id="SIM00000001")
    assert data[:1] == b"\x0b" and data[-2:] == b"\x1c\r"
    parsed = python_hl7.parse(data[1:-2].decode())
    assert str(parsed.segment("MSH")[9]) == "ORU^R01^ORU_R01" and str(parsed.segment("MSH")[10]) == "SIM00000001"
    obx = {str(s[3][0][0]): (float(str(s[5])), str(s[14])) for s in parsed.segments("OBX") if str(s[5])}
    assert obx == {"150021": (118.0, "20260101085800+0000"), "150022": (76.0, "20260101085800+0000"),
                   "150023": (90.0, "20260101085800+0000"), "149546": (70.0, "20260101085800+0000"),
                   "147842": (72.0, ""), "150456": (97.5, ""), "149530": (71.0, "")}
    d, out = run(data)
    got = {(x.param, x.source): (x.value, x.device_time) for x in out}
    assert got == {("hr", "ecg"): (72.0, when), ("pr", "spo2"): (71.0, when), ("spo2", "spo2"): (97.5, when),
                   ("nibp_sys", "nibp"): (118.0, nibp_t), ("nibp_dia", "nibp"): (76.0, nibp_t),
                   ("nibp_map", "nibp"): (90.0, nibp_t), ("pr", "nibp"): (70.0, nibp_t)}
    assert b"MSA|AA|SIM00000001" in d.take_output()
    # None -> an empty OBX-5: missing; plain (no MLLP) framing
    _, out = run(encode_oru_r01(when=when, values={"spo2": None}, control_id="X", mllp=False))
    assert [(x.param, x.value, x.valid) for x in out] == [("spo2", None, False)]
    with pytest.raises(ValueError):
        encode_oru_r01(when=when, values={"temp": 37.0}, control_id="X")


def test_over_long_segment_is_dropped():
    d = Hl7Driver()
    d.feed(b"\x0bMSH|" + b"A" * (Hl7Driver.MAX_BUFFER * 2))
    assert d.buffered <= Hl7Driver.MAX_BUFFER
    d.feed(b"B" * 100 + b"\r\x1c\r")
    d.flush()
    out = d.feed(_msg("OBX|1|NM|150456^X^MDC|1|95|%|||||R"))
    assert [x.value for x in out] == [95.0]


# IHE PCD TF-2 Appendix B.8, Table B.8.5-6 (11073 MeasurementStatus -> OBX-8 / OBX-11) and HL7 Table 0085
@pytest.mark.parametrize(("obx8", "obx11", "valid", "questionable"), [
    ("", "F", True, False),
    ("", "R", True, False),
    ("QUES", "R", True, True),      # questionable(1) -> QUES, R
    ("CAL", "R", True, True),       # calibration-ongoing(3) -> CAL, R
    ("EARLY", "R", True, True),     # early-indication(9) -> EARLY, R
    ("", "X", True, True),          # X with a value: questionable (gateways mark good values X)
    ("INV", "X", False, False),     # invalid(0) -> INV, X
    ("NAV", "X", False, False),     # not-available(2) -> NAV, X
    ("BUSY", "X", False, False),    # msmt-ongoing(10) -> BUSY, X
    ("DEMO", "R", False, False),    # demo-data(5): not this patient
    ("TEST", "R", False, False),    # test-data(4)
    ("H~PH~SP", "F", True, False),  # an alarm flag is not a measurement status
    ("", "W", False, False),        # posted as wrong
    ("", "N", False, False),        # not asked
    ("", "Z", True, True),          # a status we do not know is never silently trusted
])
def test_result_and_measurement_status_table(obx8, obx11, valid, questionable):
    _, out = run(_msg(f"OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.1.1.1|120|266016^MDC_DIM_MMHG^MDC||{obx8}"
                      f"|||{obx11}"))
    (x,) = [x for x in out if isinstance(x, Reading)]
    assert x.valid is valid, x.flags
    assert ("questionable" in x.flags) is questionable, x.flags
    if not valid:
        assert x.flags, "an invalid reading says why"


def test_without_obx14_and_obr7_the_message_time_is_the_time():
    # HL7 v2.6: MSH-7 is the date/time the sending system created the message
    msg = ("MSH|^~\\&|MON|ICU|||20240101120000+0100||ORU^R01^ORU_R01|C9|P|2.6|||AL|NE\rPID|||1\r"
           "OBR|1|||182777000^monitoring of patient^SCT\r"
           "OBX|1|NM|147842^X^MDC|1|70|{beat}/min^{beat}/min^UCUM|||||R\r")
    _, out = run(b"\x0b" + msg.encode() + b"\x1c\r")
    (hr,) = [x for x in out if isinstance(x, Reading)]
    assert hr.device_time == datetime(2024, 1, 1, 11, 0, tzinfo=UTC) and "time:MSH-7" in hr.flags
    assert hr.valid and hr.value == 70
