"""HL7 v2 syntax: delimiters, escape sequences, timestamps, the message header, Table 0357.

Owns: ``Message`` (one message being read: its MSH fields and delimiters, its time zone,
why it is rejected (``AR``) and its content errors (``AE``)), ``parse_ts`` (HL7 TS/DTM ->
aware UTC), ``unescape`` / ``escape`` (HL7 v2.6 2.7.4 escape sequences, both ways),
``HL7_ERRORS`` (Table 0357) and ``SUPPORTED_VERSION``.
Must not import: anything outside stdlib and ``chairside.domain`` (sans-I/O, like every driver).

Time: an HL7 TS with optional ``+/-ZZZZ``; without an offset the MSH-7 offset applies
(``Message.tz``), else UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from chairside.domain.readings import DriverOutput

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


class Message:
    """One message being read: MSH fields and delimiters, its time zone (MSH-7's offset),
    OBR-7, the R40 alarm groups, what it holds until accepted, and its verdict (``reject``:
    AR; ``errors``: AE)."""

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
            typ_text = as_text(msh[8] if len(msh) > 8 else b"")[:40]
            code = "200" if self.kind != b"ORU" else "201"
            self.reject = (code, HL7_ERRORS[code], "MSH^1^9", f"message type {typ_text!r} is not ORU^R01 or ORU^R40")
        elif not SUPPORTED_VERSION.fullmatch(version):
            self.reject = ("203", HL7_ERRORS["203"], "MSH^1^12",
                           f"HL7 version {as_text(version[:20])!r} is not 2.x")

    def field(self, n: int) -> bytes:
        """MSH-n (1-based, MSH-1 is the field separator itself)."""
        if n == 1:
            return self.fs
        return self.msh[n - 1] if len(self.msh) > n - 1 else b""


def as_text(raw: bytes) -> str:
    """Bytes of a field as text (bad UTF-8 replaced, never an error)."""
    return raw.decode("utf-8", errors="replace")


# HL7 v2.6 Table 0357 (message error condition codes) used in ERR-3
HL7_ERRORS = {
    "100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
    "200": "Unsupported message type", "201": "Unsupported event code", "203": "Unsupported version id",
    "207": "Application internal error",
}
SUPPORTED_VERSION = re.compile(rb"2\.\d(\.\d+)?")
_ESCAPE_SEQ = re.compile(rb"\\([^\\\r]{1,64})\\")


def unescape(raw: bytes, msg: Message | None = None) -> str:
    """A text field with the HL7 escape sequences decoded (HL7 v2.6 2.7.4): ``\\F\\`` field,
    ``\\S\\`` component, ``\\T\\`` subcomponent, ``\\R\\`` repetition separator, ``\\E\\`` the
    escape character, ``\\Xhh...\\`` bytes in hex; highlighting ``\\H\\``/``\\N\\`` is dropped,
    ``\\.br\\`` is a line break. Unknown sequences stay as they are."""
    esc = msg.esc if msg is not None else b"\\"
    if esc not in raw:
        return as_text(raw)
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

    return as_text(pattern.sub(one, raw))


def escape(text: str, fs: bytes, cs: bytes, rs: bytes, esc: bytes) -> bytes:
    """Text for an HL7 field, its delimiters escaped (the inverse of ``unescape``)."""
    raw = text.encode("utf-8", errors="replace").replace(b"\r", b" ").replace(b"\n", b" ")
    raw = raw.replace(esc, esc + b"E" + esc)
    for ch, name in ((fs, b"F"), (cs, b"S"), (rs, b"R"), (b"&", b"T")):
        raw = raw.replace(ch, esc + name + esc)
    return raw[:200]
