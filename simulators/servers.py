"""Live servers that stand in for a monitor: a pseudo-terminal and a loopback TCP port.

Owns: ``serve_pty`` (opens a pty, reports the device path, writes the emulator's bytes
paced by wall time x speed, feeds what the host writes back to the emulator; the pty
closes when the run ends) and ``serve_tcp`` (127.0.0.1 only; every connected client gets
the stream; a cable disconnect drops the connections). Both stop at ``duration_s``
simulated seconds, on ``stop`` (a threading.Event) or on KeyboardInterrupt.
Wall time is read here (an I/O shell); the clock and sleep are parameters for tests.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable

from simulators.engine import Simulation

TICK_S = 0.05  # wall seconds between pacing checks
log = logging.getLogger("simulators.servers")


def _paced(sim: Simulation, duration_s: float | None, stop: threading.Event | None, clock: Callable[[], float],
           wait: Callable[[float], list], send: Callable[[bytes], None]) -> None:
    """The pacing loop shared by the servers: ``wait(timeout)`` handles host I/O."""
    last = clock()
    while True:
        if stop is not None and stop.is_set():
            return
        if duration_s is not None and sim.t >= duration_s - 1e-9:
            return
        wait(TICK_S)
        now = clock()
        dt = now - last
        last = now
        if duration_s is not None and sim.speed > 0:
            dt = min(dt, (duration_s - sim.t) / sim.speed)
        data = sim.tick_wall(dt)
        if data:
            send(data)


def serve_pty(sim: Simulation, *, duration_s: float | None = None, on_ready: Callable[[str], None] = print,
              stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic) -> dict[str, int]:
    """Serve the simulation on a new pseudo-terminal; returns byte counters."""
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    path = os.ttyname(slave)
    stats = {"sent": 0, "dropped": 0, "received": 0}
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)

    def wait(timeout: float) -> list:
        for _key, _ in sel.select(timeout):
            try:
                data = os.read(master, 4096)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EIO):
                    continue
                raise
            if data:
                stats["received"] += len(data)
                sim.write(data)
        return []

    def send(data: bytes) -> None:
        try:
            n = os.write(master, data)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EIO):
                raise
            n = 0
        stats["sent"] += n
        stats["dropped"] += len(data) - n  # nobody reading and the tty buffer is full

    log.info("pty %s: scenario %s, seed %d, speed x%g", path, sim.scenario.name, sim.seed, sim.speed)
    on_ready(path)
    try:
        _paced(sim, duration_s, stop, clock, wait, send)
    except KeyboardInterrupt:
        pass
    finally:
        sel.close()
        os.close(master)
        os.close(slave)
        log.info("pty %s closed at %.0f s simulated: %s", path, sim.t, stats)
    return stats


def serve_tcp(sim: Simulation, port: int, *, duration_s: float | None = None,
              on_ready: Callable[[str], None] = print, stop: threading.Event | None = None,
              clock: Callable[[], float] = time.monotonic) -> dict[str, int]:
    """Serve the simulation on 127.0.0.1:``port`` (0: any free port); returns counters."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(4)
    server.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(server, selectors.EVENT_READ, "accept")
    clients: list[socket.socket] = []
    stats = {"sent": 0, "dropped": 0, "received": 0, "connections": 0}

    def drop(c: socket.socket) -> None:
        if c in clients:
            clients.remove(c)
            sel.unregister(c)
            c.close()

    def wait(timeout: float) -> list:
        disconnected = bool(sim.display and sim.display.disconnected)
        for key, _ in sel.select(timeout):
            if key.data == "accept":
                try:
                    conn, _addr = server.accept()
                except BlockingIOError:
                    continue
                if disconnected:
                    conn.close()  # the cable is out: nothing answers
                    continue
                conn.setblocking(False)
                clients.append(conn)
                sel.register(conn, selectors.EVENT_READ, "client")
                stats["connections"] += 1
                log.info("tcp client %s connected", _addr)
            else:
                c = key.fileobj
                try:
                    data = c.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    drop(c)
                    continue
                if not data:
                    drop(c)
                else:
                    stats["received"] += len(data)
                    sim.write(data)
        if disconnected:
            for c in list(clients):
                drop(c)
        return []

    def send(data: bytes) -> None:
        for c in list(clients):
            try:
                n = c.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                drop(c)
                continue
            stats["sent"] += n
            stats["dropped"] += len(data) - n

    where = f"127.0.0.1:{server.getsockname()[1]}"
    log.info("tcp %s: scenario %s, seed %d, speed x%g", where, sim.scenario.name, sim.seed, sim.speed)
    on_ready(where)
    try:
        _paced(sim, duration_s, stop, clock, wait, send)
    except KeyboardInterrupt:
        pass
    finally:
        for c in list(clients):
            drop(c)
        sel.close()
        server.close()
        log.info("tcp %s closed at %.0f s simulated: %s", where, sim.t, stats)
    return stats
