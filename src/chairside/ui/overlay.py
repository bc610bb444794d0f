"""Screens over the monitor that never hide or dim the alarm bar and the vital tiles.

Owns: ``BelowAlarms`` — the base of every form, the help and the instructor panel. It is a
modal screen with a transparent background: the monitor behind it keeps drawing (header,
notices, alarm bar, vital tiles, device line) in its own colours, and the screen's panel
takes only the part below the vital tiles and above the device line. Its own footer shows
the keys that work from here, F9 (acknowledge) and F10 (audio pause) among them: those are
the app's priority keys, so no field swallows them. While a panel is open the monitor
carries the class ``-under-panel`` (on short terminals its tiles shrink to one line each).
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.binding import Binding
from textual.widgets import Footer


class BelowAlarms(ModalScreen[Any]):
    """Subclasses give ``compose_panel`` (one container with the class ``dialog``)."""

    # shown in this screen's footer; the keys themselves are the app's priority bindings
    # (which a modal screen's footer does not list), so these never run
    BINDINGS = [Binding("f9", "app.acknowledge", "Ack alarms", key_display="F9"),
                Binding("f10", "app.pause_audio", "Audio pause", key_display="F10")]

    def compose(self) -> ComposeResult:
        # the panel is placed with margins, not spacers or padding: only the screen's bare
        # background is transparent (a widget or padding paints over what is behind)
        yield from self.compose_panel()
        yield Footer(compact=True, show_command_palette=False)

    def compose_panel(self) -> ComposeResult:  # pragma: no cover - subclasses override
        yield from ()

    # ------------------------------------------------------------------ placement
    def on_mount(self) -> None:
        self.fit_below_monitor()
        self.call_after_refresh(self.fit_below_monitor)

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_below_monitor)

    def on_screen_resume(self) -> None:
        self.call_after_refresh(self.fit_below_monitor)

    def monitor_rows(self) -> tuple[int, int] | None:
        """(first row below the monitor's vital tiles, rows kept at the bottom for the device
        line), read from the monitor's layout; None when no monitor is shown."""
        try:
            monitor = self.app.monitor  # type: ignore[attr-defined]
            tiles = monitor.query_one("#tiles")
            device = monitor.query_one("#device-line")
        except (LookupError, NoMatches, AttributeError):
            return None
        if tiles.region.height == 0:
            return None
        height = self.size.height or self.app.size.height
        gap = 0
        if device.region.height and device.region.y < height:
            gap = max(0, height - 1 - device.region.y)
        return tiles.region.bottom, gap

    def fit_below_monitor(self) -> None:
        """Place the panel between the tiles and the device line (idempotent; cheap)."""
        rows = self.monitor_rows()
        top, gap = rows if rows is not None else (0, 0)
        height = self.size.height or self.app.size.height
        avail = max(3, height - top - gap - 1)  # - 1: this screen's footer
        if (top, gap, avail) == getattr(self, "_fitted", None):
            return
        self._fitted = (top, gap, avail)
        for panel in self.query(".dialog"):
            panel.styles.margin = (top, 0, gap, 0)
            panel.styles.height = avail  # the fields scroll inside; the buttons stay in view
