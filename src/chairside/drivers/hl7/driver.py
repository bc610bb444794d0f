"""The HL7 v2 driver: a byte stream of MLLP blocks or plain messages -> readings, device
alarms and ACKs (IHE PCD-01 ORU^R01, PCD-04 ORU^R40); sans-I/O.

Owns: ``Hl7Driver`` (framing, the message checks, the message's end: its outputs and its
ACK). What an OBX or an alarm group means is ``chairside.drivers.hl7.observations``; the
syntax (delimiters, escapes, times, MSH) ``.syntax``; the ACK message ``.ack``.
Must not import: serial, sockets, threads, clocks, textual, any chairside package other
than ``chairside.domain`` and ``chairside.drivers``.

Framing: MLLP blocks ``0x0B message 0x1C 0x0D`` and plain messages whose segments end with
CR, LF or CR LF are both accepted on the same stream. Segments are parsed as they complete,
so a reading is out as soon as its OBX segment has arrived. A message ends at 0x1C, at the
next MSH or 0x0B, at a blank line, or at ``flush()`` (end of input).

Messages checked (an MLLP message's readings are held until its end and dropped when it
is rejected; a plain message's readings go out as they arrive):
``AR`` (reject, nothing read): MSH-9 not ``ORU^R01``/``ORU^R40`` (0357 code 200, 201 for
another ORU event), MSH-12 not ``2.x`` (203), a message larger than
``max_message_bytes`` (207; the rest of the block is skipped without being buffered), an
MLLP block without an MSH segment, binary junk included (100);
``AE`` (accepted, with errors): an OBX-5 of a parameter we read that is not a number (102,
ERR-2 ``OBX^<n>^5``; the reading is missing, the rest of the message counts);
``AA`` otherwise.

Counters: ``frames_decoded`` = messages accepted (AA/AE); ``frames_rejected`` = messages or
MLLP blocks rejected (AR); ``bytes_skipped`` = bytes outside any message, of a rejected
oversize block, or a segment dropped for exceeding ``MAX_BUFFER``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timezone
from typing import ClassVar

from chairside.domain.readings import DriverOutput
from chairside.drivers.base import Driver, SerialDefaults
from chairside.drivers.hl7.ack import MAX_ERR, ack_block, wants_ack
from chairside.drivers.hl7.observations import MAX_ALARM_GROUPS, MAX_ALARM_OBX, alarm, observation
from chairside.drivers.hl7.syntax import HL7_ERRORS, Message, parse_ts

VT = 0x0B  # MLLP start block
FS = 0x1C  # MLLP end block (followed by CR)
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20  # 1 MiB: a PCD-01 message is a few kB; beyond this: AR, dropped
_DELIMS = re.compile(rb"([\x0b\x1c\r\n])")


class Hl7Driver(Driver):
    """HL7 v2 ORU^R01 vitals and ORU^R40 alarms, over MLLP or plain CR/LF-separated text."""

    name: ClassVar[str] = "hl7"
    serial_defaults: ClassVar[SerialDefaults] = SerialDefaults(baudrate=9600, bytesize=8, parity="N", stopbits=1)
    MAX_BUFFER: ClassVar[int] = 64 * 1024  # longest segment we hold while waiting for its end

    def __init__(self, ack: bool = True, receiving_app: str = "CHAIRSIDE", receiving_facility: str = "",
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        super().__init__()
        if max_message_bytes < 1024:
            raise ValueError(f"hl7 max_message_bytes must be at least 1024, got {max_message_bytes!r}")
        self.ack = ack
        self.max_message_bytes = int(max_message_bytes)
        self.receiving_app = receiving_app.encode()
        self.receiving_facility = receiving_facility.encode()
        self._buf = b""
        self._discard = False  # dropping the rest of an over-long segment
        self._mllp = False  # inside an MLLP block
        self._block_has_msh = False
        self._block_bytes = 0  # bytes of the current MLLP block so far
        self._oversize = False  # the current MLLP block passed max_message_bytes: skipping to its end
        self._pending_reject: str | None = None  # why a block without a message is rejected
        self._prev_delim = 0
        self._msg: Message | None = None
        self._out = bytearray()
        self._last_nibp: dict[tuple[str, str], tuple[float | None, bytes]] = {}
        self._ts_cache: dict[tuple[bytes, timezone], datetime | None] = {}
        self.acks = {"AA": 0, "AE": 0, "AR": 0}  # replies queued, by acknowledgement code

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def in_block(self) -> bool:
        """True while a message is arriving: inside an MLLP block, or part of a segment held."""
        return self._mllp or self._oversize or bool(self._buf)

    def reset(self) -> None:
        self._buf = b""
        self._discard = False
        self._mllp = False
        self._oversize = False
        self._pending_reject = None
        self._block_bytes = 0
        self._msg = None
        self._prev_delim = 0

    def take_output(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def flush(self) -> list[DriverOutput]:
        """End of input: the last segment and message are complete even without a terminator."""
        out: list[DriverOutput] = []
        try:
            if self._buf and not self._discard and not self._oversize:
                self._segment(self._buf, out)
            self._buf = b""
            self._discard = False
            self._end_message(out)
        except Exception as exc:  # pragma: no cover - defensive
            self.stats.reject(f"internal error at end of input: {exc!r}")
        return out

    # --- bytes -> segments --------------------------------------------------------------
    def feed(self, data: bytes) -> list[DriverOutput]:
        out: list[DriverOutput] = []
        try:
            self._feed(data, out)
        except Exception as exc:  # pragma: no cover - defensive: feed never raises
            self.stats.reject(f"internal error: {exc!r}")
            self.reset()
        return out

    def _feed(self, data: bytes, out: list[DriverOutput]) -> None:
        if self._oversize:
            # an MLLP block past the size cap: nothing of it is kept until its end (0x1C) or a new block
            end = min((i for i in (data.find(b"\x1c"), data.find(b"\x0b")) if i >= 0), default=-1)
            if end < 0:
                self.stats.bytes_skipped += len(data)
                return
            self.stats.bytes_skipped += end
            data = data[end:]  # the loop below ends the block at this delimiter
            self._buf = b""
        buf = self._buf + data if self._buf else bytes(data)
        parts = _DELIMS.split(buf)
        rest = parts.pop()
        it = iter(parts)
        for seg in it:
            delim = next(it)[0]
            if self._mllp and not self._oversize:
                self._block_bytes += len(seg) + 1
                if self._block_bytes > self.max_message_bytes:
                    self._too_big()
            if self._oversize:
                if delim not in (FS, VT):
                    self.stats.bytes_skipped += len(seg) + 1
                    continue
                self.stats.bytes_skipped += len(seg)
                self._oversize = False
            elif self._discard:
                self.stats.bytes_skipped += len(seg) + 1
                self._discard = False
            elif seg:
                self._segment(seg, out)
            elif delim == 0x0A and self._prev_delim == 0x0D:
                pass  # the LF of a CR LF pair
            elif delim in (0x0A, 0x0D) and self._prev_delim in (0x0A, 0x0D) and not self._mllp:
                self._end_message(out)  # a blank line ends a plain message
            if delim == VT:
                if self._mllp:  # a new block before the old one ended: the old one is complete
                    self._end_block(out)
                self._end_message(out)
                self._mllp = True
                self._block_has_msh = False
                self._block_bytes = 0
            elif delim == FS:
                if self._mllp:
                    self._end_block(out)
                else:
                    self._end_message(out)
                self._mllp = False
                self._block_bytes = 0
            self._prev_delim = delim
        if self._oversize or (self._mllp and self._block_bytes + len(rest) > self.max_message_bytes):
            self.stats.bytes_skipped += len(rest)
            if not self._oversize:
                self._too_big()
            self._buf = b""
            return
        if len(rest) > self.MAX_BUFFER:
            self.stats.bytes_skipped += len(rest)
            rest = b""
            self._discard = True
        self._buf = rest
    def _too_big(self) -> None:
        """The current MLLP block passed ``max_message_bytes``: reject it (AR at its end), keep nothing."""
        self._oversize = True
        self._buf = b""
        detail = f"message larger than {self.max_message_bytes} bytes"
        if self._msg is not None:
            self._msg.reject = ("207", HL7_ERRORS["207"], "", detail)
            self._msg.held.clear()
            self._msg.alarms.clear()
        else:
            self._pending_reject = detail

    def _end_block(self, out: list[DriverOutput]) -> None:
        """An MLLP block ended (0x1C, or a new 0x0B): finish its message, or answer a block
        that held no HL7 message at all."""
        if self._msg is not None:
            self._end_message(out)
            return
        if not self._block_has_msh and (self._block_bytes or self._pending_reject):
            detail = self._pending_reject or "block without an MSH segment: not an HL7 message"
            self._pending_reject = None
            self.stats.reject(f"MLLP {detail}")
            if self.ack:
                self._queue_ack("AR", None, [("100" if "MSH" in detail else "207",
                                               HL7_ERRORS["100" if "MSH" in detail else "207"], "", detail)])

    # --- segments -------------------------------------------------------------------------
    def _segment(self, seg: bytes, out: list[DriverOutput]) -> None:
        head = seg[:3]
        msg = self._msg
        if head == b"MSH":
            self._end_message(out)
            fs = seg[3:4] or b"|"
            fields = seg.split(fs)
            if len(fields) < 10:
                self.stats.reject(f"MSH segment with {len(fields)} fields (at least MSH-10 needed): {seg[:40]!r}")
                self.stats.bytes_skipped += len(seg) + 1
                return
            self._msg = Message(fields, fs, self._mllp)
            if self._mllp:
                self._block_has_msh = True
            return
        if msg is None:
            self.stats.bytes_skipped += len(seg) + 1
            return
        msg.segments += 1
        if not msg.mllp:
            msg.nbytes += len(seg) + 1
            if msg.nbytes > self.max_message_bytes:  # a plain message past the cap: end it here
                self.stats.reject(f"plain message larger than {self.max_message_bytes} bytes: rest skipped")
                self._msg = None
                self.stats.frames_decoded += 1
                return
        if msg.reject is not None:
            return  # a rejected message: nothing of it is read
        if head == b"OBX":
            msg.obx += 1
            fields = seg.split(msg.fs)
            if msg.trigger == b"R40":
                if msg.alarms and len(msg.alarms[-1]) < MAX_ALARM_OBX:
                    msg.alarms[-1].append(fields)
                elif not msg.alarms:
                    msg.alarms.append([fields])
                return
            reading = observation(msg, fields, self._ts, self._last_nibp)
            if reading is not None:
                (msg.held if msg.mllp else out).append(reading)
                self.stats.readings += 1
        elif head == b"OBR":
            fields = seg.split(msg.fs)
            msg.obr_time = self._ts(fields[7]) if len(fields) > 7 and fields[7] else None
            if msg.trigger == b"R40" and len(msg.alarms) < MAX_ALARM_GROUPS:
                msg.alarms.append([fields])

    def _ts(self, raw: bytes, tz: timezone | None = None) -> datetime | None:
        msg_tz = tz or (self._msg.tz if self._msg is not None else UTC)
        key = (raw, msg_tz)
        cache = self._ts_cache
        if key in cache:
            return cache[key]
        if len(cache) > 256:
            cache.clear()
        when = cache[key] = parse_ts(raw.split(self._msg.cs if self._msg else b"^", 1)[0], msg_tz)
        return when

    # --- end of message ---------------------------------------------------------------------
    def _end_message(self, out: list[DriverOutput]) -> None:
        msg = self._msg
        if msg is None:
            return
        self._msg = None
        if msg.reject is not None:
            # AR: the message is not read at all; what it held is dropped
            self.stats.reject(f"{msg.reject[1]}: {msg.reject[3]}")
            msg.held.clear()
            code = "AR"
        else:
            self.stats.frames_decoded += 1
            code = "AE" if msg.errors else "AA"
            out += msg.held
            if msg.alarms:
                for group in msg.alarms:
                    status = alarm(msg, group, self._ts)
                    if status is not None:
                        out.append(status)
        if msg.mllp and self.ack:
            if wants_ack(msg.field(15).strip(), code):
                self._queue_ack(code, msg, [msg.reject] if msg.reject is not None else msg.errors[:MAX_ERR])

    def _queue_ack(self, code: str, msg: Message | None, errors) -> None:
        """Queue an MLLP-framed ACK for ``take_output()`` (``chairside.drivers.hl7.ack``)."""
        self.acks[code] += 1
        self._out += ack_block(code, msg, errors, receiving_app=self.receiving_app,
                               receiving_facility=self.receiving_facility)
