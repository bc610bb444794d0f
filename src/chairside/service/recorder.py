"""The ONE write path: an event is checked against the session state, stored, routed to the
alarm engine, and put on the timeline; readings are stored before anything sees them.

Owns: ``Recorder`` — the record (``store``: a ``chairside.store.SessionFile``, or a
``MemoryStore`` before a session is opened and for a replay kept in memory), the session
state (``chairside.domain.state``, applied once per event), the alarm engine and EVERY call
into it. ``Recorder.engine_effects`` is the one spot where a stored table event reaches the
engine (live commands, a resumed session and a replay alike); readings, device status, the
1-s tick, acknowledgements and audio pauses are the engine's other inputs, also here only.
Nurse commands build domain events (``chairside.service.commands``) and hand them to
``record_all``; they never call the engine.

Rules: every reading and event is appended to the store BEFORE any subscriber sees it; a
clinical event is applied to the state before it is stored, so an event the state refuses
never reaches the record; the session file degrades to memory by itself on a disk failure
(``SessionFile.degraded``), the recorder does not second-guess it.
Must not import: textual, chairside.ui, chairside.transport.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from chairside.alarms import AlarmEngine, LimitsError, LimitsProfile, load_profile
from chairside.domain.clock import Clock
from chairside.domain.events import (
    CLINICAL_EVENT_KINDS,
    AlarmAcknowledged,
    AlarmSilenced,
    DeviceStatusChanged,
    Event,
    SessionOpened,
)
from chairside.domain.protocol import ProtocolTemplate, load_template
from chairside.domain.readings import DeviceStatus, Reading
from chairside.domain.state import EMPTY_STATE, SessionState, StateError, apply, fold
from chairside.service.memory import MemoryStore
from chairside.service.model import CommandRefused, StoreStatus
from chairside.service.view import View
from chairside.store import SessionFile, SessionFileError

log = logging.getLogger("chairside.service")

Store = SessionFile | MemoryStore


class Recorder:
    """The record, the state and the alarm engine, kept in step (callers hold the service lock)."""

    def __init__(self, clock: Clock, protocol: str, view_factory: Callable[[Recorder], View], *,
                 limits_file: str | Path | None = None) -> None:
        self.clock = clock
        self.protocol_name = protocol
        # a limits file chosen at start (setting / --limits / the start screen); None: the
        # protocol template's own profile
        self.limits_file: Path | None = Path(limits_file).expanduser() if limits_file else None
        try:
            self.template: ProtocolTemplate = load_template(protocol)
        except ValueError as exc:
            raise CommandRefused(str(exc)) from None
        self.store: Store = MemoryStore()
        self.state: SessionState = EMPTY_STATE
        self.mono_origin = clock.monotonic()
        self.view = view_factory(self)
        self.readings_count = 0  # every reading handed to the store (the snapshot's counter)
        self.readings_stored_mono: float | None = None
        self._file_events = 0  # what this session file holds (the device line's counts)
        self._file_readings = 0
        self.replaying = False  # a replay's record: its infusion completion comes from the recording
        self.new_engine()

    # ------------------------------------------------------------------ templates + engine
    def use_protocol(self, name: str) -> None:
        """Switch the protocol template (refused when there is no such template)."""
        if name == self.protocol_name:
            return
        try:
            self.template = load_template(name)
        except ValueError as exc:
            raise CommandRefused(str(exc)) from None
        self.protocol_name = name

    def load_limits(self, limits_file: str | Path | None = None) -> LimitsProfile:
        """Load and check the limits the engine will use: ``limits_file`` (which then stays
        chosen), else the one chosen at start, else the protocol template's profile. A bad
        file is refused (``CommandRefused`` naming the file and the bad entry) and changes
        nothing."""
        chosen = Path(limits_file).expanduser() if limits_file else self.limits_file
        try:
            prof = load_profile(chosen if chosen is not None else self.template.limits_profile)
        except LimitsError as exc:
            raise CommandRefused(f"limits file {exc}") from None
        self.limits_file = chosen
        self.profile = prof
        return prof

    def new_engine(self, *, reload: bool = True) -> None:
        """A fresh alarm engine (on the limits loaded again unless ``reload`` is False)."""
        if reload or getattr(self, "profile", None) is None:
            self.load_limits()
        self.engine = AlarmEngine(self.profile, t0=self.clock.now(), template=self.template,
                                  phase=self.state.phase if self.state.session else "pre_infusion")

    def mono(self) -> float:
        return round(self.clock.monotonic() - self.mono_origin, 6)

    def _call(self, fn: Callable[..., Any], *args: Any) -> list[Event]:
        try:
            res = fn(*args)
        except Exception:  # noqa: BLE001 - a rule bug must not stop monitoring (logged with its trace)
            log.exception("alarm engine %s failed", getattr(fn, "__name__", fn))
            return []
        return list(res or [])

    def engine_effects(self, ev: Event, now: datetime) -> list[Event]:
        """THE one spot where a stored table event reaches the alarm engine (its one
        event -> effects table, ``AlarmEngine.on_event``); returns what the engine raised on
        it, stored. Live commands and a replay both come through here."""
        if ev.kind not in CLINICAL_EVENT_KINDS:
            return []
        return self._store_all(self._call(self.engine.on_event, ev, now))

    def prime_engine(self, state: SessionState, now: datetime) -> list[Event]:
        """A fresh engine for a resumed record: restored from the folded state."""
        return self._store_all(self._call(self.engine.restore, state, now))

    def assume_infusing(self, now: datetime) -> list[Event]:
        return self._store_all(self._call(self.engine.set_infusing, True, now))

    def tick(self, now: datetime) -> list[Event]:
        """One engine tick (escalation, delays, overdue NIBP), then the store commits what it
        buffered (a readings group per tick at most: the record's grouping depends on it)."""
        out = self._store_all(self._call(self.engine.tick, now))
        self.flush()
        return out

    def acknowledge(self, alarm_id: str | None, by: str, now: datetime) -> list[Event]:
        ack = AlarmAcknowledged(t=now, alarm_id=alarm_id or "*", by=by, author=by)
        return self._store_all(self._call(self.engine.on_event, ack, now))

    def pause_audio(self, by: str, now: datetime, seconds: float | None = None) -> list[Event]:
        if seconds is None:
            return self._store_all(self._call(self.engine.pause_audio, by, now))
        return self._store_all(self._call(self.engine.pause_audio, by, now, seconds))

    def replay_staff_action(self, ev: AlarmAcknowledged | AlarmSilenced, now: datetime) -> list[Event]:
        """A recorded acknowledgement or audio pause, given to the recomputed alarms again."""
        return self._store_all(self._call(self.engine.on_event, ev, now))

    # ------------------------------------------------------------------ the reading path
    def process(self, batch: Sequence[Reading | DeviceStatus], *, port: str, driver: str) -> list[Event]:
        """Readings stored first, then the device status and the engine; returns stored events."""
        now = self.clock.now()
        out: list[Event] = []
        readings = [r if r.receive_time else r.model_copy(update={"receive_time": now})
                    for r in batch if isinstance(r, Reading)]
        if readings:
            self._store_readings(readings)  # stored first
            self.readings_stored_mono = self.clock.monotonic()
            self.readings_count += len(readings)
        for item in batch:
            if isinstance(item, DeviceStatus):
                out.extend(self._on_status(item, now, port, driver))
        for r in readings:
            self.view.note_reading(r, now)
            out.extend(self._store_all(self._call(self.engine.on_reading, r, now)))
        return out

    def _store_readings(self, readings: list[Reading]) -> None:
        if self.state.closed:
            return  # monitoring goes on after the close; the record has ended
        try:
            self.store.append_readings(readings)
        except SessionFileError as exc:  # keep monitoring; the store status says so
            log.error("storing readings failed: %s", exc)
            return
        if isinstance(self.store, SessionFile):
            self._file_readings += len(readings)

    def _on_status(self, s: DeviceStatus, now: datetime, port: str, driver: str) -> list[Event]:
        if s.receive_time is None:
            s = s.model_copy(update={"receive_time": now})
        prev = self.view.note_status(s)
        if s.kind in ("link_up", "link_lost"):
            level = logging.WARNING if (s.kind == "link_lost" and s.active) else logging.INFO
            log.log(level, "link %s: %s %s", port, s.kind if s.active else f"{s.kind} ended", s.detail)
        elif "transport" in s.flags:
            log.info("transport %s: %s active=%s %s", port, s.kind, s.active, s.detail)
        out: list[Event] = []
        # a repeated identical active condition is not a new event
        if not (s.active and prev is not None and prev.detail == s.detail):
            out.append(self.record(DeviceStatusChanged(t=now, status=s, port=port, driver=driver)))
        out.extend(self._store_all(self._call(self.engine.on_device_status, s, now)))
        return out

    # ------------------------------------------------------------------ storing events
    def record(self, ev: Event, *, clinical: bool = False) -> Event:
        """Check against the state, append (durable for clinical events), apply, timeline.
        No engine call: ``record_all`` routes what it stored."""
        clinical = clinical or ev.kind in CLINICAL_EVENT_KINDS
        if ev.mono == 0.0:
            ev = ev.model_copy(update={"mono": self.mono()})
        preview = None
        if self.state.session is not None or ev.kind == "session_opened":
            try:
                preview = apply(self.state, ev)
            except StateError as exc:
                if clinical:
                    raise CommandRefused(str(exc)) from None
                log.warning("state refused a machine event (stored anyway): %s", exc)
        try:
            stored = self.store.append(ev)
        except (StateError, SessionFileError) as exc:  # refused or closed: nothing written
            if clinical:
                raise CommandRefused(str(exc)) from None
            log.warning("the session file refused a machine event (not recorded): %s", exc)
            return ev
        if isinstance(self.store, SessionFile):
            self._file_events += 1
        if preview is not None:
            if preview.last_seq == stored.seq:
                self.state = preview
            else:  # the store committed a readings group first, or numbered differently
                try:
                    self.state = apply(self.state, stored)
                except StateError as exc:
                    log.warning("state: %s", exc)
        self.view.timeline_add(stored)
        return stored

    def _store_all(self, events: Iterable[Event]) -> list[Event]:
        return [self.record(e) for e in events]

    def record_all(self, events: Iterable[Event], now: datetime) -> list[Event]:
        """Store a command's events in order, then route each to the engine (in order);
        returns the stored events followed by what the engine raised on them."""
        stored = [self.record(e) for e in events]
        effects: list[Event] = []
        for ev in stored:
            effects.extend(self.engine_effects(ev, now))
        return stored + effects

    # ------------------------------------------------------------------ the record's life
    def start_record(self, opened: SessionOpened, path: Path | None) -> Event:
        """The new record begins with ``opened`` (a new session file at ``path``, or in memory
        with None); the state, the timeline and a fresh alarm engine start with it."""
        if path is None:
            self.store = MemoryStore()
            stored: Event = self.store.append(opened)
        else:
            try:
                sf = SessionFile.create(path, opened, self.clock)
            except (SessionFileError, OSError) as exc:
                raise CommandRefused(str(exc)) from None
            self.store = sf
            self._file_events, self._file_readings = 1, 0
            stored = sf.opened
        self.state = apply(EMPTY_STATE, stored)
        self.view.nibp_log = []
        self.view.timeline_reset([stored])
        self.new_engine(reload=False)  # alarms start with the record, on the limits it names
        return stored

    def resume(self, p: Path) -> list[Event]:
        """Open an existing session file and rebuild the state from its events; returns them."""
        try:
            sf = SessionFile.open(p, self.clock)
        except (SessionFileError, OSError, sqlite3.Error, ValueError) as exc:  # the message says where
            raise CommandRefused(str(exc)) from None
        try:
            events = sf.events()
            state = fold(events)
        except (SessionFileError, ValueError) as exc:
            sf.close()
            raise CommandRefused(f"{p}: cannot rebuild the session: {exc}") from None
        if state.closed:
            sf.close()
            raise CommandRefused(f"{p}: the session is closed (open it as a replay)")
        assert state.session is not None
        now = self.clock.now()
        if state.last_t is not None and now < state.last_t:
            sf.close()
            raise CommandRefused(f"{p}: the clock ({now:%Y-%m-%d %H:%M:%S}) is behind the record's last event "
                                 f"({state.last_t:%Y-%m-%d %H:%M:%S}): time in the record never runs backwards")
        try:
            self.use_protocol(state.session.protocol)
        except CommandRefused as exc:
            log.warning("resume: protocol %s not available: %s", state.session.protocol, exc)
        self.store = sf
        self._file_events, self._file_readings = len(events), 0
        self.state = state
        self.view.nibp_log = list(state.nibp_log)
        self.replaying = False
        elapsed = (self.clock.now() - state.session.opened_t).total_seconds()
        self.mono_origin = self.clock.monotonic() - max(elapsed, state.last_mono or 0.0)
        self.view.timeline_reset(events)
        self._resume_limits(events[0] if events else None, p)
        self.new_engine(reload=False)
        self.prime_engine(state, self.clock.now())
        now = self.clock.now()
        for r in list(state.latest.values()):
            self.view.note_reading(r, now)
        for r in sf.readings()[-3000:]:
            self.view.note_reading(r, now)
        return events

    def _resume_limits(self, opened: Any, p: Path) -> None:
        """A resumed record goes on with the limits file it names (unless one was chosen at
        start); a file that is gone or changed since is logged, and the chosen or the
        template's limits are used."""
        named = getattr(opened, "limits_file", None) if getattr(opened, "kind", "") == "session_opened" else None
        if self.limits_file is None and named and Path(named).is_file():
            try:
                prof = load_profile(named)
            except LimitsError as exc:
                log.warning("resume %s: the record's limits file is refused now (%s); using the template's", p, exc)
            else:
                if prof.sha256 != getattr(opened, "limits_sha256", None):
                    log.warning("resume %s: the limits file %s changed since the session was opened "
                                "(sha256 %s, recorded %s)", p, named, prof.sha256[:16],
                                (getattr(opened, "limits_sha256", None) or "")[:16])
                self.limits_file = Path(named)
        elif named and self.limits_file is None:
            log.warning("resume %s: the record's limits file %s is not there; using the template's", p, named)
        self.load_limits()

    def flush(self) -> None:
        if isinstance(self.store, SessionFile) and self.store.closed:
            return
        try:
            self.store.flush()
        except SessionFileError as exc:
            log.error("store flush failed: %s", exc)

    def close_store(self) -> None:
        """Close the session file; events the disk never took are named in the log and the
        store status (the session file's own message)."""
        try:
            self.store.close()
        except SessionFileError as exc:
            log.error("closing the session file: %s", exc)

    def store_status(self) -> StoreStatus:
        s = self.store
        if isinstance(s, SessionFile):
            msg = s.degraded
            state = "memory" if msg else ("closed" if s.closed else "ok")
            return StoreStatus(state=state, path=str(s.path), message=msg or "",
                               events=self._file_events, readings=self._file_readings)
        ev_n, rd_n = s.counts
        return StoreStatus(state="none", message="no session open: readings are shown, not recorded",
                           events=ev_n, readings=rd_n)
