"""Infusion completion: when the ordered dose is in, by the record's own arithmetic.

Owns: ``order_from_dose`` (the order's dose in mg and its volume to be infused),
``completion_mono`` (the moment, in session mono seconds, at which the rate segments have
delivered the ordered mg), ``expected_end`` (the same, projected while the pump runs; None
while paused or at a zero rate), ``mono_to_t`` and ``Completion``.
Must not import: anything outside stdlib; segments and infusion states are read duck-typed
(``start_mono``, ``end_mono``, ``start_t``, ``rate_ml_h``, ``concentration_mg_ml``;
``segments``, ``order_mg``).

The pump delivers mL; mg = mL x concentration. A segment at ``rate_ml_h`` and ``c`` mg/mL
delivers ``rate_ml_h * c / 3600`` mg per second. Pauses are the gaps between segments; a
rate change closes one segment and opens the next, so a rate change recomputes the end.
No clinical number lives here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# mg below the order that still counts as "the order is in" (float rounding of the
# rate arithmetic only; a thousandth of a microgram is no dose)
_EPS_MG = 1e-9


@dataclass(frozen=True)
class Completion:
    """The moment the ordered dose is in: ``at_mono`` (session seconds), ``at_t`` (UTC)."""

    at_mono: float
    at_t: datetime | None
    dose_mg: float
    volume_ml: float


def order_from_dose(*, weight_kg: float | None, concentration_mg_ml: float, dose_mg_kg: float | None = None,
                    dose_mg: float | None = None, rate_mg_kg_h: float | None = None,
                    duration_min: float | None = None) -> tuple[float | None, float | None]:
    """(ordered mg, volume to be infused in mL) of an order; (None, None) when the order names
    no total (a rate with no duration). mg/kg x weight; or a fixed mg; or rate x duration."""
    mg: float | None = None
    if dose_mg is not None:
        mg = float(dose_mg)
    elif dose_mg_kg is not None and weight_kg:
        mg = float(dose_mg_kg) * float(weight_kg)
    elif rate_mg_kg_h is not None and duration_min is not None and weight_kg:
        mg = float(rate_mg_kg_h) * float(weight_kg) * float(duration_min) / 60.0
    if mg is None or not math.isfinite(mg) or mg <= 0 or not concentration_mg_ml or concentration_mg_ml <= 0:
        return None, None
    return mg, mg / float(concentration_mg_ml)


def _mg_per_s(seg: Any) -> float:
    return max(0.0, float(seg.rate_ml_h or 0.0)) * max(0.0, float(seg.concentration_mg_ml or 0.0)) / 3600.0


def completion_mono(segments: Iterable[Any], order_mg: float | None, *, project: bool = True) -> float | None:
    """The mono second at which ``segments`` have delivered ``order_mg``.

    Closed segments count whole; the open (still running) segment counts without end when
    ``project`` (the expected end), else not at all. None when the order is unknown or the
    segments never reach it (paused, zero rate)."""
    if order_mg is None or order_mg <= 0:
        return None
    given = 0.0
    for seg in segments:
        rate = _mg_per_s(seg)
        start = float(seg.start_mono)
        end = seg.end_mono
        if end is None and not project:
            return None
        if rate <= 0:
            continue
        need = order_mg - given
        if end is None:
            return start + need / rate
        seg_mg = rate * (float(end) - start)
        if given + seg_mg >= order_mg - _EPS_MG:
            return min(float(end), start + need / rate)
        given += seg_mg
    return None


def mono_to_t(segments: Iterable[Any], mono: float) -> datetime | None:
    """UTC time of a mono second, anchored on the last segment that starts at or before it."""
    anchor = None
    for seg in segments:
        if float(seg.start_mono) <= mono:
            anchor = seg
    if anchor is None or not isinstance(anchor.start_t, datetime):
        return None
    return anchor.start_t + timedelta(seconds=mono - float(anchor.start_mono))


def expected_end(infusion: Any) -> Completion | None:
    """The projected completion of a running infusion (None: no order, paused, zero rate,
    or already over)."""
    order = getattr(infusion, "order_mg", None)
    if getattr(infusion, "status", "") != "running" or not order:
        return None
    segs = tuple(infusion.segments)
    at = completion_mono(segs, order)
    if at is None:
        return None
    conc = float(getattr(infusion, "concentration_mg_ml", 0.0) or 0.0)
    return Completion(at_mono=at, at_t=mono_to_t(segs, at), dose_mg=order,
                      volume_ml=_volume(segs, at) if conc else 0.0)


def due(infusion: Any, now_mono: float) -> Completion | None:
    """The completion when it is due at ``now_mono`` (the clock has passed the computed
    end of a running infusion), else None. What the service's tick records."""
    c = expected_end(infusion)
    if c is None or now_mono < c.at_mono:
        return None
    return c


def _volume(segments: Iterable[Any], until_mono: float) -> float:
    ml = 0.0
    for seg in segments:
        start = float(seg.start_mono)
        end = until_mono if seg.end_mono is None else min(float(seg.end_mono), until_mono)
        if end > start:
            ml += float(seg.rate_ml_h or 0.0) * (end - start) / 3600.0
    return ml
