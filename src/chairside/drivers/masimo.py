"""Masimo Rad-8 / Radical-7 serial "ASCII 1" driver: sans-I/O.

Owns: ``MasimoDriver`` (one text line a second -> SpO2, pulse rate, PI readings, probe-off
and device-alarm status) and ``encode_line`` (one line, for the simulator).
Must not import: serial, sockets, threads, clocks, textual, any chairside package other
than ``chairside.domain`` and ``chairside.drivers.base``.

Format (../shared/vectors/README.md and masimo/ascii-samples.txt): 9600 8N1, unprompted,
``MM/DD/YY HH:MM:SS KEY=VALUE KEY=VALUE ...`` ended by CR LF (CR, LF or CR LF accepted).
Tokens are parsed by key, never by column (fields differ by model and firmware); keys are
case-insensitive (the trend format writes ``SpO2=`` and ``PR=``). A value is missing when
its second character is ``-`` (``---``, ``+--``, ``--.-``). ``EXC`` and ``ALARM`` are hex
bit fields.

Decisions:

* ``spo2`` (``SPO2``), ``pr`` (``BPM`` or ``PR``, source ``spo2``) and ``pi`` are emitted
  when their key is in the line, missing or not; ``spco``, ``spmet``, ``sphb``, ``pvi``
  only when they carry a value (a device without the option sends dashes forever).
* Every EXC bit set becomes a flag on every reading of the line (names below; bit 0x800
  "Masimo SET" is a mode, not an exception, and is not a flag). With an EXC bit that means
  the sensor cannot measure (no sensor, defective/unrecognised/incompatible sensor, sensor
  off, cable faults) every value is missing, whatever digits the line carries.
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
from datetime import UTC, datetime, tzinfo
from typing import ClassVar

from chairside.domain.readings import DeviceStatus, DriverOutput, Reading
from chairside.drivers._fast import reading as _reading
from chairside.drivers.base import Driver, SerialDefaults

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
_EXC = ("exc",)
_ALARM = ("alarm",)
_IGNORE = ("ignore",)
# every key seen in the samples, so that a line costs one dict lookup per token
_KEYS: dict[bytes, tuple] = {**_FIELDS, b"EXC": _EXC, b"ALARM": _ALARM, b"SN": _IGNORE, b"DESAT": _IGNORE,
                             b"PIDELTA": _IGNORE, b"EXC1": _IGNORE, b"SPOC": _IGNORE, b"RESVD": _IGNORE}
_TOKEN = re.compile(rb"([A-Za-z][A-Za-z0-9_]*)=(\S*)")
_STAMP = re.compile(rb"\s*(\d{1,2})/(\d{1,2})/(\d{2,4})\s+(\d{1,2}):(\d{2}):(\d{2})")

MAX_LINE = 1024  # a real line is ~200 characters


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
        self._probe_off: bool | None = None
        self._alarm: int | None = None
        self._flag_cache: dict[int, tuple[str, ...]] = {}
        self._time_cache: tuple[bytes, datetime | None] = (b"", None)

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
    def _time(self, stamp: bytes) -> datetime | None:
        cached = self._time_cache
        if cached[0] == stamp:
            return cached[1]
        m = _STAMP.match(stamp)
        when: datetime | None = None
        if m is not None:
            mo, dd, yy, hh, mi, ss = map(int, m.groups())
            try:
                when = datetime(yy + 2000 if yy < 100 else yy, mo, dd, hh, mi, ss, tzinfo=self.tz)
            except ValueError:
                when = None
            if when is not None and self.tz is not UTC:
                when = when.astimezone(UTC)
        self._time_cache = (stamp, when)
        return when

    def _line(self, line: bytes, out: list[DriverOutput]) -> None:
        if not line.isascii():
            self.stats.reject(f"not ASCII: {line[:40]!r}")
            return
        pairs = _TOKEN.findall(line)
        if not pairs:
            if line.strip():
                self.stats.reject(f"no KEY=VALUE token: {line[:40]!r}")
            return
        self.stats.frames_decoded += 1
        when = self._time(line[:20])
        exc = 0
        alarm_raw = None
        rows = []
        for key, raw in pairs:
            spec = _KEYS.get(key)
            if spec is None:
                spec = _KEYS.get(key.upper())
                if spec is None:
                    continue
            if spec is _EXC:
                if raw[1:2] != b"-":
                    try:
                        exc = int(raw.split(b":", 1)[0], 16)  # the trend format appends ":OffPat,SET"
                    except ValueError:
                        exc = 0
            elif spec is _ALARM:
                alarm_raw = raw
            elif spec is not _IGNORE:
                rows.append((spec, raw))
        flags = self._flag_cache.get(exc)
        if flags is None:
            flags = self._flag_cache[exc] = _flags_of(exc)
        blocked = exc & EXC_INVALIDATES
        current: dict[str, float | None] = {}
        n0 = len(out)
        for (param, unit, source, always, zero_missing), raw in rows:
            if raw[1:2] == b"-" or raw == b"-":
                value = None
                why = "no_data"
            else:
                try:
                    value = float(raw.rstrip(b"%"))
                    why = ""
                except ValueError:
                    value = None
                    why = "not_numeric"
            if value is None:
                if not always:
                    continue
                rflags = flags if why in flags else flags + (why,)
            elif blocked:
                value = None
                rflags = flags
            elif zero_missing and value == 0:
                value = None
                rflags = flags + ("zero",)
            else:
                rflags = flags
            current[param] = value
            out.append(_reading({"param": param, "value": value, "unit": unit, "valid": value is not None,
                                 "flags": rflags, "device_time": when, "source": source}))
        self.stats.readings += len(out) - n0
        # probe off / no sensor
        probe_off = bool(exc & EXC_PROBE_OFF)
        if probe_off != bool(self._probe_off) or (self._probe_off is None and probe_off):
            detail = ",".join(n for b, n in EXC_BITS.items() if b & EXC_PROBE_OFF & exc) or "sensor back"
            out.append(DeviceStatus(kind="probe_off", active=probe_off, param="spo2", detail=detail,
                                    flags=flags, device_time=when))
        self._probe_off = probe_off
        # device alarm bits
        if alarm_raw is not None and alarm_raw[1:2] != b"-":
            try:
                alarm = int(alarm_raw, 16)
            except ValueError:
                return
            if alarm != self._alarm:
                self._alarms(alarm, when, current, out)

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
