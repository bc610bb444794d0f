#!/usr/bin/env python3
"""Console soak at simulated speed: does memory stay flat over a 4-hour session? (issue 17)

The real path minus the socket: the simulated monitor (scenario ``chronic-pain-4h``,
Masimo or GE bytes) is stepped second by second in this process, its bytes go through the
driver into the MonitorService (every reading stored in the session file), and the console
(the Textual app, headless at 100 x 30) shows every snapshot, as fast as it can take them.
A session is open and recording for the whole run.

Resident memory (RSS) is sampled every simulated 15 minutes. Target: after the first 15
minutes, growth <= 5 MB per simulated hour (the least-squares slope of RSS over simulated
time from 15 min on). ``--tracemalloc`` also takes a tracemalloc snapshot at 15 min and at
the end and prints the allocation sites that grew most (slower: use it to find a leak,
not for the figure).

    .venv/bin/python bench/bench_soak.py                    # 4 simulated hours
    .venv/bin/python bench/bench_soak.py --hours 1 --tracemalloc
    .venv/bin/python bench/bench_soak.py --quick            # 30 simulated minutes (smoke)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from chairside.service import MonitorService  # noqa: E402
from chairside.training import InProcessMonitor, TrainingRun  # noqa: E402
from chairside.ui import create_app  # noqa: E402

TARGET_MB_PER_H = 5.0
WARMUP_S = 15 * 60
SAMPLE_S = 15 * 60
TRACE_FRAMES = 6  # frames kept per allocation with --tracemalloc (more is slower)
START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (simulated seconds, MB) in MB per hour."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(t for t, _ in points) / n
    my = sum(m for _, m in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    sxy = sum((t - mx) * (m - my) for t, m in points)
    return 3600 * sxy / sxx if sxx else float("nan")


async def soak(hours: float, driver: str, trace: bool) -> dict:
    run = TrainingRun("chronic-pain-4h", driver=driver, seed=7, start=START, manual=True, hold=False)
    tmp = Path(tempfile.mkdtemp(prefix="chairside-soak-"))
    svc = MonitorService(clock=run.clock, driver=driver, protocol="iv-ketamine-chronic-pain", simulated=True,
                         scenario=run.scenario.name, sim_seed=run.seed, session_dir=tmp)
    run.attach(svc)
    monitor = InProcessMonitor(run, svc)
    svc.open_session(patient_id="SOAK", weight_kg=run.scenario.patient.weight_kg, staff=["BN"],
                     weight_confirmed_by="BX", path=tmp / "soak.chairside")
    app = create_app(svc, run.clock, None, show_start=False, bell=False, flash=False)
    total_s = int(hours * 3600)
    samples: list[tuple[float, float]] = []
    blocks: list[tuple[float, int, int]] = []  # (sim s, Python's allocated blocks, gc-tracked objects)
    snapshots: dict[str, tracemalloc.Snapshot] = {}
    done = threading.Event()
    failure: list[BaseException] = []

    def drive() -> None:
        try:
            for t in range(1, total_s + 1):
                monitor.run(1)
                if t % 60 == 0:
                    time.sleep(0.002)  # let the console's loop take the newest snapshot
                if t % SAMPLE_S == 0:
                    gc.collect()
                    samples.append((t, rss_mb()))
                    blocks.append((t, sys.getallocatedblocks(), len(gc.get_objects())))
                    if trace and t == WARMUP_S:
                        snapshots["warm"] = tracemalloc.take_snapshot()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failure.append(exc)
        finally:
            done.set()

    if trace:
        tracemalloc.start(TRACE_FRAMES)
    wall0 = time.perf_counter()
    async with app.run_test(size=(100, 30)) as pilot:
        worker = threading.Thread(target=drive, daemon=True)
        worker.start()
        while not done.is_set():
            await pilot.pause(0.05)
        worker.join()
    wall = time.perf_counter() - wall0
    if trace:
        gc.collect()
        snapshots["end"] = tracemalloc.take_snapshot()
        tracemalloc.stop()
    if failure:
        raise failure[0]
    store = svc.snapshot().device.store
    svc.stop()
    svc.close_session(author="BN", reason="soak ended")
    return {"samples": samples, "blocks": blocks, "wall": wall, "readings": store.readings, "events": store.events,
            "snapshots": snapshots}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=4.0, help="simulated hours (default 4)")
    ap.add_argument("--driver", default="masimo", choices=["masimo", "ge-s5", "hl7"])
    ap.add_argument("--tracemalloc", action="store_true", help="also show the allocation sites that grew")
    ap.add_argument("--quick", action="store_true", help="smoke run: 30 simulated minutes")
    args = ap.parse_args()
    hours = 0.5 if args.quick else args.hours
    r = asyncio.run(soak(hours, args.driver, args.tracemalloc))
    samples = r["samples"]
    for (t, mb), (_, nblocks, nobjects) in zip(samples, r["blocks"]):
        print(f"  sim {t / 3600:5.2f} h  RSS {mb:7.1f} MB  Python blocks {nblocks:9d}  gc objects {nobjects:8d}")
    after = [(t, mb) for t, mb in samples if t >= WARMUP_S]
    growth = slope_per_hour(after)
    print(f"soak {hours:g} simulated h ({args.driver}, {r['readings']} readings, {r['events']} events stored) in "
          f"{r['wall']:.0f} s wall: RSS {samples[0][1]:.1f} -> {samples[-1][1]:.1f} MB; growth after the first "
          f"15 min {growth:+.2f} MB per simulated hour; target <= {TARGET_MB_PER_H:g} -> ratio "
          f"{abs(growth) / TARGET_MB_PER_H:.2f}")
    snaps = r["snapshots"]
    if "warm" in snaps and "end" in snaps:
        print("tracemalloc: allocation sites that grew most from 15 min to the end (size, count, where):")
        for stat in snaps["end"].compare_to(snaps["warm"], "traceback")[:12]:
            frames = [f for f in stat.traceback if "chairside" in f.filename or "textual" in f.filename
                      or "simulators" in f.filename] or list(stat.traceback)
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames[:4])
            print(f"  {stat.size_diff / 1e6:+8.3f} MB {stat.count_diff:+8d}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
