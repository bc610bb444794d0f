"""GE/Datex S/5 driver against the real captures in ../shared/vectors/ge-s5.

Expected values come from the vectors' README (first records, marker table) or from an
independent reading of the bytes written here: a byte-at-a-time unstuffer, a checksum and
``struct`` reads at the README's offsets. Nothing is taken from the driver's own output.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chairside.domain.readings import DeviceStatus, Reading
from chairside.drivers import get_driver
from chairside.drivers.ge_s5 import GeS5Driver, RequestDecoder, encode_displayed_values, encode_request

VEC = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "ge-s5"

# README: "Values <= -32001 are markers": -32767 no data ... -32762 not calibrated.
README_MARKERS = {-32767: "no_data", -32766: "not_updated", -32765: "discontinuity", -32764: "under_range",
                  -32763: "over_range", -32762: "not_calibrated"}


# --- an independent reader (README layout), deliberately naive ---------------------------------
def unstuff(part: bytes) -> bytes | None:
    out = bytearray()
    i = 0
    while i < len(part):
        if part[i] == 0x7D:
            if i + 1 == len(part):
                return None
            out.append(part[i + 1] ^ 0x20)
            i += 2
        else:
            out.append(part[i])
            i += 1
    return bytes(out)


def classify(data: bytes) -> dict[str, list]:
    """Split a capture into frame candidates between 0x7E flags and sort them."""
    parts = data.split(b"\x7e")[1:-1]  # before the first flag / after the last: not frames
    res: dict[str, list] = {"good": [], "bad_checksum": [], "bad_length": [], "dangling": [], "short": []}
    for p in parts:
        if not p:
            continue
        u = unstuff(p)
        if u is None:
            res["dangling"].append(p)
        elif len(u) < 41:
            res["short"].append(p)
        elif sum(u[:-1]) % 256 != u[-1]:
            res["bad_checksum"].append(p)
        elif struct.unpack("<h", u[0:2])[0] != len(u) - 1:
            res["bad_length"].append(p)
        else:
            res["good"].append(u[:-1])
    return res


def basic_records(records: list[bytes]) -> list[dict]:
    """Every basic-class displayed-values subrecord, read at the README's offsets."""
    found = []
    for rec in records:
        if struct.unpack("<h", rec[14:16])[0] != 0:  # r_maintype 0 = physiological
            continue
        r_time = struct.unpack("<I", rec[6:10])[0]
        for k in range(8):
            off, typ = struct.unpack("<hB", rec[16 + 3 * k: 19 + 3 * k])
            if typ == 0xFF:
                break
            if typ != 1:
                continue
            sub = 40 + off
            cls_word = struct.unpack("<H", rec[sub + 4 + 270 + 2: sub + 4 + 270 + 4])[0]
            if (cls_word >> 8) & 0xF != 0:
                continue
            g = sub + 4  # after the subrecord's u32 time

            def i16(o: int, g: int = g) -> int:
                return struct.unpack("<h", rec[g + o: g + o + 2])[0]

            def u32(o: int, g: int = g) -> int:
                return struct.unpack("<I", rec[g + o: g + o + 4])[0]

            # CO2 group at +132 (ECG 16, P1-P4 4 x 14, NIBP 14, T1-T4 4 x 8, SpO2 14 bytes before it):
            # status u32, label u16, et, fi, rr; the ECG group's imp_rr at +14 (pycollect
            # headers.py basic_phdb / co2_group / ecg_group, commit c6cfdc1)
            found.append({"time": datetime.fromtimestamp(r_time, UTC),
                          "ecg_st": u32(0), "hr": i16(6), "imp_rr": i16(14),
                          "nibp_st": u32(72), "sys": i16(78), "dia": i16(80), "mean": i16(82),
                          "spo2_st": u32(118), "spo2": i16(124), "pr": i16(126),
                          "co2_st": u32(132), "co2_label": struct.unpack("<H", rec[g + 136: g + 138])[0],
                          "rr": i16(142)})
    return found


def expected_value(raw: int, scale: int, status: int):
    """(value, valid, flags) per the README and the driver's documented group rules."""
    if not status & 2:
        return None, False, ("group_inactive",)
    if raw <= -32001:
        return None, False, (f"marker:{README_MARKERS.get(raw, raw)}",)
    return raw / scale, True, ()


def expected_readings(recs: list[dict]) -> list[tuple]:
    out = []
    last_nibp = None
    for r in recs:
        t = r["time"]
        if r["ecg_st"] & 1:
            out.append(("hr", *expected_value(r["hr"], 1, r["ecg_st"]), t, "ecg"))
        if r["nibp_st"] & 1:
            key = (r["nibp_st"], r["sys"], r["dia"], r["mean"])
            if key != last_nibp:  # README: a new measurement shows as a change of value or status
                last_nibp = key
                for p, k in (("nibp_sys", "sys"), ("nibp_dia", "dia"), ("nibp_map", "mean")):
                    out.append((p, *expected_value(r[k], 100, r["nibp_st"]), t, "nibp"))
        if r["spo2_st"] & 1:
            out.append(("spo2", *expected_value(r["spo2"], 100, r["spo2_st"]), t, "spo2"))
            out.append(("pr", *expected_value(r["pr"], 1, r["spo2_st"]), t, "spo2"))
        # the RR source is the CO2 group's label bits 0-2 (pycollect measures.py "CO2 LBL":
        # 1 CO2, 2 ECG impedance); RR in 1/min, units
        source = r["co2_label"] & 7
        if source == 1 and r["co2_st"] & 1:
            out.append(("rr", *expected_value(r["rr"], 1, r["co2_st"]), t, "co2"))
        elif source == 2 and r["ecg_st"] & 1:
            out.append(("rr", *expected_value(r["imp_rr"], 1, r["ecg_st"]), t, "ecg_impedance"))
    return out


def as_tuples(items) -> list[tuple]:
    return [(r.param, r.value, r.valid, r.flags, r.device_time, r.source) for r in items if isinstance(r, Reading)]


def decode(data: bytes, chunk: int | None = None) -> tuple[GeS5Driver, list]:
    d = GeS5Driver()
    out = []
    if chunk is None:
        out += d.feed(data)
    else:
        for i in range(0, len(data), chunk):
            out += d.feed(data[i:i + chunk])
    out += d.flush()
    return d, out


# --- the captures -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["short.raw", "db02.raw", "db00.raw"])
def test_every_basic_record_matches_an_independent_reading(name):
    data = (VEC / name).read_bytes()
    recs = basic_records(classify(data)["good"])
    assert len(recs) > 5
    expected = expected_readings(recs)
    d, out = decode(data, chunk=4096)
    assert as_tuples(out) == expected
    # one HR per basic record: every record was read
    assert sum(1 for r in out if isinstance(r, Reading) and r.param == "hr") == len(recs)


@pytest.mark.parametrize("name, first", [
    # README "First of db02.raw: HR 80, NIBP 93/48 (69), SpO2 96.65, PR 83."
    ("db02.raw", {"hr": 80, "nibp_sys": 93, "nibp_dia": 48, "nibp_map": 69, "spo2": 96.65, "pr": 83}),
    ("short.raw", {"hr": 80, "nibp_sys": 93, "nibp_dia": 48, "nibp_map": 69, "spo2": 96.65, "pr": 83}),
    # README "First basic record of db00.raw: HR 85, NIBP 87/61 (73), SpO2 100.00, PR 87."
    ("db00.raw", {"hr": 85, "nibp_sys": 87, "nibp_dia": 61, "nibp_map": 73, "spo2": 100.0, "pr": 87}),
])
def test_first_record_matches_the_readme(name, first):
    d = GeS5Driver()
    data = (VEC / name).read_bytes()
    out = []
    for i in range(0, len(data), 2048):
        out += d.feed(data[i:i + 2048])
        if sum(1 for r in out if isinstance(r, Reading)) >= 6:
            break
    got = {r.param: r.value for r in out[:6]}
    assert got == pytest.approx(first)
    units = {r.param: r.unit for r in out[:6]}
    assert units == {"hr": "bpm", "nibp_sys": "mmHg", "nibp_dia": "mmHg", "nibp_map": "mmHg", "spo2": "%", "pr": "bpm"}
    pr = [r for r in out[:6] if r.param == "pr"][0]
    assert pr.source == "spo2"


def test_db00_all_frames_good():
    data = (VEC / "db00.raw").read_bytes()
    d, out = decode(data)
    # README: "3,520 frames, all checksums good"
    assert d.stats.frames_decoded == 3520
    assert d.stats.frames_rejected == 0
    recs = basic_records(classify(data)["good"])
    assert sum(1 for r in out if isinstance(r, Reading) and r.param == "hr") == len(recs)


def test_db00_nibp_emitted_once_per_measurement():
    data = (VEC / "db00.raw").read_bytes()
    recs = basic_records(classify(data)["good"])
    changes = 1 + sum(1 for a, b in zip(recs, recs[1:])
                      if (a["nibp_st"], a["sys"], a["dia"], a["mean"]) != (b["nibp_st"], b["sys"], b["dia"], b["mean"]))
    assert changes < len(recs) / 50  # the capture repeats each cuff result in ~1,760 records
    d, out = decode(data)
    sys_readings = [r for r in out if isinstance(r, Reading) and r.param == "nibp_sys"]
    assert len(sys_readings) == changes


def test_db01_bad_frames_rejected_counted_and_stream_recovers():
    data = (VEC / "db01-bad-checksums.raw").read_bytes()
    c = classify(data)
    # README: "about 166 frames whose checksum fails"
    assert 150 <= len(c["bad_checksum"]) <= 180
    d, out = decode(data, chunk=1000)
    assert d.stats.frames_rejected == len(c["bad_checksum"]) + len(c["bad_length"]) + len(c["dangling"])
    assert d.stats.frames_decoded == len(c["good"])
    # recovered after each bad frame: every good basic record after it is read, in order
    recs = basic_records(c["good"])
    got_times = [r.device_time for r in out if isinstance(r, Reading) and r.param == "hr"]
    assert got_times == [r["time"] for r in recs]
    assert as_tuples(out) == expected_readings(recs)


def test_header_only_frame():
    lines = (VEC / "header-only-frame.txt").read_text().splitlines()
    hexline = next(ln for ln in lines if ln.startswith("hex:"))
    frame = bytes.fromhex(hexline.split(":", 1)[1])
    d = GeS5Driver()
    assert d.feed(frame) == []
    assert (d.stats.frames_decoded, d.stats.frames_rejected, d.stats.bytes_skipped) == (1, 0, 0)


def test_garbage_before_first_flag_is_skipped_bytes():
    frame = bytes.fromhex(next(ln for ln in (VEC / "header-only-frame.txt").read_text().splitlines()
                               if ln.startswith("hex:")).split(":", 1)[1])
    d = GeS5Driver()
    d.feed(b"\x01\x02\x03" + frame)
    assert d.stats.bytes_skipped == 3 and d.stats.frames_decoded == 1


def test_corrupted_frame_then_recovery():
    good = encode_displayed_values(time=1_700_000_000, hr=70, spo2=98, pr=71)
    bad = bytearray(good)
    bad[60] ^= 0x01  # flip a bit in the record: checksum fails
    d = GeS5Driver()
    out = d.feed(bytes(bad) + good)
    assert d.stats.frames_rejected == 1
    assert d.stats.frames_decoded == 1
    assert [r.value for r in out if isinstance(r, Reading) and r.param == "hr"] == [70.0]


def test_unbounded_garbage_is_dropped():
    d = GeS5Driver()
    d.feed(b"\x7e" + b"\x11" * (GeS5Driver.MAX_BUFFER * 3))
    assert d.buffered <= GeS5Driver.MAX_BUFFER
    assert d.stats.bytes_skipped >= GeS5Driver.MAX_BUFFER * 2
    out = d.feed(encode_displayed_values(time=1_700_000_000, hr=61))
    assert [r.value for r in out if isinstance(r, Reading) and r.param == "hr"] == [61.0]


# --- encoder checked against the README layout -----------------------------------------------
def test_encoded_record_layout_matches_the_readme():
    wire = encode_displayed_values(time=1_530_114_655, hr=72, nibp_sys=121.5, nibp_dia=80, nibp_mean=94,
                                   spo2=97.25, pr=73)
    assert wire[0] == 0x7E and wire[-1] == 0x7E
    body = unstuff(wire[1:-1])
    rec, cs = body[:-1], body[-1]
    assert sum(rec) % 256 == cs
    assert struct.unpack("<h", rec[0:2])[0] == len(rec)
    assert struct.unpack("<I", rec[6:10])[0] == 1_530_114_655
    assert struct.unpack("<h", rec[14:16])[0] == 0
    recs = basic_records([rec])
    assert len(recs) == 1
    r = recs[0]
    assert (r["hr"], r["sys"], r["dia"], r["mean"], r["spo2"], r["pr"]) == (72, 12150, 8000, 9400, 9725, 73)
    assert r["ecg_st"] & 3 == 3 and r["nibp_st"] & 3 == 3 and r["spo2_st"] & 3 == 3
    # "a record carries all four" classes
    classes = []
    for k in range(8):
        off, typ = struct.unpack("<hB", rec[16 + 3 * k: 19 + 3 * k])
        if typ == 0xFF:
            break
        classes.append((struct.unpack("<H", rec[40 + off + 276: 40 + off + 278])[0] >> 8) & 0xF)
    assert sorted(classes) == [0, 1, 2, 3]


def test_encoder_round_trip_and_markers():
    d = GeS5Driver()
    wire = encode_displayed_values(time=1_700_000_000, hr=None, nibp_sys=118, nibp_dia=None, nibp_mean=90,
                                   spo2=None, pr=66, markers={"spo2": -32766, "nibp_dia": -32763})
    out = d.feed(wire)
    got = {r.param: (r.value, r.valid, r.flags) for r in out if isinstance(r, Reading)}
    assert got == {
        "hr": (None, False, ("marker:no_data",)),
        "nibp_sys": (118.0, True, ()),
        "nibp_dia": (None, False, ("marker:over_range",)),
        "nibp_map": (90.0, True, ()),
        "spo2": (None, False, ("marker:not_updated",)),
        "pr": (66.0, True, ()),
    }
    assert all(r.device_time == datetime.fromtimestamp(1_700_000_000, UTC) for r in out)


@pytest.mark.parametrize("raw, name", sorted(README_MARKERS.items()))
def test_every_readme_marker_is_named(raw, name):
    d = GeS5Driver()
    out = d.feed(encode_displayed_values(time=1_700_000_000, hr=60, markers={"hr": raw}))
    hr = [r for r in out if isinstance(r, Reading) and r.param == "hr"][0]
    assert (hr.value, hr.valid, hr.flags) == (None, False, (f"marker:{name}",))


def test_stuffing_round_trip():
    # r_time bytes 0x7E and 0x7D must be escaped on the wire and restored by the reader
    t = 0x7D7E7D7E
    wire = encode_displayed_values(time=t, hr=0x7E, spo2=0x7D / 100 * 100, pr=125)
    assert b"\x7d\x5e" in wire and b"\x7d\x5d" in wire
    assert wire.count(b"\x7e") == 2
    d = GeS5Driver()
    out = d.feed(wire)
    assert d.stats.frames_decoded == 1
    assert {r.param: r.value for r in out if isinstance(r, Reading)}["hr"] == 126.0
    assert out[0].device_time == datetime.fromtimestamp(t, UTC)


def test_group_absent_and_inactive():
    d = GeS5Driver()
    out = d.feed(encode_displayed_values(time=1_700_000_000, hr=70, nibp_sys=120, nibp_dia=80, nibp_mean=93,
                                         spo2=97, pr=70, nibp_status=0, spo2_status=0x1))
    readings = [r for r in out if isinstance(r, Reading)]
    statuses = [s for s in out if isinstance(s, DeviceStatus)]
    assert not [r for r in readings if r.param.startswith("nibp")]  # not exists: no reading
    assert [(s.kind, s.active, s.param) for s in statuses] == [("module_absent", True, "nibp")]
    spo2 = [r for r in readings if r.param in ("spo2", "pr")]
    assert [(r.value, r.valid, r.flags) for r in spo2] == [(None, False, ("group_inactive",))] * 2
    # the module comes back
    out = d.feed(encode_displayed_values(time=1_700_000_005, hr=70, nibp_sys=120, nibp_dia=80, nibp_mean=93,
                                         spo2=97, pr=70))
    assert [(s.kind, s.active) for s in out if isinstance(s, DeviceStatus)] == [("module_absent", False)]
    assert [r.value for r in out if isinstance(r, Reading) and r.param == "nibp_sys"] == [120.0]


def test_nibp_once_per_new_measurement():
    d = GeS5Driver()

    def nibp(**kw):
        out = d.feed(encode_displayed_values(time=1_700_000_000, hr=70, spo2=97, pr=70, **kw))
        return [r.value for r in out if isinstance(r, Reading) and r.param.startswith("nibp")]

    assert nibp(nibp_sys=120, nibp_dia=80, nibp_mean=93) == [120.0, 80.0, 93.0]
    assert nibp(nibp_sys=120, nibp_dia=80, nibp_mean=93) == []  # repeated in the next record
    assert nibp(nibp_sys=120, nibp_dia=80, nibp_mean=93) == []
    assert nibp(nibp_sys=131, nibp_dia=85, nibp_mean=100) == [131.0, 85.0, 100.0]  # new value
    assert nibp(nibp_sys=131, nibp_dia=85, nibp_mean=100, nibp_status=0x3 | 0x100) == [131.0, 85.0, 100.0]  # status
    d.reset()  # a reconnect does not repeat the last measurement
    assert nibp(nibp_sys=131, nibp_dia=85, nibp_mean=100, nibp_status=0x3 | 0x100) == []


# --- host request ---------------------------------------------------------------------------
def test_request_record_layout():
    wire = encode_request(10)
    body = unstuff(wire[1:-1])
    rec, cs = body[:-1], body[-1]
    assert sum(rec) % 256 == cs
    assert len(rec) == 49 and struct.unpack("<h", rec[0:2])[0] == 49  # header + phdb request (pycollect: 49)
    assert struct.unpack("<h", rec[14:16])[0] == 0  # DRI_MT_PHDB
    assert struct.unpack("<hB", rec[16:19]) == (0, 0)  # one subrecord: transmission request
    assert rec[21] == 0xFF  # end of the subrecord list
    assert rec[40] == 1  # DRI_PH_DISPL
    assert struct.unpack("<h", rec[41:43])[0] == 10
    stop = unstuff(encode_request(0)[1:-1])[:-1]
    assert struct.unpack("<h", stop[41:43])[0] == 0


def test_request_decoder_round_trip_split_anywhere():
    wire = b"\x00garbage" + encode_request(5) + encode_request(0) + encode_request(60)
    for cut in range(len(wire)):
        dec = RequestDecoder()
        assert dec.feed(wire[:cut]) + dec.feed(wire[cut:]) == [5, 0, 60]


def test_on_connect_and_stall_send_the_request():
    d = get_driver("ge-s5", interval_s=10)
    assert d.on_connect() == encode_request(10) == d.on_stream_stalled()
    assert RequestDecoder().feed(GeS5Driver().on_connect()) == [5]  # default interval
    with pytest.raises(ValueError):
        GeS5Driver(interval_s=-1)


def test_serial_defaults():
    sd = GeS5Driver.serial_defaults
    assert (sd.baudrate, sd.bytesize, sd.parity, sd.stopbits, sd.rtscts) == (19200, 8, "E", 1, True)


# --- respiration rate (issue 15: RR where the monitor sends it) -----------------------------------
@pytest.mark.parametrize("name, source, first_rr, rr_values", [
    # db02/short: a CO2 module (group status exists+active), label 1 = RR from CO2; the first
    # record's co2.rr is 15 /min and the capture's values are 15-17 /min
    ("db02.raw", "co2", 15.0, {15.0, 16.0, 17.0}),
    ("short.raw", "co2", 15.0, {15.0, 16.0}),
    # db00: no CO2 module (status 0), label 2 = RR from the ECG impedance: imp_rr, first 21 /min
    ("db00.raw", "ecg_impedance", 21.0, None),
])
def test_respiration_rate_from_the_monitors_rr_source(name, source, first_rr, rr_values):
    data = (VEC / name).read_bytes()
    recs = basic_records(classify(data)["good"])
    _d, out = decode(data, chunk=8192)
    rr = [r for r in out if isinstance(r, Reading) and r.param == "rr"]
    assert len(rr) == len(recs)  # one RR per basic record
    assert {r.source for r in rr} == {source} and {r.unit for r in rr} == {"/min"}
    assert rr[0].value == first_rr and rr[0].valid
    if rr_values is not None:
        assert {r.value for r in rr} == rr_values
    # the first record's RR is the one at the CO2 group's / ECG group's offset in the bytes
    first = recs[0]
    assert rr[0].value == (first["rr"] if source == "co2" else first["imp_rr"])
    assert not [o for o in out if isinstance(o, DeviceStatus)]  # every group the RR needs exists


def test_rr_source_none_co2_impedance_absent_and_markers():
    t = 1_700_000_000

    def rr_of(**kw) -> list:
        d = GeS5Driver()
        return d.feed(encode_displayed_values(time=t, hr=70, spo2=98, pr=70, **kw))

    assert not [r for r in rr_of() if isinstance(r, Reading) and r.param == "rr"]  # no source selected
    (r,) = [r for r in rr_of(rr=12, rr_source="co2") if isinstance(r, Reading) and r.param == "rr"]
    assert (r.value, r.valid, r.source) == (12.0, True, "co2")
    (r,) = [r for r in rr_of(rr=9, rr_source="impedance") if isinstance(r, Reading) and r.param == "rr"]
    assert (r.value, r.valid, r.source) == (9.0, True, "ecg_impedance")
    (r,) = [r for r in rr_of(rr=None, rr_source="co2") if isinstance(r, Reading) and r.param == "rr"]
    assert (r.value, r.valid, r.flags) == (None, False, ("marker:no_data",))
    (r,) = [r for r in rr_of(rr=0, rr_source="co2") if isinstance(r, Reading) and r.param == "rr"]
    assert (r.value, r.valid) == (0.0, True)  # 0 /min (apnoea) is a value, never "missing"
    (r,) = [r for r in rr_of(rr=14, rr_source="co2", co2_status=0x1) if isinstance(r, Reading) and r.param == "rr"]
    assert (r.value, r.valid, r.flags) == (None, False, ("group_inactive",))
    out = rr_of(rr=14, rr_source="co2", co2_status=0x0)  # RR from CO2, but no CO2 module
    assert not [r for r in out if isinstance(r, Reading) and r.param == "rr"]
    (st,) = [o for o in out if isinstance(o, DeviceStatus)]
    assert (st.kind, st.param, st.active) == ("module_absent", "co2", True)
    (r,) = [r for r in rr_of(rr=-5, rr_source="co2") if isinstance(r, Reading) and r.param == "rr"]
    assert (r.value, r.valid) == (None, False) and r.flags[0].startswith("negative")
