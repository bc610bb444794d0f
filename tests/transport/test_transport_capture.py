"""Raw capture (--raw FILE): write -> read identical bytes and times; damage -> offset; replay."""

from __future__ import annotations

import json
import random
import struct
import time
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from transport_testkit import Collector, LineDriver, OneShotServer, wait_until

from chairside.domain.clock import ManualClock
from chairside.domain.readings import Reading
from chairside.transport import (
    CaptureError,
    CaptureReader,
    CaptureWriter,
    Link,
    ReplaySource,
    TransportConfig,
    capture_info,
    is_capture,
    iter_capture,
    parse_speed,
)

START = datetime(2026, 3, 4, 10, 20, 30, 123456, tzinfo=UTC)


def _write_sample(path, n=20, seed=7, clock=None):
    """Write n random chunks (all byte values, incl. the magic's) at uneven µs steps."""
    rng = random.Random(seed)
    clock = clock or ManualClock(START)
    sent = []
    with CaptureWriter(path, driver="ge-s5", start=clock.now(), port="/dev/ttyUSB0",
                       monotonic_origin=clock.monotonic()) as w:
        for _ in range(n):
            clock.advance(rng.randrange(1, 3_000_000) / 1e6)
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            w.write(clock.now(), clock.monotonic(), data)
            sent.append((clock.now(), clock.monotonic(), data))
    return sent


def _hand_parse(raw: bytes):
    """Parse the documented layout independently of CaptureReader."""
    assert raw[:8] == b"\x89CSRAW1\n"
    pos, out = 8, []
    while pos < len(raw):
        tag = raw[pos:pos + 1]
        (length,) = struct.unpack_from("<I", raw, pos + 1)
        payload = raw[pos + 5:pos + 5 + length]
        (crc,) = struct.unpack_from("<I", raw, pos + 5 + length)
        assert crc == zlib.crc32(raw[pos:pos + 5 + length])
        out.append((pos, tag, payload))
        pos += 5 + length + 4
    return out


def test_write_then_read_gives_identical_bytes_and_times(tmp_path):
    path = tmp_path / "s.raw"
    sent = _write_sample(path)
    assert list(iter_capture(path)) == [(t, d) for t, _, d in sent]
    recs = list(CaptureReader(path))
    assert [r.elapsed_s for r in recs] == pytest.approx([m - sent[0][1] for _, m, _ in sent], abs=1e-9)
    assert all(r.receive_time.tzinfo is not None for r in recs)
    info = capture_info(path)
    assert info.records == 20 and info.bytes == sum(len(d) for *_, d in sent)
    assert info.driver == "ge-s5" and info.segments[0].port == "/dev/ttyUSB0"
    assert info.segments[0].start == START and info.truncated_at is None
    assert is_capture(path)


def test_file_layout_matches_the_documented_format(tmp_path):
    path = tmp_path / "s.raw"
    sent = _write_sample(path, n=3)
    records = _hand_parse(path.read_bytes())
    assert [tag for _, tag, _ in records] == [b"S", b"D", b"D", b"D"]
    meta = json.loads(records[0][2])
    assert meta == {"format": 1, "driver": "ge-s5", "start": START.isoformat(), "port": "/dev/ttyUSB0"}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for (_, _, payload), (t, mono, data) in zip(records[1:], sent, strict=True):
        mono_ns, utc_us = struct.unpack_from("<Qq", payload)
        assert payload[16:] == data
        assert utc_us == (t - epoch) // timedelta(microseconds=1)
        assert mono_ns == round(mono * 1e9) - round(0.0)  # origin was the clock's start (0)


def test_corrupt_byte_names_the_offset_of_the_bad_record(tmp_path):
    path = tmp_path / "s.raw"
    _write_sample(path, n=5)
    raw = bytearray(path.read_bytes())
    records = _hand_parse(bytes(raw))
    third = records[3][0]  # the third data record
    raw[third + 5 + 20] ^= 0x01  # one bit inside its bytes
    path.write_bytes(bytes(raw))
    with pytest.raises(CaptureError) as err:
        list(iter_capture(path))
    assert err.value.offset == third
    assert f"byte offset {third}" in str(err.value) and "CRC" in str(err.value) and str(path) in str(err.value)
    # the records before the damage were delivered before the error
    got = []
    with pytest.raises(CaptureError):
        for item in iter_capture(path):
            got.append(item)
    assert len(got) == 2


@pytest.mark.parametrize("damage, offset, words", [
    (lambda raw: b"GARBAGE!" + raw[8:], 0, "magic"),
    (lambda raw: raw[:8] + b"Z" + raw[9:], 8, "tag"),
])
def test_bad_header_or_tag(tmp_path, damage, offset, words):
    path = tmp_path / "s.raw"
    _write_sample(path, n=2)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CaptureError, match=words) as err:
        list(iter_capture(path))
    assert err.value.offset == offset


def test_impossible_length_is_an_error_not_a_huge_read(tmp_path):
    path = tmp_path / "s.raw"
    _write_sample(path, n=2)
    raw = bytearray(path.read_bytes())
    first_data = _hand_parse(bytes(raw))[1][0]
    raw[first_data + 1:first_data + 5] = struct.pack("<I", 0xFFFFFFF0)
    path.write_bytes(bytes(raw))
    with pytest.raises(CaptureError, match="length") as err:
        list(iter_capture(path))
    assert err.value.offset == first_data


def test_torn_last_record_after_a_crash(tmp_path):
    path = tmp_path / "s.raw"
    sent = _write_sample(path, n=4)
    raw = path.read_bytes()
    last = _hand_parse(raw)[-1][0]
    path.write_bytes(raw[:-7])  # the process died while writing the last record
    reader = CaptureReader(path)
    assert [d for _, d in ((r.receive_time, r.data) for r in reader)] == [d for *_, d in sent[:3]]
    assert reader.truncated_at == last
    with pytest.raises(CaptureError, match="cut short") as err:
        list(iter_capture(path, strict=True))
    assert err.value.offset == last


def test_reopen_appends_a_segment_after_cutting_a_torn_tail(tmp_path):
    path = tmp_path / "s.raw"
    clock = ManualClock(START)
    first = _write_sample(path, n=3, clock=clock)
    raw = path.read_bytes()
    path.write_bytes(raw[:-3])  # torn third record
    clock.advance(60.0)  # the console restarted a minute later
    with CaptureWriter(path, driver="ge-s5", start=clock.now(), port="/dev/ttyUSB0") as w:
        clock.advance(0.5)
        w.write(clock.now(), clock.monotonic(), b"after restart")
    reader = CaptureReader(path, strict=True)
    recs = list(reader)
    assert [r.data for r in recs] == [first[0][2], first[1][2], b"after restart"]
    assert len(reader.segments) == 2 and reader.truncated_at is None
    # the timeline continues across segments with the UTC gap
    gap = (recs[2].receive_time - recs[1].receive_time).total_seconds()
    assert recs[2].elapsed_s == pytest.approx(recs[1].elapsed_s + gap)
    assert recs[2].mono_ns == 0  # a new segment's monotonic origin


def test_writer_refuses_to_append_to_a_foreign_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"important notes, not a capture\n")
    with pytest.raises(CaptureError) as err:
        CaptureWriter(path, driver="masimo", start=START)
    assert err.value.offset == 0
    assert path.read_bytes() == b"important notes, not a capture\n"


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CaptureError, match="cannot open"):
        list(iter_capture(tmp_path / "nope.raw"))


def test_writes_after_close_are_ignored_and_each_record_is_flushed(tmp_path):
    path = tmp_path / "s.raw"
    w = CaptureWriter(path, driver="masimo", start=START)
    w.write(START, 0.0, b"one")
    # readable by another reader while the writer is still open (flushed per record)
    assert list(iter_capture(path)) == [(START, b"one")]
    w.close()
    w.write(START, 1.0, b"two")
    w.close()
    assert list(iter_capture(path)) == [(START, b"one")]


def test_parse_speed():
    assert parse_speed("max") is None and parse_speed(None) is None and parse_speed("inf") is None
    assert parse_speed("2") == 2.0 and parse_speed(0.5) == 0.5
    for bad in ("0", "-1", "fast", "nan", ""):
        with pytest.raises(ValueError, match="speed"):
            parse_speed(bad)


def _lines_capture(path, gaps):
    """A capture of 'hr=N' lines separated by the given gaps (seconds)."""
    clock = ManualClock(START)
    with CaptureWriter(path, driver="line-test", start=clock.now(), port="loop://",
                       monotonic_origin=clock.monotonic()) as w:
        for i, gap in enumerate(gaps):
            clock.advance(gap)
            w.write(clock.now(), clock.monotonic(), f"hr={60 + i}\n".encode())


def test_replay_paces_by_speed_with_injected_timer(tmp_path):
    path = tmp_path / "s.raw"
    _lines_capture(path, [0.0, 1.0, 2.0, 4.0])  # 7 s long

    class FakeTime:
        def __init__(self):
            self.t = 100.0
            self.sleeps = []

        def timer(self):
            return self.t

        def sleep(self, s):
            self.sleeps.append(s)
            self.t += s

    for speed, expected in [(1.0, [1.0, 2.0, 4.0]), (2.0, [0.5, 1.0, 2.0])]:
        ft = FakeTime()
        col = Collector()
        stats = ReplaySource(path, LineDriver(), on_output=col, speed=speed, timer=ft.timer, sleeper=ft.sleep).run()
        assert ft.sleeps == pytest.approx(expected)
        assert [r.value for r in col.readings()] == [60, 61, 62, 63]
        assert stats.state == "finished" and stats.readings == 4
    ft = FakeTime()
    ReplaySource(path, LineDriver(), on_output=Collector(), speed=None, timer=ft.timer, sleeper=ft.sleep).run()
    assert ft.sleeps == []


def test_replay_keeps_captured_times_advances_clock_and_derives_no_data(tmp_path):
    path = tmp_path / "s.raw"
    _lines_capture(path, [0.0, 1.0, 15.0, 1.0])  # a 15 s silence
    col = Collector()
    clock = ManualClock(START)
    ReplaySource(path, LineDriver(), on_output=col, speed=None, clock=clock,
                 config=TransportConfig(no_data_after_s=10.0)).run()
    readings = col.readings()
    times = [t for t, _ in iter_capture(path)]
    assert [r.receive_time for r in readings] == times
    assert clock.monotonic() == pytest.approx(17.0)
    on, off = col.statuses("no_data")
    assert on.active and not off.active
    assert on.receive_time == times[1] + timedelta(seconds=10) and off.receive_time == times[2]


def test_replay_uses_the_driver_named_in_the_capture(tmp_path):
    path = tmp_path / "s.raw"
    with CaptureWriter(path, driver="no-such-driver", start=START):
        pass
    with pytest.raises(ValueError, match="unknown driver 'no-such-driver'"):
        ReplaySource(path, on_output=Collector())


def test_replay_stops_promptly(tmp_path):
    path = tmp_path / "s.raw"
    _lines_capture(path, [0.0, 30.0])
    col = Collector()
    src = ReplaySource(path, LineDriver(), on_output=col, speed=1.0)
    src.start()
    col.wait_readings(1)
    t0 = time.monotonic()
    src.stop()
    assert time.monotonic() - t0 < 1.0 and src.done.is_set()
    assert src.stats.state == "stopped" and len(col.readings()) == 1


@pytest.mark.e2e
def test_live_capture_then_replay_is_byte_exact(tmp_path):
    """Link over a socket tees into a capture; replaying it gives the same chunks, times, readings."""
    live = tmp_path / "live.raw"
    clock = ManualClock(START)
    srv = OneShotServer()
    col = Collector()
    writer = CaptureWriter(live, driver="line-test", start=clock.now(), port=f"socket://127.0.0.1:{srv.port}",
                           monotonic_origin=clock.monotonic())
    link = Link(f"socket://127.0.0.1:{srv.port}", LineDriver(), clock=clock, on_output=col, on_raw=writer.write,
                config=TransportConfig(read_timeout_s=0.05))
    link.start()
    payload = [b"hr=70\nsp", b"o2=97\n\xff\x00junk\n", b"hr=71\n"]
    try:
        srv.accept()
        col.wait_status("link_up")
        for i, chunk in enumerate(payload):
            clock.advance(0.25 * (i + 1))
            srv.send(chunk)
            wait_until(lambda n=sum(map(len, payload[:i + 1])): link.stats.bytes_in == n, 2.0, "chunk read")
        col.wait_readings(3)
    finally:
        link.stop()
        writer.close()
        srv.close()
    recs = list(CaptureReader(live, strict=True))
    assert b"".join(r.data for r in recs) == b"".join(payload)
    live_readings = [(r.param, r.value, r.receive_time) for r in col.readings()]

    again = tmp_path / "again.raw"
    col2 = Collector()
    with CaptureWriter(again, driver="line-test", start=START, port="replay") as w2:
        ReplaySource(live, LineDriver(), on_output=col2, speed=None, on_raw=w2.write).run()
    recs2 = list(CaptureReader(again, strict=True))
    # same chunks, same receive times, same monotonic spacing (the origin is the new writer's)
    assert [(r.data, r.receive_time, r.mono_ns - recs2[0].mono_ns) for r in recs2] == [
        (r.data, r.receive_time, r.mono_ns - recs[0].mono_ns) for r in recs]
    assert [(r.param, r.value, r.receive_time) for r in col2.readings()] == live_readings
    assert all(isinstance(r, Reading) for r in col2.readings())


# --- `chairside decode` of a capture ---------------------------------------------------------
def _decode_cli(argv):
    import contextlib
    import io

    from chairside.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, [json.loads(ln) for ln in out.getvalue().splitlines()], err.getvalue()


def test_decode_reads_a_capture_chunk_by_chunk_with_receive_times(tmp_path, vectors):
    # Masimo lines (device time in the line) split across chunks, then, in a second
    # segment, an HL7 message with no time at all: its reading takes its chunk's receive time.
    lines = [ln for ln in (vectors / "masimo" / "ascii-samples.txt").read_text().splitlines()
             if ln.startswith("02/22/16 22:47:4")]  # Source C: SPO2 098, BPM 097/096/096/096/097
    wire = "".join(ln + "\r\n" for ln in lines).encode()
    cap = tmp_path / "rad.raw"
    clock = ManualClock(START)
    with CaptureWriter(cap, driver="masimo", start=clock.now(), port="/dev/ttyUSB0") as w:
        for i in range(0, len(wire), 50):
            clock.advance(0.2)
            w.write(clock.now(), clock.monotonic(), wire[i:i + 50])
    rc, rows, err = _decode_cli(["decode", "--driver", "masimo", str(cap)])
    assert rc == 0, err
    assert [(r["param"], r["value"]) for r in rows if r["param"] in ("spo2", "pr")] == [
        ("spo2", 98), ("pr", 97), ("spo2", 98), ("pr", 96), ("spo2", 98), ("pr", 96), ("spo2", 98), ("pr", 96),
        ("spo2", 98), ("pr", 97)]
    assert rows[0]["t"] == "2016-02-22T22:47:45+00:00"  # the device's own time wins
    assert "5 frames decoded, 0 frames rejected" in err.strip().splitlines()[-1]

    msg = (b"\x0bMSH|^~\\&|MON||||||ORU^R01|7|P|2.6\r"
           b"OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.1|93|262688^MDC_DIM_PERCENT^MDC\r\x1c\r")
    cap2 = tmp_path / "hl7.raw"
    got_at = START + timedelta(seconds=3)
    with CaptureWriter(cap2, driver="hl7", start=START) as w:
        w.write(START, 0.0, msg[:20])  # a message cut by the first segment's end: dropped
    with CaptureWriter(cap2, driver="hl7", start=START + timedelta(seconds=2)) as w:  # restarted
        w.write(got_at, 1.0, msg)
    rc, rows, err = _decode_cli(["decode", "--driver", "hl7", str(cap2)])
    assert rc == 0, err
    assert rows == [{"t": got_at.isoformat(), "param": "spo2", "value": 93.0, "unit": "%", "valid": True,
                     "flags": []}]


def test_decode_of_a_capture_checks_the_driver_and_the_bytes(tmp_path):
    cap = tmp_path / "ge.raw"
    _write_sample(cap, n=5)  # driver ge-s5
    rc, rows, err = _decode_cli(["decode", "--driver", "masimo", str(cap)])
    assert rc == 2 and rows == [] and "a raw capture of a ge-s5 monitor" in err and "--driver ge-s5" in err
    raw = bytearray(cap.read_bytes())
    (pos, _tag, _payload) = _hand_parse(bytes(raw))[2]  # the second data record
    raw[pos + 20] ^= 0xFF
    cap.write_bytes(bytes(raw))
    rc, _, err = _decode_cli(["decode", "--driver", "ge-s5", str(cap)])
    assert rc == 2 and f"byte offset {pos}" in err and str(cap) in err and len(err.strip().splitlines()) == 1
