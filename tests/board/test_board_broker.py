"""The clinic board through a real Mosquitto broker (issue 18): three ``record --broker``
processes on simulated monitors and a headless board; the surge shows with its priority;
a broker restart loses and duplicates no alarm event (by the record's seq); a chair killed
with SIGKILL shows OFFLINE within 2 s (Last Will); an unreachable broker is a notice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chairside.board.mqtt import BoardSubscriber, parse_broker
from chairside.board.state import BoardModel
from chairside.store import read_session
from broker_kit import Broker

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-c", "import sys; from chairside.cli import main; sys.exit(main())"]


def record(broker: Broker, chair: str, scenario: str, path: Path, *, seed: int, speed: float = 60.0,
           duration: float = 3600.0) -> subprocess.Popen:
    env = dict(os.environ, CHAIRSIDE_SESSION_DIR=str(path.parent))
    return subprocess.Popen([*CLI, "record", "--quiet", "--port", f"sim://{scenario}?driver=ge-s5&seed={seed}&speed={speed:g}",
                             "--driver", "ge-s5", "--session", str(path), "--duration", str(duration),
                             "--broker", broker.url, "--chair", chair, "--patient", f"PT-{chair}"],
                            stdout=subprocess.DEVNULL, stderr=open(path.with_suffix(".stderr"), "w"), env=env)


def wait(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def board(broker: Broker, name: str = "test-board") -> tuple[BoardModel, BoardSubscriber]:
    model = BoardModel()
    sub = BoardSubscriber(parse_broker(broker.url), model, client_id=name)
    sub.start()
    wait(sub.connected.is_set, 10, "the board's connection")
    return model, sub


def view(model: BoardModel, chair: str) -> dict:
    return next((c for c in model.snapshot() if c["chair"] == chair), {})


def alarm_seqs(path: Path) -> set[int]:
    kinds = {"alarm_raised", "alarm_escalated", "alarm_acknowledged", "alarm_silenced", "alarm_cleared"}
    return {e.seq for e in read_session(path).events if e.kind in kinds}


def test_three_chairs_a_surge_and_a_broker_restart(broker, tmp_path):
    model, sub = board(broker)
    paths = {f"chair-{i}": tmp_path / f"chair-{i}.chairside" for i in (1, 2, 3)}
    scen = {"chair-1": "uneventful", "chair-2": "hypertensive-surge", "chair-3": "uneventful"}
    procs = {c: record(broker, c, scen[c], p, seed=i + 1, duration=2700) for i, (c, p) in enumerate(paths.items())}
    try:
        wait(lambda: all(view(model, c).get("status") == "ok" for c in paths), 30, "three chairs on the board")
        st = view(model, "chair-2")["state"]
        assert st["pseudonym"] == "PT-chair-2" and "name" not in st
        # the surge (>= 180/110 from ~20 min of simulated time: x60 = ~20 s) with its priority
        surge = wait(lambda: [a for a in (view(model, "chair-2")["state"] or {}).get("alarms", [])
                              if a["priority"] == "high"], 150, "chair-2's high alarm")
        assert surge
        # the broker goes away for a while and comes back
        broker.stop()
        time.sleep(4)
        broker.start()
        for c, p in procs.items():
            try:
                p.wait(timeout=180)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{c}'s record did not end: {paths[c].with_suffix('.stderr').read_text()}") from None
            assert p.returncode == 0, (c, paths[c].with_suffix(".stderr").read_text())
        wait(lambda: all(view(model, c).get("state", {}) and not view(model, c)["state"]["session_open"]
                         for c in paths), 30, "the closed sessions' states")
        for c, path in paths.items():
            recorded = alarm_seqs(path)
            seen = set(model.chairs[c].alarms_seen)
            assert seen == recorded, (c, sorted(recorded - seen), sorted(seen - recorded))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        sub.stop()


def test_a_killed_chair_is_offline_within_two_seconds(broker, tmp_path):
    model, sub = board(broker)
    proc = record(broker, "chair-9", "uneventful", tmp_path / "c9.chairside", seed=9, speed=10)
    try:
        wait(lambda: view(model, "chair-9").get("status") == "ok", 30, "chair-9 on the board")
        proc.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        wait(lambda: view(model, "chair-9").get("status") == "OFFLINE", 5, "the Last Will")
        assert time.monotonic() - t0 <= 2.0
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.stop()


def test_malformed_and_foreign_messages_on_the_topics_are_ignored(broker):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    model, sub = board(broker)
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="vandal")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        for payload in (b"\xff\xfe garbage", b"{}", json.dumps({"schema": "x/1", "chair": "c1"}).encode()):
            c.publish("chairside/v1/clinic/c1/state", payload, qos=1).wait_for_publish(5)
        c.publish("chairside/v1/clinic/c1/online", b"maybe", qos=1).wait_for_publish(5)
        wait(lambda: model.malformed + model.foreign >= 4, 10, "the bad messages counted")
        assert [v for v in model.snapshot() if v["state"] is not None] == []
    finally:
        c.loop_stop()
        c.disconnect()
        sub.stop()


def test_an_unreachable_broker_is_a_notice_not_a_crash():
    from broker_kit import free_port

    out = subprocess.run([*CLI, "board", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--headless", "--duration",
                          "2"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "broker" in out.stderr.lower()


def test_two_chairs_with_one_name_exit_2():
    out = subprocess.run([*CLI, "board", "--chair", "a=socket://127.0.0.1:1", "--chair", "a=socket://127.0.0.1:2",
                          "--headless", "--duration", "1"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "'a'" in out.stderr
