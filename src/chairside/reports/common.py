"""Shared reading of a session's events for the reports (HTML, FHIR, REMS).

Owns: the pure derivations the reports share (a report reads its session file with
:func:`chairside.store.read_session`): the session's state by folding its events
(:func:`record_state`; amendments come from ``SessionState.effective``/``current``, never
re-applied here), phase intervals, vital series from ``readings_recorded`` events, infusion
segments and totals (from the folded state's rate segments), time formatting; and the
typed look-ups a report needs: the protocol template (``chairside.domain.protocol``), the
scales (``chairside.domain.scales``) and the limits of a profile flattened into lines to
draw (``chairside.alarms.profile``). No TOML is parsed here.
Must not import: textual, serial, chairside.transport, chairside.service, chairside.ui.

Everything here is a pure function of a list of events (no clock, no I/O) except the
loading of data files (templates, limits, scales) through their owners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Sequence

from chairside.alarms.profile import LimitsError, LimitsProfile, load_profile
from chairside.domain.events import (
    DischargeAssessed,
    InfusionPaused,
    InfusionResumed,
    InfusionStarted,
    InfusionStopped,
    PhaseChanged,
    ReadingsRecorded,
    SessionClosed,
    SessionOpened,
)
from chairside.domain.protocol import ProtocolTemplate, TemplateError
from chairside.domain.protocol import load_template as _load_template
from chairside.domain.readings import Reading
from chairside.domain.scales import Scale, ScaleError, load_scales
from chairside.domain.state import SessionState, fold

DATA = Path(__file__).resolve().parents[1] / "data"


# --------------------------------------------------------------------------- loading


def load_template(name: str | None) -> ProtocolTemplate | None:
    """The protocol template named in the session; None when it is not known here (a report
    of a session recorded with another installation's template still prints)."""
    if not name:
        return None
    try:
        return _load_template(name)
    except TemplateError:
        return None


# --------------------------------------------------------------------------- scales


@cache
def scales() -> dict[str, Scale]:
    """The shipped scales (``chairside.domain.scales``); {} if the file cannot be read."""
    try:
        return load_scales()
    except (ScaleError, OSError):
        return {}


def scale_of(name: str | None) -> Scale | None:
    return scales().get((name or "").lower())


def scale_label(name: str) -> str:
    s = scale_of(name)
    return (s.short or s.title or name) if s else name


def scale_title(name: str) -> str:
    s = scale_of(name)
    return s.title if s else name


def scale_range(name: str) -> str:
    s = scale_of(name)
    return f"{s.range_text} {s.source}".strip() if s else ""


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class LimitLine:
    """One limit to draw: ``param`` crosses ``value`` in direction ``op`` ("high"/"low")."""

    param: str
    value: float
    op: str  # "high" (alarm at or above) or "low" (alarm at or below)
    priority: str
    phases: tuple[str, ...]  # phases it applies to; empty = all
    source_tag: str
    rule: str = ""
    symbol: str = ""  # the profile's operator as written (">=", ">", "<", "<=")

    @property
    def relative(self) -> bool:
        return "(relative)" in self.rule


_OPS = {">=": "high", ">": "high", "<=": "low", "<": "low"}


def limit_lines(profile: LimitsProfile) -> list[LimitLine]:
    """Every tier of every ladder of a validated profile, one line each.

    Vital parameters keep their name, scales are ``scale:<name>``; a relative ladder (rise
    over the baseline) has ``(relative)`` in its rule so the chart can leave it out (it is
    no fixed line) while the table lists it.
    """
    out: list[LimitLine] = []
    for lad in profile.ladder:
        param = lad.param if lad.param is not None else f"scale:{lad.scale}"
        rule = lad.name + (" (relative)" if lad.relative else "")
        for tier in lad.tiers:
            out.append(LimitLine(param=param, value=float(tier.limit), op=_OPS[lad.op], priority=tier.priority,
                                 phases=tuple(tier.phases), source_tag=tier.source, rule=rule, symbol=lad.op))
    return out


def load_limits(profile: str | None) -> tuple[list[LimitLine], str | None]:
    """Limits of the named profile (``chairside.alarms.profile``); with none named, ``standard``.

    Returns (limits, file name); ([], None) when the profile cannot be loaded — a named
    profile that is missing is never replaced by another one.
    """
    try:
        prof = load_profile(profile or "standard")
    except LimitsError:
        return [], None
    return limit_lines(prof), Path(prof.path).name


# --------------------------------------------------------------------------- the folded record


def seq_of(ev: Any, index: int) -> int:
    """The event's sequence number; events never stored (seq = -1) get their position + 1
    (as ``chairside.domain.state.fold`` numbers them)."""
    return ev.seq if ev.seq >= 0 else index + 1


def numbered(events: Sequence[Any]) -> list[tuple[int, Any]]:
    return [(seq_of(e, i), e) for i, e in enumerate(events)]


def record_state(events: Sequence[Any]) -> SessionState:
    """The session's state: its events folded (``chairside.domain.state.fold``). Numbered
    events are folded without their reading batches (a report takes no reading from the
    state, and a 4-hour record has 14,400 of them); unnumbered ones all, for their numbers."""
    if all(e.seq >= 0 for e in events):
        return fold(e for e in events if e.kind != "readings_recorded")
    return fold(events)


def current(state: SessionState, seq: int, ev: Any) -> Any:
    """The event at ``seq`` as amended (``SessionState.current``); a reading batch as it is."""
    return state.current(seq) if seq in state.events else ev


# --------------------------------------------------------------------------- session basics


def opened(state: SessionState) -> SessionOpened | None:
    """The session_opened event as amended."""
    return state.current(state.session.opened_seq) if state.session is not None else None


def session_start(events: Sequence[Any]) -> datetime | None:
    return events[0].t if events else None


def session_end(events: Sequence[Any]) -> datetime | None:
    """End of monitoring: the discharge, else the close, else the last event or reading."""
    for e in events:
        if isinstance(e, DischargeAssessed) and e.discharged:
            return e.t
    for e in events:
        if isinstance(e, PhaseChanged) and e.to_phase == "discharged":
            return e.t
    for e in events:
        if isinstance(e, SessionClosed):
            return e.t
    return last_time(events)


def last_time(events: Sequence[Any]) -> datetime | None:
    t = None
    for e in events:
        cands = [e.t]
        if isinstance(e, ReadingsRecorded):
            cands += [r.time for r in e.readings if r.time is not None]
        for c in cands:
            if t is None or c > t:
                t = c
    return t


@dataclass(frozen=True)
class PhaseSpan:
    phase: str
    start: datetime
    end: datetime | None


def phase_spans(events: Sequence[Any]) -> list[PhaseSpan]:
    """Intervals of each phase, from the first event (pre-infusion) through phase changes."""
    if not events:
        return []
    spans: list[PhaseSpan] = []
    cur, start = "pre_infusion", events[0].t
    for e in events:
        if isinstance(e, PhaseChanged):
            spans.append(PhaseSpan(cur, start, e.t))
            cur, start = e.to_phase, e.t
    spans.append(PhaseSpan(cur, start, None))
    return [s for s in spans if s.end is None or s.end > s.start]


def phase_at(spans: Sequence[PhaseSpan], t: datetime) -> str | None:
    for s in spans:
        if s.start <= t and (s.end is None or t < s.end):
            return s.phase
    return None


# --------------------------------------------------------------------------- vitals


@dataclass(frozen=True)
class Point:
    t: datetime
    value: float | None
    reading: Reading
    seq: int


def reading_time(r: Reading, ev: Any) -> datetime:
    return r.time or ev.t


def all_readings(events: Sequence[Any]) -> list[tuple[int, Any, Reading]]:
    """(event seq, event, reading) for every reading of every ``readings_recorded`` event."""
    out = []
    for i, e in enumerate(events):
        if isinstance(e, ReadingsRecorded):
            s = seq_of(e, i)
            for r in e.readings:
                out.append((s, e, r))
    return out


def series_key(r: Reading) -> str:
    """Chart series of a reading: ``pr`` is kept apart from ``hr`` (ECG)."""
    return r.param


def vital_series(events: Sequence[Any], readings: Sequence[tuple[int, Any, Reading]] | None = None,
                 ) -> dict[str, list[Point]]:
    """Every reading as a point of its parameter's series, in time order (``readings``: what
    :func:`all_readings` gave, when the caller has it)."""
    out: dict[str, list[Point]] = {}
    for s, e, r in (readings if readings is not None else all_readings(events)):
        value = r.value if (r.valid and r.value is not None) else None
        out.setdefault(series_key(r), []).append(Point(reading_time(r, e), value, r, s))
    for v in out.values():
        v.sort(key=lambda p: p.t)
    return out


@dataclass(frozen=True)
class BP:
    t: datetime
    sys: float | None
    dia: float | None
    map: float | None
    seq: int
    origin: str = "device"


def bp_readings(events: Sequence[Any], readings: Sequence[tuple[int, Any, Reading]] | None = None) -> list[BP]:
    """NIBP measurements grouped by their time (systolic, diastolic and mean together)."""
    groups: dict[datetime, dict[str, Any]] = {}
    for s, e, r in (readings if readings is not None else all_readings(events)):
        if r.param not in ("nibp_sys", "nibp_dia", "nibp_map"):
            continue
        t = reading_time(r, e)
        g = groups.setdefault(t, {"seq": s, "origin": r.origin})
        if r.valid and r.value is not None:
            g[r.param] = r.value
    out = [BP(t, g.get("nibp_sys"), g.get("nibp_dia"), g.get("nibp_map"), g["seq"], g["origin"])
           for t, g in groups.items()]
    out = [b for b in out if b.sys is not None or b.dia is not None]
    out.sort(key=lambda b: b.t)
    return out


# --------------------------------------------------------------------------- infusion


@dataclass
class Segment:
    """A stretch at one rate: from a start/resume/rate change to the next change, pause or stop."""

    drug: str
    start: datetime
    end: datetime | None
    rate_mg_kg_h: float
    rate_ml_h: float
    concentration_mg_ml: float
    reason: str
    seq: int
    kind: str  # the event that began it
    route: str = "IV"
    lot: str = ""

    @property
    def hours(self) -> float:
        if self.end is None:
            return 0.0
        return max(0.0, (self.end - self.start).total_seconds() / 3600.0)

    def mg(self, weight_kg: float | None = None) -> float:
        """mg delivered: pump volume × bag concentration (as ``chairside.domain.dose.totals``)."""
        return self.rate_ml_h * self.hours * self.concentration_mg_ml

    def ml(self) -> float:
        return self.rate_ml_h * self.hours


@dataclass
class InfusionRecord:
    segments: list[Segment] = field(default_factory=list)
    pauses: list[tuple[datetime, datetime | None, str, int]] = field(default_factory=list)
    start: InfusionStarted | None = None
    stop: InfusionStopped | None = None
    weight_kg: float | None = None

    @property
    def total_mg(self) -> float:
        return sum(s.mg() for s in self.segments)

    @property
    def total_ml(self) -> float:
        return sum(s.ml() for s in self.segments)

    @property
    def total_mg_kg(self) -> float | None:
        return self.total_mg / self.weight_kg if self.weight_kg else None

    @property
    def running_minutes(self) -> float:
        return sum(s.hours for s in self.segments) * 60.0


def infusion_record(events: Sequence[Any], state: SessionState | None = None) -> InfusionRecord:
    """Segments (the folded state's rate segments, with the reason and drug of the event that
    began each), pauses and totals; amendments are the state's. A segment still running at
    the end of the record is counted up to the end of monitoring."""
    state = state if state is not None else record_state(events)
    inf = state.infusion
    rec = InfusionRecord(weight_kg=state.weight_kg)
    end_time = session_end(events)
    for seg in inf.segments:
        began = state.current(seg.start_seq)
        end = seg.end_t if seg.end_t is not None else (end_time if end_time and end_time > seg.start_t else None)
        rec.segments.append(Segment(getattr(began, "drug", "") or inf.drug, seg.start_t, end, seg.rate_mg_kg_h,
                                    seg.rate_ml_h, seg.concentration_mg_ml, getattr(began, "reason", ""),
                                    seg.start_seq, began.kind, inf.route or "IV", inf.lot))
    paused_at: tuple[datetime, str, int] | None = None
    for eff in state.effective_events():
        e = eff.current
        if isinstance(e, InfusionStarted):
            rec.start = rec.start or e
        elif isinstance(e, InfusionPaused):
            paused_at = (e.t, e.reason, eff.seq)
        elif isinstance(e, (InfusionResumed, InfusionStopped)):
            if paused_at:
                rec.pauses.append((paused_at[0], e.t, paused_at[1], paused_at[2]))
                paused_at = None
            if isinstance(e, InfusionStopped):
                rec.stop = e
    if paused_at:
        rec.pauses.append((paused_at[0], None, paused_at[1], paused_at[2]))
    return rec


# --------------------------------------------------------------------------- formatting


def fmt_time(t: datetime | None, seconds: bool = False) -> str:
    if t is None:
        return "—"
    return t.strftime("%H:%M:%S" if seconds else "%H:%M")


def fmt_num(v: float | None, nd: int = 1) -> str:
    if v is None:
        return "—"
    if float(v).is_integer() and nd <= 1:
        return str(int(v))
    return f"{v:.{nd}f}".rstrip("0").rstrip(".") if nd > 0 else f"{v:.0f}"


def minutes_between(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return (b - a).total_seconds() / 60.0
