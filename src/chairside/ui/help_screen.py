"""The help screen: every key of the console and the command-palette entries.

Owns: ``HelpScreen``. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from chairside.ui.monitor_screen import KEYS

GENERAL = (
    ("ctrl+p", "command palette: every action by name"),
    ("ctrl+s", "in a form: record / confirm"),
    ("tab / shift+tab", "in a form: next / previous field"),
    ("escape", "close a form or this help without recording"),
    ("ctrl+q", "quit (the session file stays open and can be resumed)"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,h,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Label("Chairside — keys", id="dialog-title")
            rows = []
            for key, _action, desc, _shown in KEYS:
                rows.append(f"  {key.replace(',', ' / ').replace('question_mark', '?'):<22} {desc}")
            rows.append("")
            for key, desc in GENERAL:
                rows.append(f"  {key:<22} {desc}")
            rows.append("")
            rows.append("Alarms: *** high (red, flashing 2 Hz) · ** medium (yellow, 0.5 Hz) · * low (cyan).")
            rows.append("High physiological alarms latch until acknowledged. Audio pause lasts 2 min.")
            rows.append("NIBP shows how many minutes old it is and dims when stale; '---' means missing,")
            rows.append("with the reason shown under it (never a zero).")
            yield Static("\n".join(rows), id="help-text", markup=False)
