"""The console application and its factory ``create_app(service, clock, settings)``.

Owns: ``ChairsideApp`` (screens, actions, the command palette entries, the app timer that
drives alarm flashing — high 2 Hz, medium 0.5 Hz, low steady — and the terminal bell),
``create_app``. Snapshots arrive from the service's threads by ``post_message`` and are
coalesced (only the newest is rendered); commands run in thread workers, so the UI thread
never waits on the serial port or the session file. Time comes from the injected clock.
Must not import: chairside.store, chairside.transport (the UI talks to the service only).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from types import SimpleNamespace
from collections.abc import Callable, Iterable
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from chairside.diagnostics import log_exception
from chairside.service.data import console_data
from chairside.service.model import PRIORITY_RANK, CommandRefused, Snapshot
from chairside.service.ports import ConsoleService
from chairside.ui.alarm_bar import AlarmBar
from chairside.ui.course_line import CourseLine
from chairside.ui.messages import SnapshotArrived
from chairside.ui.monitor_screen import KEYS, MonitorScreen


class ChairsideApp(App[None]):
    CSS_PATH = "chairside.tcss"
    TITLE = "Chairside"
    # F9 and F10 are priority keys: they acknowledge and pause the audio from any screen,
    # also while a form field has the focus (no field consumes them; a/s still work on the
    # monitor itself)
    BINDINGS = [Binding("f9", "acknowledge", "Ack alarms", key_display="F9", priority=True),
                Binding("f10", "pause_audio", "Audio pause", key_display="F10", priority=True),
                Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
                Binding("ctrl+t", "instructor", "Instructor", show=False)]

    def __init__(self, service: ConsoleService, clock: Any, settings: Any = None, *, flash: bool = True,
                 bell: bool | None = None, show_start: bool | None = None,
                 start_defaults: dict[str, Any] | None = None,
                 replay_hook: Callable[[str], None] | None = None,
                 flash_phase: tuple[bool, bool] = (True, True), replay: Any = None,
                 training: Any = None, audio: Any = None,
                 course: Callable[..., Any] | None = None) -> None:
        from chairside.ui.terminal import driver_class

        super().__init__(driver_class=driver_class())  # draws on the terminal even with 2>file
        self.service: ConsoleService = service
        self.clock = clock
        self.settings = settings
        self.bell_enabled = bool(getattr(settings, "bell", True)) if bell is None else bell
        self.flash_enabled = flash
        self.frozen_phase = flash_phase
        self.show_start = show_start
        self.start_defaults = start_defaults or {}
        self.replay_hook = replay_hook
        self.replay = replay  # a chairside.replay.ReplayPlayer: the console is read-only
        self.training = training  # a chairside.training.TrainingRun: instructor panel and debrief
        # chairside.reports.course_index.lookup (injected by the command): the patient's course,
        # read in a thread worker when a session opens; None: no course line, no course view
        self.course = course
        self.course_view: Any = None  # a chairside.reports.course.CourseView, once read
        self._course_for: str | None = None  # the session id the course was (or is being) read for
        self.user: str = (getattr(settings, "staff_initials", None) or "").strip()
        self.snapshot: Snapshot | None = None
        self.data = console_data()
        self._pending: Snapshot | None = None
        self._posted = False
        self._plock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._ticks = 0
        self._last_bell_mono: float | None = None
        self._last_bell_priority: str | None = None
        self.bells = 0  # bursts sounded so far, by the audio or the bell (tests)
        # the machine's audio (chairside.audio.AlarmSound; "auto": probe the system players);
        # None: no audio path (tests, replay), the terminal bell alone
        if audio == "auto":
            from chairside.audio import AlarmSound

            audio = AlarmSound()
        self.audio = audio
        self.audio_status: str | None = None  # after the self-test: a player's name or "none"
        self._pause_deadline: float | None = None  # monotonic end of the audio pause
        self.rendered: list[tuple[float | None, float]] = []  # (readings stored, painted) monos; bench
        self.keep_render_log = False
        half_high = 1.0 / (2 * self.data.flash_high_hz)
        half_med = 1.0 / (2 * self.data.flash_medium_hz)
        self._timer_s = min(half_high, half_med)
        self._high_every = max(1, round(half_high / self._timer_s))
        self._med_every = max(1, round(half_med / self._timer_s))

    # ------------------------------------------------------------------ life cycle
    def on_mount(self) -> None:
        if self.replay is not None:
            from chairside.ui.replay_screen import ReplayMonitorScreen

            self.show_start = False
            self.push_screen(ReplayMonitorScreen(id="monitor"))
        else:
            self.push_screen(MonitorScreen(id="monitor"))
        self._unsubscribe = self.service.subscribe(self._from_service)
        self._deliver(self.service.snapshot())
        self.set_interval(self._timer_s, self._on_timer, name="flash")
        if self.audio is not None:  # the sound self-test at start-up (plays the low burst)
            self.run_worker(self.audio.self_test, thread=True, name="audio-self-test",
                            group="audio", exit_on_error=False)
        if self.show_start is None:
            self.show_start = not self.snapshot.session.open if self.snapshot else True
        if self.show_start:
            self.call_later(self.action_new_session)
        if not self.flash_enabled:
            self.monitor.set_flash(*self.frozen_phase)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.audio is not None and hasattr(self.audio, "close"):
            self.audio.close()

    @property
    def monitor(self) -> MonitorScreen:
        for screen in self.screen_stack:
            if isinstance(screen, MonitorScreen):
                return screen
        raise LookupError("no monitor screen")

    # ------------------------------------------------------------------ snapshots
    def _from_service(self, snap: Snapshot) -> None:
        """Service thread: keep the newest snapshot, post one message at a time."""
        with self._plock:
            self._pending = snap
            if self._posted:
                return
            self._posted = True
        self.post_message(SnapshotArrived(snap))

    def on_snapshot_arrived(self, message: SnapshotArrived) -> None:
        with self._plock:
            snap = self._pending or message.snapshot
            self._pending = None
            self._posted = False
        self._deliver(snap)

    def _deliver(self, snap: Snapshot) -> None:
        if self.snapshot is not None and snap.version <= self.snapshot.version:
            return
        self.snapshot = snap
        try:
            self.monitor.show(snap, bell=self.bell_enabled)
        except LookupError:
            return
        self._course_check(snap)
        top = self.screen
        handler = getattr(top, "on_snapshot", None)
        if handler is not None and top is not self.monitor:
            handler(snap)
        if self.keep_render_log:
            stored = snap.readings_stored_mono
            self.call_after_refresh(lambda: self.rendered.append((stored, self.clock.monotonic())))
        paused = snap.audio_paused_s
        self._pause_deadline = None if paused is None else self.clock.monotonic() + paused
        self._show_audio()
        self._bell_check(snap, new=True)
        if self.replay is not None:
            self.refresh_replay()

    # ------------------------------------------------------------------ the course
    def _course_check(self, snap: Snapshot) -> None:
        """A session opened (or resumed) for a pseudonym: read its course off the UI thread
        (the session folder's index; a big folder is read once, in a thread worker)."""
        if self.course is None or self.replay is not None:
            return
        s = snap.session
        if not s.open:
            if self._course_for is not None and not s.closed:  # back to no session: forget it
                self._course_for, self.course_view = None, None
                self._show_course()
            return
        path = snap.device.store.path
        if not s.session_id or s.session_id == self._course_for or not path:
            return
        self._course_for, self.course_view = s.session_id, None
        folder, lookup = str(Path(path).parent), self.course
        pid, sid, before, protocol = s.patient_id, s.session_id, s.opened_at, s.protocol
        self._show_course()
        self.run_worker(lambda: lookup(folder, pid, session_id=sid, before=before, protocol=protocol),
                        thread=True, name=f"course:{sid}", group="course", exit_on_error=False)

    def _course_done(self, w: Worker) -> None:
        if w.name != f"course:{self._course_for}":
            return  # a course read for a session that is no longer the one open
        if w.state == WorkerState.SUCCESS:
            self.course_view = w.result
        else:
            if w.error is not None:
                log_exception("course: reading the session folder failed", w.error)
            self.course_view = SimpleNamespace(error=f"Course: the session folder could not be read ({w.error})",
                                               line="", parts=[], headers=[], cells=[], damaged=[], rows=[])
        self._show_course()

    def _show_course(self) -> None:
        view = self.course_view
        parts = [] if view is None else ([(view.error,)] if view.error else list(view.parts))
        try:
            self.monitor.query_one(CourseLine).show(parts)
        except (LookupError, NoMatches):
            pass
        show = getattr(self.screen, "show_course", None)
        if show is not None:
            show(view)

    # ------------------------------------------------------------------ timer: flash + bell
    def _on_timer(self) -> None:
        self._ticks += 1
        if self.flash_enabled:
            high_on = (self._ticks // self._high_every) % 2 == 0
            med_on = (self._ticks // self._med_every) % 2 == 0
            try:
                self.monitor.set_flash(high_on, med_on)
            except LookupError:
                pass
        if self.snapshot is not None:
            self._bell_check(self.snapshot, new=False)
        if self._pause_deadline is not None:
            self._show_audio()  # the pause countdown
        if self.replay is not None and self._ticks % 2 == 0:
            self.refresh_replay()

    def refresh_replay(self) -> None:
        """Update the replay banner from the player (attributes down)."""
        from chairside.ui.replay_banner import ReplayBanner, ReplayStatus

        p = self.replay
        if p is None:
            return
        st = p.status()
        try:
            self.monitor.query_one(ReplayBanner).show(ReplayStatus(**st))
        except Exception:  # noqa: BLE001 - not mounted yet
            pass

    def audio_line(self) -> tuple[str, str] | None:
        """What the alarm bar says about the sound: (text, kind) or None.

        "AUDIO: NONE" when the self-test found no player that works (the terminal bell is the
        only sound, and may be silent), the countdown while the audio is paused."""
        if self._pause_deadline is not None:
            left = max(0.0, self._pause_deadline - self.clock.monotonic())
            m, s_ = divmod(int(math.ceil(left)), 60)
            return f"AUDIO PAUSED {m}:{s_:02d} (F10 pauses again)", "paused"
        if self.audio is not None and self.audio_status == "none":
            tail = ("terminal bell only, may be silent" if self.bell_enabled
                    else "bell off: alarms are silent, watch the screen")
            return f"AUDIO: NONE — no speaker path works; {tail}", "none"
        return None

    def _show_audio(self) -> None:
        try:
            self.monitor.query_one(AlarmBar).show_audio(self.audio_line())
        except (LookupError, NoMatches):
            pass

    def _bell_check(self, snap: Snapshot, *, new: bool) -> None:
        prio = snap.audio_priority
        sound = self.audio is not None and self.audio.working
        if prio is None or not (self.bell_enabled or sound):
            self._last_bell_priority = prio
            return
        now = self.clock.monotonic()
        rising = self._last_bell_priority is None or (
            PRIORITY_RANK[prio] > PRIORITY_RANK.get(self._last_bell_priority, 0))
        due = self._last_bell_mono is None or now - self._last_bell_mono >= self.data.bell_repeat_s[prio]
        if rising or due:
            self._last_bell_mono = now
            self.bells += 1
            if not (sound and self.audio.play(prio)) and self.bell_enabled:
                self._ring(self.data.bell_pulses.get(prio, 1))  # the fallback
        self._last_bell_priority = prio

    def _ring(self, pulses: int) -> None:
        """One burst: ``pulses`` terminal bells (high 10, medium 3, low 1 in console.toml)."""
        self.bell()
        for i in range(1, max(1, pulses)):
            self.set_timer(i * self.data.bell_pulse_gap_s, self.bell)

    # ------------------------------------------------------------------ commands
    @property
    def default_initials(self) -> str:
        """The user's initials, else the session's first staff member ("" when unknown)."""
        if self.user:
            return self.user
        if self.snapshot is not None and self.snapshot.session.staff:
            return self.snapshot.session.staff[0]
        return ""

    @property
    def author(self) -> str:
        return self.default_initials or "UNK"

    def run_command(self, name: str, fn: Callable[[], Any], done: str = "") -> Worker:
        """Run a service command in a thread worker; report the outcome as a notification."""
        return self.run_worker(fn, thread=True, name=name, group="app-command", exit_on_error=False,
                               description=done)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        w = event.worker
        if w.group == "audio" and w.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self.audio_status = w.result if w.state == WorkerState.SUCCESS else "none"
            if self.audio_status == "none":
                self.notify("AUDIO: NONE — no system player could sound the alarms "
                            + ("(terminal bell only)" if self.bell_enabled else "(bell off: alarms are silent)"),
                            severity="error", timeout=10)
            self._show_audio()
            return
        if w.group == "course" and w.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self._course_done(w)
            return
        if w.group != "app-command":
            return
        if w.state == WorkerState.SUCCESS and w.description:
            self.notify(w.description, timeout=3)
        elif w.state == WorkerState.ERROR:
            err = w.error
            if isinstance(err, (CommandRefused, ValueError)):
                self.notify(f"Refused: {err}", severity="error", timeout=6)
            else:
                from chairside.diagnostics import log_exception

                if err is not None:
                    log_exception(f"{w.name} failed", err)
                self.notify(f"Error: {err!r}", severity="error", timeout=8)

    def _read_only(self) -> bool:
        if self.replay is not None:
            self.notify("Replay: read-only, the record cannot be changed", severity="warning", timeout=3)
            return True
        return False

    def _need_session(self) -> bool:
        if self.snapshot is None or not self.snapshot.session.open:
            self.notify("No session open: press F2 to open one", severity="warning", timeout=4)
            return False
        return True

    def action_acknowledge(self) -> None:
        if self._read_only():
            return
        if self.snapshot is not None and not self.snapshot.alarms:
            self.notify("No active alarms", timeout=2)
            return
        by = self.author
        self.run_command("acknowledge", lambda: self.service.acknowledge(None, by=by), "Alarms acknowledged")

    def action_pause_audio(self) -> None:
        if self._read_only():
            return
        by = self.author
        self.run_command("pause_audio", lambda: self.service.pause_audio(by=by), "Alarm audio paused")

    def action_toggle_bell(self) -> None:
        self.bell_enabled = not self.bell_enabled
        self.notify("Terminal bell " + ("ON" if self.bell_enabled else "OFF"), timeout=3)
        if self.snapshot is not None:
            self.monitor.show(self.snapshot, bell=self.bell_enabled)

    async def _open(self, screen: Screen, *, session: bool = True) -> None:
        """Open a form and wait until it is mounted with its first field focused: keys typed
        right after the form's key (a fast typist, a scanner) are read only then, so they
        land in the form's field instead of being lost."""
        if self._read_only():
            return
        if session and not self._need_session():
            return
        await self.push_screen(screen)

    async def action_course(self) -> None:
        """The course view: the patient's earlier sessions in a table (Escape returns)."""
        from chairside.ui.course_screen import CourseScreen  # lazy: like every screen, imported when opened

        if self.course is None or self.replay is not None:
            self.notify("No course view here: the console was started without a session folder", timeout=3)
            return
        if not self._need_session():
            return
        await self.push_screen(CourseScreen(self.course_view, self.snapshot.session.patient_id))

    async def action_new_session(self) -> None:
        from chairside.ui.start_screen import StartScreen

        if self.snapshot is not None and self.snapshot.session.open:
            self.notify("A session is already open", severity="warning", timeout=3)
            return
        await self._open(StartScreen(), session=False)

    async def action_start_infusion(self) -> None:
        from chairside.domain.esketamine import is_device_template
        from chairside.ui.infusion_start import StartInfusionDialog

        if is_device_template(self.service.template):  # esketamine: one 28 mg device at a time
            from chairside.ui.device_dialog import GiveDeviceDialog

            await self._open(GiveDeviceDialog())
            return
        if self.snapshot and self.snapshot.infusion.state != "not_started" and self.snapshot.session.open:
            self.notify(f"The infusion is already {self.snapshot.infusion.state}", severity="warning")
            return
        await self._open(StartInfusionDialog())

    async def action_change_rate(self) -> None:
        from chairside.ui.infusion_change import ChangeRateDialog

        if self.snapshot and self.snapshot.infusion.state not in ("running", "paused"):
            self.notify("No infusion running", severity="warning")
            return
        await self._open(ChangeRateDialog())

    async def action_pause_resume(self) -> None:
        from chairside.ui.infusion_pause import InfusionStateDialog

        state = self.snapshot.infusion.state if self.snapshot else "not_started"
        if state == "running":
            await self._open(InfusionStateDialog("pause"))
        elif state == "paused":
            await self._open(InfusionStateDialog("resume"))
        else:
            self.notify("No infusion running", severity="warning")

    async def action_stop_infusion(self) -> None:
        from chairside.ui.infusion_pause import InfusionStateDialog

        inf = self.snapshot.infusion if self.snapshot else None
        confirm = bool(inf and inf.completed and not inf.pump_stop_confirmed)  # the dose is in: confirm the pump
        if inf and inf.state not in ("running", "paused") and not confirm:
            self.notify("No infusion running", severity="warning")
            return
        await self._open(InfusionStateDialog("stop"))

    async def action_observe(self, form: str) -> None:
        from chairside.ui.observation_dialog import ObservationDialog

        await self._open(ObservationDialog(form))

    async def action_intervention(self) -> None:
        from chairside.ui.intervention_dialog import InterventionDialog

        await self._open(InterventionDialog())

    async def action_note(self) -> None:
        from chairside.ui.note_dialog import NoteDialog

        await self._open(NoteDialog())

    async def action_amend(self) -> None:
        from chairside.ui.amend_dialog import AmendDialog

        await self._open(AmendDialog())

    async def action_baseline(self) -> None:
        from chairside.ui.baseline_dialog import BaselineDialog

        await self._open(BaselineDialog())

    async def action_manual_vitals(self) -> None:
        from chairside.ui.manual_vitals_dialog import ManualVitalsDialog

        await self._open(ManualVitalsDialog())

    async def action_phase(self) -> None:
        from chairside.ui.phase_dialog import PhaseDialog

        await self._open(PhaseDialog())

    async def action_discharge(self) -> None:
        from chairside.ui.discharge_screen import DischargeScreen

        await self._open(DischargeScreen())

    async def action_quit(self) -> None:
        """ctrl+q: with a session open, ask who quits and why (recorded), then exit."""
        from chairside.ui.quit_dialog import QuitDialog

        snap = self.snapshot
        if self.replay is not None or snap is None or not snap.session.open or snap.session.closed:
            self.exit()
            return
        if not isinstance(self.screen, QuitDialog):
            await self.push_screen(QuitDialog(), callback=lambda result: self.exit() if result is not None else None)

    async def action_close_session(self) -> None:
        from chairside.ui.close_dialog import CloseSessionDialog

        await self._open(CloseSessionDialog())

    # ------------------------------------------------------------------ training
    def action_instructor(self) -> None:
        """The instructor panel (training runs only; the trainee is told not to press it)."""
        if self.training is None:
            return
        from chairside.ui.instructor_panel import InstructorPanel

        if not isinstance(self.screen, InstructorPanel):
            self.push_screen(InstructorPanel())

    def show_debrief(self) -> None:
        """The debrief of the training run (after the instructor ended it)."""
        if self.training is None:
            return
        from chairside.ui.debrief_screen import DebriefScreen

        self.push_screen(DebriefScreen(self.training.final or self.training.debrief()))

    def action_help(self) -> None:
        from chairside.ui.help_screen import HelpScreen

        if self.replay is not None:
            from chairside.ui.replay_screen import REPLAY_KEYS

            self.push_screen(HelpScreen(keys=REPLAY_KEYS, title="Chairside replay — keys"))
        else:
            self.push_screen(HelpScreen())

    # ------------------------------------------------------------------ command palette
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.replay is not None:
            from chairside.ui.replay_screen import REPLAY_KEYS

            for key, action, desc, _shown in REPLAY_KEYS:
                yield SystemCommand(f"Replay: {desc}", f"key {key.split(',')[0]}",
                                    lambda a=action: self.monitor.run_action(a))
            return
        for key, action, desc, _shown in KEYS:
            act = action.removeprefix("app.")
            yield SystemCommand(f"{desc}", f"key {key.split(',')[0].replace('question_mark', '?')}",
                                lambda a=act: self.run_action(a))
        yield SystemCommand("Change phase", "record a phase change with a reason",
                            lambda: self.run_action("phase"))
        yield SystemCommand("Close session", "record the end of the session and close its file",
                            lambda: self.run_action("close_session"))


def create_app(service: ConsoleService, clock: Any, settings: Any = None, **options: Any) -> ChairsideApp:
    """Build the console with its dependencies injected (tests pass fakes and frozen time).

    Options: ``flash`` (False freezes the flashing, for snapshot tests), ``flash_phase``
    (the frozen (high_on, medium_on)), ``bell`` (overrides ``settings.bell``),
    ``show_start`` (open the start screen; default: when no session is open),
    ``start_defaults`` (prefill of the new-session form), ``replay_hook`` (called with a
    path when the user opens a replay from the start screen), ``replay`` (a
    ``chairside.replay.ReplayPlayer``: the monitor is shown read-only with the replay
    banner and keys; pass its ``service`` and ``clock``), ``training`` (a
    ``chairside.training.TrainingRun``: instructor panel key and debrief at the end),
    ``audio`` (a ``chairside.audio.AlarmSound``, or "auto" to probe the system players; the
    self-test runs at start-up; None: the terminal bell alone), ``course``
    (``chairside.reports.course_index.lookup``: the course line when a session opens and the
    course view on ``c``; None: neither).
    """
    return ChairsideApp(service, clock, settings, **options)
