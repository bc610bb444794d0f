"""Scenario files: the ten shipped scenarios load and behave as the model document says;
bad files are refused naming the file, the field and the reason (issue 4)."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.api import list_scenarios, load_scenario
from simulators.engine import Simulation
from simulators.scenario import SCHEMA, ScenarioError, load_file

TEN = ["uneventful", "hypertensive-surge", "vasovagal", "over-sedation", "emergence-agitation",
       "nausea-vomiting", "probe-off", "nibp-failures", "tachyarrhythmia", "chronic-pain-4h"]


def test_the_ten_scenarios_ship():
    names = [s["name"] for s in list_scenarios()]
    assert sorted(names) == sorted(TEN)
    for s in list_scenarios():
        assert s["title"] and s["trains"] and s["duration_s"] > 0


@pytest.mark.parametrize("name", TEN)
def test_scenario_is_valid_and_named_after_its_file(name):
    sc = load_scenario(name)
    assert sc.name == name
    assert sc.schema_ == SCHEMA
    assert sc.source.startswith(("[P]", "[calibration]", "[assumption]"))


# --- bad files ------------------------------------------------------------------------
HEAD = """
schema = "chairside-scenario/1"
name = "x"
title = "x"
duration_s = 60
"""
PATIENT = "[patient]\nweight_kg = 70\nage = 50\nsbp = 128\ndbp = 78\nhr = 72\nspo2 = 98\n"
GOOD = HEAD + PATIENT

BAD = [
    ('schema = "chairside-scenario/9"\nname = "x"\ntitle = "x"\nduration_s = 60\n', "schema", "chairside-scenario/1"),
    (HEAD + PATIENT.replace("sbp = 128", 'sbp = "high"'), "patient.sbp", "number"),
    (HEAD + PATIENT.replace("sbp = 128", "sbp = 80").replace("dbp = 78", "dbp = 90"), "patient", "sbp must exceed dbp"),
    (HEAD, "patient", "Field required"),
    (GOOD + "[devices.nibp]\nintervall_s = 300\n", "devices.nibp.intervall_s", "unknown field"),
    (GOOD + "[devices.spo2]\naveraging_s = 7\n", "devices.spo2.averaging_s", "8"),
    (GOOD + "[[timeline]]\nt = 0\naction = \"start_infusion\"\ndose_mg_kg = 0.5\n", "timeline[0]", "over_min"),
    (GOOD + "[[timeline]]\nt = 0\naction = \"teleport\"\n", "timeline[0].action", "unknown action 'teleport'"),
    (GOOD + "[[timeline]]\naction = \"pause_infusion\"\n", "timeline[0]", "needs t"),
    (GOOD + "[[triggers]]\nwhen = \"true.foo >= 3\"\n", "triggers[0].when", "unknown value true.foo"),
    (GOOD + "[[triggers]]\nwhen = \"sbp is high\"\n", "triggers[0].when", "cannot read"),
    (GOOD + "[[triggers]]\non_event = \"pause_infusion\"\ngoto = \"nowhere\"\n", "triggers[0].goto", "no state named"),
    (GOOD + "[[triggers]]\nwhen = \"true.sbp > 1\"\non_event = \"reassure\"\n", "triggers[0]", "exactly one"),
    (GOOD + "[[triggers]]\non_event = \"pause_infussion\"\n", "triggers[0].on_event",
     "unknown event 'pause_infussion'"),
    (GOOD + "[[expected]]\nid = \"a\"\naction = \"pause_infussion\"\nwithin_s = 60\n", "expected[0].action",
     "unknown trainee action 'pause_infussion'"),
    (GOOD + "[[expected]]\nid = \"a\"\naction = \"set_rhythm\"\nwithin_s = 60\n", "expected[0].action",
     "unknown trainee action 'set_rhythm'"),
    (GOOD + "[states.a]\ntrends = [ { param = \"mood\", to = 1 } ]\n", "states.a.trends[0].param", "emax_scale"),
    (GOOD + "[[expected]]\nid = \"a\"\naction = \"pause_infusion\"\nwithin_s = 0\n", "expected[0].within_s",
     "greater than 0"),
    (GOOD + "[[artefacts]]\nt = 5\nkind = \"gremlins\"\n", "artefacts[0].kind", "probe_off"),
    (HEAD.replace("title", "titel"), "titel", "unknown field"),
    ("schema = \"chairside-scenario/1\"\nname = [\n\ntitle = 3\n", "", "line 4"),
]


@pytest.mark.parametrize("text, field, reason", BAD, ids=[b[1] or "toml-syntax" for b in BAD])
def test_bad_scenario_is_refused_with_file_field_and_reason(tmp_path, text, field, reason):
    path = tmp_path / "bad-scenario.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_file(path)
    msg = str(info.value)
    assert msg.startswith(str(path) + ": "), msg
    assert field in msg, msg
    assert reason in msg, msg
    assert "\n" not in msg


def test_good_minimal_file_loads(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text(GOOD, encoding="utf-8")
    sc = load_file(path)
    assert sc.patient.sbp == 128 and sc.duration_s == 60


def test_unknown_scenario_name_lists_the_choices():
    with pytest.raises(ScenarioError, match="uneventful"):
        load_scenario("no-such-scenario")


# --- behaviour of the designed scenarios (model doc (b) table) -------------------------
def _run(name, seed=None, until=None, **kw):
    sim = Simulation(name, seed, driver=None, record=True, **kw)
    sim.step_to(until or sim.scenario.duration_s)
    return sim


def _series(sim, layer, name, t0=0, t1=1e9):
    out = []
    for tv, d in sim.history:
        if t0 <= tv.t <= t1:
            out.append(getattr(tv if layer == "true" else d, name))
    return out


def test_vasovagal_bradycardia_low_perfusion_and_recovery_with_legs_raised():
    sim = Simulation("vasovagal", None, driver=None, record=True)
    sim.step_to(240 + 90)
    hr = _series(sim, "displayed", "hr", 300, 330)
    assert 36 <= np.mean(hr) <= 46  # HR 72 -> 40-45 over 30-60 s
    assert np.mean(_series(sim, "true", "sbp", 300, 330)) < 90  # SBP in the 80s or below
    assert any(_series(sim, "displayed", "low_perfusion", 300, 330))
    pr = np.array(_series(sim, "displayed", "pr", 300, 330), dtype=float)
    assert pr.mean() < np.mean(hr)  # PR below ECG HR at low perfusion
    sim.inject("legs_raised")
    sim.step_to(sim.t + 180)  # recovery over 1-3 min
    assert np.mean(_series(sim, "displayed", "hr", sim.t - 20)) > 60


def test_over_sedation_desaturation_lag_and_airway_rescue():
    sim = Simulation("over-sedation", None, driver=None, record=True, noise=False)
    sim.step_to(900 + 150)
    sao2 = np.array(_series(sim, "true", "sao2", 900))
    assert sao2.min() <= 87  # SaO2 98 -> ~85 over 60-120 s
    t = np.array(_series(sim, "true", "t", 900))
    t_true = t[np.argmax(sao2 < 92)]
    spo2 = np.array(_series(sim, "displayed", "spo2", 900), dtype=float)
    t_disp = t[np.argmax(spo2 < 92)]
    # the display lags: 8 s averaging (about 4 s on a ramp, at most 10 s) + 2 s update
    assert 4 <= t_disp - t_true <= 12
    sim.inject("jaw_thrust")
    sim.inject("oxygen")
    sim.step_to(sim.t + 60)
    assert sim.true.sao2 >= 93  # restored over 30-60 s
    assert sim.state == "supported"


def test_emergence_agitation_true_saturation_normal_but_displayed_false_lows():
    sim = _run("emergence-agitation", until=1200 + 600)
    assert min(_series(sim, "true", "sao2", 1300)) >= 95
    assert min(v for v in _series(sim, "displayed", "spo2", 1300) if v is not None) < 90
    assert np.mean(_series(sim, "true", "hr", 1400)) - 74 >= 10
    assert any(e.kind in ("nibp_retry", "nibp_failed") for e in sim.events)
    sim.inject("midazolam")
    sim.step_to(sim.t + 300)
    assert sim.phys.vars["agitation"] < 0.1 and not sim.display.motion


def test_probe_off_dashes_within_seconds_and_ecg_continues():
    sim = _run("probe-off", until=900 + 10)
    d = {int(tv.t): disp for tv, disp in sim.history}
    assert d[899].spo2 is not None
    assert all(d[t].spo2 is None and d[t].pr is None for t in range(905, 911))
    assert all(d[t].hr is not None for t in range(900, 911))
    sim.inject("probe_reattach")
    sim.step_to(sim.t + 2)
    assert sim.display.pulse_search and sim.display.spo2 is None
    sim.step_to(sim.t + 15)
    assert sim.display.spo2 is not None


def test_nibp_failures_inop_and_ageing_value():
    sim = _run("nibp-failures", until=1000)
    assert sim.display.nibp_failed
    assert sim.display.nibp_sys is not None  # the last good value is still shown...
    assert sim.t - sim.display.nibp_time > 300  # ...and ageing
    sim.inject("cuff_reapply")
    sim.inject("nibp_stat")
    sim.step_to(sim.t + 60)
    assert not sim.display.nibp_failed
    assert sim.t - sim.display.nibp_time < 60
    assert {r["id"]: r["status"] for r in sim.debrief()} == {"fix_cuff": "missed", "stat_after_fix": "met"}


def test_tachyarrhythmia_irregular_fast_with_pulse_deficit():
    sim = _run("tachyarrhythmia", until=1200 + 300)
    hr = np.array(_series(sim, "displayed", "hr", 1260), dtype=float)
    pr = np.array([v for v in _series(sim, "displayed", "pr", 1260)], dtype=float)
    assert 140 <= hr.mean() <= 170
    assert pr.mean() < hr.mean() - 10
    assert np.std(_series(sim, "true", "hr", 1260)) > 6  # irregular


def test_chronic_pain_nibp_every_15_min_after_the_first_15():
    sim = _run("chronic-pain-4h", until=3 * 3600)
    starts = [r.cycle_start for r in sim.monitor.nibp.results if r.kind == "auto"]
    gaps = np.diff([s for s in starts if s >= 900])
    assert set(gaps.tolist()) == {900.0}
    assert sim.phys.pump.infusing


def test_jump_to_state_and_unknown_state():
    sim = Simulation("vasovagal", 1, driver=None)
    sim.jump_to_state("vagal")
    assert sim.state == "vagal"
    sim.step_to(120)
    assert sim.display.hr < 50
    with pytest.raises(ValueError, match="no state"):
        sim.jump_to_state("nope")


def test_inject_validates_arguments_and_logs_marks():
    sim = Simulation("uneventful", 1, driver=None)
    with pytest.raises(ValueError, match="rate_mg_kg_h"):
        sim.inject("set_rate", rate_mg_kg_h=-1)
    sim.inject("call_prescriber")
    assert sim.events[-1].kind == "action" and sim.events[-1].detail == "call_prescriber"
    assert sim.events[-1].source == "trainee"


def test_pause_resume_and_speed_controls():
    sim = Simulation("uneventful", 1, driver=None)
    sim.set_speed(10)
    sim.tick_wall(2.0)
    assert sim.t == 20
    sim.pause()
    sim.tick_wall(5.0)
    assert sim.t == 20
    sim.resume()
    sim.tick_wall(0.5)
    assert sim.t == 25
    with pytest.raises(ValueError):
        sim.set_speed(0)
    assert [e.kind for e in sim.events if e.source == "instructor"] == ["speed", "paused", "resumed"]


def test_pause_infusion_acts_on_the_model_not_the_numbers():
    sim = Simulation("uneventful", 2, driver=None, noise=False)
    sim.step_to(1200)
    ce = sim.true.ce
    sim.inject("pause_infusion")
    sim.step_to(1500)
    assert sim.true.ce < ce  # the effect site empties
    sim.inject("resume_infusion")
    sim.step_to(2400)
    assert sim.phys.pump.delivered_mg < 0.5 * 70 - 1  # 5 min paused: the dose is not yet in
    sim.step_to(2700 + 5)
    assert not sim.phys.pump.running  # ...and it stops once it is
    assert sim.phys.pump.delivered_mg == pytest.approx(35.0)


def test_triggers_of_a_state_left_in_the_same_step_do_not_fire(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(GOOD + """
initial_state = "a"
[states.a]
  [[states.a.triggers]]
  on_event = "reassure"
  goto = "b"
  [[states.a.triggers]]
  on_event = "reassure"
  goto = "c"
[states.b]
  [[states.b.triggers]]
  when = "sim.state_s >= 5"
  do = [ { action = "log", text = "five seconds in b" } ]
[states.c]
""".replace('initial_state = "a"\n', ""), encoding="utf-8")
    text = path.read_text().replace('duration_s = 60\n', 'duration_s = 60\ninitial_state = "a"\n')
    path.write_text(text)
    sim = Simulation(load_file(path), 1, driver=None)
    sim.advance(3)
    sim.inject("reassure")
    assert sim.state == "b"
    sim.advance(10)
    notes = [(e.t, e.detail) for e in sim.events if e.kind == "note"]
    assert notes == [(8.0, "five seconds in b")]
