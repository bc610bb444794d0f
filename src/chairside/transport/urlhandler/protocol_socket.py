"""``socket://HOST:PORT`` that keeps what the peer sent before ``open()`` returned.

Owns: ``Serial``, pyserial's raw-TCP port (``serial.urlhandler.protocol_socket.Serial``)
with one change. pyserial's ``open()`` ends with ``reset_input_buffer()``, which
``recv()``s and drops whatever the peer sent since the TCP connect completed: a server that
writes as soon as it accepts (an HL7 gateway, a serial-to-Ethernet converter replaying its
buffer, our simulated monitor) lost its first bytes. On a socket those are real data, not
stale line noise, so the reset is skipped while the port opens; an explicit
``reset_input_buffer()`` afterwards still drops input as pyserial documents.
Found by ``serial.serial_for_url`` through ``chairside.transport.urlhandler.register()``.
May import: serial, stdlib. Must not import: any other chairside package, textual.
"""

from __future__ import annotations

from serial.urlhandler import protocol_socket


class Serial(protocol_socket.Serial):
    """pyserial's ``socket://`` port that does not drop input while it opens."""

    _opening = False

    def open(self) -> None:
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def reset_input_buffer(self) -> None:
        if self._opening:
            return  # the bytes already received are the peer's first data: keep them
        super().reset_input_buffer()
