"""The replay banner: the line above the monitor during a replay.

Owns: ``ReplayBanner`` (play/pause state, speed, the session clock and position in the
recording, the file, and the comparison of recomputed with recorded alarms). It renders
what the app hands it (``show``) and owns no state. Must not import: chairside.store,
chairside.transport.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.widgets import Static

from chairside.ui.format import duration, fit_parts


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

    def on_resize(self) -> None:
        if self._key is not None:
            last, self._key = self._key, None
            self.show(last)

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
        short = alarms.split(" (")[0] + (" DIFFERENT (d)" if s.differences else "")
        parts: list[str | tuple[str, ...]] = [
            f"{state} {s.speed}", f"{s.clock}Z +{duration(s.elapsed_s)}/{duration(s.total_s)}", "read-only",
            (alarms, short) if short != alarms else alarms, s.message, s.file]
        # whole parts in the width there is (never cut mid-word at 80 columns): the file name
        # goes first, "read-only" stays
        width = max(0, self.size.width - 2) or 200
        text = fit_parts(parts, width, sep=" │ ", keep=3)
        self.set_class(bool(s.differences), "-differ")
        self.set_class(not s.playing, "-paused")
        self.update(text)
