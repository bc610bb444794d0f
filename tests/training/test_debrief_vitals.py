"""The debrief an instructor teaches from (issue 16): the vital-sign trend with each
parameter's nadir and peak and the time beyond its limits, what the patient's physiology did
beside what the monitor showed, the time to acknowledge an alarm at the highest priority it
reached, the scenario's teaching points where a state was entered, and the HTML page.

Expected values come from the record (its readings, the truth it recorded), the limits
profile, data/reports/debrief.toml and the scenario file, computed here independently.
"""

from __future__ import annotations

import json
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chairside.cli import main
from chairside.domain import events as ev
from chairside.reports.debrief import build_debrief, load_debrief
from chairside.reports.debrief_render import vital_lines
from chairside.store import read_session
from chairside.training import record_headless
from simulators.api import DEFAULT_START

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_debrief_cli import START  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "simulators" / "scenarios"
DEBRIEF_TOML = ROOT / "src" / "chairside" / "data" / "reports" / "debrief.toml"
LIMITS = ROOT / "src" / "chairside" / "data" / "limits" / "standard.toml"


@pytest.fixture(scope="module")
def oversedation(tmp_path_factory):
    """An over-sedation run where nobody treats the airway (the infusion is started, then
    nothing): SpO2 falls and stays low."""
    path = tmp_path_factory.mktemp("oversedation") / "os.chairside"
    record_headless(path, "over-sedation", seed=5, duration_s=1500, start=DEFAULT_START, steps=[START])
    return path, read_session(path).events


def _spo2_limit_90() -> str:
    """The SpO2 limit at 90 % is in the standard profile (the issue names it)."""
    doc = tomllib.loads(LIMITS.read_text(encoding="utf-8"))
    lad = next(x for x in doc["ladder"] if x["name"] == "spo2_low")
    assert any(t["limit"] == 90 for t in lad["tiers"])
    return lad["op"]


def test_spo2_nadir_and_time_below_90(oversedation):
    path, events = oversedation
    op = _spo2_limit_90()
    hold = tomllib.loads(DEBRIEF_TOML.read_text(encoding="utf-8"))["vitals"]["hold_max_s"]
    pts = sorted(((r.time or e.t), r.value if r.valid else None)
                 for e in events if e.kind == "readings_recorded" for r in e.readings if r.param == "spo2")
    vals = [v for _, v in pts if v is not None]
    end = max(e.t for e in events)
    below = 0.0
    for i, (t, v) in enumerate(pts):
        nxt = pts[i + 1][0] if i + 1 < len(pts) else end
        if v is not None and (v < 90 if op == "<" else v <= 90):
            below += min((nxt - t).total_seconds(), hold)
    assert min(vals) < 90 and below > 60  # the scenario does what its name says
    d = load_debrief(path)
    spo2 = next(v for v in d["vitals"] if v["param"] == "spo2")
    assert spo2["nadir"]["value"] == min(vals)
    assert spo2["peak"]["value"] == max(vals)
    b90 = next(b for b in spo2["beyond"] if b["limit"] == 90)
    assert b90["seconds"] == pytest.approx(below, abs=0.2)
    lines = vital_lines(d)
    assert any(f"SpO2 nadir {min(vals):g} %" in x and "below 90 %" in x for x in lines)


def test_markdown_names_the_nadir(oversedation, capsys):
    path, events = oversedation
    assert main(["debrief", str(path)]) == 0
    out = capsys.readouterr().out
    nadir = min(r.value for e in events if e.kind == "readings_recorded" for r in e.readings
                if r.param == "spo2" and r.valid and r.value is not None)
    assert "## Vital signs" in out and f"SpO2 nadir {nadir:g} %" in out and "below 90 %" in out


def test_true_physiology_beside_what_the_monitor_showed(oversedation):
    path, events = oversedation
    truth = [row for e in events if e.kind == "training" and e.action == "truth" for row in e.args["samples"]]
    fields = next(e.args["fields"] for e in events if e.kind == "training" and e.action == "truth")
    assert truth and fields[0] == "t"
    sao2 = [dict(zip(fields, row))["sao2"] for row in truth]
    d = load_debrief(path)
    x = next(t for t in d["truth"] if t["param"] == "spo2")
    assert x["true_min"] == min(sao2) and x["true_max"] == max(sao2)
    shown = [r.value for e in events if e.kind == "readings_recorded" for r in e.readings
             if r.param == "spo2" and r.valid and r.value is not None]
    assert x["shown_min"] == min(shown)
    # the truth is a debrief aid, not a timeline entry
    assert not any(r["action"] == "truth" for r in d["timeline"])


def test_teaching_points_where_the_state_was_entered(oversedation):
    path, _ = oversedation
    doc = tomllib.loads((SCENARIOS / "over-sedation.toml").read_text(encoding="utf-8"))
    want = doc["states"]["obstructing"]["debrief"]
    d = load_debrief(path)
    rows = [r for r in d["timeline"] if r["kind"] == "training" and r["action"] == "state"
            and r.get("detail") == "obstructing"]
    assert len(rows) == 1 and rows[0]["points"] == want
    assert not any(r.get("points") for r in d["timeline"] if r.get("detail") == "infusing")


def test_html_page_is_self_contained_with_its_chart(oversedation, tmp_path):
    path, _ = oversedation
    out = tmp_path / "os.debrief.html"
    assert main(["debrief", str(path), "--format", "html", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</html>" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "SpO2 nadir" in page and "dashed grey" in page  # the truth is drawn beside the readings
    assert main(["debrief", str(path), "--format", "jsonl", "--out", str(tmp_path / "d.jsonl")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {"vital", "truth"} <= {r["type"] for r in rows}
    assert not any("chart_svg" in r for r in rows)


T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def _session(*more):
    opened = ev.SessionOpened(t=T0, author="AB", session_id="S", patient_id="P", weight_kg=70,
                              protocol="iv-ketamine-depression", staff=("AB",))
    return [e.model_copy(update={"seq": i + 1}) for i, e in enumerate([opened, *more])]


def test_time_to_acknowledge_at_the_highest_priority():
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    events = _session(
        ev.AlarmRaised(t=at(10), alarm_id="a#1", rule="spo2_low", priority="low", param="spo2", value=93,
                       message="SpO2 low"),
        ev.AlarmEscalated(t=at(70), alarm_id="a#1", rule="spo2_low", from_priority="low", to_priority="high",
                          reason="below 85"),
        ev.AlarmAcknowledged(t=at(100), alarm_id="a#1", rule="spo2_low", by="AB"),
        # acknowledged while low, then it escalated and nobody acknowledged it again
        ev.AlarmRaised(t=at(200), alarm_id="b#2", rule="sbp_high", priority="medium", param="nibp_sys",
                       value=165, message="SBP high"),
        ev.AlarmAcknowledged(t=at(220), alarm_id="b#2", rule="sbp_high", by="AB"),
        ev.AlarmEscalated(t=at(400), alarm_id="b#2", rule="sbp_high", from_priority="medium", to_priority="high",
                          reason="beyond 180"),
    )
    d = build_debrief(events)
    a, b = d["alarms"]
    assert (a["highest"], a["time_to_ack_s"], a["time_to_ack_at_highest_s"]) == ("high", 90.0, 30.0)
    assert (b["highest"], b["time_to_ack_s"], b["time_to_ack_at_highest_s"]) == ("high", 20.0, None)
