"""SPRAVATO REMS patient monitoring form fields, derived from an esketamine session record.

Owns: ``fields(events, template=None) -> dict`` (pure), ``is_esketamine(events, template)``,
and ``export(path, out) -> Path`` for ``chairside export FILE --format rems-json``.
Must not import: textual, serial, chairside.transport, chairside.service, chairside.ui.

Numbers (28 mg per device, 56/84 mg, 140/90, about 40 min, 120 min, CADSS > 4, MOAA/S) come
from ``data/reports/rems.toml`` (with source tags) unless the protocol template defines them.
Every derived field carries the rule used and the event sequence numbers it rests on, so the
clinician signing the form can check it. Amendments are applied (the corrected value is used).

Rules (documented, also written into the output under ``rules``):

- dose: esketamine administrations are ``intervention_given`` events (or an
  ``infusion_started``) whose drug names esketamine/Spravato; mg = sum of their doses
  (a dose without mg counts one device, 28 mg). 56 or 84 mg tick the box, anything else "other".
- first device: the first such administration (else the change to the dosing phase).
- BP before dosing: the last NIBP reading before the first device (else the baseline event).
- BP at about 40 min: the NIBP reading nearest first device + 40 min, within the window.
- BP before completion: the last NIBP reading at or before the end of monitoring.
- end of monitoring: the discharge (``discharge_assessed`` with ``discharged``), else the
  change to the discharged phase, else the session close, else the last event.
- total minutes monitored: first device to end of monitoring, whole minutes (rounded down).
- ready to leave: first discharge assessment with the criteria met, or blocked only by the
  minimum observation time; minutes from the first device.
- vitals acceptable before administration: BP before dosing below the label guide (140/90).
- vitals acceptable before completion: BP before completion below the label guide, or within
  20% of the BP before dosing (systolic and diastolic).
- sedation: any MOAA/S after the first device at or below the configured score.
- dissociation: any CADSS total after the first device above 4, or a ``dissociation``
  observation with a positive score.
- respiratory depression: a ``respiratory_depression`` observation (positive score or
  ``present`` item), an intervention of respiratory support (oxygen, airway...), or a note or
  observation text that says "respiratory depression" (not preceded by "no"/"without").
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Sequence

from chairside.domain.events import (
    BaselineRecorded,
    ChecklistCompleted,
    DeviceGiven,
    DischargeAssessed,
    InfusionStarted,
    InterventionGiven,
    NoteAdded,
    ObservationRecorded,
    PhaseChanged,
)
from chairside.domain.protocol import ProtocolTemplate
from chairside.domain.state import SessionState
from chairside.store.private import write_private_text
from chairside.store.session_file import read_session
from chairside.reports.common import (
    BP,
    DATA,
    bp_readings,
    current,
    load_template,
    numbered,
    opened,
    record_state,
    scale_of,
    session_end,
)

ESKETAMINE_WORDS = ("esketamine", "spravato")


def _config() -> dict[str, Any]:
    return tomllib.loads((DATA / "reports" / "rems.toml").read_text(encoding="utf-8"))


def _is_esk_drug(name: str) -> bool:
    n = (name or "").lower()
    return any(w in n for w in ESKETAMINE_WORDS)


def is_esketamine(events: Sequence[Any], template: ProtocolTemplate | None = None,
                  state: SessionState | None = None) -> bool:
    """An esketamine session: its protocol (name or template drug) or an administration says so."""
    op = opened(state if state is not None else record_state(events))
    names = [op.protocol if op else ""]
    if template is not None:
        names += [template.name, template.drug, template.title]
    if any(_is_esk_drug(n) for n in names):
        return True
    if template is not None and template.rems is not None:  # a template with a REMS section
        return True
    return any(isinstance(e, (InterventionGiven, InfusionStarted)) and _is_esk_drug(e.drug) for e in events)


def _eff_events(events: Sequence[Any], state: SessionState) -> list[tuple[int, Any]]:
    return [(s, current(state, s, e)) for s, e in numbered(events)]


def _bp_dict(bp, ref: datetime | None) -> dict[str, Any] | None:
    if bp is None:
        return None
    d = {"sys": bp.sys, "dia": bp.dia, "map": bp.map, "time": bp.t.isoformat(), "seq": bp.seq,
         "origin": bp.origin}
    if ref is not None:
        d["minutes_after_first_device"] = round((bp.t - ref).total_seconds() / 60.0, 1)
    return d


_NEG = re.compile(r"\b(no|without|denies|not)\b[\w\s,/-]{0,20}$")


def _mentions(text: str, phrase: str) -> bool:
    t = (text or "").lower()
    start = 0
    while True:
        i = t.find(phrase, start)
        if i < 0:
            return False
        if not _NEG.search(t[max(0, i - 30):i]):
            return True
        start = i + 1


def fields(events: Sequence[Any], template: ProtocolTemplate | None = None) -> dict[str, Any]:
    """The REMS form fields filled from the record (pure: events + template -> dict).
    The protocol template's ``[rems]`` numbers win over ``data/reports/rems.toml``."""
    cfg = _config()
    state = record_state(events)
    op = opened(state)
    if template is None and op is not None:
        template = load_template(op.protocol)
    ev = _eff_events(events, state)
    rems = template.rems if template is not None else None
    mg_per_device = float(rems.mg_per_device if rems else cfg["dose"]["mg_per_device"])
    at_min = float(rems.bp_at_min if rems else cfg["bp"]["at_min"])
    window = float(cfg["bp"]["at_min_window"])
    guide_sys = float(rems.bp_guide_sys if rems else cfg["bp"]["label_guide_sys"])
    guide_dia = float(rems.bp_guide_dia if rems else cfg["bp"]["label_guide_dia"])
    pct = float(cfg["bp"]["within_pct_of_baseline"])
    min_minutes = float(rems.min_minutes if rems else template.min_recovery_min if template is not None
                        else cfg["monitoring"]["min_minutes"])
    sed_max = float(cfg["effects"]["sedation_moaas_at_most"])
    cadss_above = float(cfg["effects"]["dissociation_cadss_above"])
    cadss_tag = cfg["effects"]["dissociation_cadss_above_source"]
    cadss = scale_of("cadss")
    for flag in cadss.flags if cadss is not None else ():  # the scales file wins when it has the flag
        if flag.op == "gt" and flag.value is not None:
            cadss_above, cadss_tag = float(flag.value), flag.source
            break

    def tag(section: str, key: str) -> str:
        return str(cfg.get(section, {}).get(f"{key}_source", ""))
    resp_words = [w.lower() for w in cfg["effects"]["respiratory_support"]]

    # -- administrations
    admins = [(s, e) for s, e in ev
              if (isinstance(e, (InterventionGiven, InfusionStarted, DeviceGiven))) and _is_esk_drug(e.drug)]
    dose_mg = 0.0
    devices = 0
    lots: list[str] = []
    for s, e in admins:
        if isinstance(e, DeviceGiven):  # the record's own device entries (issue 14 item 3)
            dose_mg += e.device_mg
            devices += 1
        elif isinstance(e, InterventionGiven) and e.dose is not None and e.dose_unit.strip().lower() == "mg":
            dose_mg += e.dose
            devices += int(round(e.dose / mg_per_device)) if mg_per_device else 1
        elif isinstance(e, InterventionGiven) and e.dose is not None and e.dose_unit.strip().lower() in ("device", "devices"):
            dose_mg += e.dose * mg_per_device
            devices += int(e.dose)
        else:
            dose_mg += mg_per_device
            devices += 1
        if e.lot and e.lot not in lots:
            lots.append(e.lot)
    first_device = admins[0][1].t if admins else None
    first_device_seq = admins[0][0] if admins else None
    if first_device is None:
        for s, e in ev:
            if isinstance(e, PhaseChanged) and e.to_phase == "infusion":
                first_device, first_device_seq = e.t, s
                break
    allowed = template.dosing.allowed_doses if template is not None else ()
    std = [float(x) for x in (allowed or cfg["dose"]["standard_doses_mg"])]
    category = f"{dose_mg:g} mg" if admins and dose_mg in std else ("other" if admins else None)

    # -- blood pressure
    bps = bp_readings(events)
    end = session_end(events)
    before = [b for b in bps if first_device is not None and b.t < first_device and b.sys is not None]
    bp_before = before[-1] if before else None
    bp_before_basis = "last NIBP reading before the first device"
    if bp_before is None:
        base = [(s, e) for s, e in ev if isinstance(e, BaselineRecorded) and e.sbp is not None]
        if base:
            s, e = base[-1]
            bp_before = BP(e.t, e.sbp, e.dbp, e.map, s, "baseline")
            bp_before_basis = "baseline event (no NIBP reading before the first device)"
    bp40 = None
    if first_device is not None:
        target = first_device + timedelta(minutes=at_min)
        cands = [b for b in bps if abs((b.t - target).total_seconds()) <= window * 60 and b.sys is not None]
        if cands:
            bp40 = min(cands, key=lambda b: (abs((b.t - target).total_seconds()), b.t))
    upto_end = [b for b in bps if end is not None and b.t <= end and b.sys is not None
                and (first_device is None or b.t >= first_device)]
    bp_end = upto_end[-1] if upto_end else None

    # -- concomitant medication classes, from the check-in checklist
    classes = list((rems.concomitant_classes if rems else ()) or cfg["form"]["concomitant_classes"])
    concomitant: dict[str, bool | None] = {c: None for c in classes}
    for s, e in ev:
        if not isinstance(e, ChecklistCompleted):
            continue
        if e.concomitant:  # the template's concomitant-drug checklist, answered class by class
            for c in classes:
                if c in e.concomitant:
                    concomitant[c] = bool(e.concomitant[c])
            continue
        for key, present in e.contraindications.items():
            k = key.lower().replace("_", " ")
            for c in sorted(classes, key=len, reverse=True):
                if c.lower() in k and not (c.lower() == "benzodiazepines" and "non-benzodiazepine" in k):
                    concomitant[c] = bool(present)
                    break

    # -- times
    total = None
    if first_device is not None and end is not None:
        total = int((end - first_device).total_seconds() // 60)
    ready = None
    ready_seq = None
    for s, e in ev:
        if not isinstance(e, DischargeAssessed):
            continue
        only_time = (e.min_recovery_met is False and bool(e.blocked_reasons) and all(
            any(k in r.lower() for k in ("minimum", "min ", "observation time", "recovery time", "120", "time gate"))
            for r in e.blocked_reasons))
        if e.criteria_met or e.discharged or only_time:
            ready, ready_seq = e.t, s
            break
    ready_min = int((ready - first_device).total_seconds() // 60) if ready and first_device else None

    # -- vitals acceptable
    def below_guide(b) -> bool | None:
        if b is None or b.sys is None:
            return None
        return b.sys < guide_sys and (b.dia is None or b.dia < guide_dia)

    acc_before = below_guide(bp_before)
    acc_end = below_guide(bp_end)
    if acc_end is False and bp_before is not None and bp_end is not None and bp_before.sys and bp_end.sys:
        within = abs(bp_end.sys - bp_before.sys) <= bp_before.sys * pct / 100 and (
            bp_before.dia is None or bp_end.dia is None or abs(bp_end.dia - bp_before.dia) <= bp_before.dia * pct / 100)
        acc_end = within

    # -- effects
    after = [(s, e) for s, e in ev if first_device is not None and e.t >= first_device]
    sed_ev = [s for s, e in after if isinstance(e, ObservationRecorded) and e.scale.lower() in ("moaas", "moaa/s", "moaa_s")
              and e.score is not None and e.score <= sed_max]
    dis_ev = [s for s, e in after if isinstance(e, ObservationRecorded) and (
        (e.scale.lower() == "cadss" and e.score is not None and e.score > cadss_above)
        or (e.scale.lower() == "dissociation" and e.score is not None and e.score > 0))]
    resp_ev = []
    for s, e in after:
        if isinstance(e, ObservationRecorded):
            sc = e.scale.lower().replace(" ", "_")
            if sc in ("respiratory_depression", "resp_depression") and (
                    (e.score is not None and e.score > 0) or bool(e.items.get("present"))):
                resp_ev.append(s)
            elif _mentions(e.text, "respiratory depression"):
                resp_ev.append(s)
        elif isinstance(e, InterventionGiven):
            words = f"{e.drug} {e.reason}".lower()
            if any(re.search(rf"\b{re.escape(w)}\b", words) for w in resp_words) or _mentions(words, "respiratory depression"):
                resp_ev.append(s)
        elif isinstance(e, NoteAdded) and _mentions(e.text, "respiratory depression"):
            resp_ev.append(s)

    doc = {
        "form": "SPRAVATO REMS Patient Monitoring Form (outpatient): fields derived from the Chairside record",
        "form_version": rems.form_version if rems else None,
        "protocol": op.protocol if op else None,
        "applicable": is_esketamine(events, template, state),
        "session_id": op.session_id if op else None,
        "patient_id": op.patient_id if op else None,
        # not held in a pseudonymous record: listed under "missing" for the clinic to fill in
        "patient_name": None, "date_of_birth": None, "sex": None,
        "setting": None,
        "treatment_date": first_device.date().isoformat() if first_device else (
            events[0].t.date().isoformat() if events else None),
        "monitoring_staff": list(op.staff) if op else [],
        "dose": {
            "category": category,
            "mg": dose_mg if admins else None,
            "devices": devices if admins else None,
            "administration_seqs": [s for s, _ in admins],
            "device_times": [e.t.isoformat() for _, e in admins],
        },
        "lot": ", ".join(lots) if lots else None,
        "concomitant": concomitant,
        "first_device_time": first_device.isoformat() if first_device else None,
        "bp_before_dosing": _bp_dict(bp_before, first_device),
        "bp_at_40_min": _bp_dict(bp40, first_device),
        "bp_before_completion": _bp_dict(bp_end, first_device),
        "end_of_monitoring": end.isoformat() if end else None,
        "total_minutes_monitored": total,
        "minimum_minutes": min_minutes,
        "minimum_met": (total >= min_minutes) if total is not None else None,
        "ready_to_leave_minutes": ready_min,
        "ready_to_leave_seq": ready_seq,
        "vitals_acceptable_before_administration": acc_before,
        "vitals_acceptable_before_completion": acc_end,
        "sedation": bool(sed_ev) if first_device else None,
        "dissociation": bool(dis_ev) if first_device else None,
        "respiratory_depression": bool(resp_ev) if first_device else None,
        "evidence": {"sedation": sed_ev, "dissociation": dis_ev, "respiratory_depression": resp_ev,
                     "first_device": first_device_seq},
        "rules": {
            "dose": f"sum of esketamine administrations; {mg_per_device:g} mg per device {tag('dose', 'mg_per_device')}; "
                    f"{'/'.join(f'{x:g}' for x in std)} mg tick the box, any other dose is 'other'",
            "bp_before_dosing": bp_before_basis,
            "bp_at_40_min": f"NIBP nearest first device + {at_min:g} min {tag('bp', 'at_min')}, "
                            f"within ±{window:g} min {tag('bp', 'at_min_window')}",
            "bp_before_completion": "last NIBP reading at or before the end of monitoring",
            "total_minutes_monitored": "first device to end of monitoring, whole minutes rounded down; "
                                       f"minimum {min_minutes:g} min {tag('monitoring', 'min_minutes')}",
            "ready_to_leave": "first discharge assessment with the criteria met (or blocked only by the minimum time)",
            "vitals_acceptable_before_administration": f"BP before dosing below {guide_sys:g}/{guide_dia:g} "
                                                      f"{tag('bp', 'label_guide_sys')}",
            "vitals_acceptable_before_completion": f"BP before completion below {guide_sys:g}/{guide_dia:g} "
                                                   f"{tag('bp', 'label_guide_sys')} or within {pct:g}% of the BP "
                                                   f"before dosing {tag('bp', 'within_pct_of_baseline')}",
            "sedation": f"any MOAA/S ≤ {sed_max:g} after the first device {tag('effects', 'sedation_moaas_at_most')}",
            "dissociation": f"any CADSS > {cadss_above:g} after the first device {cadss_tag}",
            "respiratory_depression": "a respiratory_depression observation, a respiratory-support intervention "
                                      f"({', '.join(resp_words)}) {tag('effects', 'respiratory_support')}, or a note "
                                      "saying 'respiratory depression' (not after 'no'/'without')",
            "concomitant": "the check-in's concomitant-drug checklist (else checklist items naming the class)",
        },
    }
    doc["form_fields"], doc["missing"] = _form_fields(doc, template)
    return doc


_CLINIC_FILLS = {"patient_name", "date_of_birth", "sex", "setting"}


def _form_fields(doc: dict[str, Any], template: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Every field the form has (the template's ``rems.fields``, in its order) filled from the
    record; a field the record cannot fill is None AND listed in ``missing`` with why, never
    silently null."""
    names = list(template.rems.fields) if template is not None and template.rems is not None else []
    conc = doc.get("concomitant") or {}

    def concomitant(cls: str) -> Any:
        for k, v in conc.items():
            if k.lower().replace("-", "_").replace(" ", "_") == cls:
                return v
        return None
    dose = doc.get("dose") or {}
    known: dict[str, Any] = {
        "patient_name": doc.get("patient_name"), "date_of_birth": doc.get("date_of_birth"), "sex": doc.get("sex"),
        "monitoring_hcp": ", ".join(doc.get("monitoring_staff") or []) or None, "setting": doc.get("setting"),
        "treatment_date": doc.get("treatment_date"), "dose_mg": dose.get("mg"), "lot_number": doc.get("lot"),
        "minutes_first_device_to_end_of_monitoring": doc.get("total_minutes_monitored"),
        "minutes_until_ready_to_leave": doc.get("ready_to_leave_minutes"),
        "vitals_acceptable_before_administration": doc.get("vitals_acceptable_before_administration"),
        "vitals_acceptable_before_completion": doc.get("vitals_acceptable_before_completion"),
        "bp_before_dosing": doc.get("bp_before_dosing"), "bp_at_40_min": doc.get("bp_at_40_min"),
        "bp_before_completion": doc.get("bp_before_completion"),
        "sedation_occurred": doc.get("sedation"), "dissociation_occurred": doc.get("dissociation"),
        "respiratory_depression_occurred": doc.get("respiratory_depression"),
    }
    out: dict[str, Any] = {}
    missing: list[dict[str, str]] = []
    for name in names:
        if name.startswith("concomitant_"):
            value = concomitant(name.removeprefix("concomitant_"))
        else:
            value = known.get(name)
        out[name] = value
        if value is None:
            why = ("the clinic fills it in: not held in the pseudonymous record" if name in _CLINIC_FILLS
                   else "not in the record")
            missing.append({"field": name, "why": why})
    return out, missing


def export(path: Path, out: Path | None = None) -> Path:
    """Write the REMS fields of an esketamine session file as JSON; default ``<file>.rems.json``."""
    path = Path(path)
    loaded = read_session(path)
    op = opened(record_state(loaded.events))
    template = load_template(op.protocol) if op else None
    if not is_esketamine(loaded.events, template):
        proto = op.protocol if op else "?"
        raise ValueError(f"{path}: not an esketamine session (protocol {proto!r}); the REMS form does not apply")
    doc = fields(loaded.events, template)
    doc["source_file"] = path.name
    doc["last_event_hash"] = loaded.last_hash
    if loaded.verified is not None:
        doc["signing_keys"] = list(loaded.verified.keys) if loaded.verified.signed else []
        doc["signing"] = loaded.verified.signing_text()
    out = Path(out) if out else path.with_suffix(".rems.json")
    write_private_text(out, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return out


__all__ = ["export", "fields", "is_esketamine"]
