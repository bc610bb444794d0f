"""The driver contract shared by every protocol module, and the driver registry.

Owns: ``Driver`` (abstract base), ``DriverStats``, ``SerialDefaults``, ``get_driver``, and the
one validity rule every driver applies to a device value (``parse_number``, ``check_value``,
``PLAUSIBLE``).
Must not import: serial, sockets, clocks, textual.

The validity rule (every driver, every value; the bounds in ``chairside/data/plausible.toml``):

* Text numbers are read by ``parse_number``: an optional sign, digits, an optional decimal
  point and digits (HL7 NM; Masimo's fields). Python's ``float()`` also takes ``1_000``,
  ``1e3``, `` nan``, ``inf`` and ``infinity``: none of them is a device number, they are
  ``not_numeric``.
* ``check_value(param, value)`` returns None for a possible value, else the flag that makes
  the reading invalid: ``not_finite:<v>`` (NaN, infinity, a digit string too long for a
  float), ``negative:<v>`` (below zero where the parameter's minimum is zero),
  ``out_of_range:<v>`` (outside the parameter's plausible range). A reading so flagged has
  ``value=None`` and ``valid=False``: a value that cannot be a measurement is never shown,
  stored or alarmed on as one, and ``decode`` prints ``null`` (never ``NaN``/``Infinity``).
"""

from __future__ import annotations

import importlib
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import ClassVar

from chairside.domain.readings import DriverOutput

# name -> "module:Class"; a module is imported only when its driver is asked for.
_REGISTRY: dict[str, str] = {
    "ge-s5": "chairside.drivers.ge_s5:GeS5Driver",
    "masimo": "chairside.drivers.masimo:MasimoDriver",
    "hl7": "chairside.drivers.hl7:Hl7Driver",
}


def _load_plausible() -> dict[str, tuple[float, float]]:
    text = resources.files("chairside.data").joinpath("plausible.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    out: dict[str, tuple[float, float]] = {}
    for param, spec in data.items():
        if not isinstance(spec, dict):
            continue
        lo, hi = float(spec["min"]["value"]), float(spec["max"]["value"])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"plausible.toml [{param}]: min {lo} / max {hi} is not a range")
        out[param] = (lo, hi)
    return out


PLAUSIBLE: dict[str, tuple[float, float]] = _load_plausible()
_NUMBER_BYTES = b"0123456789+-."
_isfinite = math.isfinite


def parse_number(raw: bytes) -> float | None:
    """A decimal number as devices write it (``[+|-]digits[.digits]``), else None.

    Non-finite results (a digit string too long for a float) come back as they are:
    ``check_value`` flags them.
    """
    if not raw or raw.translate(None, _NUMBER_BYTES):
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _show(value: float) -> str:
    return repr(value) if not _isfinite(value) else (f"{value:.0f}" if value.is_integer() else f"{value:g}")


def check_value(param: str, value: float) -> str | None:
    """None when ``value`` is a possible value of ``param``; else the invalidating flag."""
    if not _isfinite(value):
        return f"not_finite:{_show(value)}"
    bounds = PLAUSIBLE.get(param)
    if bounds is None:
        return None
    lo, hi = bounds
    if value < lo:
        return f"negative:{_show(value)}" if value < 0 <= lo else f"out_of_range:{_show(value)}"
    if value > hi:
        return f"out_of_range:{_show(value)}"
    return None


@dataclass(frozen=True)
class SerialDefaults:
    """Serial-line settings a driver expects; the transport applies them, users override."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"  # serial.PARITY_* letters: N, E, O
    stopbits: float = 1
    rtscts: bool = False
    xonxoff: bool = False


@dataclass
class DriverStats:
    frames_decoded: int = 0
    frames_rejected: int = 0
    bytes_skipped: int = 0
    readings: int = 0
    errors: list[str] = field(default_factory=list)  # last few rejection reasons, bounded

    def reject(self, reason: str, keep: int = 20) -> None:
        self.frames_rejected += 1
        self.errors.append(reason)
        if len(self.errors) > keep:
            del self.errors[: len(self.errors) - keep]


class Driver:
    """Base class of every protocol driver.

    ``feed`` takes any chunk of bytes (a frame may be split anywhere) and returns the
    readings and device-status records completed by it. It never raises on bad input:
    bad frames are counted in ``stats`` and skipped. Internal buffers are bounded by
    ``MAX_BUFFER``.

    ``on_connect`` returns bytes the host must send when the link comes up (GE's request
    record); ``on_stream_stalled`` returns bytes to send when data stopped arriving.
    ``take_output`` returns bytes the driver wants written back (HL7 ACKs).
    """

    name: ClassVar[str] = ""
    serial_defaults: ClassVar[SerialDefaults] = SerialDefaults()
    MAX_BUFFER: ClassVar[int] = 64 * 1024

    def __init__(self) -> None:
        self.stats = DriverStats()

    def feed(self, data: bytes) -> list[DriverOutput]:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_connect(self) -> bytes:
        return b""

    def on_stream_stalled(self) -> bytes:
        return self.on_connect()

    def take_output(self) -> bytes:
        return b""

    def reset(self) -> None:
        """Forget any partial frame (after a reconnect)."""

    def flush(self) -> list[DriverOutput]:
        """End of input (a file, a closed connection): finish what a terminator would have
        finished, e.g. an HL7 message sent without MLLP whose end is only known at EOF."""
        return []


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_driver(name: str, **options: object) -> Driver:
    """A new driver instance by name; ValueError naming the choices for an unknown one."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown driver {name!r}; choose one of: {', '.join(available())}") from None
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(**options)
