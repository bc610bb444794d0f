"""The nurse's commands: each checks its input against the record and builds domain events.

Owns: one function per command (checklist, baseline, the infusion start / rate change /
pause / resume / stop with the dose arithmetic and the pre-infusion gate, a fixed-dose
device, phase change, observation, intervention, manual vitals, note, amendment, discharge,
close, training log), the one evaluation of the start gate (``start_check``: the vitals gate
and the template's own checks), the resume gate, and ``completion_due`` (the tick's
``infusion_completed`` when the ordered dose is in).
A command reads the recorder's state and the view's latest values and returns the events to
record, or raises ``CommandRefused`` (``GateBlocked``, ``DischargeBlocked``) with the reason.
It stores nothing and never calls the alarm engine: the facade hands the events to
``Recorder.record_all``, which stores them and routes each to the engine.
The clinical rules live in ``chairside.domain`` (dose, completion, start_checks, esketamine,
recovery_criteria, scales, discharge).
Must not import: textual, chairside.ui, chairside.transport.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from chairside import __version__

from chairside.domain.completion import due, order_from_dose
from chairside.domain.discharge import DischargeCheck, discharge_check
from chairside.domain.dose import DoseError, check_dose, check_weight, plan_from_dose, rate_from_order
from chairside.domain.esketamine import DeviceRefused, check_device, is_device_template
from chairside.domain.events import (
    ALARM_EVENT_KINDS,
    Amendment,
    BaselineRecorded,
    ChecklistCompleted,
    DeviceGiven,
    DischargeAssessed,
    Event,
    InfusionCompleted,
    InfusionPaused,
    InfusionRateChanged,
    InfusionResumed,
    InfusionStarted,
    InfusionStopped,
    InterventionGiven,
    MonitoringStopped,
    NoteAdded,
    ObservationRecorded,
    PhaseChanged,
    SessionClosed,
    SessionOpened,
    SessionResumed,
    TrainingEvent,
)
from chairside.domain.protocol import ProtocolTemplate
from chairside.domain.readings import Reading
from chairside.domain.scales import ScaleError, check_observation
from chairside.domain.start_checks import (
    Finding,
    Verdict,
    bag_findings,
    latest_bp_after,
    resume_findings,
    start_findings,
    verdict,
)
from chairside.service.model import CommandRefused, DischargeBlocked, GateBlocked, TimelineItem
from chairside.service.recorder import Recorder
from chairside.service.view import describe

MACHINE_KINDS = ALARM_EVENT_KINDS | {"device_status", "readings_recorded", "training"}
PHASES = ("pre_infusion", "infusion", "recovery", "discharged")


def need_session(rec: Recorder) -> None:
    if rec.state.session is None:
        raise CommandRefused("no session is open")
    if rec.state.closed:
        raise CommandRefused("the session is closed")


def author(initials: str) -> str:
    a = (initials or "").strip()
    if not a:
        raise CommandRefused("staff initials are required")
    return a


def _open(rec: Recorder, initials: str) -> str:
    need_session(rec)
    return author(initials)


def is_discharged(rec: Recorder) -> bool:
    d = rec.state.discharge
    return rec.state.phase == "discharged" or bool(d is not None and d.discharged)


# ---------------------------------------------------------------------- the session
WEIGHT_SOURCES = ("measured", "stated", "chart")


def session_opened(rec: Recorder, now: datetime, *, patient_id: str, weight_kg: float,
                   staff: Iterable[str], weight_source: str, weight_confirmed_by: str | None,
                   session_dir: Path, path: Path | str | None, training: bool, simulated: bool,
                   sim_seed: int | None, scenario: str | None) -> tuple[SessionOpened, Path]:
    """The first event of a new record, and the session file's path."""
    crew = tuple(s.strip() for s in staff if s and s.strip())
    if not crew:
        raise CommandRefused("staff initials are required")
    if not (patient_id or "").strip():
        raise CommandRefused("a pseudonymous patient ID is required")
    try:
        weight = check_weight(weight_kg)
    except DoseError as exc:
        raise CommandRefused(str(exc)) from None
    if weight_source not in WEIGHT_SOURCES:
        raise CommandRefused("weight source must be measured, stated or chart")
    session_id = uuid.uuid4().hex[:12]
    target = Path(path) if path else session_dir / (
        f"{now:%Y%m%d-%H%M%S}-{_safe(patient_id)}-{session_id}.chairside")
    opened = SessionOpened(
        t=now, mono=0.0, author=crew[0], session_id=session_id,
        patient_id=patient_id.strip(), weight_kg=weight, weight_source=weight_source,  # type: ignore[arg-type]
        weight_confirmed_by=(weight_confirmed_by or "").strip() or None,
        protocol=rec.protocol_name, staff=crew, app_version=str(__version__),
        simulated=simulated, sim_seed=sim_seed, scenario=scenario, training=training)
    return opened, target


def replay_opened(rec: Recorder, now: datetime, opened: SessionOpened) -> SessionOpened:
    """A replay's first event: the recorded one with a new session id, now, this template."""
    return opened.model_copy(update={
        "seq": -1, "t": now, "mono": 0.0, "session_id": uuid.uuid4().hex[:12],
        "protocol": rec.protocol_name, "app_version": str(__version__)})


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text.strip())[:32] or "patient"


# ---------------------------------------------------------------------- before the infusion
def checklist(rec: Recorder, now: datetime, *, author: str, contraindications: Mapping[str, bool],
              hours_fasted: float | None, escort_confirmed: bool, consent: bool,
              notes: str = "", medications_reviewed: bool | None = None, allergies: str | None = None,
              concomitant: Mapping[str, bool] | None = None) -> list[Event]:
    a = _open(rec, author)
    known = {i.key for i in rec.view.data.checklist}
    unknown = set(contraindications) - known
    if unknown:
        raise CommandRefused(f"unknown checklist item(s): {', '.join(sorted(unknown))}")
    missing = known - set(contraindications)
    if missing:
        raise CommandRefused("answer every checklist item (missing: " + ", ".join(sorted(missing)) + ")")
    if hours_fasted is not None and (not math.isfinite(hours_fasted) or hours_fasted < 0):
        raise CommandRefused("hours fasted must be a number >= 0")
    classes = set(rec.template.gate.concomitant_classes)
    strange = set(concomitant or {}) - classes
    if strange:
        raise CommandRefused(f"unknown concomitant-drug class(es): {', '.join(sorted(strange))}"
                             f" (the template asks: {', '.join(sorted(classes)) or 'none'})")
    return [ChecklistCompleted(
        t=now, author=a, contraindications={k: bool(v) for k, v in contraindications.items()},
        hours_fasted=hours_fasted, escort_confirmed=bool(escort_confirmed), consent=bool(consent),
        notes=notes.strip(), medications_reviewed=medications_reviewed,
        allergies=(allergies.strip() or None) if allergies is not None else None,
        concomitant={k: bool(v) for k, v in (concomitant or {}).items()})]


def baseline(rec: Recorder, now: datetime, *, author: str, sbp: float | None = None,
             dbp: float | None = None, hr: float | None = None, spo2: float | None = None,
             moaas: int | None = None, cadss: int | None = None) -> list[Event]:
    """The baseline; values not given are taken from the latest readings."""
    a = _open(rec, author)
    latest = rec.view.latest_value
    from_device = sbp is None
    ev = BaselineRecorded(
        t=now, author=a,
        sbp=sbp if sbp is not None else latest("nibp_sys"),
        dbp=dbp if dbp is not None else latest("nibp_dia"),
        map=latest("nibp_map") if from_device else None,
        hr=hr if hr is not None else latest("hr"),
        spo2=spo2 if spo2 is not None else latest("spo2"),
        moaas=moaas, cadss=cadss)
    if ev.sbp is None or ev.dbp is None:
        raise CommandRefused("no blood pressure to use as the baseline: take an NIBP "
                             "reading or enter the values")
    return [ev]


def gate_check(rec: Recorder) -> tuple[bool, tuple[str, ...]]:
    """(blocks_start, reasons) of the pre-infusion gate on the latest BP / SpO2 / HR."""
    latest = rec.view.latest_value
    sbp, dbp = latest("nibp_sys"), latest("nibp_dia")
    b = rec.state.baseline
    if sbp is None and b is not None:
        sbp, dbp = b.sbp, b.dbp
    spo2, hr = latest("spo2"), latest("hr")
    res = rec.engine.gate(sbp, dbp, spo2, hr)
    blocks = bool(res.blocks_start)
    reasons = tuple(res.reasons)
    if blocks:  # name what blocks (the advisory tiers below it add nothing): the gate's own evaluation
        reasons = res.blocking or reasons
    if sbp is None or dbp is None:
        blocks = True
        reasons += ("no blood pressure measured before the start",)
    return blocks, reasons


def start_check(rec: Recorder) -> Verdict:
    """The whole start gate, evaluated once: the vitals gate (``gate_check``: a blocking tier
    is a prescriber override, lower tiers advisories) and the template's own checks
    (``chairside.domain.start_checks``). Its ``line()`` is the start-confirm line."""
    blocks, reasons = gate_check(rec)
    vit = [Finding("bp_gate", "override" if blocks else "advisory", r) for r in reasons]
    return verdict([*vit, *start_findings(rec.template, rec.state.checklist, tuple(rec.view.nibp_log))])


def resume_check(rec: Recorder) -> Verdict:
    """The resume gate: a BP taken after the pause, and the vitals gate's verdict on it."""
    inf = rec.state.infusion
    log = tuple(rec.view.nibp_log)
    reasons: tuple[str, ...] = ()
    blocks = False
    bp = latest_bp_after(log, inf.paused_mono) if inf.paused_mono is not None else None
    if bp is not None:
        latest = rec.view.latest_value
        res = rec.engine.gate(bp[0], bp[1], latest("spo2"), latest("hr"))
        blocks, reasons = bool(res.blocks_start), tuple(res.reasons)
    return verdict(resume_findings(inf, log, reasons, blocks))


def completion_due(rec: Recorder, now: datetime) -> list[Event]:
    """``infusion_completed`` (and the move to recovery) when the clock has passed the
    computed end of a running infusion: the ordered dose is in by the record's own rate/pause
    arithmetic. Nothing for a replay (its completion comes from the recording)."""
    st = rec.state
    if st.session is None or st.closed or rec.replaying:
        return []
    c = due(st.infusion, rec.mono())
    if c is None:
        return []
    w = st.weight_kg
    out: list[Event] = [InfusionCompleted(t=now, author="SYS", at_t=c.at_t or now, at_mono=c.at_mono,
                                          dose_mg=c.dose_mg, dose_mg_kg=c.dose_mg / w if w else None,
                                          volume_ml=c.volume_ml)]
    if st.phase == "infusion":
        out.append(PhaseChanged(t=now, author="SYS", from_phase="infusion", to_phase="recovery",
                                reason="the ordered dose is in"))
    return out


def dose_numbers(template: ProtocolTemplate, weight: float, *, dose: float | None = None,
                 rate_mg_kg_h: float | None = None, duration_min: float | None = None,
                 concentration: float) -> dict[str, float]:
    """rate mg/kg/h, mg/h, mL/h and the order's total mg (``chairside.domain.dose``)."""
    try:
        if rate_mg_kg_h is None:
            if dose is None or duration_min is None:
                raise CommandRefused("give a dose and a duration, or a rate")
            plan = plan_from_dose(weight, dose, duration_min, concentration)
            r, total = plan.rate, plan.total_mg
        else:
            r = rate_from_order(weight, rate_mg_kg_h, concentration)
            if r.mg_kg_h <= 0:
                raise CommandRefused("the rate must be > 0 mg/kg/h")
            total = r.mg_h * (duration_min or 0.0) / 60.0
    except DoseError as exc:
        raise CommandRefused(str(exc)) from None
    return {"rate_mg_kg_h": r.mg_kg_h, "rate_ml_h": r.ml_h, "rate_mg_h": r.mg_h, "total_mg": total}


# ---------------------------------------------------------------------- the infusion
def start_infusion(rec: Recorder, now: datetime, *, author: str, concentration_mg_ml: float,
                   dose_mg_kg: float | None = None, rate_mg_kg_h: float | None = None,
                   duration_min: float | None = None, lot: str = "", diluent: str = "",
                   bag_volume_ml: float | None = None, confirmed_by: str | None = None,
                   gate_override_reason: str = "", above_usual_reason: str = "",
                   reason: str = "", advisory_reason: str = "", bag_reason: str = "") -> list[Event]:
    """The start: the gate (``start_check``: hard blocks refuse, a prescriber override or an
    advisory needs its reason), the dose against the template, the bag (plausible
    concentration; holds the ordered dose, else a reason), the order's dose in mg and its
    volume to be infused (what completes the infusion)."""
    a = _open(rec, author)
    st = rec.state
    if is_device_template(rec.template):
        d = rec.template.dosing
        raise CommandRefused(f"{d.drug} is given as {d.device_mg:g} mg devices: record each device "
                             "(no mg/kg or mL/h)")
    if st.infusion.status != "not_started":
        raise CommandRefused(f"the infusion is already {st.infusion.status.replace('_', ' ')}")
    if st.checklist is None:
        raise CommandRefused("complete the pre-infusion checklist first")
    gate = start_check(rec)
    if gate.blocks:
        raise CommandRefused("start refused: " + "; ".join(f.text for f in gate.blocks))
    override = gate_override_reason.strip()
    if gate.overrides and not override:
        raise GateBlocked(tuple(f.text for f in (*gate.overrides, *gate.advisories)))
    adv_reason = (advisory_reason or gate_override_reason).strip()
    if gate.advisories and not adv_reason:
        raise GateBlocked(tuple(f.text for f in gate.advisories))
    blocks = bool(gate.overrides)
    dosing = rec.template.dosing
    if dose_mg_kg is None and rate_mg_kg_h is None:
        if dosing.basis == "mg_per_kg":
            dose_mg_kg = dosing.dose
        elif dosing.basis == "mg_per_kg_h":
            rate_mg_kg_h = dosing.dose
    if duration_min is None:
        duration_min = dosing.duration_min
    order = dose_mg_kg if dose_mg_kg is not None else rate_mg_kg_h
    if order is not None and dosing.basis != "mg_fixed":
        try:
            check_dose(rec.template, order, reason=above_usual_reason)
        except DoseError as exc:
            raise CommandRefused(str(exc)) from None
    nums = dose_numbers(rec.template, st.weight_kg or 0.0, dose=dose_mg_kg, rate_mg_kg_h=rate_mg_kg_h,
                        duration_min=duration_min, concentration=concentration_mg_ml)
    order_mg, vtbi = order_from_dose(weight_kg=st.weight_kg, concentration_mg_ml=concentration_mg_ml,
                                     dose_mg_kg=dose_mg_kg, rate_mg_kg_h=rate_mg_kg_h, duration_min=duration_min)
    bag = bag_findings(rec.template, concentration_mg_ml=float(concentration_mg_ml), bag_ml=bag_volume_ml,
                       order_mg=order_mg)
    bag_block = [f.text for f in bag if f.level == "block"]
    if bag_block:
        raise CommandRefused("; ".join(bag_block))
    bag_adv = tuple(f.text for f in bag if f.level != "block")
    bag_why = (bag_reason or gate_override_reason).strip()
    if bag_adv and not bag_why:
        raise GateBlocked(bag_adv)
    confirmer = (confirmed_by or "").strip() or (st.session.weight_confirmed_by if st.session else None)
    if dosing.confirm_weight and not confirmer:
        raise CommandRefused("a second person must confirm the weight (confirmed by)")
    out: list[Event] = [InfusionStarted(
        t=now, author=a, drug=dosing.drug, concentration_mg_ml=float(concentration_mg_ml),
        rate_mg_kg_h=nums["rate_mg_kg_h"], rate_ml_h=nums["rate_ml_h"], reason=reason.strip(),
        route=dosing.route, dose_mg_kg=dose_mg_kg, duration_min=duration_min, lot=lot.strip(),
        diluent=diluent.strip(), bag_volume_ml=bag_volume_ml,
        gate_override_reason=override if blocks else "",
        above_usual_reason=above_usual_reason.strip(), confirmed_by=confirmer,
        dose_mg=order_mg, volume_to_infuse_ml=vtbi, advisories=tuple(f.text for f in gate.advisories),
        advisory_reason=adv_reason if gate.advisories else "",
        bag_findings=bag_adv, bag_reason=bag_why if bag_adv else "")]
    if st.phase == "pre_infusion":
        out.append(PhaseChanged(t=now, author=a, from_phase="pre_infusion",
                                to_phase="infusion", reason="infusion started"))
    return out


def change_rate(rec: Recorder, now: datetime, *, author: str, rate_mg_kg_h: float, reason: str,
                above_usual_reason: str = "") -> list[Event]:
    a = _open(rec, author)
    inf = rec.state.infusion
    if inf.status not in ("running", "paused"):
        raise CommandRefused("no infusion to change")
    if not reason.strip():
        raise CommandRefused("a rate change needs a reason")
    conc = inf.concentration_mg_ml
    if not conc or conc <= 0:
        raise CommandRefused("the bag concentration is unknown")
    if rec.template.dosing.basis == "mg_per_kg_h":
        try:
            check_dose(rec.template, rate_mg_kg_h, reason=above_usual_reason)
        except DoseError as exc:
            raise CommandRefused(str(exc)) from None
    nums = dose_numbers(rec.template, rec.state.weight_kg or 0.0, rate_mg_kg_h=rate_mg_kg_h,
                        concentration=conc)
    return [InfusionRateChanged(
        t=now, author=a, drug=inf.drug or rec.template.dosing.drug, concentration_mg_ml=conc,
        rate_mg_kg_h=nums["rate_mg_kg_h"], rate_ml_h=nums["rate_ml_h"], reason=reason.strip(),
        old_rate_mg_kg_h=inf.rate_mg_kg_h, old_rate_ml_h=inf.rate_ml_h,
        above_usual_reason=above_usual_reason.strip())]


def pause_infusion(rec: Recorder, now: datetime, *, author: str, reason: str) -> list[Event]:
    a = _open(rec, author)
    if rec.state.infusion.status != "running":
        raise CommandRefused("the infusion is not running")
    if not reason.strip():
        raise CommandRefused("a pause needs a reason")
    return [InfusionPaused(t=now, author=a, reason=reason.strip())]


def resume_infusion(rec: Recorder, now: datetime, *, author: str, reason: str = "",
                    prescriber: str = "") -> list[Event]:
    """Resume after a pause: refused without a BP taken after the pause; when the gate names
    anything on that BP, it needs a reason and the prescriber's initials."""
    a = _open(rec, author)
    inf = rec.state.infusion
    if inf.status != "paused":
        raise CommandRefused("the infusion is not paused")
    gate = resume_check(rec)
    if gate.blocks:
        raise CommandRefused("resume refused: " + "; ".join(f.text for f in gate.blocks))
    findings = tuple(f.text for f in gate.overrides)
    if findings and not (reason.strip() and prescriber.strip()):
        raise GateBlocked(findings + ("resuming needs a reason and the prescriber's initials",), "resume")
    return [InfusionResumed(t=now, author=a, drug=inf.drug or rec.template.dosing.drug,
                            concentration_mg_ml=inf.concentration_mg_ml or 0.0,
                            rate_mg_kg_h=inf.rate_mg_kg_h, rate_ml_h=inf.rate_ml_h, reason=reason.strip(),
                            gate_findings=findings, prescriber=prescriber.strip() if findings else "")]


def stop_infusion(rec: Recorder, now: datetime, *, author: str, reason: str) -> list[Event]:
    """Stop the pump; after ``infusion_completed`` it is the nurse's confirmation that the pump
    stopped (the totals ended at completion)."""
    a = _open(rec, author)
    inf = rec.state.infusion
    if inf.completed and not inf.pump_stop_confirmed:
        return [InfusionStopped(t=now, author=a,
                                reason=reason.strip() or "pump stopped (confirmed after the dose was in)")]
    if rec.state.infusion.status not in ("running", "paused"):
        raise CommandRefused("no infusion to stop")
    if not reason.strip():
        raise CommandRefused("a stop needs a reason")
    out: list[Event] = [InfusionStopped(t=now, author=a, reason=reason.strip())]
    if rec.state.phase == "infusion":
        out.append(PhaseChanged(t=now, author=a, from_phase="infusion", to_phase="recovery",
                                reason="infusion stopped"))
    return out


def give_device(rec: Recorder, now: datetime, *, author: str, lot: str = "", planned_mg: float | None = None,
                reason: str = "", gate_override_reason: str = "") -> list[Event]:
    """One fixed-dose device (esketamine nasal spray): refused above the template's maximum
    in mg and before the wait between devices; the first device passes the start gate (a BP
    before it, the template's checks) or records a reason."""
    a = _open(rec, author)
    tpl = rec.template
    if not is_device_template(tpl):
        raise CommandRefused(f"the {tpl.name} template is not dosed by devices")
    st = rec.state
    try:
        chk = check_device(tpl, st.device_doses, rec.mono(), planned_mg=planned_mg, reason=reason)
    except DeviceRefused as exc:
        raise CommandRefused(str(exc)) from None
    gate = None
    why = (gate_override_reason or reason).strip()
    if st.device_doses.count == 0:
        if st.checklist is None:
            raise CommandRefused("complete the pre-dose checklist first")
        gate = start_check(rec)
        if gate.blocks:
            raise CommandRefused("dose refused: " + "; ".join(f.text for f in gate.blocks))
        if (gate.overrides or gate.advisories) and not why:
            raise GateBlocked(tuple(f.text for f in (*gate.overrides, *gate.advisories)))
    out: list[Event] = [DeviceGiven(
        t=now, author=a, drug=tpl.dosing.drug, route=tpl.dosing.route, device_mg=chk.device_mg, n=chk.n,
        total_mg=chk.total_mg, planned_mg=chk.planned_mg, lot=lot.strip(),
        gate_override_reason=why if gate is not None and gate.overrides else "",
        advisories=tuple(f.text for f in gate.advisories) if gate is not None else (),
        advisory_reason=why if gate is not None and gate.advisories else "", reason=reason.strip())]
    phase = st.phase
    if phase == "pre_infusion":
        out.append(PhaseChanged(t=now, author=a, from_phase="pre_infusion", to_phase="infusion",
                                reason="first device given"))
        phase = "infusion"
    if chk.completes_plan and phase == "infusion":
        out.append(PhaseChanged(t=now, author=a, from_phase="infusion", to_phase="recovery",
                                reason=f"{chk.total_mg:g} mg given: observation"))
    return out


def change_phase(rec: Recorder, now: datetime, *, author: str, to_phase: str, reason: str) -> list[Event]:
    a = _open(rec, author)
    if to_phase not in PHASES:
        raise CommandRefused(f"unknown phase {to_phase!r}")
    if to_phase == rec.state.phase:
        raise CommandRefused(f"already in {to_phase}")
    if not reason.strip():
        raise CommandRefused("a phase change needs a reason")
    return [PhaseChanged(t=now, author=a, from_phase=rec.state.phase, to_phase=to_phase,  # type: ignore[arg-type]
                         reason=reason.strip())]


# ---------------------------------------------------------------------- observations and notes
def observation(rec: Recorder, now: datetime, *, author: str, scale: str, score: float | None = None,
                items: Mapping[str, Any] | None = None, text: str = "") -> list[Event]:
    """An observation, validated against its scale (the engine sees it through the recorder:
    combined rules such as MOAA/S with SpO2, crisis symptoms with SBP)."""
    a = _open(rec, author)
    if scale == "other":
        if not text.strip():
            raise CommandRefused("describe the observation")
        value = score
    else:
        try:
            value = check_observation(scale, score, items)
        except ScaleError as exc:
            raise CommandRefused(str(exc)) from None
    return [ObservationRecorded(t=now, author=a, scale=scale, score=value, items=dict(items or {}),
                                text=text.strip())]


def intervention(rec: Recorder, now: datetime, *, author: str, drug: str, dose: float | None = None,
                 dose_unit: str = "", route: str = "", lot: str = "", given_by: str = "",
                 ordered_by: str = "", reason: str = "", response: str = "") -> list[Event]:
    a = _open(rec, author)
    if not drug.strip():
        raise CommandRefused("choose the intervention")
    if dose is not None and (not math.isfinite(dose) or dose <= 0):
        raise CommandRefused("the dose must be a number > 0")
    return [InterventionGiven(
        t=now, author=a, drug=drug.strip(), dose=dose, dose_unit=dose_unit.strip(), route=route.strip(),
        lot=lot.strip(), given_by=(given_by or a).strip(), ordered_by=ordered_by.strip(),
        reason=reason.strip(), response=response.strip())]


def manual_vitals(rec: Recorder, now: datetime, *, author: str, sbp: float | None = None,
                  dbp: float | None = None, hr: float | None = None, spo2: float | None = None,
                  how: str = "") -> tuple[list[Reading], list[Event]]:
    """Vitals measured by hand or by another device: readings with ``origin="manual"`` (fed
    like the monitor's, so a manual BP is the BP check the schedule asks for) and a note."""
    a = _open(rec, author)
    vals = {"sbp": sbp, "dbp": dbp, "hr": hr, "spo2": spo2}
    for name, v in vals.items():
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise CommandRefused(f"{name.upper()} must be a number > 0")
    if (sbp is None) != (dbp is None):
        raise CommandRefused("give both the systolic and the diastolic pressure")
    if sbp is not None and dbp is not None and sbp <= dbp:
        raise CommandRefused(f"systolic {sbp:g} must be above diastolic {dbp:g}")
    if spo2 is not None and spo2 > 100:
        raise CommandRefused(f"SpO2 {spo2:g} % is above 100 %")
    if all(v is None for v in vals.values()):
        raise CommandRefused("enter at least one value")

    def manual(param: str, value: float, unit: str) -> Reading:
        return Reading(param=param, value=float(value), unit=unit, receive_time=now, source="manual",
                       origin="manual")
    readings = []
    if sbp is not None and dbp is not None:
        readings += [manual("nibp_sys", sbp, "mmHg"), manual("nibp_dia", dbp, "mmHg"),
                     manual("nibp_map", round(dbp + (sbp - dbp) / 3), "mmHg")]
    if hr is not None:
        readings.append(manual("pr", hr, "bpm"))
    if spo2 is not None:
        readings.append(manual("spo2", spo2, "%"))
    parts = ([f"BP {sbp:g}/{dbp:g} mmHg"] if sbp is not None else []) + \
        ([f"pulse {hr:g}/min"] if hr is not None else []) + ([f"SpO2 {spo2:g} %"] if spo2 is not None else [])
    text = f"manual vitals ({how.strip() or 'measured by hand'}): " + ", ".join(parts)
    return readings, [NoteAdded(t=now, author=a, text=text)]


def note(rec: Recorder, now: datetime, *, author: str, text: str) -> list[Event]:
    a = _open(rec, author)
    if not text.strip():
        raise CommandRefused("the note is empty")
    return [NoteAdded(t=now, author=a, text=text.strip())]


def amend(rec: Recorder, now: datetime, *, author: str, target_seq: int, reason: str,
          replacement: Mapping[str, Any] | None = None) -> list[Event]:
    """An amendment of an earlier clinical entry (the original stays)."""
    a = _open(rec, author)
    target = rec.state.events.get(target_seq)
    if target is None:
        raise CommandRefused(f"no entry #{target_seq} to amend")
    if target.kind in MACHINE_KINDS:
        raise CommandRefused(f"entry #{target_seq} ({target.kind}) is a machine record and "
                             "cannot be amended; add a note instead")
    if not reason.strip():
        raise CommandRefused("an amendment needs a reason")
    return [Amendment(t=now, author=a, target_seq=target_seq, reason=reason.strip(),
                      replacement=dict(replacement or {}))]


def amendable(rec: Recorder) -> list[TimelineItem]:
    """Clinical entries that may be amended (newest first)."""
    state = rec.state
    out = []
    for seq in sorted(state.events, reverse=True):
        ev = state.events[seq]
        if ev.kind in MACHINE_KINDS or ev.kind == "amendment":
            continue
        text, _ = describe(state.current(seq))
        out.append(TimelineItem(seq=seq, t=ev.t, kind=ev.kind, author=ev.author, text=text))
    return out


# ---------------------------------------------------------------------- discharge and close
def check_discharge(rec: Recorder, now: datetime, *, aldrete: Mapping[str, int] | None = None,
                    padss: Mapping[str, int] | None = None, escort_present: bool = False,
                    instructions_given: bool = False) -> DischargeCheck:
    latest = {p: rec.view.latest_value(p) for p in ("nibp_sys", "nibp_dia", "hr", "spo2")}
    return discharge_check(rec.template, rec.state, now, latest, aldrete=aldrete, padss=padss,
                           escort_present=escort_present, instructions_given=instructions_given,
                           nibp_log=tuple(rec.view.nibp_log))


def assess_discharge(rec: Recorder, now: datetime, *, author: str, aldrete: Mapping[str, int] | None = None,
                     padss: Mapping[str, int] | None = None, escort_present: bool = False,
                     instructions_given: bool = False, override_reason: str = "",
                     discharge: bool = True, override_by: str = "") -> list[Event]:
    """The discharge assessment; with ``discharge``, the discharge. ``DischargeBlocked`` when
    the criteria are not met and no override reason with the prescriber's initials
    (``override_by``) is given."""
    a = _open(rec, author)
    if is_discharged(rec):
        raise CommandRefused("the patient is already discharged")
    chk = check_discharge(rec, now, aldrete=aldrete, padss=padss, escort_present=escort_present,
                          instructions_given=instructions_given)
    override = override_reason.strip()
    by = override_by.strip()
    if discharge and chk.blocked_reasons and not (override and by):
        missing = "the prescriber's initials" if override else "a reason and the prescriber's initials"
        raise DischargeBlocked(chk.blocked_reasons + (f"an override needs {missing}",))
    do = discharge and (chk.criteria_met or bool(override))
    out: list[Event] = [DischargeAssessed(
        t=now, author=a, aldrete=dict(aldrete or {}), aldrete_total=chk.aldrete_total,
        padss=dict(padss or {}), padss_total=chk.padss_total,
        vitals_within_20pct=chk.vitals_within, minutes_since_end=chk.minutes_since_end,
        min_recovery_met=chk.min_recovery_met, escort_present=escort_present,
        instructions_given=instructions_given, criteria_met=chk.criteria_met,
        blocked_reasons=chk.blocked_reasons,
        override_reason=override if chk.blocked_reasons else "",
        override_by=by if chk.blocked_reasons else "", discharged=do)]
    if do and rec.state.phase != "discharged":
        out.append(PhaseChanged(t=now, author=a, from_phase=rec.state.phase,  # type: ignore[arg-type]
                                to_phase="discharged", reason="discharged"))
    return out


def resumed(last: Event, now: datetime, *, author: str, reason: str = "") -> SessionResumed:
    """The gap a resume leaves: the last event before it and the seconds lost."""
    return SessionResumed(t=now, author=(author or "").strip() or "SYS", last_seq=last.seq, last_kind=last.kind,
                          last_t=last.t, gap_s=max(0.0, (now - last.t).total_seconds()), reason=reason.strip())


def stop_monitoring(rec: Recorder, now: datetime, *, author: str, reason: str) -> list[Event]:
    a = _open(rec, author)
    if not reason.strip():
        raise CommandRefused("say why monitoring stops")
    return [MonitoringStopped(t=now, author=a, reason=reason.strip())]


def close(rec: Recorder, now: datetime, *, author: str, reason: str = "") -> list[Event]:
    a = _open(rec, author)
    return [SessionClosed(t=now, author=a, reason=reason.strip())]


def training(rec: Recorder, now: datetime, *, source: str, action: str, detail: str = "",
             sim_t: float | None = None, args: Mapping[str, Any] | None = None,
             author: str = "SIM") -> list[Event]:
    """One entry of a training run's log (``chairside.training``)."""
    need_session(rec)
    return [TrainingEvent(t=now, author=author, source=source, action=action,  # type: ignore[arg-type]
                          detail=detail, sim_t=sim_t, args=dict(args or {}))]
