"""Clocks: time is injected, never read from the wall inside the core.

Owns: the ``Clock`` protocol, ``WallClock`` (live) and ``ManualClock`` (tests, replay,
simulation: advanced explicitly).
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
