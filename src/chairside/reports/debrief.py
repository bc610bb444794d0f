"""The debrief of a session: what happened and how the person at the chair responded.

Owns: ``build_debrief(events)`` (from a session's events: one timeline of the scenario's
and the instructor's entries, the trainee's entries and the alarms; the time to
acknowledge each alarm; for a training run, each expected action of the scenario met or
missed with its times, and the score that follows from the scenario's points),
``to_markdown`` and ``to_jsonl`` (the exports), and ``load_debrief(path)``.

For a training run the expectations come from the record: the final ``training`` event
``debrief`` written when the run ended; for a run cut short, from the expectations the
record shows opened and met, with the scenario's list (when the simulator is installed)
for those that never opened. Any session file can be debriefed; without a scenario there
is nothing to score and the debrief says so.
Times: seconds from the start of the scenario (the trainee's start of the infusion) for a
training run, else from the session's opening. No clock is read here.
May import: chairside.domain, chairside.store; simulators only to list a cut-short run's
expectations. Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from chairside.domain.clock import elapsed_text
from chairside.domain.describe import describe, rank
from chairside.domain.events import CLINICAL_EVENT_KINDS

FORMATS = ("md", "jsonl")
_HIDDEN_SIM = {"debrief", "seed", "patient"}  # shown in the header instead


def load_debrief(path: str | Path) -> dict[str, Any]:
    """The debrief of a session file (``ValueError`` with the file named if unreadable)."""
    from chairside.store import SessionFileError, read_session

    try:
        events = read_session(path).events
    except SessionFileError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    d = build_debrief(events)
    d["header"]["file"] = str(path)
    return d


def build_debrief(events: list[Any], *, live_expectations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The debrief as plain data (JSON-ready); see the module docstring."""
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
    return {"header": header | {"trainees": sorted(trainees), "expectations_from": source},
            "timeline": timeline, "alarms": alarms, "expectations": expectations or [], "score": score,
            "instructor_notes": notes}


def _row(e: Any, t_s: float, who: str, text: str) -> dict[str, Any]:
    return {"t_s": t_s, "time": e.t.isoformat(), "seq": e.seq, "who": who, "kind": e.kind,
            "action": getattr(e, "action", e.kind), "author": e.author, "text": text}


def _alarm_responses(events: list[Any], rel) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.kind == "alarm_raised":
            out[e.alarm_id] = {"alarm_id": e.alarm_id, "rule": e.rule, "priority": e.priority,
                               "highest": e.priority, "class": e.alarm_class, "message": e.message,
                               "raised_s": rel(e.t), "acknowledged_s": None, "acknowledged_by": None,
                               "time_to_ack_s": None, "cleared_s": None}
        elif e.kind == "alarm_escalated" and e.alarm_id in out:
            a = out[e.alarm_id]
            if rank(e.to_priority) > rank(a["highest"]):
                a["highest"] = e.to_priority
        elif e.kind == "alarm_acknowledged" and e.alarm_id in out:
            a = out[e.alarm_id]
            if a["acknowledged_s"] is None:
                a["acknowledged_s"] = rel(e.t)
                a["acknowledged_by"] = e.by
                a["time_to_ack_s"] = round(a["acknowledged_s"] - a["raised_s"], 1)
        elif e.kind == "alarm_cleared" and e.alarm_id in out:
            out[e.alarm_id]["cleared_s"] = rel(e.t)
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
        from simulators.api import load_scenario

        sc = load_scenario(opened.scenario)
        listed = [{"id": x.id, "action": x.action, "description": x.description, "within_s": x.within_s,
                   "max_points": x.points} for x in sc.expected]
    except Exception:  # noqa: BLE001 - the simulator or the scenario may not be here
        listed = []
    by_id = {x["id"]: x for x in listed}
    for e in training:
        if e.action not in ("expected_open", "expected_met"):
            continue
        eid = e.detail.split(":", 1)[0].split(" ", 1)[0]
        x = by_id.setdefault(eid, {"id": eid, "action": "", "description": "", "within_s": None, "max_points": 0})
        if e.action == "expected_open":
            x.setdefault("opened_at", e.sim_t)
        else:
            x["met_at"] = e.sim_t
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
    return out, "the record (the run was cut short)"


def _score(exps: list[dict[str, Any]]) -> dict[str, Any]:
    triggered = [x for x in exps if x["status"] != "not_triggered"]
    points = sum(x["points"] for x in exps)
    possible = sum(x["max_points"] for x in triggered)
    return {"points": points, "possible": possible, "all_points": sum(x["max_points"] for x in exps),
            "percent": None if not possible else round(100.0 * points / possible, 1),
            "met": sum(1 for x in exps if x["status"] == "met"),
            "missed": sum(1 for x in exps if x["status"] == "missed"),
            "pending": sum(1 for x in exps if x["status"] == "pending"),
            "not_triggered": sum(1 for x in exps if x["status"] == "not_triggered")}


# ---------------------------------------------------------------------------- exports
def _mmss(s: float | None) -> str:
    return elapsed_text(s, missing="—")


def to_markdown(d: dict[str, Any]) -> str:
    h = d["header"]
    lines = [f"# Debrief — {h['scenario'] or 'session'} {('(seed ' + str(h['seed']) + ')') if h['seed'] is not None else ''}".rstrip(), ""]
    lines += [f"- Session {h['session_id']}, patient {h['patient_id']}, protocol {h['protocol']}",
              f"- Opened {h['opened']}; staff {', '.join(h['staff'])}; entries by {', '.join(h['trainees'])}",
              f"- Times are from {h['time_zero_is']} ({h['time_zero']}); run length {_mmss(h['duration_s'])}"]
    if h.get("file"):
        lines.append(f"- File {h['file']}")
    lines.append("")
    s = d["score"]
    lines.append("## Score")
    lines.append("")
    if s is None:
        lines.append("Not a training run: no expected actions to score.")
    else:
        pct = "n/a" if s["percent"] is None else f"{s['percent']:g} %"
        lines.append(f"**{s['points']} of {s['possible']} points** ({pct}) for the expected actions whose moment came; "
                     f"{s['met']} met, {s['missed']} missed, {s['pending']} pending, {s['not_triggered']} not "
                     f"triggered (the scenario's {s['all_points']} points in all). Expectations from "
                     f"{h['expectations_from']}.")
    lines += ["", "## Expected actions", ""]
    if d["expectations"]:
        lines += ["| action | expected | status | condition at | done at | after | points |",
                  "|---|---|---|---|---|---|---|"]
        for x in d["expectations"]:
            lat = "—" if x.get("latency_s") is None else f"{x['latency_s']:.0f} s"
            lines.append(f"| {x['action']} | {x.get('description') or x['id']} | {x['status'].replace('_', ' ')} | "
                         f"{_mmss(x.get('opened_at'))} | {_mmss(x.get('met_at'))} | {lat} | "
                         f"{x['points']}/{x['max_points']} |")
    else:
        lines.append("None.")
    lines += ["", "## Alarms and time to acknowledge", ""]
    if d["alarms"]:
        lines += ["| raised | alarm | priority (highest) | acknowledged | by | time to ack | cleared |",
                  "|---|---|---|---|---|---|---|"]
        for a in d["alarms"]:
            tta = "NOT ACKNOWLEDGED" if a["time_to_ack_s"] is None else f"{a['time_to_ack_s']:.0f} s"
            lines.append(f"| {_mmss(a['raised_s'])} | {a['message'] or a['rule']} ({a['class']}) | "
                         f"{a['priority']} ({a['highest']}) | {_mmss(a['acknowledged_s'])} | "
                         f"{a['acknowledged_by'] or '—'} | {tta} | {_mmss(a['cleared_s'])} |")
    else:
        lines.append("No alarms.")
    if d["instructor_notes"]:
        lines += ["", "## Instructor's notes", ""]
        lines += [f"- {_mmss(n['t_s'])} {n['text']}" for n in d["instructor_notes"]]
    lines += ["", "## Timeline", "", "| time | who | what |", "|---|---|---|"]
    for r in d["timeline"]:
        text = r["text"].replace("|", "\\|")
        lines.append(f"| {_mmss(r['t_s'])} | {r['who']} | {text} |")
    return "\n".join(lines) + "\n"


def to_jsonl(d: dict[str, Any]) -> str:
    rows = [{"type": "header", **d["header"]}, {"type": "score", **(d["score"] or {"points": None})}]
    rows += [{"type": "expectation", **x} for x in d["expectations"]]
    rows += [{"type": "alarm", **a} for a in d["alarms"]]
    rows += [{"type": "note", **n} for n in d["instructor_notes"]]
    rows += [{"type": "timeline", **r} for r in d["timeline"]]
    return "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)


def render(d: dict[str, Any], fmt: str) -> str:
    if fmt == "md":
        return to_markdown(d)
    if fmt == "jsonl":
        return to_jsonl(d)
    raise ValueError(f"unknown debrief format {fmt!r}; choose one of: {', '.join(FORMATS)}")
