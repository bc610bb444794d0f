"""FHIR R4 resources of a session other than its readings: codes and units, and one
function that yields the entries for the infusion, interventions, scales, discharge
scores and alarms (``chairside.reports.fhir`` streams them with the readings).
Must not import: textual, serial, chairside.transport, chairside.service, chairside.ui.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from chairside.domain.events import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmEscalated,
    AlarmRaised,
    AlarmSilenced,
    BaselineRecorded,
    DischargeAssessed,
    InterventionGiven,
    ObservationRecorded,
)
from chairside.domain.state import SessionState
from chairside.reports.common import current, infusion_record, numbered, scale_title

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
SCALE_SYS = "urn:chairside:scale"
ALARM_SYS = "urn:chairside:alarm-rule"
ACTION_SYS = "urn:chairside:alarm-action"
RATE_PER_KG_EXT = "urn:chairside:fhir:StructureDefinition:dose-rate-per-kg"
_NS = uuid.UUID("6f1d3b1e-6c1a-5f4e-9a53-6368616972e5")

# param (and pr source) -> (LOINC code, LOINC display, MDC code, MDC reference id, UCUM code)
VITALS: dict[str, tuple[str | None, str, str | None, str, str]] = {
    "nibp_sys": ("8480-6", "Systolic blood pressure", "150021", "MDC_PRESS_BLD_NONINV_SYS", "mm[Hg]"),
    "nibp_dia": ("8462-4", "Diastolic blood pressure", "150022", "MDC_PRESS_BLD_NONINV_DIA", "mm[Hg]"),
    "nibp_map": ("8478-0", "Mean blood pressure", "150023", "MDC_PRESS_BLD_NONINV_MEAN", "mm[Hg]"),
    "hr": ("8867-4", "Heart rate", "147842", "MDC_ECG_HEART_RATE", "/min"),
    "pr:spo2": ("8889-8", "Heart rate by Pulse oximetry", "149530", "MDC_PULS_OXIM_PULS_RATE", "/min"),
    "pr:nibp": ("8867-4", "Heart rate", "149546", "MDC_PULS_RATE_NON_INV", "/min"),
    "pr": ("8867-4", "Heart rate", None, "", "/min"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "150456",
             "MDC_PULS_OXIM_SAT_O2", "%"),
    "rr": ("9279-1", "Respiratory rate", "151562", "MDC_RESP_RATE", "/min"),
    "pi": (None, "Perfusion index", "150488", "MDC_PULS_OXIM_PERF_REL", "%"),
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
_ROUTES = {  # SNOMED CT route codes
    "iv": ("47625008", "Intravenous route"),
    "in": ("46713006", "Nasal route"),
    "intranasal": ("46713006", "Nasal route"),
    "nasal": ("46713006", "Nasal route"),
}
_UCUM_DOSE = {"mg": "mg", "mcg": "ug", "ug": "ug", "µg": "ug", "g": "g", "ml": "mL", "l": "L",
              "mg/kg": "mg/kg", "l/min": "L/min", "units": "[iU]", "iu": "[iU]"}
_NON_DRUG = ("reassur", "stimulation", "airway", "jaw thrust", "chin lift", "position", "pause", "slow",
             "ems", "911", "suction", "cooling", "music", "dim light")
_SEVERITY = {"high": "high", "medium": "moderate", "low": "low"}


def _id(session: str, *parts: Any) -> str:
    return str(uuid.uuid5(_NS, "/".join([session, *map(str, parts)])))


def _iso(t) -> str | None:
    return t.isoformat() if t is not None else None


def _vital_key(param: str, source: str) -> str:
    if param == "pr":
        s = (source or "").lower()
        if "spo2" in s or "oxim" in s or "pleth" in s:
            return "pr:spo2"
        if "nibp" in s or "cuff" in s:
            return "pr:nibp"
        return "pr"
    return param


def vital_coding(param: str, source: str = "") -> tuple[list[dict[str, str]], str, str]:
    """(codings, text, UCUM code) for a vital parameter; LOINC first, then MDC."""
    key = _vital_key(param, source)
    loinc, disp, mdc, mdc_ref, ucum = VITALS.get(key, (None, param, None, "", ""))
    coding = []
    if loinc:
        coding.append({"system": LOINC, "code": loinc, "display": disp})
    if mdc:
        coding.append({"system": MDC, "code": mdc, "display": mdc_ref})
    if not coding:
        coding.append({"system": "urn:chairside:param", "code": param, "display": param})
    return coding, disp, ucum


def _qty(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value, "unit": unit}
    if code:
        q["system"] = UCUM
        q["code"] = code
    return q


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _route(route: str) -> dict[str, Any]:
    r = (route or "").strip()
    cc: dict[str, Any] = {"text": r or "unspecified"}
    hit = _ROUTES.get(r.lower())
    if hit:
        cc["coding"] = [{"system": "http://snomed.info/sct", "code": hit[0], "display": hit[1]}]
    return cc


def clinical_entries(events: Sequence[Any], state: SessionState, sid: str, subj: dict[str, str],
                     enc: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Bundle entries for the infusion segments, interventions, scale observations, baseline
    and discharge scores and alarms of ``events`` (amended as the folded ``state`` says)."""
    survey_cat = [{"coding": [{"system": OBS_CAT, "code": "survey", "display": "Survey"}]}]
    # ---- infusion segments
    rec = infusion_record(events, state)
    for k, seg in enumerate(rec.segments):
        med = {"resourceType": "Medication", "id": "med", "code": {"text": seg.drug}}
        if seg.concentration_mg_ml:
            med["ingredient"] = [{"itemCodeableConcept": {"text": seg.drug}, "strength": {
                "numerator": _qty(seg.concentration_mg_ml, "mg", "mg"), "denominator": _qty(1, "mL", "mL")}}]
        if seg.lot:
            med["batch"] = {"lotNumber": seg.lot}
        mg = seg.mg(rec.weight_kg)
        mgh = seg.rate_mg_kg_h * rec.weight_kg if rec.weight_kg else None
        text = (f"{seg.rate_mg_kg_h:g} mg/kg/h" + (f" = {mgh:.2f} mg/h" if mgh is not None else "")
                + f" = {seg.rate_ml_h:g} mL/h" + (f" of {seg.concentration_mg_ml:g} mg/mL" if seg.concentration_mg_ml else ""))
        ma: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "id": _id(sid, "infusion", seg.seq),
            "identifier": [{"system": "urn:chairside:event", "value": str(seg.seq)}],
            "contained": [med],
            "status": "completed" if seg.end is not None else "in-progress",
            "medicationReference": {"reference": "#med", "display": seg.drug},
            "subject": subj,
            "context": enc,
            "effectivePeriod": {k2: v for k2, v in (("start", _iso(seg.start)), ("end", _iso(seg.end))) if v},
            "dosage": {
                "text": text,
                "route": _route(seg.route),
                "rateQuantity": _qty(seg.rate_ml_h, "mL/h", "mL/h"),
                "extension": [{"url": RATE_PER_KG_EXT, "valueQuantity": _qty(seg.rate_mg_kg_h, "mg/kg/h", "mg/kg/h")}],
            },
        }
        if seg.end is not None:
            ma["dosage"]["dose"] = _qty(round(mg, 4), "mg", "mg")
        note = [f"segment {k + 1} of {len(rec.segments)}, began with {seg.kind.replace('_', ' ')}"]
        if seg.reason:
            note.append(f"reason: {seg.reason}")
        ma["note"] = [{"text": "; ".join(note)}]
        yield _entry(ma)

    # ---- interventions, scales, discharge, alarms
    alarms: dict[str, dict[str, Any]] = {}
    for s, raw in numbered(events):
        e = current(state, s, raw)
        am = state.amendments.get(s, ())
        status = "amended" if am else "final"
        am_note = [{"text": f"amended by event {a.seq}: " + ", ".join(
            f"{k} was {getattr(raw, k, None)!r}, now {v!r}" for k, v in a.replacement.items()) + f" ({a.reason})"}
            for a in am]
        if isinstance(e, InterventionGiven):
            name = e.drug.lower()
            performer = [{"actor": {"display": e.given_by or e.author}}]
            if e.dose is None and any(w in name for w in _NON_DRUG):
                res: dict[str, Any] = {
                    "resourceType": "Procedure", "id": _id(sid, "intervention", s),
                    "identifier": [{"system": "urn:chairside:event", "value": str(s)}],
                    "status": "completed", "code": {"text": e.drug}, "subject": subj, "encounter": enc,
                    "performedDateTime": e.t.isoformat(), "performer": performer,
                }
                if e.reason:
                    res["reasonCode"] = [{"text": e.reason}]
                notes = ([{"text": f"response: {e.response}"}] if e.response else []) + am_note
                if notes:
                    res["note"] = notes
            else:
                med = {"resourceType": "Medication", "id": "med", "code": {"text": e.drug}}
                if e.lot:
                    med["batch"] = {"lotNumber": e.lot}
                dosage: dict[str, Any] = {"route": _route(e.route)}
                if e.dose is not None:
                    unit = e.dose_unit or "1"
                    dosage["dose"] = _qty(e.dose, unit, _UCUM_DOSE.get(unit.lower()))
                res = {
                    "resourceType": "MedicationAdministration", "id": _id(sid, "intervention", s),
                    "identifier": [{"system": "urn:chairside:event", "value": str(s)}],
                    "contained": [med], "status": "completed",
                    "medicationReference": {"reference": "#med", "display": e.drug},
                    "subject": subj, "context": enc, "effectiveDateTime": e.t.isoformat(),
                    "performer": performer, "dosage": dosage,
                }
                if e.reason:
                    res["reasonCode"] = [{"text": e.reason}]
                notes = []
                if e.ordered_by:
                    notes.append({"text": f"ordered by {e.ordered_by}"})
                if e.response:
                    notes.append({"text": f"response: {e.response}"})
                notes += am_note
                if notes:
                    res["note"] = notes
            yield _entry(res)
        elif isinstance(e, ObservationRecorded):
            res = {
                "resourceType": "Observation", "id": _id(sid, "observation", s),
                "identifier": [{"system": "urn:chairside:event", "value": str(s)}],
                "status": status, "category": survey_cat,
                "code": {"coding": [{"system": SCALE_SYS, "code": e.scale, "display": scale_title(e.scale)}],
                         "text": scale_title(e.scale)},
                "subject": subj, "encounter": enc, "effectiveDateTime": e.t.isoformat(),
                "performer": [{"display": e.author}],
            }
            if e.score is not None:
                res["valueQuantity"] = _qty(e.score, "score", "{score}")
            elif e.text:
                res["valueString"] = e.text
            else:
                res["dataAbsentReason"] = {"coding": [{"system": ABSENT, "code": "unknown"}]}
            comps = []
            for k, v in e.items.items():
                c: dict[str, Any] = {"code": {"coding": [{"system": SCALE_SYS, "code": f"{e.scale}.{k}"}], "text": str(k)}}
                if isinstance(v, bool):
                    c["valueBoolean"] = v
                elif isinstance(v, int):
                    c["valueInteger"] = v
                elif isinstance(v, float):
                    c["valueQuantity"] = _qty(v, "score", "{score}")
                else:
                    c["valueString"] = str(v)
                comps.append(c)
            if comps:
                res["component"] = comps
            notes = ([{"text": e.text}] if e.text and e.score is not None else []) + am_note
            if notes:
                res["note"] = notes
            yield _entry(res)
        elif isinstance(e, BaselineRecorded):
            for scale, v in (("moaas", e.moaas), ("cadss", e.cadss)):
                if v is None:
                    continue
                yield _entry({
                    "resourceType": "Observation", "id": _id(sid, "baseline", s, scale),
                    "identifier": [{"system": "urn:chairside:event", "value": f"{s}.{scale}"}],
                    "status": status, "category": survey_cat,
                    "code": {"coding": [{"system": SCALE_SYS, "code": scale, "display": scale_title(scale)}],
                             "text": f"{scale_title(scale)} (baseline)"},
                    "subject": subj, "encounter": enc, "effectiveDateTime": e.t.isoformat(),
                    "valueQuantity": _qty(v, "score", "{score}"),
                    **({"note": am_note} if am_note else {}),
                })
        elif isinstance(e, DischargeAssessed):
            for scale, items, total in (("aldrete", e.aldrete, e.aldrete_total), ("padss", e.padss, e.padss_total)):
                if total is None and not items:
                    continue
                res = {
                    "resourceType": "Observation", "id": _id(sid, "discharge", s, scale),
                    "identifier": [{"system": "urn:chairside:event", "value": f"{s}.{scale}"}],
                    "status": status, "category": survey_cat,
                    "code": {"coding": [{"system": SCALE_SYS, "code": scale, "display": scale_title(scale)}],
                             "text": scale_title(scale)},
                    "subject": subj, "encounter": enc, "effectiveDateTime": e.t.isoformat(),
                    "performer": [{"display": e.author}],
                }
                if total is not None:
                    res["valueQuantity"] = _qty(total, "score", "{score}")
                else:
                    res["dataAbsentReason"] = {"coding": [{"system": ABSENT, "code": "unknown"}]}
                if items:
                    res["component"] = [{"code": {"coding": [{"system": SCALE_SYS, "code": f"{scale}.{k}"}], "text": k},
                                         "valueInteger": int(v)} for k, v in items.items()]
                notes = [{"text": ("criteria met" if e.criteria_met else "criteria not met")
                          + (": " + "; ".join(e.blocked_reasons) if e.blocked_reasons else "")
                          + ("; discharged" if e.discharged else "")}] + am_note
                res["note"] = notes
                yield _entry(res)
        elif isinstance(e, AlarmRaised):
            detail = (f"{e.priority} priority {e.alarm_class} alarm"
                      + (f": {e.param} {e.value:g}" if e.param and e.value is not None else (f": {e.param}" if e.param else ""))
                      + (f" (limit {e.limit:g} {e.source_tag})" if e.limit is not None else "")
                      + (f" — {e.message}" if e.message else ""))
            alarms[e.alarm_id] = {
                "resourceType": "DetectedIssue", "id": _id(sid, "alarm", e.alarm_id, s),
                "identifier": [{"system": "urn:chairside:alarm", "value": e.alarm_id}],
                "status": "final",
                "code": {"coding": [{"system": ALARM_SYS, "code": e.rule or e.alarm_id}], "text": e.message or e.rule or e.alarm_id},
                "severity": _SEVERITY.get(e.priority, "low"),
                "patient": subj,
                "identifiedDateTime": e.t.isoformat(),
                "detail": detail,
                "mitigation": [],
                "_escalations": [],
            }
        elif isinstance(e, (AlarmAcknowledged, AlarmSilenced, AlarmCleared, AlarmEscalated)):
            di = alarms.get(e.alarm_id)
            if di is None:
                continue
            if isinstance(e, AlarmEscalated):
                di["_escalations"].append(f"{e.t.isoformat()} {e.from_priority}->{e.to_priority}"
                                          + (" re-announced" if e.reannounce else "") + (f" ({e.reason})" if e.reason else ""))
                if not e.reannounce:
                    di["severity"] = _SEVERITY.get(e.to_priority, di["severity"])
                continue
            if isinstance(e, AlarmAcknowledged):
                code, text, who = "acknowledged", "acknowledged", e.by or e.author
            elif isinstance(e, AlarmSilenced):
                code = e.mode
                text = e.mode.replace("_", " ") + (f" {e.duration_s:g} s" if e.duration_s else "")
                who = e.by or e.author
            else:
                code, text, who = "cleared", "cleared" + (f": {e.reason}" if e.reason else ""), e.author
            di["mitigation"].append({"action": {"coding": [{"system": ACTION_SYS, "code": code}], "text": text},
                                     "date": e.t.isoformat(), "author": {"display": who}})
    for di in alarms.values():
        esc = di.pop("_escalations")
        if esc:
            di["detail"] += "; escalations: " + "; ".join(esc)
        if not di["mitigation"]:
            di.pop("mitigation")
        yield _entry(di)
