"""The service's threads: the inbox the link's reader thread fills, the service thread that
drains it and ticks the alarm engine once a second, and the subscribers it publishes to.

Owns: ``Pump`` (the one lock that serialises link batches, ticks and commands; the inbox;
snapshot and event subscribers; ``publish``). The link's thread only enqueues; the service
thread calls back into the facade (``feed`` / ``tick``), which takes the lock.
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from chairside.domain.clock import Clock
from chairside.domain.events import Event
from chairside.domain.readings import DeviceStatus, Reading
from chairside.service.model import Snapshot

log = logging.getLogger("chairside.service")

Batch = Sequence[Reading | DeviceStatus]
MAX_BATCHES_PER_PUBLISH = 64


class Pump:
    """Inbox, service thread, subscribers."""

    def __init__(self, clock: Clock, tick_s: float) -> None:
        self.clock = clock
        self.tick_s = tick_s
        self.lock = threading.RLock()
        self._inbox: queue.Queue[Batch | None] = queue.Queue()
        self._subs: list[Callable[[Snapshot], None]] = []
        self._event_subs: list[Callable[[Event], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ subscribers
    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        with self.lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self.lock:
                if callback in self._subs:
                    self._subs.remove(callback)
        return unsubscribe

    def subscribe_events(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        with self.lock:
            self._event_subs.append(callback)

        def unsubscribe() -> None:
            with self.lock:
                if callback in self._event_subs:
                    self._event_subs.remove(callback)
        return unsubscribe

    @property
    def has_snapshot_subscribers(self) -> bool:
        return bool(self._subs)

    def publish(self, snap: Snapshot | None, events: Sequence[Event]) -> None:
        """Stored events to the event subscribers, then the snapshot (outside the lock)."""
        for ev in events:
            for cb in list(self._event_subs):
                try:
                    cb(ev)
                except Exception:  # noqa: BLE001 - a subscriber's bug must not stop monitoring
                    log.exception("event subscriber failed")
        if snap is None:
            return
        for cb in list(self._subs):
            try:
                cb(snap)
            except Exception:  # noqa: BLE001 - a subscriber's bug must not stop monitoring
                log.exception("snapshot subscriber failed")

    # ------------------------------------------------------------------ threads
    def enqueue(self, batch: Batch) -> None:
        """The link's thread: only enqueue."""
        self._inbox.put(batch)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, feed: Callable[[list[Reading | DeviceStatus]], None], tick: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=self._run, args=(feed, tick), name="chairside-service",
                                        daemon=True)
        self._thread.start()

    def stop(self, process: Callable[[Batch], Any]) -> None:
        """Stop the service thread; what is still queued is processed (caller holds no lock)."""
        self._stop.set()
        self._inbox.put(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        with self.lock:
            while True:
                try:
                    batch = self._inbox.get_nowait()
                except queue.Empty:
                    return
                if batch:
                    process(batch)

    def _run(self, feed: Callable[[list[Reading | DeviceStatus]], None], tick: Callable[[], None]) -> None:
        next_tick = self.clock.monotonic() + self.tick_s
        while not self._stop.is_set():
            # a simulated clock may run faster than the wall (its ``rate``): wait in wall
            # seconds, so the alarm ticks keep to about one per second of the session clock
            rate = getattr(self.clock, "rate", 1.0) or 1.0
            timeout = max(0.0, next_tick - self.clock.monotonic()) / max(rate, 1.0)
            try:
                batch = self._inbox.get(timeout=min(timeout, self.tick_s))
            except queue.Empty:
                batch = None
            try:
                if batch:
                    # take whatever else is waiting too: one publish for a burst
                    more = [batch]
                    while len(more) < MAX_BATCHES_PER_PUBLISH:
                        try:
                            nxt = self._inbox.get_nowait()
                        except queue.Empty:
                            break
                        if nxt:
                            more.append(nxt)
                    feed([x for b in more for x in b])
                if self.clock.monotonic() >= next_tick:
                    next_tick = self.clock.monotonic() + self.tick_s
                    tick()
            except Exception as exc:  # noqa: BLE001 - the monitor must keep going
                log.exception("service loop error: %r", exc)
