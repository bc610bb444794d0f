"""The replay pipeline: a ``Recording`` run through a fresh ``MonitorService`` on recorded time.

Owns: ``Replayer`` (readings and device status go through ``feed`` as a live link's did,
clinical events and staff acknowledgements are re-applied with ``replay_event``, the alarm
engine recomputes every alarm; seek, next/previous alarm or event; the comparison of
recomputed with recorded alarms; the summary).
Time: only the recorded times (a ``ManualClock``). A seek backwards rebuilds the pipeline
from the start and runs it forward (deterministic, and fast: ``--speed max`` runs a 4-hour
session in about a second).
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chairside.domain.clock import ManualClock
from chairside.domain.events import ALARM_EVENT_KINDS, CLINICAL_EVENT_KINDS, PhaseChanged, SessionOpened
from chairside.replay.compare import AlarmDifference, alarm_key, compare_alarms
from chairside.replay.recording import Input, Recording, ReplayError
from chairside.service import MonitorService
from chairside.service.model import CommandRefused

log = logging.getLogger("chairside.replay")

CAPTURE_PATIENT = "REPLAY"
CAPTURE_WEIGHT_KG = 70.0  # recorded with source "stated"; a capture carries no patient


class Replayer:
    """Runs a ``Recording`` through a fresh ``MonitorService`` on recorded time.

    ``advance_to(t)`` processes every input up to ``t`` and the engine's one-second ticks
    between them; ``seek(t)`` goes anywhere (backwards by rebuilding). ``session_out``
    records the replay into a new session file (then seeking backwards is refused: a
    session file is append-only). ``service`` is the current pipeline; ``recomputed`` the
    alarm events the engine raised so far; ``differences()`` compares them with the
    recorded ones. ``on_rebuild`` is called with the new service after a rebuild.
    ``record_seq(seq)``: the record's own number of a replayed event (None for what exists
    only in the replay: its own note, an alarm the record does not have).
    """

    def __init__(self, recording: Recording, *, session_out: str | Path | None = None,
                 protocol: str | None = None, tick_s: float = 1.0, phase: str | None = None,
                 tolerance_s: float | None = None) -> None:
        self.recording = recording
        self.session_out = Path(session_out) if session_out is not None else None
        self.protocol = protocol or recording.protocol or None
        self.tick_s = float(tick_s)
        self.phase = phase
        self.tolerance_s = 2 * self.tick_s if tolerance_s is None else float(tolerance_s)
        self.on_rebuild: Callable[[Any], None] | None = None
        self.problems: list[str] = []
        t0 = recording.start
        self._offsets = [(i.t - t0).total_seconds() for i in recording.inputs] if t0 is not None else []
        self._alarm_times = sorted({e.t for e in recording.recorded_alarms if e.kind == "alarm_raised"})
        self._event_times = sorted(set(recording.event_times))
        self.service: Any = None
        self.clock: ManualClock
        self._build()

    # -- building
    def _build(self) -> None:
        rec = self.recording
        if rec.start is None:
            raise ReplayError(f"{rec.path}: nothing to replay")
        if self.service is not None:
            try:
                self.service.shutdown()
            except Exception:  # noqa: BLE001
                log.exception("replay: closing the previous pipeline")
        self.clock = ManualClock(rec.start)
        protocol = self.protocol or "iv-ketamine-depression"
        try:
            svc = MonitorService(clock=self.clock, port="", driver=rec.driver or "ge-s5", protocol=protocol,
                                 tick_s=self.tick_s, simulated=bool(rec.opened and rec.opened.simulated))
        except CommandRefused as exc:
            raise ReplayError(f"{rec.path}: {exc}") from None
        self.recomputed: list[Any] = []
        self.readings = 0
        self.inputs_done = 0
        self._next = 0
        self._ticks = 0
        self._seq_map: dict[int, int] = {}
        self._record_seq: dict[int, int] = {}  # replay's seq -> the record's own seq
        self._unused = {k: list(v) for k, v in rec.recorded_seqs.items()}
        self._alarms_by_key: dict[tuple[str, str, str], list[Any]] = {}
        for a in sorted(rec.recorded_alarms, key=lambda e: e.t):
            self._alarms_by_key.setdefault(alarm_key(a), []).append(a)
        self._own = True  # what the replay adds of its own (its note) has no number in the record
        self.problems = []
        svc.subscribe_events(self._on_event)
        self.service = svc
        opened = rec.opened or SessionOpened(
            t=rec.start, author="SYS", session_id="-", patient_id=CAPTURE_PATIENT, weight_kg=CAPTURE_WEIGHT_KG,
            weight_source="stated", protocol=protocol, staff=("SYS",))
        self._own = False
        try:
            first = svc.replay_open(opened, path=self.session_out, protocol=protocol)
        except CommandRefused as exc:
            raise ReplayError(f"{self.session_out or rec.path}: {exc}") from None
        self._own = True
        if rec.opened is not None:
            self._seq_map[rec.opened.seq] = first.seq
        what = "session file" if rec.source == "session" else f"raw capture ({rec.driver})"
        note = (f"replay of the {what} {rec.path.name}"
                + (f" (last event hash {rec.last_hash[:16]})" if rec.last_hash else "")
                + "; alarms recomputed by the engine from the recorded readings")
        if rec.source == "capture":
            note += f"; no patient in a capture: weight {CAPTURE_WEIGHT_KG:g} kg recorded as a placeholder"
        svc.add_note(author="SYS", text=note)
        if self.phase and self.phase != "pre_infusion":
            svc.replay_event(PhaseChanged(t=self.clock.now(), author="SYS", from_phase="pre_infusion",
                                          to_phase=self.phase, reason="replay: phase given for the replay"))
            if self.phase == "infusion":
                svc.replay_assume_infusing()
        self._own = False
        if self.on_rebuild is not None:
            self.on_rebuild(svc)

    def _on_event(self, ev: Any) -> None:
        if ev.kind in ALARM_EVENT_KINDS:
            self.recomputed.append(ev)
        if self.recording.source != "session" or self._own:
            return
        seq = self._paired_alarm(ev) if ev.kind in ALARM_EVENT_KINDS else None
        if ev.kind not in ALARM_EVENT_KINDS:
            left = self._unused.get((ev.kind, ev.t))
            seq = left.pop(0) if left else None
        if seq is not None:
            self._record_seq[ev.seq] = seq

    def _paired_alarm(self, ev: Any) -> int | None:
        """The record's number of the recorded alarm event this recomputed one stands for:
        the earliest unpaired one of the same kind, rule and priority within the tolerance
        (the pairing of ``compare_alarms``)."""
        left = self._alarms_by_key.get(alarm_key(ev))
        while left and (ev.t - left[0].t).total_seconds() > self.tolerance_s:
            left.pop(0)  # recorded only: never paired
        if left and abs((left[0].t - ev.t).total_seconds()) <= self.tolerance_s:
            return left.pop(0).seq
        return None

    def record_seq(self, seq: int) -> int | None:
        """The record's own number of the replayed event ``seq`` (a raw capture has no
        numbers of its own: there the replay's number is returned)."""
        if self.recording.source != "session":
            return seq
        return self._record_seq.get(seq)

    def replay_seq(self, record_seq: int) -> int | None:
        """The replay's number of the record's event ``record_seq`` (None: not replayed)."""
        if self.recording.source != "session":
            return record_seq
        return next((k for k, v in self._record_seq.items() if v == record_seq), None)

    # -- position
    @property
    def start(self) -> datetime:
        assert self.recording.start is not None
        return self.recording.start

    @property
    def end(self) -> datetime:
        assert self.recording.end is not None
        return self.recording.end

    @property
    def position(self) -> datetime:
        return self.clock.now()

    @property
    def elapsed_s(self) -> float:
        return (self.position - self.start).total_seconds()

    @property
    def finished(self) -> bool:
        return self._next >= len(self.recording.inputs) and self.position >= self.end

    def _set_clock(self, elapsed: float) -> None:
        if elapsed > self.clock.monotonic():
            self.clock.set(elapsed)

    def _tick_until(self, elapsed: float) -> None:
        """The engine's ticks on the grid start + k * tick_s up to and including ``elapsed``."""
        tick_s, clock, tick = self.tick_s, self.clock, self.service.tick
        k = self._ticks
        while (k + 1) * tick_s <= elapsed + 1e-9:
            k += 1
            self._ticks = k
            at = k * tick_s
            if at > clock.monotonic():
                clock.set(at)
            tick()

    def advance_to(self, t: datetime) -> None:
        """Process the inputs up to ``t`` (never past the end of the recording)."""
        t = min(t, self.end)
        limit = (t - self.start).total_seconds()
        inputs, offsets = self.recording.inputs, self._offsets
        svc = self.service
        n = len(inputs)
        while self._next < n and offsets[self._next] <= limit:
            at = offsets[self._next]
            self._tick_until(at)
            self._set_clock(at)
            self._apply(svc, inputs[self._next])
            self._next += 1
            self.inputs_done += 1
        self._tick_until(limit)
        self._set_clock(limit)

    def _apply(self, svc: Any, item: Input) -> None:
        if item.kind == "readings":
            svc.feed(item.payload)
            self.readings += len(item.payload)
        elif item.kind == "status":
            svc.feed([item.payload])
        else:
            ev = item.payload
            try:
                if ev.kind == "amendment":
                    target = self._seq_map.get(ev.target_seq)
                    if target is None:
                        raise CommandRefused(f"the amended event #{ev.target_seq} was not replayed")
                    ev = ev.model_copy(update={"target_seq": target})
                elif ev.kind == "baseline_recorded" and ev.source_seqs:
                    ev = ev.model_copy(update={"source_seqs": ()})
                stored = svc.replay_event(ev)
            except CommandRefused as exc:
                self.problems.append(f"event #{ev.seq} ({ev.kind}) at {ev.t:%H:%M:%S} not replayed: {exc}")
                log.warning("replay: %s", self.problems[-1])
                return
            if stored and ev.kind in CLINICAL_EVENT_KINDS:
                self._seq_map[item.payload.seq] = stored[0].seq

    def run_to_end(self, *, step_s: float = 600.0, progress: Callable[[float], None] | None = None) -> None:
        """As fast as possible to the end; ``progress(fraction)`` after each step."""
        total = max(self.recording.duration_s, 1e-9)
        while not self.finished:
            self.advance_to(min(self.end, self.position + timedelta(seconds=step_s)))
            if progress is not None:
                progress(min(1.0, self.elapsed_s / total))
            if self.position >= self.end and self._next >= len(self.recording.inputs):
                break

    def seek(self, t: datetime) -> None:
        """Go to ``t`` (clamped to the recording); backwards rebuilds from the start."""
        t = max(self.start, min(self.end, t))
        if t < self.position:
            if self.session_out is not None:
                raise CommandRefused("seeking back is not possible while the replay is recorded to a "
                                     "session file (it is append-only)")
            self._build()
        self.advance_to(t)

    def seek_by(self, seconds: float) -> None:
        self.seek(self.position + timedelta(seconds=seconds))

    # -- navigation
    def alarm_times(self) -> list[datetime]:
        """Onsets of alarms: recorded ones, and recomputed ones so far."""
        rec = {e.t for e in self.recomputed if e.kind == "alarm_raised"}
        return sorted(set(self._alarm_times) | rec)

    def next_alarm(self) -> datetime | None:
        times = self.alarm_times()
        i = bisect_right(times, self.position)
        if i < len(times):
            return times[i]
        return None

    def previous_alarm(self) -> datetime | None:
        times = self.alarm_times()
        i = bisect_left(times, self.position - timedelta(seconds=0.5))
        return times[i - 1] if i > 0 else None

    def next_event(self) -> datetime | None:
        i = bisect_right(self._event_times, self.position)
        return self._event_times[i] if i < len(self._event_times) else None

    def previous_event(self) -> datetime | None:
        i = bisect_left(self._event_times, self.position - timedelta(seconds=0.5))
        return self._event_times[i - 1] if i > 0 else None

    # -- results
    def differences(self, *, until: datetime | None = None) -> list[AlarmDifference]:
        """Recorded vs recomputed alarm events up to ``until`` (default: the position)."""
        if self.recording.source != "session":
            return []
        return compare_alarms(self.recording.recorded_alarms, self.recomputed, tolerance_s=self.tolerance_s,
                              until=until or self.position)

    def summary(self) -> dict[str, Any]:
        """Duration, readings, alarms by priority (recomputed and recorded), events, differences."""
        rec = self.recording
        raised = list(self.recomputed)
        recorded = list(rec.recorded_alarms)
        kinds = Counter(i.payload.kind for i in rec.inputs
                        if i.kind == "event" and i.payload.kind in CLINICAL_EVENT_KINDS)
        diffs = self.differences(until=self.end)
        return {
            "file": str(rec.path), "source": rec.source, "driver": rec.driver,
            "protocol": self.service.protocol_name,
            "start": rec.start.isoformat() if rec.start else None,
            "end": rec.end.isoformat() if rec.end else None,
            "duration_s": round(rec.duration_s, 3),
            "readings": self.readings,
            "alarms_recomputed": _by_priority(raised),
            "alarms_recorded": _by_priority(recorded) if rec.source == "session" else None,
            "events": dict(sorted(kinds.items())),
            "differences": len(diffs),
            "problems": list(self.problems),
            "session_out": str(self.session_out) if self.session_out else None,
        }

    def close(self) -> None:
        if self.service is not None:
            self.service.shutdown()


def _by_priority(events: list[Any]) -> dict[str, int]:
    """Alarms counted once each, at the highest priority they reached (an alarm raised low
    and escalated to high counts as high; re-announcements at the same priority are not
    escalations)."""
    top: dict[str, str] = {}
    for e in events:
        if e.kind == "alarm_raised":
            top[e.alarm_id] = e.priority
        elif e.kind == "alarm_escalated" and e.alarm_id in top and not e.reannounce:
            if _RANK.get(e.to_priority, 0) > _RANK.get(top[e.alarm_id], 0):
                top[e.alarm_id] = e.to_priority
    c = Counter(top.values())
    return {p: c.get(p, 0) for p in ("high", "medium", "low")}


_RANK = {"low": 1, "medium": 2, "high": 3}
