"""The replay banner: the line above the monitor during a replay.

Owns: ``ReplayBanner`` (play/pause state, speed, the session clock and position in the
recording, the file, and the comparison of recomputed with recorded alarms). It renders
what the app hands it (``show``) and owns no state. Must not import: chairside.store,
chairside.transport.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.widgets import Static

from chairside.ui.format import duration


@dataclass(frozen=True)
class ReplayStatus:
    """What the banner shows (built by the app from its ``ReplayPlayer``)."""

    playing: bool
    speed: str
    clock: str  # the recorded wall time at the position, HH:MM:SS
    elapsed_s: float
    total_s: float
    file: str
    recomputed: int  # alarm onsets recomputed so far
    recorded: int | None  # alarm onsets recorded up to the position (None: a raw capture)
    differences: int | None
    message: str = ""


class ReplayBanner(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", id="replay-banner", markup=False, **kwargs)
        self._key: ReplayStatus | None = None

    def show(self, s: ReplayStatus) -> None:
        if s == self._key:
            return
        self._key = s
        state = "▶ REPLAY" if s.playing else "❚❚ PAUSED"
        alarms = f"alarms {s.recomputed}"
        if s.recorded is not None:
            alarms += f" (recorded {s.recorded})"
        if s.differences:
            alarms += f", {s.differences} DIFFERENCE{'S' if s.differences != 1 else ''} (d)"
        elif s.differences == 0:
            alarms += ", same"
        text = (f"{state} {s.speed} │ {s.clock}Z +{duration(s.elapsed_s)}/{duration(s.total_s)} │ {alarms}"
                + (f" │ {s.message}" if s.message else "") + f" │ {s.file} · read-only")
        self.set_class(bool(s.differences), "-differ")
        self.set_class(not s.playing, "-paused")
        self.update(text)
