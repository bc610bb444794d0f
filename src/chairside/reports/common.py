"""Shared reading of a session's events for the reports (HTML, FHIR, REMS).

Owns: the pure derivations the reports share (a report reads its session file with
:func:`chairside.store.read_session`): amendments applied beside their originals, phase
intervals, vital series from ``readings_recorded`` events, infusion segments and totals,
a one-line summary of every event kind, time formatting.
Must not import: textual, serial, chairside.transport, chairside.alarms, chairside.service.

Everything here is a pure function of a list of events (no clock, no I/O) except the
loading of data files (templates, limits, scales).
"""

from __future__ import annotations

import importlib
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from chairside.domain.events import (
    Amendment,
    DischargeAssessed,
    InfusionPaused,
    InfusionRateChanged,
    InfusionResumed,
    InfusionStarted,
    InfusionStopped,
    PhaseChanged,
    ReadingsRecorded,
    SessionClosed,
    SessionOpened,
)
from chairside.domain.describe import param_label  # noqa: F401 - re-exported for the reports
from chairside.domain.readings import Reading

DATA = Path(__file__).resolve().parents[1] / "data"


# --------------------------------------------------------------------------- loading


def load_template(name: str | None) -> Any | None:
    """The protocol template named in the session, or None when unknown/unavailable."""
    if not name:
        return None
    try:
        mod = importlib.import_module("chairside.domain.protocol")
        return mod.load_template(name)
    except Exception:  # noqa: BLE001 - a report must still print without its template
        return None


def tget(obj: Any, *names: str, default: Any = None) -> Any:
    """Get the first present attribute/key among ``names`` from a template-like object."""
    if obj is None:
        return default
    for name in names:
        cur = obj
        ok = True
        for part in name.split("."):
            if isinstance(cur, dict):
                if part in cur:
                    cur = cur[part]
                else:
                    ok = False
                    break
            elif hasattr(cur, part):
                cur = getattr(cur, part)
            else:
                ok = False
                break
        if ok and cur is not None:
            return cur
    return default


# --------------------------------------------------------------------------- scales


def scale_info() -> dict[str, dict[str, Any]]:
    """Scales from ``data/scales.toml`` (title, short name, range, source tag); {} if absent."""
    f = DATA / "scales.toml"
    try:
        doc = tomllib.loads(f.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {k.lower(): v for k, v in doc.items() if isinstance(v, dict)}


def scale_label(name: str, info: dict[str, dict[str, Any]]) -> str:
    s = info.get((name or "").lower())
    return str(s.get("short") or s.get("title") or name) if s else name


def scale_range(name: str, info: dict[str, dict[str, Any]]) -> str:
    s = info.get((name or "").lower())
    if not s or not isinstance(s.get("min"), (int, float)):
        return ""
    hi = s.get("max")
    rng = f"{s['min']:g}–{hi:g}" if isinstance(hi, (int, float)) else f"≥{s['min']:g}"
    return f"{rng} {s.get('source', '')}".strip()


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


def parse_limits(doc: dict[str, Any]) -> list[LimitLine]:
    """Limits of a ``chairside-limits/1`` profile: every tier of every ``[[ladder]]``.

    Absolute limits of vital parameters (``param``) and of scales (``scale``) are returned;
    relative ladders (rise from baseline) are returned with ``relative`` in their rule name
    so the chart can leave them out (they are no fixed line) while the table lists them.
    """
    out: list[LimitLine] = []
    for lad in doc.get("ladder", []) or []:
        if not isinstance(lad, dict):
            continue
        param = lad.get("param") or (f"scale:{lad['scale']}" if lad.get("scale") else None)
        op = _OPS.get(str(lad.get("op", "")).strip())
        if not param or not op:
            continue
        rule = str(lad.get("name", ""))
        if lad.get("relative"):
            rule += " (relative)"
        for tier in lad.get("tiers", []) or []:
            lim = tier.get("limit")
            if isinstance(lim, dict):
                lim = lim.get("value")
            if not isinstance(lim, (int, float)) or isinstance(lim, bool):
                continue
            out.append(LimitLine(param=param, value=float(lim), op=op, priority=str(tier.get("priority", "")),
                                 phases=tuple(tier.get("phases", ()) or ()), source_tag=str(tier.get("source", "")),
                                 rule=rule, symbol=str(lad.get("op", ""))))
    return out


def load_limits(profile: str | None) -> tuple[list[LimitLine], str | None]:
    """Limits of ``data/limits/<profile>.toml``; with no profile named, ``standard.toml``.

    Returns (limits, file name); ([], None) when the file does not exist — a named profile
    that is missing is never replaced by another one.
    """
    folder = DATA / "limits"
    f = folder / f"{profile or 'standard'}.toml"
    if not f.is_file():
        return [], None
    try:
        doc = tomllib.loads(f.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError):
        return [], None
    return parse_limits(doc), f.name


# --------------------------------------------------------------------------- amendments


def seq_of(ev: Any, index: int) -> int:
    """The event's sequence number; events never stored (seq = -1) get their position + 1."""
    return ev.seq if ev.seq >= 0 else index + 1


def numbered(events: Sequence[Any]) -> list[tuple[int, Any]]:
    return [(seq_of(e, i), e) for i, e in enumerate(events)]


def amendments_by_target(events: Sequence[Any]) -> dict[int, list[Amendment]]:
    out: dict[int, list[Amendment]] = {}
    for e in events:
        if isinstance(e, Amendment):
            out.setdefault(e.target_seq, []).append(e)
    return out


def effective(ev: Any, amends: dict[int, list[Amendment]], seq: int | None = None) -> Any:
    """The event as corrected by its amendments (applied in order). The original is unchanged.

    A replacement key the event does not have, or a value that does not validate, is
    ignored here (the amendment is still shown beside the original in the report).
    """
    s = ev.seq if seq is None else seq
    cur = ev
    for a in amends.get(s, ()):
        data = cur.model_dump()
        upd = {k: v for k, v in a.replacement.items() if k in data and k not in ("seq", "kind")}
        if not upd:
            continue
        data.update(upd)
        try:
            cur = type(cur).model_validate(data)
        except Exception:  # noqa: BLE001
            continue
    return cur


# --------------------------------------------------------------------------- session basics


def opened(events: Sequence[Any]) -> SessionOpened | None:
    amends = amendments_by_target(events)
    for i, e in enumerate(events):
        if isinstance(e, SessionOpened):
            return effective(e, amends, seq_of(e, i))
    return None


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


def vital_series(events: Sequence[Any]) -> dict[str, list[Point]]:
    out: dict[str, list[Point]] = {}
    for s, e, r in all_readings(events):
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


def bp_readings(events: Sequence[Any]) -> list[BP]:
    """NIBP measurements grouped by their time (systolic, diastolic and mean together)."""
    groups: dict[datetime, dict[str, Any]] = {}
    for s, e, r in all_readings(events):
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

    def mg(self, weight_kg: float | None) -> float:
        """mg delivered: pump volume × bag concentration, else mg/kg/h × weight × hours."""
        if self.rate_ml_h > 0 and self.concentration_mg_ml > 0:
            return self.rate_ml_h * self.hours * self.concentration_mg_ml
        if weight_kg:
            return self.rate_mg_kg_h * weight_kg * self.hours
        return 0.0

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
        return sum(s.mg(self.weight_kg) for s in self.segments)

    @property
    def total_ml(self) -> float:
        return sum(s.ml() for s in self.segments)

    @property
    def total_mg_kg(self) -> float | None:
        return self.total_mg / self.weight_kg if self.weight_kg else None

    @property
    def running_minutes(self) -> float:
        return sum(s.hours for s in self.segments) * 60.0


def infusion_record(events: Sequence[Any]) -> InfusionRecord:
    """Segments, pauses and totals, with amendments applied to the infusion events."""
    amends = amendments_by_target(events)
    op = opened(events)
    rec = InfusionRecord(weight_kg=op.weight_kg if op else None)
    cur: Segment | None = None
    paused_at: tuple[datetime, str, int] | None = None
    lot = ""
    route = "IV"
    end_time = session_end(events)
    for i, raw in enumerate(events):
        s = seq_of(raw, i)
        e = effective(raw, amends, s)

        def close(t: datetime) -> None:
            nonlocal cur
            if cur is not None:
                cur.end = t
                rec.segments.append(cur)
                cur = None

        if isinstance(e, InfusionStarted):
            close(e.t)
            rec.start = rec.start or e
            lot, route = e.lot or lot, e.route or route
            cur = Segment(e.drug, e.t, None, e.rate_mg_kg_h, e.rate_ml_h, e.concentration_mg_ml, e.reason, s,
                          e.kind, route, lot)
        elif isinstance(e, InfusionRateChanged):
            close(e.t)
            cur = Segment(e.drug, e.t, None, e.rate_mg_kg_h, e.rate_ml_h, e.concentration_mg_ml, e.reason, s,
                          e.kind, route, lot)
        elif isinstance(e, InfusionPaused):
            close(e.t)
            paused_at = (e.t, e.reason, s)
        elif isinstance(e, InfusionResumed):
            close(e.t)
            if paused_at:
                rec.pauses.append((paused_at[0], e.t, paused_at[1], paused_at[2]))
                paused_at = None
            cur = Segment(e.drug, e.t, None, e.rate_mg_kg_h, e.rate_ml_h, e.concentration_mg_ml, e.reason, s,
                          e.kind, route, lot)
        elif isinstance(e, InfusionStopped):
            close(e.t)
            if paused_at:
                rec.pauses.append((paused_at[0], e.t, paused_at[1], paused_at[2]))
                paused_at = None
            rec.stop = e
    if cur is not None:
        # still running at the end of the record: counted up to the last event
        cur.end = end_time if end_time and end_time > cur.start else None
        rec.segments.append(cur)
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
