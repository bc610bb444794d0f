"""HL7 v2 over MLLP: a TCP listener for monitors (and gateways) that connect to us.

Owns: ``Hl7Listener`` — binds ``host:port`` (127.0.0.1 unless told otherwise; port 0 picks a
free port, see ``address``), accepts connections, gives each its own driver instance
(``hl7`` by default), feeds it, writes the driver's ``take_output()`` (the ACKs) back on
the same connection, and emits readings and technical events through the same output
API as ``serial_link.Link``.

Must not import: serial, textual, chairside.store, chairside.alarms, chairside.service.
Time from the injected clock.

Holding under abuse (settings in ``TransportConfig.listen_*``):

* A connection that has delivered no complete message for ``listen_idle_timeout_s`` is
  closed, and so is one whose started message (an open MLLP block, buffered bytes) is not
  complete ``listen_message_timeout_s`` after its first byte: a sender trickling bytes
  (slowloris) cannot hold a slot.
* At most ``listen_max_connections`` at once. A new connection when all slots are taken:
  from a sender (an address in ``listen_senders``; every peer when that list is empty) it
  evicts, in this order, a connection from an address that is not a sender, a connection
  that never delivered a complete message, or the one whose last message is oldest and
  older than ``listen_message_timeout_s``; oldest first. A monitor that delivers messages
  keeps its slot; idlers never lock it out. When no connection can go (or the peer is not
  a sender) the new one is refused. Every refusal, eviction and timeout is logged
  (warning) and counted (``refused``, ``evicted``, ``timed_out``; ``LinkStats.errors``).
* Each connection's driver gets ``max_message_bytes = listen_max_message_bytes``: a bigger
  message is answered ``AR`` and dropped without being buffered (the driver skips to the
  block's end).
* ``exposure_warning(host)`` names what binding a non-loopback address exposes.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

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


def exposure_warning(host: str, port: int | str = DEFAULT_PORT) -> str | None:
    """A one-line warning when ``host`` is not a loopback address (None for loopback)."""
    name = host.strip("[]") or "0.0.0.0"
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        if name.lower() == "localhost":
            return None
        return (f"warning: the HL7 listener binds {name}:{port}: any host that can reach this machine's "
                f"address {name!r} can connect and send observations; bind 127.0.0.1 unless the monitor "
                "is on another machine, and set hl7_senders")
    if addr.is_loopback:
        return None
    where = "every network interface of this machine" if addr.is_unspecified else f"the interface {name}"
    return (f"warning: the HL7 listener binds {name}:{port} on {where}: any host on those networks can "
            "connect and send observations into the session; bind 127.0.0.1 unless the monitor is on "
            "another machine, and set hl7_senders to its address")


def check_bind(host: str, port: int) -> None:
    """Raise ValueError with one line when ``host:port`` cannot be bound now (in use, no such
    address, not permitted). Binds and closes at once; opens nothing that stays."""
    if port == 0:
        return
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise ValueError(f"listen://{host}:{port}: cannot listen there: {exc.strerror or exc}") from None


@dataclass
class _Conn:
    """What the listener knows about one connection (guarded by the listener's lock)."""

    sock: socket.socket
    peer: tuple
    thread: threading.Thread
    feeder: Feeder
    sender: bool
    opened: float  # clock.monotonic() at accept
    last_message: float | None = None  # when its last complete message (or reply) came
    block_since: float | None = None  # first byte of the message now arriving
    closing: str = ""  # why the listener is closing it


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
        max_connections: overrides ``config.listen_max_connections`` (see the module
            docstring for who is evicted and who is refused when all are taken).

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
                 max_connections: int | None = None) -> None:
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
        self.max_connections = max_connections if max_connections is not None else self.config.listen_max_connections
        self.senders = frozenset(self.config.listen_senders)
        self._on_output = on_output
        self._on_raw = on_raw
        self._counters = _Counters()
        self._lock = threading.RLock()  # counters, connection set, on_output serialisation
        self._watch = Watch(clock, self.config)
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._bound: tuple[str, int] | None = None  # (host, port) once bound
        self._thread: threading.Thread | None = None
        self._conns: dict[socket.socket, _Conn] = {}
        self._up = False
        self._lost_reported = False
        self._empty_since: float | None = None
        self._state = "idle"
        self._decoded = [0, 0, 0]  # totals of closed connections' drivers
        self._rate_feeders: list[Feeder] = []
        self.refused = 0  # new connections refused (all slots in use by senders, or not a sender)
        self.evicted = 0  # idle connections closed to make room for a sender
        self.timed_out = 0  # connections closed as idle or too slow

    # -- public API -------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); valid after ``start()`` and still after ``stop()``."""
        return self._bound or (self.host, self.port)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("Hl7Listener.start() called twice")
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(max(self.max_connections, 16))
            sock.settimeout(self.config.read_timeout_s)
        except OSError:
            sock.close()
            raise
        warning = exposure_warning(self.host, self.port)
        if warning:
            log.warning("%s", warning)
        self._sock = sock
        self._bound = tuple(sock.getsockname()[:2])
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
        for _, c in conns:
            if c.thread.ident is not None and c.thread is not threading.current_thread():
                c.thread.join(timeout)
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
            feeders = [c.feeder for c in self._conns.values()]
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
            self._expire()

    def _tick(self) -> None:
        with self._lock:
            events, _ = self._watch.tick()
            if (self._up and not self._conns and self._empty_since is not None
                    and self.clock.monotonic() - self._empty_since >= self.lost_grace_s):
                self._up = False
                self._lost_reported = True
                events.append(technical("link_lost", self.clock, detail="the monitor disconnected"))
            self._emit(events)

    def _is_sender(self, peer) -> bool:
        return not self.senders or peer[0] in self.senders

    def _victim(self, sender: bool) -> _Conn | None:
        """The connection a new one from a sender may replace (module docstring), or None."""
        if not sender:
            return None
        now = self.clock.monotonic()
        conns = [c for c in self._conns.values() if not c.closing]
        strangers = [c for c in conns if not c.sender]
        if strangers:
            return min(strangers, key=lambda c: c.opened)
        silent = [c for c in conns if c.last_message is None]
        if silent:
            return min(silent, key=lambda c: c.opened)
        stale = [c for c in conns if c.last_message is not None
                 and now - c.last_message >= self.config.listen_message_timeout_s]
        return min(stale, key=lambda c: c.last_message or 0.0) if stale else None

    def _close(self, c: _Conn, why: str, counter: str) -> None:
        """Close a connection from outside its thread (its thread ends and cleans up)."""
        c.closing = why
        setattr(self, counter, getattr(self, counter) + 1)
        peer = f"{c.peer[0]}:{c.peer[1]}"
        log.warning("hl7 listener: closing %s: %s", peer, why)
        self._counters.error(f"closed {peer}: {why}")
        try:
            c.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _expire(self) -> None:
        """Close idle and slow connections (called from the accept loop, every read timeout)."""
        now = self.clock.monotonic()
        cfg = self.config
        with self._lock:
            for c in list(self._conns.values()):
                if c.closing:
                    continue
                if c.block_since is not None and now - c.block_since >= cfg.listen_message_timeout_s:
                    self._close(c, f"a message still incomplete after {cfg.listen_message_timeout_s:g} s",
                                "timed_out")
                elif now - (c.last_message if c.last_message is not None else c.opened) >= cfg.listen_idle_timeout_s:
                    self._close(c, f"no complete message for {cfg.listen_idle_timeout_s:g} s", "timed_out")

    def _accepted(self, conn: socket.socket, peer) -> None:
        with self._lock:
            sender = self._is_sender(peer)
            live = sum(1 for c in self._conns.values() if not c.closing)
            if live >= self.max_connections:
                victim = self._victim(sender)
                if victim is None:
                    self.refused += 1
                    why = ("not a configured sender" if not sender
                           else "every connection is delivering messages")
                    msg = f"refused {peer[0]}:{peer[1]}: {self.max_connections} connections in use, {why}"
                    log.warning("hl7 listener: %s (refusal %d)", msg, self.refused)
                    self._counters.error(msg)
                    conn.close()
                    return
                self._close(victim, f"evicted (idle) for a new connection from {peer[0]}:{peer[1]}", "evicted")
            conn.settimeout(self.config.read_timeout_s)
            driver = self._factory()
            if hasattr(driver, "max_message_bytes"):
                driver.max_message_bytes = self.config.listen_max_message_bytes
            feeder = Feeder(driver, self.clock, self.config, self._emit, self._raw_or_none(), self._counters)
            thread = threading.Thread(target=self._serve, args=(conn, peer, feeder),
                                      name=f"chairside-hl7 {peer}", daemon=True)
            self._conns[conn] = _Conn(conn, peer, thread, feeder, sender, self.clock.monotonic())
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
                    before = _messages(feeder.driver)
                    reply = feeder.received(data)
                    c = self._conns.get(conn)
                    if c is not None:
                        now = self.clock.monotonic()
                        if _messages(feeder.driver) != before:
                            c.last_message = now
                        in_block = getattr(feeder.driver, "in_block", None)
                        pending = in_block if in_block is not None else bool(getattr(feeder.driver, "buffered", 0))
                        if not pending:
                            c.block_since = None
                        elif c.block_since is None or _messages(feeder.driver) != before:
                            c.block_since = now
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


def _messages(driver: Driver) -> int:
    """Messages a driver has finished (decoded or rejected): a change means one completed."""
    st = driver.stats
    return st.frames_decoded + st.frames_rejected
