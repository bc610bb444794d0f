"""The simulator as a port: the pyserial ``sim://`` URL, the pty and loopback TCP servers,
and the ``chairside simulate`` / ``chairside scenarios`` commands (issue 4, DESIGN.md)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import serial

import simulators
from chairside.cli import main
from chairside.drivers import get_driver
from simulators.api import generate
from simulators.engine import Simulation
from simulators.servers import serve_pty, serve_tcp

simulators.register()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _open(url: str, clock: FakeClock | None = None, **kw):
    port = serial.serial_for_url(url, do_not_open=True, **kw)
    if clock is not None:
        port.clock = clock
    port.open()
    return port


def test_register_is_idempotent():
    simulators.register()
    simulators.register()
    assert serial.protocol_handler_packages.count("simulators") == 1


def test_sim_url_paced_by_wall_time_times_speed():
    clock = FakeClock()
    port = _open("sim://uneventful?driver=masimo&seed=1&speed=2", clock, timeout=0)
    assert port.read(10000) == b""
    clock.now += 10.0  # 10 wall seconds at x2 = 20 simulated seconds = 20 lines
    data = port.read(100000)
    assert data.count(b"\r\n") == 20
    drv = get_driver("masimo")
    drv.feed(data)
    assert drv.stats.frames_decoded == 20
    port.close()


def test_sim_url_same_bytes_as_generate():
    port = _open("sim://nibp-failures?driver=hl7&seed=3&speed=max&duration=600&start=2026-01-01T09:00:00",
                 timeout=0)
    data = b""
    while True:
        chunk = port.read(65536)
        if not chunk:
            break
        data += chunk
    port.close()
    assert data == b"".join(c for _, c in generate("nibp-failures", "hl7", 3, 600))


def test_sim_url_ge_waits_for_the_request_written_by_the_host():
    from chairside.drivers.ge_s5 import encode_request

    clock = FakeClock()
    port = _open("sim://uneventful?driver=ge-s5&seed=1", clock, timeout=0)
    clock.now += 30
    assert port.read(100000) == b""  # a real S/5 is silent until asked
    port.write(encode_request(5))
    clock.now += 30
    drv = get_driver("ge-s5")
    drv.feed(port.read(1000000))
    assert drv.stats.frames_decoded == 6
    assert port.simulation.t == 60
    port.close()


def test_sim_url_instructor_controls_through_the_port():
    clock = FakeClock()
    port = _open("sim://uneventful?driver=masimo&autostart=1", clock, timeout=0)
    with port.lock:
        port.simulation.pause()
    clock.now += 30
    assert port.read(100000) == b""
    with port.lock:
        port.simulation.resume()
        port.simulation.inject("artefact", by="instructor", kind="probe_off")
    clock.now += 10
    lines = port.read(100000).splitlines()
    assert len(lines) == 10 and b"EXC=000020" in lines[-1]
    port.close()


@pytest.mark.parametrize("url, message", [
    ("sim://uneventful?driver=nonin", "unknown driver"),
    ("sim://no-such-scenario?driver=masimo", "unknown scenario"),
    ("sim://uneventful?driver=masimo&speed=fast", "bad option value"),
    ("sim://uneventful?driver=masimo&colour=red", "unknown option"),
])
def test_sim_url_errors(url, message):
    with pytest.raises(serial.SerialException, match=message):
        serial.serial_for_url(url)


def test_sim_url_blocking_read_with_timeout_returns_data():
    port = serial.serial_for_url("sim://uneventful?driver=masimo&speed=50", timeout=1.0)
    t0 = time.monotonic()
    data = port.read(300)
    assert len(data) == 300
    assert time.monotonic() - t0 < 1.5
    port.close()


@pytest.mark.e2e
def test_tcp_server_streams_to_a_client_and_takes_the_ge_request():
    from chairside.drivers.ge_s5 import encode_request

    sim = Simulation("uneventful", 1, "ge-s5", speed=200.0, auto_request=False)
    ready, stop = [], threading.Event()
    th = threading.Thread(target=serve_tcp, args=(sim, 0),
                          kwargs={"on_ready": ready.append, "stop": stop, "duration_s": 3000}, daemon=True)
    th.start()
    for _ in range(100):
        if ready:
            break
        time.sleep(0.02)
    host, port = ready[0].split(":")
    assert host == "127.0.0.1"
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(encode_request(5))
        drv = get_driver("ge-s5")
        deadline = time.monotonic() + 5
        while drv.stats.frames_decoded < 3 and time.monotonic() < deadline:
            drv.feed(conn.recv(65536))
    stop.set()
    th.join(5)
    assert drv.stats.frames_decoded >= 3 and drv.stats.frames_rejected == 0


@pytest.mark.e2e
def test_pty_server_reads_like_a_serial_port():
    sim = Simulation("uneventful", 1, "masimo", speed=100.0)
    ready, stop = [], threading.Event()
    th = threading.Thread(target=serve_pty, args=(sim,),
                          kwargs={"on_ready": ready.append, "stop": stop, "duration_s": 3000}, daemon=True)
    th.start()
    for _ in range(100):
        if ready:
            break
        time.sleep(0.02)
    port = serial.serial_for_url(ready[0], timeout=0.2)
    data = b""
    deadline = time.monotonic() + 5
    while data.count(b"\r\n") < 5 and time.monotonic() < deadline:
        data += port.read(4096)
    port.close()
    stop.set()
    th.join(5)
    drv = get_driver("masimo")
    drv.feed(data[data.index(b"\r\n") + 2:])  # the first line may be cut
    assert drv.stats.frames_decoded >= 3


# --- commands ---------------------------------------------------------------------------
def test_simulate_out_writes_the_generated_bytes(tmp_path, capsys):
    out = tmp_path / "masimo.raw"
    rc = main(["simulate", "--scenario", "probe-off", "--driver", "masimo", "--seed", "9", "--duration", "120",
               "--out", str(out), "--events-out", str(tmp_path / "events.jsonl")])
    assert rc == 0
    assert out.read_bytes() == b"".join(c for _, c in generate("probe-off", "masimo", 9, 120))
    assert out.read_bytes().count(b"\r\n") == 120
    err = capsys.readouterr().err
    assert "seed 9" in err and "120 s simulated" in err
    first = (tmp_path / "events.jsonl").read_text().splitlines()[0]
    assert '"kind": "seed"' in first


@pytest.mark.parametrize("argv, message", [
    (["--scenario", "nope", "--driver", "masimo", "--out", "x"], "unknown scenario"),
    (["--scenario", "uneventful", "--driver", "masimo", "--duration", "-3", "--out", "x"], "--duration"),
    (["--scenario", "uneventful", "--driver", "masimo", "--speed", "0", "--pty"], "--speed"),
])
def test_simulate_bad_usage_exits_2_with_one_line(argv, message, capsys):
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_simulate_bad_scenario_file_names_file_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('schema = "chairside-scenario/1"\nname = "bad"\ntitle = "b"\nduration_s = -1\n')
    assert main(["simulate", "--scenario", str(bad), "--driver", "hl7", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "duration_s" in err


def test_scenarios_command_lists_the_ten(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in ("uneventful", "hypertensive-surge", "vasovagal", "over-sedation", "emergence-agitation",
                 "nausea-vomiting", "probe-off", "nibp-failures", "tachyarrhythmia", "chronic-pain-4h"):
        assert name in out
    assert "trains:" in out and "2 h 20 min" in out
    assert "expects: pause_infusion, nibp_stat, call_prescriber" in out  # hypertensive-surge.toml [[expected]]


def test_scenarios_json_lists_states_and_expected_actions(capsys):
    import json
    import tomllib

    from simulators.scenario import SCENARIO_DIR

    assert main(["scenarios", "--json"]) == 0
    rows = {d["name"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    for name, row in rows.items():
        raw = tomllib.loads((SCENARIO_DIR / f"{name}.toml").read_text(encoding="utf-8"))
        assert row["states"] == list(raw.get("states", {}))
        assert row["expected_actions"] == list(dict.fromkeys(e["action"] for e in raw.get("expected", [])))


@pytest.mark.e2e
def test_simulate_pty_prints_a_device_path_a_port_can_read():
    proc = subprocess.Popen([sys.executable, "-m", "chairside.cli", "simulate", "--scenario", "uneventful",
                             "--driver", "masimo", "--pty", "--speed", "20", "--duration", "600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/")
        assert os.path.exists(path)
        port = serial.serial_for_url(path, timeout=0.3)
        data = b""
        deadline = time.monotonic() + 10
        while data.count(b"\r\n") < 4 and time.monotonic() < deadline:
            data += port.read(4096)
        port.close()
        assert data.count(b"\r\n") >= 4 and b"SPO2=" in data
    finally:
        proc.terminate()
        proc.wait(10)
