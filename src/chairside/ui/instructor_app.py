"""``chairside train --instructor``: the instructor panel alone, on a second terminal.

Owns: ``InstructorApp`` — shows ``InstructorPanel`` for a training run reached through
``chairside.training_remote.RemoteRun`` (a local socket, never the network), and the
debrief when the instructor ends the run. The trainee's screen shows nothing of it.
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from textual.app import App

from chairside.ui.debrief_screen import DebriefScreen
from chairside.ui.instructor_panel import InstructorPanel


class InstructorApp(App[None]):
    """The instructor's own console: the panel; closing it leaves the run going."""

    TITLE = "Chairside — instructor"
    CSS_PATH = "chairside.tcss"

    def __init__(self, training: Any) -> None:
        super().__init__()
        self.training = training  # a RemoteRun (or a TrainingRun in tests)

    def on_mount(self) -> None:
        self.push_screen(InstructorPanel(), callback=lambda _: self._closed())

    def _closed(self) -> None:
        if not isinstance(self.screen, DebriefScreen):
            self.exit()

    def show_debrief(self) -> None:
        d = self.training.final or self.training.debrief()
        self.push_screen(DebriefScreen(d), callback=lambda _: self.exit())
