"""#17 "The HL7 listener": an independent MLLP client (python-hl7's ``MLLPClient``) gets
``AA``/``AE``/``AR`` with an ERR segment (HL7 v2.6 Table 0008 / 0357, IHE PCD TF-2 B.2/B.3)
while 50 idle connections are held; idle and trickling connections time out; refusals are
logged and counted; a message beyond the size cap is answered AR and dropped in bounded
memory; escape sequences are decoded. Everything on 127.0.0.1.

Expected codes come from the standard's tables (0008: AA accept, AE error, AR reject; 0357:
102 data type error, 200 unsupported message type, 203 unsupported version id), not from
the code under test.
"""

from __future__ import annotations

import logging
import socket
import time
import tracemalloc
from pathlib import Path

import pytest
from hl7.client import MLLPClient

from chairside.domain.clock import WallClock
from chairside.domain.readings import DeviceStatus, Reading
from chairside.drivers.hl7 import Hl7Driver
from chairside.transport import Hl7Listener, TransportConfig

pytestmark = pytest.mark.e2e

VEC = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "hl7" / "ihe-pcd-tf-appendix-e.hl7.txt"
MSH = "MSH|^~\\&|MON|ICU|||20240101120000+0000||{typ}|{ctl}|P|{ver}|||AL|NE"
OBR = "OBR|1|||182777000^monitoring of patient^SCT|||20240101115900"


def oru(ctl: str, spo2: str = "97", typ: str = "ORU^R01^ORU_R01", ver: str = "2.6") -> str:
    return "\r".join([MSH.format(typ=typ, ctl=ctl, ver=ver), "PID|||1", OBR,
                      f"OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.1|{spo2}|262688^MDC_DIM_PERCENT^MDC|||||F"]) + "\r"


def segments(ack: bytes) -> dict[str, list[str]]:
    body = ack.strip(b"\x0b\x1c\r").decode()
    return {seg.split("|", 1)[0]: seg.split("|") for seg in body.split("\r") if seg}


class Outputs:
    def __init__(self) -> None:
        self.items: list = []

    def __call__(self, items) -> None:
        self.items.extend(items)

    def readings(self) -> list[Reading]:
        return [x for x in self.items if isinstance(x, Reading)]


def listener(out: Outputs, **cfg) -> Hl7Listener:
    lst = Hl7Listener("hl7", clock=WallClock(), on_output=out, port=0,
                      config=TransportConfig(read_timeout_s=0.05, **cfg))
    lst.start()
    return lst


def send(client: MLLPClient, message: str | bytes) -> dict[str, list[str]]:
    client.socket.settimeout(5)
    return segments(client.send_message(message))


def test_mllp_client_gets_aa_ae_ar_while_50_idle_connections_are_held():
    out = Outputs()
    lst = listener(out)
    idlers: list[socket.socket] = []
    try:
        host, port = lst.address
        for _ in range(50):
            idlers.append(socket.create_connection((host, port), timeout=2))
        time.sleep(0.3)
        with MLLPClient(host, port) as client:
            ok = send(client, oru("C1"))
            assert ok["MSA"][1:3] == ["AA", "C1"] and "ERR" not in ok
            bad_value = send(client, oru("C2", spo2="abc"))
            assert bad_value["MSA"][1:3] == ["AE", "C2"]
            assert bad_value["ERR"][2] == "OBX^1^5" and bad_value["ERR"][3].startswith("102^")
            assert bad_value["ERR"][4] == "E"
            adt = send(client, "\r".join([MSH.format(typ="ADT^A01^ADT_A01", ctl="C3", ver="2.6"),
                                          "PID|||1", "PV1||I"]) + "\r")
            assert adt["MSA"][1:3] == ["AR", "C3"] and adt["ERR"][3].startswith("200^")
            v99 = send(client, oru("C4", ver="9.9"))
            assert v99["MSA"][1:3] == ["AR", "C4"] and v99["ERR"][3].startswith("203^")
            no_msh = send(client, "PID|||1\r" + OBR + "\r")
            assert no_msh["MSA"][1] == "AR" and no_msh["ERR"][3].split("^")[2] == "HL70357"
            junk = bytes(b for b in range(256) if b not in (0x0B, 0x1C)) * 4
            binary = send(client, junk)
            assert binary["MSA"][1] == "AR" and "ERR" in binary
            again = send(client, oru("C5", spo2="98"))
            assert again["MSA"][1:3] == ["AA", "C5"]
        time.sleep(0.2)
        values = [(r.value, r.valid) for r in out.readings() if r.param == "spo2"]
        # C1 and C5 recorded; C2's 'abc' is a missing value; nothing from C3, C4, the block
        # without MSH or the junk
        assert values == [(97.0, True), (None, False), (98.0, True)]
    finally:
        for s in idlers:
            s.close()
        lst.stop()


def test_a_delivering_monitor_keeps_its_slot_and_idlers_are_evicted(caplog):
    out = Outputs()
    lst = listener(out, listen_max_connections=4)
    idlers: list[socket.socket] = []
    try:
        host, port = lst.address
        with MLLPClient(host, port) as monitor:
            assert send(monitor, oru("M1"))["MSA"][1] == "AA"
            for _ in range(12):
                idlers.append(socket.create_connection((host, port), timeout=2))
            time.sleep(0.3)
            assert send(monitor, oru("M2"))["MSA"][1:3] == ["AA", "M2"]
        assert lst.evicted >= 12 - 3 and lst.refused == 0
    finally:
        for s in idlers:
            s.close()
        lst.stop()


def test_refusals_are_logged_and_counted(caplog):
    out = Outputs()
    # nobody on 127.0.0.1 is a configured sender: when the slots are full, new ones are refused
    lst = listener(out, listen_max_connections=2, listen_senders=("192.0.2.1",))
    held: list[socket.socket] = []
    try:
        host, port = lst.address
        with caplog.at_level(logging.WARNING, logger="chairside.transport.hl7_listener"):
            for _ in range(5):
                held.append(socket.create_connection((host, port), timeout=2))
            deadline = time.monotonic() + 3
            while lst.refused < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert lst.refused == 3
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 3 and "not a configured sender" in refusals[0].getMessage()
        assert any("refused" in e for e in lst.stats.errors)
    finally:
        for s in held:
            s.close()
        lst.stop()


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closes ``sock`` (sending ``trickle`` one byte every 0.1 s)."""
    start = time.monotonic()
    sock.settimeout(0.1)
    i = 0
    while time.monotonic() - start < seconds:
        try:
            if trickle:
                sock.sendall(trickle[i % len(trickle):i % len(trickle) + 1])
                i += 1
            data = sock.recv(1024)
            if data == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def test_idle_and_trickling_connections_time_out():
    out = Outputs()
    lst = listener(out, listen_idle_timeout_s=0.6, listen_message_timeout_s=0.6)
    try:
        host, port = lst.address
        with socket.create_connection((host, port), timeout=2) as idle:
            t = _closed_within(idle, 5)
            assert t is not None and t < 3, "an idle connection is closed"
        with socket.create_connection((host, port), timeout=2) as slow:
            # slowloris: a message that never ends, one byte at a time
            t = _closed_within(slow, 5, trickle=b"\x0bMSH|^~\\&|MON|ICU|||2024||ORU^R01|S1|P|2.6\rOBX|1|NM|" * 50)
            assert t is not None and t < 3, "a trickling connection is closed"
        assert lst.timed_out >= 2
        with MLLPClient(host, port) as client:  # the listener still serves
            assert send(client, oru("after"))["MSA"][1] == "AA"
    finally:
        lst.stop()


def test_a_message_beyond_the_cap_is_rejected_and_dropped_through_the_listener():
    out = Outputs()
    lst = listener(out, listen_max_message_bytes=4096)
    try:
        host, port = lst.address
        big = oru("BIG").replace(OBR, "\r".join([OBR] * 200))
        assert len(big) > 4096
        with MLLPClient(host, port) as client:
            client.socket.settimeout(5)
            client.socket.sendall(b"\x0b" + big.encode() + b"\x1c\r")
            ack = segments(client.socket.recv(4096))
            assert ack["MSA"][1:3] == ["AR", "BIG"]
            assert send(client, oru("SMALL"))["MSA"][1:3] == ["AA", "SMALL"]
        time.sleep(0.2)
        assert [r.value for r in out.readings()] == [97.0]  # only SMALL's
    finally:
        lst.stop()


def test_fifty_megabytes_of_obr_segments_in_bounded_memory():
    d = Hl7Driver()
    head = ("\x0b" + MSH.format(typ="ORU^R01^ORU_R01", ctl="HUGE", ver="2.6") + "\r").encode()
    chunk = b"OBR|1|||182777000^monitoring of patient^SCT|||20240101115900\r" * 1000  # ~63 kB
    tracemalloc.start()
    try:
        d.feed(head)
        sent = len(head)
        while sent < 50_000_000:
            d.feed(chunk)
            sent += len(chunk)
        out = d.feed(b"\x1c\r")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, f"peak {peak} bytes while reading 50 MB"
    assert [x for x in out if isinstance(x, Reading)] == []
    ack = segments(d.take_output())
    assert ack["MSA"][1:3] == ["AR", "HUGE"] and d.buffered == 0


def test_escape_sequences_in_text_fields():
    # HL7 v2.6 2.7.4: \F\ | \S\ ^ \T\ & \R\ ~ \E\ \ and \Xhh\ hexadecimal
    text = "Low\\S\\SpO2 \\T\\ \\F\\ \\R\\ \\E\\ \\X41\\"
    msg = "\r".join([
        MSH.format(typ="ORU^R40^ORU_R40", ctl="A1", ver="2.6"), "PID|||1",
        "OBR|1|||196616^MDC_EVT_ALARM^MDC|||20240101120000",
        f"OBX|1|ST|196670^MDC_EVT_LO^MDC|1.3.1.150456.1|{text}|||L~PM~SP|||F",
        "OBX|2|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.3.1.150456.3|st\\X61\\rt||||||F"]) + "\r"
    d = Hl7Driver()
    out = d.feed(b"\x0b" + msg.encode() + b"\x1c\r")
    (alarm,) = [x for x in out if isinstance(x, DeviceStatus)]
    assert alarm.detail == "MDC_EVT_LO Low^SpO2 & | ~ \\ A"
    assert "phase:start" in alarm.flags


def test_a_busy_listen_port_is_one_line_exit_2_and_no_session_file(tmp_path):
    import os
    import subprocess
    import sys

    session = tmp_path / "busy.chairside"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, CHAIRSIDE_LOG_DIR=str(tmp_path / "log"))
        env.pop("CHAIRSIDE_CONFIG", None)
        r = subprocess.run([str(Path(sys.executable).parent / "chairside"), "record", "--port",
                            f"listen://127.0.0.1:{port}", "--driver", "hl7", "--session", str(session),
                            "--duration", "1", "--raw", str(tmp_path / "busy.csraw")],
                           capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "Traceback" not in r.stderr
    assert not session.exists() and not (tmp_path / "busy.csraw").exists()


def test_binding_every_interface_names_the_exposure():
    from chairside.transport import port_warning

    assert port_warning("listen://127.0.0.1:2575") is None
    assert port_warning("listen://localhost:2575") is None
    assert port_warning("socket://127.0.0.1:2575") is None
    warning = port_warning("listen://0.0.0.0:2575")
    assert warning is not None and "0.0.0.0:2575" in warning and "every network interface" in warning
    assert "\n" not in warning
    assert "192.168.1.20" in (port_warning("listen://192.168.1.20:2575") or "")


def test_listener_limits_come_from_the_settings(monkeypatch, tmp_path):
    from chairside.settings import load_settings
    from chairside.transport import config_from_settings

    monkeypatch.setenv("CHAIRSIDE_HL7_MAX_CONNECTIONS", "3")
    monkeypatch.setenv("CHAIRSIDE_HL7_IDLE_TIMEOUT_S", "45")
    monkeypatch.setenv("CHAIRSIDE_HL7_SENDERS", '["10.1.2.3"]')
    (tmp_path / "config.toml").write_text("")
    monkeypatch.setenv("CHAIRSIDE_CONFIG", str(tmp_path / "config.toml"))
    cfg = config_from_settings(load_settings())
    assert cfg.listen_max_connections == 3 and cfg.listen_idle_timeout_s == 45
    assert cfg.listen_senders == ("10.1.2.3",)
    defaults = config_from_settings(None)
    assert defaults.listen_max_message_bytes == 1 << 20  # the default: 1 MB
    lst = Hl7Listener("hl7", clock=WallClock(), on_output=Outputs(), port=0, config=cfg)
    assert lst.max_connections == 3 and lst.senders == {"10.1.2.3"}


def test_stats_after_stop_are_figures_not_a_crash():
    lst = listener(Outputs())
    host, port = lst.address
    lst.stop()
    st = lst.stats
    assert st.port == f"tcp://{host}:{port}" and st.state == "stopped"
