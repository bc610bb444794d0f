"""The driver contract shared by every protocol module, and the driver registry.

Owns: ``Driver`` (abstract base), ``DriverStats``, ``SerialDefaults``, ``get_driver``.
Must not import: serial, sockets, clocks, textual.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import ClassVar

from chairside.domain.readings import DriverOutput

# name -> "module:Class"; a module is imported only when its driver is asked for.
_REGISTRY: dict[str, str] = {
    "ge-s5": "chairside.drivers.ge_s5:GeS5Driver",
    "masimo": "chairside.drivers.masimo:MasimoDriver",
    "hl7": "chairside.drivers.hl7:Hl7Driver",
}


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
