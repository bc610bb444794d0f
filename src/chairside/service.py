"""MonitorService: the headless heart of the console.

Owns: the wiring transport ``Link`` -> driver -> session state -> alarm engine -> session
file -> subscribers; the commands the nurse gives (acknowledge, audio pause, open/resume
session, checklist, baseline, infusion start/rate change/pause/resume/stop with the
dose arithmetic and the pre-infusion gate, observation, intervention, note, amendment,
phase change, discharge assessment, close); and the immutable ``Snapshot`` it publishes.

Rules it keeps:
- every reading and event is appended to the session file BEFORE any subscriber sees it;
  a clinical event is durable when the command that records it returns;
- a clinical event is applied to the session state (``chairside.domain.state.apply``)
  before it is stored, so an event the state refuses never reaches the record;
- one lock serialises the link's batches, the 1-s alarm tick and the commands;
- monitoring never stops: a lost link, bad bytes or a full disk become technical events
  and a loud notice in the snapshot (the session file degrades to memory by itself);
- time comes from the injected clock only.

Threads: the link's reader thread only enqueues batches; the service thread drains the
queue, runs ``engine.tick(now)`` every second, lets the store commit, and publishes.
Commands run in the caller's thread (the console calls them from a worker thread).

May import: every chairside layer except chairside.ui. Must not import: textual.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from chairside.domain.clock import Clock
from chairside.domain.events import (
    ALARM_EVENT_KINDS,
    CLINICAL_EVENT_KINDS,
    AlarmAcknowledged,
    Amendment,
    BaselineRecorded,
    ChecklistCompleted,
    DeviceStatusChanged,
    DischargeAssessed,
    InfusionPaused,
    InfusionRateChanged,
    InfusionResumed,
    InfusionStarted,
    InfusionStopped,
    InterventionGiven,
    NoteAdded,
    ObservationRecorded,
    PhaseChanged,
    SessionClosed,
    SessionOpened,
)
from chairside.domain.readings import DeviceStatus, Reading
from chairside.domain.state import EMPTY_STATE, SessionState, StateError, apply
from chairside.service_data import console_data
from chairside.service_model import (
    PRIORITY_RANK,
    AlarmView,
    CommandRefused,
    DeviceLine,
    DischargeBlocked,
    DischargeCheck,
    GateBlocked,
    InfusionView,
    SessionInfo,
    Snapshot,
    StoreStatus,
    Tile,
    TimelineItem,
    TrendSeries,
)
from chairside.service_store import GuardedStore, MemoryStore

log = logging.getLogger("chairside.service")

__all__ = [
    "MonitorService", "Snapshot", "CommandRefused", "GateBlocked", "DischargeBlocked",
    "DischargeCheck",
]

TILE_SPECS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # key, label, unit, params
    ("nibp", "NIBP", "mmHg", ("nibp_sys", "nibp_dia", "nibp_map")),
    ("hr", "HR", "bpm", ("hr",)),
    ("spo2", "SpO2", "%", ("spo2",)),
    ("pr", "PR", "bpm", ("pr",)),
)
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
MACHINE_KINDS = ALARM_EVENT_KINDS | {"device_status", "readings_recorded", "training"}


def _reason_from_flags(flags: Iterable[str]) -> str:
    flags = list(flags)
    for f in flags:
        base = f.split(":", 1)[0]
        if base in FLAG_TEXT:
            return FLAG_TEXT[base]
        if base == "marker":
            return "no value from the monitor"
    return flags[0].replace("_", " ") if flags else "invalid value"


class MonitorService:
    """Transport -> driver -> alarms -> store -> subscribers, plus the nurse's commands.

    Usage (live)::

        svc = MonitorService(clock=WallClock(), port="sim://uneventful?driver=ge-s5",
                             driver="ge-s5", protocol="iv-ketamine-depression")
        svc.subscribe(lambda snap: ...)      # called from service threads: be quick
        svc.start()                          # opens the port, starts the service thread
        svc.open_session(patient_id="P-1", weight_kg=70, staff=("AB",), path=...)
        svc.acknowledge(None, by="AB")       # durable when it returns
        svc.stop()

    Tests drive it without threads: ``svc.feed([...])`` processes outputs as the link
    would, ``svc.tick()`` runs one alarm tick; ``svc.snapshot()`` builds the snapshot now.
    Before a session is opened, readings are shown and kept in memory only (the snapshot
    says so); the session file starts with ``open_session`` or ``resume_session``.
    """

    def __init__(self, *, clock: Clock, port: str | None = None, driver: str = "ge-s5",
                 protocol: str | None = None, settings: Any = None,
                 link_factory: Callable[..., Any] | None = None,
                 serial_overrides: Mapping[str, Any] | None = None,
                 transport_config: Any = None, session_dir: Path | str | None = None,
                 tick_s: float = 1.0, simulated: bool = False, scenario: str | None = None,
                 sim_seed: int | None = None, raw_capture: Any = None) -> None:
        self.clock = clock
        self.port = port or ""
        self.driver_name = driver
        self.settings = settings
        self.protocol_name = protocol or _setting(settings, "protocol", "iv-ketamine-depression")
        self.session_dir = Path(session_dir) if session_dir else _session_dir(settings)
        self.tick_s = tick_s
        self.simulated = simulated
        self.scenario = scenario
        self.sim_seed = sim_seed
        self.data = console_data()
        self._lock = threading.RLock()
        self._inbox: queue.Queue[list[Any] | None] = queue.Queue()
        self._subs: list[Callable[[Snapshot], None]] = []
        self._event_subs: list[Callable[[Any], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._link: Any = None
        self._link_factory = link_factory
        self._serial_overrides = serial_overrides
        self._transport_config = transport_config
        self._raw_capture = raw_capture
        self._mono_origin = clock.monotonic()
        self._version = 0
        self._readings_count = 0
        self._readings_stored_mono: float | None = None
        self._decode_errors_seen = 0

        from chairside.domain.protocol import load_template

        if port and link_factory is None:
            from chairside.transport import check_port

            try:
                check_port(port)  # a port that can never open is refused before any record is made
            except ValueError as exc:
                raise CommandRefused(str(exc)) from None
        try:
            self.template = load_template(self.protocol_name)
        except ValueError as exc:
            raise CommandRefused(str(exc)) from None
        self.store: GuardedStore | MemoryStore = MemoryStore()
        self.state: SessionState = EMPTY_STATE
        self._new_engine()
        self._latest: dict[str, Reading] = {}
        self._latest_valid: dict[str, Reading] = {}
        self._nibp_time: datetime | None = None
        self._intervals: dict[str, deque[float]] = {}
        self._conditions: dict[str, DeviceStatus] = {}
        self._trend: dict[str, deque[tuple[datetime, float]]] = {p: deque() for p, _ in TREND_PARAMS}
        self._timeline: deque[TimelineItem] = deque(maxlen=TIMELINE_KEEP)
        self._link_state = "idle" if port else "none"

    # ------------------------------------------------------------------ engine + templates
    def _new_engine(self) -> None:
        from chairside.alarms import AlarmEngine, load_profile

        self.profile = load_profile(self.template.limits_profile)
        self.engine = AlarmEngine(self.profile, t0=self.clock.now(), template=self.template,
                                  phase=self.state.phase if self.state.session else "pre_infusion")

    def _nibp_cadence(self, phase: str, now_mono: float | None = None) -> float:
        """Seconds between scheduled NIBP checks (inf: none), tightened after a start/increase."""
        from chairside.domain.protocol import bp_cadence_s

        inc = self.state.infusion.last_start_or_increase_mono
        since = None
        if inc is not None:
            since = (self._mono() if now_mono is None else now_mono) - inc
        return bp_cadence_s(self.template, phase, since)

    # ------------------------------------------------------------------ views of the state
    @property
    def phase(self) -> str:
        return self.state.phase

    @property
    def weight(self) -> float:
        return self.state.weight_kg or 0.0

    @property
    def session_open(self) -> bool:
        return self.state.session is not None and not self.state.closed

    @property
    def discharged(self) -> bool:
        d = self.state.discharge
        return self.state.phase == "discharged" or bool(d is not None and d.discharged)

    # ------------------------------------------------------------------ subscribers
    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        """Call ``callback(snapshot)`` after every change (from a service thread)."""
        with self._lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)
        return unsubscribe

    def subscribe_events(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every stored event (readings groups excluded)."""
        with self._lock:
            self._event_subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._event_subs:
                    self._event_subs.remove(callback)
        return unsubscribe

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Open the port (in the link's thread) and start the service thread."""
        if self._thread is not None:
            return
        if self.port:
            self._link = self._make_link()
            self._link.start()
            self._link_state = "connecting"
        self._thread = threading.Thread(target=self._run, name="chairside-service", daemon=True)
        self._thread.start()
        log.info("service started: port=%s driver=%s protocol=%s", self.port, self.driver_name,
                 self.protocol_name)

    def _make_link(self) -> Any:
        if self._link_factory is not None:
            return self._link_factory(self.port, self.driver_name, clock=self.clock,
                                      on_output=self._on_output)
        from chairside.transport import open_source

        on_raw = self._raw_capture.write if self._raw_capture is not None else None
        from chairside.transport import config_from_settings

        config = self._transport_config or config_from_settings(self.settings)
        return open_source(self.port, self.driver_name, clock=self.clock, on_output=self._on_output,
                           on_raw=on_raw, serial=self._serial_overrides, config=config)

    @property
    def link(self) -> Any:
        return self._link

    @property
    def raw_capture(self) -> Any:
        """The ``--raw`` tee (a CaptureWriter) the link writes every received chunk to, or None."""
        return self._raw_capture

    def stop(self) -> None:
        """Stop the link and the service thread; commit buffered readings (the session stays open)."""
        self._stop.set()
        if self._link is not None:
            try:
                self._link.stop()
            except Exception:  # noqa: BLE001
                log.exception("link stop failed")
        self._inbox.put(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        with self._lock:
            self._drain()
            self._flush_store()
        log.info("service stopped")

    def shutdown(self) -> None:
        """Stop, then close the session file (without recording a close event)."""
        self.stop()
        with self._lock:
            try:
                self.store.close()
            except Exception:  # noqa: BLE001
                log.exception("store close failed")

    def _on_output(self, batch: list[Any]) -> None:
        # the link's thread: only enqueue
        self._inbox.put(batch)

    def _run(self) -> None:
        next_tick = self.clock.monotonic() + self.tick_s
        while not self._stop.is_set():
            # a simulated clock may run faster than the wall (its ``rate``): wait in wall
            # seconds, so the alarm ticks keep to about one per second of the session clock
            rate = getattr(self.clock, "rate", 1.0) or 1.0
            timeout = max(0.0, next_tick - self.clock.monotonic()) / max(rate, 1.0)
            try:
                batch = self._inbox.get(timeout=min(timeout, self.tick_s))
            except queue.Empty:
                batch = None
            try:
                if batch:
                    # take whatever else is waiting too: one publish for a burst
                    more = [batch]
                    while len(more) < 64:
                        try:
                            nxt = self._inbox.get_nowait()
                        except queue.Empty:
                            break
                        if nxt:
                            more.append(nxt)
                    self.feed([x for b in more for x in b])
                if self.clock.monotonic() >= next_tick:
                    next_tick = self.clock.monotonic() + self.tick_s
                    self.tick()
            except Exception as exc:  # noqa: BLE001 - the monitor must keep going
                log.exception("service loop error: %r", exc)

    def _drain(self) -> None:
        while True:
            try:
                batch = self._inbox.get_nowait()
            except queue.Empty:
                return
            if batch:
                self._process(batch)

    # ------------------------------------------------------------------ the reading path
    def feed(self, batch: Iterable[Reading | DeviceStatus]) -> None:
        """Process one batch from the link (stored, alarmed, then published)."""
        with self._lock:
            events = self._process(list(batch))
            snap = self._snapshot_for_subscribers()
        self._publish(snap, events)

    def _process(self, batch: list[Any]) -> list[Any]:
        now = self.clock.now()
        out: list[Any] = []
        readings = [r for r in batch if isinstance(r, Reading)]
        if readings:
            readings = [r if r.receive_time else r.model_copy(update={"receive_time": now}) for r in readings]
            self._store_readings(readings)  # stored first
            self._readings_stored_mono = self.clock.monotonic()
            self._readings_count += len(readings)
        for item in batch:
            if isinstance(item, DeviceStatus):
                out.extend(self._on_status(item, now))
        for r in readings:
            self._note_reading(r)
            out.extend(self._store_all(self._engine_call(self.engine.on_reading, r, now)))
        self._check_decode_errors()
        return out

    def _store_readings(self, readings: list[Reading]) -> None:
        try:
            committed = self.store.append_readings(readings)
        except Exception as exc:  # noqa: BLE001 - keep monitoring; shown in the notices
            log.exception("storing readings failed: %r", exc)
            return
        self._applied(committed)

    def _flush_store(self) -> None:
        try:
            self._applied(self.store.flush())
        except Exception:  # noqa: BLE001
            log.exception("store flush failed")

    def _applied(self, stored: Any) -> None:
        """Fold a readings group the store committed on its own into the state."""
        if stored is None or getattr(stored, "kind", None) != "readings_recorded":
            return
        try:
            self.state = apply(self.state, stored)
        except StateError as exc:
            log.warning("state: %s", exc)

    def _engine_call(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        try:
            res = fn(*args)
        except Exception:  # noqa: BLE001 - a rule bug must not stop monitoring
            log.exception("alarm engine %s failed", getattr(fn, "__name__", fn))
            return []
        return list(res or [])

    def _on_status(self, s: DeviceStatus, now: datetime) -> list[Any]:
        if s.receive_time is None:
            s = s.model_copy(update={"receive_time": now})
        key = s.kind if s.param is None else f"{s.kind}:{s.param}"
        prev = self._conditions.get(key)
        if s.active:
            self._conditions[key] = s
        else:
            self._conditions.pop(key, None)
        if s.kind in ("link_up", "link_lost"):
            self._link_state = "up" if (s.kind == "link_up" or not s.active) else "down"
            level = logging.WARNING if (s.kind == "link_lost" and s.active) else logging.INFO
            log.log(level, "link %s: %s %s", self.port, s.kind if s.active else f"{s.kind} ended", s.detail)
        elif "transport" in s.flags:
            log.info("transport %s: %s active=%s %s", self.port, s.kind, s.active, s.detail)
        out: list[Any] = []
        # a repeated identical active condition is not a new event
        if not (s.active and prev is not None and prev.detail == s.detail):
            ev = DeviceStatusChanged(t=now, status=s, port=self.port, driver=self.driver_name)
            out.append(self._store(ev))
        out.extend(self._store_all(self._engine_call(self.engine.on_device_status, s, now)))
        return out

    def _current_readings(self) -> list[Reading]:
        """The latest valid reading of each parameter that is not stale yet (NIBP: its whole set)."""
        now = self.clock.now()
        out: list[Reading] = []
        for p, r in self._latest_valid.items():
            cadence = self.data.nibp_cadence_s if p.startswith("nibp") else self.data.continuous_cadence_s
            t = r.receive_time or now
            if (now - t).total_seconds() <= self.data.stale_factor * cadence:
                out.append(r)
        return out

    def _note_reading(self, r: Reading) -> None:
        t = r.receive_time or self.clock.now()
        prev = self._latest_valid.get(r.param)
        self._latest[r.param] = r
        if r.value is not None and r.valid:
            if prev is not None and prev.receive_time is not None and r.param in ("hr", "spo2", "pr"):
                gap = (t - prev.receive_time).total_seconds()
                if gap > 0:
                    self._intervals.setdefault(r.param, deque(maxlen=8)).append(gap)
            self._latest_valid[r.param] = r
            if r.param == "nibp_sys":
                self._nibp_time = t
            series = self._trend.get(r.param)
            if series is not None:
                series.append((t, float(r.value)))
                horizon = t.timestamp() - self.data.trend_window_s
                while series and series[0][0].timestamp() < horizon:
                    series.popleft()

    def _check_decode_errors(self) -> None:
        link = self._link
        if link is None:
            return
        try:
            st = link.stats
        except Exception:  # noqa: BLE001
            return
        bad = st.frames_rejected + st.bytes_skipped
        if bad > self._decode_errors_seen:
            self._decode_errors_seen = bad
            last = list(st.errors)[-1] if st.errors else st.last_error
            log.warning("decode errors on %s: %d frames rejected, %d bytes skipped; last: %s",
                        self.port, st.frames_rejected, st.bytes_skipped, last)

    # ------------------------------------------------------------------ storing events
    def _mono(self) -> float:
        return round(self.clock.monotonic() - self._mono_origin, 6)

    def _store(self, ev: Any, *, clinical: bool = False) -> Any:
        """Validate against the state, append (durable for clinical events), apply, timeline."""
        if ev.mono == 0.0:
            ev = ev.model_copy(update={"mono": self._mono()})
        if self.state.session is not None or ev.kind == "session_opened":
            try:
                preview = apply(self.state, ev)
            except StateError as exc:
                if clinical or ev.kind in CLINICAL_EVENT_KINDS:
                    raise CommandRefused(str(exc)) from None
                log.warning("state refused a machine event (stored anyway): %s", exc)
                preview = None
        else:
            preview = None
        try:
            stored = self.store.append(ev)
        except StateError as exc:  # the session file refused it: nothing written, the file stays good
            if clinical or ev.kind in CLINICAL_EVENT_KINDS:
                raise CommandRefused(str(exc)) from None
            log.warning("the session file refused a machine event (not recorded): %s", exc)
            return ev
        if preview is not None:
            if preview.last_seq == stored.seq:
                self.state = preview
            else:  # the store committed a readings group first, or numbered differently
                try:
                    self.state = apply(self.state, stored)
                except StateError as exc:
                    log.warning("state: %s", exc)
        self._timeline_add(stored)
        return stored

    def _store_all(self, events: Iterable[Any]) -> list[Any]:
        return [self._store(e) for e in events]

    def _timeline_add(self, ev: Any) -> None:
        if ev.kind in ("readings_recorded", "training"):
            return  # a training run's own log is the instructor's and the debrief's, not the trainee's
        text, prio = _describe(ev)
        if text:
            self._timeline.append(TimelineItem(seq=ev.seq, t=ev.t, kind=ev.kind, author=ev.author,
                                               text=text, priority=prio))

    def _snapshot_for_subscribers(self) -> Snapshot | None:
        """The snapshot to publish; not built when nobody subscribes (a headless replay)."""
        return self._build_snapshot() if self._subs else None

    def _publish(self, snap: Snapshot | None, events: list[Any]) -> None:
        for ev in events:
            for cb in list(self._event_subs):
                try:
                    cb(ev)
                except Exception:  # noqa: BLE001
                    log.exception("event subscriber failed")
        if snap is None:
            return
        for cb in list(self._subs):
            try:
                cb(snap)
            except Exception:  # noqa: BLE001
                log.exception("snapshot subscriber failed")

    def tick(self) -> None:
        """One alarm-engine tick (escalation, delays, overdue NIBP), store commit, publish."""
        with self._lock:
            now = self.clock.now()
            events = self._store_all(self._engine_call(self.engine.tick, now))
            try:
                tick = getattr(self.store, "tick", None) or getattr(self.store, "flush")
                self._applied(tick())
            except Exception:  # noqa: BLE001
                log.exception("store tick failed")
            snap = self._snapshot_for_subscribers()
        self._publish(snap, events)

    # ------------------------------------------------------------------ commands
    def _command(self, build: Callable[[datetime], list[Any]]) -> list[Any]:
        """Run a command under the lock: build events, store them durably, publish.

        ``build`` returns events and/or lists of engine events; the first clinical event
        is validated against the state before anything is stored.
        """
        with self._lock:
            now = self.clock.now()
            stored: list[Any] = []
            for ev in build(now):
                if isinstance(ev, list):
                    stored.extend(self._store_all(ev))
                else:
                    stored.append(self._store(ev, clinical=ev.kind in CLINICAL_EVENT_KINDS))
            for ev in [e for e in stored if e.kind in CLINICAL_EVENT_KINDS]:
                stored.extend(self._store_all(self._engine_call(self.engine.on_event, ev, now)))
            snap = self._snapshot_for_subscribers()
        self._publish(snap, stored)
        return stored

    def _need_session(self) -> None:
        if self.state.session is None:
            raise CommandRefused("no session is open")
        if self.state.closed:
            raise CommandRefused("the session is closed")

    @staticmethod
    def _author(author: str) -> str:
        a = (author or "").strip()
        if not a:
            raise CommandRefused("staff initials are required")
        return a

    # -- session
    def open_session(self, *, patient_id: str, weight_kg: float, staff: Iterable[str],
                     weight_source: str = "measured", weight_confirmed_by: str | None = None,
                     protocol: str | None = None, path: Path | str | None = None,
                     training: bool = False) -> Path:
        """Create the session file and record ``session_opened`` (durable on return)."""
        from chairside.domain.dose import DoseError, check_weight
        from chairside.domain.protocol import load_template

        staff = tuple(s.strip() for s in staff if s and s.strip())
        if not staff:
            raise CommandRefused("staff initials are required")
        if not (patient_id or "").strip():
            raise CommandRefused("a pseudonymous patient ID is required")
        try:
            weight = check_weight(weight_kg)
        except DoseError as exc:
            raise CommandRefused(str(exc)) from None
        if weight_source not in ("measured", "stated", "chart"):
            raise CommandRefused("weight source must be measured, stated or chart")
        with self._lock:
            if self.session_open:
                raise CommandRefused("a session is already open")
            if protocol and protocol != self.protocol_name:
                try:
                    self.template = load_template(protocol)
                except ValueError as exc:
                    raise CommandRefused(str(exc)) from None
                self.protocol_name = protocol
            now = self.clock.now()
            session_id = uuid.uuid4().hex[:12]
            target = Path(path) if path else self.session_dir / (
                f"{now:%Y%m%d-%H%M%S}-{_safe(patient_id)}-{session_id}.chairside")
            self._mono_origin = self.clock.monotonic()
            opened = SessionOpened(
                t=now, mono=0.0, author=staff[0], session_id=session_id,
                patient_id=patient_id.strip(), weight_kg=weight, weight_source=weight_source,  # type: ignore[arg-type]
                weight_confirmed_by=(weight_confirmed_by or "").strip() or None,
                protocol=self.protocol_name, staff=staff, app_version=_version(),
                simulated=self.simulated, sim_seed=self.sim_seed, scenario=self.scenario,
                training=training)
            first = self._start_record(opened, target)
            # the values on screen when the session is opened go into the record and through the
            # new engine: a 205/125 seen at check-in must not vanish from the alarm bar on "open"
            carried = self._process(self._current_readings())
            snap = self._snapshot_for_subscribers()
        self._publish(snap, [first, *carried])
        log.info("session opened: %s (protocol %s)", target, self.protocol_name)
        return target

    def _start_record(self, opened: SessionOpened, path: Path | None) -> Any:
        """Under the lock: the new record begins with ``opened`` (a new session file at
        ``path``, or in memory with None); the state, the timeline and a fresh alarm engine
        start with it. Returns the stored ``session_opened``."""
        from chairside.store import SessionFile, SessionFileError

        if path is None:
            self.store = MemoryStore()
            stored = self.store.append(opened)
        else:
            try:
                sf = SessionFile.create(path, opened, self.clock)
            except (SessionFileError, OSError) as exc:
                raise CommandRefused(str(exc)) from None
            self.store = GuardedStore(sf, path)
            self.store._events = 1
            stored = sf.opened
        self.state = apply(EMPTY_STATE, stored)
        self._timeline.clear()
        self._timeline_add(stored)
        self._new_engine()  # alarms start with the record
        return stored

    def resume_session(self, path: Path | str) -> None:
        """Open an existing session file and rebuild the state from its events."""
        from chairside.domain.protocol import load_template
        from chairside.domain.state import fold
        from chairside.store import SessionFile

        p = Path(path)
        if not p.exists():
            raise CommandRefused(f"{p}: no such session file")
        with self._lock:
            if self.session_open:
                raise CommandRefused("a session is already open")
            try:
                sf = SessionFile.open(p, self.clock)
            except Exception as exc:  # noqa: BLE001 - damaged/foreign file: the message says where
                raise CommandRefused(str(exc)) from None
            try:
                events = sf.events()
                state = fold(events)
            except Exception as exc:  # noqa: BLE001
                sf.close()
                raise CommandRefused(f"{p}: cannot rebuild the session: {exc}") from None
            if state.closed:
                sf.close()
                raise CommandRefused(f"{p}: the session is closed (open it as a replay)")
            assert state.session is not None
            if state.session.protocol != self.protocol_name:
                try:
                    self.template = load_template(state.session.protocol)
                    self.protocol_name = state.session.protocol
                except ValueError as exc:
                    log.warning("resume: protocol %s not available: %s", state.session.protocol, exc)
            self.store = GuardedStore(sf, p)
            self.store._events = len(events)
            self.state = state
            elapsed = (self.clock.now() - state.session.opened_t).total_seconds()
            self._mono_origin = self.clock.monotonic() - max(elapsed, state.last_mono or 0.0)
            self._timeline.clear()
            for ev in events:
                self._timeline_add(ev)
            now = self.clock.now()
            self._new_engine()
            self._store_all(self._engine_call(self.engine.restore, state, now))
            for r in list(state.latest.values()):
                self._note_reading(r)
            try:
                for r in sf.readings()[-3000:]:
                    self._note_reading(r)
            except Exception:  # noqa: BLE001
                log.exception("resume: reading the readings failed")
            snap = self._snapshot_for_subscribers()
        self._publish(snap, [])
        log.info("session resumed: %s", p)

    def complete_checklist(self, *, author: str, contraindications: Mapping[str, bool],
                           hours_fasted: float | None, escort_confirmed: bool, consent: bool,
                           notes: str = "") -> Any:
        self._need_session()
        a = self._author(author)
        known = {i.key for i in self.data.checklist}
        unknown = set(contraindications) - known
        if unknown:
            raise CommandRefused(f"unknown checklist item(s): {', '.join(sorted(unknown))}")
        missing = known - set(contraindications)
        if missing:
            raise CommandRefused("answer every checklist item (missing: " + ", ".join(sorted(missing)) + ")")
        if hours_fasted is not None and (not math.isfinite(hours_fasted) or hours_fasted < 0):
            raise CommandRefused("hours fasted must be a number >= 0")
        return self._command(lambda now: [ChecklistCompleted(
            t=now, author=a, contraindications={k: bool(v) for k, v in contraindications.items()},
            hours_fasted=hours_fasted, escort_confirmed=bool(escort_confirmed), consent=bool(consent),
            notes=notes.strip())])[0]

    def record_baseline(self, *, author: str, sbp: float | None = None, dbp: float | None = None,
                        hr: float | None = None, spo2: float | None = None,
                        moaas: int | None = None, cadss: int | None = None) -> Any:
        """Record the baseline; values not given are taken from the latest readings."""
        self._need_session()
        a = self._author(author)

        def build(now: datetime) -> list[Any]:
            def latest(p: str) -> float | None:
                r = self._latest_valid.get(p)
                return None if r is None else r.value
            from_device = sbp is None
            ev = BaselineRecorded(
                t=now, author=a,
                sbp=sbp if sbp is not None else latest("nibp_sys"),
                dbp=dbp if dbp is not None else latest("nibp_dia"),
                map=latest("nibp_map") if from_device else None,
                hr=hr if hr is not None else latest("hr"),
                spo2=spo2 if spo2 is not None else latest("spo2"),
                moaas=moaas, cadss=cadss)
            if ev.sbp is None or ev.dbp is None:
                raise CommandRefused("no blood pressure to use as the baseline: take an NIBP "
                                     "reading or enter the values")
            return [ev]
        return self._command(build)[0]

    # -- infusion
    def gate_check(self) -> tuple[bool, tuple[str, ...]]:
        """(blocks_start, reasons) of the pre-infusion gate on the latest BP / SpO2 / HR.

        Lock-free (reads immutable state and the latest readings), so the UI may call it."""
        sbp, dbp, spo2, hr = self._gate_values()
        try:
            res = self.engine.gate(sbp, dbp, spo2, hr)
        except Exception:  # noqa: BLE001
            log.exception("gate check failed")
            return True, ("the gate check failed (see the diagnostic log)",)
        blocks = bool(res.blocks_start)
        reasons = tuple(res.reasons)
        if blocks:  # name what blocks (the advisory tiers below it add nothing)
            import operator

            ops = {">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le}
            vals = {"sbp": sbp, "dbp": dbp, "spo2": spo2, "hr": hr}
            blocking = tuple(f"{g.reason} ({g.param.upper()} {vals[g.param]:g}) {g.source}"
                             for g in self.profile.gate
                             if g.blocks_start and vals[g.param] is not None
                             and ops[g.op](vals[g.param], g.limit))
            reasons = blocking or reasons
        if sbp is None or dbp is None:
            blocks = True
            reasons += ("no blood pressure measured before the start",)
        return blocks, reasons

    def _gate_values(self) -> tuple[float | None, float | None, float | None, float | None]:
        def latest(p: str) -> float | None:
            r = self._latest_valid.get(p)
            return None if r is None else r.value
        sbp, dbp = latest("nibp_sys"), latest("nibp_dia")
        b = self.state.baseline
        if sbp is None and b is not None:
            sbp, dbp = b.sbp, b.dbp
        return sbp, dbp, latest("spo2"), latest("hr")

    def dose_preview(self, *, concentration_mg_ml: float, dose_mg_kg: float | None = None,
                     rate_mg_kg_h: float | None = None, duration_min: float | None = None) -> dict[str, float]:
        """Pump numbers for an order (rate mg/kg/h, mg/h, mL/h, total mg), nothing recorded."""
        if not self.weight:
            raise CommandRefused("open a session with the patient's weight first")
        return _dose_numbers(self.template, self.weight, dose=dose_mg_kg, rate_mg_kg_h=rate_mg_kg_h,
                             duration_min=duration_min, concentration=concentration_mg_ml)

    def start_infusion(self, *, author: str, concentration_mg_ml: float,
                       dose_mg_kg: float | None = None, rate_mg_kg_h: float | None = None,
                       duration_min: float | None = None, lot: str = "", diluent: str = "",
                       bag_volume_ml: float | None = None, confirmed_by: str | None = None,
                       gate_override_reason: str = "", above_usual_reason: str = "",
                       reason: str = "") -> Any:
        """Start the infusion. Refused with ``GateBlocked`` when the pre-infusion gate (BP
        >= the blocking limit, no BP at all, a contraindication) blocks and no override
        reason is given; with ``CommandRefused`` for impossible or unconfirmed orders."""
        from chairside.domain.dose import DoseError, check_dose

        self._need_session()
        a = self._author(author)
        st = self.state
        if st.infusion.status != "not_started":
            raise CommandRefused(f"the infusion is already {st.infusion.status.replace('_', ' ')}")
        checklist = st.checklist
        if checklist is None:
            raise CommandRefused("complete the pre-infusion checklist first")
        if not checklist.consent:
            raise CommandRefused("consent is not recorded in the checklist")
        present = [k for k, v in checklist.contraindications.items() if v]
        blocks, reasons = self.gate_check()
        if present:
            blocks = True
            reasons += ("contraindication present: " + ", ".join(k.replace("_", " ") for k in present),)
        if blocks and not gate_override_reason.strip():
            raise GateBlocked(reasons)
        dosing = self.template.dosing
        if dose_mg_kg is None and rate_mg_kg_h is None:
            if dosing.basis == "mg_per_kg":
                dose_mg_kg = dosing.dose
            elif dosing.basis == "mg_per_kg_h":
                rate_mg_kg_h = dosing.dose
        if duration_min is None:
            duration_min = dosing.duration_min
        order = dose_mg_kg if dose_mg_kg is not None else rate_mg_kg_h
        if order is not None and dosing.basis != "mg_fixed":
            try:
                check_dose(self.template, order, reason=above_usual_reason)
            except DoseError as exc:
                raise CommandRefused(str(exc)) from None
        nums = _dose_numbers(self.template, self.weight, dose=dose_mg_kg, rate_mg_kg_h=rate_mg_kg_h,
                             duration_min=duration_min, concentration=concentration_mg_ml)
        confirmer = (confirmed_by or "").strip() or (st.session.weight_confirmed_by if st.session else None)
        if dosing.confirm_weight and not confirmer:
            raise CommandRefused("a second person must confirm the weight (confirmed by)")

        def build(now: datetime) -> list[Any]:
            out: list[Any] = [InfusionStarted(
                t=now, author=a, drug=dosing.drug, concentration_mg_ml=float(concentration_mg_ml),
                rate_mg_kg_h=nums["rate_mg_kg_h"], rate_ml_h=nums["rate_ml_h"], reason=reason.strip(),
                route=dosing.route, dose_mg_kg=dose_mg_kg, duration_min=duration_min, lot=lot.strip(),
                diluent=diluent.strip(), bag_volume_ml=bag_volume_ml,
                gate_override_reason=gate_override_reason.strip() if blocks else "",
                above_usual_reason=above_usual_reason.strip(), confirmed_by=confirmer)]
            if self.state.phase == "pre_infusion":
                out.append(PhaseChanged(t=now, author=a, from_phase="pre_infusion",
                                        to_phase="infusion", reason="infusion started"))
            return out
        return self._command(build)[0]

    def change_rate(self, *, author: str, rate_mg_kg_h: float, reason: str,
                    above_usual_reason: str = "") -> Any:
        from chairside.domain.dose import DoseError, check_dose

        self._need_session()
        a = self._author(author)
        inf = self.state.infusion
        if inf.status not in ("running", "paused"):
            raise CommandRefused("no infusion to change")
        if not reason.strip():
            raise CommandRefused("a rate change needs a reason")
        conc = inf.concentration_mg_ml
        if not conc or conc <= 0:
            raise CommandRefused("the bag concentration is unknown")
        if self.template.dosing.basis == "mg_per_kg_h":
            try:
                check_dose(self.template, rate_mg_kg_h, reason=above_usual_reason)
            except DoseError as exc:
                raise CommandRefused(str(exc)) from None
        nums = _dose_numbers(self.template, self.weight, rate_mg_kg_h=rate_mg_kg_h, concentration=conc)

        def build(now: datetime) -> list[Any]:
            return [InfusionRateChanged(
                t=now, author=a, drug=inf.drug or self.template.dosing.drug, concentration_mg_ml=conc,
                rate_mg_kg_h=nums["rate_mg_kg_h"], rate_ml_h=nums["rate_ml_h"], reason=reason.strip(),
                old_rate_mg_kg_h=inf.rate_mg_kg_h, old_rate_ml_h=inf.rate_ml_h,
                above_usual_reason=above_usual_reason.strip())]
        return self._command(build)[0]

    def pause_infusion(self, *, author: str, reason: str) -> Any:
        self._need_session()
        a = self._author(author)
        if self.state.infusion.status != "running":
            raise CommandRefused("the infusion is not running")
        if not reason.strip():
            raise CommandRefused("a pause needs a reason")
        return self._command(lambda now: [InfusionPaused(t=now, author=a, reason=reason.strip())])[0]

    def resume_infusion(self, *, author: str, reason: str = "") -> Any:
        self._need_session()
        a = self._author(author)
        inf = self.state.infusion
        if inf.status != "paused":
            raise CommandRefused("the infusion is not paused")
        return self._command(lambda now: [
            InfusionResumed(t=now, author=a, drug=inf.drug or self.template.dosing.drug,
                            concentration_mg_ml=inf.concentration_mg_ml or 0.0,
                            rate_mg_kg_h=inf.rate_mg_kg_h, rate_ml_h=inf.rate_ml_h, reason=reason.strip())])[0]

    def stop_infusion(self, *, author: str, reason: str) -> Any:
        self._need_session()
        a = self._author(author)
        if self.state.infusion.status not in ("running", "paused"):
            raise CommandRefused("no infusion to stop")
        if not reason.strip():
            raise CommandRefused("a stop needs a reason")

        def build(now: datetime) -> list[Any]:
            out: list[Any] = [InfusionStopped(t=now, author=a, reason=reason.strip())]
            if self.state.phase == "infusion":
                out.append(PhaseChanged(t=now, author=a, from_phase="infusion", to_phase="recovery",
                                        reason="infusion stopped"))
            return out
        return self._command(build)[0]

    def change_phase(self, *, author: str, to_phase: str, reason: str) -> Any:
        self._need_session()
        a = self._author(author)
        if to_phase not in ("pre_infusion", "infusion", "recovery", "discharged"):
            raise CommandRefused(f"unknown phase {to_phase!r}")
        if to_phase == self.state.phase:
            raise CommandRefused(f"already in {to_phase}")
        if not reason.strip():
            raise CommandRefused("a phase change needs a reason")
        frm = self.state.phase
        return self._command(lambda now: [
            PhaseChanged(t=now, author=a, from_phase=frm, to_phase=to_phase,  # type: ignore[arg-type]
                         reason=reason.strip())])[0]

    # -- observations and notes
    def record_observation(self, *, author: str, scale: str, score: float | None = None,
                           items: Mapping[str, Any] | None = None, text: str = "") -> Any:
        """Record an observation (validated against its scale) and let the engine see it
        (combined rules: MOAA/S with SpO2, crisis symptoms with SBP)."""
        self._need_session()
        a = self._author(author)
        if scale == "other":
            if not text.strip():
                raise CommandRefused("describe the observation")
            value = score
        else:
            from chairside.domain.scales import ScaleError, check_observation

            try:
                value = check_observation(scale, score, items)
            except ScaleError as exc:
                raise CommandRefused(str(exc)) from None

        def build(now: datetime) -> list[Any]:
            ev = ObservationRecorded(t=now, author=a, scale=scale, score=value,
                                     items=dict(items or {}), text=text.strip())
            stored = self._store(ev, clinical=True)
            return [[stored], self._engine_call(self.engine.on_event, stored, now)]
        out = self._command_prestored(build)
        return out[0]

    def _command_prestored(self, build: Callable[[datetime], list[Any]]) -> list[Any]:
        """Like ``_command`` where ``build`` stores its first event itself (lists of stored
        events come back first, then lists of engine events to store)."""
        with self._lock:
            now = self.clock.now()
            parts = build(now)
            stored: list[Any] = list(parts[0])
            for extra in parts[1:]:
                stored.extend(self._store_all(extra))
            snap = self._snapshot_for_subscribers()
        self._publish(snap, stored)
        return stored

    def record_intervention(self, *, author: str, drug: str, dose: float | None = None,
                            dose_unit: str = "", route: str = "", lot: str = "",
                            given_by: str = "", ordered_by: str = "", reason: str = "",
                            response: str = "") -> Any:
        self._need_session()
        a = self._author(author)
        if not drug.strip():
            raise CommandRefused("choose the intervention")
        if dose is not None and (not math.isfinite(dose) or dose <= 0):
            raise CommandRefused("the dose must be a number > 0")
        return self._command(lambda now: [InterventionGiven(
            t=now, author=a, drug=drug.strip(), dose=dose, dose_unit=dose_unit.strip(), route=route.strip(),
            lot=lot.strip(), given_by=(given_by or a).strip(), ordered_by=ordered_by.strip(),
            reason=reason.strip(), response=response.strip())])[0]

    def record_manual_vitals(self, *, author: str, sbp: float | None = None, dbp: float | None = None,
                             hr: float | None = None, spo2: float | None = None, how: str = "") -> Any:
        """Vitals measured by hand or by another device (a manual cuff, a Masimo-only chair):
        readings with ``origin="manual"``, stored and alarmed like the monitor's (so a manual
        BP is the BP check the schedule asks for), and a note saying who took them."""
        self._need_session()
        a = self._author(author)
        vals = {"sbp": sbp, "dbp": dbp, "hr": hr, "spo2": spo2}
        for name, v in vals.items():
            if v is not None and (not math.isfinite(v) or v <= 0):
                raise CommandRefused(f"{name.upper()} must be a number > 0")
        if (sbp is None) != (dbp is None):
            raise CommandRefused("give both the systolic and the diastolic pressure")
        if sbp is not None and dbp is not None and sbp <= dbp:
            raise CommandRefused(f"systolic {sbp:g} must be above diastolic {dbp:g}")
        if spo2 is not None and spo2 > 100:
            raise CommandRefused(f"SpO2 {spo2:g} % is above 100 %")
        if all(v is None for v in vals.values()):
            raise CommandRefused("enter at least one value")
        now = self.clock.now()

        def manual(param: str, value: float, unit: str) -> Reading:
            return Reading(param=param, value=float(value), unit=unit, receive_time=now, source="manual",
                           origin="manual")
        readings = []
        if sbp is not None and dbp is not None:
            readings += [manual("nibp_sys", sbp, "mmHg"), manual("nibp_dia", dbp, "mmHg"),
                         manual("nibp_map", round(dbp + (sbp - dbp) / 3), "mmHg")]
        if hr is not None:
            readings.append(manual("pr", hr, "bpm"))
        if spo2 is not None:
            readings.append(manual("spo2", spo2, "%"))
        self.feed(readings)  # stored, then alarmed, then shown, like the monitor's
        parts = ([f"BP {sbp:g}/{dbp:g} mmHg"] if sbp is not None else []) + \
            ([f"pulse {hr:g}/min"] if hr is not None else []) + ([f"SpO2 {spo2:g} %"] if spo2 is not None else [])
        text = f"manual vitals ({how.strip() or 'measured by hand'}): " + ", ".join(parts)
        return self._command(lambda now: [NoteAdded(t=now, author=a, text=text)])[0]

    def add_note(self, *, author: str, text: str) -> Any:
        self._need_session()
        a = self._author(author)
        if not text.strip():
            raise CommandRefused("the note is empty")
        return self._command(lambda now: [NoteAdded(t=now, author=a, text=text.strip())])[0]

    def amend(self, *, author: str, target_seq: int, reason: str,
              replacement: Mapping[str, Any] | None = None) -> Any:
        """Record an amendment of an earlier clinical entry (the original stays)."""
        self._need_session()
        a = self._author(author)
        target = self.state.events.get(target_seq)
        if target is None:
            raise CommandRefused(f"no entry #{target_seq} to amend")
        if target.kind in MACHINE_KINDS:
            raise CommandRefused(f"entry #{target_seq} ({target.kind}) is a machine record and "
                                 "cannot be amended; add a note instead")
        if not reason.strip():
            raise CommandRefused("an amendment needs a reason")
        return self._command(lambda now: [Amendment(t=now, author=a, target_seq=target_seq,
                                                    reason=reason.strip(),
                                                    replacement=dict(replacement or {}))])[0]

    def amendable_events(self) -> list[TimelineItem]:
        """Clinical entries that may be amended (newest first; lock-free)."""
        state = self.state
        out = []
        for seq in sorted(state.events, reverse=True):
            ev = state.events[seq]
            if ev.kind in MACHINE_KINDS or ev.kind == "amendment":
                continue
            text, _ = _describe(state.current(seq))
            out.append(TimelineItem(seq=seq, t=ev.t, kind=ev.kind, author=ev.author, text=text))
        return out

    def recorded_events(self) -> list[Any]:
        """Every event of the open session in order, readings groups left out (lock-free)."""
        ev = self.state.events
        return [ev[k] for k in sorted(ev)]

    def event(self, seq: int) -> Any:
        """The current (amended) version of a recorded entry (lock-free)."""
        return self.state.current(seq)

    # -- alarms
    def acknowledge(self, alarm_id: str | None = None, *, by: str) -> list[Any]:
        """Acknowledge one alarm (or every active one with None); durable on return."""
        b = self._author(by)
        return self._command(lambda now: [self._engine_call(self.engine.on_event, AlarmAcknowledged(
            t=now, alarm_id=alarm_id or "*", by=b, author=b), now)])

    def pause_audio(self, *, by: str) -> list[Any]:
        """Pause the alarm audio for the profile's audio-pause time (120 s by default)."""
        b = self._author(by)
        return self._command(lambda now: [self._engine_call(self.engine.pause_audio, b, now)])

    # -- discharge
    def discharge_check(self, *, aldrete: Mapping[str, int] | None = None,
                        padss: Mapping[str, int] | None = None, escort_present: bool = False,
                        instructions_given: bool = False) -> DischargeCheck:
        """The discharge criteria as they stand now (nothing recorded; lock-free)."""
        return self._discharge_check(self.clock.now(), aldrete, padss, escort_present,
                                     instructions_given)

    def _discharge_check(self, now: datetime, aldrete: Mapping[str, int] | None,
                         padss: Mapping[str, int] | None, escort_present: bool,
                         instructions_given: bool) -> DischargeCheck:
        from chairside.domain.scales import ScaleError, aldrete_total, padss_total

        d = self.template.discharge
        inf = self.state.infusion
        reasons: list[str] = []
        min_rec = self.template.recovery.min_minutes
        from_start = self.template.recovery.counted_from == "start"
        ref = inf.started_t if from_start else inf.stopped_t
        since = (now - ref).total_seconds() / 60 if ref is not None else None
        rec_met = since is not None and since >= min_rec
        if since is None:
            reasons.append("no dose given yet" if from_start else "the infusion has not been stopped")
        elif not rec_met:
            reasons.append(f"minimum recovery {min_rec:g} min not reached ({since:.0f} min so far)")
        at = pt = None
        try:
            at = aldrete_total(aldrete) if aldrete else None
        except ScaleError as exc:
            reasons.append(str(exc))
        try:
            pt = padss_total(padss) if padss else None
        except ScaleError as exc:
            reasons.append(str(exc))
        a_ok = at is not None and d.aldrete_min is not None and at >= d.aldrete_min
        p_ok = pt is not None and d.padss_min is not None and pt >= d.padss_min
        rule = d.score_rule
        scores_met = {"aldrete_or_padss": a_ok or p_ok, "aldrete_and_padss": a_ok and p_ok,
                      "aldrete": a_ok, "padss": p_ok}[rule]
        if not scores_met:
            parts = []
            if rule != "padss":
                parts.append(f"Aldrete {'not scored' if at is None else at} (needs ≥ {d.aldrete_min})")
            if rule != "aldrete":
                parts.append(f"PADSS {'not scored' if pt is None else pt} (needs ≥ {d.padss_min})")
            reasons.append("scores: " + (" or " if rule == "aldrete_or_padss" else " and ").join(parts))
        within, detail = self._vitals_within(d.vitals_within_pct)
        if not within:
            reasons.append(detail)
        if d.escort_required and not escort_present:
            reasons.append("escort not present")
        if not instructions_given:
            reasons.append("discharge instructions not given")
        return DischargeCheck(
            min_recovery_min=min_rec, minutes_since_end=since, min_recovery_met=rec_met,
            aldrete_total=at, padss_total=pt,
            score_threshold=d.aldrete_min if d.aldrete_min is not None else d.padss_min,
            scores_met=scores_met, vitals_within=within, vitals_detail=detail,
            escort_present=escort_present, instructions_given=instructions_given,
            blocked_reasons=tuple(reasons))

    def _vitals_within(self, pct: float) -> tuple[bool | None, str]:
        """BP and HR within ``pct`` % of the recorded baseline, from the latest readings."""
        b = self.state.baseline
        if b is None:
            return None, "no baseline recorded: vitals cannot be compared"
        checks = []
        for name, base, param in (("SBP", b.sbp, "nibp_sys"), ("DBP", b.dbp, "nibp_dia"), ("HR", b.hr, "hr")):
            if base is None or base <= 0:
                continue
            r = self._latest_valid.get(param)
            if r is None or r.value is None:
                return None, f"no current {name} reading to compare with the baseline"
            checks.append((name, r.value, base, (r.value - base) / base * 100))
        if not checks:
            return None, "no baseline values recorded"
        bad = [c for c in checks if abs(c[3]) > pct]
        if bad:
            return False, (f"vitals not within {pct:g} % of baseline: "
                           + ", ".join(f"{n} {v:.0f} vs {bv:.0f} ({dv:+.0f} %)" for n, v, bv, dv in bad))
        return True, (f"within {pct:g} % of baseline: "
                      + ", ".join(f"{n} {v:.0f} vs {bv:.0f} ({dv:+.0f} %)" for n, v, bv, dv in checks))

    def assess_discharge(self, *, author: str, aldrete: Mapping[str, int] | None = None,
                         padss: Mapping[str, int] | None = None, escort_present: bool = False,
                         instructions_given: bool = False, override_reason: str = "",
                         discharge: bool = True) -> Any:
        """Record the discharge assessment; with ``discharge``, discharge the patient.

        Refused with ``DischargeBlocked`` (the reasons) when the criteria are not met and
        no override reason is given; an override is recorded with its reason.
        """
        self._need_session()
        a = self._author(author)
        if self.discharged:
            raise CommandRefused("the patient is already discharged")

        def build(now: datetime) -> list[Any]:
            chk = self._discharge_check(now, aldrete, padss, escort_present, instructions_given)
            override = override_reason.strip()
            if discharge and chk.blocked_reasons and not override:
                raise DischargeBlocked(chk.blocked_reasons)
            do = discharge and (chk.criteria_met or bool(override))
            out: list[Any] = [DischargeAssessed(
                t=now, author=a, aldrete=dict(aldrete or {}), aldrete_total=chk.aldrete_total,
                padss=dict(padss or {}), padss_total=chk.padss_total,
                vitals_within_20pct=chk.vitals_within, minutes_since_end=chk.minutes_since_end,
                min_recovery_met=chk.min_recovery_met, escort_present=escort_present,
                instructions_given=instructions_given, criteria_met=chk.criteria_met,
                blocked_reasons=chk.blocked_reasons,
                override_reason=override if chk.blocked_reasons else "", discharged=do)]
            if do and self.state.phase != "discharged":
                out.append(PhaseChanged(t=now, author=a, from_phase=self.state.phase,  # type: ignore[arg-type]
                                        to_phase="discharged", reason="discharged"))
            return out
        return self._command(build)[0]

    def close_session(self, *, author: str, reason: str = "") -> Any:
        """Record ``session_closed`` and close the file (monitoring goes on, unrecorded)."""
        self._need_session()
        a = self._author(author)
        stored = self._command(lambda now: [SessionClosed(t=now, author=a, reason=reason.strip())])
        with self._lock:
            try:
                self.store.close()
            except Exception as exc:  # noqa: BLE001
                log.error("closing the session file: %r", exc)
                raise CommandRefused(f"closing the session file: {exc}") from None
            snap = self._snapshot_for_subscribers()
        self._publish(snap, [])
        return stored[0]

    # ------------------------------------------------------------------ training
    def record_training(self, *, source: str, action: str, detail: str = "", sim_t: float | None = None,
                        args: Mapping[str, Any] | None = None, author: str = "SIM") -> Any:
        """Record one entry of a training run's log (``chairside.training``): what the
        scenario, the simulated devices or the instructor did. Refused with no open session."""
        from chairside.domain.events import TrainingEvent

        self._need_session()
        return self._command(lambda now: [TrainingEvent(
            t=now, author=author, source=source, action=action, detail=detail,  # type: ignore[arg-type]
            sim_t=sim_t, args=dict(args or {}))])[0]

    # ------------------------------------------------------------------ replay
    # ``chairside.replay`` drives these on a ManualClock set to the recorded times; the
    # console's keys never reach them. Readings and device status of a replay go through
    # ``feed`` like a live link's; what the engine raises on them is recomputed, not copied.
    def replay_open(self, opened: SessionOpened, *, path: Path | str | None = None,
                    protocol: str | None = None) -> Any:
        """Begin the record of a replay with a copy of the recorded ``session_opened`` (a new
        session id; ``protocol`` overrides the template). ``path``: a new session file; None
        keeps the replay in memory."""
        from chairside.domain.protocol import load_template

        with self._lock:
            if self.state.session is not None:
                raise CommandRefused("a session is already open")
            name = protocol or opened.protocol
            try:
                self.template = load_template(name)
            except ValueError as exc:
                raise CommandRefused(str(exc)) from None
            self.protocol_name = name
            self._mono_origin = self.clock.monotonic()
            first = opened.model_copy(update={
                "seq": -1, "t": self.clock.now(), "mono": 0.0, "session_id": uuid.uuid4().hex[:12],
                "protocol": name, "app_version": _version()})
            stored = self._start_record(first, None if path is None else Path(path))
            snap = self._snapshot_for_subscribers()
        self._publish(snap, [stored])
        return stored

    def replay_event(self, ev: Any) -> list[Any]:
        """Re-apply one recorded event at the clock's (recorded) time.

        A clinical event is stored again as it was (new sequence number, same author and
        content) and the alarm engine hears of it as it did live (baseline, phase, infusion
        running or not, observations). A staff member's acknowledgement or audio pause is
        given to the engine again, which records it on the recomputed alarms. The engine's
        own alarm events and readings are not copied (they are recomputed from ``feed``).
        Raises CommandRefused when the state refuses the event.
        """
        kind = ev.kind
        with self._lock:
            now = self.clock.now()
            stored: list[Any] = []
            if kind in CLINICAL_EVENT_KINDS:
                copy = ev.model_copy(update={"seq": -1, "mono": 0.0})
                first = self._store(copy, clinical=True)
                stored.append(first)
                stored.extend(self._store_all(self._engine_call(self.engine.on_event, first, now)))
            elif kind == "alarm_acknowledged" and ev.by:
                stored.extend(self._store_all(self._engine_call(self.engine.on_event, ev, now)))
            elif kind == "training":  # a training run's log: kept with the replay, no engine call
                stored.append(self._store(ev.model_copy(update={"seq": -1, "mono": 0.0})))
            elif kind == "alarm_silenced" and ev.by and ev.mode == "audio_paused":
                stored.extend(self._store_all(self._engine_call(self.engine.on_event, ev, now)))
            snap = self._snapshot_for_subscribers()
        self._publish(snap, stored)
        return stored

    def replay_assume_infusing(self) -> list[Any]:
        """A raw capture carries no infusion record: let the engine treat the replay as
        infusing (the replay's note and phase change say so)."""
        with self._lock:
            stored = self._store_all(self._engine_call(self.engine.set_infusing, True, self.clock.now()))
        self._publish(None, stored)
        return stored

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._build_snapshot()

    def readings_stored_mono(self) -> float | None:
        """Clock monotonic time of the last readings handed to the store (for the bench)."""
        return self._readings_stored_mono

    def _build_snapshot(self) -> Snapshot:
        from chairside.domain.dose import totals

        now = self.clock.now()
        self._version += 1
        st = self.state
        phase = st.phase
        alarms = self._alarm_views()
        tiles = self._tiles(now, phase, alarms)
        inf = st.infusion
        weight = self.weight
        started = inf.status != "not_started"
        tot = totals(st, now, weight or None) if started else None
        end = inf.stopped_t if inf.status == "stopped" else now
        infusion = InfusionView(
            state=inf.status, drug=inf.drug or self.template.dosing.drug,
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
            target_dose_mg_kg=inf.dose_mg_kg, weight_kg=weight or None)
        next_bp = None
        if st.session is not None and not self.discharged:
            cadence = self._nibp_cadence(phase)
            if not math.isinf(cadence):
                ref = self._nibp_time
                if ref is None or (st.phase_seqs and self._phase_t() and self._phase_t() > ref):
                    ref = self._phase_t() or ref
                next_bp = 0.0 if ref is None else (ref - now).total_seconds() + cadence
        min_rec_left = None
        if not self.discharged:
            rec = self.template.recovery
            ref_t = inf.started_t if rec.counted_from == "start" else inf.stopped_t
            if ref_t is not None:
                min_rec_left = rec.min_minutes - (now - ref_t).total_seconds() / 60
        if isinstance(self.store, GuardedStore):
            store_status = self.store.status()
        else:
            ev_n, rd_n = self.store.counts
            store_status = StoreStatus(state="none", message="no session open: readings are shown, not recorded",
                                       events=ev_n, readings=rd_n)
        link_stats = None
        if self._link is not None:
            try:
                link_stats = self._link.stats
            except Exception:  # noqa: BLE001
                link_stats = None
        device = DeviceLine(
            port=self.port or "(none)", driver=self.driver_name,
            link_state=link_stats.state if link_stats else self._link_state,
            readings_per_min=link_stats.readings_per_min if link_stats else 0.0,
            errors=(link_stats.frames_rejected + link_stats.write_errors + link_stats.disconnects)
            if link_stats else 0,
            last_error=link_stats.last_error if link_stats else "", store=store_status)
        notices = []
        if store_status.warning:
            notices.append(store_status.message or "SESSION FILE PROBLEM: recording in memory only")
        if device.link_state == "down" or "link_lost" in self._conditions:
            notices.append("MONITOR LINK LOST — values are not updating")
        elif "no_data" in self._conditions:
            notices.append("NO DATA FROM THE MONITOR")
        if "high_error_rate" in self._conditions:
            notices.append("MANY BAD FRAMES FROM THE MONITOR — check the cable and the settings")
        trends = []
        for param, label in TREND_PARAMS:
            pts = tuple(((now - t).total_seconds(), v) for t, v in self._trend[param])
            low, high = self._limits(param, phase)
            trends.append(TrendSeries(param=param, label=label, points=pts, low=low, high=high))
        audio, paused = self._audio(now)
        s = st.session
        b = st.baseline
        info = SessionInfo(
            open=self.session_open, session_id=s.session_id if s else "",
            patient_id=s.patient_id if s else "", protocol=self.protocol_name,
            protocol_title=self.template.title, weight_kg=weight or None, phase=phase,
            opened_at=s.opened_t if s else None, checklist_done=st.checklist is not None,
            escort_confirmed=bool(st.checklist and st.checklist.escort_confirmed),
            baseline={"sbp": b.sbp, "dbp": b.dbp, "hr": b.hr, "spo2": b.spo2} if b else {},
            staff=s.staff if s else (), closed=st.closed, simulated=self.simulated,
            discharged=self.discharged)
        return Snapshot(
            now=now, version=self._version, session=info, tiles=tiles, alarms=alarms,
            audio_priority=audio, audio_paused_s=paused, infusion=infusion,
            next_bp_due_s=next_bp, min_recovery_left_min=min_rec_left, device=device,
            trends=tuple(trends), trend_window_s=self.data.trend_window_s,
            timeline=tuple(self._timeline), notices=tuple(notices),
            last_reading_seq=self._readings_count, readings_stored_mono=self._readings_stored_mono)

    def _phase_t(self) -> datetime | None:
        if not self.state.phase_seqs:
            return self.state.session.opened_t if self.state.session else None
        ev = self.state.events.get(self.state.phase_seqs[-1])
        return ev.t if ev is not None else None

    def _alarm_views(self) -> tuple[AlarmView, ...]:
        try:
            active = list(self.engine.active())
        except Exception:  # noqa: BLE001
            log.exception("engine.active failed")
            return ()
        return tuple(AlarmView(
            alarm_id=a.id, priority=a.priority, message=a.message, alarm_class=a.alarm_class,
            param=a.param, value=a.last_value if a.last_value is not None else a.value, limit=a.limit,
            source_tag=a.source_tag, since=a.since, acknowledged=a.acknowledged, latched=a.latched,
            condition_active=a.condition, audio_paused=a.audio_paused_until is not None, rule=a.rule)
            for a in active)

    def _audio(self, now: datetime) -> tuple[str | None, float | None]:
        try:
            audio = self.engine.audio_priority()
        except Exception:  # noqa: BLE001
            log.exception("engine.audio_priority failed")
            audio = None
        paused = None
        try:
            untils = [a.audio_paused_until for a in self.engine.active()
                      if a.audio_paused_until is not None and not a.acknowledged]
            if untils:
                left = (max(untils) - now).total_seconds()
                paused = left if left > 0 else None
        except Exception:  # noqa: BLE001
            pass
        return (audio if audio in PRIORITY_RANK else None), paused

    def _limits(self, param: str, phase: str) -> tuple[float | None, float | None]:
        """The least severe absolute limits of a parameter in a phase (drawn beside it)."""
        low = high = None
        for ld in self.profile.ladder:
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

    def _limit_source(self, param: str, phase: str) -> str:
        tags: set[str] = set()
        for ld in self.profile.ladder:
            if ld.param == param and not ld.relative:
                tags.update(t.source for t in ld.tiers_for(phase))
        return "".join(sorted(tags))

    def _tiles(self, now: datetime, phase: str, alarms: tuple[AlarmView, ...]) -> tuple[Tile, ...]:
        out = []
        link_down = "link_lost" in self._conditions or "no_data" in self._conditions
        for key, label, unit, params in TILE_SPECS:
            main = params[0]
            latest = self._latest.get(main)
            valid = self._latest_valid.get(main)
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
                    d = self._latest_valid.get("nibp_dia")
                    m = self._latest_valid.get("nibp_map")
                    value2 = d.value if d else None
                    value3 = m.value if m else None
            if value is None:
                for cond_key in self._conditions:
                    kind = cond_key.split(":", 1)[0]
                    if key in STATUS_TILES.get(kind, ()):
                        reason = FLAG_TEXT.get(kind, kind.replace("_", " "))
            cadence = self._tile_cadence(key, phase)
            stale = age is not None and age > self.data.stale_factor * cadence
            if value is not None and key != "nibp" and stale and link_down:
                value, reason = None, "no data from the monitor"
            if value is None:
                stale = False
                if link_down and reason in (None, "no data yet"):
                    reason = "no data from the monitor"
            lo, hi = self._limits(main, phase)
            lo2 = hi2 = None
            if key == "nibp":
                lo2, hi2 = self._limits("nibp_dia", phase)
            prio = None
            for a in alarms:
                if a.param in params and (prio is None or PRIORITY_RANK[a.priority] > PRIORITY_RANK[prio]):
                    prio = a.priority
            out.append(Tile(key=key, label=label, unit=unit, value=value, value2=value2, value3=value3,
                            age_s=age, stale=stale,
                            missing_reason=(reason or "no data") if value is None else None,
                            low=lo, high=hi, low2=lo2, high2=hi2,
                            limit_source=self._limit_source(main, phase), alarm=prio,
                            source=latest.source if latest is not None else ""))
        return tuple(out)

    def _tile_cadence(self, key: str, phase: str) -> float:
        if key == "nibp":
            c = self._nibp_cadence(phase)
            return self.data.nibp_cadence_s if math.isinf(c) else c
        gaps = self._intervals.get(key)
        if gaps:
            return max(sorted(gaps)[len(gaps) // 2], 1.0)
        return self.data.continuous_cadence_s


# ---------------------------------------------------------------------- helpers
def _setting(settings: Any, name: str, default: Any) -> Any:
    if settings is None:
        return default
    v = getattr(settings, name, None)
    return default if v in (None, "") else v


def _session_dir(settings: Any) -> Path:
    v = _setting(settings, "session_dir", None) or _setting(settings, "session_folder", None)
    if v:
        return Path(v)
    from platformdirs import user_data_dir

    return Path(user_data_dir("chairside", appauthor=False)) / "sessions"


def _version() -> str:
    try:
        from chairside import __version__

        return str(__version__)
    except Exception:  # noqa: BLE001
        return ""


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text.strip())[:32] or "patient"


def _dose_numbers(template: Any, weight: float, *, dose: float | None = None,
                  rate_mg_kg_h: float | None = None, duration_min: float | None = None,
                  concentration: float) -> dict[str, float]:
    """rate mg/kg/h, mg/h, mL/h and the order's total mg (``chairside.domain.dose``)."""
    from chairside.domain.dose import DoseError, plan_from_dose, rate_from_order

    try:
        if rate_mg_kg_h is None:
            if dose is None or duration_min is None:
                raise CommandRefused("give a dose and a duration, or a rate")
            plan = plan_from_dose(weight, dose, duration_min, concentration)
            r, total = plan.rate, plan.total_mg
        else:
            r = rate_from_order(weight, rate_mg_kg_h, concentration)
            if r.mg_kg_h <= 0:
                raise CommandRefused("the rate must be > 0 mg/kg/h")
            total = r.mg_h * (duration_min or 0.0) / 60.0
    except DoseError as exc:
        raise CommandRefused(str(exc)) from None
    return {"rate_mg_kg_h": r.mg_kg_h, "rate_mg_h": r.mg_h, "rate_ml_h": r.ml_h, "total_mg": total}

def _describe(ev: Any) -> tuple[str, str | None]:
    """One line for the timeline, and the priority colour (None for clinical entries)."""
    k = ev.kind
    if k == "session_opened":
        return f"Session opened: {ev.patient_id}, {ev.weight_kg:g} kg ({ev.weight_source}), {ev.protocol}", None
    if k == "checklist_completed":
        present = [c.replace("_", " ") for c, v in ev.contraindications.items() if v]
        fasted = "?" if ev.hours_fasted is None else f"{ev.hours_fasted:g} h"
        return (f"Checklist: contraindications {', '.join(present) or 'none'}; fasted {fasted}; "
                f"escort {'yes' if ev.escort_confirmed else 'NO'}; consent {'yes' if ev.consent else 'NO'}"), None
    if k == "baseline_recorded":
        return f"Baseline {_n(ev.sbp)}/{_n(ev.dbp)} mmHg, HR {_n(ev.hr)}, SpO2 {_n(ev.spo2)}", None
    if k == "phase_changed":
        return f"Phase {ev.from_phase} → {ev.to_phase}" + (f" ({ev.reason})" if ev.reason else ""), None
    if k == "infusion_started":
        ov = f" — GATE OVERRIDE: {ev.gate_override_reason}" if ev.gate_override_reason else ""
        return (f"Infusion started {ev.rate_mg_kg_h:.3g} mg/kg/h = {ev.rate_ml_h:.1f} mL/h "
                f"({ev.concentration_mg_ml:g} mg/mL){ov}"), None
    if k == "infusion_rate_changed":
        return (f"Rate {ev.old_rate_mg_kg_h:.3g} → {ev.rate_mg_kg_h:.3g} mg/kg/h "
                f"({ev.rate_ml_h:.1f} mL/h): {ev.reason}"), None
    if k == "infusion_paused":
        return f"Infusion paused: {ev.reason}", None
    if k == "infusion_resumed":
        return "Infusion resumed" + (f": {ev.reason}" if ev.reason else ""), None
    if k == "infusion_stopped":
        return f"Infusion stopped: {ev.reason}", None
    if k == "observation_recorded":
        score = "" if ev.score is None else f" {ev.score:g}"
        txt = f" — {ev.text}" if ev.text else ""
        return f"{ev.scale.upper()}{score}{txt}", None
    if k == "intervention_given":
        dose = f" {ev.dose:g} {ev.dose_unit}" if ev.dose is not None else ""
        return f"Intervention: {ev.drug}{dose} {ev.route}".rstrip() + (f" lot {ev.lot}" if ev.lot else ""), None
    if k == "note":
        return f"Note: {ev.text}", None
    if k == "amendment":
        rep = ", ".join(f"{k} → {_n(v)}" if isinstance(v, (int, float)) and not isinstance(v, bool)
                        else f"{k} → {v!r}"
                        for k, v in (ev.replacement or {}).items())
        return f"Amendment of #{ev.target_seq}" + (f" ({rep})" if rep else "") + f": {ev.reason}", None
    if k == "discharge_assessed":
        if ev.discharged:
            ov = f" — OVERRIDE: {ev.override_reason}" if ev.override_reason else ""
            return f"Discharged (Aldrete {_n(ev.aldrete_total)}, PADSS {_n(ev.padss_total)}){ov}", None
        return "Discharge assessed: " + ("criteria met" if ev.criteria_met else "; ".join(ev.blocked_reasons)), None
    if k == "session_closed":
        return "Session closed" + (f": {ev.reason}" if ev.reason else ""), None
    if k == "alarm_raised":
        marker = {"high": "***", "medium": "**", "low": "*"}.get(ev.priority, "*")
        return f"{marker} {ev.message or ev.rule}", ev.priority
    if k == "alarm_escalated":
        return f"Alarm {ev.alarm_id} {ev.from_priority} → {ev.to_priority}: {ev.reason}", ev.to_priority
    if k == "alarm_acknowledged":
        return f"Alarm {ev.alarm_id} acknowledged by {ev.by}", None
    if k == "alarm_silenced":
        return f"Alarm {ev.alarm_id} {ev.mode.replace('_', ' ')}" + (f" by {ev.by}" if ev.by else ""), None
    if k == "alarm_cleared":
        return f"Alarm {ev.alarm_id} cleared", None
    if k == "device_status":
        st = ev.status
        word = st.kind.replace("_", " ")
        return (f"Device: {word}" + ("" if st.active else " ended") + (f" ({st.detail})" if st.detail else "")), None
    if k == "training":
        who = {"instructor": "Instructor", "scenario": "Scenario", "device": "Sim device",
               "trainee": "Trainee"}.get(ev.source, "Sim")
        return f"{who}: {ev.action.replace('_', ' ')}" + (f" — {ev.detail}" if ev.detail else ""), None
    return k, None


def _n(v: float | None) -> str:
    return "—" if v is None else f"{v:g}"
