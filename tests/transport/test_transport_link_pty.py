"""End-to-end: Link through a real pseudo-terminal (os.openpty) opened by pyserial.

The test plays the monitor on the pty master; the link opens the slave by path. The path
is a symlink in tmp_path (as /dev/serial/by-id/... is for a USB adapter): the test removes
it before closing the master, so a retrying link never opens a pty number the kernel has
handed to another test, and re-points it to a new pty to play "the port came back".
"""

from __future__ import annotations

import os
import sys
import termios
import time
from pathlib import Path

import pytest
from transport_testkit import Collector, LineDriver, wait_until

from chairside.domain.clock import WallClock
from chairside.transport import Link, TransportConfig

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")]

FAST = TransportConfig(read_timeout_s=0.05, min_backoff_s=0.05, max_backoff_s=0.5)


class Pty:
    """A pty master (the monitor's end) with its slave reachable through a symlink."""

    def __init__(self, link: Path) -> None:
        self.master, slave = os.openpty()
        self.slave_path = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(self.master, False)
        self.link = link
        if link.is_symlink():
            link.unlink()
        link.symlink_to(self.slave_path)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_available(self) -> bytes:
        out = b""
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                return out
            if not chunk:
                return out
            out += chunk

    def close(self) -> None:
        if self.link.is_symlink() and os.readlink(self.link) == self.slave_path:
            self.link.unlink()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


@pytest.fixture
def port_path(tmp_path):
    return tmp_path / "ttyMONITOR"


def test_pty_bytes_arrive_as_readings_and_request_is_written(port_path):
    pty = Pty(port_path)
    col = Collector()
    link = Link(str(port_path), LineDriver(request=b"REQ 10\n"), clock=WallClock(), on_output=col, config=FAST)
    link.start()
    try:
        col.wait_status("link_up")
        got = bytearray()
        wait_until(lambda: got.extend(pty.read_available()) or bytes(got) == b"REQ 10\n", 2.0,
                   "the request on the master side")
        for i, chunk in enumerate([b"hr=7", b"2\nspo2=9", b"8\n"]):  # lines split across writes
            pty.write(chunk)
            if i == 0:
                time.sleep(0.05)
        readings = col.wait_readings(2)
        assert [(r.param, r.value) for r in readings] == [("hr", 72.0), ("spo2", 98.0)]
        assert all(r.receive_time is not None for r in readings)
    finally:
        link.stop()
        pty.close()


def test_pty_line_settings_are_applied(port_path):
    # GE-like defaults (19200 8E1 RTS/CTS) must reach the tty, read back with termios.
    pty = Pty(port_path)
    col = Collector()
    link = Link(str(port_path), LineDriver(), clock=WallClock(), on_output=col, config=FAST)
    link.start()
    try:
        col.wait_status("link_up")
        fd = os.open(pty.slave_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
        finally:
            os.close(fd)
        assert ispeed == termios.B19200 and ospeed == termios.B19200
        assert cflag & termios.CSIZE == termios.CS8
        # (Linux ptys force "no parity" whatever is asked, so parity is checked on the
        # pyserial object in test_settings_reach_the_pyserial_port instead.)
        assert not cflag & termios.CSTOPB  # one stop bit
        assert cflag & termios.CRTSCTS
    finally:
        link.stop()
        pty.close()


def test_pty_overrides_win_over_driver_defaults(port_path):
    pty = Pty(port_path)
    col = Collector()
    link = Link(str(port_path), LineDriver(), clock=WallClock(), on_output=col, config=FAST,
                serial={"baudrate": 9600, "parity": "N", "rtscts": False, "stopbits": 2})
    link.start()
    try:
        col.wait_status("link_up")
        fd = os.open(pty.slave_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            _, _, cflag, _, ispeed, _, _ = termios.tcgetattr(fd)
        finally:
            os.close(fd)
        assert ispeed == termios.B9600
        assert not cflag & termios.PARENB and cflag & termios.CSTOPB and not cflag & termios.CRTSCTS
    finally:
        link.stop()
        pty.close()


def test_pty_hangup_raises_link_lost_and_new_pty_reconnects(port_path):
    pty = Pty(port_path)
    col = Collector()
    driver = LineDriver()
    link = Link(str(port_path), driver, clock=WallClock(), on_output=col, config=FAST)
    link.start()
    try:
        col.wait_status("link_up")
        pty.write(b"hr=60\nhr=6")  # a half line is pending when the monitor goes away
        col.wait_readings(1)
        t0 = time.monotonic()
        pty.close()
        col.wait_status("link_lost", timeout=2.0)
        assert time.monotonic() - t0 < 2.0
        assert driver.resets >= 1  # the partial line was dropped on reconnect
        time.sleep(0.2)
        pty2 = Pty(port_path)  # the port comes back (a new pty behind the same name)
        try:
            t1 = time.monotonic()
            col.wait_status("link_up", count=2, timeout=2.0)
            assert time.monotonic() - t1 < 2.0
            pty2.write(b"1\nhr=62\n")  # "1" ends nothing: the old half line is gone
            time.sleep(0.05)
            got = col.wait_readings(2)
            assert [r.value for r in got] == [60.0, 62.0]
            assert link.stats.frames_rejected == 1  # the stray "1" line
        finally:
            link.stop()
            pty2.close()
    finally:
        link.stop()
        pty.close()
