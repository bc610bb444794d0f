"""Debrief scoring with a scripted trainee: the console (Pilot) on a training run of the
hypertensive-surge scenario, the trainee pressing the console's keys at set simulated times
after the displayed BP first reaches 180 systolic. One run meets every expectation, one
misses two; the scores are those that follow from the scenario file's points.

The monitor bytes go through the GE S/5 driver into the service second by second of
simulated time (``InProcessMonitor``); the end-to-end path over a socket is tested in
``test_training_e2e.py``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pilot_kit import set_field, settle, submit
from chairside.commands.train import protocol_for
from chairside.reports.debrief import load_debrief
from chairside.service import MonitorService
from chairside.store import read_session
from chairside.training import InProcessMonitor, TrainingRun
from chairside.ui import create_app
from simulators.api import DEFAULT_START

SCENARIO = "hypertensive-surge"
SCENARIO_FILE = Path(__file__).resolve().parents[2] / "simulators" / "scenarios" / f"{SCENARIO}.toml"
SEED = 7


def scenario_points() -> dict[str, int]:
    doc = tomllib.loads(SCENARIO_FILE.read_text())
    return {e["id"]: e.get("points", 1) for e in doc["expected"]}


def scenario_actions() -> dict[str, str]:
    doc = tomllib.loads(SCENARIO_FILE.read_text())
    return {e["id"]: e["action"] for e in doc["expected"]}




async def intervention(pilot, key: str):
    await pilot.press("m")
    await pilot.pause()
    set_field(pilot.app.screen, "what", key)
    await submit(pilot, confirm=False)


async def run_trainee(tmp_path, *, full: bool):
    """Returns (debrief shown at the end, session file)."""
    path = tmp_path / f"train-{'full' if full else 'partial'}.chairside"
    run = TrainingRun(SCENARIO, seed=SEED, start=DEFAULT_START, manual=True)
    svc = MonitorService(clock=run.clock, driver="ge-s5", protocol=protocol_for(run.scenario), simulated=True,
                         scenario=run.scenario.name, sim_seed=run.seed)
    run.attach(svc)
    mon = InProcessMonitor(run, svc)
    defaults = {"patient_id": "SIM-0007", "weight_kg": run.scenario.patient.weight_kg, "weight_confirmed_by": "SIM",
                "staff": "TR", "training": True, "path": str(path)}
    app = create_app(svc, run.clock, None, show_start=True, start_defaults=defaults, training=run, flash=False,
                     bell=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for name in ("asked", "escort", "consent"):
            set_field(app.screen, name, True)
        set_field(app.screen, "hours_fasted", "6")
        set_field(app.screen, "medications", True)
        set_field(app.screen, "allergies", "none known")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.snapshot.session.open
        # the patient rests, monitored, until the trainee starts the infusion
        while app.snapshot.tile("nibp").value is None:
            mon.run(5)
            await pilot.pause()
        assert not run.began
        await pilot.press("b")
        await pilot.pause()
        await submit(pilot)
        await pilot.press("i")
        await pilot.pause()
        set_field(app.screen, "concentration", "0.4")
        set_field(app.screen, "confirmed_by", "SIM")
        await submit(pilot)  # the gate's advisories (one baseline BP, BP above 140/90) need a reason
        assert app.snapshot.infusion.state == "not_started"
        set_field(app.screen, "gate_override_reason", "prescriber weighed the baseline BP")
        await submit(pilot)
        assert app.snapshot.infusion.state == "running", app.screen
        assert run.began and run.scenario_t is not None
        # watch the monitor until the systolic shown reaches 180
        while (svc.snapshot().tile("nibp").value or 0) < 180:
            assert run.scenario_t < 45 * 60, "no SBP >= 180 within 45 min"
            mon.run(5)
        await settle(pilot)
        assert app.snapshot.tile("nibp").value >= 180  # on the screen
        seen = run.scenario_t
        mon.run(60)  # one minute to take it in: pause the infusion
        await pilot.press("p")
        await pilot.pause()
        set_field(app.screen, "reason", "SBP >= 180")
        await submit(pilot)
        assert app.snapshot.infusion.state == "paused"
        if full:
            mon.run(30)  # then a STAT NIBP
            await intervention(pilot, "nibp_now")
            mon.run(60)  # and the prescriber
            await intervention(pilot, "prescriber_notified")
        mon.run(400)  # past every window (3 and 5 min)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert type(app.screen).__name__ == "InstructorPanel"
        await pilot.press("ctrl+e")
        await settle(pilot)
        assert type(app.screen).__name__ == "DebriefScreen"
        shown = app.screen.debrief
        title = str(app.screen.query_one("#dialog-title").content)
    svc.stop()
    svc.shutdown()
    return shown, title, path, seen


@pytest.mark.parametrize("full", [True, False], ids=["meets-all", "misses-two"])
async def test_debrief_scores_a_scripted_trainee(tmp_path, full):
    points = scenario_points()
    actions = scenario_actions()
    assert len(points) == 3 and set(actions.values()) == {"pause_infusion", "nibp_stat", "call_prescriber"}
    shown, title, path, seen = await run_trainee(tmp_path, full=full)
    pause_id = next(i for i, a in actions.items() if a == "pause_infusion")
    want = sum(points.values()) if full else points[pause_id]
    assert shown["score"]["points"] == want
    assert shown["score"]["possible"] == sum(points.values())
    assert f"{want} of {sum(points.values())} points" in title
    status = {x["id"]: x["status"] for x in shown["expectations"]}
    if full:
        assert set(status.values()) == {"met"}
    else:
        assert status[pause_id] == "met"
        assert sorted(s for i, s in status.items() if i != pause_id) == ["missed", "missed"]
    by_id = {x["id"]: x for x in shown["expectations"]}
    # the condition opened with the reading the trainee saw (within the 5-s step it came in),
    # and the pause came one minute after it was seen
    opened = by_id[pause_id]["opened_at"]
    assert seen - 5 <= opened <= seen
    assert by_id[pause_id]["latency_s"] == pytest.approx(seen + 60 - opened, abs=1.5)
    # the same debrief comes back from the session file alone
    again = load_debrief(path)
    assert again["score"] == shown["score"]
    assert [x["status"] for x in again["expectations"]] == [x["status"] for x in shown["expectations"]]
    events = read_session(path).events
    assert events[0].training and events[0].scenario == SCENARIO and events[0].sim_seed == SEED
    kinds = [(e.kind, getattr(e, "action", "")) for e in events]
    assert ("training", "begin") in kinds and ("training", "debrief") in kinds
    # every alarm in the record has its row, with its time to acknowledge (none was acknowledged here)
    raised = [e for e in events if e.kind == "alarm_raised"]
    assert [a["alarm_id"] for a in again["alarms"]] == [e.alarm_id for e in raised]
