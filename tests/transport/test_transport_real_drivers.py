"""End-to-end with the real drivers: device bytes from ../shared/vectors through a pty or a
loopback socket, pyserial, the Link and the driver.

Expected values come from ../shared/vectors/README.md ("First of db02.raw: HR 80, NIBP 93/48
(69), SpO2 96.65, PR 83"; short.raw is the same session start) and from the Masimo sample
line itself (SPO2=098% BPM=123 PI=00.55).
"""

from __future__ import annotations

import os
import time

import pytest
from transport_testkit import Collector, OneShotServer, wait_until

from chairside.domain.clock import ManualClock, WallClock
from chairside.transport import CaptureWriter, Link, ReplaySource, TransportConfig, iter_capture

pytestmark = pytest.mark.e2e

FAST = TransportConfig(read_timeout_s=0.05, min_backoff_s=0.05, max_backoff_s=0.5)


def _first_basic(readings):
    first: dict[str, float] = {}
    for r in readings:
        first.setdefault(r.param, r.value)
    return first


def test_ge_request_on_connect_resent_on_stall_then_vector_bytes_decode(vectors):
    from chairside.drivers.ge_s5 import RequestDecoder

    clock = ManualClock()
    srv = OneShotServer()
    col = Collector()
    config = TransportConfig(read_timeout_s=0.05, stall_after_s=5.0, no_data_after_s=60.0)
    link = Link(f"socket://127.0.0.1:{srv.port}", "ge-s5", clock=clock, on_output=col, config=config)
    link.start()
    try:
        srv.accept()
        decoder = RequestDecoder()
        requests: list[int] = []
        fed = [0]  # bytes of srv.got() already given to the decoder

        def got_requests(n: int) -> bool:
            wire = srv.got()
            requests.extend(decoder.feed(wire[fed[0]:]))
            fed[0] = len(wire)
            return len(requests) >= n

        wait_until(lambda: got_requests(1), 2.0, "the GE request record on connect")
        assert requests[0] > 0  # start the displayed-values stream (0 would be "stop")
        from chairside.transport.serial_link import STALL_INTERVALS

        clock.advance(float(requests[0]))  # one interval without a record: not yet a stall
        time.sleep(0.3)
        assert not got_requests(2)
        clock.advance((STALL_INTERVALS - 1) * requests[0])  # silent for more than two intervals: ask again
        wait_until(lambda: got_requests(2), 2.0, "the request re-sent after the stall")
        assert requests[1] == requests[0]
        data = (vectors / "ge-s5" / "short.raw").read_bytes()
        for i in range(0, len(data), 997):  # arbitrary chunking on the wire
            srv.send(data[i:i + 997])
        col.wait_for(lambda: {"hr", "nibp_sys", "nibp_dia", "nibp_map", "spo2", "pr"}
                     <= {r.param for r in col.readings()}, 3.0, "the first basic record")
        first = _first_basic(col.readings())
        assert first["hr"] == 80
        assert (first["nibp_sys"], first["nibp_dia"], first["nibp_map"]) == (93, 48, 69)
        assert first["spo2"] == pytest.approx(96.65) and first["pr"] == 83
        assert all(r.receive_time is not None for r in col.readings())
        wait_until(lambda: link.stats.bytes_in == len(data), 2.0, "all bytes read")
        assert link.stats.frames_rejected == 0
    finally:
        link.stop()
        srv.close()


def test_ge_capture_then_replay_gives_the_same_readings(vectors, tmp_path):
    """--raw tee on a live socket link, then replay of the capture at max speed."""
    clock = WallClock()
    srv = OneShotServer()
    col = Collector()
    cap = tmp_path / "ge.raw"
    writer = CaptureWriter(cap, driver="ge-s5", start=clock.now(), port="socket://test")
    link = Link(f"socket://127.0.0.1:{srv.port}", "ge-s5", clock=clock, on_output=col, on_raw=writer.write,
                config=FAST)
    data = (vectors / "ge-s5" / "short.raw").read_bytes()
    link.start()
    try:
        srv.accept()
        col.wait_status("link_up")
        for i in range(0, len(data), 4096):
            srv.send(data[i:i + 4096])
            time.sleep(0.005)
        wait_until(lambda: link.stats.bytes_in == len(data), 3.0, "all bytes read")
    finally:
        link.stop()
        writer.close()
        srv.close()
    assert b"".join(d for _, d in iter_capture(cap)) == data
    live = [(r.param, r.value, r.receive_time, r.device_time) for r in col.readings()]
    col2 = Collector()
    ReplaySource(cap, on_output=col2, speed=None).run()  # driver named in the capture
    assert [(r.param, r.value, r.receive_time, r.device_time) for r in col2.readings()] == live
    assert len(live) > 6


def test_masimo_line_through_a_pty(vectors, tmp_path):
    line = next(raw for raw in (vectors / "masimo" / "ascii-samples.txt").read_text().splitlines()
                if "SPO2=098%" in raw and not raw.startswith("#"))
    master, slave = os.openpty()
    slave_path = os.ttyname(slave)
    os.close(slave)
    port = tmp_path / "ttyRAD7"
    port.symlink_to(slave_path)
    col = Collector()
    link = Link(str(port), "masimo", clock=WallClock(), on_output=col, config=FAST)
    link.start()
    try:
        col.wait_status("link_up")
        wire = line.encode("ascii") + b"\r\n"
        os.write(master, wire[:30])
        time.sleep(0.05)
        os.write(master, wire[30:])
        col.wait_for(lambda: {"spo2", "pr"} <= {r.param for r in col.readings()}, 3.0, "SpO2 and PR")
        got = _first_basic(col.readings())
        assert got["spo2"] == 98 and got["pr"] == 123
        t0 = time.monotonic()
        port.unlink()
        os.close(master)
        master = -1
        col.wait_status("link_lost", timeout=2.0)
        assert time.monotonic() - t0 < 2.0
    finally:
        link.stop()
        if master >= 0:
            os.close(master)
