"""The one wording of events: event -> sentence, alarm priority markers and ranks.

Owns: ``describe(ev, full=False)`` (the sentence for any event kind: the console's
timeline line; with ``full`` the record's details the console leaves out, for the report's
event log and the debrief), ``colour(ev)`` (the priority an entry is drawn in, None for
clinical entries), ``alarm_log_line(ev)`` (``chairside record``'s stderr line), the
priority markers ``***``/``**``/``*`` (``MARKERS``, ``marker``), the priority ranks
(``PRIORITY_RANK``, ``rank``) and the short labels of parameters (``param_label``).
Every caller that words an event (console, reports, debrief, replay's comparison, record)
goes through here, so one kind is worded in one branch.
Pure functions of the event: no clock, no I/O. Must not import: anything outside
chairside.domain and the stdlib.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MARKERS: dict[str, str] = {"high": "***", "medium": "**", "low": "*"}
PRIORITY_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3}

_PARAM_LABEL = {
    "nibp_sys": "SBP", "nibp_dia": "DBP", "nibp_map": "MAP", "hr": "HR", "pr": "PR", "spo2": "SpO2",
    "pi": "PI", "rr": "RR",
}
_TRAINING_WHO = {"instructor": "Instructor", "scenario": "Scenario", "device": "Sim device", "trainee": "Trainee"}
_MANY_READINGS = 6  # above this, a batch is summarised per parameter (count and range)


def marker(priority: str | None) -> str:
    """``***`` high, ``**`` medium, ``*`` low; "" for no or an unknown priority."""
    return MARKERS.get(priority or "", "")


def rank(priority: str | None) -> int:
    """Order of priorities: low 1 < medium 2 < high 3; 0 for none or an unknown one."""
    return PRIORITY_RANK.get(priority or "", 0)


def param_label(param: str | None) -> str:
    """SBP, DBP, MAP, HR, PR, SpO2 ... (other names unchanged)."""
    return _PARAM_LABEL.get(param or "", param or "")


def _n(v: float | None) -> str:
    return "—" if v is None else f"{v:g}"


def _join(head: str, more: list[str], full: bool) -> str:
    extra = [m for m in more if m]
    return f"{head}; {', '.join(extra)}" if full and extra else head


# ---------------------------------------------------------------------------- one function a kind
# Each returns (the console's sentence, details added for the full record).


def _session_opened(ev: Any) -> tuple[str, list[str]]:
    head = f"Session opened: {ev.patient_id}, {ev.weight_kg:g} kg ({ev.weight_source}), {ev.protocol}"
    if ev.course_n is not None:
        head += f"; infusion {ev.course_n}" + (f" of {ev.course_planned}" if ev.course_planned else "")
    prev = ev.previous or {}
    before = ""
    if prev:
        dose = f"{prev['dose_mg']:g} mg" if prev.get("dose_mg") is not None else "dose —"
        peak = (f", peak BP {_n(prev.get('peak_sbp'))}/{_n(prev.get('peak_dbp'))}"
                if prev.get("peak_sbp") is not None else "")
        before = f"previous session {str(prev.get('opened', ''))[:10]}: {dose}{peak}"
    return head, [f"session {ev.session_id}", f"staff {', '.join(ev.staff) or '—'}",
                  "SIMULATED" if ev.simulated else "", "TRAINING" if ev.training else "",
                  f"scenario {ev.scenario}" if ev.scenario else "", before]


def _checklist(ev: Any) -> tuple[str, list[str]]:
    present = [c.replace("_", " ") for c, v in ev.contraindications.items() if v]
    fasted = "?" if ev.hours_fasted is None else f"{ev.hours_fasted:g} h"
    head = (f"Checklist: contraindications {', '.join(present) or 'none'}; fasted {fasted}; "
            f"escort {'yes' if ev.escort_confirmed else 'NO'}; consent {'yes' if ev.consent else 'NO'}")
    return head, [f"notes: {ev.notes}" if ev.notes else ""]


def _baseline(ev: Any) -> tuple[str, list[str]]:
    head = f"Baseline {_n(ev.sbp)}/{_n(ev.dbp)} mmHg, HR {_n(ev.hr)}, SpO2 {_n(ev.spo2)}"
    return head, [f"MAP {_n(ev.map)}", f"MOAA/S {_n(ev.moaas)}", f"CADSS {_n(ev.cadss)}"]


def _phase(ev: Any) -> tuple[str, list[str]]:
    return f"Phase {ev.from_phase} → {ev.to_phase}" + (f" ({ev.reason})" if ev.reason else ""), []


def _drug_details(ev: Any) -> list[str]:
    return [ev.drug, f"lot {ev.lot}" if getattr(ev, "lot", "") else ""]


def _infusion_started(ev: Any) -> tuple[str, list[str]]:
    ov = f" — GATE OVERRIDE: {ev.gate_override_reason}" if ev.gate_override_reason else ""
    head = (f"Infusion started {ev.rate_mg_kg_h:.3g} mg/kg/h = {ev.rate_ml_h:.1f} mL/h "
            f"({ev.concentration_mg_ml:g} mg/mL){ov}")
    order = (f"order {ev.dose_mg:.4g} mg = {ev.volume_to_infuse_ml:.1f} mL to infuse"
             if ev.dose_mg is not None and ev.volume_to_infuse_ml is not None else "")
    return head, [*_drug_details(ev), f"reason: {ev.reason}" if ev.reason else "", order,
                  *(f"advisory: {a}" for a in ev.advisories),
                  f"advisory reason: {ev.advisory_reason}" if ev.advisory_reason else "",
                  *(f"bag: {b}" for b in ev.bag_findings), f"bag reason: {ev.bag_reason}" if ev.bag_reason else ""]


def _rate_changed(ev: Any) -> tuple[str, list[str]]:
    head = (f"Rate {ev.old_rate_mg_kg_h:.3g} → {ev.rate_mg_kg_h:.3g} mg/kg/h "
            f"({ev.rate_ml_h:.1f} mL/h): {ev.reason}")
    return head, [ev.drug, f"was {ev.old_rate_ml_h:.1f} mL/h", f"{ev.concentration_mg_ml:g} mg/mL"]


def _paused(ev: Any) -> tuple[str, list[str]]:
    return f"Infusion paused: {ev.reason}", []


def _resumed(ev: Any) -> tuple[str, list[str]]:
    head = "Infusion resumed" + (f": {ev.reason}" if ev.reason else "")
    if ev.gate_findings:
        head += f" — above the gate, agreed by {ev.prescriber}"
    return head, [ev.drug, f"{ev.rate_mg_kg_h:.3g} mg/kg/h = {ev.rate_ml_h:.1f} mL/h", *ev.gate_findings]


def _stopped(ev: Any) -> tuple[str, list[str]]:
    return f"Infusion stopped: {ev.reason}", []


def _completed(ev: Any) -> tuple[str, list[str]]:
    kg = f" = {ev.dose_mg_kg:.3g} mg/kg" if ev.dose_mg_kg is not None else ""
    head = (f"Infusion complete at {ev.at_t:%H:%M:%S}: {ev.dose_mg:.4g} mg{kg} in {ev.volume_ml:.1f} mL — "
            "confirm the pump has stopped")
    return head, [f"recorded at {ev.t:%H:%M:%S}"]


def _device_given(ev: Any) -> tuple[str, list[str]]:
    lot = f", lot {ev.lot}" if ev.lot else ""
    head = f"{ev.drug.capitalize()} device {ev.n}: {ev.device_mg:g} mg {ev.route}{lot} (total {ev.total_mg:g} mg)"
    more = [f"planned {ev.planned_mg:g} mg" if ev.planned_mg is not None else "",
            f"gate override: {ev.gate_override_reason}" if ev.gate_override_reason else "",
            *(f"advisory: {a}" for a in ev.advisories),
            f"reason: {ev.advisory_reason or ev.reason}" if (ev.advisory_reason or ev.reason) else ""]
    return head, more


def _observation(ev: Any) -> tuple[str, list[str]]:
    score = "" if ev.score is None else f" {ev.score:g}"
    txt = f" — {ev.text}" if ev.text else ""
    items = "{" + ", ".join(f"{a}: {b}" for a, b in ev.items.items()) + "}" if ev.items else ""
    return f"{ev.scale.upper()}{score}{txt}", [items]


def _intervention(ev: Any) -> tuple[str, list[str]]:
    dose = f" {ev.dose:g} {ev.dose_unit}" if ev.dose is not None else ""
    head = f"Intervention: {ev.drug}{dose} {ev.route}".rstrip() + (f" lot {ev.lot}" if ev.lot else "")
    return head, [f"given by {ev.given_by}" if ev.given_by else "",
                  f"ordered by {ev.ordered_by}" if ev.ordered_by else "",
                  f"reason: {ev.reason}" if ev.reason else "", f"response: {ev.response}" if ev.response else ""]


def _note(ev: Any) -> tuple[str, list[str]]:
    return f"Note: {ev.text}", []


def _amendment(ev: Any) -> tuple[str, list[str]]:
    rep = ", ".join(f"{k} → {_n(v)}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k} → {v!r}"
                    for k, v in (ev.replacement or {}).items())
    return f"Amendment of #{ev.target_seq}" + (f" ({rep})" if rep else "") + f": {ev.reason}", []


def _discharge(ev: Any) -> tuple[str, list[str]]:
    scores = f"Aldrete {_n(ev.aldrete_total)}, PADSS {_n(ev.padss_total)}"
    if ev.discharged:
        by = f" ({ev.override_by})" if ev.override_by else ""
        ov = f" — OVERRIDE{by}: {ev.override_reason}" if ev.override_reason else ""
        return f"Discharged ({scores}){ov}", list(ev.blocked_reasons) if ev.override_reason else []
    head = "Discharge assessed: " + ("criteria met" if ev.criteria_met else "; ".join(ev.blocked_reasons))
    return head, [scores]


def _closed(ev: Any) -> tuple[str, list[str]]:
    return "Session closed" + (f": {ev.reason}" if ev.reason else ""), []


def _monitoring_stopped(ev: Any) -> tuple[str, list[str]]:
    return f"Monitoring stopped (session left open): {ev.reason}", []


def _session_resumed(ev: Any) -> tuple[str, list[str]]:
    head = f"Session resumed after {_gap(ev.gap_s)} without recording" + (f" ({ev.reason})" if ev.reason else "")
    return head, [f"last event before the gap #{ev.last_seq} {ev.last_kind} at {ev.last_t:%H:%M:%S}"]


def _gap(seconds: float) -> str:
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return (f"{h} h " if h else "") + (f"{m} min " if h or m else "") + f"{sec} s"


def _alarm_raised(ev: Any) -> tuple[str, list[str]]:
    cond = ""
    if ev.param:
        cond = param_label(ev.param) + ("" if ev.value is None else f" {ev.value:g}")
        if ev.limit is not None:
            cond += f" (limit {ev.limit:g} {ev.source_tag})".replace(" )", ")")
    head = f"{marker(ev.priority) or '*'} {ev.message or ev.rule}"
    return head, [f"{ev.priority.upper()} {ev.alarm_class} alarm {ev.alarm_id}", cond]


def _alarm_escalated(ev: Any) -> tuple[str, list[str]]:
    if ev.from_priority == ev.to_priority:  # not an escalation: a reminder or a new condition
        what = "reminder" if ev.reannounce else "re-announced"
        return f"Alarm {ev.alarm_id} {what} ({ev.to_priority}): {ev.reason}", []
    head = f"Alarm {ev.alarm_id} {ev.from_priority} → {ev.to_priority}: {ev.reason}"
    return head, []


def _alarm_acknowledged(ev: Any) -> tuple[str, list[str]]:
    return f"Alarm {ev.alarm_id} acknowledged by {ev.by or ev.author}", []


def _alarm_silenced(ev: Any) -> tuple[str, list[str]]:
    head = f"Alarm {ev.alarm_id} {ev.mode.replace('_', ' ')}" + (f" by {ev.by}" if ev.by else "")
    return head, [f"for {ev.duration_s:g} s" if ev.duration_s else ""]


def _alarm_cleared(ev: Any) -> tuple[str, list[str]]:
    return f"Alarm {ev.alarm_id} cleared", [ev.reason]


def _device(ev: Any) -> tuple[str, list[str]]:
    st = ev.status
    head = f"Device: {st.kind.replace('_', ' ')}" + ("" if st.active else " ended") + (f" ({st.detail})" if st.detail else "")
    return head, [param_label(st.param) if st.param else "", " ".join(x for x in (ev.driver, ev.port) if x)]


def _training(ev: Any) -> tuple[str, list[str]]:
    who = _TRAINING_WHO.get(ev.source, "Sim")
    return f"{who}: {ev.action.replace('_', ' ')}" + (f" — {ev.detail}" if ev.detail else ""), []


def _readings(ev: Any) -> tuple[str, list[str]]:
    if len(ev.readings) <= _MANY_READINGS:
        parts = []
        for r in ev.readings:
            v = _n(r.value) if (r.valid and r.value is not None) else "n/a"
            flag = f" [{','.join(r.flags)}]" if r.flags else ""
            src = "" if r.origin == "device" else f" ({r.origin})"
            parts.append(f"{param_label(r.param)} {v}{flag}{src}")
        return f"{len(ev.readings)} reading(s): " + ", ".join(parts), []
    # many samples (continuous signals): per parameter the count and range; every value is in the file
    by: dict[str, list[Any]] = {}
    for r in ev.readings:
        by.setdefault(r.param, []).append(r)
    times = [r.time for r in ev.readings if r.time is not None]
    span = f" {min(times):%H:%M:%S}–{max(times):%H:%M:%S}" if times else ""
    parts = []
    for p, rs in by.items():
        vals = [r.value for r in rs if r.valid and r.value is not None]
        bad = [r for r in rs if not (r.valid and r.value is not None)]
        s = f"{param_label(p)} ×{len(rs)}"
        if vals:
            lo, hi = min(vals), max(vals)
            s += f" {_n(lo)}" + (f"–{_n(hi)}" if hi != lo else "")
        if bad:
            flags = sorted({f for r in bad for f in r.flags})
            s += f", {len(bad)} n/a" + (f" [{','.join(flags)}]" if flags else "")
        parts.append(s)
    return f"{len(ev.readings)} readings{span}: " + "; ".join(parts), []


def _rems_filed(ev: Any) -> tuple[str, list[str]]:
    return f"REMS Patient Monitoring Form filed by {ev.by}", [f"reference {ev.reference}" if ev.reference else ""]


_KINDS: dict[str, Callable[[Any], tuple[str, list[str]]]] = {
    "session_opened": _session_opened, "checklist_completed": _checklist, "baseline_recorded": _baseline,
    "phase_changed": _phase, "infusion_started": _infusion_started, "infusion_rate_changed": _rate_changed,
    "infusion_paused": _paused, "infusion_resumed": _resumed, "infusion_stopped": _stopped,
    "infusion_completed": _completed, "device_given": _device_given,
    "observation_recorded": _observation, "intervention_given": _intervention, "note": _note,
    "amendment": _amendment, "discharge_assessed": _discharge, "session_closed": _closed,
    "monitoring_stopped": _monitoring_stopped, "session_resumed": _session_resumed,
    "alarm_raised": _alarm_raised, "alarm_escalated": _alarm_escalated,
    "alarm_acknowledged": _alarm_acknowledged, "alarm_silenced": _alarm_silenced, "alarm_cleared": _alarm_cleared,
    "device_status": _device, "training": _training, "readings_recorded": _readings,
    "rems_form_filed": _rems_filed,
}


def describe(ev: Any, *, full: bool = False) -> str:
    """The sentence for ``ev``: the console's timeline line; ``full`` adds the record's
    details (drug and lot, who gave and ordered, alarm ids and limits ...) after a ``;``."""
    fn = _KINDS.get(ev.kind)
    if fn is None:
        return ev.kind
    head, more = fn(ev)
    return _join(head, more, full)


def colour(ev: Any) -> str | None:
    """The priority a timeline entry is drawn in: an alarm's (its new one when escalated);
    None for every other entry."""
    if ev.kind == "alarm_raised":
        return ev.priority
    if ev.kind == "alarm_escalated":
        return ev.to_priority
    return None


_LOGGED_SILENCES = ("audio_paused", "audio_off", "alarm_off", "reminder")


def alarm_log_line(ev: Any) -> str | None:
    """``chairside record``'s stderr line for an alarm event (UTC time, the new priority's
    marker for an escalation, then the full sentence); None for other events and for
    silences the log does not name."""
    if not ev.kind.startswith("alarm_") or (ev.kind == "alarm_silenced" and ev.mode not in _LOGGED_SILENCES):
        return None
    mark = f"{marker(ev.to_priority)} " if ev.kind == "alarm_escalated" else ""  # a raise starts with its own
    return f"{ev.t:%Y-%m-%dT%H:%M:%SZ} {mark}{describe(ev, full=True)}"


__all__ = ["MARKERS", "PRIORITY_RANK", "alarm_log_line", "colour", "describe", "marker", "param_label", "rank"]
