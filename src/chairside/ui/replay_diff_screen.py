"""The list of differences between the alarms the engine recomputed during a replay and
the alarms recorded at the time (for example after a change of limits).

Owns: ``DifferencesScreen``. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class DifferencesScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,d", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        player = self.app.replay
        with player.lock:
            r = player.replayer
            diffs = r.differences()
            start = r.start
            source = r.recording.source
            at = r.elapsed_s
        with VerticalScroll(id="differences", classes="dialog"):
            yield Label("Recomputed vs recorded alarms", id="dialog-title")
            if source != "session":
                text = "A raw capture has no recorded alarms to compare with."
            elif not diffs:
                text = (f"No differences up to +{int(at) // 60} min: the engine raised, escalated, "
                        "acknowledged and cleared the same alarms at the same times as recorded.")
            else:
                text = "\n".join(d.line(start) for d in diffs)
            yield Static(text, id="differences-text", markup=False)
            yield Label("Times are from the start of the session. Escape closes.", classes="hint")
