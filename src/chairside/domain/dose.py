"""Dose arithmetic: pump rates from an order, running totals through rate changes and pauses,
and the checks that refuse impossible input.

Owns: ``plan_from_dose`` (mg/kg over a duration -> mg/kg/h, mg/h, mL/h, total mg and mL),
``rate_from_order`` (mg/kg/h -> mg/h, mL/h), ``rate_from_ml_h``, ``totals`` (mg, mg/kg, mL
delivered up to a time, from the session state's rate segments), ``check_weight``,
``check_concentration``, ``check_duration``, ``check_dose`` (usual range / hard maximum of a
protocol template) and the errors ``DoseError`` / ``NeedsReason``.
Must not import: anything outside stdlib and pydantic; of chairside only ``chairside.domain``
(the state is read duck-typed, so this module does not import ``state``).

Bounds come from ``data/safety.toml`` (weight 20-300 kg [S]) and the template's ``dosing``
section; no clinical number is a literal here. The pump delivers mL: mg = mL x concentration.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

SAFETY_FILE = Path(__file__).resolve().parents[1] / "data" / "safety.toml"


class DoseError(ValueError):
    """Impossible or refused dose input; the message says what and why."""


class NeedsReason(DoseError):
    """The dose is above the template's usual range: allowed only with a recorded reason."""

    def __init__(self, message: str, *, value: float, usual_max: float, unit: str) -> None:
        super().__init__(message)
        self.value = value
        self.usual_max = usual_max
        self.unit = unit


# ---------------------------------------------------------------------------- safety data


@dataclass(frozen=True)
class Safety:
    weight_min_kg: float
    weight_max_kg: float
    weight_min_source: str
    weight_max_source: str


def load_safety(path: str | Path | None = None) -> Safety:
    p = Path(path) if path is not None else SAFETY_FILE
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DoseError(f"{p.name}: cannot load: {exc}") from None
    w = doc.get("weight")
    if not isinstance(w, dict):
        raise DoseError(f"{p.name}: weight: required table")
    out: dict[str, Any] = {}
    for key in ("min_kg", "max_kg"):
        v, tag = w.get(key), w.get(f"{key}_source")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise DoseError(f"{p.name}: weight.{key}: must be a number > 0")
        if not isinstance(tag, str) or not tag.startswith("["):
            raise DoseError(f"{p.name}: weight.{key}_source: a source tag is required")
        out[key] = (float(v), tag)
    if out["min_kg"][0] >= out["max_kg"][0]:
        raise DoseError(f"{p.name}: weight.max_kg: must be > min_kg")
    return Safety(out["min_kg"][0], out["max_kg"][0], out["min_kg"][1], out["max_kg"][1])


@lru_cache(maxsize=1)
def safety() -> Safety:
    """The shipped safety bounds."""
    return load_safety()


# ---------------------------------------------------------------------------- checks


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise DoseError(f"{what} must be a number, got {v!r}")
    return float(v)


def check_weight(weight_kg: Any, bounds: Safety | None = None) -> float:
    b = bounds or safety()
    w = _number(weight_kg, "weight")
    if not b.weight_min_kg <= w <= b.weight_max_kg:
        raise DoseError(
            f"weight {w:g} kg is outside {b.weight_min_kg:g}–{b.weight_max_kg:g} kg "
            f"{b.weight_min_source} (data/safety.toml); check the weight and its unit"
        )
    return w


def check_concentration(concentration_mg_ml: Any) -> float:
    c = _number(concentration_mg_ml, "bag concentration")
    if c <= 0:
        raise DoseError(f"bag concentration must be > 0 mg/mL, got {c:g}")
    return c


def check_duration(duration_min: Any) -> float:
    d = _number(duration_min, "duration")
    if d <= 0:
        raise DoseError(f"duration must be > 0 min, got {d:g}")
    return d


# ---------------------------------------------------------------------------- rates


@dataclass(frozen=True)
class Rate:
    """A pump rate in every unit the record shows."""

    mg_kg_h: float
    mg_h: float
    ml_h: float
    concentration_mg_ml: float
    weight_kg: float


@dataclass(frozen=True)
class DosePlan:
    """A dose in mg/kg given over a duration."""

    weight_kg: float
    dose_mg_kg: float
    duration_min: float
    concentration_mg_ml: float
    total_mg: float
    total_ml: float
    rate: Rate


def rate_from_order(weight_kg: float, rate_mg_kg_h: float, concentration_mg_ml: float) -> Rate:
    """An order in mg/kg/h -> mg/h and mL/h (mL/h = mg/h / concentration)."""
    w = check_weight(weight_kg)
    c = check_concentration(concentration_mg_ml)
    r = _number(rate_mg_kg_h, "rate")
    if r < 0:
        raise DoseError(f"rate must be >= 0 mg/kg/h, got {r:g}")
    mg_h = r * w
    return Rate(mg_kg_h=r, mg_h=mg_h, ml_h=mg_h / c, concentration_mg_ml=c, weight_kg=w)


def rate_from_ml_h(weight_kg: float, rate_ml_h: float, concentration_mg_ml: float) -> Rate:
    """A pump rate in mL/h -> mg/h and mg/kg/h."""
    w = check_weight(weight_kg)
    c = check_concentration(concentration_mg_ml)
    v = _number(rate_ml_h, "rate")
    if v < 0:
        raise DoseError(f"rate must be >= 0 mL/h, got {v:g}")
    mg_h = v * c
    return Rate(mg_kg_h=mg_h / w, mg_h=mg_h, ml_h=v, concentration_mg_ml=c, weight_kg=w)


def plan_from_dose(weight_kg: float, dose_mg_kg: float, duration_min: float, concentration_mg_ml: float) -> DosePlan:
    """mg/kg over ``duration_min`` -> rate (mg/kg/h, mg/h, mL/h) and totals (mg, mL).

    70 kg, 0.5 mg/kg over 40 min at 0.35 mg/mL -> 0.75 mg/kg/h, 35 mg, 100 mL, 150 mL/h.
    """
    w = check_weight(weight_kg)
    c = check_concentration(concentration_mg_ml)
    d = check_duration(duration_min)
    dose = _number(dose_mg_kg, "dose")
    if dose <= 0:
        raise DoseError(f"dose must be > 0 mg/kg, got {dose:g}")
    total_mg = dose * w
    hours = d / 60.0
    rate = Rate(mg_kg_h=dose / hours, mg_h=total_mg / hours, ml_h=total_mg / c / hours, concentration_mg_ml=c, weight_kg=w)
    return DosePlan(weight_kg=w, dose_mg_kg=dose, duration_min=d, concentration_mg_ml=c,
                    total_mg=total_mg, total_ml=total_mg / c, rate=rate)


def fill_rates(rate_mg_kg_h: float, rate_ml_h: float, concentration_mg_ml: float | None,
               weight_kg: float | None) -> tuple[float, float]:
    """Complete a (mg/kg/h, mL/h) pair when one of them is missing (<= 0), where possible.

    Used by the session state to turn a recorded rate event into a segment; no checks (the
    event is already recorded), nothing invented when concentration or weight is missing.
    """
    mgkh, mlh = float(rate_mg_kg_h or 0.0), float(rate_ml_h or 0.0)
    if concentration_mg_ml and concentration_mg_ml > 0 and weight_kg and weight_kg > 0:
        if mlh <= 0 < mgkh:
            mlh = mgkh * weight_kg / concentration_mg_ml
        elif mgkh <= 0 < mlh:
            mgkh = mlh * concentration_mg_ml / weight_kg
    return mgkh, mlh


# ---------------------------------------------------------------------------- template checks


@dataclass(frozen=True)
class DoseCheck:
    """The outcome of :func:`check_dose` for an accepted dose."""

    value: float
    unit: str
    above_usual: bool
    below_usual: bool
    reason: str
    usual_min: float
    usual_max: float
    hard_max: float
    sources: dict[str, str]


def check_dose(template: Any, value: Any, *, reason: str = "") -> DoseCheck:
    """Check ``value`` (in the template's dosing unit: mg/kg, mg/kg/h or mg) against its
    usual range and hard maximum.

    Above ``hard_max``: :class:`DoseError`. Above ``usual_max`` without a reason:
    :class:`NeedsReason`. Below ``usual_min`` is allowed (flagged ``below_usual``).
    ``template`` is a ``ProtocolTemplate`` or its ``dosing`` section.
    """
    dosing = getattr(template, "dosing", template)
    unit = dosing.unit
    v = _number(value, "dose")
    if v <= 0:
        raise DoseError(f"dose must be > 0 {unit}, got {v:g}")
    src = dosing.sources
    if v > dosing.hard_max:
        raise DoseError(
            f"dose {v:g} {unit} is above the template's hard maximum {dosing.hard_max:g} {unit} "
            f"{src.get('hard_max', '')}".rstrip() + "; refused"
        )
    above = v > dosing.usual_max
    if above and not reason.strip():
        raise NeedsReason(
            f"dose {v:g} {unit} is above the usual range {dosing.usual_min:g}–{dosing.usual_max:g} {unit} "
            f"{src.get('usual_max', '')}".rstrip() + "; record a reason to continue",
            value=v, usual_max=dosing.usual_max, unit=unit,
        )
    return DoseCheck(value=v, unit=unit, above_usual=above, below_usual=v < dosing.usual_min,
                     reason=reason.strip() if above else "", usual_min=dosing.usual_min,
                     usual_max=dosing.usual_max, hard_max=dosing.hard_max,
                     sources={k: src[k] for k in ("usual_min", "usual_max", "hard_max") if k in src})


# ---------------------------------------------------------------------------- totals


@dataclass(frozen=True)
class Totals:
    """What the pump has delivered up to a time. ``mg_kg`` is None without a weight."""

    mg: float
    mg_kg: float | None
    ml: float
    infusing_s: float


def _segment_span(seg: Any, at: float | datetime) -> float:
    """Seconds of ``seg`` that lie before ``at`` (mono seconds or a UTC datetime)."""
    if isinstance(at, datetime):
        start, end = seg.start_t, seg.end_t
        stop = at if end is None or end > at else end
        return max(0.0, (stop - start).total_seconds())
    start, end = seg.start_mono, seg.end_mono
    stop = at if end is None or end > at else end
    return max(0.0, float(stop) - float(start))


def totals(source: Any, at: float | datetime, weight_kg: float | None = None) -> Totals:
    """Running totals (mg, mg/kg, mL) up to ``at`` through rate changes and pauses.

    ``source`` is a ``SessionState`` (its infusion segments and effective weight are used) or
    an iterable of rate segments (give ``weight_kg`` for mg/kg). ``at`` is a monotonic offset
    (seconds since the session opened, as in ``Event.mono``) or a UTC datetime. An open
    segment (the pump still running) counts up to ``at``.
    """
    infusion = getattr(source, "infusion", None)
    if infusion is not None:
        segments: Iterable[Any] = infusion.segments
        if weight_kg is None:
            weight_kg = getattr(source, "weight_kg", None)
        # the ordered dose is the most the pump gives: past the computed end (before the
        # service's tick records infusion_completed) the totals stop at the order
        from chairside.domain.completion import completion_mono, mono_to_t

        end = completion_mono(infusion.segments, getattr(infusion, "order_mg", None))
        if end is not None:
            if isinstance(at, datetime):
                end_t = mono_to_t(infusion.segments, end)
                if end_t is not None and at > end_t:
                    at = end_t
            elif at > end:
                at = end
    else:
        segments = source
    ml = mg = secs = 0.0
    for seg in segments:
        s = _segment_span(seg, at)
        if s <= 0:
            continue
        seg_ml = seg.rate_ml_h * s / 3600.0
        ml += seg_ml
        mg += seg_ml * seg.concentration_mg_ml
        secs += s
    mg_kg = mg / weight_kg if weight_kg else None
    return Totals(mg=mg, mg_kg=mg_kg, ml=ml, infusing_s=secs)
