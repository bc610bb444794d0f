"""pyserial URL handlers of our own (pyserial's ``serial/urlhandler/protocol_<scheme>.py``
model): ``serial.serial_for_url("<scheme>://...")`` imports ``protocol_<scheme>`` from each
package in ``serial.protocol_handler_packages`` in turn and uses the first one found.

Owns: ``register()``, which puts this package FIRST in that list (idempotent), so its
handlers replace pyserial's own for the same scheme: ``protocol_socket`` (``socket://``
that keeps the bytes a server sends as soon as it accepts). Called by
``chairside.transport.serial_link`` on import, i.e. before any port is opened.
May import: serial, stdlib. Must not import: any other chairside package, textual.
"""

from __future__ import annotations

import serial

PACKAGE = __name__


def register() -> None:
    """Make ``serial.serial_for_url`` find this package's handlers before pyserial's own."""
    packages = serial.protocol_handler_packages
    if packages[:1] != [PACKAGE]:
        if PACKAGE in packages:
            packages.remove(PACKAGE)
        packages.insert(0, PACKAGE)
