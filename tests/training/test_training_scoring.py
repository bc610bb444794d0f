"""Training that rewards good practice (issue 16): anticipation, equivalent actions,
harmful actions, first-line care in the model, over-sedation that is not frozen, and
``chairside scenarios --check``.

Expected values come from the scenario files (their conditions, points and equivalents)
and from the model's stated behaviour, never from a run of the code under test.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from simulators.api import check_scenario, load_scenario
from simulators.engine import Simulation

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "simulators" / "scenarios"


def _run(name: str, seed: int, act, until: float | None = None) -> Simulation:
    """Step a do-it-yourself run second by second; ``act(sim)`` may inject actions."""
    sim = Simulation(name, seed, None)
    end = until if until is not None else sim.scenario.duration_s
    while sim.t < end:
        sim.step_to(sim.t + 1)
        act(sim)
    return sim


def _entry(sim: Simulation, eid: str) -> dict:
    return next(r for r in sim.debrief() if r["id"] == eid)


# --- anticipation ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_pause_on_the_rising_trend_earns_the_pause_expectation_as_anticipated(seed):
    sc = load_scenario("hypertensive-surge")
    exp = next(e for e in sc.expected if e.action == "pause_infusion")
    assert exp.anticipate is not None  # the file says when the trend counts as begun
    done = []

    def act(sim):
        d = sim.display
        if not done and d is not None and d.nibp_sys is not None and d.nibp_sys >= 160 and d.nibp_sys < 180:
            sim.inject("pause_infusion")
            done.append(d.nibp_sys)

    sim = _run("hypertensive-surge", seed, act)
    assert done, "the surge never showed a systolic between 160 and 179"
    entry = _entry(sim, exp.id)
    assert entry["status"] == "met" and entry["anticipated"] is True
    assert entry["points"] == exp.points


def test_an_action_before_the_trend_began_is_not_anticipation():
    # a pause in the first minute, long before any reading >= 160: nothing is earned early
    sim = _run("hypertensive-surge", 1, lambda s: s.inject("pause_infusion") if s.t == 30 else None, until=600)
    entry = _entry(sim, "pause_on_sbp180")
    assert entry["status"] != "met" and entry["points"] == 0


# --- equivalent actions -----------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2])
def test_stopping_satisfies_the_pause_and_the_scenario_treats_it_as_a_pause(seed):
    sc = load_scenario("hypertensive-surge")
    exp = next(e for e in sc.expected if e.action == "pause_infusion")
    assert "stop_infusion" in exp.equivalent
    done = []

    def act(sim):
        d = sim.display
        if not done and d is not None and ((d.nibp_sys or 0) >= 180 or (d.nibp_dia or 0) >= 110):
            sim.inject("stop_infusion")
            done.append(sim.t)

    sim = _run("hypertensive-surge", seed, act)
    assert done
    entry = _entry(sim, exp.id)
    assert entry["status"] == "met" and entry["met_by"] == "stop_infusion"
    logs = [e.detail for e in sim.events if e.kind == "trigger"]
    assert not any("no pause" in text for text in logs), logs
    assert sim.state == "paused"


# --- harm -------------------------------------------------------------------------------
def _over_sedation(midazolam: bool, seed: int = 5) -> tuple[Simulation, float]:
    nadir = [100.0]

    def act(sim):
        if midazolam and sim.state == "obstructing" and sim.t - sim._state_t == 60:
            sim.inject("midazolam")
        if sim.true is not None:
            nadir[0] = min(nadir[0], sim.true.sao2)

    sim = _run("over-sedation", seed, act, until=1800)
    return sim, nadir[0]


def test_midazolam_during_obstruction_is_flagged_and_deepens_the_desaturation():
    sc = load_scenario("over-sedation")
    harm = next(h for h in sc.harmful if h.action == "midazolam")
    without, nadir_without = _over_sedation(False)
    with_drug, nadir_with = _over_sedation(True)
    flagged = [r for r in with_drug.debrief() if r["status"] == "harmful"]
    assert [r["id"] for r in flagged] == [harm.id]
    assert flagged[0]["points"] == -harm.points
    assert not [r for r in without.debrief() if r["status"] == "harmful"]
    # the model applies the drug: the saturation falls further (by more than the noise)
    assert nadir_with < nadir_without - 2.0


# --- first-line care and the concentration --------------------------------------------
def _true_hr_after(name: str, actions: dict[int, str], at: int, seed: int = 4) -> float:
    sim = Simulation(name, seed, None, noise=False)
    for t in range(1, at + 1):
        sim.step_to(t)
        if t in actions:
            sim.inject(actions[t])
    return sim.true.hr_smooth


def test_agitation_eases_when_the_infusion_is_paused_and_with_reassurance():
    # agitation begins at 20 min (the file's calm state lasts 1200 s) and peaks by 22 min
    sc = load_scenario("emergence-agitation")
    assert sc.states["calm"].duration_s == 1200
    nothing = _true_hr_after("emergence-agitation", {}, 2700)
    paused = _true_hr_after("emergence-agitation", {1500: "pause_infusion"}, 2700)
    reassured = _true_hr_after("emergence-agitation", {1380: "reassure"}, 2700)
    baseline = sc.patient.hr
    # the agitation's share of the HR: paused, the concentration falls and so does it
    assert paused - baseline < 0.75 * (nothing - baseline)
    # reassurance (de-stimulation) takes a real share of it without any drug
    assert reassured - baseline < 0.75 * (nothing - baseline)


def test_first_line_care_scores_higher_than_the_drug():
    sc = load_scenario("emergence-agitation")
    points = {e.action: e.points for e in sc.expected}
    assert points["reassure"] > points["midazolam"]


def test_untreated_over_sedation_does_not_sit_unchanged_once_the_infusion_ends():
    sim = Simulation("over-sedation", 2, None, noise=False)
    sim.step_to(40 * 60)  # the 40-min infusion ends
    at_end = sim.true.sao2
    sim.step_to(58 * 60)
    assert sim.true.sao2 > at_end + 5.0


def test_over_sedation_expects_stimulation_and_a_call_for_help():
    actions = {e.action for e in load_scenario("over-sedation").expected}
    assert {"stimulate", "call_prescriber"} <= actions


# --- the pick-list has no dead infusion entries ---------------------------------------
def test_no_intervention_item_names_an_infusion_action_it_does_not_perform():
    console = tomllib.loads((ROOT / "src/chairside/data/console.toml").read_text())
    training = tomllib.loads((ROOT / "src/chairside/data/training.toml").read_text())
    pump = {"pause_infusion", "resume_infusion", "stop_infusion", "set_rate"}
    for item in console["interventions"]["items"]:
        if "infusion" in item["text"].lower():
            assert training["interventions"].get(item["key"]) in pump, item


# --- scenarios --check --------------------------------------------------------------
GOOD = """
schema = "chairside-scenario/1"
name = "x"
title = "x"
duration_s = 600

[patient]
weight_kg = 70
age = 50
sbp = 128
dbp = 78
hr = 72
spo2 = 98

[[timeline]]
t = 0
action = "start_infusion"
dose_mg_kg = 0.5
over_min = 40
"""

BAD = {
    "unknown action": ("[[triggers]]\non_event = \"sing\"\nlog = \"x\"\n", "triggers[0].on_event"),
    "unknown parameter": ("[[triggers]]\nwhen = \"true.mood >= 1\"\nlog = \"x\"\n", "triggers[0].when"),
    "never opens": ("[[expected]]\nid = \"e\"\naction = \"nibp_stat\"\nwithin_s = 60\n"
                    "after = \"displayed.spo2 < 20\"\n", "expected[0].after"),
    "unknown equivalent": ("[[expected]]\nid = \"e\"\naction = \"pause_infusion\"\nequivalent = [\"nap\"]\n"
                           "within_s = 60\n", "expected[0].equivalent"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_scenarios_check_refuses_a_bad_file_naming_file_table_and_key(tmp_path, case):
    text, key = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(GOOD + text)
    problems = check_scenario(path)
    assert problems and str(path) in problems[0] and key in problems[0], problems
    out = subprocess.run([sys.executable, "-c", "from chairside.cli import main; raise SystemExit(main())",
                          "scenarios", "--check", str(path)], capture_output=True, text=True)
    assert out.returncode == 2, out
    assert key in out.stderr and "Traceback" not in out.stderr


def test_scenarios_check_accepts_every_shipped_scenario():
    files = sorted(SCENARIOS.glob("*.toml"))
    assert len(files) == 10
    for f in files:
        assert check_scenario(f) == [], f
