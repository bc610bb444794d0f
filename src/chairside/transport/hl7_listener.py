"""HL7 v2 over MLLP: a TCP listener for monitors (and gateways) that connect to us.

Owns: ``Hl7Listener`` — binds ``host:port`` (127.0.0.1 unless told otherwise; port 0 picks a
free port, see ``address``), accepts connections, gives each its own driver instance
(``hl7`` by default), feeds it, writes the driver's ``take_output()`` (the ACKs) back on
the same connection, and emits readings and technical events through the same output
API as ``serial_link.Link``.

Must not import: serial, textual, chairside.store, chairside.alarms, chairside.service.
Time from the injected clock.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

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

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2575  # the IANA port registered for HL7 over MLLP


class Hl7Listener:
    """Listen for MLLP connections; one driver per connection; ACKs written back.

    Usage::

        lst = Hl7Listener(clock=WallClock(), on_output=q.put, port=2575)
        lst.start()            # binds now (OSError, e.g. port in use, raises here), then
        host, port = lst.address   # accepts in a background thread
        ...
        lst.stop()             # closes the listening socket and every connection; joins

    Arguments:
        driver: a driver name (default ``"hl7"``) or a zero-argument factory returning a
            new ``Driver``: every connection gets a fresh instance, so a half message on
            one connection never mixes with another's.
        clock, on_output, on_raw, config: as for ``Link``. ``on_output`` calls are
            serialised (never two at once) although connections have their own threads.
            ``on_raw`` receives the chunks of all connections in arrival order.
        host, port: where to bind. Binding anything but a loopback address exposes the
            listener to the network; do it only when told to.
        max_connections: further connections are refused (closed at once) and counted.

    Technical ``DeviceStatus`` records (``flags=("transport",)``):
        ``link_up`` when a monitor connects and none was connected (``detail`` = peer);
        ``link_lost`` when the last one disconnects and no other connects within
        ``lost_grace_s`` (senders that open one connection per message do not flap);
        ``link_lost`` with ``active=False`` before the next ``link_up`` after that;
        ``no_data`` after ``no_data_after_s`` without a byte from any connection (also
        while nobody is connected), inactive when bytes arrive again;
        ``high_error_rate`` per connection, as for ``Link``.
    """

    def __init__(self, driver: str | Callable[[], Driver] = "hl7", *, clock: Clock,
                 on_output: OutputCallback, on_raw: RawCallback | None = None,
                 host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 config: TransportConfig | None = None, lost_grace_s: float = 1.0,
                 max_connections: int = 8) -> None:
        if isinstance(driver, str):
            name = driver
            get_driver(name)  # fail now on an unknown name

            def factory() -> Driver:
                return get_driver(name)

            self._factory: Callable[[], Driver] = factory
            self.driver_name = name
        else:
            self._factory = driver
            self.driver_name = getattr(driver(), "name", "") or "custom"
        self.clock = clock
        self.host = host
        self.port = port
        self.config = config or TransportConfig()
        self.lost_grace_s = lost_grace_s
        self.max_connections = max_connections
        self._on_output = on_output
        self._on_raw = on_raw
        self._counters = _Counters()
        self._lock = threading.RLock()  # counters, connection set, on_output serialisation
        self._watch = Watch(clock, self.config)
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._conns: dict[socket.socket, tuple[threading.Thread, Feeder]] = {}
        self._up = False
        self._lost_reported = False
        self._empty_since: float | None = None
        self._state = "idle"
        self._decoded = [0, 0, 0]  # totals of closed connections' drivers
        self._rate_feeders: list[Feeder] = []
        self.refused = 0

    # -- public API -------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); valid after ``start()``."""
        if self._sock is None:
            return (self.host, self.port)
        host, port = self._sock.getsockname()[:2]
        return host, port

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("Hl7Listener.start() called twice")
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(self.max_connections)
            sock.settimeout(self.config.read_timeout_s)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._state = "listening"
        self._watch.restart()
        self._thread = threading.Thread(target=self._accept_loop, name=f"chairside-hl7 {self.address}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            conns = list(self._conns.items())
        for conn, _ in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, (thread, _) in conns:
            if thread.ident is not None and thread is not threading.current_thread():
                thread.join(timeout)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._state = "stopped"

    @property
    def peers(self) -> int:
        with self._lock:
            return len(self._conns)

    @property
    def stats(self) -> LinkStats:
        with self._lock:
            c = self._counters
            feeders = [f for _, f in self._conns.values()]
            dec, rej, skip = self._decoded
            for f in feeders:
                dec += f.driver.stats.frames_decoded
                rej += f.driver.stats.frames_rejected
                skip += f.driver.stats.bytes_skipped
            rpm = sum(f.readings_per_min() for f in self._rate_feeders)
            host, port = self.address
            state = self._state if not self._conns or self._state == "stopped" else "up"
            return LinkStats(
                port=f"tcp://{host}:{port}", driver=self.driver_name, state=state,
                bytes_in=c.bytes_in, bytes_out=c.bytes_out, chunks=c.chunks, readings=c.readings,
                readings_per_min=rpm, frames_decoded=dec, frames_rejected=rej, bytes_skipped=skip,
                connects=c.connects, disconnects=c.disconnects, write_errors=c.write_errors,
                last_error=c.last_error, errors=tuple(c.errors), peers=len(self._conns))

    def __enter__(self) -> Hl7Listener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------
    def _emit(self, outputs: list[DriverOutput]) -> None:
        if not outputs:
            return
        with self._lock:
            try:
                self._on_output(outputs)
            except Exception as exc:  # noqa: BLE001 - a consumer bug must not kill the listener
                log.exception("hl7 listener: on_output failed")
                self._counters.error(f"on_output: {exc!r}")

    def _raw(self, receive_time, monotonic, data) -> None:
        if self._on_raw is not None:
            with self._lock:
                self._on_raw(receive_time, monotonic, data)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                conn = None
            except OSError as exc:
                if not self._stop.is_set():
                    self._counters.error(f"accept: {exc}")
                    self._stop.wait(self.config.read_timeout_s)
                conn = None
            if conn is not None:
                self._accepted(conn, peer)
            self._tick()

    def _tick(self) -> None:
        with self._lock:
            events, _ = self._watch.tick()
            if (self._up and not self._conns and self._empty_since is not None
                    and self.clock.monotonic() - self._empty_since >= self.lost_grace_s):
                self._up = False
                self._lost_reported = True
                events.append(technical("link_lost", self.clock, detail="the monitor disconnected"))
            self._emit(events)

    def _accepted(self, conn: socket.socket, peer) -> None:
        with self._lock:
            if len(self._conns) >= self.max_connections:
                self.refused += 1
                self._counters.error(f"refused {peer}: {self.max_connections} connections already")
                conn.close()
                return
            conn.settimeout(self.config.read_timeout_s)
            feeder = Feeder(self._factory(), self.clock, self.config, self._emit, self._raw_or_none(),
                            self._counters)
            thread = threading.Thread(target=self._serve, args=(conn, peer, feeder),
                                      name=f"chairside-hl7 {peer}", daemon=True)
            self._conns[conn] = (thread, feeder)
            self._rate_feeders.append(feeder)
            if len(self._rate_feeders) > 32:
                self._rate_feeders = self._rate_feeders[-32:]
            self._counters.connects += 1
            self._empty_since = None
            events = []
            if not self._up:
                if self._lost_reported:
                    events.append(technical("link_lost", self.clock, active=False, detail="monitor reconnected"))
                    self._lost_reported = False
                events.append(technical("link_up", self.clock, detail=f"{peer[0]}:{peer[1]}"))
                self._up = True
            self._emit(events)
            thread.start()  # under the lock: stop() never sees a registered, unstarted thread

    def _raw_or_none(self) -> RawCallback | None:
        return self._raw if self._on_raw is not None else None

    def _serve(self, conn: socket.socket, peer, feeder: Feeder) -> None:
        try:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                with self._lock:  # one connection decodes at a time: shared counters, ordered output
                    self._emit(self._watch.data())
                    reply = feeder.received(data)
                if reply:
                    conn.sendall(reply)
                    with self._lock:
                        self._counters.bytes_out += len(reply)
        except OSError as exc:
            if not self._stop.is_set():
                with self._lock:
                    self._counters.error(f"{peer[0]}:{peer[1]}: {exc}")
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self._lock:
                self._conns.pop(conn, None)
                st = feeder.driver.stats
                self._decoded[0] += st.frames_decoded
                self._decoded[1] += st.frames_rejected
                self._decoded[2] += st.bytes_skipped
                self._counters.disconnects += 1
                if not self._conns:
                    self._empty_since = self.clock.monotonic()
                self._emit(feeder.close())
