"""Helpers for the transport tests: a tiny line-based driver, polling with deadlines, servers.

Not a test module (no test_ functions). Imported by name from tests/transport/ (unique name).
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable

from chairside.domain.readings import DeviceStatus, Reading
from chairside.drivers.base import Driver, SerialDefaults


class LineDriver(Driver):
    """``KEY=VALUE\\n`` lines -> one Reading each; anything else is a rejected frame.

    ``request`` is what ``on_connect`` returns (a GE-style host request); ``stall_request``
    what ``on_stream_stalled`` returns; with ``ack`` every good line queues ``ACK <key>\\n``.
    """

    name = "line-test"
    serial_defaults = SerialDefaults(baudrate=19200, parity="E", rtscts=True)
    MAX_BUFFER = 4096

    def __init__(self, request: bytes = b"", stall_request: bytes | None = None, ack: bool = False) -> None:
        super().__init__()
        self.request = request
        self.stall_request = request if stall_request is None else stall_request
        self.ack = ack
        self._buf = bytearray()
        self._out = bytearray()
        self.resets = 0

    def feed(self, data: bytes):
        self._buf += data
        out = []
        while b"\n" in self._buf:
            line, _, rest = bytes(self._buf).partition(b"\n")
            self._buf = bytearray(rest)
            key, eq, val = line.strip().partition(b"=")
            try:
                value = float(val) if eq else None
            except ValueError:
                value = None
            if value is None or not key.isalnum():
                self.stats.reject(f"bad line {line[:20]!r}")
                self.stats.bytes_skipped += len(line) + 1
                continue
            self.stats.frames_decoded += 1
            self.stats.readings += 1
            out.append(Reading(param=key.decode(), value=value, unit="/min"))
            if self.ack:
                self._out += b"ACK " + key + b"\n"
        if len(self._buf) > self.MAX_BUFFER:
            self.stats.bytes_skipped += len(self._buf)
            self._buf.clear()
        return out

    def on_connect(self) -> bytes:
        return self.request

    def on_stream_stalled(self) -> bytes:
        return self.stall_request

    def take_output(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def reset(self) -> None:
        self._buf.clear()
        self.resets += 1


class Collector:
    """Thread-safe sink for ``on_output``; query with deadlines."""

    def __init__(self) -> None:
        self.q: queue.Queue = queue.Queue()
        self.items: list = []
        self.batches = 0

    def __call__(self, batch) -> None:
        assert isinstance(batch, list) and batch, "on_output must get a non-empty list"
        self.q.put(batch)

    def _drain(self) -> None:
        while True:
            try:
                batch = self.q.get_nowait()
            except queue.Empty:
                return
            self.batches += 1
            self.items.extend(batch)

    def readings(self) -> list[Reading]:
        self._drain()
        return [i for i in self.items if isinstance(i, Reading)]

    def statuses(self, kind: str | None = None) -> list[DeviceStatus]:
        self._drain()
        return [i for i in self.items if isinstance(i, DeviceStatus) and (kind is None or i.kind == kind)]

    def wait_for(self, pred: Callable[[], object], timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            got = pred()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; got {self.items!r}")
            time.sleep(0.01)

    def wait_status(self, kind: str, active: bool = True, count: int = 1, timeout: float = 3.0):
        return self.wait_for(
            lambda: [s for s in self.statuses(kind) if s.active is active][count - 1:count],
            timeout, f"{count} x {kind} active={active}")[0]

    def wait_readings(self, n: int, timeout: float = 3.0) -> list[Reading]:
        self.wait_for(lambda: len(self.readings()) >= n, timeout, f"{n} readings")
        return self.readings()


def wait_until(pred: Callable[[], object], timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class OneShotServer:
    """A 127.0.0.1 TCP server accepting one client at a time, recording what it receives."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.conn: socket.socket | None = None
        self.received = bytearray()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def accept(self, timeout: float = 3.0) -> socket.socket:
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        conn.settimeout(0.05)
        self.conn = conn
        self._reader = threading.Thread(target=self._read, args=(conn,), daemon=True)
        self._reader.start()
        return conn

    def _read(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.received += data

    def got(self) -> bytes:
        with self._lock:
            return bytes(self.received)

    def send(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def drop_client(self) -> None:
        if self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.drop_client()
        self.sock.close()


class MllpTestDriver(Driver):
    """A minimal MLLP framer standing in for the hl7 driver: one Reading per OBX with a
    numeric value (param = the MDC code number), and an ``MSA|AA|<MSH-10>`` ACK per message."""

    name = "mllp-test"

    def __init__(self) -> None:
        super().__init__()
        self._buf = bytearray()
        self._out = bytearray()

    def feed(self, data: bytes):
        self._buf += data
        out = []
        while True:
            start = self._buf.find(b"\x0b")
            if start < 0:
                self.stats.bytes_skipped += len(self._buf)
                self._buf.clear()
                break
            end = self._buf.find(b"\x1c\x0d", start)
            if end < 0:
                del self._buf[:start]
                break
            msg = bytes(self._buf[start + 1:end])
            del self._buf[:end + 2]
            segs = [s.split("|") for s in msg.decode("latin-1").split("\r") if s]
            if not segs or segs[0][0] != "MSH":
                self.stats.reject("no MSH")
                continue
            self.stats.frames_decoded += 1
            for seg in segs:
                if seg[0] == "OBX" and len(seg) > 5 and seg[2] == "NM":
                    out.append(Reading(param=seg[3].split("^")[0], value=float(seg[5]), unit=seg[6].split("^")[0]))
            ctrl = segs[0][9]
            self._out += (b"\x0bMSH|^~\\&|CHAIRSIDE||||||ACK|" + ctrl.encode() + b"|P|2.6\rMSA|AA|"
                          + ctrl.encode() + b"\r\x1c\x0d")
        return out

    def take_output(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out


def hl7_vector_messages(vectors_dir) -> list[str]:
    """The messages of the IHE appendix E vector file: segments joined with CR, comments dropped."""
    text = (vectors_dir / "hl7" / "ihe-pcd-tf-appendix-e.hl7.txt").read_text(encoding="utf-8")
    messages: list[list[str]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("MSH|"):
            messages.append([])
        messages[-1].append(line)
    return ["\r".join(m) + "\r" for m in messages]


def mllp(message: str) -> bytes:
    return b"\x0b" + message.encode("utf-8") + b"\x1c\x0d"


def read_mllp_ack(sock: socket.socket, timeout: float = 3.0) -> str:
    """Read one MLLP-framed message from a socket (with a deadline) and return its text."""
    sock.settimeout(0.05)
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\x1c\x0d" not in buf:
        if time.monotonic() > deadline:
            raise AssertionError(f"no MLLP ACK within {timeout} s; got {buf!r}")
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            raise AssertionError(f"connection closed before an ACK; got {buf!r}")
        buf += chunk
    assert buf.startswith(b"\x0b"), f"ACK not MLLP-framed: {buf!r}"
    return buf[1:buf.index(b"\x1c\x0d")].decode("utf-8")


def msa(ack_text: str) -> list[str]:
    for seg in ack_text.split("\r"):
        if seg.startswith("MSA|"):
            return seg.split("|")
    raise AssertionError(f"no MSA segment in ACK {ack_text!r}")
