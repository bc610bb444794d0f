"""The protocol template's own checks before a start, on a resume, and of the bag.

Owns: ``Finding`` (one check that does not hold: a hard ``block``, an ``override`` the
prescriber may lift with a reason, or an ``advisory`` that needs a recorded reason),
``start_findings`` (the template's ``[gate]`` checks: consent, escort, fasting, baseline
BPs, medicines, allergies, the esketamine concomitant-drug classes, contraindications),
``resume_findings`` (a resume wants a BP taken after the pause; the vitals gate's verdict
on it is passed in), ``bag_findings`` (plausible concentration per template, the bag holds
the ordered dose) and ``verdict`` (what a set of findings asks for).
Must not import: anything outside stdlib; of chairside only ``chairside.domain``. The
vitals gate (BP/SpO2/HR tiers of the limits profile) belongs to ``chairside.alarms``: its
result is an input here, evaluated once by the caller.

Every number comes from the template (``gate``, ``dosing``); texts carry their source tags.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Level = Literal["block", "override", "advisory"]


@dataclass(frozen=True)
class Finding:
    """One check that does not hold. ``block``: refused; ``override``: refused unless the
    prescriber overrides with a reason; ``advisory``: allowed with a recorded reason."""

    key: str
    level: Level
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Verdict:
    blocks: tuple[Finding, ...]
    overrides: tuple[Finding, ...]
    advisories: tuple[Finding, ...]

    @property
    def refused(self) -> bool:
        return bool(self.blocks)

    @property
    def clear(self) -> bool:
        return not (self.blocks or self.overrides or self.advisories)

    def line(self) -> str:
        """The one start-confirm line, in agreement with the findings listed above it."""
        if self.blocks:
            return "BLOCKED — " + "; ".join(f.text for f in self.blocks)
        if self.overrides:
            return ("NEEDS THE PRESCRIBER'S OVERRIDE — " + "; ".join(f.text for f in self.overrides)
                    + (f" (and {len(self.advisories)} advisory)" if self.advisories else ""))
        if self.advisories:
            n = len(self.advisories)
            return f"{n} {'advisory applies' if n == 1 else 'advisories apply'}: a recorded reason is needed to start"
        return "clear to start"


def verdict(findings: Iterable[Finding]) -> Verdict:
    fs = tuple(findings)
    return Verdict(blocks=tuple(f for f in fs if f.level == "block"),
                   overrides=tuple(f for f in fs if f.level == "override"),
                   advisories=tuple(f for f in fs if f.level == "advisory"))


def _tag(section: Any, field: str) -> str:
    t = section.source(field) if hasattr(section, "source") else ""
    return f" {t}" if t else ""


def baseline_bps(nibp_log: Sequence[tuple[datetime, float, float | None, float | None]], count: int,
                 interval_min: float | None, *, before_mono: float | None = None) -> list[tuple[datetime, float, float, float]]:
    """The earliest chain of ``count`` complete BPs, each at least ``interval_min`` after
    the one before (greedy from the first); shorter when the log does not hold them."""
    chain: list[tuple[datetime, float, float, float]] = []
    gap = (interval_min or 0.0) * 60.0
    for t, mono, sys_, dia in nibp_log:
        if sys_ is None or dia is None:
            continue
        if before_mono is not None and mono > before_mono:
            break
        if not chain or (t - chain[-1][0]).total_seconds() >= gap - 1e-6:
            chain.append((t, mono, sys_, dia))
            if len(chain) >= count:
                break
    return chain


def start_findings(template: Any, checklist: Any, nibp_log: Sequence[Any] = (), *,
                   contraindications_override: bool = True) -> tuple[Finding, ...]:
    """What the template's ``[gate]`` asks before the first dose, checked against the
    recorded checklist (``ChecklistCompleted``, None when not done) and the NIBP log
    (``SessionState.nibp_log``)."""
    gate = template.gate
    out: list[Finding] = []
    if checklist is None:
        return (Finding("checklist", "block", "the pre-infusion checklist is not completed"),)

    def level(key: str) -> Level | None:
        if key in gate.hard_blocks:
            return "block"
        if key in gate.advisories:
            return "advisory"
        return None

    present = [k for k, v in (checklist.contraindications or {}).items() if v]
    if present:
        out.append(Finding("contraindication", "override" if contraindications_override else "block",
                           "contraindication present: " + ", ".join(k.replace("_", " ") for k in present)))
    lv = level("consent")
    if lv and not checklist.consent:
        out.append(Finding("consent", lv, "consent is not recorded"))
    lv = level("escort")
    if lv and not checklist.escort_confirmed:
        out.append(Finding("escort", lv, "no escort home arranged"))
    lv = level("fasting")
    if lv and gate.fasting_food_h is not None:
        need = gate.fasting_food_h
        got = checklist.hours_fasted
        if got is None:
            out.append(Finding("fasting", lv, f"hours fasted not recorded (the template asks >= {need:g} h"
                               f"{_tag(gate, 'fasting_food_h')})"))
        elif got < need:
            out.append(Finding("fasting", lv, f"fasted {got:g} h, the template asks >= {need:g} h"
                               f"{_tag(gate, 'fasting_food_h')}"))
    lv = level("baseline_bp")
    if lv:
        n = gate.baseline_bp_count
        chain = baseline_bps(nibp_log, n, gate.baseline_interval_min)
        if len(chain) < n:
            apart = (f", {gate.baseline_interval_min:g} min apart{_tag(gate, 'baseline_interval_min')}"
                     if gate.baseline_interval_min and n > 1 else "")
            out.append(Finding("baseline_bp", lv, f"{len(chain)} of {n} baseline BPs measured (the template asks "
                               f"{n}{_tag(gate, 'baseline_bp_count')}{apart})"))
    lv = level("medications")
    if lv and checklist.medications_reviewed is not True:
        out.append(Finding("medications", lv, "current medicines not reviewed"))
    lv = level("allergies")
    if lv and not (checklist.allergies or "").strip():
        out.append(Finding("allergies", lv, "allergies not recorded"))
    lv = level("concomitant")
    if lv:
        answers = checklist.concomitant or {}
        unanswered = [c for c in gate.concomitant_classes if c not in answers]
        taking = [c for c in gate.concomitant_classes if answers.get(c)]
        if unanswered:
            out.append(Finding("concomitant", lv, "concomitant-drug checklist not answered: " + ", ".join(unanswered)))
        if taking:
            out.append(Finding("concomitant", lv, "concomitant " + ", ".join(taking)
                               + ": the prescriber weighs sedation and BP risk"))
    return tuple(out)


def resume_findings(infusion: Any, nibp_log: Sequence[Any], gate_reasons: Sequence[str] = (),
                    gate_blocks: bool = False) -> tuple[Finding, ...]:
    """A resume after a pause: a BP taken after the pause is needed (``block`` without one);
    when the vitals gate (evaluated by the caller on that BP) names anything, the resume
    needs a reason and the prescriber's initials (``override``)."""
    paused = getattr(infusion, "paused_mono", None)
    if paused is None:
        return ()
    after = [e for e in nibp_log if e[1] >= paused and e[2] is not None and e[3] is not None]
    if not after:
        return (Finding("bp_after_pause", "block", "no BP has been measured since the pause: take one first"),)
    _t, _m, s, d = after[-1]
    if gate_reasons:
        return (Finding("bp_gate", "override", f"BP {s:g}/{d:g} after the pause: " + "; ".join(gate_reasons)),)
    if gate_blocks:
        return (Finding("bp_gate", "override", f"BP {s:g}/{d:g} after the pause is above the gate"),)
    return ()


def latest_bp_after(nibp_log: Sequence[Any], mono: float) -> tuple[float, float] | None:
    after = [e for e in nibp_log if e[1] >= mono and e[2] is not None and e[3] is not None]
    return (after[-1][2], after[-1][3]) if after else None


def bag_findings(template: Any, *, concentration_mg_ml: float, bag_ml: float | None,
                 order_mg: float | None) -> tuple[Finding, ...]:
    """The bag: concentration within the template's plausible bounds (outside: ``block``),
    and the bag holds the ordered dose (else ``advisory``: a recorded reason)."""
    d = template.dosing
    out: list[Finding] = []
    lo, hi = d.concentration_min_mg_ml, d.concentration_max_mg_ml
    if lo is not None and concentration_mg_ml < lo:
        out.append(Finding("concentration", "block", f"bag concentration {concentration_mg_ml:g} mg/mL is below the "
                           f"plausible {lo:g} mg/mL{_tag(d, 'concentration_min_mg_ml')}: check the bag"))
    if hi is not None and concentration_mg_ml > hi:
        out.append(Finding("concentration", "block", f"bag concentration {concentration_mg_ml:g} mg/mL is above the "
                           f"plausible {hi:g} mg/mL{_tag(d, 'concentration_max_mg_ml')}: check the bag"))
    if bag_ml is not None and order_mg is not None:
        holds = bag_ml * concentration_mg_ml
        if holds + 1e-9 < order_mg:
            out.append(Finding("bag_content", "advisory", f"the bag holds {holds:.4g} mg ({bag_ml:g} mL x "
                               f"{concentration_mg_ml:g} mg/mL), less than the ordered {order_mg:.4g} mg"))
    return tuple(out)
