#!/usr/bin/env python3
"""Run every benchmark in bench/ and print their figures.

    python3 dev.py bench            # all benchmarks, full size
    python3 dev.py bench --quick    # a few seconds each (smoke run)
    python3 dev.py bench store      # only bench_store.py

Each bench_<area>.py is a plain script that prints medians and ratios; this runs them
one after another in fresh processes (so one's memory does not skew another's).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("-")]
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name}{' (quick)' if quick else ''}", flush=True)
        started = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script), *(["--quick"] if quick else [])])
        print(f"--- {script.name}: exit {rc}, {time.perf_counter() - started:.1f} s wall", flush=True)
        if rc:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
