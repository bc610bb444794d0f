"""Raw capture files: keep every received byte with its receive time; read it back.

Owns: the raw-capture file format (below), ``CaptureWriter`` (the ``--raw FILE`` tee; its
``write`` fits ``Link(on_raw=...)``), ``CaptureReader`` / ``iter_capture`` /
``capture_info`` (reading, with ``CaptureError`` naming the byte offset of bad data), and
format detection (``is_capture``, ``capture_format``: our CSRAW1 file or plain device bytes).
Replaying a capture through a driver is ``chairside.transport.replay_source``.

Must not import: textual, chairside.store, chairside.alarms, chairside.service, serial,
chairside.drivers (a capture is bytes and times; decoding them is the replay's business).
Time: the writer takes times from its caller (the link's clock).

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
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

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
