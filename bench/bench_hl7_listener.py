#!/usr/bin/env python3
"""HL7 listener under abuse (issue 17): memory for a huge message, ACK latency while idlers
hold connections.

    .venv/bin/python bench/bench_hl7_listener.py          # 2 million OBR segments (~126 MB)
    .venv/bin/python bench/bench_hl7_listener.py --quick  # 200,000 segments (~13 MB)

* One ORU^R01 of N OBR segments sent over MLLP to a listener on 127.0.0.1 (size cap 1 MB):
  the process's resident memory before, at its peak, and after the connection closed.
  Targets: peak growth <= 50 MB (the cap keeps nothing of the message), resident after the
  close within 10 MB of before.
* ACK round trip of a normal ORU^R01 while 50 idle connections are open: median and p99
  over 200 messages (no target; printed for the record).
"""

from __future__ import annotations

import argparse
import resource
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from chairside.domain.clock import WallClock  # noqa: E402
from chairside.transport import Hl7Listener, TransportConfig  # noqa: E402

MSH = "MSH|^~\\&|MON|ICU|||20240101120000+0000||ORU^R01^ORU_R01|{ctl}|P|2.6|||AL|NE\r"
OBR = b"OBR|1|||182777000^monitoring of patient^SCT|||20240101115900\r"
OBX = "OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.1|97|262688^MDC_DIM_PERCENT^MDC|||||F\r"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def read_ack(sock: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\x1c\r"):
        part = sock.recv(65536)
        if not part:
            break
        buf += part
    return buf


def bench_memory(segments: int) -> bool:
    lst = Hl7Listener("hl7", clock=WallClock(), on_output=lambda _: None, port=0,
                      config=TransportConfig(read_timeout_s=0.05))
    lst.start()
    try:
        before, peak0 = rss_mb(), peak_mb()
        with socket.create_connection(lst.address, timeout=60) as sock:
            sock.sendall(b"\x0b" + MSH.format(ctl="HUGE").encode())
            block = OBR * 10_000
            sent = 0
            while sent < segments:
                n = min(10_000, segments - sent)
                sock.sendall(block if n == 10_000 else OBR * n)
                sent += n
            sock.sendall(b"\x1c\r")
            ack = read_ack(sock)
        time.sleep(0.3)
        after, peak = rss_mb(), peak_mb()
    finally:
        lst.stop()
    size_mb = segments * len(OBR) / 1e6
    growth = max(0.0, peak - max(peak0, before))
    ok = b"MSA|AR|HUGE" in ack and growth <= 50 and after - before <= 10
    print(f"memory  one ORU^R01 of {segments:,} OBR segments ({size_mb:.0f} MB): ACK "
          f"{'AR' if b'MSA|AR' in ack else ack[:40]!r}; resident {before:.0f} MB before, peak {peak:.0f} MB "
          f"(growth {growth:.0f} MB, target <= 50), {after:.0f} MB after the close (target within 10 MB): "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


def bench_latency(messages: int) -> None:
    lst = Hl7Listener("hl7", clock=WallClock(), on_output=lambda _: None, port=0,
                      config=TransportConfig(read_timeout_s=0.05))
    lst.start()
    idlers = []
    try:
        for _ in range(50):
            idlers.append(socket.create_connection(lst.address, timeout=5))
        time.sleep(0.2)
        times = []
        with socket.create_connection(lst.address, timeout=5) as sock:
            for i in range(messages):
                msg = b"\x0b" + (MSH.format(ctl=f"C{i}") + OBR.decode() + OBX).encode() + b"\x1c\r"
                t0 = time.perf_counter()
                sock.sendall(msg)
                ack = read_ack(sock)
                times.append(time.perf_counter() - t0)
                assert b"MSA|AA" in ack, ack
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"latency ACK round trip with 50 idle connections open: median {statistics.median(times) * 1e3:.2f} ms, "
              f"p99 {p99 * 1e3:.2f} ms over {messages} messages (evicted idlers: {lst.evicted})")
    finally:
        for s in idlers:
            s.close()
        lst.stop()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller message, fewer round trips")
    args = ap.parse_args(argv)
    ok = bench_memory(200_000 if args.quick else 2_000_000)
    bench_latency(50 if args.quick else 200)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
