"""Transport benchmarks: raw-capture write/read, replay at max speed, Link throughput.

    .venv/bin/python bench/bench_transport.py [--quick]

Prints medians of a few runs and the ratio to what a monitor link needs (19200 baud ~=
1920 bytes/s). No driver from chairside.drivers is needed: a null driver that counts bytes
measures the transport alone.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from chairside.domain.clock import WallClock
from chairside.drivers.base import Driver
from chairside.transport import CaptureReader, CaptureWriter, Link, ReplaySource, TransportConfig

LINK_RATE = 19200 / 10  # bytes/s a 19200-baud 8E1 line can carry at most (~10 bits/byte)


class NullDriver(Driver):
    name = "null"

    def feed(self, data: bytes):
        self.stats.frames_decoded += 1
        return []


def _median(fn, runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))


def bench_capture(tmp: Path, chunks: int, size: int, runs: int) -> None:
    data = os.urandom(size)
    clock = WallClock()

    def write() -> float:
        path = tmp / "w.raw"
        path.unlink(missing_ok=True)
        t0 = time.perf_counter()
        with CaptureWriter(path, driver="null", start=clock.now()) as w:
            now = clock.now()
            for i in range(chunks):
                w.write(now, i * 0.001, data)
        return chunks * size / (time.perf_counter() - t0)

    def read() -> float:
        t0 = time.perf_counter()
        n = sum(len(r.data) for r in CaptureReader(tmp / "w.raw"))
        return n / (time.perf_counter() - t0)

    def replay() -> float:
        t0 = time.perf_counter()
        st = ReplaySource(tmp / "w.raw", NullDriver(), on_output=lambda b: None, speed=None).run()
        return st.chunks / (time.perf_counter() - t0)

    w = _median(write, runs)
    r = _median(read, runs)
    p = _median(replay, runs)
    print(f"capture write ({chunks} chunks of {size} B, flushed each): {w / 1e6:8.2f} MB/s "
          f"= {w / LINK_RATE:,.0f} x a 19200-baud link")
    print(f"capture read:                                    {r / 1e6:8.2f} MB/s "
          f"= {r / LINK_RATE:,.0f} x a 19200-baud link")
    print(f"replay --speed max (null driver):                {p:10,.0f} chunks/s")


def bench_link(total: int, runs: int) -> None:
    def once() -> float:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        driver = NullDriver()
        link = Link(f"socket://127.0.0.1:{port}", driver, clock=WallClock(), on_output=lambda b: None,
                    config=TransportConfig(read_timeout_s=0.05))
        link.start()
        conn, _ = srv.accept()
        while link.stats.state != "up":  # pyserial discards input that arrives while it opens
            time.sleep(0.001)
        block = os.urandom(4096)
        t0 = time.perf_counter()

        def pump() -> None:
            sent = 0
            while sent < total:
                conn.sendall(block)
                sent += len(block)

        th = threading.Thread(target=pump)
        th.start()
        deadline = time.monotonic() + 60
        while link.stats.bytes_in < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"Link read only {link.stats.bytes_in} of {total} bytes in 60 s")
            time.sleep(0.001)
        dt = time.perf_counter() - t0
        th.join()
        link.stop()
        conn.close()
        srv.close()
        return total / dt

    rate = _median(once, runs)
    print(f"Link over socket:// (null driver):               {rate / 1e6:8.2f} MB/s "
          f"= {rate / LINK_RATE:,.0f} x a 19200-baud link")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds, smaller inputs")
    args = ap.parse_args(argv)
    chunks, size, runs, total = (2_000, 64, 3, 1 << 20) if args.quick else (50_000, 64, 5, 8 << 20)
    with tempfile.TemporaryDirectory() as d:
        bench_capture(Path(d), chunks, size, runs)
    bench_link(total, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
