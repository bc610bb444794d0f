"""Discharge: may the patient go home? The criteria and the check, as pure functions.

Owns: ``DischargeCheck`` (the criteria as they stand; ``blocked_reasons`` empty = may
discharge) and ``discharge_check`` (minimum recovery from the template's reference point —
the end of dosing, or its start / first device —, Aldrete/PADSS by the template's score
rule, BP and HR within the template's percentage of the recorded baseline, sedation,
dissociation and respiratory depression resolved on observations after dosing
(``chairside.domain.recovery_criteria``), the BPs a device protocol asks for
(``chairside.domain.esketamine``), escort, instructions). Reads the session state and the latest
readings it is given; records nothing. The numbers come from the protocol template.
Must not import: anything outside stdlib, pydantic and chairside.domain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from chairside.domain.esketamine import bp_findings
from chairside.domain.protocol import ProtocolTemplate
from chairside.domain.recovery_criteria import recovery_reference, unmet_recovery_criteria
from chairside.domain.scales import ScaleError, aldrete_total, padss_total
from chairside.domain.events import BaselineRecorded
from chairside.domain.state import SessionState


@dataclass(frozen=True)
class DischargeCheck:
    """The discharge criteria as they stand; ``blocked_reasons`` empty = may discharge."""

    min_recovery_min: float | None = None
    minutes_since_end: float | None = None
    min_recovery_met: bool = False
    aldrete_total: int | None = None
    padss_total: int | None = None
    score_threshold: int | None = None
    scores_met: bool = False
    vitals_within: bool | None = None
    vitals_detail: str = ""
    escort_present: bool = False
    instructions_given: bool = False
    blocked_reasons: tuple[str, ...] = ()

    @property
    def criteria_met(self) -> bool:
        return not self.blocked_reasons


def discharge_check(template: ProtocolTemplate, state: SessionState, now: datetime,
                    latest: Mapping[str, float | None], *, aldrete: Mapping[str, int] | None,
                    padss: Mapping[str, int] | None, escort_present: bool,
                    instructions_given: bool, nibp_log: Sequence[tuple] = ()) -> DischargeCheck:
    """The discharge criteria at ``now``; ``latest`` maps a parameter (``nibp_sys``,
    ``nibp_dia``, ``hr``, ``spo2``) to its latest valid value (None or absent: no reading);
    ``nibp_log`` is every NIBP of the session ((time, mono, sys, dia), as
    ``SessionState.nibp_log``)."""
    d = template.discharge
    reasons: list[str] = []
    min_rec = template.recovery.min_minutes
    from_start = template.recovery.counted_from == "start"
    ref = recovery_reference(template, state)
    since = (now - ref).total_seconds() / 60 if ref is not None else None
    rec_met = since is not None and since >= min_rec
    if since is None:
        reasons.append("no dose given yet" if from_start else "the infusion has not been stopped")
    elif not rec_met:
        reasons.append(f"minimum recovery {min_rec:g} min not reached ({since:.0f} min so far)")
    at = pt = None
    try:
        at = aldrete_total(aldrete) if aldrete else None
    except ScaleError as exc:
        reasons.append(str(exc))
    try:
        pt = padss_total(padss) if padss else None
    except ScaleError as exc:
        reasons.append(str(exc))
    a_ok = at is not None and d.aldrete_min is not None and at >= d.aldrete_min
    p_ok = pt is not None and d.padss_min is not None and pt >= d.padss_min
    rule = d.score_rule
    scores_met = {"aldrete_or_padss": a_ok or p_ok, "aldrete_and_padss": a_ok and p_ok,
                  "aldrete": a_ok, "padss": p_ok}[rule]
    if not scores_met:
        parts = []
        if rule != "padss":
            parts.append(f"Aldrete {'not scored' if at is None else at} (needs ≥ {d.aldrete_min})")
        if rule != "aldrete":
            parts.append(f"PADSS {'not scored' if pt is None else pt} (needs ≥ {d.padss_min})")
        reasons.append("scores: " + (" or " if rule == "aldrete_or_padss" else " and ").join(parts))
    within, detail = vitals_within(state.baseline, latest, d.vitals_within_pct)
    if not within:
        reasons.append(detail)
    reasons.extend(unmet_recovery_criteria(template, state, spo2=latest.get("spo2")))
    reasons.extend(bp_findings(template, state.device_doses, nibp_log, now))
    if d.escort_required and not escort_present:
        reasons.append("escort not present")
    if not instructions_given:
        reasons.append("discharge instructions not given")
    return DischargeCheck(
        min_recovery_min=min_rec, minutes_since_end=since, min_recovery_met=rec_met,
        aldrete_total=at, padss_total=pt,
        score_threshold=d.aldrete_min if d.aldrete_min is not None else d.padss_min,
        scores_met=scores_met, vitals_within=within, vitals_detail=detail,
        escort_present=escort_present, instructions_given=instructions_given,
        blocked_reasons=tuple(reasons))


def vitals_within(b: BaselineRecorded | None, latest: Mapping[str, float | None],
                  pct: float) -> tuple[bool | None, str]:
    """BP and HR within ``pct`` % of the recorded baseline, from the latest readings."""
    if b is None:
        return None, "no baseline recorded: vitals cannot be compared"
    checks = []
    for name, base, param in (("SBP", b.sbp, "nibp_sys"), ("DBP", b.dbp, "nibp_dia"), ("HR", b.hr, "hr")):
        if base is None or base <= 0:
            continue
        value = latest.get(param)
        if value is None:
            return None, f"no current {name} reading to compare with the baseline"
        checks.append((name, value, base, (value - base) / base * 100))
    if not checks:
        return None, "no baseline values recorded"
    bad = [c for c in checks if abs(c[3]) > pct]
    if bad:
        return False, (f"vitals not within {pct:g} % of baseline: "
                       + ", ".join(f"{n} {v:.0f} vs {bv:.0f} ({dv:+.0f} %)" for n, v, bv, dv in bad))
    return True, (f"within {pct:g} % of baseline: "
                  + ", ".join(f"{n} {v:.0f} vs {bv:.0f} ({dv:+.0f} %)" for n, v, bv, dv in checks))
