"""pyserial URL handler ``sim://``: open the simulator exactly like a real serial port.

Owns: ``Serial`` (a ``serial.SerialBase``) for
``sim://<scenario>?driver=ge-s5&seed=1&speed=1`` (also ``sim:///path/to/file.toml?...``).
``read`` returns the emulator's bytes paced by wall time x speed (``speed=max``: as fast
as read); ``write`` hands host bytes to the emulator (GE request records). The GE
emulator waits for the host's request like the real monitor unless ``autostart=1``.
Other options: ``duration`` (s; after it the port stays silent), ``noise=0``,
``start`` (ISO 8601 device clock at sim time 0; default: the wall clock at open).
The ``simulation`` attribute gives the ``Simulation`` for instructor controls; call it
under ``lock`` (the reader thread steps it).

Registered by ``simulators.register()``. Wall time is read here (this is an I/O shell,
not the core); the clock is an attribute so tests can replace it.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from datetime import UTC, datetime

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from chairside.domain.clock import WallClock
from simulators.emulators import EMULATORS

log = logging.getLogger("simulators.protocol_sim")
_USAGE = 'expected "sim://<scenario>?driver={ge-s5|masimo|hl7}[&seed=N][&speed=X|max][&duration=S][&autostart=1]"'


class Serial(SerialBase):
    """The simulated monitor behind a pyserial port."""

    BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)

    def __init__(self, *args, **kwargs) -> None:
        self.simulation = None
        self.lock = threading.RLock()
        self.clock = time.monotonic
        self._buffer = bytearray()
        self._last_wall: float | None = None
        self._options: dict[str, str] = {}
        self._cancel = False
        super().__init__(*args, **kwargs)

    # --- URL --------------------------------------------------------------------------
    def from_url(self, url: str) -> dict:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "sim":
            raise SerialException(f"{_USAGE}: not starting with sim:// ({url!r})")
        scenario = parts.netloc or parts.path
        if parts.netloc and parts.path not in ("", "/"):
            scenario = parts.netloc + parts.path
        if not scenario:
            raise SerialException(f"{_USAGE}: no scenario in {url!r}")
        opts = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
        known = {"driver", "seed", "speed", "duration", "autostart", "noise", "start"}
        unknown = sorted(set(opts) - known)
        if unknown:
            raise SerialException(f"{_USAGE}: unknown option {unknown[0]!r}")
        driver = opts.get("driver", "ge-s5")
        if driver not in EMULATORS:
            raise SerialException(f"sim://: unknown driver {driver!r}; choose one of: {', '.join(EMULATORS)}")
        try:
            seed = int(opts.get("seed", "1"))
            speed = opts.get("speed", "1")
            speed_f = float("inf") if speed == "max" else float(speed)
            duration = float(opts["duration"]) if "duration" in opts else None
            start = datetime.fromisoformat(opts["start"]) if "start" in opts else None
        except ValueError as exc:
            raise SerialException(f"sim://: bad option value: {exc}") from None
        if not speed_f > 0:
            raise SerialException("sim://: speed must be > 0 or 'max'")
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return {"scenario": scenario, "driver": driver, "seed": seed, "speed": speed_f, "duration": duration,
                "autostart": opts.get("autostart", "0") in ("1", "true", "yes"),
                "noise": opts.get("noise", "1") not in ("0", "false", "no"), "start": start}

    # --- SerialBase -------------------------------------------------------------------
    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        opts = self.from_url(self.port)
        from simulators.engine import Simulation
        from simulators.scenario import ScenarioError

        try:
            sim = Simulation(opts["scenario"], opts["seed"], opts["driver"], start=opts["start"] or WallClock().now(),
                             speed=1.0 if opts["speed"] == float("inf") else opts["speed"], noise=opts["noise"],
                             auto_request=opts["autostart"])
        except ScenarioError as exc:
            raise SerialException(f"sim://: {exc}") from None
        self.simulation = sim
        self._options = opts
        log.info("opened %s (seed %d)", self.port, sim.seed)
        self._buffer.clear()
        self._last_wall = self.clock()  # the simulated clock runs from the moment the port opens
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
        self._cancel = True
        super().close()

    def _reconfigure_port(self) -> None:
        """Serial settings are accepted and ignored (the simulator has no line)."""

    def _pump(self) -> None:
        """Advance the simulation to the present (wall time x speed)."""
        sim = self.simulation
        opts = self._options
        with self.lock:
            now = self.clock()
            if self._last_wall is None:
                self._last_wall = now
            duration = opts.get("duration")
            if opts.get("speed") == float("inf"):
                return
            dt = now - self._last_wall
            self._last_wall = now
            if duration is not None:
                left = max(0.0, duration - sim.t)
                dt = min(dt, left / sim.speed) if sim.speed > 0 else dt
            if dt > 0:
                self._buffer += sim.tick_wall(dt)

    def _pump_max(self, want: int) -> None:
        """``speed=max``: step until ``want`` bytes are ready, the run ends, or the device
        has been silent for a minute of simulated time (a GE monitor not yet asked)."""
        sim = self.simulation
        duration = self._options.get("duration")
        with self.lock:
            silent = 0
            while len(self._buffer) < want and silent < 60 and not sim.paused:
                if duration is not None and sim.t >= duration:
                    break
                data = sim.advance(1.0)
                self._buffer += data
                silent = 0 if data else silent + 1

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        self._pump()
        return len(self._buffer)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        self._cancel = False
        deadline = None if self._timeout is None else self.clock() + self._timeout
        while True:
            if self._options.get("speed") == float("inf"):
                self._pump_max(size)
            else:
                self._pump()
            if self._buffer:
                with self.lock:
                    out = bytes(self._buffer[:size])
                    del self._buffer[:size]
                if len(out) >= size or self._timeout == 0 or self._options.get("speed") == float("inf"):
                    return out
                # partial: keep collecting until the timeout
                rest = b""
                while len(out) + len(rest) < size and (deadline is None or self.clock() < deadline) \
                        and self.is_open and not self._cancel:
                    time.sleep(self._wait_s(deadline))
                    self._pump()
                    with self.lock:
                        take = size - len(out) - len(rest)
                        rest += bytes(self._buffer[:take])
                        del self._buffer[:take]
                return out + rest
            if self._timeout == 0 or not self.is_open or self._cancel:
                return b""
            if deadline is not None and self.clock() >= deadline:
                return b""
            if self._options.get("speed") == float("inf"):
                return b""  # the run is over (or paused): nothing more to send
            time.sleep(self._wait_s(deadline))

    def _wait_s(self, deadline: float | None) -> float:
        sim = self.simulation
        step = 1.0 / max(sim.speed, 1e-6) if sim is not None else 0.05
        wait = min(step, 0.05) if step < 0.05 else min(step / 4, 0.25)
        if deadline is not None:
            wait = max(0.0, min(wait, deadline - self.clock()))
        return wait

    def cancel_read(self) -> None:
        self._cancel = True

    def write(self, data) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        data = bytes(data)
        with self.lock:
            if self._options.get("speed") != float("inf"):
                self._pump()  # bring the clock up to date before the host's bytes arrive
            self.simulation.write(data)
        return len(data)

    def reset_input_buffer(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
        self._pump()
        with self.lock:
            self._buffer.clear()

    def reset_output_buffer(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()

    @property
    def out_waiting(self) -> int:
        return 0

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return self.simulation is not None and not (self.simulation.display and self.simulation.display.disconnected)
