"""MonitorService: the facade the console, the headless recorder, replay and training use.

Owns: the wiring of its parts and their public API: ``Pump`` (threads, inbox, subscribers),
``Recorder`` (the one write path: state -> store -> alarm engine -> timeline), ``View``
(the snapshot), ``commands`` (nurse commands -> domain events). A command runs under the
pump's lock: it builds its events, the recorder stores them (durable on return) and routes
them to the engine, then the snapshot and the stored events are published.

Rules: every reading and event is stored BEFORE any subscriber sees it; monitoring never
stops (a lost link, bad bytes or a full disk become technical events and a loud notice);
time comes from the injected clock only. Commands run in the caller's thread.
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

from chairside.domain.clock import Clock
from chairside.domain.events import CLINICAL_EVENT_KINDS, Event, SessionOpened
from chairside.domain.protocol import load_template
from chairside.domain.readings import DeviceStatus, Reading
from chairside.service import commands
from chairside.service.data import console_data
from chairside.service.model import CommandRefused, DischargeCheck, Snapshot, TimelineItem
from chairside.service.pump import Pump
from chairside.service.recorder import Recorder
from chairside.service.view import View
from chairside.transport import check_port, config_from_settings, open_source

log = logging.getLogger("chairside.service")

class MonitorService:
    """Transport -> driver -> store -> alarms -> subscribers, plus the nurse's commands.

    Usage (live)::

        svc = MonitorService(clock=WallClock(), port="sim://uneventful?driver=ge-s5",
                             driver="ge-s5", protocol="iv-ketamine-depression")
        svc.subscribe(lambda snap: ...)      # called from service threads: be quick
        svc.start()                          # opens the port, starts the service thread
        svc.open_session(patient_id="P-1", weight_kg=70, staff=("AB",), path=...)
        svc.acknowledge(None, by="AB")       # durable when it returns
        svc.stop()

    Tests drive it without threads (``feed``, ``tick``, ``snapshot``). Before a session is
    opened, readings are shown and kept in memory only (the snapshot says so).
    """

    def __init__(self, *, clock: Clock, port: str | None = None, driver: str = "ge-s5",
                 protocol: str | None = None, settings: Any = None,
                 link_factory: Callable[..., Any] | None = None,
                 serial_overrides: Mapping[str, Any] | None = None,
                 transport_config: Any = None, session_dir: Path | str | None = None,
                 tick_s: float = 1.0, simulated: bool = False, scenario: str | None = None,
                 sim_seed: int | None = None, raw_capture: Any = None,
                 limits: Path | str | None = None) -> None:
        self.clock = clock
        self.port = port or ""
        self.driver_name = driver
        self.settings = settings
        self.session_dir = Path(session_dir) if session_dir else _session_dir(settings)
        self.simulated = simulated
        self.scenario = scenario
        self.sim_seed = sim_seed
        self.data = console_data()
        self._pump = Pump(clock, tick_s)
        self._link: Any = None
        self._link_factory = link_factory
        self._serial_overrides = serial_overrides
        self._transport_config = transport_config
        self._raw_capture = raw_capture
        self._decode_errors_seen = 0
        if port and link_factory is None:
            try:
                check_port(port)  # a port that can never open is refused before any record is made
            except ValueError as exc:
                raise CommandRefused(str(exc)) from None
        # a bad limits file (explicit, or the `limits` setting) is refused here, at start
        self._rec = Recorder(clock, protocol or _setting(settings, "protocol", "iv-ketamine-depression"),
                             self._new_view, limits_file=limits or _setting(settings, "limits", None))

    def _new_view(self, rec: Recorder) -> View:
        return View(self.data, template=lambda: rec.template, state=lambda: rec.state, mono=rec.mono,
                    link_state="idle" if self.port else "none")

    # ------------------------------------------------------------------ views of the state
    state = property(lambda self: self._rec.state, doc="The session state (SessionState).")
    store = property(lambda self: self._rec.store, doc="The record (SessionFile or MemoryStore).")
    engine = property(lambda self: self._rec.engine, doc="The alarm engine (AlarmEngine).")
    profile = property(lambda self: self._rec.profile, doc="The limits profile (LimitsProfile).")
    template = property(lambda self: self._rec.template, doc="The protocol template.")
    protocol_name = property(lambda self: self._rec.protocol_name, doc="The protocol's name.")

    @property
    def audio_pause_s(self) -> float | None:
        """How long an audio pause lasts (the limits profile's setting)."""
        return float(self._rec.profile.setting("audio_pause_s"))

    @property
    def phase(self) -> str:
        return self._rec.state.phase

    @property
    def weight(self) -> float:
        return self._rec.state.weight_kg or 0.0

    @property
    def session_open(self) -> bool:
        st = self._rec.state
        return st.session is not None and not st.closed

    @property
    def discharged(self) -> bool:
        return commands.is_discharged(self._rec)

    link = property(lambda self: self._link, doc="The transport link (None before ``start``).")
    raw_capture = property(lambda self: self._raw_capture,
                           doc="The ``--raw`` tee (a CaptureWriter) the link writes every chunk to, or None.")
    _latest_valid = property(lambda self: self._rec.view.latest_valid)  # the tests' kits read it

    # ------------------------------------------------------------------ subscribers + life cycle
    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        """Call ``callback(snapshot)`` after every change (from a service thread)."""
        return self._pump.subscribe(callback)

    def subscribe_events(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every stored event (readings groups excluded)."""
        return self._pump.subscribe_events(callback)

    def start(self) -> None:
        """Open the port (in the link's thread) and start the service thread."""
        if self._pump.running:
            return
        if self.port:
            self._link = self._make_link()
            self._link.start()
            self._rec.view.link_state = "connecting"
        self._pump.start(self.feed, self.tick)
        log.info("service started: port=%s driver=%s protocol=%s", self.port, self.driver_name,
                 self.protocol_name)

    def _make_link(self) -> Any:
        if self._link_factory is not None:
            return self._link_factory(self.port, self.driver_name, clock=self.clock,
                                      on_output=self._pump.enqueue)
        on_raw = self._raw_capture.write if self._raw_capture is not None else None
        config = self._transport_config or config_from_settings(self.settings)
        return open_source(self.port, self.driver_name, clock=self.clock, on_output=self._pump.enqueue,
                           on_raw=on_raw, serial=self._serial_overrides, config=config)

    def stop(self) -> None:
        """Stop the link and the service thread; commit buffered readings (the session stays open)."""
        if self._link is not None:
            try:
                self._link.stop()
            except (OSError, RuntimeError):
                log.exception("link stop failed")
        self._pump.stop(self._process)
        with self._pump.lock:
            self._rec.flush()
        log.info("service stopped")

    def shutdown(self) -> None:
        """Stop, then close the session file (without recording a close event)."""
        self.stop()
        with self._pump.lock:
            self._rec.close_store()

    # ------------------------------------------------------------------ the reading path
    def feed(self, batch: Iterable[Reading | DeviceStatus]) -> None:
        """Process one batch from the link (stored, alarmed, then published)."""
        with self._pump.lock:
            events = self._process(list(batch))
            snap = self._snapshot_for_subscribers()
        self._pump.publish(snap, events)

    def _process(self, batch: Sequence[Reading | DeviceStatus]) -> list[Event]:
        out = self._rec.process(batch, port=self.port, driver=self.driver_name)
        self._check_decode_errors()
        return out

    def _check_decode_errors(self) -> None:
        st = _link_stats(self._link)
        if st is None:
            return
        bad = st.frames_rejected + st.bytes_skipped
        if bad > self._decode_errors_seen:
            self._decode_errors_seen = bad
            last = list(st.errors)[-1] if st.errors else st.last_error
            log.warning("decode errors on %s: %d frames rejected, %d bytes skipped; last: %s",
                        self.port, st.frames_rejected, st.bytes_skipped, last)

    def tick(self) -> None:
        """One alarm-engine tick (escalation, delays, overdue NIBP), store commit, publish."""
        with self._pump.lock:
            now = self.clock.now()
            events = self._rec.record_all(commands.completion_due(self._rec, now), now)  # the dose is in
            events += self._rec.tick(now)
            snap = self._snapshot_for_subscribers()
        self._pump.publish(snap, events)

    # ------------------------------------------------------------------ commands
    def _run(self, build: Callable[..., list[Event]], args: Mapping[str, Any]) -> list[Event]:
        """Under the lock: build the command's events, record them (durable, routed to the
        engine), then publish the snapshot and the stored events."""
        with self._pump.lock:
            now = self.clock.now()
            # a completion the tick has not recorded yet comes first: the command sees the record as it is
            stored = self._rec.record_all(commands.completion_due(self._rec, now), now)
            stored += self._rec.record_all(build(self._rec, now, **args), now)
            snap = self._snapshot_for_subscribers()
        self._pump.publish(snap, stored)
        return stored

    def open_session(self, *, patient_id: str, weight_kg: float, staff: Iterable[str],
                     weight_source: str = "measured", weight_confirmed_by: str | None = None,
                     protocol: str | None = None, path: Path | str | None = None,
                     training: bool = False, limits: Path | str | None = None) -> Path:
        """Create the session file and record ``session_opened`` (durable on return).
        ``limits``: a limits file for this session (refused, naming the file and the bad
        entry, when it is not a valid one); the record names the file and its SHA-256.

        The earlier sessions of the pseudonym are read first, outside the pump's lock: the
        readings and the alarms go on while the folder is read."""
        if self.session_open:
            raise CommandRefused("a session is already open")
        folder = Path(path).parent if path else self.session_dir
        course_n, planned, previous = self._course(patient_id.strip(), folder, Path(path) if path else None,
                                                   self.clock.now(), protocol or self.protocol_name)
        with self._pump.lock:
            if self.session_open:
                raise CommandRefused("a session is already open")
            now = self.clock.now()
            opened, target = commands.session_opened(
                self._rec, now, patient_id=patient_id, weight_kg=weight_kg, staff=staff,
                weight_source=weight_source, weight_confirmed_by=weight_confirmed_by,
                session_dir=self.session_dir, path=path, training=training, simulated=self.simulated,
                sim_seed=self.sim_seed, scenario=self.scenario)
            if protocol:
                self._rec.use_protocol(protocol)
                opened = opened.model_copy(update={"protocol": self._rec.protocol_name})
            prof = self._rec.load_limits(limits)  # the template's (or the chosen) limits, checked now
            opened = opened.model_copy(update={"limits_file": prof.path, "limits_sha256": prof.sha256})
            opened = opened.model_copy(update={"course_n": course_n, "course_planned": planned, "previous": previous})
            self._rec.mono_origin = self.clock.monotonic()
            first = self._rec.start_record(opened, target)
            self._rec.replaying = False
            # the values on screen when the session is opened go into the record and through the
            # new engine: a 205/125 seen at check-in must not vanish from the alarm bar on "open"
            carried = self._process(self._rec.view.current_readings(now))
            snap = self._snapshot_for_subscribers()
        self._pump.publish(snap, [first, *carried])
        log.info("session opened: %s (protocol %s)", target, self.protocol_name)
        return target

    def _course(self, patient_id: str, folder: Path | None, target: Path | None, now: datetime,
                protocol: str) -> tuple[int | None, int | None, dict[str, Any]]:
        """The course (issue 14 item 10): earlier sessions of the same pseudonym in the folder
        of the new file (named as ``open_session`` names them: ``*-<pseudonym>-*.chairside``)
        -> this session's number of the template's planned count, and the previous session's
        dose and peak BP. A file that cannot be read is skipped (and logged)."""
        from chairside.domain.course import course_position, previous_for, session_summary
        from chairside.domain.state import fold
        from chairside.store import read_session

        try:
            template = self.template if protocol == self.protocol_name else load_template(protocol)
        except (ValueError, OSError):
            template = self.template  # an unknown protocol is refused when the session opens
        course = template.course
        planned = course.planned_sessions if course is not None else None
        summaries = []
        try:
            candidates = sorted(folder.glob(f"*-{commands._safe(patient_id)}-*.chairside")) \
                if folder is not None and folder.is_dir() else []
        except (OSError, ValueError):
            candidates = []
        for p in candidates:
            if p == target:
                continue
            try:
                st = fold(read_session(p).events)
            except Exception as exc:  # noqa: BLE001 - another file's trouble is not this session's
                log.info("course: %s skipped: %s", p, exc)
                continue
            if st.session is None or st.session.patient_id != patient_id or st.session.opened_t >= now:
                continue
            summaries.append(session_summary(st))
        n, planned = course_position(summaries, protocol, planned)
        return n, planned, previous_for(summaries, now)

    def resume_session(self, path: Path | str, *, author: str = "SYS", reason: str = "") -> Event:
        """Open an existing session file, rebuild the state from its events and record
        ``session_resumed`` (the last event before the gap and the time lost)."""
        p = Path(path)
        if not p.exists():
            raise CommandRefused(f"{p}: no such session file")
        with self._pump.lock:
            if self.session_open:
                raise CommandRefused("a session is already open")
            events = self._rec.resume(p)
            now = self.clock.now()
            stored = self._rec.record_all([commands.resumed(events[-1], now, author=author, reason=reason)], now)
            snap = self._snapshot_for_subscribers()
        self._pump.publish(snap, stored)
        log.info("session resumed: %s", p)
        return stored[0]

    def stop_monitoring(self, *, author: str, reason: str) -> Event:
        """Record that monitoring stops with the session left open (quit), and why."""
        return self._run(commands.stop_monitoring, {"author": author, "reason": reason})[0]

    def complete_checklist(self, **answers: Any) -> Event:
        """The pre-infusion checklist (``commands.checklist``)."""
        return self._run(commands.checklist, answers)[0]

    def record_baseline(self, **values: Any) -> Event:
        """The baseline; values not given are taken from the latest readings."""
        return self._run(commands.baseline, values)[0]

    def gate_check(self) -> tuple[bool, tuple[str, ...]]:
        """(blocks_start, reasons) of the pre-infusion gate; lock-free, so the UI may call it."""
        return commands.gate_check(self._rec)

    def start_check(self) -> Any:
        """The whole start gate, evaluated once (``commands.start_check``): a ``Verdict`` whose
        ``line()`` is the start-confirm line; lock-free, so the UI may call it."""
        return commands.start_check(self._rec)

    def resume_check(self) -> Any:
        """The resume gate on the BP taken after the pause (``commands.resume_check``); lock-free."""
        return commands.resume_check(self._rec)

    def dose_preview(self, *, concentration_mg_ml: float, dose_mg_kg: float | None = None,
                     rate_mg_kg_h: float | None = None, duration_min: float | None = None) -> dict[str, float]:
        """Pump numbers for an order (rate mg/kg/h, mg/h, mL/h, total mg), nothing recorded."""
        if not self.weight:
            raise CommandRefused("open a session with the patient's weight first")
        return commands.dose_numbers(self.template, self.weight, dose=dose_mg_kg, rate_mg_kg_h=rate_mg_kg_h,
                                     duration_min=duration_min, concentration=concentration_mg_ml)

    def start_infusion(self, **order: Any) -> Event:
        """Start the infusion. ``GateBlocked`` when the pre-infusion gate blocks and no
        override reason is given; ``CommandRefused`` for impossible or unconfirmed orders."""
        return self._run(commands.start_infusion, order)[0]

    def change_rate(self, **change: Any) -> Event:
        return self._run(commands.change_rate, change)[0]

    def pause_infusion(self, *, author: str, reason: str) -> Event:
        return self._run(commands.pause_infusion, {"author": author, "reason": reason})[0]

    def resume_infusion(self, *, author: str, reason: str = "", prescriber: str = "") -> Event:
        """Resume after a pause: a BP after the pause is needed; above the gate, a reason and
        the prescriber's initials (``GateBlocked`` without them)."""
        return self._run(commands.resume_infusion, {"author": author, "reason": reason, "prescriber": prescriber})[0]

    def give_device(self, **device: Any) -> Event:
        """One fixed-dose device (esketamine): ``commands.give_device``."""
        return self._run(commands.give_device, device)[0]

    @property
    def device_doses(self) -> Any:
        """The fixed-dose devices given in this session (lock-free)."""
        return self._rec.state.device_doses

    def stop_infusion(self, *, author: str, reason: str) -> Event:
        return self._run(commands.stop_infusion, {"author": author, "reason": reason})[0]

    def change_phase(self, *, author: str, to_phase: str, reason: str) -> Event:
        return self._run(commands.change_phase, {"author": author, "to_phase": to_phase, "reason": reason})[0]

    def record_observation(self, **obs: Any) -> Event:
        """An observation, validated against its scale; the engine sees it (combined rules)."""
        return self._run(commands.observation, obs)[0]

    def record_intervention(self, **given: Any) -> Event:
        return self._run(commands.intervention, given)[0]

    def record_manual_vitals(self, **vitals: Any) -> Event:
        """Vitals by hand: stored, alarmed and shown like the monitor's, plus a note saying who."""
        with self._pump.lock:
            readings, note = commands.manual_vitals(self._rec, self.clock.now(), **vitals)
        self.feed(readings)  # stored, then alarmed, then shown, like the monitor's
        return self._run(lambda rec, now: [note[0].model_copy(update={"t": now})], {})[0]

    def add_note(self, *, author: str, text: str) -> Event:
        return self._run(commands.note, {"author": author, "text": text})[0]

    def amend(self, **amendment: Any) -> Event:
        """An amendment of an earlier clinical entry (the original stays)."""
        return self._run(commands.amend, amendment)[0]

    def amendable_events(self) -> list[TimelineItem]:
        """Clinical entries that may be amended (newest first; lock-free)."""
        return commands.amendable(self._rec)

    def recorded_events(self) -> list[Event]:
        """Every event of the open session in order, readings groups left out (lock-free)."""
        ev = self._rec.state.events
        return [ev[k] for k in sorted(ev)]

    def event(self, seq: int) -> Event | None:
        """The current (amended) version of a recorded entry (lock-free)."""
        return self._rec.state.current(seq)

    def acknowledge(self, alarm_id: str | None = None, *, by: str) -> list[Event]:
        """Acknowledge one alarm (or every active one with None); durable on return."""
        b = commands.author(by)
        return self._engine_action(lambda now: self._rec.acknowledge(alarm_id, b, now))

    def pause_audio(self, *, by: str) -> list[Event]:
        """Pause the alarm audio for the profile's audio-pause time."""
        b = commands.author(by)
        return self._engine_action(lambda now: self._rec.pause_audio(b, now))

    def _engine_action(self, act: Callable[[datetime], list[Event]]) -> list[Event]:
        with self._pump.lock:
            stored = act(self.clock.now())
            snap = self._snapshot_for_subscribers()
        self._pump.publish(snap, stored)
        return stored

    def discharge_check(self, **criteria: Any) -> DischargeCheck:
        """The discharge criteria as they stand now (nothing recorded; lock-free)."""
        return commands.check_discharge(self._rec, self.clock.now(), **criteria)

    def assess_discharge(self, **assessment: Any) -> Event:
        """Record the discharge assessment; ``DischargeBlocked`` without an override reason."""
        return self._run(commands.assess_discharge, assessment)[0]

    def close_session(self, *, author: str, reason: str = "") -> Event:
        """Record ``session_closed`` and close the file (monitoring goes on, unrecorded)."""
        stored = self._run(commands.close, {"author": author, "reason": reason})
        with self._pump.lock:
            self._rec.close_store()
            snap = self._snapshot_for_subscribers()
        self._pump.publish(snap, [])
        return stored[0]

    def record_training(self, **entry: Any) -> Event:
        """One entry of a training run's log; refused with no open session."""
        return self._run(commands.training, entry)[0]

    # ------------------------------------------------------------------ replay
    # ``chairside.replay`` drives these on a ManualClock set to the recorded times; readings
    # and device status go through ``feed``; what the engine raises is recomputed, not copied.
    def replay_open(self, opened: SessionOpened, *, path: Path | str | None = None,
                    protocol: str | None = None) -> Event:
        """Begin a replay's record with a copy of the recorded ``session_opened`` (a new session
        id; ``protocol`` overrides the template); ``path`` None keeps it in memory."""
        with self._pump.lock:
            if self._rec.state.session is not None:
                raise CommandRefused("a session is already open")
            self._rec.use_protocol(protocol or opened.protocol)
            self._rec.mono_origin = self.clock.monotonic()
            prof = self._rec.load_limits()
            first = commands.replay_opened(self._rec, self.clock.now(), opened).model_copy(
                update={"limits_file": prof.path, "limits_sha256": prof.sha256})
            stored = self._rec.start_record(first, None if path is None else Path(path))
            self._rec.replaying = True  # its infusion completion comes from the recording
            snap = self._snapshot_for_subscribers()
        self._pump.publish(snap, [stored])
        return stored

    def replay_event(self, ev: Event) -> list[Event]:
        """Re-apply one recorded event at the clock's time: clinical events and staff actions
        reach the engine as they did live; alarm events and readings are recomputed, not copied."""
        with self._pump.lock:
            now = self.clock.now()
            stored: list[Event] = []
            if ev.kind in CLINICAL_EVENT_KINDS:
                copy = ev.model_copy(update={"seq": -1, "mono": 0.0})
                if ev.kind == "infusion_completed":  # its moment on this record's mono scale
                    copy = copy.model_copy(update={"at_mono": self._rec.mono() - (now - ev.at_t).total_seconds()})
                stored = self._rec.record_all([copy], now)
            elif ev.kind in ("alarm_acknowledged", "alarm_silenced") and ev.by and \
                    (ev.kind == "alarm_acknowledged" or ev.mode == "audio_paused"):
                stored = self._rec.replay_staff_action(ev, now)
            elif ev.kind == "training":
                stored = [self._rec.record(ev.model_copy(update={"seq": -1, "mono": 0.0}))]
            snap = self._snapshot_for_subscribers()
        self._pump.publish(snap, stored)
        return stored

    def replay_assume_infusing(self) -> list[Event]:
        """A raw capture carries no infusion record: the engine treats the replay as infusing."""
        with self._pump.lock:
            stored = self._rec.assume_infusing(self.clock.now())
        self._pump.publish(None, stored)
        return stored

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> Snapshot:
        with self._pump.lock:
            return self._build_snapshot()

    def readings_stored_mono(self) -> float | None:
        """Clock monotonic time of the last readings handed to the store (for the bench)."""
        return self._rec.readings_stored_mono

    def _snapshot_for_subscribers(self) -> Snapshot | None:
        """The snapshot to publish; not built when nobody subscribes (a headless replay)."""
        return self._build_snapshot() if self._pump.has_snapshot_subscribers else None

    def _build_snapshot(self) -> Snapshot:
        rec = self._rec
        return rec.view.build(
            self.clock.now(), rec, port=self.port, driver=self.driver_name, protocol=self.protocol_name,
            simulated=self.simulated, discharged=self.discharged, session_open=self.session_open,
            link_stats=_link_stats(self._link), readings_count=rec.readings_count,
            readings_stored_mono=rec.readings_stored_mono)


def _link_stats(link: Any) -> Any:
    with contextlib.suppress(OSError):  # a stopped listener's socket is closed: no figures
        return None if link is None else link.stats
    return None


def _setting(settings: Any, name: str, default: Any) -> Any:
    if settings is None:
        return default
    v = getattr(settings, name, None)
    return default if v in (None, "") else v


def _session_dir(settings: Any) -> Path:
    v = _setting(settings, "session_dir", None) or _setting(settings, "session_folder", None)
    if v:
        return Path(v)
    return Path(user_data_dir("chairside", appauthor=False)) / "sessions"


