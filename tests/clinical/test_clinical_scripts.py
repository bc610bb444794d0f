"""Issue 14: the clinical acceptance suite, one scripted session per defect
(``tests/clinical/scripts/*.toml``, run as ``chairside train --script`` runs them).

The expected outcomes come from the protocol files, the scenario files and the rules of the
issue, read here as data; never from running the code under test.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from chairside.domain.dose import totals
from chairside.domain.state import fold
from chairside.store import read_session
from chairside.training_script import run_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
PROTOCOLS = ROOT / "src" / "chairside" / "data" / "protocols"
SCENARIOS = ROOT / "simulators" / "scenarios"


def toml(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def protocol(name: str) -> dict:
    return toml(PROTOCOLS / f"{name}.toml")


def scenario(name: str) -> dict:
    return toml(SCENARIOS / f"{name}.toml")


def steps(script: str) -> list[dict]:
    return toml(SCRIPTS / f"{script}.toml")["step"]


def secs(at: str) -> float:
    m, s = at.split(":")
    return int(m) * 60 + float(s)


def run(script: str, scen: str, tmp_path: Path, name: str | None = None, seed: int | None = None):
    out = io.StringIO()
    path = tmp_path / (name or f"{script}.chairside")
    r = run_script(scenario=scen, script=SCRIPTS / f"{script}.toml", session=path, seed=seed, out=out)
    events = read_session(path).events
    return r, fold(events), events, out.getvalue()


def refusals(events) -> dict[int, str]:
    return {e.args["step"]: e.detail for e in events if e.kind == "training" and e.action == "refused"}


def of_kind(events, kind: str) -> list:
    return [e for e in events if e.kind == kind]


# ------------------------------------------------------------------ 1. sedated discharge


def test_sedated_and_dissociated_discharge_refused(tmp_path):
    d = protocol("iv-ketamine-depression")["discharge"]
    r, st, events, printed = run("sedated_discharge", "uneventful", tmp_path)
    refused = refusals(events)
    assert set(refused) == {7, 8}, printed
    for n in (7, 8):  # each unmet criterion named, with the template's number
        assert "MOAA/S 3" in refused[n] and f"needs {d['moaas_required']}" in refused[n]
        assert "CADSS 20" in refused[n] and f"<= {d['cadss_max']}" in refused[n]
        assert "RASS +2" in refused[n]
    assert "prescriber's initials" in refused[8]  # a reason alone does not override
    assert "REFUSED" in printed
    discharged = [e for e in of_kind(events, "discharge_assessed") if e.discharged]
    assert len(discharged) == 1
    last_obs = max(e.t for e in of_kind(events, "observation_recorded"))
    assert discharged[0].t > last_obs
    assert not any(w in r for r in discharged[0].blocked_reasons for w in ("MOAA/S", "CADSS", "RASS"))


# ------------------------------------------------------------------ 2. the infusion ends in the record


def test_order_completes_in_the_record_without_stop(tmp_path):
    a = protocol("iv-ketamine-depression")
    weight = scenario("uneventful")["patient"]["weight_kg"]
    script = steps("completion_no_stop")
    start = next(s for s in script if s["do"] == "start_infusion")
    order_mg = start["dose_mg_kg"] * weight
    r, st, events, printed = run("completion_no_stop", "uneventful", tmp_path)
    started = of_kind(events, "infusion_started")[0]
    assert started.dose_mg == pytest.approx(order_mg)
    assert started.volume_to_infuse_ml == pytest.approx(start["bag_ml"])  # the bag made up for the order
    done = of_kind(events, "infusion_completed")
    assert len(done) == 1 and not of_kind(events, "infusion_stopped")
    c = done[0]
    assert c.at_mono == pytest.approx(started.mono + start["over_min"] * 60, abs=1e-6)
    assert c.dose_mg == pytest.approx(order_mg) and c.volume_ml == pytest.approx(start["bag_ml"])
    assert c.dose_mg_kg == pytest.approx(start["dose_mg_kg"])
    # 90 min after the start, no Stop pressed: the total is the order (not 1.5x, not 2.25x)
    at90 = totals(st, started.t + timedelta(minutes=90))
    assert at90.mg == pytest.approx(order_mg) and at90.mg_kg == pytest.approx(start["dose_mg_kg"])
    rec = [e for e in of_kind(events, "phase_changed") if e.to_phase == "recovery"]
    assert len(rec) == 1 and rec[0].seq == c.seq + 1
    # the minimum recovery counts from the completion: at 67:00, 20 of 30 min
    minimum = a["recovery"]["min_minutes"]
    since = (secs("67:00") - secs(start["at"]) - start["over_min"] * 60) / 60
    assert refusals(events)[4].count(f"minimum recovery {minimum:g} min not reached ({since:.0f} min so far)") == 1


# ------------------------------------------------------------------ 3. esketamine devices


def test_esketamine_devices_in_mg_and_112_refused(tmp_path):
    dosing = protocol("esketamine")["dosing"]
    r, st, events, printed = run("esketamine_devices", "uneventful", tmp_path)
    devices = of_kind(events, "device_given")
    assert [d.total_mg for d in devices] == [dosing["device_mg"] * n for n in (1, 2, 3)]
    assert devices[-1].total_mg == dosing["hard_max"] == 84
    assert [d.lot for d in devices] == ["ESK-A1", "ESK-A2", "ESK-A3"]
    assert all((b.mono - a.mono) >= dosing["device_wait_min"] * 60 for a, b in zip(devices, devices[1:]))
    assert not of_kind(events, "infusion_started")  # no mg/kg, no mL/h
    refused = refusals(events)
    assert set(refused) == {3, 6, 9, 12}
    assert "112 mg" in refused[3] and "84 mg" in refused[3]
    assert f"wait {dosing['device_wait_min']:g} min" in refused[6]
    assert "112 mg" in refused[9] and f"maximum {dosing['hard_max']:g} mg" in refused[9]
    # observation counts from the first device (>= 120 min [P]): at 100:30 it is 98 min
    rec = protocol("esketamine")["recovery"]
    first_at = secs(next(s for s in steps("esketamine_devices") if s["do"] == "give_device")["at"])
    assert f"minimum recovery {rec['min_minutes']:g} min not reached ({(secs('100:30') - first_at) / 60:.0f} min" \
        in refused[12]
    assert devices[0].advisory_reason  # the concomitant benzodiazepine needed a recorded reason
    assert any("benzodiazepines" in a for a in devices[0].advisories)
    assert st.device_doses.total_mg == 84 and st.phase == "discharged"


def test_rems_form_filled_from_the_record(tmp_path):
    from chairside.domain.protocol import load_template
    from chairside.reports.rems import fields

    rems = protocol("esketamine")["rems"]
    _r, st, events, _ = run("esketamine_devices", "uneventful", tmp_path)
    doc = fields(events, load_template("esketamine"))
    form = doc["form_fields"]
    assert list(form) == rems["fields"]  # every field the form has, in its order
    assert form["dose_mg"] == 84 and form["lot_number"] == "ESK-A1, ESK-A2, ESK-A3"
    assert form["concomitant_benzodiazepines"] is True and form["concomitant_opioids"] is False
    assert form["minutes_first_device_to_end_of_monitoring"] >= rems["min_minutes"]
    at40 = form["bp_at_40_min"]["minutes_after_first_device"]
    assert abs(at40 - rems["bp_at_min"]) <= rems["bp_at_min_window"]
    missing = {m["field"] for m in doc["missing"]}
    assert {"patient_name", "date_of_birth", "sex"} <= missing
    assert missing == {k for k, v in form.items() if v is None}  # never silently null


# ------------------------------------------------------------------ 4. the start gate


def test_start_refused_without_escort_and_fasting_needs_a_reason(tmp_path):
    gate = protocol("iv-ketamine-depression")["gate"]
    assert "escort" in gate["hard_blocks"] and "fasting" in gate["advisories"]
    r, st, events, printed = run("start_no_escort", "uneventful", tmp_path)
    refused = refusals(events)
    assert set(refused) == {3, 4, 6}
    assert all("escort" in refused[n] for n in (3, 4))  # a reason does not lift a hard block
    assert f"fasted 0.5 h, the template asks >= {gate['fasting_food_h']:g} h" in refused[6]
    started = of_kind(events, "infusion_started")
    assert len(started) == 1
    reason = steps("start_no_escort")[6]["reason"]
    assert started[0].advisory_reason == reason
    assert any("fasted 0.5 h" in a for a in started[0].advisories)


# ------------------------------------------------------------------ 5. resume gated


def test_resume_after_a_hypertensive_pause_is_gated(tmp_path):
    r, st, events, printed = run("resume_gated", "hypertensive-surge", tmp_path)
    refused = refusals(events)
    assert set(refused) == {5, 7, 8}
    assert "no BP has been measured since the pause" in refused[5]
    for n in (7, 8):
        assert "after the pause" in refused[n] and "prescriber's initials" in refused[n]
    resumed = of_kind(events, "infusion_resumed")
    assert len(resumed) == 1 and resumed[0].prescriber == "MD" and resumed[0].gate_findings
    paused = of_kind(events, "infusion_paused")[0]
    bp_after = [x for e in of_kind(events, "readings_recorded") for x in e.readings
                if x.param == "nibp_sys" and x.valid and x.time is not None and x.time > paused.t]
    guide = protocol("esketamine")["rems"]["bp_guide_sys"]  # the label's ~140/90 guide [P]
    assert bp_after and bp_after[0].value >= guide


# ------------------------------------------------------------------ 10. the course


def test_course_number_and_previous_session(tmp_path):
    a = protocol("iv-ketamine-depression")
    weight = scenario("uneventful")["patient"]["weight_kg"]
    start = next(s for s in steps("completion_no_stop") if s["do"] == "start_infusion")
    _r1, st1, ev1, _ = run("completion_no_stop", "uneventful", tmp_path, name="s1-CLIN-END-a.chairside")
    _r2, st2, ev2, _ = run("completion_no_stop", "uneventful", tmp_path, name="s2-CLIN-END-b.chairside", seed=2)
    opened = ev2[0]
    assert opened.course_n == 2 and opened.course_planned == a["course"]["planned_sessions"]
    assert opened.previous["session_id"] == ev1[0].session_id
    assert opened.previous["dose_mg"] == pytest.approx(start["dose_mg_kg"] * weight)
    peak = max(x.value for e in of_kind(ev1, "readings_recorded") for x in e.readings
               if x.param == "nibp_sys" and x.valid and x.value is not None)
    assert opened.previous["peak_sbp"] == peak
    assert ev1[0].course_n == 1 and ev1[0].previous == {}


# ------------------------------------------------------------------ the command line


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", "import sys; from chairside.cli import main; sys.exit(main())",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_bad_script_exit_2_names_file_step_and_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\nat = "0:00"\ndo = "open_session"\n\n[[step]]\nat = "7:00"\ndo = "start_infusion"\n'
                   'over_min = "forty"\n', encoding="utf-8")
    p = _cli("train", "--scenario", "uneventful", "--script", str(bad), "--headless", cwd=tmp_path)
    assert p.returncode == 2
    assert "bad.toml: step 2: over_min: must be a number" in p.stderr
    bad.write_text('[[step]]\nat = "0:00"\ndo = "open_session"\n\n[[step]]\nat = "1:00"\ndo = "dance"\n',
                   encoding="utf-8")
    p = _cli("train", "--scenario", "uneventful", "--script", str(bad), "--headless", cwd=tmp_path)
    assert p.returncode == 2 and "bad.toml: step 2: do: unknown action 'dance'" in p.stderr


def test_cli_run_with_refusal_exits_0(tmp_path):
    script = tmp_path / "short.toml"
    script.write_text('[[step]]\nat = "0:00"\ndo = "open_session"\nescort = false\n\n'
                      '[[step]]\nat = "1:00"\ndo = "start_infusion"\n', encoding="utf-8")
    out = tmp_path / "short.chairside"
    p = _cli("train", "--scenario", "uneventful", "--script", str(script), "--headless", "--seed", "3",
             "--session", str(out), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "step 2 at 1:00 start_infusion: REFUSED" in p.stdout and "escort" in p.stdout
    events = read_session(out).events
    assert refusals(events) and events[-1].kind == "session_closed"
    assert (tmp_path / "short.debrief.md").exists()
