"""Masimo Rad-8 / Radical-7 serial "ASCII 1" driver: sans-I/O.

Owns: ``MasimoDriver`` (one text line a second -> SpO2, pulse rate, PI readings, probe-off
and device-alarm status) and ``encode_line`` (one line, for the simulator).
Must not import: serial, sockets, threads, clocks, textual, any chairside package other
than ``chairside.domain`` and ``chairside.drivers.base``.

Format (../shared/vectors/README.md and masimo/ascii-samples.txt): 9600 8N1, unprompted,
``MM/DD/YY HH:MM:SS KEY=VALUE KEY=VALUE ...`` ended by CR LF (CR, LF or CR LF accepted).
Tokens are parsed by key, never by column (fields differ by model and firmware): a token is
``KEY=VALUE`` between whitespace (or the line's start and end); keys are case-insensitive
(the trend format writes ``SpO2=`` and ``PR=``); a key given twice in one line counts once
(a real line never repeats one). A value is missing when its second character is ``-`` (``---``,
``+--``, ``--.-``). ``EXC`` and ``ALARM`` are hex bit fields (digits only: a sign or any
other character makes the field unreadable, i.e. no EXC bits / no ALARM change).

Decisions:

* ``spo2`` (``SPO2``), ``pr`` (``BPM`` or ``PR``, source ``spo2``) and ``pi`` are emitted
  when their key is in the line, missing or not; ``spco``, ``spmet``, ``sphb``, ``pvi``
  only when they carry a value (a device without the option sends dashes forever).
* Every EXC bit set becomes a flag on every reading of the line (names below; bit 0x800
  "Masimo SET" is a mode, not an exception, and is not a flag). With an EXC bit that means
  the sensor cannot measure (no sensor, defective/unrecognised/incompatible sensor, sensor
  off, cable faults) every value is missing, whatever digits the line carries.
* Every value goes through the drivers' one validity rule (``chairside.drivers.base``): only
  ``[sign]digits[.digits]`` is a number (``NaN``, ``inf``, ``1e999``, ``1_000`` are
  ``not_numeric:<text>``), and a negative or impossible value (``BPM=-5``, ``SPO2=101``) is
  missing with the flag ``negative:<v>`` / ``out_of_range:<v>``, never a valid reading.
* ``SPO2``/``BPM``/``PI`` of zero are "no value" (the trend format writes ``000`` for no
  data), never a saturation, rate or perfusion of zero: ``value=None`` with flag ``zero``.
* ``DeviceStatus(kind="probe_off")``: ``active=True`` when EXC sensor-off or no-sensor
  appears, ``active=False`` when it clears (emitted on change; the first line emits only
  when active).
* ALARM bits: each known bit that changes emits ``DeviceStatus(kind="device_alarm",
  active=<bit set>, detail=<name>, param=<spo2|pr|None>)`` with the names of all set bits
  in ``flags`` and the current value of the parameter in ``value``.
* ``device_time`` is the line's date and time, read as UTC unless the driver is given
  another ``tz``; two-digit years are 20YY.
* Lines with no ``KEY=VALUE`` token, or not ASCII, are rejected frames; blank lines are
  ignored. A line longer than ``MAX_LINE`` is dropped (bytes skipped).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import ClassVar

from chairside.domain.readings import DeviceStatus, DriverOutput
from chairside.drivers._fast import trusted_reading as _reading
from chairside.drivers.base import Driver, SerialDefaults, check_value, parse_number

# EXC bit names: Masimo manual (001-800) and the MD PnP table (100, 1000-400000), as quoted
# in ../shared/vectors/masimo/ascii-samples.txt.
EXC_BITS: dict[int, str] = {
    0x000001: "no_sensor",
    0x000002: "defective_sensor",
    0x000004: "low_perfusion",
    0x000008: "pulse_search",
    0x000010: "interference",
    0x000020: "sensor_off",
    0x000040: "ambient_light",
    0x000080: "unrecognized_sensor",
    0x000100: "incompatible_sensor",
    0x000400: "low_signal_iq",
    0x000800: "set_mode",
    0x001000: "no_cable",
    0x002000: "cable_life_expired",
    0x004000: "incompatible_cable",
    0x008000: "unrecognized_cable",
    0x010000: "defective_cable",
    0x020000: "sensor_calibrating",
    0x040000: "sensor_life_expired",
    0x080000: "emitter_temp_out_of_range",
    0x100000: "sensor_current_limit",
    0x200000: "spco_low_confidence",
    0x400000: "spmet_low_confidence",
}
EXC_NO_FLAG = 0x000800  # "Masimo SET" mode: informational, not an exception
# Conditions under which the oximeter cannot be measuring: values are missing regardless.
EXC_INVALIDATES = 0x000001 | 0x000002 | 0x000020 | 0x000080 | 0x000100 | 0x001000 | 0x004000 | 0x008000 | 0x010000
EXC_PROBE_OFF = 0x000020 | 0x000001  # sensor off, no sensor

# ALARM bits: MD PnP table (README of ../shared/vectors): name, parameter.
ALARM_BITS: dict[int, tuple[str, str | None]] = {
    0x0001: ("spo2_high", "spo2"),
    0x0002: ("spo2_low", "spo2"),
    0x0004: ("pr_high", "pr"),
    0x0008: ("pr_low", "pr"),
    0x0010: ("alarm_active", None),
    0x0020: ("alarm_silenced", None),
    0x0040: ("low_battery", None),
    0x0100: ("spco_high", "spco"),
    0x0200: ("spco_low", "spco"),
    0x0400: ("spmet_high", "spmet"),
    0x0800: ("spmet_low", "spmet"),
    0x1000: ("desat_index", None),
    0x2000: ("pi_delta", "pi"),
}

# key (upper case) -> (param, unit, source, always emitted, zero means missing)
_FIELDS: dict[bytes, tuple[str, str, str, bool, bool]] = {
    b"SPO2": ("spo2", "%", "spo2", True, True),
    b"BPM": ("pr", "bpm", "spo2", True, True),
    b"PR": ("pr", "bpm", "spo2", True, True),
    b"PI": ("pi", "%", "spo2", True, True),
    b"SPCO": ("spco", "%", "spo2", False, False),
    b"SPMET": ("spmet", "%", "spo2", False, False),
    b"SPHB": ("sphb", "g/dL", "spo2", False, False),
    b"PVI": ("pvi", "%", "spo2", False, False),
}
# any KEY=VALUE token at all (a line without one is a rejected frame)
_TOKEN = re.compile(rb"(?:^|\s)[A-Za-z][A-Za-z0-9_]*=")
# The tokens the driver uses (the keys of _FIELDS, EXC, ALARM), in one pass over the
# upper-cased line with a space in front: a key starts after whitespace (or the line start)
# and ends at "=", its value runs to the next whitespace. Keys it does not use (SN, DESAT,
# PIDELTA, EXC1, ...) are stepped over by the regex engine instead of the interpreter.
# SPCO, SPMET, SPHB and PVI are only emitted with a value, so the pattern leaves them out when
# theirs is missing (second character "-", or a lone "-"): a device without the option
# sends dashes forever, and skipping them here saves the interpreter a loop turn each.
_HAS_VALUE = rb"(?==(?!\S-|-(?!\S)))"
_USED = re.compile(rb" (S(?:PO2|PCO" + _HAS_VALUE + rb"|PMET" + _HAS_VALUE + rb"|PHB" + _HAS_VALUE
                   + rb")|BPM|P(?:R|I|VI" + _HAS_VALUE + rb")|EXC|ALARM)=(\S*)")
# upper case, and every whitespace byte a space (so that the pattern can start with a literal)
_UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz\t\n\v\f\r", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ     ")
_STAMP = re.compile(rb"\s*(\d{1,2})/(\d{1,2})/(\d{2,4})\s+(\d{1,2}):(\d{2}):(\d{2})")
_FIXED_STAMP = re.compile(rb"\d\d/\d\d/\d\d \d\d:\d\d:\d\d")  # what every real line starts with

MAX_LINE = 1024  # a real line is ~200 characters
MAX_CACHE = 256  # entries in the memo of EXC fields; cleared when full
# two-digit seconds -> offset, for the fixed "MM/DD/YY HH:MM:SS" layout of every real line
_SECONDS: dict[bytes, timedelta] = {b"%02d" % i: timedelta(seconds=i) for i in range(60)}
_HEX = re.compile(rb"[0-9A-Fa-f]+")


def _hex(raw: bytes) -> int | None:
    """A bit field in hex digits (no sign, no prefix), else None (dashes, garbage)."""
    return int(raw, 16) if _HEX.fullmatch(raw) else None


def _flags_of(exc: int) -> tuple[str, ...]:
    if not exc:
        return ()
    return tuple(name for bit, name in EXC_BITS.items() if exc & bit and bit != EXC_NO_FLAG) + (
        (f"exc:{exc & ~sum(EXC_BITS):#x}",) if exc & ~sum(EXC_BITS) else ()
    )


class MasimoDriver(Driver):
    """Masimo ASCII 1 lines -> SpO2 / pulse rate / PI readings and device status."""

    name: ClassVar[str] = "masimo"
    serial_defaults: ClassVar[SerialDefaults] = SerialDefaults(baudrate=9600, bytesize=8, parity="N", stopbits=1)
    MAX_BUFFER: ClassVar[int] = MAX_LINE

    def __init__(self, tz: tzinfo = UTC) -> None:
        super().__init__()
        self.tz = tz
        self._buf = b""
        self._probe_off = False  # the first line reports probe-off only when it is off
        self._alarm: int | None = None
        self._alarm_raw = b""  # the ALARM field of the last line that had one
        # Memos for the hot path (bounded by MAX_CACHE; they change nothing but speed):
        # EXC raw value -> (bits, flags); the minute of the last fixed-layout time stamp ->
        # its datetime at second 0.
        self._exc_cache: dict[bytes, tuple[int, tuple[str, ...]]] = {}
        self._minute: tuple[bytes, datetime] = (b"", datetime.min)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._buf = b""

    def flush(self) -> list[DriverOutput]:
        """End of input: a last line without its CR LF is still a line."""
        rest, self._buf = self._buf, b""
        return self.feed(rest + b"\n") if rest else []

    def feed(self, data: bytes) -> list[DriverOutput]:
        out: list[DriverOutput] = []
        buf = self._buf + data if self._buf else bytes(data)
        # CR, LF and CR LF all end a line; the empty line between CR and LF is ignored, so a
        # CR LF split across two feeds changes nothing.
        lines = buf.replace(b"\r", b"\n").split(b"\n")
        rest = lines.pop()
        for line in lines:
            if len(line) > MAX_LINE:
                self.stats.bytes_skipped += len(line) + 1
                continue
            if line:
                try:
                    self._line(line, out)
                except Exception as exc:  # a malformed line must never stop the stream
                    self.stats.reject(f"malformed line {line[:40]!r}: {exc!r}")
        if len(rest) > MAX_LINE:
            self.stats.bytes_skipped += len(rest)
            rest = b""
        self._buf = rest
        return out

    # --- one line ---------------------------------------------------------------------
    def _time(self, line: bytes) -> datetime | None:
        """The line's ``MM/DD/YY HH:MM:SS`` as an aware UTC datetime, or None."""
        minute = line[:15]
        if minute == self._minute[0]:
            sec = _SECONDS.get(line[15:17])
            if sec is not None:
                return self._minute[1] + sec
        m = _STAMP.match(line[:20])
        if m is None:
            return None
        mo, dd, yy, hh, mi, ss = map(int, m.groups())
        try:
            when = datetime(yy + 2000 if yy < 100 else yy, mo, dd, hh, mi, ss, tzinfo=self.tz)
        except ValueError:
            return None
        if self.tz is not UTC:
            when = when.astimezone(UTC)
        if _FIXED_STAMP.match(line):  # the fixed layout: later seconds of this minute are
            self._minute = (minute, when - _SECONDS[line[15:17]])  # one addition away
        return when

    def _exc(self, raw: bytes) -> tuple[int, tuple[str, ...]]:
        """An EXC value -> (bits, flags); a dashed or unreadable value is no bits."""
        cached = self._exc_cache.get(raw)
        if cached is None:
            exc = _hex(raw.split(b":", 1)[0]) or 0  # the trend format appends ":OFFPAT,SET"
            if len(self._exc_cache) >= MAX_CACHE:
                self._exc_cache.clear()
            cached = self._exc_cache[raw] = (exc, _flags_of(exc))
        return cached

    def _line(self, line: bytes, out: list[DriverOutput]) -> None:
        if not line.isascii():
            self.stats.reject(f"not ASCII: {line[:40]!r}")
            return
        # Keys are case-insensitive (the trend format writes SpO2= and PR=); every value is
        # read case-insensitively too (digits, hex, dashes), so the whole line is upper-cased.
        tokens = dict(_USED.findall(b" " + line.translate(_UPPER)))
        if not tokens:
            if _TOKEN.search(line):
                self.stats.frames_decoded += 1  # a line, but nothing this driver reads
            elif line.strip():
                self.stats.reject(f"no KEY=VALUE token: {line[:40]!r}")
            return
        self.stats.frames_decoded += 1
        when = self._time(line)
        raw = tokens.pop(b"EXC", None)
        exc, flags = (0, ()) if raw is None else self._exc(raw)
        alarm_raw = tokens.pop(b"ALARM", None)
        blocked = exc & EXC_INVALIDATES
        n0 = len(out)
        for key, raw in tokens.items():
            param, unit, source, always, zero_missing = _FIELDS[key]
            if raw[1:2] == b"-" or raw == b"-":
                if not always:
                    continue
                value = None
                rflags = flags if "no_data" in flags else flags + ("no_data",)
            else:
                value = parse_number(raw.rstrip(b"%"))
                if value is None:
                    if not always:
                        continue
                    rflags = flags + (f"not_numeric:{raw.decode('ascii')}",)
                elif blocked:
                    value = None
                    rflags = flags
                elif zero_missing and value == 0:
                    value = None
                    rflags = flags + ("zero",)
                else:
                    bad = check_value(param, value)
                    if bad is None:
                        rflags = flags
                    else:
                        value = None
                        rflags = flags + (bad,)
            # value: a float from float() or None; the rest constants or tuples of str
            out.append(_reading(param, value, unit, value is not None, rflags, when, source))
        n1 = len(out)
        self.stats.readings += n1 - n0
        # probe off / no sensor: on change (the first line only when it is off)
        probe_off = bool(exc & EXC_PROBE_OFF)
        if probe_off is not self._probe_off:
            detail = ",".join(n for b, n in EXC_BITS.items() if b & EXC_PROBE_OFF & exc) or "sensor back"
            out.append(DeviceStatus(kind="probe_off", active=probe_off, param="spo2", detail=detail,
                                    flags=flags, device_time=when))
            self._probe_off = probe_off
        # device alarm bits (a dashed or unreadable field changes nothing)
        if alarm_raw is not None and alarm_raw != self._alarm_raw:
            self._alarm_raw = alarm_raw
            alarm = _hex(alarm_raw)
            if alarm is not None and alarm != self._alarm:
                self._alarms(alarm, when, {r.param: r.value for r in out[n0:n1]}, out)

    def _alarms(self, alarm: int, when: datetime | None, current: dict[str, float | None],
                out: list[DriverOutput]) -> None:
        prev = self._alarm or 0
        self._alarm = alarm
        changed = alarm ^ prev
        if not changed:
            return
        names = tuple(name for bit, (name, _) in ALARM_BITS.items() if alarm & bit)
        if alarm & ~sum(ALARM_BITS):
            names += (f"alarm:{alarm & ~sum(ALARM_BITS):#x}",)
        for bit, (name, param) in ALARM_BITS.items():
            if changed & bit:
                out.append(DeviceStatus(kind="device_alarm", active=bool(alarm & bit), param=param, detail=name,
                                        flags=names, device_time=when,
                                        value=current.get(param) if param else None))


def _field(value: float | None, width: int, decimals: int = 0, sign: bool = False) -> str:
    """Masimo fixed-width field: zero padded digits, or dashes when missing."""
    if value is None:
        body = "-" * width if not decimals else "-" * (width - decimals - 1) + "." + "-" * decimals
        return ("+" + body[1:]) if sign else body
    if decimals:
        return f"{value:0{width}.{decimals}f}"
    return f"{round(value):0{width}d}"


def encode_line(*, when: datetime, spo2: float | None = None, bpm: float | None = None, pi: float | None = None,
                exc: int = 0, alarm: int = 0, sn: str = "0000012345") -> bytes:
    """One Radical-7-style ASCII 1 line, CR LF terminated (the simulator's oximeter).

    ``when`` is written in its own wall time (convert it first if the device's clock
    should show another zone); missing values are dashes; EXC and ALARM in hex.
    """
    stamp = when.strftime("%m/%d/%y %H:%M:%S")
    line = (f"{stamp} SN={sn} SPO2={_field(spo2, 3)}% BPM={_field(bpm, 3)} PI={_field(pi, 5, 2)}% "
            f"SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=--- ALARM={alarm:04X} EXC={exc:06X}\r\n")
    return line.encode("ascii")
