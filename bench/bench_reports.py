"""Report benchmarks: the whole ``chairside export`` command (read + render + write) on a
4-hour 1 Hz session file, its wall time and its peak memory.

    .venv/bin/python bench/bench_reports.py [--quick]

Builds a session file through the store (HR, PR and SpO2 every second in one
``readings_recorded`` event per second, as the store's group commit writes them, NIBP every
5 min, an infusion, observations every 15 min, one SpO2 alarm), then runs
``chairside export FILE --format fhir`` (and ``--all``), ``--format html`` and
``--format rems-json``... each in a fresh process, several times, and prints the median
wall time of the command (Python start-up included) and its peak memory (max RSS of the
process, from ``wait4``). With Chromium at /usr/bin/chromium it also prints the number of
pages the HTML record prints on (A4, the browser's PDF).
Targets (issue 17, 4-hour session): FHIR <= 3 s and <= 200 MB peak; HTML <= 2 s; the
printed HTML record <= 12 pages.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chairside.domain.clock import ManualClock
from chairside.store import SessionFile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "reports"))

from report_scenario import long_session as build  # noqa: E402

TARGETS = {"fhir": (3.0, 200.0), "html": (2.0, None)}
MAX_PAGES = 12
CHROMIUM = Path("/usr/bin/chromium")


def write(path: Path, events: list) -> None:
    t0 = events[0].t
    clock = ManualClock(t0)
    sf = SessionFile.create(path, events[0], clock)
    try:
        for e in events[1:]:
            clock.set(max(clock.monotonic(), (e.t - t0).total_seconds()))
            sf.append(e)
        sf.flush()
    finally:
        sf.close()


# The command runs in a fresh interpreter that reports its own high-water mark (VmHWM) as it
# exits: the max RSS that wait4 gives a child includes its parent's memory at the fork.
_CHILD = """import atexit, sys
def _hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            print('BENCH-VMHWM-KB', line.split()[1], file=sys.stderr)
atexit.register(_hwm)
from chairside.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run(args: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MB, CPU seconds user + system) of one command in a fresh
    process. On a shared machine the wall time includes waiting for a core: the CPU time
    and the load average printed beside it say how much."""
    a = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", _CHILD, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - a
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode != 0:
        raise SystemExit(f"chairside {' '.join(args)}: exit {p.returncode}: {err[-500:]}")
    hwm = re.search(r"BENCH-VMHWM-KB (\d+)", err)
    return wall, (int(hwm.group(1)) / 1024.0 if hwm else float("nan")), usage.ru_utime + usage.ru_stime


def pdf_pages(html: Path, work: Path) -> int | None:
    """Pages of the HTML record printed to PDF by headless Chromium (None without it)."""
    if not CHROMIUM.exists():
        return None
    pdf = work / "record.pdf"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    f"--user-data-dir={work / 'profile'}", "--no-pdf-header-footer",
                    f"--print-to-pdf={pdf}", html.resolve().as_uri()],
                   capture_output=True, timeout=120)
    if not pdf.exists():
        return None
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes()))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10-minute session, one run (smoke test)")
    args = ap.parse_args()
    hours, runs = (1 / 6, 1) if args.quick else (4.0, 3)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        session = work / "long.chairside"
        a = time.perf_counter()
        events = build(hours)
        write(session, events)
        readings = sum(len(e.readings) for e in events if e.kind == "readings_recorded")
        del events
        print(f"session: {hours:g} h at 1 Hz, {readings} readings, file {session.stat().st_size / 1e6:.1f} MB "
              f"(built in {time.perf_counter() - a:.1f} s)")
        cases = [("fhir", ["--format", "fhir"], work / "s.fhir.json"),
                 ("fhir --all", ["--format", "fhir", "--all"], work / "s-all.fhir.json"),
                 ("html", ["--format", "html"], work / "s.html")]
        for name, fmt, out in cases:
            res = [run(["export", str(session), *fmt, "--out", str(out)]) for _ in range(runs)]
            wall = statistics.median(r[0] for r in res)
            peak = max(r[1] for r in res)
            cpu = statistics.median(r[2] for r in res)
            target = TARGETS.get(name, (None, None))
            tt = f"  (target <= {target[0]:g} s" + (f", <= {target[1]:g} MB" if target[1] else "") + ")" \
                if target[0] else ""
            print(f"export {name:<11} median {wall:6.2f} s wall, {cpu:5.2f} s CPU  peak {peak:6.1f} MB  "
                  f"output {out.stat().st_size / 1e6:6.2f} MB{tt}")
        print(f"load average during the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        pages = pdf_pages(work / "s.html", work)
        print(f"html printed pages: {pages if pages is not None else 'n/a (no /usr/bin/chromium)'}"
              f"  (target <= {MAX_PAGES})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
