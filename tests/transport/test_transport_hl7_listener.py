"""End-to-end: a monitor connects to our HL7 MLLP listener on 127.0.0.1 and sends ORU^R01.

Messages are the IHE PCD Technical Framework appendix E examples from ../shared/vectors/hl7;
expected values are the ones written in that file's notes (NIBP 117/82 (90), HR 80, SpO2 99;
control id HP0122182658686QQ000CND119C0WS61 from its MSH-10).
"""

from __future__ import annotations

import socket
import time

import pytest
from transport_testkit import (
    Collector,
    LineDriver,
    MllpTestDriver,
    hl7_vector_messages,
    mllp,
    msa,
    read_mllp_ack,
    wait_until,
)

from chairside.domain.clock import ManualClock, WallClock
from chairside.transport import Hl7Listener, TransportConfig

pytestmark = pytest.mark.e2e

E11_CONTROL_ID = "HP0122182658686QQ000CND119C0WS61"
E12_CONTROL_ID = "0104ef190d604db188c3"
FAST = TransportConfig(read_timeout_s=0.05)


def _connect(listener: Hl7Listener) -> socket.socket:
    return socket.create_connection(listener.address, timeout=2.0)


@pytest.fixture
def messages(vectors):
    msgs = hl7_vector_messages(vectors)
    assert f"|{E11_CONTROL_ID}|" in msgs[0] and f"|{E12_CONTROL_ID}|" in msgs[1]
    return msgs


def test_listener_binds_loopback_by_default():
    lst = Hl7Listener(MllpTestDriver, clock=WallClock(), on_output=Collector(), port=0)
    lst.start()
    try:
        host, port = lst.address
        assert host == "127.0.0.1" and port > 0
    finally:
        lst.stop()


def test_oru_r01_over_mllp_gives_readings_and_ack(messages):
    clock = ManualClock()
    col = Collector()
    lst = Hl7Listener(MllpTestDriver, clock=clock, on_output=col, port=0, config=FAST)
    lst.start()
    try:
        with _connect(lst) as sock:
            up = col.wait_status("link_up")
            assert up.detail.startswith("127.0.0.1:")
            clock.advance(2.0)
            frame = mllp(messages[0])
            sock.sendall(frame[:37])  # split inside the message
            time.sleep(0.05)
            sock.sendall(frame[37:])
            ack = read_mllp_ack(sock)
            assert msa(ack)[1:3] == ["AA", E11_CONTROL_ID]
            got = {r.param: r.value for r in col.wait_readings(9)}
            # test driver: one reading per NM OBX, keyed by MDC code number
            assert got["150021"] == 117 and got["150022"] == 82 and got["150023"] == 90
            assert got["147842"] == 80 and got["150456"] == 99
            assert all(r.receive_time == clock.now() for r in col.readings())
            # a second message on the same connection: its own ACK
            sock.sendall(mllp(messages[1]))
            assert msa(read_mllp_ack(sock))[2] == E12_CONTROL_ID
            wait_until(lambda: lst.stats.bytes_out > 0, 2.0, "bytes_out counted")
            st = lst.stats
            assert st.peers == 1 and st.state == "up" and st.frames_decoded == 2
            assert st.bytes_in == len(frame) + len(mllp(messages[1]))
    finally:
        lst.stop()


def test_oru_r01_through_the_real_hl7_driver(messages):
    col = Collector()
    lst = Hl7Listener("hl7", clock=WallClock(), on_output=col, port=0, config=FAST)
    lst.start()
    try:
        with _connect(lst) as sock:
            sock.sendall(mllp(messages[0]))
            fields = msa(read_mllp_ack(sock))
            assert fields[1] in ("AA", "CA") and fields[2] == E11_CONTROL_ID
            col.wait_for(lambda: {"nibp_sys", "nibp_dia", "nibp_map", "hr", "spo2"}
                         <= {r.param for r in col.readings()}, 3.0, "the vitals of E.1.1")
            got = {r.param: r.value for r in col.readings()}
            assert (got["nibp_sys"], got["nibp_dia"], got["nibp_map"]) == (117, 82, 90)
            assert got["hr"] == 80 and got["spo2"] == 99
            assert all(r.receive_time is not None for r in col.readings())
    finally:
        lst.stop()


def test_each_connection_has_its_own_driver(messages):
    col = Collector()
    lst = Hl7Listener(MllpTestDriver, clock=WallClock(), on_output=col, port=0, config=FAST)
    lst.start()
    try:
        a, b = _connect(lst), _connect(lst)
        with a, b:
            wait_until(lambda: lst.peers == 2, 2.0, "two peers")
            fa, fb = mllp(messages[0]), mllp(messages[1])
            a.sendall(fa[:50])   # half of a message on A...
            b.sendall(fb)        # ...does not swallow B's message
            assert msa(read_mllp_ack(b))[2] == E12_CONTROL_ID
            a.sendall(fa[50:])
            assert msa(read_mllp_ack(a))[2] == E11_CONTROL_ID
        assert len(col.statuses("link_up")) == 1  # one monitor link, however many sockets
    finally:
        lst.stop()


def test_disconnect_raises_link_lost_after_grace_and_reconnect_restores(messages):
    col = Collector()
    lst = Hl7Listener(MllpTestDriver, clock=WallClock(), on_output=col, port=0, config=FAST, lost_grace_s=0.3)
    lst.start()
    try:
        with _connect(lst) as sock:
            col.wait_status("link_up")
            sock.sendall(mllp(messages[0]))
            read_mllp_ack(sock)
        t0 = time.monotonic()
        col.wait_status("link_lost", timeout=2.0)
        assert 0.25 <= time.monotonic() - t0 < 2.0
        assert lst.stats.peers == 0
        with _connect(lst) as sock:
            col.wait_status("link_lost", active=False)
            col.wait_status("link_up", count=2)
            sock.sendall(mllp(messages[1]))
            assert msa(read_mllp_ack(sock))[2] == E12_CONTROL_ID
    finally:
        lst.stop()


def test_per_message_connections_do_not_flap(messages):
    col = Collector()
    lst = Hl7Listener(MllpTestDriver, clock=WallClock(), on_output=col, port=0, config=FAST, lost_grace_s=1.0)
    lst.start()
    try:
        for msg in messages[:2]:
            with _connect(lst) as sock:
                sock.sendall(mllp(msg))
                read_mllp_ack(sock)
        time.sleep(0.2)
        assert col.statuses("link_lost") == [] and len(col.statuses("link_up")) == 1
    finally:
        lst.stop()


def test_no_data_while_nobody_sends():
    clock = ManualClock()
    col = Collector()
    lst = Hl7Listener(MllpTestDriver, clock=clock, on_output=col, port=0,
                      config=TransportConfig(read_timeout_s=0.05, no_data_after_s=10.0))
    lst.start()
    try:
        clock.advance(10.0)
        col.wait_status("no_data")
        with _connect(lst) as sock:
            sock.sendall(b"\x0bMSH|^~\\&|X||||||ORU^R01|c1|P|2.6\r\x1c\x0d")
            assert msa(read_mllp_ack(sock))[2] == "c1"
            col.wait_status("no_data", active=False)
    finally:
        lst.stop()


def test_stop_closes_connections_promptly(messages):
    lst = Hl7Listener(LineDriver, clock=WallClock(), on_output=Collector(), port=0, config=FAST)
    lst.start()
    sock = _connect(lst)
    wait_until(lambda: lst.peers == 1, 2.0, "a peer")
    t0 = time.monotonic()
    lst.stop()
    assert time.monotonic() - t0 < 1.0
    sock.settimeout(1.0)
    assert sock.recv(10) == b""  # our side closed the connection
    sock.close()
    with pytest.raises(OSError):
        socket.create_connection(lst.address, timeout=0.5).close()


def test_port_in_use_is_reported_at_start():
    first = Hl7Listener(LineDriver, clock=WallClock(), on_output=Collector(), port=0)
    first.start()
    try:
        second = Hl7Listener(LineDriver, clock=WallClock(), on_output=Collector(), port=first.address[1])
        with pytest.raises(OSError):
            second.start()
    finally:
        first.stop()
