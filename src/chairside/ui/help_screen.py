"""The help screen: every key of the console and the command-palette entries.

Owns: ``HelpScreen``. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

from chairside.service.data import console_data
from chairside.ui.monitor_screen import KEYS
from chairside.ui.overlay import BelowAlarms

GENERAL = (
    ("F9", "acknowledge the alarms: from any screen, also while typing in a form"),
    ("F10", "pause the alarm audio: from any screen, also while typing in a form"),
    ("ctrl+p", "command palette: every action by name"),
    ("ctrl+s", "in a form: record / confirm"),
    ("tab / shift+tab", "in a form: next / previous field"),
    ("escape", "close a form or this help without recording"),
    ("ctrl+q", "quit: with a session open, asks why (recorded); the file stays open to resume"),
)


_KEY_NAMES = {"question_mark": "?", "full_stop": ".", "comma": ",", "equals_sign": "=", "plus": "+",
              "minus": "-"}


def _key_text(keys: str) -> str:
    return " / ".join(_KEY_NAMES.get(k, k) for k in keys.split(","))


class HelpScreen(BelowAlarms):
    BINDINGS = [Binding("escape,q,question_mark,h,f1", "dismiss", "Close")]

    def __init__(self, keys: tuple[tuple[str, str, str, bool], ...] | None = None,
                 title: str = "Chairside — keys") -> None:
        super().__init__()
        self.key_rows = KEYS if keys is None else keys
        self.title_text = title

    def compose_panel(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Label(self.title_text, id="dialog-title")
            rows = []
            for key, _action, desc, _shown in self.key_rows:
                rows.append(f"  {_key_text(key):<22} {desc}")
            rows.append("")
            for key, desc in GENERAL:
                rows.append(f"  {key:<22} {desc}")
            rows.append("")
            data = console_data()
            rows.append(f"Alarms: *** high (red, flashing {data.flash_high_hz:g} Hz) · ** medium (yellow, "
                        f"{data.flash_medium_hz:g} Hz) · * low (cyan).")
            pause_s = self.app.service.audio_pause_s  # type: ignore[attr-defined]
            pause = f" Audio pause lasts {pause_s / 60:g} min." if isinstance(pause_s, (int, float)) else ""
            rows.append("High physiological alarms latch until acknowledged." + pause)
            rows.append("NIBP shows how many minutes old it is and dims when stale; '---' means missing,")
            rows.append("with the reason shown under it (never a zero).")
            yield Static("\n".join(rows), id="help-text", markup=False)
