"""Simulated patient and monitor: physiology (PK, effect site, noise, artefacts),
scenario files, device emulators that produce protocol bytes through the drivers'
encoders, and the pty/TCP servers that stand in for a monitor.

Owns: ``register()``, which makes ``serial.serial_for_url("sim://<scenario>?driver=...")``
open the simulator like a real port (appends this package to
``serial.protocol_handler_packages``; the handler is ``simulators.protocol_sim``).
Public API: ``simulators.api`` (generate, load_scenario, list_scenarios).
May import: chairside.domain, chairside.drivers (encoders), numpy, pydantic, stdlib.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
The core (src/chairside) never imports this package except cli.py, which may start a
simulator as its embedded default source.
"""

from __future__ import annotations


def register() -> None:
    """Register the ``sim://`` URL scheme with pyserial (idempotent)."""
    import serial

    if "simulators" not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append("simulators")
