"""The view model: what the console shows, built from the session state and the engine's queries.

Owns: ``View`` (the latest value of each parameter, their observed intervals, the device
conditions, the trend points, the timeline) and ``View.build`` (the immutable ``Snapshot``);
``Cadence``, the ONE source of the NIBP schedule and of staleness (tiles, the next-BP
countdown and the readings carried into a new record all ask it; the engine's NIBP-overdue
rule reads the template itself); ``describe`` (the one line of the timeline for an event).
The view records nothing and changes no clinical state; it reads ``SessionState`` and the
alarm engine's ``active`` / ``audio_priority``.
Must not import: textual, chairside.ui, chairside.transport.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from chairside.domain.describe import colour
from chairside.domain.describe import describe as sentence
from chairside.domain.completion import expected_end
from chairside.domain.dose import totals
from chairside.domain.events import Event
from chairside.domain.protocol import ProtocolTemplate, bp_cadence_s
from chairside.domain.readings import DeviceStatus, Reading
from chairside.domain.recovery_criteria import recovery_reference
from chairside.domain.state import SessionState, log_nibp
from chairside.service.data import ConsoleData
from chairside.service.model import (
    PRIORITY_RANK,
    AlarmView,
    DeviceLine,
    InfusionView,
    SessionInfo,
    Snapshot,
    StoreStatus,
    Tile,
    TimelineItem,
    TrendSeries,
)

if TYPE_CHECKING:  # the recorder imports this module; the view only reads it
    from chairside.service.recorder import Recorder

log = logging.getLogger("chairside.service")

TILE_SPECS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # key, label, unit, params
    ("nibp", "NIBP", "mmHg", ("nibp_sys", "nibp_dia", "nibp_map")),
    ("hr", "HR", "bpm", ("hr",)),
    ("spo2", "SpO2", "%", ("spo2",)),
    ("pr", "PR", "bpm", ("pr",)),
    ("rr", "RR", "/min", ("rr",)),  # only where the monitor sends it (HL7, S/5): see OPTIONAL_TILES
)
OPTIONAL_TILES = frozenset({"rr"})  # a tile shown once its parameter has been received
TREND_PARAMS: tuple[tuple[str, str], ...] = (
    ("nibp_sys", "SBP"), ("nibp_dia", "DBP"), ("hr", "HR"), ("spo2", "SpO2"),
)
TIMELINE_KEEP = 200
FLAG_TEXT = {
    "sensor_off": "probe off", "probe_off": "probe off", "no_sensor": "no sensor",
    "pulse_search": "pulse search", "low_perfusion": "low perfusion", "no_data": "no data",
    "questionable": "questionable signal", "nibp_failed": "measurement failed",
    "module_absent": "module absent", "interference": "interference",
}
STATUS_TILES = {  # DeviceStatus kind -> tiles it explains when they are missing
    "probe_off": ("spo2", "pr"), "no_sensor": ("spo2", "pr"), "sensor_off": ("spo2", "pr"),
    "pulse_search": ("spo2", "pr"), "nibp_failed": ("nibp",),
}


def _reason_from_flags(flags: Iterable[str]) -> str:
    flags = list(flags)
    for f in flags:
        base = f.split(":", 1)[0]
        if base in FLAG_TEXT:
            return FLAG_TEXT[base]
        if base == "marker":
            return "no value from the monitor"
    return flags[0].replace("_", " ") if flags else "invalid value"


@dataclass
class Cadence:
    """How often each value is expected, and when it is stale: the one source.

    ``state`` and ``mono`` are read through callables so the cadence always sees the
    current record (the NIBP schedule tightens after an infusion start or a rate increase).
    """

    data: ConsoleData
    template: Callable[[], ProtocolTemplate]
    state: Callable[[], SessionState]
    mono: Callable[[], float]
    intervals: dict[str, deque[float]]

    def nibp_scheduled_s(self, phase: str, now_mono: float | None = None) -> float:
        """Seconds between scheduled NIBP checks (inf: none), tightened after a start/increase."""
        inc = self.state().infusion.last_start_or_increase_mono
        since = None
        if inc is not None:
            since = (self.mono() if now_mono is None else now_mono) - inc
        return bp_cadence_s(self.template(), phase, since)

    def default_s(self, param: str) -> float:
        """The interval assumed for a parameter when nothing better is known."""
        return self.data.nibp_cadence_s if param.startswith("nibp") else self.data.continuous_cadence_s

    def tile_s(self, key: str, phase: str) -> float:
        """The interval a tile's value is expected at: the schedule (NIBP) or the observed one."""
        if key == "nibp":
            c = self.nibp_scheduled_s(phase)
            return self.data.nibp_cadence_s if math.isinf(c) else c
        gaps = self.intervals.get(key)
        if gaps:
            return max(sorted(gaps)[len(gaps) // 2], 1.0)
        return self.data.continuous_cadence_s

    def stale(self, age_s: float, interval_s: float) -> bool:
        return age_s > self.data.stale_factor * interval_s


class View:
    """What the console shows besides the record: latest values, trends, conditions, timeline."""

    def __init__(self, data: ConsoleData, *, template: Callable[[], ProtocolTemplate],
                 state: Callable[[], SessionState], mono: Callable[[], float], link_state: str) -> None:
        self.data = data
        self.latest: dict[str, Reading] = {}
        self.latest_valid: dict[str, Reading] = {}
        self.nibp_time: datetime | None = None
        # every distinct valid NIBP of the session: (time, mono, sys, dia), as SessionState.nibp_log
        # folds it from the file (the live state's readings groups carry counts, not readings)
        self.nibp_log: list[tuple[datetime, float, float | None, float | None]] = []
        self._state = state
        self.intervals: dict[str, deque[float]] = {}
        self.conditions: dict[str, DeviceStatus] = {}
        self.trend: dict[str, deque[tuple[datetime, float]]] = {p: deque() for p, _ in TREND_PARAMS}
        self.timeline: deque[TimelineItem] = deque(maxlen=TIMELINE_KEEP)
        self.link_state = link_state
        self.version = 0
        self.cadence = Cadence(data, template, state, mono, self.intervals)

    # ------------------------------------------------------------------ inputs
    def note_reading(self, r: Reading, now: datetime) -> None:
        t = r.receive_time or now
        prev = self.latest_valid.get(r.param)
        self.latest[r.param] = r
        if r.value is not None and r.valid:
            if prev is not None and prev.receive_time is not None and r.param in ("hr", "spo2", "pr"):
                gap = (t - prev.receive_time).total_seconds()
                if gap > 0:
                    self.intervals.setdefault(r.param, deque(maxlen=8)).append(gap)
            self.latest_valid[r.param] = r
            if r.param == "nibp_sys":
                self.nibp_time = t
            if r.param in ("nibp_sys", "nibp_dia"):
                s = self._state().session
                rt = r.time or t
                log_nibp(self.nibp_log, rt, (rt - s.opened_t).total_seconds() if s is not None else 0.0,
                         r.param, float(r.value))
            series = self.trend.get(r.param)
            if series is not None:
                series.append((t, float(r.value)))
                horizon = t.timestamp() - self.data.trend_window_s
                while series and series[0][0].timestamp() < horizon:
                    series.popleft()

    def note_status(self, s: DeviceStatus) -> DeviceStatus | None:
        """Keep the device condition; returns the same condition as it was before (or None)."""
        key = s.kind if s.param is None else f"{s.kind}:{s.param}"
        prev = self.conditions.get(key)
        if s.active:
            self.conditions[key] = s
        else:
            self.conditions.pop(key, None)
        if s.kind in ("link_up", "link_lost"):
            self.link_state = "up" if (s.kind == "link_up" or not s.active) else "down"
        return prev

    def latest_value(self, param: str) -> float | None:
        r = self.latest_valid.get(param)
        return None if r is None else r.value

    def current_readings(self, now: datetime) -> list[Reading]:
        """The latest valid reading of each parameter that is not stale yet (NIBP: its whole set)."""
        out: list[Reading] = []
        for p, r in self.latest_valid.items():
            t = r.receive_time or now
            if not self.cadence.stale((now - t).total_seconds(), self.cadence.default_s(p)):
                out.append(r)
        return out

    def timeline_add(self, ev: Event) -> None:
        if ev.kind in ("readings_recorded", "training"):
            return  # a training run's own log is the instructor's and the debrief's, not the trainee's
        text, prio = describe(ev)
        if text:
            self.timeline.append(TimelineItem(seq=ev.seq, t=ev.t, kind=ev.kind, author=ev.author,
                                              text=text, priority=prio))

    def timeline_reset(self, events: Iterable[Event]) -> None:
        self.timeline.clear()
        for ev in events:
            self.timeline_add(ev)

    # ------------------------------------------------------------------ the snapshot
    def build(self, now: datetime, rec: Recorder, *, port: str, driver: str, protocol: str,
              simulated: bool, discharged: bool, session_open: bool, link_stats: object | None,
              readings_count: int, readings_stored_mono: float | None) -> Snapshot:
        self.version += 1
        st = rec.state
        phase = st.phase
        alarms = self._alarm_views(rec)
        tiles = self._tiles(rec, now, phase, alarms)
        inf = st.infusion
        weight = st.weight_kg or 0.0
        template = rec.template
        started = inf.status != "not_started"
        tot = totals(st, now, weight or None) if started else None
        end = inf.stopped_t if inf.status == "stopped" else now
        infusion = InfusionView(
            state=inf.status, drug=inf.drug or template.dosing.drug,
            concentration_mg_ml=inf.concentration_mg_ml,
            rate_mg_kg_h=inf.rate_mg_kg_h if started else None,
            rate_ml_h=inf.rate_ml_h if started else None,
            rate_mg_h=inf.rate_mg_kg_h * weight if started and weight else None,
            started_at=inf.started_t, stopped_at=inf.stopped_t,
            elapsed_s=(end - inf.started_t).total_seconds() if inf.started_t and end else None,
            running_s=tot.infusing_s if tot else None,
            delivered_mg=tot.mg if tot else 0.0,
            delivered_mg_kg=(tot.mg_kg or 0.0) if tot else 0.0,
            delivered_ml=tot.ml if tot else 0.0,
            target_dose_mg_kg=inf.dose_mg_kg, weight_kg=weight or None, order_mg=inf.order_mg,
            expected_end_at=_expected_end_at(inf), completed=inf.completed,
            pump_stop_confirmed=inf.pump_stop_confirmed,
            devices_mg=st.device_doses.total_mg if st.device_doses.count else None,
            devices_n=st.device_doses.count)
        next_bp = None
        if st.session is not None and not discharged:
            cadence = self.cadence.nibp_scheduled_s(phase)
            if not math.isinf(cadence):
                ref = self.nibp_time
                phase_t = _phase_t(st)
                if ref is None or (st.phase_seqs and phase_t and phase_t > ref):
                    ref = phase_t or ref
                next_bp = 0.0 if ref is None else (ref - now).total_seconds() + cadence
        min_rec_left = None
        if not discharged:
            recovery = template.recovery
            ref_t = recovery_reference(template, st)
            if ref_t is not None:
                min_rec_left = recovery.min_minutes - (now - ref_t).total_seconds() / 60
        store_status: StoreStatus = rec.store_status()
        ls = link_stats
        device = DeviceLine(
            port=port or "(none)", driver=driver,
            link_state=ls.state if ls else self.link_state,  # type: ignore[attr-defined]
            readings_per_min=ls.readings_per_min if ls else 0.0,  # type: ignore[attr-defined]
            errors=(ls.frames_rejected + ls.write_errors + ls.disconnects) if ls else 0,  # type: ignore[attr-defined]
            last_error=ls.last_error if ls else "", store=store_status)  # type: ignore[attr-defined]
        notices = []
        if store_status.warning:
            notices.append(store_status.message or "SESSION FILE PROBLEM: recording in memory only")
        if device.link_state == "down" or "link_lost" in self.conditions:
            notices.append("MONITOR LINK LOST — values are not updating")
        elif "no_data" in self.conditions:
            notices.append("NO DATA FROM THE MONITOR")
        if inf.completed and not inf.pump_stop_confirmed:
            notices.append("ORDERED DOSE IN — the infusion is complete: confirm the pump has stopped (Stop)")
        if "high_error_rate" in self.conditions:
            notices.append("MANY BAD FRAMES FROM THE MONITOR — check the cable and the settings")
        trends = []
        for param, label in TREND_PARAMS:
            pts = tuple(((now - t).total_seconds(), v) for t, v in self.trend[param])
            low, high = _limits(rec, param, phase)
            trends.append(TrendSeries(param=param, label=label, points=pts, low=low, high=high))
        audio, paused = _audio(rec, now)
        s = st.session
        b = st.baseline
        info = SessionInfo(
            open=session_open, session_id=s.session_id if s else "",
            patient_id=s.patient_id if s else "", protocol=protocol,
            protocol_title=template.title, weight_kg=weight or None, phase=phase,
            opened_at=s.opened_t if s else None, checklist_done=st.checklist is not None,
            escort_confirmed=bool(st.checklist and st.checklist.escort_confirmed),
            baseline={"sbp": b.sbp, "dbp": b.dbp, "hr": b.hr, "spo2": b.spo2} if b else {},
            staff=s.staff if s else (), closed=st.closed, simulated=simulated,
            discharged=discharged)
        return Snapshot(
            now=now, version=self.version, session=info, tiles=tiles, alarms=alarms,
            audio_priority=audio, audio_paused_s=paused, infusion=infusion,
            next_bp_due_s=next_bp, min_recovery_left_min=min_rec_left, device=device,
            trends=tuple(trends), trend_window_s=self.data.trend_window_s,
            timeline=tuple(self.timeline), notices=tuple(notices),
            last_reading_seq=readings_count, readings_stored_mono=readings_stored_mono)

    def _alarm_views(self, rec: Recorder) -> tuple[AlarmView, ...]:
        return tuple(AlarmView(
            alarm_id=a.id, priority=a.priority,
            message=(f"{a.message} ({a.now_text})" if a.alarm_class == "physiological" and a.now_text
                     and a.last_value != a.value else a.message),
            alarm_class=a.alarm_class,
            param=a.param, value=a.last_value if a.last_value is not None else a.value, limit=a.limit,
            source_tag=a.source_tag, since=a.since, acknowledged=a.acknowledged, latched=a.latched,
            condition_active=a.condition, audio_paused=a.audio_paused_until is not None, rule=a.rule)
            for a in rec.engine.active())

    def _tiles(self, rec: Recorder, now: datetime, phase: str,
               alarms: tuple[AlarmView, ...]) -> tuple[Tile, ...]:
        out = []
        link_down = "link_lost" in self.conditions or "no_data" in self.conditions
        for key, label, unit, params in TILE_SPECS:
            main = params[0]
            latest = self.latest.get(main)
            if key in OPTIONAL_TILES and latest is None:
                continue
            valid = self.latest_valid.get(main)
            reason = None
            value = value2 = value3 = None
            age = None
            if valid is not None and valid.receive_time is not None:
                age = max(0.0, (now - valid.receive_time).total_seconds())
            if latest is None:
                reason = "no data yet"
            elif latest.value is None or not latest.valid:
                reason = _reason_from_flags(latest.flags)
                if key == "nibp" and valid is None and reason == "no value from the monitor":
                    reason = "no measurement yet"
            else:
                value = latest.value
                if key == "nibp":
                    d = self.latest_valid.get("nibp_dia")
                    m = self.latest_valid.get("nibp_map")
                    value2 = d.value if d else None
                    value3 = m.value if m else None
            if value is None:
                for cond_key in self.conditions:
                    kind = cond_key.split(":", 1)[0]
                    if key in STATUS_TILES.get(kind, ()):
                        reason = FLAG_TEXT.get(kind, kind.replace("_", " "))
            stale = age is not None and self.cadence.stale(age, self.cadence.tile_s(key, phase))
            if value is not None and key != "nibp" and stale and link_down:
                value, reason = None, "no data from the monitor"
            if value is None:
                stale = False
                if link_down and reason in (None, "no data yet"):
                    reason = "no data from the monitor"
            lo, hi = _limits(rec, main, phase)
            lo2 = hi2 = None
            if key == "nibp":
                lo2, hi2 = _limits(rec, "nibp_dia", phase)
            prio = None
            for a in alarms:
                if a.param in params and (prio is None or PRIORITY_RANK[a.priority] > PRIORITY_RANK[prio]):
                    prio = a.priority
            out.append(Tile(key=key, label=label, unit=unit, value=value, value2=value2, value3=value3,
                            age_s=age, stale=stale,
                            missing_reason=(reason or "no data") if value is None else None,
                            low=lo, high=hi, low2=lo2, high2=hi2,
                            limit_source=_limit_source(rec, main, phase), alarm=prio,
                            source=latest.source if latest is not None else ""))
        return tuple(out)


def _expected_end_at(inf: object) -> datetime | None:
    c = expected_end(inf)
    return c.at_t if c is not None else None


def _phase_t(state: SessionState) -> datetime | None:
    if not state.phase_seqs:
        return state.session.opened_t if state.session else None
    ev = state.events.get(state.phase_seqs[-1])
    return ev.t if ev is not None else None


def _audio(rec: Recorder, now: datetime) -> tuple[str | None, float | None]:
    audio = rec.engine.audio_priority()
    paused = None
    untils = [a.audio_paused_until for a in rec.engine.active()
              if a.audio_paused_until is not None and not a.acknowledged]
    if untils:
        left = (max(untils) - now).total_seconds()
        paused = left if left > 0 else None
    return (audio if audio in PRIORITY_RANK else None), paused


def _limits(rec: Recorder, param: str, phase: str) -> tuple[float | None, float | None]:
    """The least severe absolute limits of a parameter in a phase (drawn beside it)."""
    low = high = None
    for ld in rec.profile.ladder:
        if ld.param != param or ld.relative:
            continue
        tiers = ld.tiers_for(phase)
        if not tiers:
            continue
        if ld.op in (">=", ">"):
            lim = min(t.limit for t in tiers)
            high = lim if high is None else min(high, lim)
        else:
            lim = max(t.limit for t in tiers)
            low = lim if low is None else max(low, lim)
    return low, high


def _limit_source(rec: Recorder, param: str, phase: str) -> str:
    tags: set[str] = set()
    for ld in rec.profile.ladder:
        if ld.param == param and not ld.relative:
            tags.update(t.source for t in ld.tiers_for(phase))
    return "".join(sorted(tags))


def describe(ev: Event) -> tuple[str, str | None]:
    """One line for the timeline, and the priority colour (None for clinical entries): the
    one wording of events, ``chairside.domain.describe``."""
    return sentence(ev), colour(ev)
