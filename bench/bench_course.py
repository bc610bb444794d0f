#!/usr/bin/env python3
"""Benchmark of the patient's course (issue 19): a folder of 1,000 session files of 1-hour
simulated sessions; the first index, the course view of one patient with the index warm,
and the REMS list. Targets: first index <= 10 s, course <= 0.3 s, REMS list <= 0.3 s.

    python3 dev.py bench course          # 1,000 files
    python3 dev.py bench course --quick  # 100 files
    python3 bench/bench_course.py --keep DIR --runs 3   # make the folder once, reuse it

Wall and CPU seconds (user + system, the index's pool workers included) are both given:
on a machine shared with other work the wall time says more about the load than the code.

The sessions are made by the simulator through the real path (bytes -> driver -> service
-> store): DISTINCT uneventful 1-hour sessions of different patients, each copied so the
folder holds 1,000 files (a copy is a whole session file; the index reads each one).
Each figure is the median of several runs of the whole command in a fresh process.
"""

from __future__ import annotations

import shutil
import statistics
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

DISTINCT = 10


def make_sessions(folder: Path, total: int) -> None:
    from chairside.training import record_headless
    from simulators.api import DEFAULT_START

    def begin(svc, run):
        svc.complete_checklist(author="RN", contraindications={i.key: False for i in svc.data.checklist},
                               hours_fasted=6, escort_confirmed=True, consent=True)
        svc.record_baseline(author="RN")
        svc.start_infusion(author="RN", concentration_mg_ml=0.4, confirmed_by="SIM",
                           advisory_reason="benchmark session", gate_override_reason="benchmark session")

    seeds = []
    for i in range(DISTINCT):
        path = folder / f"src-{i}.chairside"
        steps = [("phq9", lambda svc, run, s=20 - i: True,
                  lambda svc, run, s=20 - i: svc.record_observation(author="RN", scale="phq9", score=s)),
                 ("start", lambda svc, run: svc.snapshot().tile("nibp").value is not None, begin)]
        record_headless(path, "uneventful", seed=100 + i, duration_s=3600,
                        start=DEFAULT_START + timedelta(days=i), steps=steps)
        seeds.append(path)
    for k in range(total):
        src = seeds[k % DISTINCT]
        shutil.copy(src, folder / f"s{k:04d}.chairside")
    for p in seeds:
        p.unlink()


CPU: list[float] = []  # CPU seconds (user + system) of each timed command, its pool workers included


def timed(cmd: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return wall


def cpu_of(n: int) -> float:
    """Median CPU seconds of the last ``n`` timed commands."""
    return statistics.median(CPU[-n:])


def in_process(folder: Path) -> tuple[float, float]:
    """The warm course and REMS list without the interpreter's start-up: what the console's
    course read and a resident process pay."""
    from datetime import date

    from chairside.reports.course import course_rows, render, rems_due
    from chairside.reports.course_index import CourseIndex

    def course() -> None:
        with CourseIndex(folder) as index:
            summaries = index.refresh()
            mine = index.confirm([s for s in summaries if s.patient_id == "SIM-0100"])
            render("SIM-0100", course_rows(mine, "SIM-0100"), [s for s in summaries if s.status != "ok"], "json")

    def rems() -> None:
        with CourseIndex(folder) as index:
            summaries = index.refresh()
            rems_due(index.confirm([s for s in summaries if s.drug == "esketamine" and not s.rems_filed]),
                     date(2026, 1, 20))

    out = []
    for fn in (course, rems):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out.append(statistics.median(times))
    return out[0], out[1]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    total = 100 if quick else 1000
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    keep = Path(argv[argv.index("--keep") + 1]) if "--keep" in argv else None
    exe = [sys.executable, "-c", "import sys; from chairside.cli import main; sys.exit(main())"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if len(list(folder.glob("*.chairside"))) != total:  # --keep DIR: made once, reused
            t0 = time.perf_counter()
            make_sessions(folder, total)
            print(f"made {total} session files ({DISTINCT} distinct 1-hour sessions) in "
                  f"{time.perf_counter() - t0:.0f} s")
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        firsts = []
        for _ in range(runs):
            (folder / ".chairside-index.sqlite").unlink(missing_ok=True)
            firsts.append(timed([*exe, "course", "SIM-0100", "--folder", str(folder), "--format", "json"]))
        fc = cpu_of(runs)
        course = [timed([*exe, "course", "SIM-0100", "--folder", str(folder), "--format", "json"]) for _ in range(5)]
        cc = cpu_of(5)
        rems = [timed([*exe, "rems", "--folder", str(folder)]) for _ in range(5)]
        rc = cpu_of(5)
        base = [timed([*exe, "--version"]) for _ in range(5)]
        bc = cpu_of(5)
        inproc_course, inproc_rems = in_process(folder)
    f, c, r, b = (statistics.median(x) for x in (firsts, course, rems, base))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"first index of {total} files: median {f:.2f} s wall over {runs} runs, {fc:.2f} s CPU "
          f"(target <= 10 s for 1,000: ratio {f / 10:.2f})")
    print(f"course view, index warm:     median {c:.3f} s wall, {cc:.3f} s CPU (target <= 0.3 s: ratio "
          f"{c / 0.3:.2f}); Python start-up alone (--version) {b:.3f} s wall, {bc:.3f} s CPU")
    print(f"REMS list, index warm:       median {r:.3f} s wall, {rc:.3f} s CPU (target <= 0.3 s: ratio "
          f"{r / 0.3:.2f})")
    print(f"in one process, index warm (no interpreter start-up): course {inproc_course * 1000:.0f} ms, "
          f"REMS list {inproc_rems * 1000:.0f} ms (medians of 5)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
