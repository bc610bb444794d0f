"""The debrief of a training run (or any session): score, expected actions met or missed,
time to acknowledge each alarm, the instructor's notes and the timeline.

Owns: ``DebriefScreen`` (renders the markdown of ``chairside.reports.debrief.to_markdown``; the
files are written by ``chairside train`` beside the session file). Must not import:
chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Markdown


class DebriefScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss", "Close", show=True)]

    def __init__(self, debrief: dict[str, Any]) -> None:
        super().__init__()
        self.debrief = debrief

    def compose(self) -> ComposeResult:
        from chairside.reports.debrief import to_markdown

        s = self.debrief.get("score")
        title = "Debrief" if s is None else f"Debrief — {s['points']} of {s['possible']} points"
        with VerticalScroll(id="debrief", classes="dialog"):
            yield Label(title, id="dialog-title")
            yield Markdown(to_markdown(self.debrief), id="debrief-text")
