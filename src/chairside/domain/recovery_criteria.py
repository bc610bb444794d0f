"""Discharge criteria of recovery: sedation, dissociation and respiratory depression
resolved, read from the template's ``[discharge]`` section, and the end of dosing they are
counted from.

Owns: ``dosing_end`` (when the infusion ended, or the last device was given),
``recovery_reference`` (what the minimum-recovery clock counts from: the end, or the start
/ first device, per template), ``unmet_recovery_criteria`` (each unmet criterion named,
with the number it needs and that number's source tag) and ``baseline_score``.
Must not import: anything outside stdlib; of chairside only ``chairside.domain``.

Rules (issue 14 item 1): only observations recorded after dosing ended count; the latest
score of each scale counts; a missing required score (MOAA/S when ``moaas_required`` is
set, CADSS when ``cadss_max`` is set) blocks. RASS counts when it was recorded after the
end and the template sets ``rass_min``/``rass_max``. CADSS may be "back to baseline" when
``cadss_or_baseline``. Respiratory depression resolved: the latest valid SpO2 at or above
``spo2_min``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any


def dosing_end(state: Any) -> datetime | None:
    """When dosing ended: the infusion's stop (or completion), or the last fixed-dose device
    once the planned dose is in (esketamine). None while dosing goes on or never began."""
    inf = state.infusion
    if inf.status == "stopped" and inf.stopped_t is not None:
        return inf.stopped_t
    dev = getattr(state, "device_doses", None)
    if dev is not None and dev.count and dev.last is not None:
        if dev.planned_mg is None or dev.total_mg >= dev.planned_mg - 1e-9 or state.phase in ("recovery", "discharged"):
            return dev.last.t
    return None


def dosing_start(state: Any) -> datetime | None:
    dev = getattr(state, "device_doses", None)
    if dev is not None and dev.first is not None:
        return dev.first.t
    return state.infusion.started_t


def recovery_reference(template: Any, state: Any) -> datetime | None:
    """What the minimum recovery counts from (``recovery.counted_from``): the dosing start
    (first device) or its end; None when that has not happened."""
    if template.recovery.counted_from == "start":
        return dosing_start(state)
    return dosing_end(state)


def _latest(observations: Iterable[Any], scale: str, after: datetime) -> Any:
    found = None
    for ob in observations:
        if ob.scale == scale and ob.score is not None and ob.t >= after:
            if found is None or ob.t >= found.t:
                found = ob
    return found


def baseline_score(state: Any, scale: str) -> float | None:
    """The patient's own baseline on a scale: the baseline record's value, else the latest
    observation before dosing began."""
    b = state.baseline
    v = getattr(b, scale, None) if b is not None else None
    if v is not None:
        return float(v)
    start = dosing_start(state)
    best = None
    for ob in state.observations:
        if ob.scale == scale and ob.score is not None and (start is None or ob.t < start):
            best = ob
    return None if best is None else float(best.score)


def _signed(v: float) -> str:
    return "0" if v == 0 else f"{v:+g}"


def _tag(section: Any, field: str) -> str:
    t = section.source(field)
    return f" {t}" if t else ""


def unmet_recovery_criteria(template: Any, state: Any, *, spo2: float | None = None) -> tuple[str, ...]:
    """Each unmet sedation / dissociation / respiratory criterion, as a sentence. ``spo2``
    is the latest valid SpO2 (for ``respiratory_depression``)."""
    d = template.discharge
    end = dosing_end(state)
    out: list[str] = []
    wants_sed = "sedation" in d.resolved or d.moaas_required is not None
    wants_dis = "dissociation" in d.resolved or d.cadss_max is not None
    if end is None:
        if wants_sed or wants_dis:
            out.append("dosing has not ended: sedation and dissociation are assessed after it")
        return tuple(out)
    obs = state.observations
    when = f"{end:%H:%M}"
    if d.moaas_required is not None:
        m = _latest(obs, "moaas", end)
        need = f"needs {d.moaas_required}{_tag(d, 'moaas_required')}"
        if m is None:
            out.append(f"sedation: no MOAA/S recorded since dosing ended at {when} ({need})")
        elif m.score < d.moaas_required:
            out.append(f"sedation: MOAA/S {m.score:g} at {m.t:%H:%M} ({need})")
    if "sedation" in d.resolved and (d.rass_min is not None or d.rass_max is not None):
        r = _latest(obs, "rass", end)
        if r is not None:
            lo = d.rass_min if d.rass_min is not None else r.score
            hi = d.rass_max if d.rass_max is not None else r.score
            if not lo <= r.score <= hi:
                rng = f"{_signed(lo)} to {_signed(hi)}{_tag(d, 'rass_max' if d.rass_max is not None else 'rass_min')}"
                out.append(f"agitation/sedation: RASS {_signed(r.score)} at {r.t:%H:%M} (needs {rng})")
    if d.cadss_max is not None:
        c = _latest(obs, "cadss", end)
        need = f"needs <= {d.cadss_max}{_tag(d, 'cadss_max')}"
        base = baseline_score(state, "cadss") if d.cadss_or_baseline else None
        if base is not None:
            need += f" or back to the baseline {base:g}"
        if c is None:
            out.append(f"dissociation: no CADSS recorded since dosing ended at {when} ({need})")
        elif c.score > d.cadss_max and not (base is not None and c.score <= base):
            out.append(f"dissociation: CADSS {c.score:g} at {c.t:%H:%M} ({need})")
    if "respiratory_depression" in d.resolved and d.spo2_min is not None:
        if spo2 is None:
            out.append("respiratory depression: no current SpO2 reading")
        elif spo2 < d.spo2_min:
            out.append(f"respiratory depression: SpO2 {spo2:g} % (needs >= {d.spo2_min:g} %{_tag(d, 'spo2_min')})")
    return tuple(out)
