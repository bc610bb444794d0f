"""The instructor panel of a training run (ctrl+t: the key the trainee is told not to press).

Owns: ``InstructorPanel`` — the run's status (scenario, state, scenario time, time scale,
paused), and the instructor's controls: pause/resume (space), time scale (+ / -), inject an
artefact or an event, jump to a state, a note for the debrief, and end the run with its
debrief. Each control calls the app's ``TrainingRun`` in a thread worker and the outcome is
shown here. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from chairside.ui.format import duration
from chairside.ui.overlay import BelowAlarms


class InstructorPanel(BelowAlarms):
    BINDINGS = [
        Binding("escape,ctrl+t", "dismiss", "Close", show=True),
        Binding("space", "toggle", "Pause/resume", show=True),
        Binding("plus,equals_sign", "faster", "Faster", show=True),
        Binding("minus", "slower", "Slower", show=True),
        Binding("ctrl+e", "end", "End run + debrief", show=True),
    ]

    @property
    def run(self) -> Any:
        return self.app.training

    def compose_panel(self) -> ComposeResult:
        run = self.run
        with VerticalScroll(id="instructor", classes="dialog"):
            yield Label(f"Instructor — {run.scenario.title} (seed {run.seed})", id="dialog-title")
            yield Static("", id="instructor-status", markup=False)
            with Horizontal(classes="field-row"):
                yield Button("Pause / resume (space)", id="toggle")
                yield Button("Slower (-)", id="slower")
                yield Button("Faster (+)", id="faster")
            with Horizontal(classes="field-row"):
                yield Label("Artefact", classes="field-label")
                yield Select([(k.replace("_", " "), k) for k in run.artefact_kinds()], id="artefact",
                             allow_blank=True, prompt="choose")
                yield Button("Inject", id="inject-artefact")
            with Horizontal(classes="field-row"):
                yield Label("Event", classes="field-label")
                yield Select([(k.replace("_", " "), k) for k in run.device_events()], id="event",
                             allow_blank=True, prompt="choose")
                yield Button("Inject", id="inject-event")
            with Horizontal(classes="field-row"):
                yield Label("Jump to state", classes="field-label")
                yield Select([(s, s) for s in run.states()], id="state", allow_blank=True, prompt="choose")
                yield Button("Jump", id="jump")
            with Horizontal(classes="field-row"):
                yield Label("Note for the debrief", classes="field-label")
                yield Input(placeholder="what you saw", id="note")
                yield Button("Add", id="add-note")
            yield Static("", id="instructor-result", markup=False)
            yield Label("Scenario log (not shown to the trainee)", classes="field-label")
            yield Static("", id="instructor-log", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button("End run and debrief (ctrl+e)", id="end", variant="warning")
                yield Button("Close (escape)", id="close")

    def on_mount(self) -> None:
        self.refresh_status()
        self.set_interval(0.5, self.refresh_status)

    def refresh_status(self) -> None:
        st = self.run.status()
        when = "not begun (starts with the infusion)" if st["scenario_t"] is None else duration(st["scenario_t"])
        text = (f"state {st['state'] or '-'} · scenario time {when} · time scale x{st['speed']:g}"
                f" · {'PAUSED' if st['paused'] else 'running'}" + (" · ENDED" if st["ended"] else ""))
        self.query_one("#instructor-status", Static).update(text)
        self.query_one("#instructor-log", Static).update("\n".join(self.run.recent()) or "(nothing yet)")

    def _do(self, name: str, fn, done: str) -> None:
        def work() -> str:
            fn()
            return done
        self.run_worker(work, thread=True, name=name, group="instructor", exit_on_error=False)

    def on_worker_state_changed(self, event) -> None:
        from textual.worker import WorkerState

        w = event.worker
        if w.group != "instructor":
            return
        out = self.query_one("#instructor-result", Static)
        if w.state == WorkerState.SUCCESS:
            out.update(str(w.result or ""))
            self.refresh_status()
            if w.name == "end":
                self.dismiss(None)
                self.app.show_debrief()
        elif w.state == WorkerState.ERROR:
            out.update(f"Refused: {w.error}")

    def action_toggle(self) -> None:
        # the simulation is changed here at once (in memory, so keys pressed in a row each
        # act on the one before); its record goes into the session file in a worker
        run = self.run
        if run.paused:
            run.resume(log=False)
            self._do("log", run.pump_log, "resumed")
        else:
            run.pause(log=False)
            self._do("log", run.pump_log, "paused: the patient, the monitor and the alarm timers are frozen")
        self.refresh_status()

    def _step(self, d: int) -> None:
        run = self.run
        speeds = run.speeds()
        i = min(range(len(speeds)), key=lambda k: abs(speeds[k] - run.speed))
        new = speeds[max(0, min(len(speeds) - 1, i + d))]
        run.set_speed(new, log=False)
        self._do("log", run.pump_log, f"time scale x{new:g}")
        self.refresh_status()

    def action_faster(self) -> None:
        self._step(+1)

    def action_slower(self) -> None:
        self._step(-1)

    def action_end(self) -> None:
        self._do("end", self.run.end, "run ended")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        run = self.run
        bid = event.button.id
        event.stop()
        if bid == "toggle":
            self.action_toggle()
        elif bid == "faster":
            self.action_faster()
        elif bid == "slower":
            self.action_slower()
        elif bid == "inject-artefact":
            kind = self.query_one("#artefact", Select).value
            if isinstance(kind, str):
                self._do("inject", lambda: run.inject("artefact", kind=kind), f"artefact {kind} injected")
        elif bid == "inject-event":
            ev = self.query_one("#event", Select).value
            if isinstance(ev, str):
                self._do("inject", lambda: run.inject(ev), f"event {ev} injected")
        elif bid == "jump":
            st = self.query_one("#state", Select).value
            if isinstance(st, str):
                self._do("jump", lambda: run.jump(st), f"jumped to state {st}")
        elif bid == "add-note":
            box = self.query_one("#note", Input)
            text = box.value
            box.value = ""
            self._do("note", lambda: run.note(text), "note added")
        elif bid == "end":
            self.action_end()
        elif bid == "close":
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "note":
            event.stop()
            self.on_button_pressed(Button.Pressed(self.query_one("#add-note", Button)))
