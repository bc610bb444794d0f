"""Drivers: sans-I/O monitor protocol parsers and encoders, one module per protocol.

Owns: ``feed(bytes) -> list[Reading | DeviceStatus]`` parsers with bounded buffers,
resynchronisation and counters; ``encode_*`` functions that emulators use to speak the
protocol. The registry maps a driver name (``ge-s5``, ``masimo``, ``hl7``) to its class.
May import: chairside.domain, stdlib. Must not import: serial, sockets, threads, clocks,
textual, or any other chairside package. No I/O, no sleeping, no wall clock.
"""

from chairside.drivers.base import Driver, DriverStats, SerialDefaults, available, get_driver

__all__ = ["Driver", "DriverStats", "SerialDefaults", "available", "get_driver"]
