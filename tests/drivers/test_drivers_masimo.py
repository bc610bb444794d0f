"""Masimo ASCII 1 driver against ../shared/vectors/masimo/ascii-samples.txt.

Expected values are a human reading of each sample line (written out below) and the EXC /
ALARM bit tables in the vectors' notes, never the driver's output.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from chairside.domain.readings import DeviceStatus, Reading
from chairside.drivers.masimo import MasimoDriver, encode_line

VEC = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "masimo" / "ascii-samples.txt"


def sample_lines() -> list[str]:
    return [ln.replace("<CR><LF>", "") for ln in VEC.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def t(s: str) -> datetime:
    return datetime.strptime(s, "%m/%d/%y %H:%M:%S").replace(tzinfo=UTC)


# (line prefix) -> {param: value or None}, flags every reading carries, probe-off expected
N = None
EXPECTED = [
    ("09/21/08 09:56:08", {"spo2": N, "pr": N, "pi": N}, {"sensor_off"}),
    ("09/21/08 09:56:10", {"spo2": N, "pr": N, "pi": N}, {"sensor_off", "pulse_search"}),
    ("09/21/08 09:56:12", {"spo2": 97, "pr": 69, "pi": 4.69}, set()),
    ("09/21/08 09:56:14", {"spo2": 96, "pr": 74, "pi": 2.28}, {"low_signal_iq"}),
    ("09/21/08 09:56:16", {"spo2": 98, "pr": 78, "pi": 3.64}, set()),
    ("09/21/08 09:56:18", {"spo2": N, "pr": N, "pi": N}, set()),  # 000 with only SET: no value, not 0
    ("09/21/08 09:56:20", {"spo2": N, "pr": N, "pi": N}, {"sensor_off"}),
    ("09/21/08 09:56:22", {"spo2": 96, "pr": 78, "pi": 2.68}, set()),
    ("03/19/16 13:37:12", {"spo2": N, "pr": N}, {"no_sensor"}),
    ("03/17/16 19:19:36", {"spo2": 98, "pr": 123, "pi": 0.55}, {"low_signal_iq"}),
    ("05/15/07 08:12:21", {"spo2": N, "pr": N, "pi": N}, set()),
    ("02/22/16 22:47:45", {"spo2": 98, "pr": 97, "pi": 3.60}, set()),
    ("02/22/16 22:47:46", {"spo2": 98, "pr": 96, "pi": 3.95}, set()),
    ("02/22/16 22:47:47", {"spo2": 98, "pr": 96, "pi": 4.25}, set()),
    ("02/22/16 22:47:48", {"spo2": 98, "pr": 96, "pi": 3.19}, set()),
    ("02/22/16 22:47:49", {"spo2": 98, "pr": 97, "pi": 2.41}, set()),
    # MD PnP example: digits present but EXC 000820 = sensor off + SET: every value missing
    ("12/01/05 11:56:29", {"spo2": N, "pr": N, "pi": N, "spco": N, "spmet": N, "pvi": N}, {"sensor_off"}),
    ("09/15/10 15:10:29", {"spo2": 97, "pr": 64, "pi": 11.82}, set()),
]


def test_vector_file_has_the_lines_we_expect():
    assert [ln[:17] for ln in sample_lines()] == [e[0] for e in EXPECTED]


@pytest.mark.parametrize("i", range(len(EXPECTED)))
def test_each_sample_line(i):
    line = sample_lines()[i]
    stamp, values, exc_flags = EXPECTED[i]
    d = MasimoDriver()
    out = d.feed(line.encode() + b"\r\n")
    readings = [r for r in out if isinstance(r, Reading)]
    assert {r.param: r.value for r in readings} == pytest.approx(values)
    for r in readings:
        assert r.device_time == t(stamp)
        assert set(r.flags) >= exc_flags
        assert r.valid == (r.value is not None)
        if r.value is None:
            assert r.flags, "a missing value says why"
        assert "set_mode" not in r.flags
        assert r.unit == {"spo2": "%", "pr": "bpm", "pi": "%", "spco": "%", "spmet": "%", "pvi": "%"}[r.param]
        if r.param == "pr":
            assert r.source == "spo2"
    assert d.stats.frames_decoded == 1 and d.stats.frames_rejected == 0
    probe = [s for s in out if isinstance(s, DeviceStatus) and s.kind == "probe_off"]
    if exc_flags & {"sensor_off", "no_sensor"}:
        assert [p.active for p in probe] == [True]
    else:
        assert probe == []


def test_spo2_zero_with_sensor_off_is_missing_not_zero():
    d = MasimoDriver()
    out = d.feed(b"09/21/08 09:56:08 SpO2=000 PR=000 PI=00.00 EXC=820:OffPat,SET\r\n")
    spo2 = [r for r in out if isinstance(r, Reading) and r.param == "spo2"][0]
    assert spo2.value is None and spo2.valid is False and "sensor_off" in spo2.flags


def test_probe_off_on_change_only_and_clears():
    d = MasimoDriver()
    statuses = []
    for line in sample_lines()[:8]:  # trend sample: off, off, on, on, on, on(000), off, on
        statuses += [(s.active, s.device_time) for s in d.feed(line.encode() + b"\r\n")
                     if isinstance(s, DeviceStatus) and s.kind == "probe_off"]
    assert statuses == [(True, t("09/21/08 09:56:08")), (False, t("09/21/08 09:56:12")),
                        (True, t("09/21/08 09:56:20")), (False, t("09/21/08 09:56:22"))]


def test_alarm_bits_become_device_alarms():
    d = MasimoDriver()
    out = d.feed(b"09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800\r\n")
    alarms = [s for s in out if isinstance(s, DeviceStatus) and s.kind == "device_alarm"]
    assert [(a.detail, a.active) for a in alarms] == [("alarm_silenced", True)]  # 0x20 = alarm silenced
    # README bits: 0002 SpO2 low + 0010 alarm active; then cleared
    when = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    d = MasimoDriver()
    out = d.feed(encode_line(when=when, spo2=86, bpm=70, pi=2.0, alarm=0x0012))
    alarms = {s.detail: s for s in out if isinstance(s, DeviceStatus)}
    assert set(alarms) == {"spo2_low", "alarm_active"}
    assert alarms["spo2_low"].active and alarms["spo2_low"].param == "spo2" and alarms["spo2_low"].value == 86
    assert d.feed(encode_line(when=when, spo2=87, bpm=70, pi=2.0, alarm=0x0012)) and not [
        s for s in d.feed(encode_line(when=when, spo2=87, bpm=70, alarm=0x0012)) if isinstance(s, DeviceStatus)]
    cleared = [s for s in d.feed(encode_line(when=when, spo2=95, bpm=70, alarm=0)) if isinstance(s, DeviceStatus)]
    assert sorted((s.detail, s.active) for s in cleared) == [("alarm_active", False), ("spo2_low", False)]


@pytest.mark.parametrize("bit, name", [(0x001, "no_sensor"), (0x002, "defective_sensor"), (0x004, "low_perfusion"),
                                       (0x008, "pulse_search"), (0x010, "interference"), (0x020, "sensor_off"),
                                       (0x040, "ambient_light"), (0x080, "unrecognized_sensor"),
                                       (0x400, "low_signal_iq")])
def test_exc_bits_are_named_flags(bit, name):
    d = MasimoDriver()
    out = d.feed(encode_line(when=datetime(2026, 1, 1, tzinfo=UTC), spo2=95, bpm=80, pi=1.5, exc=bit | 0x800))
    readings = [r for r in out if isinstance(r, Reading)]
    assert all(name in r.flags for r in readings)
    sensor_cannot_measure = name in {"no_sensor", "defective_sensor", "sensor_off", "unrecognized_sensor"}
    assert all((r.value is None) == sensor_cannot_measure for r in readings)


def test_encode_line_round_trip():
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    line = encode_line(when=when, spo2=93.0, bpm=101.0, pi=0.42, exc=0x004, alarm=0)
    assert line.endswith(b"\r\n") and line.count(b"\r\n") == 1 and line.isascii()
    assert line.startswith(b"03/04/26 05:06:07 SN=0000012345 SPO2=093% BPM=101 PI=00.42%")
    d = MasimoDriver()
    out = [r for r in d.feed(line) if isinstance(r, Reading)]
    assert [(r.param, r.value, r.flags, r.device_time) for r in out] == [
        ("spo2", 93.0, ("low_perfusion",), when), ("pr", 101.0, ("low_perfusion",), when),
        ("pi", 0.42, ("low_perfusion",), when)]
    missing = [r for r in MasimoDriver().feed(encode_line(when=when)) if isinstance(r, Reading)]
    assert [(r.param, r.value, r.valid) for r in missing] == [("spo2", None, False), ("pr", None, False),
                                                              ("pi", None, False)]


def test_device_time_zone_option():
    d = MasimoDriver(tz=timezone(timedelta(hours=-5)))
    out = d.feed(b"02/22/16 22:47:45 SPO2=098% BPM=097\r\n")
    assert out[0].device_time == datetime(2016, 2, 23, 3, 47, 45, tzinfo=UTC)


def test_line_endings_and_garbage():
    line = b"02/22/16 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% ALARM=0000 EXC=000800"
    for sep in (b"\r\n", b"\n", b"\r"):
        d = MasimoDriver()
        out = d.feed(line + sep + line + sep)
        assert [r.value for r in out if isinstance(r, Reading) and r.param == "spo2"] == [98.0, 98.0]
    d = MasimoDriver()
    out = d.feed(b"\xff\xfe garbage\r\nno tokens here\r\n" + line + b"\r\n")
    assert d.stats.frames_rejected == 2 and d.stats.frames_decoded == 1
    assert [r.value for r in out if isinstance(r, Reading) and r.param == "pr"] == [97.0]
    d.feed(b"x" * (MasimoDriver.MAX_BUFFER * 3))
    assert d.buffered <= MasimoDriver.MAX_BUFFER
    assert d.stats.bytes_skipped >= MasimoDriver.MAX_BUFFER * 2


def test_serial_defaults():
    sd = MasimoDriver.serial_defaults
    assert (sd.baudrate, sd.bytesize, sd.parity, sd.stopbits, sd.rtscts) == (9600, 8, "N", 1, False)


# --- the fast path: memos and token boundaries (expected values from the line text itself) ---
def test_device_time_across_seconds_minutes_days_and_zones():
    # every second from 23:58:58 on 12/31/25 to 00:01:02 on 01/01/26: the minute memo must
    # never carry one minute's (or day's) base into the next
    start = datetime(2025, 12, 31, 23, 58, 58, tzinfo=UTC)
    stamps = [start + timedelta(seconds=i) for i in range(125)]
    for tz in (UTC, timezone(timedelta(hours=5, minutes=30))):
        d = MasimoDriver(tz=tz)
        got = []
        for w in stamps:
            text = w.strftime("%m/%d/%y %H:%M:%S")
            out = d.feed(f"{text} SPO2=097% BPM=070 PI=01.00% EXC=000800\r\n".encode())
            assert {r.device_time for r in out} == {
                datetime.strptime(text, "%m/%d/%y %H:%M:%S").replace(tzinfo=tz).astimezone(UTC)}, text
            got.append(out[0].device_time)
        assert got == sorted(got) and len(set(got)) == len(stamps)


def test_device_time_of_odd_stamps():
    d = MasimoDriver()
    # a valid fixed stamp first (fills the minute memo), then the same minute with a bad second
    assert d.feed(b"02/22/16 22:47:45 SPO2=098%\r\n")[0].device_time == datetime(2016, 2, 22, 22, 47, 45, tzinfo=UTC)
    assert d.feed(b"02/22/16 22:47:61 SPO2=098%\r\n")[0].device_time is None  # no second 61
    assert d.feed(b"02/22/16 22:47:4x SPO2=098%\r\n")[0].device_time is None
    # one-digit fields and a four-digit year are still a time stamp
    assert d.feed(b"2/3/2016 4:05:06 SPO2=098%\r\n")[0].device_time == datetime(2016, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert d.feed(b"SPO2=098%\r\n")[0].device_time is None  # no stamp at all


def test_signed_or_garbled_hex_fields_are_unreadable_not_negative_bits():
    d = MasimoDriver()
    out = d.feed(b"02/22/16 22:47:45 SPO2=098% BPM=097 PI=03.60% ALARM=-12 EXC=-00020\r\n")
    readings = [r for r in out if isinstance(r, Reading)]
    assert [(r.param, r.value, r.flags) for r in readings] == [("spo2", 98.0, ()), ("pr", 97.0, ()), ("pi", 3.6, ())]
    assert [s for s in out if isinstance(s, DeviceStatus)] == []
    out = d.feed(b"02/22/16 22:47:46 SPO2=098% BPM=097 ALARM=0x12 EXC=0x20\r\n")
    assert [s for s in out if isinstance(s, DeviceStatus)] == []


def test_keys_are_whitespace_separated_tokens():
    d = MasimoDriver()
    # "XSPO2" and "SN=ABC;BPM" are not the SPO2 / BPM keys; tabs separate tokens like spaces
    out = d.feed(b"02/22/16 22:47:45 XSPO2=050% SN=ABC;BPM=040\tSPO2=098%\tbpm=097 PI=03.60%\r\n")
    assert [(r.param, r.value) for r in out if isinstance(r, Reading)] == [("spo2", 98.0), ("pr", 97.0), ("pi", 3.6)]
    assert d.stats.frames_decoded == 1
    d.feed(b"02/22/16 22:47:46 SN=0000056661 DESAT=--\r\n")  # tokens, none of them read: not rejected
    assert (d.stats.frames_decoded, d.stats.frames_rejected) == (2, 0)


def test_optional_parameters_only_with_a_value():
    d = MasimoDriver()
    out = d.feed(b"12/01/05 11:56:29 SPO2=098% BPM=070 PI=02.00% SPCO=01.0% SPMET=--.-% SPHB=13.5 PVI=- "
                 b"ALARM=0000 EXC=000800\r\n")
    assert [(r.param, r.value, r.unit) for r in out] == [
        ("spo2", 98.0, "%"), ("pr", 70.0, "bpm"), ("pi", 2.0, "%"), ("spco", 1.0, "%"), ("sphb", 13.5, "g/dL")]


def test_memos_stay_bounded():
    from chairside.drivers.masimo import MAX_CACHE

    d = MasimoDriver()
    for i in range(3 * MAX_CACHE):
        d.feed(b"02/22/16 22:47:45 SPO2=098%% EXC=%06X\r\n" % (0x800 | (i << 8)))
    assert len(d._exc_cache) <= MAX_CACHE
    assert d.stats.frames_decoded == 3 * MAX_CACHE


def test_readings_equal_validated_records():
    """The driver builds its readings without re-validating them (drivers/_fast.py): each
    one must be exactly the record pydantic validation makes from the same fields."""
    lines = "\r\n".join(sample_lines()).encode() + b"\r\n"
    for r in MasimoDriver().feed(lines):
        if isinstance(r, Reading):
            again = Reading.model_validate(r.model_dump())
            assert again == r and again.model_fields_set >= {"param", "value", "unit"}
            assert type(r.value) in (float, type(None)) and isinstance(r.flags, tuple)
