"""Our pyserial URL handler for ``socket://`` (chairside.transport.urlhandler): found by
``serial.serial_for_url`` before pyserial's own, keeps what the server sent while the port
opened, and still drops input on an explicit ``reset_input_buffer()`` (pyserial's meaning)."""

from __future__ import annotations

import socket
import time

import serial

import chairside.transport  # noqa: F401 - registers the handlers, as every port opening does
from chairside.transport.serial_link import open_port
from chairside.transport.urlhandler import PACKAGE
from chairside.transport.urlhandler.protocol_socket import Serial as OurSocket


def _listener() -> socket.socket:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    return srv


def test_socket_urls_get_our_handler_first():
    assert serial.protocol_handler_packages[0] == PACKAGE
    port = serial.serial_for_url("socket://127.0.0.1:9", do_not_open=True)
    assert type(port) is OurSocket


def test_first_bytes_are_kept_and_an_explicit_reset_still_drops():
    srv = _listener()
    host, number = srv.getsockname()
    # the server's greeting is in the client's socket buffer before open() returns:
    # connect happens inside open(); accept and send run while we hold the open
    client = serial.serial_for_url(f"socket://{host}:{number}", do_not_open=True, timeout=1.0)
    real_reconfigure = OurSocket._reconfigure_port

    def send_during_open(self):
        real_reconfigure(self)
        conn, _ = srv.accept()
        conn.sendall(b"HELLO\n")
        send_during_open.conn = conn
        time.sleep(0.1)  # the bytes arrive before open() goes on to reset the input

    OurSocket._reconfigure_port = send_during_open
    try:
        client.open()
    finally:
        OurSocket._reconfigure_port = real_reconfigure
    try:
        assert client.read(6) == b"HELLO\n"
        send_during_open.conn.sendall(b"stale")
        time.sleep(0.1)
        client.reset_input_buffer()
        send_during_open.conn.sendall(b"new")
        assert client.read(3) == b"new"
    finally:
        client.close()
        send_during_open.conn.close()
        srv.close()


def test_open_port_opens_through_the_handler():
    srv = _listener()
    host, number = srv.getsockname()
    port = open_port(f"socket://{host}:{number}", {}, timeout=0.5, write_timeout=0.5)
    try:
        assert isinstance(port, OurSocket) and port.is_open
    finally:
        port.close()
        srv.close()
