"""End to end: a training run served as a monitor on a loopback socket (127.0.0.1), read by
the monitoring service through ``socket://`` -> pyserial -> the GE S/5 driver, on the run's
simulated clock. The instructor injects a probe-off, pauses and resumes the run and writes a
note; the trainee's recorded intervention reaches the simulated patient; everything is in
the session file, which verifies."""

from __future__ import annotations

import time

import pytest

from chairside.reports.debrief import load_debrief
from chairside.domain.clock import WallClock
from chairside.service import MonitorService
from chairside.store import read_session, verify
from chairside.training import TrainingRun

pytestmark = pytest.mark.e2e

SPEED = 30.0  # simulated seconds per wall second


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def spo2_technical(svc):
    return [a for a in svc.snapshot().alarms if a.alarm_class == "technical" and a.param in ("spo2", "pr")]


def test_training_run_over_a_loopback_socket(tmp_path):
    path = tmp_path / "train.chairside"
    run = TrainingRun("probe-off", driver="ge-s5", seed=23, speed=SPEED, start=WallClock().now())
    url = run.serve()
    assert url.startswith("socket://127.0.0.1:")
    svc = MonitorService(clock=run.clock, port=url, driver="ge-s5", simulated=True, scenario="probe-off",
                         sim_seed=run.seed)
    run.attach(svc)
    svc.start()
    try:
        svc.open_session(patient_id="SIM-0023", weight_kg=70, staff=["TR"], weight_confirmed_by="SIM", path=path,
                         training=True)
        svc.complete_checklist(author="TR", contraindications={i.key: False for i in svc.data.checklist},
                               hours_fasted=6, escort_confirmed=True, consent=True,
                               medications_reviewed=True, allergies="none known")
        wait_for(lambda: svc.snapshot().tile("nibp").value is not None, 30, "a first NIBP over the socket")
        assert not run.began  # held at rest until the trainee starts the infusion
        svc.record_baseline(author="TR")
        svc.start_infusion(author="TR", concentration_mg_ml=0.35, confirmed_by="SIM",
                           advisory_reason="one baseline BP in this test")
        assert run.began
        # the instructor takes the probe off: dashes and a technical alarm, never a desaturation
        run.inject("artefact", kind="probe_off")
        alarm = wait_for(lambda: spo2_technical(svc), 30, "the SpO2 technical alarm")[0]
        snap = svc.snapshot()
        assert snap.tile("spo2").value is None and snap.tile("spo2").missing_reason
        assert not any(a.param == "spo2" and a.alarm_class == "physiological" for a in snap.alarms)
        # a pause freezes the patient, the monitor and the console's clock alike
        run.pause()
        time.sleep(0.3)
        frozen = svc.clock.now()
        time.sleep(0.5)
        assert svc.clock.now() == frozen
        run.resume()
        wait_for(lambda: svc.clock.now() > frozen, 10, "the clock to move again")
        run.note("checked the finger only after the alarm")
        # the trainee re-sites the probe (recorded at the console): the simulated probe is back
        svc.acknowledge(None, by="TR")
        svc.record_intervention(author="TR", drug="SpO2 probe checked / re-sited")
        wait_for(lambda: svc.snapshot().tile("spo2").value is not None, 30, "SpO2 values again")
        final = run.end()
    finally:
        svc.stop()
        run.stop()
    svc.close_session(author="TR", reason="end of the exercise")
    svc.shutdown()
    assert verify(path).ok
    events = read_session(path).events
    training = [e for e in events if e.kind == "training"]
    assert any(e.source == "instructor" and e.action == "artefact_start" and e.detail == "probe_off"
               for e in training)
    assert any(e.source == "scenario" and e.action == "begin" and e.sim_t == 0 for e in training)
    assert any(e.author == "INS" and e.action == "note" and "finger" in e.detail for e in training)
    assert any(e.source == "instructor" and e.action == "paused" for e in training)
    assert any(e.kind == "alarm_acknowledged" and e.alarm_id == alarm.alarm_id for e in events)
    by_id = {x["id"]: x for x in final["expectations"]}
    assert by_id["probe_back"]["status"] == "met"  # the scenario expects the probe back within 1 min
    assert load_debrief(path)["score"] == final["score"]
