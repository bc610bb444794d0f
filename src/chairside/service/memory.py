"""The service's in-memory record: before a session file is opened, and a replay kept in memory.

Owns: ``MemoryStore`` (events and readings kept in memory, numbered like the session file).
It is not a fallback for a failing disk: ``chairside.store.SessionFile`` owns the only
degrade-to-memory path.
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from chairside.domain.events import Event
from chairside.domain.readings import Reading

MAX_MEMORY_READINGS = 500_000  # bounded: ~5 days of 1 Hz x 6 parameters


class MemoryStore:
    """Events and readings in memory, numbered from ``first_seq``."""

    def __init__(self, first_seq: int = 1) -> None:
        self._events: list[Event] = []
        self._readings: list[Reading] = []
        self._next = first_seq
        self._lock = threading.Lock()
        self.dropped_readings = 0

    def append(self, event: Event) -> Event:
        with self._lock:
            stored = event.model_copy(update={"seq": self._next})
            self._next += 1
            self._events.append(stored)
            return stored

    def append_readings(self, readings: Sequence[Reading]) -> None:
        with self._lock:
            self._readings.extend(readings)
            excess = len(self._readings) - MAX_MEMORY_READINGS
            if excess > 0:
                del self._readings[:excess]
                self.dropped_readings += excess

    def flush(self) -> None:
        return None

    def tick(self) -> None:
        return None

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def readings(self) -> list[Reading]:
        with self._lock:
            return list(self._readings)

    def close(self) -> None:
        return None

    @property
    def next_seq(self) -> int:
        return self._next

    @property
    def counts(self) -> tuple[int, int]:
        return len(self._events), len(self._readings)
