"""End to end: the simulator serves the hypertensive-surge scenario on a pseudo-terminal
(GE S/5 protocol bytes), the console (headless ``run_test``) reads it through pyserial and
the ge-s5 driver, the severe-BP alarm appears, the nurse acknowledges it, both events are
in the session file, and the file verifies."""

from __future__ import annotations

import os
import queue
import threading
import time

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.name != "posix", reason="needs a pty")]

SPEED = 400  # simulated seconds per wall second: the surge (20-35 min) arrives in seconds
SCENARIO = "hypertensive-surge"


def _severe_sbp_limit() -> float:
    import tomllib
    from pathlib import Path

    doc = tomllib.loads((Path(__file__).resolve().parents[2] / "src/chairside/data/limits/standard.toml").read_text())
    ladder = next(ld for ld in doc["ladder"] if ld["name"] == "sbp_high")
    return min(t["limit"] for t in ladder["tiers"] if t["priority"] == "high" and "pre_infusion" in t["phases"])


async def test_surge_alarm_over_a_pty_is_acknowledged_and_recorded(tmp_path):
    from simulators.api import simulation
    from simulators.servers import serve_pty

    from chairside.domain.clock import WallClock
    from chairside.service import MonitorService
    from chairside.store import SessionFile, verify
    from chairside.ui import create_app

    sim = simulation(SCENARIO, "ge-s5", seed=7, speed=SPEED, auto_request=False)
    ready: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    server = threading.Thread(target=serve_pty, args=(sim,), kwargs={"on_ready": ready.put, "stop": stop},
                              daemon=True, name="pty-server")
    server.start()
    pty_path = ready.get(timeout=10)
    session = tmp_path / "e2e.chairside"
    clock = WallClock()
    svc = MonitorService(clock=clock, port=pty_path, driver="ge-s5", session_dir=tmp_path)
    defaults = {"patient_id": "E2E-1", "weight_kg": 80, "weight_confirmed_by": "CD", "staff": "AB",
                "hours_fasted": 6, "asked": True, "escort": True, "consent": True, "path": str(session)}
    app = create_app(svc, clock, None, show_start=True, start_defaults=defaults, flash=False, bell=False)
    limit = _severe_sbp_limit()
    svc.start()
    try:
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+s")  # open the session from the start screen
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.snapshot.session.open
            deadline = time.monotonic() + 60
            severe = None
            while time.monotonic() < deadline:
                await pilot.pause(0.2)
                snap = app.snapshot
                severe = next((a for a in snap.alarms if a.param == "nibp_sys" and a.priority == "high"), None)
                if severe is not None:
                    break
            assert severe is not None, f"no severe SBP alarm; alarms: {app.snapshot.alarms}"
            bar = app.monitor.query_one("AlarmBar")
            assert "***" in str(bar.content)
            await pilot.press("a")
            await app.workers.wait_for_complete()
            await pilot.pause()
            acked = next(a for a in app.snapshot.alarms if a.alarm_id == severe.alarm_id) \
                if any(a.alarm_id == severe.alarm_id for a in app.snapshot.alarms) else None
            assert acked is None or acked.acknowledged
    finally:
        svc.shutdown()
        stop.set()
        server.join(5)
    sf = SessionFile.open(session, readonly=True)
    try:
        events = sf.events()
        readings = sf.readings("nibp_sys")
    finally:
        sf.close()
    sbp_alarm = [e for e in events if e.kind in ("alarm_raised", "alarm_escalated") and e.alarm_id == severe.alarm_id]
    reached_high = [e for e in sbp_alarm if getattr(e, "priority", None) == "high" or getattr(e, "to_priority", None) == "high"]
    assert reached_high, [e.kind for e in sbp_alarm]
    assert reached_high[0].value is None or reached_high[0].value >= limit
    assert any(e.kind == "alarm_acknowledged" and e.alarm_id == severe.alarm_id and e.by == "AB" for e in events)
    assert any(r.value is not None and r.value >= limit for r in readings)  # the readings are in the file too
    assert verify(session).ok
