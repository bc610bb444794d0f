#!/usr/bin/env python3
"""Benchmark of the simulator: a 4-hour session producing all three protocols' bytes.

Target (issue 4): under 2 s for 4 h of GE S/5 + Masimo + HL7 bytes (> 7,000x real time).
Prints the median of several runs and the ratio to real time; also physiology alone and
each protocol alone. ``--quick``: 20 simulated minutes, 2 repeats (a smoke run).

    .venv/bin/python bench/bench_sim.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulators.engine import Simulation  # noqa: E402

SCENARIO = "chronic-pain-4h"  # 4 h infusion + artefacts; the longest shipped scenario
TARGET_S = 2.0


def run_once(duration_s: float, drivers) -> tuple[float, float, dict[str, int]]:
    t0 = time.perf_counter()
    c0 = time.process_time()
    sim = Simulation(SCENARIO, 1, driver=drivers)
    sizes = dict.fromkeys(sim.emulators, 0)
    done = 0.0
    while done < duration_s:
        step = min(600.0, duration_s - done)
        for name, data in sim.advance_all(step).items():
            sizes[name] += len(data)
        done += step
    return time.perf_counter() - t0, time.process_time() - c0, sizes


def measure(label: str, duration_s: float, drivers, repeats: int) -> tuple[float, float]:
    times, cpu = [], []
    sizes: dict[str, int] = {}
    for _ in range(repeats):
        elapsed, used, sizes = run_once(duration_s, drivers)
        times.append(elapsed)
        cpu.append(used)
    med, med_cpu = statistics.median(times), statistics.median(cpu)
    ratio = duration_s / med if med > 0 else float("inf")
    detail = ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sizes.items()) or "no bytes"
    print(f"{label:<32} {duration_s / 3600:4.2f} h  median wall {med * 1000:7.1f} ms  cpu {med_cpu * 1000:7.1f} ms  "
          f"{ratio:9,.0f}x real time  ({detail})")
    return med, med_cpu


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    duration = 20 * 60.0 if quick else 4 * 3600.0
    repeats = 2 if quick else 5
    print(f"bench_sim: scenario {SCENARIO}, {'quick' if quick else 'full'} run, {repeats} repeats, medians")
    measure("physiology + device layer only", duration, None, repeats)
    for d in ("ge-s5", "masimo", "hl7"):
        measure(f"{d} bytes", duration, d, repeats)
    med, med_cpu = measure("all three protocols' bytes", duration, ("ge-s5", "masimo", "hl7"), repeats)
    scale = 4 * 3600.0 / duration
    verdict = "meets" if med * scale < TARGET_S else "MISSES"
    print(f"4 h with all three protocols: {med * scale:.2f} s wall, {med_cpu * scale:.2f} s cpu "
          f"(target < {TARGET_S:.1f} s, > 7,200x real time): {verdict} the target"
          + (" (extrapolated from the quick run)" if quick else "")
          + ("; wall time is inflated on a loaded machine, compare the cpu figure" if med > 1.3 * med_cpu else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
