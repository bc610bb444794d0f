"""Replay: a session file or a raw capture run again through the monitoring pipeline.

Owns: ``load_recording`` (a session file's events, or a raw capture decoded byte-exactly
through its driver, as timed inputs), ``Replayer`` (a fresh ``MonitorService`` on a
``ManualClock`` set to the recorded times: readings and device status go through
``feed`` as a live link's did, clinical events and staff acknowledgements are re-applied
with ``replay_event``, and the alarm engine recomputes every alarm; seek, next/previous
alarm or event; the comparison of recomputed with recorded alarms; the summary),
``ReplayPlayer`` (paces a ``Replayer`` in a thread at a speed factor, for the console)
and ``ReplayService`` (what the console holds during a replay: snapshots of the current
``Replayer``'s service, every command refused).

Time: only the recorded times (ManualClock); the player alone reads the wall clock, to
pace itself. A seek backwards rebuilds the pipeline from the start and runs it forward
(deterministic, and fast: ``--speed max`` runs a 4-hour session in about a second).
May import: chairside.service, chairside.store, chairside.transport, chairside.domain.
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import groupby
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

from chairside.domain.clock import ManualClock
from chairside.domain.describe import describe
from chairside.domain.events import (
    ALARM_EVENT_KINDS,
    CLINICAL_EVENT_KINDS,
    PhaseChanged,
    SessionOpened,
)
from chairside.domain.readings import DeviceStatus, Reading
from chairside.service_model import CommandRefused, Snapshot

log = logging.getLogger("chairside.replay")

SPEEDS: tuple[float | None, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 60.0, None)  # None: as fast as possible
COMPARED_KINDS = ("alarm_raised", "alarm_escalated", "alarm_acknowledged", "alarm_cleared")
CAPTURE_PATIENT = "REPLAY"
CAPTURE_WEIGHT_KG = 70.0  # recorded with source "stated"; a capture carries no patient


class ReplayError(ValueError):
    """The file cannot be replayed; the message says what and where (one line)."""


# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class Input:
    """One timed input of a replay: ``kind`` readings / status / event."""

    t: datetime
    rank: int  # order among inputs at the same time: status 0, readings 1, events 2
    order: int  # then the order of the record
    kind: str
    payload: Any


@dataclass
class Recording:
    """What a replay runs on: the inputs in time order and what was recorded at the time."""

    path: Path
    source: str  # "session" or "capture"
    driver: str
    protocol: str
    opened: SessionOpened | None
    inputs: list[Input]
    recorded_alarms: list[Any] = field(default_factory=list)  # alarm events as recorded
    start: datetime | None = None
    end: datetime | None = None
    events_total: int = 0
    last_hash: str = ""
    closed: bool = False

    @property
    def duration_s(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def event_times(self) -> list[datetime]:
        """Times of the clinical events (for next/previous event)."""
        return [i.t for i in self.inputs if i.kind == "event" and i.payload.kind in CLINICAL_EVENT_KINDS]


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a recording is built. Loading a 4-hour session
    makes a few hundred thousand objects that all stay alive and form no garbage cycles; the
    collector's repeated full scans of them as they pile up cost about a third of a
    ``--speed max`` replay (bench/bench_replay.py). Only collection is delayed: reference
    counting frees everything else as usual."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load_recording(path: str | Path, driver: str | None = None, *, protocol: str | None = None) -> Recording:
    """A session file or a raw capture as a ``Recording``; ``ReplayError`` otherwise."""
    from chairside.transport import CaptureError, is_capture

    p = Path(path)
    if not p.exists():
        raise ReplayError(f"{p}: no such file")
    if p.is_dir():
        raise ReplayError(f"{p}: is a folder, not a session file or raw capture")
    with collector_paused():
        if is_capture(p):
            try:
                return _load_capture(p, driver, protocol)
            except CaptureError as exc:
                raise ReplayError(str(exc).splitlines()[0]) from None
        return _load_session(p, protocol)


def _load_session(p: Path, protocol: str | None) -> Recording:
    from chairside.store import SessionFileError, read_session

    try:
        record = read_session(p)
    except SessionFileError as exc:
        raise ReplayError(str(exc).splitlines()[0] + " (expected a session file or a raw capture)") from None
    except Exception as exc:  # noqa: BLE001 - sqlite and OS errors name the file
        raise ReplayError(f"{p}: cannot read as a session file: {exc}") from None
    events, last_hash = record.events, record.last_hash
    if not events or events[0].kind != "session_opened":
        raise ReplayError(f"{p}: the session file has no session_opened event")
    opened: SessionOpened = events[0]
    inputs: list[Input] = []
    alarms: list[Any] = []
    driver = ""
    pending_pause: tuple[datetime, str] | None = None
    for ev in events[1:]:
        k = ev.kind
        if k == "readings_recorded":
            # one batch per receive time: the chunks the link handed on, in the order received
            for t, rs in groupby(ev.readings, key=lambda r, t0=ev.t: r.receive_time or t0):
                inputs.append(Input(t, 1, ev.seq, "readings", list(rs)))
        elif k == "device_status":
            driver = driver or ev.driver
            inputs.append(Input(ev.t, 0, ev.seq, "status", ev.status))
        elif k in ALARM_EVENT_KINDS:
            alarms.append(ev)
            if k == "alarm_acknowledged" and ev.by:
                inputs.append(Input(ev.t, 2, ev.seq, "event", ev))
            elif k == "alarm_silenced" and ev.by and ev.mode == "audio_paused":
                key = (ev.t, ev.by)
                if pending_pause != key:  # one pause of the audio silences every alarm at once
                    inputs.append(Input(ev.t, 2, ev.seq, "event", ev))
                pending_pause = key
        elif k in CLINICAL_EVENT_KINDS or k == "training":
            inputs.append(Input(ev.t, 2, ev.seq, "event", ev))
    inputs.sort(key=lambda i: (i.t, i.rank, i.order))
    end = max([opened.t, *(i.t for i in inputs), *(a.t for a in alarms)])
    return Recording(path=p, source="session", driver=driver or "", protocol=protocol or opened.protocol,
                     opened=opened, inputs=inputs, recorded_alarms=alarms, start=opened.t, end=end,
                     events_total=len(events), last_hash=last_hash,
                     closed=any(e.kind == "session_closed" for e in events))


def _load_capture(p: Path, driver: str | None, protocol: str | None) -> Recording:
    from chairside.transport import ReplaySource

    batches: list[list[Any]] = []
    src = ReplaySource(p, driver, on_output=batches.append, speed=None)
    src.run()
    inputs: list[Input] = []
    last: datetime | None = None
    for n, batch in enumerate(batches):
        t = max((x.receive_time for x in batch if x.receive_time is not None), default=last)
        if t is None:
            continue
        last = t
        readings = [x for x in batch if isinstance(x, Reading)]
        for s in (x for x in batch if isinstance(x, DeviceStatus)):
            inputs.append(Input(t, 0, n, "status", s))
        if readings:
            inputs.append(Input(t, 1, n, "readings", readings))
    inputs.sort(key=lambda i: (i.t, i.rank, i.order))
    if not inputs:
        raise ReplayError(f"{p}: the raw capture holds no readings for driver {src.driver.name}")
    return Recording(path=p, source="capture", driver=src.driver.name, protocol=protocol or "",
                     opened=None, inputs=inputs, start=inputs[0].t, end=inputs[-1].t)


# ----------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class AlarmDifference:
    """A recorded alarm event with no recomputed counterpart, or the reverse, or one whose
    time moved by more than the tolerance."""

    what: str  # "recorded only", "recomputed only", "time differs"
    kind: str
    rule: str
    priority: str
    t: datetime
    other_t: datetime | None = None
    alarm_id: str = ""
    text: str = ""

    def line(self, start: datetime | None = None) -> str:
        at = _clock(self.t, start)
        extra = f" (recomputed at {_clock(self.other_t, start)})" if self.other_t is not None else ""
        return f"{at}  {self.what}: {self.kind.removeprefix('alarm_')} {self.rule or self.alarm_id}" \
               f"{' ' + self.priority if self.priority else ''}{extra}{': ' + self.text if self.text else ''}"


def _alarm_key(ev: Any) -> tuple[str, str, str]:
    prio = getattr(ev, "priority", None) or getattr(ev, "to_priority", None) or ""
    return ev.kind, ev.rule or ev.alarm_id.split("#", 1)[0], prio


def compare_alarms(recorded: Iterable[Any], recomputed: Iterable[Any], *, tolerance_s: float,
                   until: datetime | None = None) -> list[AlarmDifference]:
    """Pair recorded and recomputed alarm events of the same kind, rule and priority in time
    order; report the unpaired ones and the pairs further apart than ``tolerance_s``."""
    def keep(ev: Any) -> bool:
        return ev.kind in COMPARED_KINDS and (until is None or ev.t <= until)

    rec: dict[tuple[str, str, str], list[Any]] = {}
    new: dict[tuple[str, str, str], list[Any]] = {}
    for ev in filter(keep, recorded):
        rec.setdefault(_alarm_key(ev), []).append(ev)
    for ev in filter(keep, recomputed):
        new.setdefault(_alarm_key(ev), []).append(ev)
    out: list[AlarmDifference] = []
    for key in sorted(set(rec) | set(new)):
        a = sorted(rec.get(key, []), key=lambda e: e.t)
        b = sorted(new.get(key, []), key=lambda e: e.t)
        only_a: list[Any] = []
        only_b: list[Any] = []
        i = j = 0
        while i < len(a) and j < len(b):
            dt = (b[j].t - a[i].t).total_seconds()
            if abs(dt) <= tolerance_s:
                i, j = i + 1, j + 1
            elif dt > 0:
                only_a.append(a[i])
                i += 1
            else:
                only_b.append(b[j])
                j += 1
        only_a += a[i:]
        only_b += b[j:]
        kind, rule, prio = key
        n = min(len(only_a), len(only_b))
        for x, y in zip(only_a[:n], only_b[:n], strict=True):
            out.append(AlarmDifference("time differs", kind, rule, prio, x.t, y.t, x.alarm_id, describe(x)))
        for x in only_a[n:]:
            out.append(AlarmDifference("recorded only", kind, rule, prio, x.t, None, x.alarm_id, describe(x)))
        for y in only_b[n:]:
            out.append(AlarmDifference("recomputed only", kind, rule, prio, y.t, None, y.alarm_id,
                                       describe(y)))
    out.sort(key=lambda d: d.t)
    return out


def _clock(t: datetime | None, start: datetime | None) -> str:
    if t is None:
        return "--:--:--"
    if start is None:
        return f"{t:%H:%M:%S}"
    s = int(round((t - start).total_seconds()))
    sign = "-" if s < 0 else "+"
    s = abs(s)
    return f"{sign}{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# ----------------------------------------------------------------------------- replayer
class Replayer:
    """Runs a ``Recording`` through a fresh ``MonitorService`` on recorded time.

    ``advance_to(t)`` processes every input up to ``t`` and the engine's one-second ticks
    between them; ``seek(t)`` goes anywhere (backwards by rebuilding). ``session_out``
    records the replay into a new session file (then seeking backwards is refused: a
    session file is append-only). ``service`` is the current pipeline; ``recomputed`` the
    alarm events the engine raised so far; ``differences()`` compares them with the
    recorded ones. ``on_rebuild`` is called with the new service after a rebuild.
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
        from chairside.service import MonitorService

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
        self.problems = []
        svc.subscribe_events(self._on_event)
        self.service = svc
        opened = rec.opened or SessionOpened(
            t=rec.start, author="SYS", session_id="-", patient_id=CAPTURE_PATIENT, weight_kg=CAPTURE_WEIGHT_KG,
            weight_source="stated", protocol=protocol, staff=("SYS",))
        try:
            first = svc.replay_open(opened, path=self.session_out, protocol=protocol)
        except CommandRefused as exc:
            raise ReplayError(f"{self.session_out or rec.path}: {exc}") from None
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
        if self.on_rebuild is not None:
            self.on_rebuild(svc)

    def _on_event(self, ev: Any) -> None:
        if ev.kind in ALARM_EVENT_KINDS:
            self.recomputed.append(ev)

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
        raised = [e for e in self.recomputed if e.kind == "alarm_raised"]
        recorded = [e for e in rec.recorded_alarms if e.kind == "alarm_raised"]
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


def _by_priority(raised: list[Any]) -> dict[str, int]:
    c = Counter(e.priority for e in raised)
    return {p: c.get(p, 0) for p in ("high", "medium", "low")}


# ----------------------------------------------------------------------------- the console's side
class ReplayService:
    """What the console holds during a replay: the current pipeline's snapshots (with
    ever-increasing versions across rebuilds), the lock-free views, and every command
    refused (a replay never changes a record)."""

    READ_ONLY = ("open_session", "resume_session", "complete_checklist", "record_baseline", "start_infusion",
                 "change_rate", "pause_infusion", "resume_infusion", "stop_infusion", "change_phase",
                 "record_observation", "record_intervention", "add_note", "amend", "acknowledge", "pause_audio",
                 "assess_discharge", "close_session")

    def __init__(self, player: ReplayPlayer) -> None:
        self._player = player
        self._subs: list[Callable[[Snapshot], None]] = []
        self._version = 0
        self._vlock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name in ReplayService.READ_ONLY:
            def refused(*_a: Any, **_k: Any) -> Any:
                raise CommandRefused("this is a replay: the record cannot be changed")
            return refused
        return getattr(self._player.replayer.service, name)

    def _stamp(self, snap: Snapshot) -> Snapshot:
        with self._vlock:
            self._version += 1
            return replace(snap, version=self._version)

    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        self._subs.append(callback)

        def unsubscribe() -> None:
            if callback in self._subs:
                self._subs.remove(callback)
        return unsubscribe

    def publish(self) -> None:
        snap = self.snapshot()
        for cb in list(self._subs):
            try:
                cb(snap)
            except Exception:  # noqa: BLE001
                log.exception("replay snapshot subscriber failed")

    def snapshot(self) -> Snapshot:
        with self._player.lock:
            r = self._player.replayer
            snap = r.service.snapshot()
            rec = r.recording
        store = replace(snap.device.store, state="replay",
                        message=f"recording the replay to {r.session_out}" if r.session_out else "replay")
        device = replace(snap.device, port=rec.path.name, driver=rec.driver or "session file", link_state="replay",
                         store=store)
        notices = tuple(n for n in snap.notices if "in memory only" not in n and "NOT RECORDING" not in n)
        return self._stamp(replace(snap, device=device, notices=notices))

    def start(self) -> None:
        self._player.start()

    def stop(self) -> None:
        self._player.stop()

    def shutdown(self) -> None:
        self._player.stop()
        self._player.replayer.close()


class _PlayerClock:
    """The console's clock during a replay: the recorded time of the current pipeline;
    ``monotonic`` is the wall's (it paces only the screen, and a seek back must not turn
    it backwards)."""

    def __init__(self, player: ReplayPlayer) -> None:
        self._player = player

    def now(self) -> datetime:
        return self._player.replayer.position

    def monotonic(self) -> float:
        return self._player.timer()


class ReplayPlayer:
    """Paces a ``Replayer`` at ``speed`` x real time in its own thread (None: as fast as it
    goes); pause, speed steps, seeks and jumps are called from any thread. After each step
    one snapshot is published (so the screen follows at any speed)."""

    STEP_WALL_S = 0.1
    MAX_STEP_SIM_S = 120.0

    def __init__(self, replayer: Replayer, *, speed: float | None = 1.0, playing: bool = True,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.replayer = replayer
        self.speed = speed
        self.playing = playing
        self.lock = threading.RLock()
        self.timer = timer
        self.service = ReplayService(self)
        self.clock = _PlayerClock(self)
        self.message = ""
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- controls
    def status(self) -> dict[str, Any]:
        """What the console's replay banner shows (see ``chairside.ui.replay_banner``)."""
        with self.lock:
            r = self.replayer
            pos = r.position
            recomputed = sum(1 for e in r.recomputed if e.kind == "alarm_raised")
            recorded = None
            diffs = None
            if r.recording.source == "session":
                recorded = sum(1 for e in r.recording.recorded_alarms if e.kind == "alarm_raised" and e.t <= pos)
                diffs = len(r.differences())
            return {"playing": self.playing, "speed": self.speed_label, "clock": f"{pos:%H:%M:%S}",
                    "elapsed_s": r.elapsed_s, "total_s": r.recording.duration_s, "file": r.recording.path.name,
                    "recomputed": recomputed, "recorded": recorded, "differences": diffs,
                    "message": self.message}

    @property
    def speed_label(self) -> str:
        return "max" if self.speed is None else f"x{self.speed:g}"

    def toggle(self) -> None:
        with self.lock:
            if not self.playing and self.replayer.finished:
                self.message = "at the end of the recording"
                return
            self.playing = not self.playing
        self._wake.set()

    def faster(self) -> None:
        self._step_speed(+1)

    def slower(self) -> None:
        self._step_speed(-1)

    def _step_speed(self, d: int) -> None:
        with self.lock:
            i = SPEEDS.index(self.speed) if self.speed in SPEEDS else 0
            self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, i + d))]
        self._wake.set()

    def set_speed(self, speed: float | None) -> None:
        with self.lock:
            self.speed = speed
        self._wake.set()

    def _go(self, what: Callable[[], None]) -> None:
        with self.lock:
            try:
                what()
                self.message = ""
            except CommandRefused as exc:
                self.message = str(exc)
        self.service.publish()

    def seek_by(self, seconds: float) -> None:
        self._go(lambda: self.replayer.seek_by(seconds))

    def seek(self, t: datetime) -> None:
        self._go(lambda: self.replayer.seek(t))

    def jump(self, which: str) -> None:
        """``which``: next_alarm, previous_alarm, next_event, previous_event."""
        def go() -> None:
            t = getattr(self.replayer, which)()
            if t is None:
                raise CommandRefused("no " + which.replace("_", " "))
            self.replayer.seek(t)
        self._go(go)

    # -- thread
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="chairside-replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def step(self, wall_dt: float) -> bool:
        """Advance by ``wall_dt`` wall seconds at the current speed; False when at the end."""
        with self.lock:
            r = self.replayer
            if r.finished:
                self.playing = False
                return False
            sim_dt = self.MAX_STEP_SIM_S if self.speed is None else wall_dt * self.speed
            r.advance_to(r.position + timedelta(seconds=sim_dt))
            if r.finished:
                self.playing = False
                self.message = "end of the recording"
        self.service.publish()
        return True

    def _run(self) -> None:
        last = self.timer()
        while not self._stop.is_set():
            self._wake.wait(self.STEP_WALL_S)
            self._wake.clear()
            now = self.timer()
            dt, last = now - last, now
            if self.playing:
                try:
                    self.step(min(dt, 1.0))
                except Exception:  # noqa: BLE001 - a replay bug must not kill the console
                    log.exception("replay step failed")
                    self.playing = False
                    self.message = "replay stopped by an error (see the diagnostic log)"
