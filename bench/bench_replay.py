"""Replay benchmark: ``chairside replay FILE --headless --speed max`` on a 4-hour session.

    .venv/bin/python bench/bench_replay.py [--quick]

Builds 4-hour session files of the chronic-pain scenario (the simulator's bytes through the
driver into the monitoring service on simulated time): Masimo, one line a second (SpO2, PR
and PI every second, the densest a monitor sends), and GE S/5 (displayed values every 5 s);
and a 4-hour Masimo raw capture. Then runs the command in a fresh process five times each
and prints the medians: wall time of the whole command (start-up included), the time inside
the command, and the peak memory (max RSS) it reports.
Target: under 2 s for the 4-hour session (over 7,200 x real time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "replay"))

from replay_kit import record, write_capture  # noqa: E402

TARGET_S = 2.0


def run(path: Path, runs: int) -> tuple[list[float], list[dict]]:
    walls, outs = [], []
    for _ in range(runs):
        a = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "chairside.cli", "replay", str(path), "--headless", "--speed",
                            "max", "--json"], capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - a)
        outs.append(json.loads(p.stdout))
    return walls, outs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="20 simulated minutes, one run")
    args = ap.parse_args()
    hours, runs = (1 / 3, 1) if args.quick else (4.0, 5)
    with tempfile.TemporaryDirectory() as d:
        cases = []
        for driver, what in (("masimo", "1 line/s: SpO2, PR, PI every second"),
                             ("ge-s5", "displayed values every 5 s, NIBP every 15 min")):
            session = Path(d) / f"long-{driver}.chairside"
            a = time.perf_counter()
            record(session, scenario="chronic-pain-4h", driver=driver, seed=11, duration_s=hours * 3600)
            built = time.perf_counter() - a
            print(f"bench_replay: {hours:g} h of chronic-pain-4h, {driver} ({what}); session file "
                  f"{session.stat().st_size / 1e6:.1f} MB built in {built:.1f} s")
            cases.append((f"{driver} session file", session))
        cap = Path(d) / "long.raw"
        write_capture(cap, "chronic-pain-4h", "masimo", 11, hours * 3600)
        print(f"bench_replay: masimo raw capture {cap.stat().st_size / 1e6:.1f} MB")
        cases.append(("masimo raw capture ", cap))
        for label, path in cases:
            walls, outs = run(path, runs)
            inner = statistics.median(o["wall_s"] for o in outs)
            rss = statistics.median(o["peak_rss_mib"] for o in outs)
            med = statistics.median(walls)
            o = outs[0]
            alarms = sum(o["alarms_recomputed"].values())
            print(f"{label:20s} {o['readings']:6d} readings, {alarms} alarms recomputed, {o['differences']} "
                  f"differences; command median {med:.2f} s wall (inside {inner:.2f} s) = "
                  f"{o['duration_s'] / med:,.0f}x real time; peak memory {rss:.0f} MiB; "
                  f"runs {[round(w, 2) for w in walls]}")
            if "session" in label and not args.quick:
                verdict = "meets the target" if med < TARGET_S else "BELOW TARGET"
                print(f"  4 h {label}: {med:.2f} s (target < {TARGET_S:g} s, ratio {TARGET_S / med:.2f}): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
