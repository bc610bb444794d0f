"""HL7 v2 observation driver (IHE PCD-01 ORU^R01, PCD-04 ORU^R40 alarms): sans-I/O.

Owns: ``Hl7Driver`` (MLLP-framed or plain CR/LF-separated messages -> readings and device
alarms; ACKs for MLLP senders), and ``encode_oru_r01`` (one PCD-01 message, for the
simulator).
Must not import: serial, sockets, threads, clocks, textual, any chairside package other
than ``chairside.domain`` and ``chairside.drivers.base``.

Framing: MLLP blocks ``0x0B message 0x1C 0x0D`` and plain messages whose segments end with
CR, LF or CR LF are both accepted on the same stream. Segments are parsed as they complete,
so a reading is out as soon as its OBX segment has arrived. A message ends at 0x1C, at the
next MSH or 0x0B, at a blank line, or at ``flush()`` (end of input).

Reading (ISO/IEEE 11073 MDC code *numbers* in OBX-3, never the text; ../shared/vectors):

* NIBP 150021/150022/150023 and the cuff variants 150301/150302/150303 -> ``nibp_sys``,
  ``nibp_dia``, ``nibp_map``; ECG HR 147842 -> ``hr``; SpO2 150456 -> ``spo2``; pulse rate
  149530 -> ``pr`` (source ``spo2``), 149546 -> ``pr`` (source ``nibp``); extra: resp rate
  151562 -> ``rr``, perfusion index 150448 -> ``pi``.
* Units from OBX-6, MDC code number or text (``266016``/``MDC_DIM_MMHG``) or UCUM
  (``mm[Hg]``, ``{beat}/min``, ``%``); kPa pressures are converted to mmHg (flag
  ``converted:kPa``); an unknown unit keeps the value but marks it invalid (``unit:<text>``).
* Missing: empty OBX-5 (flag ``empty``), a vendor sentinel from
  ``chairside/data/hl7_sentinels.toml`` (flag ``sentinel:<n>``), a non-number
  (``not_numeric:<text>``: OBX-5 of an NM must be ``[sign]digits[.digits]``, so ``1_000``,
  ``1e3``, ``NaN`` and ``inf``, which Python's ``float()`` would take, are not numbers), and
  a value the drivers' one validity rule (``chairside.drivers.base.check_value``, bounds in
  ``chairside/data/plausible.toml``) calls impossible, after unit conversion
  (``negative:<v>``, ``out_of_range:<v>``, ``not_finite:<v>``).
* Result status (OBX-11, HL7 Table 0085) and measurement status (OBX-8 codes of ISO/IEEE
  11073 MeasurementStatus, IHE PCD TF-2 Appendix B.8, Tables B.8.5-6 and B.8.5-7):

  ====================================  =====================================================
  status                                 reading
  ====================================  =====================================================
  OBX-11 ``F`` ``C`` ``P`` ``R`` ``S``   a result: valid
  ``U`` or empty
  OBX-11 ``X`` with a value               **questionable**: kept, valid, flags
                                          ``questionable``, ``status:X``. Table B.8.5-6 maps
                                          11073 invalid / not-available / msmt-ongoing to
                                          ``X``, but gateways (the IHE Philips example) send
                                          ``X`` on every OBX, good values too (vectors README);
                                          with OBX-8 ``INV``/``NAV``/``BUSY`` it is invalid
  OBX-11 ``X`` without a value            missing (``empty``, ``status:X``)
  OBX-11 ``W`` ``D`` ``N`` ``O`` ``I``    not a value of the patient: invalid (``status:W``...)
  any other OBX-11 letter                 questionable (``questionable``, ``status:<c>``)
  OBX-8 ``QUES`` ``CAL`` ``EARLY``        questionable (``questionable``, ``abnormal:QUES``)
  OBX-8 ``INV`` ``NAV`` ``BUSY`` ``TEST``  invalid (``abnormal:<code>``): not a measurement of
  ``DEMO`` ``OFF`` ``NI`` ``NA`` ``MSK``  this patient now (test/demo data, being measured,
  ``OTH`` ``NAN`` ``PINF`` ``NINF``       off, a null flavour)
  ====================================  =====================================================

  A questionable value is never dropped: the alarm engine evaluates it like any valid
  value and marks an alarm it raises as raised on a questionable value. Why not a separate
  technical "questionable data" alarm: in PCD-01 a questionable measurement is still a
  reported result (11073 ``questionable`` maps to OBX-11 ``R`` + OBX-8 ``QUES``, Table
  B.8.5-6), and the physiological/technical split of an alarm follows its source (PCD-04
  OBX-8 ``SP``/``ST``, Table B.8.5-10): a limit crossed by the patient's value is a
  physiological condition, the doubt about the value is a property of it. So the alarm keeps
  its rule, priority, delay, latching and escalation, and the nurse sees that the value
  needs checking (a repeat cuff), instead of a second alarm for one condition.
* Time: OBX-14, else OBR-7 (HL7 TS with optional ``+/-ZZZZ``; without an offset the MSH-7
  offset applies, else UTC); when neither is present (OBR-7 is required by PCD-01), MSH-7,
  the message's own time, with the flag ``time:MSH-7``; None without any.
* NIBP (and pulse rate from NIBP) with an OBX-14 is emitted once per measurement: an
  observation repeating the last emitted value and OBX-14 of its parameter is skipped.
* ORU^R40: each OBR group is one alarm -> ``DeviceStatus(kind="device_alarm")`` with the
  event code/text in ``detail``, the parameter from the group's numeric OBX (or the
  containment in OBX-4), priority from OBX-8 (PH/PM/PL -> high/medium/low), phase, state
  and inactivation state in ``flags``; ``active`` False when the phase is end/stop or the
  state inactive. Emitted when the message ends.
* Escape sequences (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``, ``\\Xhh\\``, HL7 v2.6 2.7.4) are decoded in the
  text fields we keep (alarm text, phase/state, unit text): ``unescape``.
* Messages checked (an MLLP message's readings are held until its end and dropped when it
  is rejected; a plain message's readings go out as they arrive):
  ``AR`` (reject, nothing read): MSH-9 not ``ORU^R01``/``ORU^R40`` (0357 code 200, 201 for
  another ORU event), MSH-12 not ``2.x`` (203), a message larger than
  ``max_message_bytes`` (207; the rest of the block is skipped without being buffered), an
  MLLP block without an MSH segment, binary junk included (100);
  ``AE`` (accepted, with errors): an OBX-5 of a parameter we read that is not a number (102,
  ERR-2 ``OBX^<n>^5``; the reading is missing, the rest of the message counts);
  ``AA`` otherwise.
* ACK: for a message (or a block) that came in an MLLP block, an MLLP-framed ``ACK`` with
  ``MSA|<code>|<control id>`` and one ``ERR`` per error (ERR-2 location, ERR-3
  ``code^text^HL70357``, ERR-4 ``E``, ERR-8 what was wrong) is queued for
  ``take_output()`` when MSH-15 is ``AL``, ``SU`` or empty (original mode), or ``ER`` and
  the code is not AA; never for ``NE``. A block that is not HL7 always gets its ``AR`` (the
  sender can log it). The ACK's MSH-7 repeats the message's (drivers have no clock).
  ``acks`` counts the replies by code.

Counters: ``frames_decoded`` = messages accepted (AA/AE); ``frames_rejected`` = messages or
MLLP blocks rejected (AR); ``bytes_skipped`` = bytes outside any message, of a rejected
oversize block, or a segment dropped for exceeding ``MAX_BUFFER``.
"""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import ClassVar

from chairside.domain.readings import DeviceStatus, DriverOutput
from chairside.drivers._fast import reading as _reading
from chairside.drivers._fast import status as _status
from chairside.drivers.base import Driver, SerialDefaults, check_value, parse_number

VT = 0x0B  # MLLP start block
FS = 0x1C  # MLLP end block (followed by CR)

# MDC code number -> (param, source)
CODES: dict[bytes, tuple[str, str]] = {
    b"150021": ("nibp_sys", "nibp"),
    b"150022": ("nibp_dia", "nibp"),
    b"150023": ("nibp_map", "nibp"),
    b"150301": ("nibp_sys", "nibp"),
    b"150302": ("nibp_dia", "nibp"),
    b"150303": ("nibp_map", "nibp"),
    b"147842": ("hr", "ecg"),
    b"150456": ("spo2", "spo2"),
    b"149530": ("pr", "spo2"),
    b"149546": ("pr", "nibp"),
    b"151562": ("rr", "resp"),
    b"150448": ("pi", "spo2"),
}
PARAM_UNIT: dict[str, str] = {
    "nibp_sys": "mmHg", "nibp_dia": "mmHg", "nibp_map": "mmHg", "hr": "bpm", "pr": "bpm",
    "spo2": "%", "rr": "/min", "pi": "%",
}
# OBX-6 first or second component -> canonical unit
UNITS: dict[bytes, str] = {
    b"266016": "mmHg", b"MDC_DIM_MMHG": "mmHg", b"mm[Hg]": "mmHg", b"mmHg": "mmHg",
    b"264864": "bpm", b"MDC_DIM_BEAT_PER_MIN": "bpm", b"{beat}/min": "bpm", b"{beats}/min": "bpm",
    b"/min": "bpm", b"bpm": "bpm", b"1/min": "bpm",
    b"262688": "%", b"MDC_DIM_PERCENT": "%", b"%": "%",
    b"264928": "/min", b"MDC_DIM_RESP_PER_MIN": "/min", b"{breaths}/min": "/min", b"{resp}/min": "/min",
    b"262656": "%", b"MDC_DIM_DIMLESS": "%",  # perfusion index: a relative (percent) number
    b"kPa": "kPa", b"MDC_DIM_KILO_PASCAL": "kPa",
}
# a unit acceptable for a param though not its canonical one
_UNIT_OK = {("rr", "bpm"), ("pi", "%")}
KPA_TO_MMHG = 7.500616827  # 1 kPa in mmHg (physical constant)
NIBP_PARAMS = frozenset({"nibp_sys", "nibp_dia", "nibp_map"})
PRIORITIES = {b"PH": "high", b"PM": "medium", b"PL": "low", b"PN": "none"}
# IHE PCD-04 alarm attributes (MDC codes) in ORU^R40
ATTR_PHASE = b"68481"
ATTR_STATE = b"68482"
ATTR_INACTIVATION = b"68483"
_ENDED_PHASES = {"end", "stop", "reset"}
_INACTIVE_STATES = {"inactive", "off"}
MAX_ALARM_OBX = 64  # per OBR group; anything beyond is ignored
MAX_ALARM_GROUPS = 256  # OBR groups of one ORU^R40; anything beyond is ignored
MAX_ERR = 8  # ERR segments in one ACK
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20  # 1 MiB: a PCD-01 message is a few kB; beyond this: AR, dropped


def _load_sentinels() -> frozenset[float]:
    text = resources.files("chairside.data").joinpath("hl7_sentinels.toml").read_text(encoding="utf-8")
    return frozenset(float(x) for x in tomllib.loads(text)["sentinels"])


SENTINELS: frozenset[float] = _load_sentinels()

_DELIMS = re.compile(rb"([\x0b\x1c\r\n])")
_TS = re.compile(rb"(\d{4})(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\d\d)?(?:\.(\d{1,6}))?\s*(?:([+-])(\d\d)(\d\d))?")


def parse_ts(raw: bytes, default_tz: timezone = UTC) -> datetime | None:
    """HL7 TS/DTM ``YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]`` -> aware UTC datetime, or None."""
    m = _TS.match(raw)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
    try:
        tz = default_tz
        if sign:
            off = timedelta(hours=int(oh), minutes=int(om))
            tz = timezone(-off if sign == b"-" else off)
        dt = datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0),
                      int((frac or b"0").ljust(6, b"0")[:6]), tzinfo=tz)
        return dt.astimezone(UTC) if tz is not UTC else dt
    except (ValueError, OverflowError):
        return None


def _offset_of(raw: bytes) -> timezone | None:
    m = _TS.match(raw)
    if m is None or not m.group(8):
        return None
    off = timedelta(hours=int(m.group(9)), minutes=int(m.group(10)))
    try:
        return timezone(-off if m.group(8) == b"-" else off)
    except ValueError:
        return None


class _Message:
    __slots__ = ("fs", "cs", "rs", "esc", "ss", "msh", "kind", "trigger", "control", "mllp", "tz", "obr_time", "msh_time",
                 "alarms", "segments", "obx", "reject", "errors", "held", "nbytes")

    def __init__(self, msh: list[bytes], fs: bytes, mllp: bool) -> None:
        self.msh = msh
        self.fs = fs
        enc = msh[1] if len(msh) > 1 else b"^~\\&"
        self.cs = enc[0:1] or b"^"
        self.rs = enc[1:2] or b"~"
        self.esc = enc[2:3] or b"\\"
        self.ss = enc[3:4] or b"&"
        typ = msh[8].split(self.cs) if len(msh) > 8 else [b""]
        self.kind = typ[0]
        self.trigger = typ[1] if len(typ) > 1 else b""
        self.control = msh[9] if len(msh) > 9 else b""
        self.mllp = mllp
        self.tz = (_offset_of(msh[6]) if len(msh) > 6 else None) or UTC
        self.obr_time: datetime | None = None
        self.msh_time = parse_ts(msh[6].split(self.cs, 1)[0], self.tz) if len(msh) > 6 and msh[6] else None
        self.alarms: list[list[list[bytes]]] = []  # R40: OBX field lists per OBR group
        self.segments = 1
        self.obx = 0  # OBX segments so far (the segment sequence of an ERR-2 location)
        self.reject: tuple[str, str, str, str] | None = None  # AR: (0357 code, text, ERR-2 location, detail)
        self.errors: list[tuple[str, str, str, str]] = []  # AE: the same, per content error
        self.held: list[DriverOutput] = []  # an MLLP message's outputs, out when it is accepted
        self.nbytes = 0
        version = msh[11].split(self.cs, 1)[0].strip() if len(msh) > 11 else b""
        if self.kind != b"ORU" or self.trigger not in (b"R01", b"R40"):
            typ_text = _text(msh[8] if len(msh) > 8 else b"")[:40]
            code = "200" if self.kind != b"ORU" else "201"
            self.reject = (code, HL7_ERRORS[code], "MSH^1^9", f"message type {typ_text!r} is not ORU^R01 or ORU^R40")
        elif not SUPPORTED_VERSION.fullmatch(version):
            self.reject = ("203", HL7_ERRORS["203"], "MSH^1^12",
                           f"HL7 version {_text(version[:20])!r} is not 2.x")

    def field(self, n: int) -> bytes:
        """MSH-n (1-based, MSH-1 is the field separator itself)."""
        if n == 1:
            return self.fs
        return self.msh[n - 1] if len(self.msh) > n - 1 else b""


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


# HL7 v2.6 Table 0357 (message error condition codes) used in ERR-3
HL7_ERRORS = {
    "100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
    "200": "Unsupported message type", "201": "Unsupported event code", "203": "Unsupported version id",
    "207": "Application internal error",
}
SUPPORTED_VERSION = re.compile(rb"2\.\d(\.\d+)?")
_ESCAPE_SEQ = re.compile(rb"\\([^\\\r]{1,64})\\")


def unescape(raw: bytes, msg: _Message | None = None) -> str:
    """A text field with the HL7 escape sequences decoded (HL7 v2.6 2.7.4): ``\\F\\`` field,
    ``\\S\\`` component, ``\\T\\`` subcomponent, ``\\R\\`` repetition separator, ``\\E\\`` the
    escape character, ``\\Xhh...\\`` bytes in hex; highlighting ``\\H\\``/``\\N\\`` is dropped,
    ``\\.br\\`` is a line break. Unknown sequences stay as they are."""
    esc = msg.esc if msg is not None else b"\\"
    if esc not in raw:
        return _text(raw)
    fs, cs, rs, ss = (msg.fs, msg.cs, msg.rs, msg.ss) if msg is not None else (b"|", b"^", b"~", b"&")
    table = {b"F": fs, b"S": cs, b"T": ss, b"R": rs, b"E": esc, b"H": b"", b"N": b"", b".br": b"\n"}
    pattern = _ESCAPE_SEQ if esc == b"\\" else re.compile(re.escape(esc) + rb"([^" + re.escape(esc)
                                                              + rb"\r]{1,64})" + re.escape(esc))

    def one(m: re.Match[bytes]) -> bytes:
        body = m.group(1)
        if body in table:
            return table[body]
        if body[:1] == b"X" and len(body) > 1 and len(body) % 2 == 1:
            try:
                return bytes.fromhex(body[1:].decode("ascii"))
            except ValueError:
                return m.group(0)
        return m.group(0)

    return _text(pattern.sub(one, raw))


# --- OBX-11 result status and OBX-8 measurement status (IHE PCD TF-2 Appendix B.8, Table B.8.5-6) ---
_VALID, _QUESTIONABLE, _INVALID = 0, 1, 2
# HL7 Table 0085: a result (C = a correction, which is a new value here)
RESULT_STATUSES = frozenset({b"", b"F", b"C", b"P", b"R", b"S", b"U"})
# Not a value of the patient: wrong / deleted, not asked, order detail only, pending
NOT_A_RESULT_STATUSES = frozenset({b"W", b"D", b"N", b"O", b"I"})
# OBX-8 codes of ISO/IEEE 11073 MeasurementStatus and nullFlavors (Table B.8.5-6 / B.8.5-7)
OBX8_INVALID = frozenset({b"INV", b"NAV", b"BUSY", b"TEST", b"DEMO", b"OFF", b"NI", b"NA", b"MSK", b"OTH",
                          b"NAN", b"PINF", b"NINF"})
OBX8_QUESTIONABLE = frozenset({b"QUES", b"CAL", b"EARLY"})


def _status_verdict(status: bytes, abnormal) -> tuple[int, tuple[str, ...]]:
    """(valid | questionable | invalid, flags) for one OBX's OBX-11 and OBX-8 repetitions."""
    codes = [a.strip() for a in abnormal]
    bad = tuple(f"abnormal:{_text(a)}" for a in codes if a in OBX8_INVALID)
    if status in NOT_A_RESULT_STATUSES or bad:
        return _INVALID, ((f"status:{_text(status)}",) if status and status not in RESULT_STATUSES else ()) + bad
    ques = tuple(f"abnormal:{_text(a)}" for a in codes if a in OBX8_QUESTIONABLE)
    if status == b"X":
        return _QUESTIONABLE, ("status:X",) + ques
    if status not in RESULT_STATUSES:
        return _QUESTIONABLE, (f"status:{_text(status[:8])}",) + ques
    if ques:
        return _QUESTIONABLE, ques
    return _VALID, ()


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
        self._msg: _Message | None = None
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
            self._msg = _Message(fields, fs, self._mllp)
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
            self._observation(msg, fields, msg.held if msg.mllp else out)
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

    def _observation(self, msg: _Message, f: list[bytes], out: list[DriverOutput]) -> None:
        if len(f) < 6:
            return
        code = f[3].split(msg.cs, 1)[0].strip()
        spec = CODES.get(code)
        if spec is None:
            return
        param, source = spec
        unit = PARAM_UNIT[param]
        raw = f[5].strip()
        status = f[11].strip() if len(f) > 11 else b""
        obs_time_raw = f[14].strip() if len(f) > 14 else b""
        when = self._ts(obs_time_raw) if obs_time_raw else msg.obr_time
        flags: tuple[str, ...] = ()
        if when is None and msg.msh_time is not None:
            when = msg.msh_time  # neither OBX-14 nor OBR-7: the message's own time
            flags = ("time:MSH-7",)
        value: float | None = None
        if not raw:
            flags += ("empty",)
        else:
            first = raw.split(msg.rs, 1)[0].split(msg.cs, 1)[0].strip()
            value = parse_number(first)
            if value is None:
                flags += (f"not_numeric:{unescape(first[:40], msg)}",)
                msg.errors.append(("102", HL7_ERRORS["102"], f"OBX^{msg.obx}^5",
                                   f"OBX-5 {unescape(first[:40], msg)!r} of {_text(code)} is not a number"))
            elif value in SENTINELS:
                flags += (f"sentinel:{_text(first)}",)
                value = None
        valid = value is not None
        # OBX-11 result status and OBX-8 measurement-status codes (module docstring)
        abnormal = f[8].split(msg.rs) if len(f) > 8 and f[8] else ()
        verdict, why = _status_verdict(status, abnormal)
        if verdict == _INVALID:
            flags += why
            valid = False
        elif verdict == _QUESTIONABLE and value is not None:
            flags += ("questionable",) + why
        elif why and value is None:
            flags += why
        # unit
        units = f[6].split(msg.cs) if len(f) > 6 and f[6] else []
        if value is not None and units:
            got = UNITS.get(units[0].strip()) or (UNITS.get(units[1].strip()) if len(units) > 1 else None)
            if got is None:
                flags += (f"unit:{unescape(units[0].strip() or units[1].strip() if len(units) > 1 else units[0], msg)}",)
                valid = False
            elif got != unit and (param, got) not in _UNIT_OK:
                if got == "kPa" and unit == "mmHg":
                    value = round(value * KPA_TO_MMHG, 1)
                    flags += ("converted:kPa",)
                else:
                    flags += (f"unit:{got}",)
                    valid = False
        if value is not None:
            bad = check_value(param, value)
            if bad is not None:
                flags += (bad,)
                value = None
        if source == "nibp" and obs_time_raw:
            key = (param, source)
            mark = (value, obs_time_raw)
            if self._last_nibp.get(key) == mark:
                return  # the same cuff measurement repeated
            self._last_nibp[key] = mark
        out.append(_reading({"param": param, "value": value, "unit": unit, "valid": valid and value is not None,
                             "flags": flags, "device_time": when, "source": source}))
        self.stats.readings += 1

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
                    status = self._alarm(msg, group)
                    if status is not None:
                        out.append(status)
        if msg.mllp and self.ack:
            mode = msg.field(15).strip()
            if mode in (b"AL", b"SU", b"") or (mode == b"ER" and code != "AA"):
                self._queue_ack(code, msg, [msg.reject] if msg.reject is not None else msg.errors[:MAX_ERR])

    def _alarm(self, msg: _Message, group: list[list[bytes]]) -> DeviceStatus | None:
        obr = group[0] if group and group[0][0][:3] == b"OBR" else None
        obxs = group[1:] if obr is not None else group
        cs, rs = msg.cs, msg.rs
        event_code = event_text = b""
        param: str | None = None
        value: float | None = None
        priority: str | None = None
        flags: list[str] = []
        when = msg.obr_time
        for f in obxs:
            if len(f) < 4:
                continue
            ident = f[3].split(cs)
            code = ident[0].strip()
            val = f[5].strip() if len(f) > 5 else b""
            if code.startswith(b"196") and not event_code:  # MDC_EVT_* partition (alert events)
                event_code = ident[1] if len(ident) > 1 and ident[1] else code
                event_text = unescape(val, msg).encode()
                if len(f) > 8 and f[8]:
                    for rep in f[8].split(rs):
                        rep = rep.strip()
                        if rep in PRIORITIES:
                            priority = PRIORITIES[rep]
                        elif rep in (b"SP", b"ST", b"SA"):
                            flags.append(f"type:{_text(rep)}")
                        elif rep:
                            flags.append(f"abnormal:{_text(rep)}")
                if len(f) > 14 and f[14].strip():
                    when = self._ts(f[14].strip()) or when
                if param is None and len(f) > 4:
                    parts = f[4].split(b".")
                    if len(parts) >= 4 and parts[3] in CODES:
                        param = CODES[parts[3]][0]
            elif code == ATTR_PHASE:
                flags.append(f"phase:{unescape(val, msg)}")
            elif code == ATTR_STATE:
                flags.append(f"state:{unescape(val, msg)}")
            elif code == ATTR_INACTIVATION:
                flags.append(f"inactivation:{unescape(val, msg)}")
            elif code in CODES:
                param = CODES[code][0]
                value = parse_number(val.split(cs, 1)[0].strip()) if val else None
                if value is not None and (value in SENTINELS or check_value(param, value) is not None):
                    value = None
                if len(f) > 7 and f[7].strip():
                    flags.append(f"limits:{_text(f[7].strip())}")
        if not event_code:
            return None
        phase = next((x.split(":", 1)[1].lower() for x in flags if x.startswith("phase:")), "")
        state = next((x.split(":", 1)[1].lower() for x in flags if x.startswith("state:")), "")
        active = phase not in _ENDED_PHASES and state not in _INACTIVE_STATES
        detail = _text(event_code) + (f" {_text(event_text)}" if event_text else "")
        return _status({"kind": "device_alarm", "active": active, "param": param, "detail": detail,
                        "flags": tuple(flags), "device_time": when, "priority": priority, "value": value})

    def _queue_ack(self, code: str, msg: _Message | None, errors) -> None:
        """An MLLP-framed ACK (HL7 v2.6 general acknowledgement, IHE PCD TF-2 B.2/B.3): MSA-1
        ``AA``/``AE``/``AR``, MSA-2 the message's control ID, one ERR per error (ERR-2 location,
        ERR-3 code^text^HL70357, ERR-4 severity E, ERR-8 what was wrong). Without a message
        (a block that is not HL7) the header is ours and MSA-2 empty."""
        self.acks[code] += 1
        if msg is not None:
            fs, cs, rs = msg.fs, msg.cs, msg.rs
            enc = msg.field(2) or b"^~\\&"
            esc = msg.esc
            header = [msg.field(5) or self.receiving_app, msg.field(6) or self.receiving_facility,
                      msg.field(3), msg.field(4), msg.field(7)]
            trigger, control = msg.trigger, msg.control
            processing, version = msg.field(11) or b"P", msg.field(12) or b"2.6"
            if msg.reject is not None and msg.reject[2] == "MSH^1^12":
                version = b"2.6"  # answer an unsupported version in ours
        else:
            fs, cs, rs, esc, enc = b"|", b"^", b"~", b"\\", b"^~\\&"
            header = [self.receiving_app, self.receiving_facility, b"", b"", b""]
            trigger, control, processing, version = b"", b"", b"P", b"2.6"
        msh = fs.join([b"MSH", enc, *header, b"", b"ACK" + cs + trigger + cs + b"ACK",
                       b"ACK" + control, processing, version])
        segs = [msh, fs.join([b"MSA", code.encode(), control])]
        for err_code, text, where, detail in errors:
            loc = cs.join(where.encode().split(b"^")) if where else b""
            segs.append(fs.join([b"ERR", b"", loc, cs.join([err_code.encode(), text.encode(), b"HL70357"]),
                                 b"E", b"", b"", b"", _escape(detail, fs, cs, rs, esc)]))
        self._out += b"\x0b" + b"\r".join(segs) + b"\r\x1c\r"


def _escape(text: str, fs: bytes, cs: bytes, rs: bytes, esc: bytes) -> bytes:
    """Text for an HL7 field, its delimiters escaped (the inverse of ``unescape``)."""
    raw = text.encode("utf-8", errors="replace").replace(b"\r", b" ").replace(b"\n", b" ")
    raw = raw.replace(esc, esc + b"E" + esc)
    for ch, name in ((fs, b"F"), (cs, b"S"), (rs, b"R"), (b"&", b"T")):
        raw = raw.replace(ch, esc + name + esc)
    return raw[:200]


# --- encoder (simulator) ------------------------------------------------------------------
# key -> (MDC code, MDC reference id, containment OBX-4, UCUM unit)
_ENC: dict[str, tuple[str, str, str, str]] = {
    "nibp_sys": ("150021", "MDC_PRESS_BLD_NONINV_SYS", "1.1.1.1", "mm[Hg]"),
    "nibp_dia": ("150022", "MDC_PRESS_BLD_NONINV_DIA", "1.1.1.2", "mm[Hg]"),
    "nibp_map": ("150023", "MDC_PRESS_BLD_NONINV_MEAN", "1.1.1.3", "mm[Hg]"),
    "pr_nibp": ("149546", "MDC_PULS_RATE_NON_INV", "1.1.1.4", "{beat}/min"),
    "hr": ("147842", "MDC_ECG_HEART_RATE", "1.2.1.1", "{beat}/min"),
    "spo2": ("150456", "MDC_PULS_OXIM_SAT_O2", "1.3.1.1", "%"),
    "pr": ("149530", "MDC_PULS_OXIM_PULS_RATE", "1.3.1.2", "{beat}/min"),
}
_ENC_ORDER = ("nibp_sys", "nibp_dia", "nibp_map", "pr_nibp", "hr", "spo2", "pr")


def _ts_text(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.strftime("%Y%m%d%H%M%S%z")


def _num_text(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def encode_oru_r01(*, when: datetime, values: dict[str, float | None], nibp_time: datetime | None = None,
                   control_id: str, mllp: bool = True, sending_app: str = "CHAIRSIDE_SIM") -> bytes:
    """One IHE PCD-01 ORU^R01 (HL7 v2.6) with the given vitals; MLLP-framed unless ``mllp=False``.

    ``values`` keys among ``hr, pr, spo2, nibp_sys, nibp_dia, nibp_map, pr_nibp``; a None
    value is sent as an empty OBX-5 with OBX-11 ``X``. NIBP observations carry OBX-14 =
    ``nibp_time`` (else ``when``); the others have no OBX-14 (OBR-7 = ``when`` applies).
    Segments end with CR; MSH-15 = AL (the receiver ACKs).
    """
    unknown = set(values) - set(_ENC)
    if unknown:
        raise ValueError(f"encode_oru_r01: unknown value keys {sorted(unknown)}; use {list(_ENC_ORDER)}")
    ts = _ts_text(when)
    segs = [
        f"MSH|^~\\&|{sending_app}|CHAIRSIDE|||{ts}||ORU^R01^ORU_R01|{control_id}|P|2.6|||AL|NE||UNICODE UTF-8|||"
        "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
        "PID|||SIM0001^^^CHAIRSIDE^MR||Simulated^Patient^^^^^L",
        "PV1||O|CHAIR^1",
        f"OBR|1|{control_id}^{sending_app}|{control_id}^{sending_app}|182777000^monitoring of patient^SCT|||{ts}",
        "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X",
    ]
    n = 1
    nibp_ts = _ts_text(nibp_time) if nibp_time is not None else ts
    for key in _ENC_ORDER:
        if key not in values:
            continue
        code, ref, containment, ucum = _ENC[key]
        v = values[key]
        n += 1
        obs_ts = nibp_ts if key.startswith("nibp") or key == "pr_nibp" else ""
        value_text = "" if v is None else _num_text(float(v))
        status = "X" if v is None else "R"
        segs.append(f"OBX|{n}|NM|{code}^{ref}^MDC|{containment}|{value_text}|{ucum}^{ucum}^UCUM|||||{status}|||{obs_ts}")
    msg = ("\r".join(segs) + "\r").encode("utf-8")
    return b"\x0b" + msg + b"\x1c\r" if mllp else msg
