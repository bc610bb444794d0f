"""The debrief of a session: what happened and how the person at the chair responded.

Owns: ``build_debrief(events)`` (from a session's events: one timeline of the scenario's
and the instructor's entries, the trainee's entries and the alarms, with the scenario's
teaching points on the row where the run entered each state; the time to acknowledge each
alarm, also from the moment it reached its highest priority; the vital signs with their
nadir, peak and time beyond the limits; for a simulated run, what the patient's
physiology did beside what the monitor showed; for a training run, each expected action
of the scenario met or missed with its times, and the score that follows from the
scenario's points), ``chart(events)`` (the trend chart) and ``load_debrief(path)``. The
exports (markdown, JSON lines, HTML) are :mod:`chairside.reports.debrief_render`.

For a training run the expectations come from the record: the final ``training`` event
``debrief`` written when the run ended; for a run cut short, from the expectations the
record shows opened and met, with the scenario's list (when the simulator is installed)
for those that never opened. Any session file can be debriefed; without a scenario there
is nothing to score and the debrief says so.
Times: seconds from the start of the scenario (the trainee's start of the infusion) for a
training run, else from the session's opening. No clock is read here.
May import: chairside.domain, chairside.store, chairside.alarms (limits); simulators only
through simulators.api (a cut-short run's expectations, the states' teaching points).
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from chairside.domain.describe import describe, rank
from chairside.domain.events import CLINICAL_EVENT_KINDS
from chairside.reports.common import load_limits, load_template, phase_spans
from chairside.reports.debrief_render import FORMATS, render, to_html, to_jsonl, to_markdown
from chairside.reports.debrief_vitals import chart_series, truth_figures, truth_samples, vital_figures
from chairside.reports.svg import Mark, render_chart
from chairside.store import SessionFileError, read_session

_HIDDEN_SIM = {"debrief", "seed", "patient", "truth"}  # shown in the header (or the true vs displayed) instead


def load_debrief(path: str | Path, *, with_chart: bool = False) -> dict[str, Any]:
    """The debrief of a session file (``ValueError`` with the file named if unreadable)."""
    try:
        record = read_session(path)
    except SessionFileError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    d = build_debrief(record.events, with_chart=with_chart)
    d["header"]["file"] = str(path)
    d["header"]["last_hash"] = record.last_hash
    if record.verified is not None:  # the installation key(s) that signed the file (store/signing.py)
        d["header"]["signing"] = record.verified.signing_text()
        d["header"]["signing_keys"] = list(record.verified.keys) if record.verified.signed else []
    return d


def build_debrief(events: list[Any], *, live_expectations: list[dict[str, Any]] | None = None,
                  with_chart: bool = False) -> dict[str, Any]:
    """The debrief as plain data (JSON-ready; see the module docstring); ``with_chart`` adds
    the SVG trend chart as ``chart_svg`` (for the HTML page; not in the JSON lines)."""
    if not events or events[0].kind != "session_opened":
        raise ValueError("a debrief needs a session record that starts with session_opened")
    opened = events[0]
    training = [e for e in events if e.kind == "training"]
    begin = next((e for e in training if e.action == "begin"), None)
    t0: datetime = begin.t if begin is not None else opened.t
    end_t = max(e.t for e in events)
    seed = next((e.detail for e in training if e.action == "seed"), "")
    patient = next((e.detail for e in training if e.action == "patient"), "")
    header = {
        "session_id": opened.session_id, "patient_id": opened.patient_id, "protocol": opened.protocol,
        "staff": list(opened.staff), "opened": opened.t.isoformat(), "training": bool(opened.training),
        "scenario": opened.scenario, "seed": opened.sim_seed, "seed_detail": seed, "patient": patient,
        "time_zero": t0.isoformat(),
        "time_zero_is": "the start of the scenario (infusion started)" if begin is not None else "the session's opening",
        "duration_s": round((end_t - t0).total_seconds(), 1),
    }
    rel = lambda t: round((t - t0).total_seconds(), 1)  # noqa: E731
    trainees = set(opened.staff)

    timeline: list[dict[str, Any]] = []
    for e in events:
        k = e.kind
        if k == "training":
            if e.action in _HIDDEN_SIM or (e.source == "trainee" and e.action != "expected_met"):
                continue
            who = {"scenario": "scenario", "device": "device", "instructor": "instructor", "trainee": "scoring"}.get(
                e.source, "simulator")
            if e.action in ("expected_open", "expected_met"):
                who = "scoring"
            timeline.append(_row(e, rel(e.t), who, describe(e)))
        elif k in CLINICAL_EVENT_KINDS and k != "session_opened":
            trainees.add(e.author)
            timeline.append(_row(e, rel(e.t), "trainee" if k != "session_closed" else "system",
                                 describe(e, full=True)))
        elif k in ("alarm_raised", "alarm_escalated", "alarm_acknowledged", "alarm_cleared"):
            timeline.append(_row(e, rel(e.t), "alarm" if k != "alarm_acknowledged" else "trainee",
                                 describe(e, full=True)))
        elif k == "device_status" and e.status.kind in ("link_lost", "no_data", "probe_off", "sensor_off",
                                                         "no_sensor", "nibp_failed", "cable_disconnect"):
            timeline.append(_row(e, rel(e.t), "device", describe(e)))

    alarms = _alarm_responses(events, rel)
    expectations, source = _expectations(training, live_expectations, opened, rel(end_t))
    score = _score(expectations) if expectations is not None else None
    notes = [{"t_s": r["t_s"], "text": r["text"]} for r in timeline if r["who"] == "instructor"
             and r["action"] == "note"]
    _state_points(timeline, opened.scenario)
    template = load_template(opened.protocol)
    limits, limits_file = load_limits(template.limits_profile if template is not None else None)
    truth = truth_samples(training, t0)
    return {"header": header | {"trainees": sorted(trainees), "expectations_from": source,
                                "limits_profile": limits_file},
            "timeline": timeline, "alarms": alarms, "expectations": expectations or [], "score": score,
            "instructor_notes": notes, "vitals": vital_figures(events, rel, limits, end_t),
            "truth": truth_figures(events, truth, rel, end_t)} | ({"chart_svg": chart(events)} if with_chart else {})


def chart(events: list[Any]) -> str:
    """The debrief's trend chart (SVG): SBP/DBP, HR and SpO2 over the run with the limits of
    the session's profile, the alarms and the trainee's interventions marked and, for a
    simulated run that recorded it, the patient's true physiology beside what was shown."""
    opened = events[0]
    training = [e for e in events if e.kind == "training"]
    begin = next((e for e in training if e.action == "begin"), None)
    t0 = begin.t if begin is not None else opened.t
    template = load_template(opened.protocol)
    limits, limits_file = load_limits(template.limits_profile if template is not None else None)
    series = chart_series(events, truth_samples(training, t0))
    alarms = [e for e in events if e.kind == "alarm_raised"]
    given = [e for e in events if e.kind == "intervention_given"]
    marks = [Mark(e.t, f"A{i + 1}", "alarm", e.param, e.priority) for i, e in enumerate(alarms)]
    marks += [Mark(e.t, f"I{i + 1}", "intervention") for i, e in enumerate(given)]
    return render_chart(t0=opened.t, t1=max(e.t for e in events), series=series, phases=phase_spans(events),
                        limits=limits, marks=marks, limits_source=limits_file)


def _state_points(timeline: list[dict[str, Any]], scenario: str | None) -> None:
    """The scenario's debrief points of each state, on the row where the run entered it."""
    rows = [r for r in timeline if r["kind"] == "training" and r["action"] == "state"]
    if not rows or not scenario:
        return
    try:
        from simulators.api import load_scenario  # numpy: only for a training run's teaching points

        states = load_scenario(scenario).states
    except Exception:  # noqa: BLE001 - the simulator or the scenario may not be installed here
        return
    for r in rows:
        st = states.get(r.get("detail", ""))
        if st is not None and st.debrief:
            r["points"] = list(st.debrief)


def _row(e: Any, t_s: float, who: str, text: str) -> dict[str, Any]:
    row = {"t_s": t_s, "time": e.t.isoformat(), "seq": e.seq, "who": who, "kind": e.kind,
           "action": getattr(e, "action", e.kind), "author": e.author, "text": text}
    if e.kind == "training":
        row["detail"] = e.detail
    return row


def _alarm_responses(events: list[Any], rel) -> list[dict[str, Any]]:
    """Each alarm: when raised, the highest priority it reached and when, the first
    acknowledgement and the time to it from the raise and from reaching the highest priority
    (an acknowledgement before the escalation does not count for the highest priority)."""
    out: dict[str, dict[str, Any]] = {}
    acks: dict[str, list[tuple[float, str]]] = {}
    for e in events:
        if e.kind == "alarm_raised":
            out[e.alarm_id] = {"alarm_id": e.alarm_id, "seq": e.seq, "reminders": 0, "rule": e.rule,
                               "priority": e.priority,
                               "highest": e.priority, "highest_s": rel(e.t), "class": e.alarm_class,
                               "message": e.message, "raised_s": rel(e.t), "acknowledged_s": None,
                               "acknowledged_by": None, "time_to_ack_s": None, "time_to_ack_at_highest_s": None,
                               "cleared_s": None}
        elif e.kind == "alarm_escalated" and e.alarm_id in out:
            a = out[e.alarm_id]
            if rank(e.to_priority) > rank(a["highest"]):
                a["highest"], a["highest_s"] = e.to_priority, rel(e.t)
            elif e.reannounce:  # a reminder at the same priority, not an escalation
                a["reminders"] += 1
        elif e.kind == "alarm_acknowledged" and e.alarm_id in out:
            acks.setdefault(e.alarm_id, []).append((rel(e.t), e.by))
        elif e.kind == "alarm_cleared" and e.alarm_id in out:
            out[e.alarm_id]["cleared_s"] = rel(e.t)
    for aid, a in out.items():
        got = acks.get(aid, [])
        if got:
            a["acknowledged_s"], a["acknowledged_by"] = got[0]
            a["time_to_ack_s"] = round(got[0][0] - a["raised_s"], 1)
        at_highest = [t for t, _ in got if t >= a["highest_s"]]
        if at_highest:
            a["time_to_ack_at_highest_s"] = round(at_highest[0] - a["highest_s"], 1)
    return list(out.values())


def _expectations(training: list[Any], live: list[dict[str, Any]] | None, opened: Any,
                  end_s: float) -> tuple[list[dict[str, Any]] | None, str]:
    final = [e for e in training if e.action == "debrief" and "expectations" in e.args]
    if final:
        return [dict(x) for x in final[-1].args["expectations"]], "the record (scored when the run ended)"
    if live is not None:
        return [dict(x) for x in live], "the simulator (the run is still going)"
    if not opened.training and not opened.scenario:
        return None, "none: not a training run"
    # cut short: what the record shows opened and met, over the scenario's list
    listed: list[dict[str, Any]] = []
    try:
        from simulators.api import load_scenario  # numpy: only to list a cut-short run's expectations

        sc = load_scenario(opened.scenario)
        listed = [{"id": x.id, "action": x.action, "description": x.description, "within_s": x.within_s,
                   "max_points": x.points} for x in sc.expected]
    except Exception:  # noqa: BLE001 - the simulator or the scenario may not be here
        listed = []
    by_id = {x["id"]: x for x in listed}
    harms: list[dict[str, Any]] = []
    harm_points = {h.id: h.points for h in (sc.harmful if listed else ())}
    for e in training:
        if e.action == "harmful":
            hid, _, text = e.detail.partition(": ")
            pts = harm_points.get(hid, 0)
            harms.append({"id": hid, "action": "", "description": text, "within_s": None, "max_points": 0,
                          "opened_at": None, "met_at": e.sim_t, "status": "harmful", "points": -pts,
                          "latency_s": None, "anticipated": False})
            continue
        if e.action not in ("expected_open", "expected_met"):
            continue
        eid = e.detail.split(":", 1)[0].split(" ", 1)[0]
        x = by_id.setdefault(eid, {"id": eid, "action": "", "description": "", "within_s": None, "max_points": 0})
        if e.action == "expected_open":
            x.setdefault("opened_at", e.sim_t)
        else:
            x["met_at"] = e.sim_t
            x["anticipated"] = " anticipated" in e.detail
    out = []
    for x in by_id.values():
        opened_at, met_at = x.get("opened_at"), x.get("met_at")
        if met_at is not None:
            status, pts = "met", x["max_points"]
        elif opened_at is None:
            status, pts = "not_triggered", 0
        elif x["within_s"] is not None and end_s - opened_at <= x["within_s"]:
            status, pts = "pending", 0
        else:
            status, pts = "missed", 0
        out.append({**x, "opened_at": opened_at, "met_at": met_at, "status": status, "points": pts,
                    "latency_s": None if met_at is None or opened_at is None else round(met_at - opened_at, 1)})
    return out + harms, "the record (the run was cut short)"


def _score(exps: list[dict[str, Any]]) -> dict[str, Any]:
    """Points earned (harmful actions deduct theirs) over the points of the expectations
    whose moment came (or that the trainee anticipated)."""
    triggered = [x for x in exps if x["status"] not in ("not_triggered", "harmful")]
    points = sum(x["points"] for x in exps)
    possible = sum(x["max_points"] for x in triggered)
    return {"points": points, "possible": possible, "all_points": sum(x["max_points"] for x in exps),
            "percent": None if not possible else round(100.0 * points / possible, 1),
            "met": sum(1 for x in exps if x["status"] == "met"),
            "anticipated": sum(1 for x in exps if x["status"] == "met" and x.get("anticipated")),
            "harmful": sum(1 for x in exps if x["status"] == "harmful"),
            "missed": sum(1 for x in exps if x["status"] == "missed"),
            "pending": sum(1 for x in exps if x["status"] == "pending"),
            "not_triggered": sum(1 for x in exps if x["status"] == "not_triggered")}


__all__ = ["FORMATS", "build_debrief", "chart", "load_debrief", "render", "to_html", "to_jsonl", "to_markdown"]
