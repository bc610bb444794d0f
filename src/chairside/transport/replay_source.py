"""Replay a capture through a driver: the ``--port file:PATH`` source and ``chairside replay``.

Owns: ``ReplaySource`` (feeds a driver from a capture at a speed factor, byte-exactly the
same chunks), ``parse_speed``, the timing of plain byte captures (``NOMINAL_INTERVAL_S``,
frames grouped by device time).

Plain byte captures (any file without the CSRAW1 magic: the GE S/5 recordings of
../shared/vectors, a capture from another tool, ``chairside simulate --out``) replay too, with
their driver named: ``ReplaySource`` reads them through the driver and times each frame by
the device's own timestamp (S/5 record time, Masimo line time, HL7 OBX-14, OBR-7 or MSH-7), never
going backwards; a frame without one comes the driver's nominal interval
(``NOMINAL_INTERVAL_S``) after the previous one. ``capture.capture_format`` tells the two apart.

Must not import: textual, chairside.store, chairside.alarms, chairside.service, serial.
Time: the replay paces itself with an injected timer/sleeper and can advance an injected
``ManualClock``; outputs carry the capture's receive times (or a ``live_clock``'s).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chairside.domain.readings import DriverOutput, Reading
from chairside.drivers.base import Driver, get_driver
from chairside.transport.capture import (
    MAGIC,
    CaptureError,
    CaptureReader,
    CaptureRecord,
    capture_format,
)
from chairside.transport.datapath import (
    Feeder,
    LinkStats,
    OutputCallback,
    RawCallback,
    TransportConfig,
    Watch,
    _Counters,
)

# Seconds between two frames when the protocol gives a frame no time of its own [S]: the
# Masimo sends one line a second (vectors README); the S/5 streams at the interval the host
# requests (our default request); HL7 senders are configured per site (one a second assumed).
NOMINAL_INTERVAL_S: dict[str, float] = {"ge-s5": 5.0, "masimo": 1.0, "hl7": 1.0}
PLAIN_CHUNK = 4096  # bytes per read of a plain capture (the size of a serial read burst)


def parse_speed(text: str | float | None) -> float | None:
    """``"max"``/None -> None (as fast as possible); ``"2"``/``2.0`` -> 2.0; else ValueError."""
    if text is None:
        return None
    if isinstance(text, str) and text.strip().lower() in ("max", "inf", "infinite"):
        return None
    try:
        speed = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"speed must be a positive number or 'max', got {text!r}") from None
    if not speed > 0 or speed != speed or speed == float("inf"):
        raise ValueError(f"speed must be a positive number or 'max', got {text!r}")
    return speed


class _CaptureClock:
    """The capture's own timeline as a Clock (for the timers and technical events)."""

    def __init__(self) -> None:
        self._utc = datetime.fromtimestamp(0, UTC)
        self._mono = 0.0

    def set(self, utc: datetime, mono: float) -> None:
        self._utc, self._mono = utc, mono

    def now(self) -> datetime:
        return self._utc

    def monotonic(self) -> float:
        return self._mono


class ReplaySource:
    """Feed a driver from a capture file, chunk by chunk, exactly as it was received.

    ``ReplaySource(path, driver=None, on_output=q.put, speed=1.0)``; ``driver`` defaults to
    the capture's own (its first segment header). ``speed``: 1 = real time, 2 = twice as
    fast, None (``parse_speed("max")``) = no waiting. Outputs carry the captured
    ``receive_time``; ``no_data`` / ``high_error_rate`` are re-derived on the capture's
    timeline (``config``). ``on_raw`` sees the same ``(receive_time, monotonic_s, data)``
    triples a live link gave the writer (so replaying into a ``CaptureWriter`` reproduces
    the bytes and times). ``clock``: an optional ``ManualClock`` advanced to each chunk's
    elapsed time (from its value at the start) so the rest of the pipeline runs on
    simulated time. ``timer``/``sleeper`` pace it (default ``time.monotonic`` and an
    interruptible wait).

    ``live_clock``: read the capture "as if it were a port" (``--port file:PATH``): outputs
    are stamped with this clock's ``now()`` when they come out (still paced by ``speed``).
    A plain byte capture (no CSRAW1 magic) needs its ``driver`` (module docstring).

    ``run()`` replays in the calling thread and returns the final ``LinkStats``;
    ``start()`` does it in a thread; ``stop()`` interrupts either promptly; ``done`` is a
    ``threading.Event`` set at the end; ``error`` holds a ``CaptureError`` met in a thread.
    """

    def __init__(self, path: str | os.PathLike[str], driver: Driver | str | None = None, *,
                 on_output: OutputCallback, speed: float | None = 1.0, clock=None,
                 timer: Callable[[], float] = time.monotonic,
                 sleeper: Callable[[float], object] | None = None,
                 on_raw: RawCallback | None = None, config: TransportConfig | None = None,
                 live_clock=None) -> None:
        self.path = Path(path)
        self.live_clock = live_clock  # "as if it were a port": receive times from this clock, not the capture's
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None (max), got {speed!r}")
        self.format = capture_format(self.path)
        if self.format == "plain":
            if not self.path.is_file():
                raise CaptureError(self.path, 0, "no such file")
            if driver is None:
                raise CaptureError(self.path, 0, "not a CSRAW1 raw capture; to replay it as plain device bytes, "
                                                 "name its driver (--driver ge-s5|masimo|hl7)")
        elif driver is None:
            reader = CaptureReader(self.path)
            seg = next(iter(reader), None)
            name = seg.segment.driver if seg else (reader.segments[0].driver if reader.segments else "")
            if not name:
                raise CaptureError(self.path, len(MAGIC), "the capture names no driver; pass one")
            driver = name
        self.driver = get_driver(driver) if isinstance(driver, str) else driver
        self.speed = speed
        self.clock = clock
        self.timer = timer
        self._stop = threading.Event()
        self.sleeper = sleeper or self._stop.wait
        self.config = config or TransportConfig()
        self._on_output = on_output
        self._counters = _Counters()
        self._tclock = _CaptureClock()
        self._feeder = Feeder(self.driver, self._tclock, self.config, self._emit, on_raw, self._counters)
        self._on_raw = on_raw
        self._watch = Watch(self._tclock, self.config)
        self._state = "idle"
        self._thread: threading.Thread | None = None
        self.done = threading.Event()
        self.error: Exception | None = None

    def _emit(self, outputs: list[DriverOutput]) -> None:
        if outputs:
            self._on_output(outputs)

    @property
    def stats(self) -> LinkStats:
        c = self._counters
        st = self.driver.stats
        return LinkStats(port=str(self.path), driver=self.driver.name or type(self.driver).__name__,
                         state=self._state, bytes_in=c.bytes_in, chunks=c.chunks, readings=c.readings,
                         readings_per_min=self._feeder.readings_per_min(),
                         frames_decoded=st.frames_decoded, frames_rejected=st.frames_rejected,
                         bytes_skipped=st.bytes_skipped, last_error=c.last_error, errors=tuple(c.errors))

    def run(self) -> LinkStats:
        self._state = "replaying"
        try:
            if self.format == "plain":
                self._replay_plain()
            else:
                self._replay()
        finally:
            self._state = "stopped" if self._stop.is_set() else "finished"
            self.done.set()
        return self.stats

    def _replay(self) -> None:
        clock_base = self.clock.monotonic() if self.clock is not None else 0.0
        real0: float | None = None
        last: CaptureRecord | None = None
        for rec in CaptureReader(self.path):
            if self._stop.is_set():
                return
            if self.speed is not None:
                if real0 is None:
                    real0 = self.timer() - rec.elapsed_s / self.speed
                wait = real0 + rec.elapsed_s / self.speed - self.timer()
                if wait > 0:
                    self.sleeper(wait)
                    if self._stop.is_set():
                        return
            if last is None:
                self._tclock.set(rec.receive_time, rec.elapsed_s)
                self._watch.restart()
            else:
                quiet_end = last.elapsed_s + self.config.no_data_after_s
                if rec.elapsed_s >= quiet_end and not self._watch.no_data_active:
                    self._tclock.set(last.receive_time + timedelta(seconds=self.config.no_data_after_s),
                                     quiet_end)
                    self._emit(self._watch.tick()[0])
            self._tclock.set(rec.receive_time, rec.elapsed_s)
            if self.clock is not None and hasattr(self.clock, "set"):
                self.clock.set(max(self.clock.monotonic(), clock_base + rec.elapsed_s))
            self._emit(self._watch.data())
            when = self.live_clock.now() if self.live_clock is not None else rec.receive_time
            self._feeder.received(rec.data, receive_time=when, monotonic=rec.elapsed_s)
            self.driver.take_output()  # nobody to answer during a replay
            last = rec

    def _pace(self, elapsed_s: float, real0: float | None) -> tuple[bool, float | None]:
        """Wait until ``elapsed_s`` of the capture at the replay speed; (stopped, real0)."""
        if self.speed is None:
            return self._stop.is_set(), real0
        if real0 is None:
            real0 = self.timer() - elapsed_s / self.speed
        wait = real0 + elapsed_s / self.speed - self.timer()
        if wait > 0:
            self.sleeper(wait)
        return self._stop.is_set(), real0

    def _replay_plain(self) -> None:
        """A plain byte file through the driver, each frame at its device time (module docstring)."""
        clock_base = self.clock.monotonic() if self.clock is not None else 0.0
        drv = self.driver
        step = timedelta(seconds=NOMINAL_INTERVAL_S.get(drv.name, 1.0))
        try:
            start_guess = (_plain_start(self.path, drv, step)
                           or datetime.fromtimestamp(self.path.stat().st_mtime, UTC))
        except OSError as exc:
            raise CaptureError(self.path, 0, f"cannot read: {exc.strerror or exc}") from None
        first: datetime | None = None
        last: datetime | None = None
        real0: float | None = None
        c = self._counters
        size = 0
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CaptureError(self.path, 0, f"cannot read: {exc.strerror or exc}") from None
        with f:
            while True:
                if self._stop.is_set():
                    return
                chunk = f.read(PLAIN_CHUNK)
                outputs = drv.feed(chunk) if chunk else drv.flush()
                if chunk:
                    size += len(chunk)
                    c.bytes_in += len(chunk)
                    c.chunks += 1
                drv.take_output()  # nobody to answer during a replay
                for group in _by_frame(outputs):
                    dev = next((x.device_time for x in group if x.device_time is not None), None)
                    if dev is None:
                        t = last + step if last is not None else start_guess
                    else:
                        t = dev if last is None or dev >= last else last
                    if first is None:
                        first = t
                        self._tclock.set(t, 0.0)
                        self._watch.restart()
                    elapsed = (t - first).total_seconds()
                    stopped, real0 = self._pace(elapsed, real0)
                    if stopped:
                        return
                    if last is not None:
                        quiet_end = (last - first).total_seconds() + self.config.no_data_after_s
                        if elapsed >= quiet_end and not self._watch.no_data_active:
                            self._tclock.set(last + timedelta(seconds=self.config.no_data_after_s), quiet_end)
                            self._emit(self._watch.tick()[0])
                    self._tclock.set(t, elapsed)
                    if self.clock is not None and hasattr(self.clock, "set"):
                        self.clock.set(max(self.clock.monotonic(), clock_base + elapsed))
                    self._emit(self._watch.data())
                    when = self.live_clock.now() if self.live_clock is not None else t
                    stamped = [x if x.receive_time is not None else x.model_copy(update={"receive_time": when})
                               for x in group]
                    n = sum(1 for x in stamped if isinstance(x, Reading))
                    c.readings += n
                    self._emit(stamped)
                    last = t
                if chunk and self._on_raw is not None:  # the chunk, at the time of its last frame
                    t_raw = last or start_guess
                    self._on_raw(t_raw, (t_raw - (first or t_raw)).total_seconds(), chunk)
                if not chunk:
                    break
        st = drv.stats
        if first is None and st.frames_decoded == 0:
            raise CaptureError(self.path, 0, f"no {drv.name} frame in its {size} bytes (tried: CSRAW1 raw capture, "
                                             f"plain {drv.name} bytes)")

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("ReplaySource.start() called twice")

        def target() -> None:
            try:
                self.run()
            except Exception as exc:  # noqa: BLE001 - surfaced through .error
                self.error = exc
                self._counters.error(str(exc))
                self.done.set()

        self._thread = threading.Thread(target=target, name=f"chairside-replay {self.path.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the end of a started replay; True if it finished."""
        return self.done.wait(timeout)


def _by_frame(outputs: list[DriverOutput]) -> list[list[DriverOutput]]:
    """Outputs split into frames: consecutive outputs of one device time (one S/5 record, one
    Masimo line, the observations of one HL7 time). Without a time, a reading of a
    parameter the group already has starts the next frame (a line without its time stamp);
    a status without a time joins the group before it."""
    groups: list[list[DriverOutput]] = []
    key: object = object()
    seen: set[tuple[str, str]] = set()
    for x in outputs:
        t = x.device_time
        if groups and (t == key if t is not None else True):
            if not (t is None and isinstance(x, Reading) and (x.param, x.source) in seen):
                groups[-1].append(x)
                if isinstance(x, Reading):
                    seen.add((x.param, x.source))
                continue
        groups.append([x])
        key = t
        seen = {(x.param, x.source)} if isinstance(x, Reading) else set()
    return groups


def _plain_start(path: Path, driver: Driver, step: timedelta) -> datetime | None:
    """The time of a plain capture's first frame: the first device time in it, less one
    nominal step per frame before it that has none. None when no frame has a time."""
    try:
        fresh = type(driver)()
    except TypeError:
        return None
    before = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(PLAIN_CHUNK * 16)
            for group in _by_frame(fresh.feed(chunk) if chunk else fresh.flush()):
                dev = next((x.device_time for x in group if x.device_time is not None), None)
                if dev is not None:
                    return dev - step * before
                if any(isinstance(x, Reading) for x in group):
                    before += 1
            if not chunk:
                return None
