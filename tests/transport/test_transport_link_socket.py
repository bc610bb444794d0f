"""End-to-end: Link over a loopback TCP socket (socket://127.0.0.1:PORT) through pyserial."""

from __future__ import annotations

import select
import threading
import time

import pytest
import serial
from transport_testkit import Collector, LineDriver, OneShotServer, wait_until

from chairside.domain.clock import ManualClock, WallClock
from chairside.domain.readings import DeviceStatus, Reading
from chairside.transport import Link, TransportConfig, open_source, serial_settings

pytestmark = pytest.mark.e2e

FAST = TransportConfig(read_timeout_s=0.05, min_backoff_s=0.05, max_backoff_s=0.5)


@pytest.fixture
def server():
    srv = OneShotServer()
    yield srv
    srv.close()


def _link(url, driver, col, clock=None, config=FAST, **kw):
    return Link(url, driver, clock=clock or WallClock(), on_output=col, config=config, **kw)


def test_bytes_become_readings_with_receive_time(server):
    clock = ManualClock()
    col = Collector()
    link = _link(f"socket://127.0.0.1:{server.port}", LineDriver(), col, clock=clock)
    link.start()
    try:
        server.accept()
        up = col.wait_status("link_up")
        assert up.receive_time == clock.now() and "transport" in up.flags
        clock.advance(1.5)
        server.send(b"hr=80\nsp")          # a line split across two TCP segments
        col.wait_readings(1)
        server.send(b"o2=97\n")
        got = col.wait_readings(2)
        assert [(r.param, r.value) for r in got] == [("hr", 80.0), ("spo2", 97.0)]
        assert all(isinstance(r, Reading) for r in got)
        assert got[0].receive_time == clock.now()  # stamped from the injected clock
        st = link.stats
        assert st.state == "up" and st.bytes_in == 14 and st.readings == 2 and st.driver == "line-test"
        assert st.port == f"socket://127.0.0.1:{server.port}"
    finally:
        link.stop()
    assert link.stats.state == "stopped"


def test_request_sent_on_connect_and_again_when_stream_stalls(server):
    clock = ManualClock()
    col = Collector()
    config = TransportConfig(read_timeout_s=0.05, stall_after_s=5.0, no_data_after_s=30.0)
    link = _link(f"socket://127.0.0.1:{server.port}", LineDriver(request=b"REQ 10\n", stall_request=b"REQ AGAIN\n"),
                 col, clock=clock, config=config)
    link.start()
    try:
        server.accept()
        wait_until(lambda: server.got() == b"REQ 10\n", 2.0, "the request on connect")
        server.send(b"hr=70\n")
        col.wait_readings(1)
        clock.advance(4.0)  # data arrived at t=0; 4 s of silence is not a stall yet
        time.sleep(0.2)
        assert server.got() == b"REQ 10\n"
        clock.advance(1.0)  # 5 s of silence: the stream stalled
        wait_until(lambda: server.got() == b"REQ 10\nREQ AGAIN\n", 2.0, "the request re-sent")
        clock.advance(5.0)  # still silent: sent again every stall_after_s
        wait_until(lambda: server.got().count(b"REQ AGAIN\n") == 2, 2.0, "a second re-send")
        n = len(b"REQ 10\nREQ AGAIN\nREQ AGAIN\n")
        wait_until(lambda: link.stats.bytes_out == n, 2.0, "bytes_out counted")
    finally:
        link.stop()


def test_no_data_raised_and_cleared(server):
    clock = ManualClock()
    col = Collector()
    config = TransportConfig(read_timeout_s=0.05, no_data_after_s=10.0)
    link = _link(f"socket://127.0.0.1:{server.port}", LineDriver(), col, clock=clock, config=config)
    link.start()
    try:
        server.accept()
        col.wait_status("link_up")
        clock.advance(9.0)
        time.sleep(0.2)
        assert col.statuses("no_data") == []
        clock.advance(1.0)
        nd = col.wait_status("no_data", active=True)
        assert nd.receive_time == clock.now()
        clock.advance(20.0)
        time.sleep(0.2)
        assert len(col.statuses("no_data")) == 1  # not repeated while it persists
        server.send(b"hr=60\n")
        col.wait_status("no_data", active=False)
        col.wait_readings(1)
        # the clearing event comes before the reading made from the same bytes
        kinds = [type(i).__name__ + ":" + getattr(i, "kind", "") for i in col.items]
        assert kinds.index("DeviceStatus:no_data", kinds.index("DeviceStatus:no_data") + 1) < kinds.index("Reading:")
    finally:
        link.stop()


def test_high_error_rate_raised_and_cleared(server):
    clock = ManualClock()
    col = Collector()
    config = TransportConfig(read_timeout_s=0.05, error_window_s=30.0, error_threshold=0.5, error_min_frames=4,
                             error_min_bytes=10_000)
    link = _link(f"socket://127.0.0.1:{server.port}", LineDriver(), col, clock=clock, config=config)
    link.start()
    try:
        server.accept()
        col.wait_status("link_up")
        server.send(b"hr=1\nhr=2\nhr=3\n!!\n")  # 1 rejected of 4: below 50 %
        col.wait_readings(3)
        time.sleep(0.1)
        assert col.statuses("high_error_rate") == []
        server.send(b"??\n##\n$$\n")  # 4 rejected of 7 frames: above 50 %
        ev = col.wait_status("high_error_rate", active=True)
        assert "rejected" in ev.detail
        clock.advance(31.0)  # the bad frames leave the window
        server.send(b"hr=4\nhr=5\nhr=6\nhr=7\n")
        col.wait_status("high_error_rate", active=False)
        assert link.stats.frames_rejected == 4
    finally:
        link.stop()


def test_far_side_close_raises_link_lost_and_relisten_reconnects(server):
    col = Collector()
    port = server.port
    link = _link(f"socket://127.0.0.1:{port}", LineDriver(request=b"REQ\n"), col)
    link.start()
    try:
        server.accept()
        col.wait_status("link_up")
        server.send(b"hr=81\n")
        col.wait_readings(1)
        t0 = time.monotonic()
        server.close()  # the monitor (or converter) goes away entirely
        lost = col.wait_status("link_lost", active=True, timeout=2.0)
        assert time.monotonic() - t0 < 2.0
        assert link.stats.state == "down"
        time.sleep(0.3)  # a few refused reconnect attempts: reported once, not per attempt
        assert len(col.statuses("link_lost")) == 1 and lost.detail
        again = OneShotServer(port)
        try:
            t1 = time.monotonic()
            again.accept(timeout=2.0)
            col.wait_status("link_up", count=2, timeout=2.0)
            assert time.monotonic() - t1 < 2.0
            restored = col.wait_status("link_lost", active=False)
            assert restored.receive_time is not None
            wait_until(lambda: again.got() == b"REQ\n", 2.0, "the request re-sent on reconnect")
            again.send(b"hr=82\n")
            got = col.wait_readings(2)
            assert got[-1].value == 82.0
            assert link.stats.connects == 2 and link.stats.disconnects == 1
        finally:
            again.close()
    finally:
        link.stop()


def test_port_absent_at_start_then_appears():
    probe = OneShotServer()
    port = probe.port
    probe.close()  # nobody listens there now
    col = Collector()
    link = _link(f"socket://127.0.0.1:{port}", LineDriver(), col)
    link.start()
    try:
        lost = col.wait_status("link_lost", timeout=2.0)
        assert "cannot open" in lost.detail
        assert link.stats.state == "down"
        srv = OneShotServer(port)
        try:
            srv.accept(timeout=2.0)
            col.wait_status("link_up", timeout=2.0)
            srv.send(b"hr=90\n")
            assert col.wait_readings(1)[0].value == 90.0
        finally:
            srv.close()
    finally:
        link.stop()


def test_stop_is_prompt_and_idempotent(server):
    col = Collector()
    link = _link(f"socket://127.0.0.1:{server.port}", LineDriver(), col)
    link.start()
    server.accept()
    col.wait_status("link_up")
    t0 = time.monotonic()
    link.stop()
    link.stop()
    assert time.monotonic() - t0 < 1.5  # pyserial's socket close itself sleeps 0.3 s
    assert not link.running


def test_stop_while_retrying_is_prompt():
    col = Collector()
    link = _link("socket://127.0.0.1:9", LineDriver(), col,
                 config=TransportConfig(min_backoff_s=0.5, max_backoff_s=1.0, read_timeout_s=0.05))
    link.start()
    col.wait_status("link_lost", timeout=2.0)
    t0 = time.monotonic()
    link.stop()
    assert time.monotonic() - t0 < 0.5 and not link.running


def test_consumer_exception_does_not_kill_the_link(server):
    seen: list = []

    def bad_consumer(batch):
        seen.extend(batch)
        if any(isinstance(i, Reading) and i.value == 1 for i in batch):
            raise RuntimeError("consumer bug")

    link = Link(f"socket://127.0.0.1:{server.port}", LineDriver(), clock=WallClock(), on_output=bad_consumer,
                config=FAST)
    link.start()
    try:
        server.accept()
        server.send(b"hr=1\n")
        wait_until(lambda: any(isinstance(i, Reading) and i.value == 1 for i in seen), 2.0, "first reading")
        server.send(b"hr=2\n")
        wait_until(lambda: any(isinstance(i, Reading) and i.value == 2 for i in seen), 2.0, "second reading")
        assert "consumer bug" in link.stats.last_error
    finally:
        link.stop()


def test_bytes_sent_the_moment_the_server_accepts_are_not_lost(server, monkeypatch):
    """pyserial's socket open() drains the input after connecting; a server that writes at
    once (as OneShotServer users above do) must still be read. The interleaving is forced:
    the open is held between the TCP connect and its input flush until the bytes are there."""
    from serial.urlhandler import protocol_socket

    sent = threading.Event()
    real = protocol_socket.Serial._reconfigure_port

    def held(self, *a, **kw):
        real(self, *a, **kw)
        if not self.is_open and sent.wait(2.0):  # inside open() only (a timeout change
            select.select([self._socket], [], [], 2.0)  # also calls this): wait for the bytes

    monkeypatch.setattr(protocol_socket.Serial, "_reconfigure_port", held)
    col = Collector()
    link = _link(f"socket://127.0.0.1:{server.port}", LineDriver(), col)
    link.start()
    try:
        server.accept()
        server.send(b"hr=1\n")
        sent.set()
        assert col.wait_readings(1, timeout=2.0)[0].value == 1.0
        assert link.stats.bytes_in == 5
    finally:
        link.stop()


def test_acks_from_the_driver_are_written_back(server):
    col = Collector()
    link = _link(f"socket://127.0.0.1:{server.port}", LineDriver(ack=True), col)
    link.start()
    try:
        server.accept()
        server.send(b"hr=80\nspo2=99\n")
        wait_until(lambda: server.got() == b"ACK hr\nACK spo2\n", 2.0, "ACKs")
    finally:
        link.stop()


def test_send_writes_queued_bytes(server):
    col = Collector()
    link = _link(f"socket://127.0.0.1:{server.port}", LineDriver(), col)
    link.start()
    try:
        server.accept()
        col.wait_status("link_up")
        link.send(b"hello\n")
        wait_until(lambda: server.got() == b"hello\n", 2.0, "sent bytes")
    finally:
        link.stop()


def test_loop_url_reads_back_what_the_link_writes():
    # loop:// echoes writes: the on-connect request comes back and is decoded as a line.
    col = Collector()
    link = _link("loop://", LineDriver(request=b"hr=42\n"), col)
    link.start()
    try:
        assert col.wait_readings(1)[0].value == 42.0
    finally:
        link.stop()


def test_serial_settings_defaults_and_overrides():
    d = LineDriver()  # 19200 8E1 RTS/CTS, like GE
    s = serial_settings(d)
    assert s == {"baudrate": 19200, "bytesize": 8, "parity": "E", "stopbits": 1, "rtscts": True, "xonxoff": False}
    s = serial_settings(d, {"baudrate": 9600, "parity": "n", "rtscts": False, "stopbits": None})
    assert (s["baudrate"], s["parity"], s["rtscts"], s["stopbits"]) == (9600, "N", False, 1)
    with pytest.raises(ValueError, match="unknown serial setting 'baud'"):
        serial_settings(d, {"baud": 9600})
    with pytest.raises(ValueError, match="parity"):
        serial_settings(d, {"parity": "X"})
    with pytest.raises(ValueError, match="stopbits"):
        serial_settings(d, {"stopbits": 3})


def test_settings_reach_the_pyserial_port(monkeypatch):
    opened = []
    real = serial.serial_for_url

    def spy(url, *args, **kwargs):
        port = real(url, *args, **kwargs)
        opened.append((url, kwargs, port))
        return port

    monkeypatch.setattr(serial, "serial_for_url", spy)
    col = Collector()
    link = _link("loop://", LineDriver(), col, serial={"baudrate": 38400})
    link.start()
    try:
        col.wait_status("link_up")
    finally:
        link.stop()
    assert all(kwargs.get("do_not_open") is True for _, kwargs, _ in opened)  # never opened by serial_for_url
    url, kwargs, port = next(o for o in opened if "baudrate" in o[1])  # the open (not the URL check)
    assert (port.baudrate, port.parity, port.bytesize, port.stopbits, port.rtscts) == (38400, "E", 8, 1, True)


def test_open_source_picks_link_or_listener():
    from chairside.transport import Hl7Listener

    col = Collector()
    assert isinstance(open_source("loop://", LineDriver(), clock=WallClock(), on_output=col), Link)
    lst = open_source("listen://127.0.0.1:0", LineDriver(), clock=WallClock(), on_output=col)
    assert isinstance(lst, Hl7Listener) and lst.address == ("127.0.0.1", 0)
    assert lst.driver_name == "line-test"
    with pytest.raises(ValueError, match="listen://HOST:PORT"):
        open_source("listen://127.0.0.1:notaport", LineDriver(), clock=WallClock(), on_output=col)


def test_device_status_from_driver_is_stamped(server):
    class StatusDriver(LineDriver):
        def feed(self, data):
            return [DeviceStatus(kind="probe_off")] if data else []

    clock = ManualClock()
    col = Collector()
    link = _link(f"socket://127.0.0.1:{server.port}", StatusDriver(), col, clock=clock)
    link.start()
    try:
        server.accept()
        col.wait_status("link_up")
        clock.advance(3.0)
        server.send(b"x")
        st = col.wait_status("probe_off")
        assert st.receive_time == clock.now()
    finally:
        link.stop()


def test_custom_scheme_registered_in_protocol_handler_packages(tmp_path, monkeypatch):
    """Like the simulator's sim://: a package in serial.protocol_handler_packages provides
    protocol_<scheme>.py, and the Link opens it by URL with nothing special."""
    pkg = tmp_path / "chairside_test_handlers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""test handlers"""\n')
    (pkg / "protocol_fakemon.py").write_text(
        '"""fakemon:// - a loop port that greets with a reading on open."""\n'
        "from serial.urlhandler.protocol_loop import Serial as _Loop\n"
        "class Serial(_Loop):\n"
        "    def from_url(self, url):\n"
        "        assert url.startswith('fakemon://')\n"
        "    def open(self):\n"
        "        super().open()\n"
        "        self.write(b'hr=77\\n')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(serial, "protocol_handler_packages", [*serial.protocol_handler_packages,
                                                               "chairside_test_handlers"])
    col = Collector()
    link = _link("fakemon://bed-3", LineDriver(), col)
    link.start()
    try:
        assert col.wait_readings(1)[0].value == 77.0
        assert link.stats.port == "fakemon://bed-3"
    finally:
        link.stop()


@pytest.mark.parametrize("url, words", [
    ("sokcet://127.0.0.1:4001", "protocol 'sokcet' not known"),
    ("socket://127.0.0.1", "expected socket://HOST:PORT"),
    ("socket://127.0.0.1:port", "expected socket://HOST:PORT"),
    ("", "no port given"),
])
def test_a_url_that_can_never_open_is_refused_at_once(url, words):
    with pytest.raises(ValueError, match=words):
        Link(url, LineDriver(), clock=WallClock(), on_output=Collector())


def test_a_missing_device_path_is_waited_for_not_refused(tmp_path):
    col = Collector()
    link = _link(str(tmp_path / "ttyUSB9"), LineDriver(), col)
    link.start()
    try:
        lost = col.wait_status("link_lost", timeout=2.0)
        assert "ttyUSB9" in lost.detail and link.running
    finally:
        link.stop()
