"""The alarm bar: every active alarm, highest priority first, with text markers.

Owns: ``AlarmBar``. Each alarm is one line: ``***``/``**``/``*`` marker, the message, its
value and limit, and its state (ACK, LATCHED, audio paused). Colour and flashing come
from classes toggled by the app's own timer (``set_phase``): high red at 2 Hz, medium
yellow at 0.5 Hz, low cyan steady — never terminal blink. Works in monochrome through
the markers. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from chairside.service.model import AlarmView
from chairside.ui.format import marker

MAX_LINES = 4


def _line(a: AlarmView) -> str:
    state = []
    if a.latched or not a.condition_active:
        state.append("LATCHED" if a.latched else "condition gone")
    if a.acknowledged:
        state.append("ACK")
    elif a.audio_paused:
        state.append("audio paused")
    kind = "TECH " if a.alarm_class == "technical" else ""
    tail = f"  [{', '.join(state)}]" if state else ""
    return f"{marker(a.priority):<3} {kind}{a.message}{tail}"


class AlarmBar(Static):
    """Shows the alarms of the latest snapshot; ``set_phase`` drives the flashing.

    Line colours are component classes styled in ``chairside.tcss``
    (``alarm--high``, ``alarm--high-off``, ``alarm--high-ack``, ... ``alarm--low-ack``).
    """

    COMPONENT_CLASSES = {
        "alarm--high", "alarm--high-off", "alarm--high-ack",
        "alarm--medium", "alarm--medium-off", "alarm--medium-ack",
        "alarm--low", "alarm--low-ack",
        "alarm--audio-none", "alarm--audio-paused",
    }

    def __init__(self, **kwargs) -> None:
        super().__init__("", id="alarm-bar", **kwargs)
        self._alarms: tuple[AlarmView, ...] = ()
        self._high_on = True
        self._medium_on = True
        self._rendered: tuple | None = None
        self._audio: tuple[str, str] | None = None  # (text, "none" | "paused"), first line

    def show_audio(self, line: tuple[str, str] | None) -> None:
        """The sound's state, shown above the alarms: "AUDIO: NONE", the pause countdown."""
        if line != self._audio:
            self._audio = line
            self._render_bar()

    def on_resize(self) -> None:
        from chairside.ui.monitor_screen import top_changed

        top_changed(self)  # a form over the monitor moves down with a growing bar

    def show(self, alarms: tuple[AlarmView, ...]) -> None:
        self._alarms = alarms
        self._render_bar()

    @property
    def alarms(self) -> tuple[AlarmView, ...]:
        return self._alarms

    def set_phase(self, high_on: bool, medium_on: bool) -> None:
        """Flash phases from the app timer; re-renders only when an alarm needs it."""
        self._high_on, self._medium_on = high_on, medium_on
        if any(a.priority in ("high", "medium") and not a.acknowledged for a in self._alarms):
            self._render_bar()

    def _render_bar(self) -> None:
        alarms = self._alarms
        top = alarms[0].priority if alarms else None
        key = (tuple((a.alarm_id, a.priority, a.message, a.acknowledged, a.latched, a.audio_paused,
                      a.condition_active) for a in alarms), self._high_on, self._medium_on, self._audio)
        if key == self._rendered:
            return
        self._rendered = key
        self.set_class(not alarms, "-none")
        for p in ("high", "medium", "low"):
            self.set_class(top == p, f"-top-{p}")
        text = Text()
        if self._audio is not None:
            words, kind = self._audio
            text.append(words, style=self.get_component_rich_style(f"alarm--audio-{kind}", partial=True))
            text.append("\n")
        if not alarms:
            text.append("No active alarms")
            self.update(text)
            return
        shown = alarms[:MAX_LINES]
        for i, a in enumerate(shown):
            if i:
                text.append("\n")
            flashing_off = not a.acknowledged and (
                (a.priority == "high" and not self._high_on)
                or (a.priority == "medium" and not self._medium_on))
            name = f"alarm--{a.priority}" + ("-off" if flashing_off else "") + ("-ack" if a.acknowledged else "")
            if name not in self.COMPONENT_CLASSES:
                name = f"alarm--{a.priority}"
            text.append(_line(a), style=self.get_component_rich_style(name, partial=True))
        if len(alarms) > MAX_LINES:
            text.append(f"\n   … and {len(alarms) - MAX_LINES} more (h: help)")
        self.update(text)

