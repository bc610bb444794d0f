"""The part of the transport between "bytes arrived" and "outputs handed on", without I/O.

Owns: ``Feeder`` (stamps each received chunk with the injected clock, tees it to the raw
capture callback, feeds the driver, sets ``receive_time`` on the driver's outputs,
collects the bytes the driver wants written back, watches the driver's error counters
for ``high_error_rate``), ``Watch`` (``no_data`` and stream-stall timing), the
technical ``DeviceStatus`` constructors, ``TransportConfig`` and the ``LinkStats`` snapshot.
Used by ``serial_link.Link``, ``hl7_listener.Hl7Listener`` and ``replay_source.ReplaySource``.

Must not import: serial, socket, threading (callers own locking), textual,
chairside.store, chairside.alarms, chairside.service. Time only from the injected clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from chairside.domain.clock import Clock
from chairside.domain.readings import DeviceStatus, DriverOutput, Reading
from chairside.drivers.base import Driver

OutputCallback = Callable[[list[DriverOutput]], None]
"""Receives a batch of readings / device-status records (never an empty list)."""

RawCallback = Callable[[datetime, float, bytes], None]
"""Receives ``(receive_time, monotonic_seconds, data)`` for every chunk read, before decoding."""

TRANSPORT_FLAG = "transport"
"""Flag carried by every technical ``DeviceStatus`` the transport itself emits."""


@dataclass(frozen=True)
class TransportConfig:
    """Timing and threshold knobs shared by the links (technical, not clinical, numbers).

    no_data_after_s: emit ``no_data`` (active) when no byte arrived for this long while
        connected; ``no_data`` (inactive) when bytes flow again. The alarm engine applies
        the clinical delay on top of it.
    stall_after_s: re-send ``driver.on_stream_stalled()`` when no byte arrived for this long
        since the last byte or the last request, repeatedly.
    error_window_s / error_threshold / error_min_frames / error_min_bytes: ``high_error_rate``
        is active while, over the last ``error_window_s`` seconds, rejected frames are at
        least ``error_threshold`` of the frames seen (with at least ``error_min_frames``
        frames) or skipped bytes are at least ``error_threshold`` of the bytes received
        (with at least ``error_min_bytes`` bytes).
    max_backoff_s: the reconnect delay doubles from ``min_backoff_s`` up to this cap, so a
        port that comes back is reopened within ``max_backoff_s`` + the open time.
    read_timeout_s: how long one blocking read waits; bounds the reaction time of ``stop()``
        and of the timers.
    write_timeout_s: a write that blocks longer (flow control never released) is dropped
        and counted as an error instead of hanging the link.
    listen_*: the HL7 listener (``Hl7Listener``): at most ``listen_max_connections`` at once;
        a connection that delivered no complete message for ``listen_idle_timeout_s`` is
        closed (idle), and one whose started message is not complete within
        ``listen_message_timeout_s`` (a sender trickling bytes) too; a message larger than
        ``listen_max_message_bytes`` is rejected (AR) and dropped; ``listen_senders`` are the
        addresses of the monitors (a new connection from one evicts an idle connection
        rather than being refused; empty: every peer counts as a sender).
    """

    no_data_after_s: float = 10.0
    stall_after_s: float = 5.0
    error_window_s: float = 30.0
    error_threshold: float = 0.2
    error_min_frames: int = 5
    error_min_bytes: int = 256
    min_backoff_s: float = 0.1
    max_backoff_s: float = 1.0
    read_timeout_s: float = 0.1
    write_timeout_s: float = 1.0
    listen_max_connections: int = 8
    listen_idle_timeout_s: float = 120.0
    listen_message_timeout_s: float = 30.0
    listen_max_message_bytes: int = 1 << 20
    listen_senders: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("no_data_after_s", "stall_after_s", "error_window_s", "min_backoff_s",
                     "max_backoff_s", "read_timeout_s", "write_timeout_s", "listen_idle_timeout_s",
                     "listen_message_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"transport setting {name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.error_threshold <= 1:
            raise ValueError(f"transport setting error_threshold must be in (0, 1], got {self.error_threshold!r}")
        if self.listen_max_connections < 1:
            raise ValueError(f"transport setting listen_max_connections must be >= 1, got {self.listen_max_connections!r}")
        if self.listen_max_message_bytes < 1024:
            raise ValueError("transport setting listen_max_message_bytes must be >= 1024, got "
                             f"{self.listen_max_message_bytes!r}")
        if self.min_backoff_s > self.max_backoff_s:
            raise ValueError("transport setting min_backoff_s must not exceed max_backoff_s")


@dataclass(frozen=True)
class LinkStats:
    """A snapshot of one link (or listener), safe to read from any thread.

    state: ``"idle"`` (not started), ``"connecting"``, ``"up"``, ``"down"`` (lost, retrying),
    ``"listening"`` (HL7 listener without a peer), ``"stopped"``, ``"finished"`` (replay).
    """

    port: str
    driver: str
    state: str
    bytes_in: int = 0
    bytes_out: int = 0
    chunks: int = 0
    readings: int = 0
    readings_per_min: float = 0.0
    frames_decoded: int = 0
    frames_rejected: int = 0
    bytes_skipped: int = 0
    connects: int = 0
    disconnects: int = 0
    write_errors: int = 0
    last_error: str = ""
    errors: tuple[str, ...] = ()
    peers: int = 0


def technical(kind: str, clock: Clock, *, active: bool = True, detail: str = "") -> DeviceStatus:
    """A transport-level ``DeviceStatus`` stamped with the clock."""
    return DeviceStatus(kind=kind, active=active, detail=detail, flags=(TRANSPORT_FLAG,),
                        receive_time=clock.now())


@dataclass
class _Counters:
    bytes_in: int = 0
    bytes_out: int = 0
    chunks: int = 0
    readings: int = 0
    write_errors: int = 0
    connects: int = 0
    disconnects: int = 0
    last_error: str = ""
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def error(self, text: str) -> None:
        self.last_error = text
        self.errors.append(text)


class ErrorRate:
    """Sliding-window error rate over a driver's cumulative counters."""

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        # (t, frames_decoded, frames_rejected, bytes_skipped, bytes_in) cumulative samples
        self._samples: deque[tuple[float, int, int, int, int]] = deque()
        self.active = False

    def update(self, t: float, decoded: int, rejected: int, skipped: int, bytes_in: int) -> bool | None:
        """Add a cumulative sample; return True/False when the condition starts/ends, else None."""
        cfg = self.config
        last = self._samples[-1] if self._samples else None
        if last is not None and (decoded < last[1] or rejected < last[2] or skipped < last[3]):
            self._samples.clear()  # the driver's counters were replaced: count from zero again
        self._samples.append((t, decoded, rejected, skipped, bytes_in))
        horizon = t - cfg.error_window_s
        while len(self._samples) >= 2 and self._samples[1][0] <= horizon:
            self._samples.popleft()
        first = self._samples[0]
        # baseline: the newest sample at or before the window start, else zero (young link)
        _, d0, r0, s0, b0 = first if first[0] <= horizon else (t, 0, 0, 0, 0)
        frames = (decoded - d0) + (rejected - r0)
        nbytes = bytes_in - b0
        bad = (frames >= cfg.error_min_frames and (rejected - r0) >= cfg.error_threshold * frames) or (
            nbytes >= cfg.error_min_bytes and (skipped - s0) >= cfg.error_threshold * nbytes)
        if bad != self.active:
            self.active = bad
            return bad
        return None


class Feeder:
    """Bytes in -> driver -> outputs out, for one connection with one driver instance.

    ``received(data)`` returns the bytes to write back (the driver's ``take_output()``);
    the caller writes them. Not thread-safe: one caller thread at a time.
    """

    def __init__(self, driver: Driver, clock: Clock, config: TransportConfig,
                 emit: OutputCallback, on_raw: RawCallback | None = None,
                 counters: _Counters | None = None) -> None:
        self.driver = driver
        self.clock = clock
        self.config = config
        self.emit = emit
        self.on_raw = on_raw
        self.counters = counters or _Counters()
        self.errors = ErrorRate(config)
        self._rate: deque[tuple[float, int]] = deque()  # (t, readings) for readings/min
        self._bytes_seen = 0

    def received(self, data: bytes, *, receive_time: datetime | None = None,
                 monotonic: float | None = None) -> bytes:
        """Handle one chunk. Times default to the clock's now() / monotonic()."""
        if not data:
            return b""
        now = self.clock.now() if receive_time is None else receive_time
        mono = self.clock.monotonic() if monotonic is None else monotonic
        c = self.counters
        c.bytes_in += len(data)
        c.chunks += 1
        self._bytes_seen += len(data)
        if self.on_raw is not None:
            self.on_raw(now, mono, data)
        outputs = self.driver.feed(data)
        stamped: list[DriverOutput] = []
        n_readings = 0
        for item in outputs:
            if item.receive_time is None:
                item = item.model_copy(update={"receive_time": now})
            if isinstance(item, Reading):
                n_readings += 1
            stamped.append(item)
        if n_readings:
            c.readings += n_readings
            self._rate.append((mono, n_readings))
        st = self.driver.stats
        change = self.errors.update(mono, st.frames_decoded, st.frames_rejected, st.bytes_skipped,
                                    self._bytes_seen)
        if change is not None:
            detail = (f"{st.frames_rejected} frames rejected, {st.bytes_skipped} bytes skipped "
                      f"of {st.frames_decoded} decoded") if change else "error rate back to normal"
            stamped.append(DeviceStatus(kind="high_error_rate", active=change, detail=detail,
                                        flags=(TRANSPORT_FLAG,), receive_time=now))
        if stamped:
            self.emit(stamped)
        return self.driver.take_output()

    def close(self) -> list[DriverOutput]:
        """Outputs that end conditions this feeder raised (call when its connection ends)."""
        if self.errors.active:
            self.errors.active = False
            return [technical("high_error_rate", self.clock, active=False, detail="connection closed")]
        return []

    def readings_per_min(self) -> float:
        now = self.clock.monotonic()
        while self._rate and self._rate[0][0] < now - 60.0:
            self._rate.popleft()
        return float(sum(n for _, n in self._rate))


class Watch:
    """No-data and stream-stall timers, driven by ``tick()`` calls with the clock's time."""

    def __init__(self, clock: Clock, config: TransportConfig) -> None:
        self.clock = clock
        self.config = config
        self.last_data = clock.monotonic()
        self.last_request = self.last_data
        self.no_data_active = False

    def restart(self) -> None:
        """The link (re)connected: both timers start now."""
        self.last_data = self.last_request = self.clock.monotonic()

    def data(self) -> list[DeviceStatus]:
        """Bytes arrived. Returns ``no_data`` (inactive) if it was active."""
        self.last_data = self.clock.monotonic()
        if self.no_data_active:
            self.no_data_active = False
            return [technical("no_data", self.clock, active=False, detail="data flowing again")]
        return []

    def tick(self) -> tuple[list[DeviceStatus], bool]:
        """(technical events due, whether the stream-stall request is due now)."""
        now = self.clock.monotonic()
        events: list[DeviceStatus] = []
        quiet = now - self.last_data
        if not self.no_data_active and quiet >= self.config.no_data_after_s:
            self.no_data_active = True
            events.append(technical("no_data", self.clock,
                                    detail=f"no bytes for {quiet:.1f} s"))
        stalled = now - max(self.last_data, self.last_request) >= self.config.stall_after_s
        if stalled:
            self.last_request = now
        return events, stalled

    def end(self) -> list[DeviceStatus]:
        """The link went away: ``no_data`` ends (``link_lost`` supersedes it)."""
        if self.no_data_active:
            self.no_data_active = False
            return [technical("no_data", self.clock, active=False, detail="link lost")]
        return []
