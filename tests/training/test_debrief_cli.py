"""``chairside debrief FILE``: a training run scored from its record (markdown and JSON
lines), a run cut short, and any other session (timeline and time to acknowledge)."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest

from chairside.cli import main
from chairside.service import MonitorService
from chairside.store import read_session
from chairside.training import InProcessMonitor, TrainingRun, record_headless
from simulators.api import DEFAULT_START

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replay"))

from replay_kit import record, surge_reactions  # noqa: E402

SCENARIOS = Path(__file__).resolve().parents[2] / "simulators" / "scenarios"


def latest(svc, p):
    r = svc._latest_valid.get(p)
    return None if r is None else r.value


def begin(svc, run):
    svc.complete_checklist(author="TR", contraindications={i.key: False for i in svc.data.checklist},
                           hours_fasted=6, escort_confirmed=True, consent=True,
                           medications_reviewed=True, allergies="none known")
    svc.record_baseline(author="TR")
    svc.start_infusion(author="TR", concentration_mg_ml=0.4, confirmed_by="SIM",
                       advisory_reason="one baseline BP in this test")


START = ("start", lambda svc, run: latest(svc, "nibp_sys") is not None, begin)


def points(name):
    doc = tomllib.loads((SCENARIOS / f"{name}.toml").read_text())
    return {e["id"]: e.get("points", 1) for e in doc["expected"]}


@pytest.fixture(scope="module")
def surge_training(tmp_path_factory):
    path = tmp_path_factory.mktemp("debrief") / "surge-training.chairside"
    steps = [START,
             ("pause", lambda svc, run: (latest(svc, "nibp_sys") or 0) >= 180,
              lambda svc, run: svc.pause_infusion(author="TR", reason="SBP >= 180")),
             ("stat", lambda svc, run: svc.state.infusion.status == "paused",
              lambda svc, run: svc.record_intervention(author="TR", drug="BP measured now (STAT NIBP)")),
             ("call", lambda svc, run: svc.state.infusion.status == "paused",
              lambda svc, run: svc.record_intervention(author="TR", drug="Prescriber notified"))]
    record_headless(path, "hypertensive-surge", seed=7, duration_s=2400, start=DEFAULT_START, steps=steps)
    return path


def test_markdown_and_jsonl_of_a_training_run(surge_training, tmp_path, capsys):
    total = sum(points("hypertensive-surge").values())
    capsys.readouterr()
    assert main(["debrief", str(surge_training)]) == 0
    md = capsys.readouterr().out
    assert f"**{total} of {total} points**" in md
    assert "| pause_infusion |" in md and "| met |" in md
    out = tmp_path / "d.jsonl"
    assert main(["debrief", str(surge_training), "--format", "jsonl", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    types = [r["type"] for r in rows]
    assert types[0] == "header" and types[1] == "score"
    assert rows[1]["points"] == total
    exps = [r for r in rows if r["type"] == "expectation"]
    assert {r["id"] for r in exps} == set(points("hypertensive-surge"))
    # the timeline holds the scenario's events and the trainee's on one line of time
    who = {r["who"] for r in rows if r["type"] == "timeline"}
    assert {"scenario", "trainee", "alarm", "scoring"} <= who
    times = [r["t_s"] for r in rows if r["type"] == "timeline"]
    assert times == sorted(times)


def test_a_run_cut_short_is_scored_from_what_the_record_shows(tmp_path):
    """No final debrief event (the console was killed): the expectations opened and met
    in the record, over the scenario's list, give the same scoring the simulator had."""
    from chairside.reports.debrief import load_debrief

    path = tmp_path / "cut.chairside"
    run = TrainingRun("hypertensive-surge", seed=7, start=DEFAULT_START, manual=True)
    svc = MonitorService(clock=run.clock, driver="ge-s5", simulated=True, scenario=run.scenario.name,
                         sim_seed=run.seed)
    run.attach(svc)
    mon = InProcessMonitor(run, svc)
    svc.open_session(patient_id="SIM-7", weight_kg=80, staff=["TR"], weight_confirmed_by="SIM", path=path,
                     training=True)
    while latest(svc, "nibp_sys") is None:
        mon.run(5)
    begin(svc, run)
    while (latest(svc, "nibp_sys") or 0) < 180:
        mon.run(5)
    mon.run(30)
    svc.pause_infusion(author="TR", reason="SBP >= 180")
    mon.run(400)
    live = {x["id"]: x["status"] for x in run.sim.debrief()}
    svc.stop()
    svc.shutdown()  # no run.end(): no final debrief event
    d = load_debrief(path)
    assert d["header"]["expectations_from"].startswith("the record (the run was cut short)")
    assert {x["id"]: x["status"] for x in d["expectations"]} == live
    assert d["score"]["points"] == points("hypertensive-surge")["pause_on_sbp180"]
    # the files `chairside train` leaves beside the session: owner-only, like the session file
    import os
    import stat

    from chairside.commands.train import write_debrief

    old = os.umask(0o022)
    try:
        written = write_debrief(run)
    finally:
        os.umask(old)
    assert [w.name for w in written] == ["cut.debrief.md", "cut.debrief.jsonl", "cut.debrief.html"]
    assert "<svg" in written[2].read_text(encoding="utf-8")  # the page carries its chart
    assert all(stat.S_IMODE(w.stat().st_mode) == 0o600 for w in written)
    assert "pause_on_sbp180" in written[0].read_text(encoding="utf-8")


def test_debrief_of_a_clinical_session_times_each_acknowledgement(tmp_path, capsys):
    from chairside.reports.debrief import load_debrief

    path = record(tmp_path / "clinic.chairside", reactions=surge_reactions(), duration_s=2700)
    events = read_session(path).events
    raised = {e.alarm_id: e.t for e in events if e.kind == "alarm_raised"}
    acked = {}
    for e in events:
        if e.kind == "alarm_acknowledged" and e.alarm_id not in acked:
            acked[e.alarm_id] = e.t
    d = load_debrief(path)
    assert d["score"] is None and d["expectations"] == []
    rows = {a["alarm_id"]: a for a in d["alarms"]}
    assert set(rows) == set(raised)
    for aid, t in raised.items():
        want = None if aid not in acked else (acked[aid] - t).total_seconds()
        got = rows[aid]["time_to_ack_s"]
        assert (got is None and want is None) or got == pytest.approx(want, abs=0.1)
    assert any(r["time_to_ack_s"] is not None for r in rows.values())
    capsys.readouterr()
    assert main(["debrief", str(path)]) == 0
    assert "Not a training run" in capsys.readouterr().out


def test_debrief_bad_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "x.chairside"
    bad.write_bytes(b"garbage" * 50)
    capsys.readouterr()
    assert main(["debrief", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.chairside" in err[0]
    assert main(["debrief", str(tmp_path / "none.chairside")]) == 2


def test_the_debrief_says_anticipated_for_an_early_pause(tmp_path, capsys):
    # pause on the first displayed systolic >= 160 (the file's anticipation), before 180
    path = tmp_path / "anticipated.chairside"
    steps = [START,
             ("pause", lambda svc, run: 160 <= (latest(svc, "nibp_sys") or 0) < 180,
              lambda svc, run: svc.pause_infusion(author="TR", reason="SBP rising"))]
    record_headless(path, "hypertensive-surge", seed=7, duration_s=2400, start=DEFAULT_START, steps=steps)
    capsys.readouterr()
    assert main(["debrief", str(path)]) == 0
    md = capsys.readouterr().out
    pause_points = points("hypertensive-surge")["pause_on_sbp180"]
    assert "met (anticipated)" in md
    assert f"{pause_points}/{pause_points} |" in md


def test_the_debrief_flags_a_harmful_drug_and_deducts_its_points(tmp_path, capsys):
    doc = tomllib.loads((SCENARIOS / "over-sedation.toml").read_text())
    harm = next(h for h in doc["harmful"] if h["action"] == "midazolam")
    path = tmp_path / "harm.chairside"
    steps = [START,
             ("midazolam", lambda svc, run: run.sim.state == "obstructing",
              lambda svc, run: svc.record_intervention(author="TR", drug="midazolam", dose=1.0, dose_unit="mg",
                                                       route="IV"))]
    record_headless(path, "over-sedation", seed=13, duration_s=1500, start=DEFAULT_START, steps=steps)
    capsys.readouterr()
    assert main(["debrief", str(path), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    harmful = [r for r in rows if r["type"] == "expectation" and r["status"] == "harmful"]
    assert [r["id"] for r in harmful] == [harm["id"]]
    assert harmful[0]["points"] == -harm["points"]
    score = next(r for r in rows if r["type"] == "score")
    assert score["harmful"] == 1 and score["points"] <= -harm["points"] + score["possible"]
