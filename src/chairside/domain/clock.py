"""Clocks: time is injected, never read from the wall inside the core.

Owns: the ``Clock`` protocol, ``WallClock`` (live) and ``ManualClock`` (tests, replay,
simulation: advanced explicitly); ``elapsed_text``, the one way an elapsed time is written
for people (console, debrief).
Must not import: anything outside stdlib.
"""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current UTC time (timezone-aware)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""


class WallClock:
    """The live clock: UTC wall time and the OS monotonic clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)  # the only wall-clock read in the core

    def monotonic(self) -> float:
        return _time.monotonic()


class ManualClock:
    """A clock that moves only when told to (tests, replay, simulation)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
        self._elapsed = 0.0

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._elapsed += seconds

    def set(self, elapsed: float) -> None:
        if elapsed < self._elapsed:
            raise ValueError("a clock does not go backwards")
        self._elapsed = elapsed


def elapsed_text(seconds: float | None, missing: str = "--:--") -> str:
    """'mm:ss' under an hour, 'h:mm:ss' from one, '-' before a negative time; ``missing``
    when unknown."""
    if seconds is None:
        return missing
    neg = seconds < 0
    s = int(round(abs(seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    txt = f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"
    return f"-{txt}" if neg else txt
