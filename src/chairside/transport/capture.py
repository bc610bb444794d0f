"""Raw capture: keep every received byte with its receive time; read it back; replay it.

Owns: the raw-capture file format (below), ``CaptureWriter`` (the ``--raw FILE`` tee; its
``write`` fits ``Link(on_raw=...)``), ``CaptureReader`` / ``iter_capture`` /
``capture_info`` (reading, with ``CaptureError`` naming the byte offset of bad data),
``ReplaySource`` (feeds a driver from a capture at a speed factor, byte-exactly the
same chunks), ``parse_speed``.

Plain byte captures (any file without the CSRAW1 magic: the GE S/5 recordings of
../shared/vectors, a capture from another tool, ``chairside simulate --out``) replay too, with
their driver named: ``ReplaySource`` reads them through the driver and times each frame by
the device's own timestamp (S/5 record time, Masimo line time, HL7 OBX-14, OBR-7 or MSH-7), never
going backwards; a frame without one comes the driver's nominal interval
(``NOMINAL_INTERVAL_S``) after the previous one. ``capture_format`` tells the two apart.

Must not import: textual, chairside.store, chairside.alarms, chairside.service, serial.
Time: the writer takes times from its caller (the link's clock); the replay paces itself
with an injected timer/sleeper and can advance an injected ``ManualClock``.

File format (version 1, all integers little-endian)::

    file    := MAGIC record*
    MAGIC   := 89 43 53 52 41 57 31 0A          ("\\x89CSRAW1\\n", 8 bytes)
    record  := tag:1 length:u32 payload:length crc:u32
               crc = CRC-32 (zlib.crc32) of tag + length + payload
    tag "S" := segment start; payload = UTF-8 JSON object
               {"format": 1, "driver": "ge-s5", "start": "<ISO 8601 UTC>", "port": "<url>"}
    tag "D" := data chunk; payload = mono_ns:u64 utc_us:i64 bytes
               mono_ns: monotonic nanoseconds since the segment's origin (never decreasing
               within a segment); utc_us: receive time, microseconds since 1970-01-01 UTC;
               bytes: exactly what one read returned (1..16 MiB).

The first record is an "S". A writer opened on an existing capture appends a new "S"
segment (a restarted session) after the last complete record; a torn last record (the
process died mid-write) is cut off first. Every record is flushed to the OS when written,
so after a crash everything but the record being written is readable. Readers stop
quietly at a torn last record (``CaptureReader.truncated_at`` tells where) unless
``strict``; any other damage (bad magic, unknown tag, CRC mismatch, impossible length,
bad JSON) raises ``CaptureError`` with the byte offset of the bad record.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from chairside.domain.readings import DriverOutput, Reading
from chairside.drivers.base import Driver, get_driver
from chairside.transport.datapath import (
    Feeder,
    LinkStats,
    OutputCallback,
    RawCallback,
    TransportConfig,
    Watch,
    _Counters,
)

MAGIC = b"\x89CSRAW1\n"
FORMAT_VERSION = 1
TAG_SEGMENT = b"S"
TAG_DATA = b"D"
MAX_PAYLOAD = 16 * 1024 * 1024
_HEAD = struct.Struct("<cI")  # tag, payload length
_CRC = struct.Struct("<I")
_DATA_HEAD = struct.Struct("<Qq")  # mono_ns, utc_us
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CaptureError(ValueError):
    """A raw capture file is not readable; names the file and the byte offset."""

    def __init__(self, path: str | os.PathLike[str], offset: int, message: str) -> None:
        self.path = str(path)
        self.offset = offset
        super().__init__(f"{self.path}: byte offset {offset}: {message}")


def _utc_us(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("capture times must be timezone-aware (UTC)")
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_utc_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _record(tag: bytes, payload: bytes) -> bytes:
    head = _HEAD.pack(tag, len(payload))
    return head + payload + _CRC.pack(zlib.crc32(head + payload))


# -- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaptureSegment:
    """One recording run inside a capture file (a new one each time a writer is opened)."""

    driver: str
    start: datetime
    port: str
    offset: int  # byte offset of its "S" record


@dataclass(frozen=True)
class CaptureRecord:
    """One received chunk. ``elapsed_s``: seconds since the first chunk of the file, on a
    timeline that follows the monotonic clock within a segment and the UTC gap between
    segments (never negative)."""

    receive_time: datetime
    mono_ns: int
    elapsed_s: float
    data: bytes
    segment: CaptureSegment
    offset: int  # byte offset of its "D" record


class CaptureReader:
    """Iterate the records of a capture file, streaming (constant memory per record).

    After iteration: ``segments`` (all "S" records met), ``truncated_at`` (offset of a torn
    last record, or None), ``end_offset`` (bytes of complete records incl. the magic).
    """

    def __init__(self, path: str | os.PathLike[str], *, strict: bool = False) -> None:
        self.path = Path(path)
        self.strict = strict
        self.segments: list[CaptureSegment] = []
        self.truncated_at: int | None = None
        self.end_offset = 0

    def _fail(self, offset: int, message: str) -> CaptureError:
        return CaptureError(self.path, offset, message)

    def __iter__(self) -> Iterator[CaptureRecord]:
        try:
            f = self.path.open("rb")
        except OSError as exc:
            raise CaptureError(self.path, 0, f"cannot open: {exc.strerror or exc}") from None
        with f:
            yield from self._records(f)

    def _torn(self, offset: int, what: str) -> None:
        if self.strict:
            raise self._fail(offset, f"file ends inside a record ({what}); the capture was cut short")
        self.truncated_at = offset

    def _records(self, f: BinaryIO) -> Iterator[CaptureRecord]:
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            if len(magic) < len(MAGIC) and MAGIC.startswith(magic) and magic:
                self._torn(0, "magic")
                return
            raise self._fail(0, "not a Chairside raw capture (bad magic; expected \\x89CSRAW1\\n)")
        offset = len(MAGIC)
        self.end_offset = offset
        segment: CaptureSegment | None = None
        base = 0.0  # timeline seconds at mono_ns = 0 of the current segment
        last_elapsed: float | None = None
        last_utc: int | None = None
        last_mono = -1
        pending_gap = False
        while True:
            head = f.read(_HEAD.size)
            if not head:
                return
            if len(head) < _HEAD.size:
                self._torn(offset, "record header")
                return
            tag, length = _HEAD.unpack(head)
            if tag not in (TAG_SEGMENT, TAG_DATA):
                raise self._fail(offset, f"unknown record tag {tag!r} (expected 'S' or 'D')")
            if length > MAX_PAYLOAD or (tag == TAG_DATA and length <= _DATA_HEAD.size):
                raise self._fail(offset, f"impossible record length {length} for tag {tag.decode()!r}")
            payload = f.read(length)
            crc = f.read(_CRC.size)
            if len(payload) < length or len(crc) < _CRC.size:
                self._torn(offset, f"{tag.decode()!r} record of {length} bytes")
                return
            if _CRC.unpack(crc)[0] != zlib.crc32(head + payload):
                raise self._fail(offset, f"CRC mismatch in {tag.decode()!r} record (corrupt data)")
            if tag == TAG_SEGMENT:
                try:
                    meta = json.loads(payload.decode("utf-8"))
                    if not isinstance(meta, dict):
                        raise ValueError("not an object")
                    version = meta.get("format", FORMAT_VERSION)
                    if version != FORMAT_VERSION:
                        raise ValueError(f"unsupported format version {version!r}")
                    start = datetime.fromisoformat(str(meta["start"]))
                    if start.tzinfo is None:
                        raise ValueError("start time without a timezone")
                    segment = CaptureSegment(driver=str(meta.get("driver", "")), start=start,
                                             port=str(meta.get("port", "")), offset=offset)
                except (ValueError, KeyError, UnicodeDecodeError) as exc:
                    raise self._fail(offset, f"bad segment header: {exc}") from None
                self.segments.append(segment)
                pending_gap = True
                last_mono = -1
            else:
                if segment is None:
                    raise self._fail(offset, "data record before any segment header")
                mono_ns, utc_us = _DATA_HEAD.unpack_from(payload)
                if mono_ns < last_mono:
                    raise self._fail(offset, "monotonic time goes backwards within a segment")
                mono_s = mono_ns / 1e9
                if pending_gap:
                    if last_elapsed is None:
                        base = -mono_s
                    else:
                        gap = max(0.0, (utc_us - (last_utc or utc_us)) / 1e6)
                        base = last_elapsed + gap - mono_s
                    pending_gap = False
                elapsed = base + mono_s
                last_elapsed, last_utc, last_mono = elapsed, utc_us, mono_ns
                yield CaptureRecord(receive_time=_from_utc_us(utc_us), mono_ns=mono_ns,
                                    elapsed_s=elapsed, data=payload[_DATA_HEAD.size:],
                                    segment=segment, offset=offset)
            offset += _HEAD.size + length + _CRC.size
            self.end_offset = offset


def iter_capture(path: str | os.PathLike[str], *, strict: bool = False) -> Iterator[tuple[datetime, bytes]]:
    """``(receive_time, bytes)`` for every chunk of a capture, in order."""
    for rec in CaptureReader(path, strict=strict):
        yield rec.receive_time, rec.data


@dataclass(frozen=True)
class CaptureInfo:
    path: str
    segments: tuple[CaptureSegment, ...]
    records: int
    bytes: int
    first: datetime | None
    last: datetime | None
    duration_s: float
    truncated_at: int | None

    @property
    def driver(self) -> str:
        return self.segments[0].driver if self.segments else ""


def capture_info(path: str | os.PathLike[str]) -> CaptureInfo:
    """Read the whole capture once: segments, counts, time span (raises CaptureError)."""
    reader = CaptureReader(path)
    n = nbytes = 0
    first = last = None
    elapsed = 0.0
    for rec in reader:
        n += 1
        nbytes += len(rec.data)
        first = first or rec.receive_time
        last = rec.receive_time
        elapsed = rec.elapsed_s
    return CaptureInfo(str(path), tuple(reader.segments), n, nbytes, first, last, elapsed, reader.truncated_at)


def is_capture(path: str | os.PathLike[str]) -> bool:
    """True if the file starts with the capture magic (cheap; does not validate records)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def capture_format(path: str | os.PathLike[str]) -> str:
    """``"csraw"`` (our CSRAW1 format) or ``"plain"`` (bytes as they came off the wire)."""
    return "csraw" if is_capture(path) else "plain"


# Seconds between two frames when the protocol gives a frame no time of its own [S]: the
# Masimo sends one line a second (vectors README); the S/5 streams at the interval the host
# requests (our default request); HL7 senders are configured per site (one a second assumed).
NOMINAL_INTERVAL_S: dict[str, float] = {"ge-s5": 5.0, "masimo": 1.0, "hl7": 1.0}
PLAIN_CHUNK = 4096  # bytes per read of a plain capture (the size of a serial read burst)


# -- writing ---------------------------------------------------------------------------------

class CaptureWriter:
    """Append received chunks to a capture file (the ``--raw FILE`` tee).

    ``CaptureWriter(path, driver="ge-s5", start=clock.now(), port=url)`` creates the file or
    appends a new segment to an existing capture (a torn last record is cut off first; a
    file that is not a capture, or is damaged before its end, raises ``CaptureError``
    rather than being written to). ``write(receive_time, monotonic_s, data)`` matches the
    ``on_raw`` callback of ``Link`` / ``Hl7Listener``; it is thread-safe and flushes each
    record to the OS (``fsync=True`` also forces it to disk, at a cost). ``close()`` is
    idempotent; writes after it are ignored.
    """

    def __init__(self, path: str | os.PathLike[str], *, driver: str, start: datetime, port: str = "",
                 monotonic_origin: float | None = None, fsync: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._origin_ns = None if monotonic_origin is None else int(round(monotonic_origin * 1e9))
        self._last_ns = 0
        self._fsync = fsync
        self.records = 0
        self.bytes = 0
        _utc_us(start)  # validates tz-awareness
        end = None
        if self.path.exists() and self.path.stat().st_size > 0:
            reader = CaptureReader(self.path)
            for _ in reader:
                pass
            end = reader.end_offset if reader.truncated_at is None else reader.truncated_at
        if end is None:
            # a new capture holds the patient's vitals as the monitor sent them: owner only,
            # like the session file, whatever the umask
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            self._f = os.fdopen(fd, "r+b")  # noqa: SIM115 - kept open
        else:
            self._f = open(self.path, "r+b")  # noqa: SIM115 - kept open
        if end is None or end < len(MAGIC):
            self._f.seek(0)
            self._f.truncate()
            self._f.write(MAGIC)
        else:
            self._f.seek(end)
            self._f.truncate()
        meta = {"format": FORMAT_VERSION, "driver": driver, "start": start.astimezone(UTC).isoformat(),
                "port": port}
        self._f.write(_record(TAG_SEGMENT, json.dumps(meta, separators=(",", ":")).encode("utf-8")))
        self._sync()

    def _sync(self) -> None:
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())

    def write(self, receive_time: datetime, monotonic: float, data: bytes) -> None:
        if not data:
            return
        mono_ns = int(round(monotonic * 1e9))
        with self._lock:
            if self._f.closed:
                return
            if self._origin_ns is None:
                self._origin_ns = mono_ns
            rel = max(mono_ns - self._origin_ns, self._last_ns)  # never backwards
            self._last_ns = rel
            for i in range(0, len(data), MAX_PAYLOAD - _DATA_HEAD.size):
                part = data[i:i + MAX_PAYLOAD - _DATA_HEAD.size]
                self._f.write(_record(TAG_DATA, _DATA_HEAD.pack(rel, _utc_us(receive_time)) + part))
            self.records += 1
            self.bytes += len(data)
            self._sync()

    __call__ = write

    def close(self) -> None:
        with self._lock:
            if not self._f.closed:
                self._sync()
                self._f.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- replay ----------------------------------------------------------------------------------

def parse_speed(text: str | float | None) -> float | None:
    """``"max"``/None -> None (as fast as possible); ``"2"``/``2.0`` -> 2.0; else ValueError."""
    if text is None:
        return None
    if isinstance(text, str) and text.strip().lower() in ("max", "inf", "infinite"):
        return None
    try:
        speed = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"speed must be a positive number or 'max', got {text!r}") from None
    if not speed > 0 or speed != speed or speed == float("inf"):
        raise ValueError(f"speed must be a positive number or 'max', got {text!r}")
    return speed


class _CaptureClock:
    """The capture's own timeline as a Clock (for the timers and technical events)."""

    def __init__(self) -> None:
        self._utc = _EPOCH
        self._mono = 0.0

    def set(self, utc: datetime, mono: float) -> None:
        self._utc, self._mono = utc, mono

    def now(self) -> datetime:
        return self._utc

    def monotonic(self) -> float:
        return self._mono


class ReplaySource:
    """Feed a driver from a capture file, chunk by chunk, exactly as it was received.

    ``ReplaySource(path, driver=None, on_output=q.put, speed=1.0)``; ``driver`` defaults to
    the capture's own (its first segment header). ``speed``: 1 = real time, 2 = twice as
    fast, None (``parse_speed("max")``) = no waiting. Outputs carry the captured
    ``receive_time``; ``no_data`` / ``high_error_rate`` are re-derived on the capture's
    timeline (``config``). ``on_raw`` sees the same ``(receive_time, monotonic_s, data)``
    triples a live link gave the writer (so replaying into a ``CaptureWriter`` reproduces
    the bytes and times). ``clock``: an optional ``ManualClock`` advanced to each chunk's
    elapsed time (from its value at the start) so the rest of the pipeline runs on
    simulated time. ``timer``/``sleeper`` pace it (default ``time.monotonic`` and an
    interruptible wait).

    ``live_clock``: read the capture "as if it were a port" (``--port file:PATH``): outputs
    are stamped with this clock's ``now()`` when they come out (still paced by ``speed``).
    A plain byte capture (no CSRAW1 magic) needs its ``driver`` (module docstring).

    ``run()`` replays in the calling thread and returns the final ``LinkStats``;
    ``start()`` does it in a thread; ``stop()`` interrupts either promptly; ``done`` is a
    ``threading.Event`` set at the end; ``error`` holds a ``CaptureError`` met in a thread.
    """

    def __init__(self, path: str | os.PathLike[str], driver: Driver | str | None = None, *,
                 on_output: OutputCallback, speed: float | None = 1.0, clock=None,
                 timer: Callable[[], float] = time.monotonic,
                 sleeper: Callable[[float], object] | None = None,
                 on_raw: RawCallback | None = None, config: TransportConfig | None = None,
                 live_clock=None) -> None:
        self.path = Path(path)
        self.live_clock = live_clock  # "as if it were a port": receive times from this clock, not the capture's
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None (max), got {speed!r}")
        self.format = capture_format(self.path)
        if self.format == "plain":
            if not self.path.is_file():
                raise CaptureError(self.path, 0, "no such file")
            if driver is None:
                raise CaptureError(self.path, 0, "not a CSRAW1 raw capture; to replay it as plain device bytes, "
                                                 "name its driver (--driver ge-s5|masimo|hl7)")
        elif driver is None:
            reader = CaptureReader(self.path)
            seg = next(iter(reader), None)
            name = seg.segment.driver if seg else (reader.segments[0].driver if reader.segments else "")
            if not name:
                raise CaptureError(self.path, len(MAGIC), "the capture names no driver; pass one")
            driver = name
        self.driver = get_driver(driver) if isinstance(driver, str) else driver
        self.speed = speed
        self.clock = clock
        self.timer = timer
        self._stop = threading.Event()
        self.sleeper = sleeper or self._stop.wait
        self.config = config or TransportConfig()
        self._on_output = on_output
        self._counters = _Counters()
        self._tclock = _CaptureClock()
        self._feeder = Feeder(self.driver, self._tclock, self.config, self._emit, on_raw, self._counters)
        self._on_raw = on_raw
        self._watch = Watch(self._tclock, self.config)
        self._state = "idle"
        self._thread: threading.Thread | None = None
        self.done = threading.Event()
        self.error: Exception | None = None

    def _emit(self, outputs: list[DriverOutput]) -> None:
        if outputs:
            self._on_output(outputs)

    @property
    def stats(self) -> LinkStats:
        c = self._counters
        st = self.driver.stats
        return LinkStats(port=str(self.path), driver=self.driver.name or type(self.driver).__name__,
                         state=self._state, bytes_in=c.bytes_in, chunks=c.chunks, readings=c.readings,
                         readings_per_min=self._feeder.readings_per_min(),
                         frames_decoded=st.frames_decoded, frames_rejected=st.frames_rejected,
                         bytes_skipped=st.bytes_skipped, last_error=c.last_error, errors=tuple(c.errors))

    def run(self) -> LinkStats:
        self._state = "replaying"
        try:
            if self.format == "plain":
                self._replay_plain()
            else:
                self._replay()
        finally:
            self._state = "stopped" if self._stop.is_set() else "finished"
            self.done.set()
        return self.stats

    def _replay(self) -> None:
        clock_base = self.clock.monotonic() if self.clock is not None else 0.0
        real0: float | None = None
        last: CaptureRecord | None = None
        for rec in CaptureReader(self.path):
            if self._stop.is_set():
                return
            if self.speed is not None:
                if real0 is None:
                    real0 = self.timer() - rec.elapsed_s / self.speed
                wait = real0 + rec.elapsed_s / self.speed - self.timer()
                if wait > 0:
                    self.sleeper(wait)
                    if self._stop.is_set():
                        return
            if last is None:
                self._tclock.set(rec.receive_time, rec.elapsed_s)
                self._watch.restart()
            else:
                quiet_end = last.elapsed_s + self.config.no_data_after_s
                if rec.elapsed_s >= quiet_end and not self._watch.no_data_active:
                    self._tclock.set(last.receive_time + timedelta(seconds=self.config.no_data_after_s),
                                     quiet_end)
                    self._emit(self._watch.tick()[0])
            self._tclock.set(rec.receive_time, rec.elapsed_s)
            if self.clock is not None and hasattr(self.clock, "set"):
                self.clock.set(max(self.clock.monotonic(), clock_base + rec.elapsed_s))
            self._emit(self._watch.data())
            when = self.live_clock.now() if self.live_clock is not None else rec.receive_time
            self._feeder.received(rec.data, receive_time=when, monotonic=rec.elapsed_s)
            self.driver.take_output()  # nobody to answer during a replay
            last = rec

    def _pace(self, elapsed_s: float, real0: float | None) -> tuple[bool, float | None]:
        """Wait until ``elapsed_s`` of the capture at the replay speed; (stopped, real0)."""
        if self.speed is None:
            return self._stop.is_set(), real0
        if real0 is None:
            real0 = self.timer() - elapsed_s / self.speed
        wait = real0 + elapsed_s / self.speed - self.timer()
        if wait > 0:
            self.sleeper(wait)
        return self._stop.is_set(), real0

    def _replay_plain(self) -> None:
        """A plain byte file through the driver, each frame at its device time (module docstring)."""
        clock_base = self.clock.monotonic() if self.clock is not None else 0.0
        drv = self.driver
        step = timedelta(seconds=NOMINAL_INTERVAL_S.get(drv.name, 1.0))
        try:
            start_guess = (_plain_start(self.path, drv, step)
                           or datetime.fromtimestamp(self.path.stat().st_mtime, UTC))
        except OSError as exc:
            raise CaptureError(self.path, 0, f"cannot read: {exc.strerror or exc}") from None
        first: datetime | None = None
        last: datetime | None = None
        real0: float | None = None
        c = self._counters
        size = 0
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CaptureError(self.path, 0, f"cannot read: {exc.strerror or exc}") from None
        with f:
            while True:
                if self._stop.is_set():
                    return
                chunk = f.read(PLAIN_CHUNK)
                outputs = drv.feed(chunk) if chunk else drv.flush()
                if chunk:
                    size += len(chunk)
                    c.bytes_in += len(chunk)
                    c.chunks += 1
                drv.take_output()  # nobody to answer during a replay
                for group in _by_frame(outputs):
                    dev = next((x.device_time for x in group if x.device_time is not None), None)
                    if dev is None:
                        t = last + step if last is not None else start_guess
                    else:
                        t = dev if last is None or dev >= last else last
                    if first is None:
                        first = t
                        self._tclock.set(t, 0.0)
                        self._watch.restart()
                    elapsed = (t - first).total_seconds()
                    stopped, real0 = self._pace(elapsed, real0)
                    if stopped:
                        return
                    if last is not None:
                        quiet_end = (last - first).total_seconds() + self.config.no_data_after_s
                        if elapsed >= quiet_end and not self._watch.no_data_active:
                            self._tclock.set(last + timedelta(seconds=self.config.no_data_after_s), quiet_end)
                            self._emit(self._watch.tick()[0])
                    self._tclock.set(t, elapsed)
                    if self.clock is not None and hasattr(self.clock, "set"):
                        self.clock.set(max(self.clock.monotonic(), clock_base + elapsed))
                    self._emit(self._watch.data())
                    when = self.live_clock.now() if self.live_clock is not None else t
                    stamped = [x if x.receive_time is not None else x.model_copy(update={"receive_time": when})
                               for x in group]
                    n = sum(1 for x in stamped if isinstance(x, Reading))
                    c.readings += n
                    self._emit(stamped)
                    last = t
                if chunk and self._on_raw is not None:  # the chunk, at the time of its last frame
                    t_raw = last or start_guess
                    self._on_raw(t_raw, (t_raw - (first or t_raw)).total_seconds(), chunk)
                if not chunk:
                    break
        st = drv.stats
        if first is None and st.frames_decoded == 0:
            raise CaptureError(self.path, 0, f"no {drv.name} frame in its {size} bytes (tried: CSRAW1 raw capture, "
                                             f"plain {drv.name} bytes)")

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("ReplaySource.start() called twice")

        def target() -> None:
            try:
                self.run()
            except Exception as exc:  # noqa: BLE001 - surfaced through .error
                self.error = exc
                self._counters.error(str(exc))
                self.done.set()

        self._thread = threading.Thread(target=target, name=f"chairside-replay {self.path.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the end of a started replay; True if it finished."""
        return self.done.wait(timeout)


def _by_frame(outputs: list[DriverOutput]) -> list[list[DriverOutput]]:
    """Outputs split into frames: consecutive outputs of one device time (one S/5 record, one
    Masimo line, the observations of one HL7 time). Without a time, a reading of a
    parameter the group already has starts the next frame (a line without its time stamp);
    a status without a time joins the group before it."""
    groups: list[list[DriverOutput]] = []
    key: object = object()
    seen: set[tuple[str, str]] = set()
    for x in outputs:
        t = x.device_time
        if groups and (t == key if t is not None else True):
            if not (t is None and isinstance(x, Reading) and (x.param, x.source) in seen):
                groups[-1].append(x)
                if isinstance(x, Reading):
                    seen.add((x.param, x.source))
                continue
        groups.append([x])
        key = t
        seen = {(x.param, x.source)} if isinstance(x, Reading) else set()
    return groups


def _plain_start(path: Path, driver: Driver, step: timedelta) -> datetime | None:
    """The time of a plain capture's first frame: the first device time in it, less one
    nominal step per frame before it that has none. None when no frame has a time."""
    try:
        fresh = type(driver)()
    except TypeError:
        return None
    before = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(PLAIN_CHUNK * 16)
            for group in _by_frame(fresh.feed(chunk) if chunk else fresh.flush()):
                dev = next((x.device_time for x in group if x.device_time is not None), None)
                if dev is not None:
                    return dev - step * before
                if any(isinstance(x, Reading) for x in group):
                    before += 1
            if not chunk:
                return None
