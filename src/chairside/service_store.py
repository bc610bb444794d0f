"""The monitoring service's hold on the session file: never lose a reading, never stop.

Owns: ``MemoryStore`` (events and readings kept in memory: before a session file is
opened, and after the disk failed) and ``GuardedStore`` (wraps ``chairside.store.SessionFile``;
when a write fails — full disk, read-only folder, file gone — it keeps every later event
and reading in memory, reports ``state="memory"`` with a loud message, and keeps the
monitoring going). Both number events (``seq``) like the session file does.
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chairside.domain.events import CLINICAL_EVENT_KINDS
from chairside.domain.readings import Reading
from chairside.domain.state import StateError
from chairside.service_model import StoreStatus

log = logging.getLogger("chairside.service.store")

MAX_MEMORY_READINGS = 500_000  # bounded: ~5 days of 1 Hz x 6 parameters


class MemoryStore:
    """Events and readings in memory, numbered from ``first_seq``."""

    def __init__(self, first_seq: int = 1) -> None:
        self._events: list[Any] = []
        self._readings: list[Reading] = []
        self._next = first_seq
        self._lock = threading.Lock()
        self.dropped_readings = 0

    def append(self, event: Any) -> Any:
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
        pass

    def events(self) -> list[Any]:
        with self._lock:
            return list(self._events)

    def readings(self) -> list[Reading]:
        with self._lock:
            return list(self._readings)

    def close(self) -> None:
        pass

    @property
    def next_seq(self) -> int:
        return self._next

    @property
    def counts(self) -> tuple[int, int]:
        return len(self._events), len(self._readings)


class GuardedStore:
    """A ``SessionFile`` that degrades to memory instead of failing the monitor."""

    def __init__(self, session_file: Any, path: Path | str) -> None:
        self.file = session_file
        self.path = str(path)
        self.memory: MemoryStore | None = None
        self.message = ""
        self.closed = False
        self._events = 0
        self._readings = 0

    # -- writes ------------------------------------------------------------------------------
    def _fail(self, what: str, exc: BaseException, event: Any | None = None) -> None:
        log.error("session file %s: %s failed: %r", self.path, what, exc)
        if self.memory is None:
            next_seq = self._guess_next_seq()
            self.memory = MemoryStore(first_seq=next_seq)
        self.message = (f"SESSION FILE NOT WRITABLE ({type(exc).__name__}: {exc}) — recording "
                        f"continues IN MEMORY ONLY; do not close the console")

    def _guess_next_seq(self) -> int:
        for name in ("next_seq", "last_seq"):
            v = getattr(self.file, name, None)
            if isinstance(v, int):
                return v if name == "next_seq" else v + 1
        return self._events + 1

    def append(self, event: Any) -> Any:
        if self.memory is None:
            try:
                stored = self.file.append(event)
                self._events += 1
                self._check_file_degraded()
                return stored if stored is not None else event
            except StateError:
                raise  # the file refused this one event (it contradicts the record): the disk is fine
            except Exception as exc:  # noqa: BLE001 - any write failure: keep monitoring
                self._fail(f"append {getattr(event, 'kind', '?')}", exc)
        assert self.memory is not None
        self._events += 1
        return self.memory.append(event)

    def append_readings(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        if self.memory is None:
            try:
                self.file.append_readings(list(readings))
                self._readings += len(readings)
                self._check_file_degraded()
                return
            except Exception as exc:  # noqa: BLE001
                self._fail("append_readings", exc)
        assert self.memory is not None
        self._readings += len(readings)
        self.memory.append_readings(readings)

    def flush(self) -> None:
        if self.memory is None:
            try:
                self.file.flush()
                self._check_file_degraded()
            except Exception as exc:  # noqa: BLE001
                self._fail("flush", exc)

    def _check_file_degraded(self) -> None:
        # the session file may degrade by itself (it keeps recording in memory and says so)
        for name in ("degraded", "in_memory"):
            v = getattr(self.file, name, None)
            if v:
                reason = getattr(self.file, "degraded_reason", None) or getattr(self.file, "error", None)
                self.message = (f"SESSION FILE DEGRADED — recording continues IN MEMORY ONLY"
                                f"{': ' + str(reason) if reason else ''}")
                return

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.file.close()
        except Exception as exc:  # noqa: BLE001
            log.error("session file %s: close failed: %r", self.path, exc)

    # -- status ------------------------------------------------------------------------------
    def status(self) -> StoreStatus:
        if self.memory is not None:
            state = "memory"
        elif self.message:
            state = "degraded"
        elif self.closed:
            state = "closed"
        else:
            state = "ok"
        return StoreStatus(state=state, path=self.path, message=self.message,
                           events=self._events, readings=self._readings)

    @staticmethod
    def is_clinical(event: Any) -> bool:
        return getattr(event, "kind", "") in CLINICAL_EVENT_KINDS
