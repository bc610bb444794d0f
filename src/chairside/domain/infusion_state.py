"""The infusion's part of the session state: the pump's rate segments and their rules.

Owns: ``InfusionState``, ``RateSegment``, ``INFUSION_KINDS`` and ``infusion_step`` (start,
rate change, pause, resume, stop, completion; what each may follow). ``chairside.domain.state``
folds a session with it, and replays it from the amended events when one is corrected.
Must not import: anything outside stdlib and pydantic; of chairside only ``chairside.domain``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from chairside.domain.dose import fill_rates
from chairside.domain.state_error import StateError, event_label

InfusionStatus = Literal["not_started", "running", "paused", "stopped"]

INFUSION_KINDS = frozenset(
    {"infusion_started", "infusion_rate_changed", "infusion_paused", "infusion_resumed", "infusion_stopped",
     "infusion_completed"}
)


@dataclass(frozen=True)
class RateSegment:
    """The pump running at one rate from ``start`` to ``end`` (None: still running)."""

    start_t: datetime
    start_mono: float
    end_t: datetime | None
    end_mono: float | None
    rate_mg_kg_h: float
    rate_ml_h: float
    concentration_mg_ml: float
    start_seq: int
    end_seq: int | None = None

    @property
    def open(self) -> bool:
        return self.end_mono is None

    def close(self, t: datetime, mono: float, seq: int) -> RateSegment:
        return replace(self, end_t=t, end_mono=mono, end_seq=seq)


@dataclass(frozen=True)
class InfusionState:
    status: InfusionStatus = "not_started"
    drug: str = ""
    route: str = ""
    concentration_mg_ml: float | None = None
    rate_mg_kg_h: float = 0.0  # the current (or, when paused/stopped, last) ordered rate
    rate_ml_h: float = 0.0
    dose_mg_kg: float | None = None
    duration_min: float | None = None
    lot: str = ""
    segments: tuple[RateSegment, ...] = ()
    started_t: datetime | None = None  # first start
    started_mono: float | None = None
    stopped_t: datetime | None = None  # last stop
    stopped_mono: float | None = None
    last_start_or_increase_mono: float | None = None  # for the tightened BP cadence
    rate_changes: int = 0
    pauses: int = 0
    order_mg: float | None = None  # the ordered dose in mg (None: a rate order with no total)
    order_ml: float | None = None  # the order's volume to be infused
    paused_t: datetime | None = None  # the last pause (the resume gate wants a BP after it)
    paused_mono: float | None = None
    completed_seq: int | None = None  # infusion_completed: the ordered dose is in
    pump_stop_confirmed: bool = False  # the nurse's Stop after completion

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def completed(self) -> bool:
        return self.completed_seq is not None


def infusion_step(inf: InfusionState, ev: Any, seq: int, weight: float | None) -> InfusionState:
    """The infusion after one of its events (``INFUSION_KINDS``); raises ``StateError``."""
    kind = ev.kind
    mono, t = float(ev.mono), ev.t
    segs = inf.segments
    if segs and segs[-1].open and mono < segs[-1].start_mono:
        raise StateError(f"{event_label(ev, seq)}: time goes back before the running segment (mono {mono:g} < {segs[-1].start_mono:g})")

    def open_segment(mgkh: float, mlh: float, conc: float) -> RateSegment:
        return RateSegment(start_t=t, start_mono=mono, end_t=None, end_mono=None, rate_mg_kg_h=mgkh,
                           rate_ml_h=mlh, concentration_mg_ml=conc, start_seq=seq)

    def close_last() -> tuple[RateSegment, ...]:
        if segs and segs[-1].open:
            return (*segs[:-1], segs[-1].close(t, mono, seq))
        return segs

    if kind == "infusion_started":
        if inf.status in ("running", "paused"):
            raise StateError(f"{event_label(ev, seq)}: the infusion is already {inf.status}")
        if not ev.concentration_mg_ml or ev.concentration_mg_ml <= 0:
            raise StateError(f"{event_label(ev, seq)}: bag concentration must be > 0 mg/mL")
        conc = ev.concentration_mg_ml
        mgkh, mlh = fill_rates(ev.rate_mg_kg_h, ev.rate_ml_h, conc, weight)
        return replace(
            inf, status="running", drug=ev.drug, route=ev.route, concentration_mg_ml=conc,
            rate_mg_kg_h=mgkh, rate_ml_h=mlh, dose_mg_kg=ev.dose_mg_kg, duration_min=ev.duration_min,
            lot=ev.lot, segments=(*segs, open_segment(mgkh, mlh, conc)),
            order_mg=ev.dose_mg, order_ml=ev.volume_to_infuse_ml,
            started_t=inf.started_t or t, started_mono=inf.started_mono if inf.started_mono is not None else mono,
            last_start_or_increase_mono=mono,
        )
    if kind == "infusion_rate_changed":
        if inf.status not in ("running", "paused"):
            raise StateError(f"{event_label(ev, seq)}: no infusion to change (status {inf.status})")
        conc = ev.concentration_mg_ml if ev.concentration_mg_ml and ev.concentration_mg_ml > 0 else inf.concentration_mg_ml
        mgkh, mlh = fill_rates(ev.rate_mg_kg_h, ev.rate_ml_h, conc, weight)
        increase = _is_increase(inf, mgkh, mlh)
        new = replace(inf, concentration_mg_ml=conc, rate_mg_kg_h=mgkh, rate_ml_h=mlh,
                      rate_changes=inf.rate_changes + 1)
        if inf.status == "running":
            new = replace(new, segments=(*close_last(), open_segment(mgkh, mlh, conc or 0.0)))
            if increase:
                new = replace(new, last_start_or_increase_mono=mono)
        return new
    if kind == "infusion_paused":
        if inf.status != "running":
            raise StateError(f"{event_label(ev, seq)}: the infusion is not running (status {inf.status})")
        return replace(inf, status="paused", segments=close_last(), pauses=inf.pauses + 1, paused_t=t,
                       paused_mono=mono)
    if kind == "infusion_resumed":
        if inf.status != "paused":
            raise StateError(f"{event_label(ev, seq)}: the infusion is not paused (status {inf.status})")
        conc = ev.concentration_mg_ml if ev.concentration_mg_ml and ev.concentration_mg_ml > 0 else inf.concentration_mg_ml
        if (ev.rate_mg_kg_h or 0) > 0 or (ev.rate_ml_h or 0) > 0:
            mgkh, mlh = fill_rates(ev.rate_mg_kg_h, ev.rate_ml_h, conc, weight)
        else:
            mgkh, mlh = inf.rate_mg_kg_h, inf.rate_ml_h
        new = replace(inf, status="running", concentration_mg_ml=conc, rate_mg_kg_h=mgkh, rate_ml_h=mlh,
                      segments=(*segs, open_segment(mgkh, mlh, conc or 0.0)))
        if _is_increase(inf, mgkh, mlh):
            new = replace(new, last_start_or_increase_mono=mono)
        return new
    if kind == "infusion_stopped":
        if inf.completed and not inf.pump_stop_confirmed:
            return replace(inf, pump_stop_confirmed=True)  # the nurse confirms the pump stopped
        if inf.status not in ("running", "paused"):
            raise StateError(f"{event_label(ev, seq)}: no infusion to stop (status {inf.status})")
        return replace(inf, status="stopped", segments=close_last(), stopped_t=t, stopped_mono=mono)
    if kind == "infusion_completed":
        if inf.status != "running" or not segs or not segs[-1].open:
            raise StateError(f"{event_label(ev, seq)}: the infusion is not running (status {inf.status})")
        at, at_t = float(ev.at_mono), ev.at_t
        if at < segs[-1].start_mono:
            raise StateError(f"{event_label(ev, seq)}: completion at mono {at:g} is before the running segment "
                             f"(mono {segs[-1].start_mono:g})")
        done = (*segs[:-1], segs[-1].close(at_t, at, seq))
        return replace(inf, status="stopped", segments=done, stopped_t=at_t, stopped_mono=at, completed_seq=seq)
    raise AssertionError(kind)  # pragma: no cover


def _is_increase(inf: InfusionState, mgkh: float, mlh: float) -> bool:
    if mgkh > 0 and inf.rate_mg_kg_h > 0:
        return mgkh > inf.rate_mg_kg_h
    return mlh > inf.rate_ml_h
