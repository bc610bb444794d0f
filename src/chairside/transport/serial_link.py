"""The serial link: open a port by URL, read it in a thread, feed a driver, reconnect.

Owns: ``Link`` (the read loop around one port and one driver), ``serial_settings``
(a driver's serial defaults with user overrides), ``open_port`` (the single place a port
is opened: ``serial.serial_for_url(url, do_not_open=True, ...)`` then ``open()``). Our own
URL handlers (``chairside.transport.urlhandler``: ``socket://`` keeping its first bytes)
are registered with pyserial when this module is imported.

Must not import: textual, chairside.store, chairside.alarms, chairside.service.
Time comes from the injected clock (``chairside.domain.clock``); the only real waiting is
the blocking read (bounded by ``read_timeout_s``) and the reconnect backoff.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping
from typing import Any

import serial

from chairside.domain.clock import Clock
from chairside.domain.readings import DriverOutput
from chairside.drivers.base import Driver, get_driver
from chairside.transport.datapath import (
    Feeder,
    LinkStats,
    OutputCallback,
    RawCallback,
    TransportConfig,
    Watch,
    _Counters,
    technical,
)
from chairside.transport.urlhandler import register as _register_url_handlers
from chairside.transport.urlhandler.protocol_socket import Serial as _SocketSerial

log = logging.getLogger(__name__)
_register_url_handlers()  # before any port opens: our socket:// replaces pyserial's

SERIAL_KEYS = ("baudrate", "bytesize", "parity", "stopbits", "rtscts", "xonxoff")
_PARITIES = {"N", "E", "O", "M", "S"}
_BYTESIZES = {5, 6, 7, 8}
_STOPBITS = {1, 1.5, 2}
MAX_CHUNK = 64 * 1024


def serial_settings(driver: Driver, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The driver's ``serial_defaults`` with ``overrides`` applied, validated.

    Keys: baudrate, bytesize, parity (N/E/O/M/S), stopbits (1, 1.5, 2), rtscts, xonxoff.
    ``None`` values in ``overrides`` mean "keep the default". Raises ValueError naming the
    bad key and value.
    """
    d = driver.serial_defaults
    out: dict[str, Any] = {k: getattr(d, k) for k in SERIAL_KEYS}
    for key, value in (overrides or {}).items():
        if key not in SERIAL_KEYS:
            raise ValueError(f"unknown serial setting {key!r}; use one of: {', '.join(SERIAL_KEYS)}")
        if value is not None:
            out[key] = value
    try:
        out["baudrate"] = int(out["baudrate"])
        out["bytesize"] = int(out["bytesize"])
        out["stopbits"] = float(out["stopbits"])
    except (TypeError, ValueError):
        raise ValueError(f"serial settings must be numbers: baudrate={out['baudrate']!r}, "
                         f"bytesize={out['bytesize']!r}, stopbits={out['stopbits']!r}") from None
    out["parity"] = str(out["parity"]).upper()[:1]
    if out["baudrate"] <= 0:
        raise ValueError(f"serial setting baudrate must be > 0, got {out['baudrate']}")
    if out["bytesize"] not in _BYTESIZES:
        raise ValueError(f"serial setting bytesize must be one of 5, 6, 7, 8, got {out['bytesize']}")
    if out["parity"] not in _PARITIES:
        raise ValueError(f"serial setting parity must be one of N, E, O, M, S, got {out['parity']!r}")
    if out["stopbits"] not in _STOPBITS:
        raise ValueError(f"serial setting stopbits must be 1, 1.5 or 2, got {out['stopbits']}")
    if out["stopbits"] == int(out["stopbits"]):
        out["stopbits"] = int(out["stopbits"])
    out["rtscts"] = bool(out["rtscts"])
    out["xonxoff"] = bool(out["xonxoff"])
    return out


def open_port(url: str, settings: Mapping[str, Any], *, timeout: float, write_timeout: float):
    """Open ``url`` (device path, socket://, loop://, rfc2217://, spy://, sim://...).

    The only way this package opens a port. Raises ``serial.SerialException`` / OSError /
    ValueError when the port cannot be opened.
    """
    port = serial.serial_for_url(url, do_not_open=True, timeout=timeout,
                                 write_timeout=write_timeout, **settings)
    port.open()  # socket://: chairside.transport.urlhandler.protocol_socket keeps the first bytes
    return port


def check_url(url: str) -> None:
    """Raise ValueError if ``url`` can never be opened (unknown scheme, malformed URL).

    Does not open anything: a device path that does not exist (yet) passes, since the
    link waits for it. Custom schemes are checked by their handler's ``from_url``.
    """
    if not url or not isinstance(url, str):
        raise ValueError("no port given")
    try:
        port = serial.serial_for_url(url, do_not_open=True)
    except (ValueError, serial.SerialException) as exc:
        raise ValueError(f"bad port {url!r}: {exc}") from None
    from_url = getattr(port, "from_url", None)
    if from_url is not None:
        try:
            from_url(url)
        except Exception as exc:  # noqa: BLE001 - pyserial's parsers raise TypeError/KeyError too
            scheme = url.split("://", 1)[0].lower()
            hint = {"socket": "socket://HOST:PORT", "rfc2217": "rfc2217://HOST:PORT"}.get(scheme)
            why = f"expected {hint}" if hint else (str(exc) or type(exc).__name__)
            raise ValueError(f"bad port {url!r}: {why}") from None


STALL_INTERVALS = 2.5  # a requested stream is stalled after this many of its intervals without a byte


class Link:
    """One monitor port, read in a background thread, decoded by one driver.

    Usage::

        q: queue.Queue[list[Reading | DeviceStatus]] = queue.Queue()
        link = Link("socket://127.0.0.1:4001", "ge-s5", clock=WallClock(), on_output=q.put,
                    on_raw=capture.write,                 # optional raw tee (CaptureWriter)
                    serial={"baudrate": 9600},            # optional overrides of the driver's
                    config=TransportConfig(no_data_after_s=10))  # serial defaults / timings
        link.start()           # returns at once; the thread opens the port and retries
        ...                    # batches arrive on q (from the link's thread)
        link.stats             # LinkStats snapshot: port, driver, state, bytes, readings/min...
        link.send(b"...")      # optional: queue bytes to write to the device
        link.stop()            # prompt (<= read_timeout_s + a write; pyserial's socket://
                               # close adds 0.3 s), idempotent, joins the thread

    The constructor raises ValueError for a URL that can never open (``check_url``), an
    unknown driver name or a bad serial setting; everything that can get better later (a
    missing device, a refused connection) is retried by the thread instead.

    Arguments:
        url: anything ``serial.serial_for_url`` accepts, including custom schemes registered
            in ``serial.protocol_handler_packages`` (the simulator's ``sim://``).
        driver: a ``Driver`` instance or a driver name (``"ge-s5"``, ``"masimo"``, ``"hl7"``).
            The link owns it from ``start()`` on (feeds it from its thread, calls ``reset()``
            after a reconnect).
        clock: the injected clock. ``now()`` stamps every received chunk (``receive_time`` of
            the readings made from it); ``monotonic()`` drives the no-data / stall timers
            and the error-rate window, so a ``ManualClock`` makes them deterministic.
        on_output: called from the link's thread with a non-empty ``list`` of ``Reading`` /
            ``DeviceStatus``, one batch per received chunk or technical event, in order.
            Must be quick and thread-safe (``queue.Queue.put``, ``loop.call_soon_threadsafe``,
            Textual ``post_message``). An exception in it is logged and counted, not fatal.
        on_raw: called with ``(receive_time, monotonic_s, data)`` for every chunk before it
            is decoded (``CaptureWriter.write`` fits).
        serial: overrides of the driver's ``serial_defaults`` (see ``serial_settings``).
        config: ``TransportConfig`` (timeouts, thresholds, backoff).

    Technical ``DeviceStatus`` records (``flags=("transport",)``, ``receive_time`` set):
        ``link_up`` each time the port opens (``detail`` = url); before it, after an
        outage, ``link_lost`` with ``active=False``.
        ``link_lost`` (active) when the port fails or the far side closes (socket EOF,
        pty hang-up), and once when the first open fails; not repeated while retrying.
        ``no_data`` (active) after ``no_data_after_s`` without a byte while up; inactive
        when bytes flow again or the link is lost.
        ``high_error_rate`` (active/inactive) from the driver's rejected-frame and
        skipped-byte counters over ``error_window_s``.

    Writes: ``driver.on_connect()`` after each open; ``driver.on_stream_stalled()`` every
    ``stall_after_s`` without data; ``driver.take_output()`` after each chunk (HL7 ACKs);
    bytes given to ``send()``. Reconnect: backoff doubling from ``min_backoff_s`` to
    ``max_backoff_s`` (1 s by default), reset once data flows.

    pyserial empties the input buffer while it opens a serial device (bytes already in the
    tty's buffer before ``link_up`` are dropped; monitors that stream unprompted resend
    within a second, and GE waits for the request anyway). On socket:// nothing is dropped:
    bytes a server sends the moment it accepts are read and decoded (``open_port``).
    """

    def __init__(self, url: str, driver: Driver | str, *, clock: Clock, on_output: OutputCallback,
                 on_raw: RawCallback | None = None, serial: Mapping[str, Any] | None = None,
                 config: TransportConfig | None = None) -> None:
        check_url(url)
        self.url = url
        self.driver = get_driver(driver) if isinstance(driver, str) else driver
        self.clock = clock
        self.config = config or TransportConfig()
        # a device that streams at an interval it was asked for (GE: displayed values every
        # 5 s) is stalled, or silent, only after missing more than two records, not between two
        interval = getattr(self.driver, "interval_s", None)
        if isinstance(interval, (int, float)) and interval > 0:
            least = STALL_INTERVALS * float(interval)
            self.config = dataclasses.replace(self.config, stall_after_s=max(self.config.stall_after_s, least),
                                              no_data_after_s=max(self.config.no_data_after_s, least))
        self.settings = serial_settings(self.driver, serial)
        self._on_output = on_output
        self._counters = _Counters()
        self._lock = threading.Lock()
        self._feeder = Feeder(self.driver, clock, self.config, self._emit, on_raw, self._counters)
        self._watch = Watch(clock, self.config)
        self._state = "idle"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port = None
        self._outbox: list[bytes] = []
        self._lost_reported = False
        self._ever_up = False

    # -- public API -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader thread (once). Returns immediately."""
        if self._thread is not None:
            raise RuntimeError("Link.start() called twice")
        self._set_state("connecting")
        self._thread = threading.Thread(target=self._run, name=f"chairside-link {self.url}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading, close the port, join the thread. Idempotent; never raises."""
        self._stop.set()
        port = self._port
        if port is not None:
            try:
                port.cancel_read()
            except Exception:  # noqa: BLE001 - not every port class supports it
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("link %s: reader thread did not stop within %.1f s", self.url, timeout)
        self._set_state("stopped")

    def send(self, data: bytes) -> None:
        """Queue bytes to write to the device (written by the link's thread when up)."""
        if data:
            with self._lock:
                self._outbox.append(bytes(data))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stats(self) -> LinkStats:
        with self._lock:
            c = self._counters
            st = self.driver.stats
            return LinkStats(
                port=self.url, driver=self.driver.name or type(self.driver).__name__, state=self._state,
                bytes_in=c.bytes_in, bytes_out=c.bytes_out, chunks=c.chunks, readings=c.readings,
                readings_per_min=self._feeder.readings_per_min(),
                frames_decoded=st.frames_decoded, frames_rejected=st.frames_rejected,
                bytes_skipped=st.bytes_skipped, connects=c.connects, disconnects=c.disconnects,
                write_errors=c.write_errors, last_error=c.last_error, errors=tuple(c.errors),
                peers=1 if self._state == "up" else 0,
            )

    def __enter__(self) -> Link:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        with self._lock:
            self._state = state

    def _emit(self, outputs: list[DriverOutput]) -> None:
        if not outputs:
            return
        try:
            self._on_output(outputs)
        except Exception as exc:  # noqa: BLE001 - a consumer bug must not kill the link
            log.exception("link %s: on_output failed", self.url)
            with self._lock:
                self._counters.error(f"on_output: {exc!r}")

    def _error(self, text: str) -> None:
        with self._lock:
            self._counters.error(text)

    def _write(self, port, data: bytes) -> None:
        if not data:
            return
        try:
            n = port.write(data)  # no flush(): tcdrain can block on a pty nobody reads
        except serial.SerialTimeoutException:
            with self._lock:
                self._counters.write_errors += 1
            self._error(f"write of {len(data)} bytes timed out")
            return
        with self._lock:
            self._counters.bytes_out += len(data) if n is None else n

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _run(self) -> None:
        backoff = self.config.min_backoff_s
        while not self._stop.is_set():
            try:
                port = open_port(self.url, self.settings, timeout=self.config.read_timeout_s,
                                 write_timeout=self.config.write_timeout_s)
            except Exception as exc:  # noqa: BLE001 - any failure to open is "port not there"
                self._error(f"open {self.url}: {exc}")
                if not self._lost_reported:
                    self._lost_reported = True
                    self._set_state("down")
                    self._emit([technical("link_lost", self.clock, detail=f"cannot open {self.url}: {exc}")])
                self._wait(backoff)
                backoff = min(backoff * 2, self.config.max_backoff_s)
                continue
            self._port = port
            if self._stop.is_set():
                break
            flowed = self._session(port)
            self._port = None
            try:
                port.close()
            except Exception:  # noqa: BLE001
                pass
            if flowed:
                backoff = self.config.min_backoff_s
            if not self._stop.is_set():
                self._wait(backoff)
                backoff = min(backoff * 2, self.config.max_backoff_s)
        if self._port is not None:
            try:
                self._port.close()
            except Exception:  # noqa: BLE001
                pass
            self._port = None

    def _read_chunk(self, port) -> bytes:
        """Block up to read_timeout_s for a byte, then take everything already waiting."""
        data = port.read(1)
        if not data:
            return data
        if isinstance(port, _SocketSerial):
            # socket:// reports in_waiting as 0/1 only: read what the socket holds in one
            # recv with a zero timeout (a no-op reconfiguration for this class).
            port.timeout = 0
            try:
                return data + port.read(MAX_CHUNK - 1)
            finally:
                port.timeout = self.config.read_timeout_s
        waiting = port.in_waiting
        while waiting and len(data) < MAX_CHUNK:
            more = port.read(min(waiting, MAX_CHUNK - len(data)))
            if not more:
                break
            data += more
            waiting = port.in_waiting
        return data

    def _session(self, port) -> bool:
        """Run one connection until it fails or stop(); True if any data arrived."""
        flowed = False
        with self._lock:
            self._counters.connects += 1
            self._state = "up"
        events = []
        if self._lost_reported:
            events.append(technical("link_lost", self.clock, active=False, detail="link restored"))
        self._lost_reported = False
        events.append(technical("link_up", self.clock, detail=self.url))
        self._emit(events)
        self._watch.restart()
        try:
            self._write(port, self.driver.on_connect())
            while not self._stop.is_set():
                data = self._read_chunk(port)
                if data:
                    flowed = True
                    self._emit(self._watch.data())
                    reply = self._feeder.received(data)
                    self._write(port, reply)
                events, stalled = self._watch.tick()
                self._emit(events)
                if stalled:
                    self._write(port, self.driver.on_stream_stalled())
                if self._outbox:
                    with self._lock:
                        out, self._outbox = self._outbox, []
                    for chunk in out:
                        self._write(port, chunk)
        except Exception as exc:  # noqa: BLE001 - SerialException, OSError, EOF...
            if self._stop.is_set():
                return flowed
            self._error(f"{self.url}: {exc}")
            ended = self._watch.end() + self._feeder.close()
            with self._lock:
                self._counters.disconnects += 1
                self._state = "down"
            self._lost_reported = True
            self._emit([*ended, technical("link_lost", self.clock, detail=f"{self.url}: {exc}")])
            try:
                self.driver.reset()
            except Exception:  # noqa: BLE001
                log.exception("driver reset failed")
        return flowed
