#!/usr/bin/env python3
"""Session store benchmark: durable events/s, readings/s with group commit, bytes per hour.

    .venv/bin/python bench/bench_store.py [--quick] [--dir DIR]

Targets (2-core machine): >= 200 durable clinical events/s, >= 50,000 readings/s with
group commit, <= 5 MB per hour of 1 Hz monitoring of 6 parameters. Prints the median of
several runs and the ratio to each target. Files are written in DIR (default: a temporary
folder; pass a folder on the disk you care about, since fsync speed is the disk's).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from chairside.domain import events as ev  # noqa: E402
from chairside.domain.clock import ManualClock, WallClock  # noqa: E402
from chairside.domain.readings import Reading  # noqa: E402
from chairside.keys import installation_signer  # noqa: E402
from chairside.store import SessionFile, verify  # noqa: E402

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PARAMS = [("hr", "bpm", "ecg", 72.0), ("pr", "bpm", "spo2", 72.0), ("spo2", "%", "spo2", 97.0),
          ("nibp_sys", "mmHg", "nibp", 128.0), ("nibp_dia", "mmHg", "nibp", 78.0),
          ("nibp_map", "mmHg", "nibp", 95.0)]


def opened(clock) -> ev.SessionOpened:
    return ev.SessionOpened(t=clock.now(), session_id="bench", patient_id="P-0001", weight_kg=72.5,
                            protocol="iv-ketamine-depression", staff=("AB",), author="AB")


def frame(t: datetime, rng: random.Random, state: list[float]) -> list[Reading]:
    """One second of a monitor: the six parameters, values drifting like real vitals."""
    out = []
    for i, (p, unit, src, _base) in enumerate(PARAMS):
        state[i] += rng.uniform(-0.6, 0.6)
        out.append(Reading(param=p, value=round(state[i]), unit=unit, device_time=t,
                           receive_time=t + timedelta(milliseconds=rng.randint(20, 90)), source=src))
    return out


def bench_events(folder: Path, n: int, run: int, *, signed: bool = True) -> float:
    clock = WallClock()
    kw = {} if signed else {"signer": None}  # default: this installation's key signs every commit
    sf = SessionFile.create(folder / f"events-{run}-{'s' if signed else 'u'}.chairside", opened(clock), clock, **kw)
    evs = [ev.ObservationRecorded(t=T0, scale="cadss", score=i % 20, text="calm", author="AB")
           if i % 2 else ev.NoteAdded(t=T0, text=f"note {i}", author="AB") for i in range(n)]
    t = time.perf_counter()
    for e in evs:
        sf.append(e)  # durable (WAL + synchronous=FULL) on return
    dt = time.perf_counter() - t
    sf.close()
    return n / dt


def bench_readings(folder: Path, n: int, run: int) -> float:
    clock = WallClock()
    rng = random.Random(run)
    state = [b for *_x, b in PARAMS]
    frames = [frame(T0 + timedelta(seconds=i), rng, state) for i in range(n // 6)]
    sf = SessionFile.create(folder / f"readings-{run}.chairside", opened(clock), clock)
    t = time.perf_counter()
    for f in frames:
        sf.append_readings(f)  # one driver frame per call; group commit by time / batch size
    sf.flush()
    dt = time.perf_counter() - t
    sf.close()
    return len(frames) * 6 / dt


def bench_sign(n: int) -> float:
    """CPU cost of one head signature (Ed25519 over the documented message), microseconds."""
    signer = installation_signer()
    t = time.perf_counter()
    for i in range(n):
        signer.sign_head(i + 1, "ab" * 32)
    return (time.perf_counter() - t) / n * 1e6


VERIFY_S: list[float] = []  # verify() of each bench_size file


def bench_size(folder: Path, seconds: int, run: int) -> tuple[float, int]:
    """Bytes of a session file per hour of 1 Hz x 6 parameters (+ a clinical event / 5 min)."""
    clock = ManualClock(T0)
    rng = random.Random(100 + run)
    state = [b for *_x, b in PARAMS]
    path = folder / f"size-{run}.chairside"
    sf = SessionFile.create(path, opened(clock), clock)
    for s in range(seconds):
        clock.advance(1.0)
        sf.append_readings(frame(clock.now(), rng, state))
        sf.tick()
        if s % 300 == 299:
            sf.append(ev.ObservationRecorded(t=clock.now(), scale="cadss", score=rng.randrange(10), author="AB"))
    sf.close()
    size = sum(p.stat().st_size for p in folder.glob(path.name + "*"))
    t = time.perf_counter()
    r = verify(path)  # the chain, every readings digest and every commit's signature
    VERIFY_S.append(time.perf_counter() - t)
    assert r.ok and r.signed, r.line()
    return size * 3600 / seconds / 1e6, r.count


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, two runs (smoke test)")
    ap.add_argument("--dir", type=Path, help="folder for the files (default: a temporary folder)")
    args = ap.parse_args(argv)
    runs = 2 if args.quick else 5
    n_events = 100 if args.quick else 1000
    n_readings = 30_000 if args.quick else 300_000
    seconds = 600 if args.quick else 3600
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=args.dir) as tmp:
        folder = Path(tmp)
        ev_rates, ev_unsigned = [], []
        for i in range(runs):  # interleaved, so both see the same disk and load
            ev_rates.append(bench_events(folder, n_events, i))
            ev_unsigned.append(bench_events(folder, n_events, i, signed=False))
        rd_rates = [bench_readings(folder, n_readings, i) for i in range(runs)]
        sizes = [bench_size(folder, seconds, i) for i in range(runs)]
    med_ev = statistics.median(ev_rates)
    med_rd = statistics.median(rd_rates)
    med_mb = statistics.median(s for s, _ in sizes)
    print(f"session store benchmark ({'quick' if args.quick else 'full'}: {runs} runs, medians; "
          "WAL + synchronous=FULL)")
    print(f"durable clinical events/s : {med_ev:10.0f}   target >= 200      ratio {med_ev / 200:6.1f}x   "
          f"runs {[round(x) for x in ev_rates]}  ({n_events} events/run)")
    print(f"readings/s, group commit  : {med_rd:10.0f}   target >= 50000    ratio {med_rd / 50000:6.1f}x   "
          f"runs {[round(x) for x in rd_rates]}  ({n_readings} readings/run, 6 per call)")
    print(f"MB per monitored hour     : {med_mb:10.2f}   target <= 5        ratio {5 / med_mb:6.1f}x   "
          f"runs {[round(s, 2) for s, _ in sizes]}  ({seconds} s of 1 Hz x 6 params, "
          f"{sizes[0][1]} events, verified)")
    med_un = statistics.median(ev_unsigned)
    sign_us = statistics.median(bench_sign(2000) for _ in range(runs))
    print(f"signing per commit group  : {(1 / med_ev - 1 / med_un) * 1e3:10.3f} ms (no target; durable commit "
          f"signed {1e3 / med_ev:.3f} ms vs unsigned {1e3 / med_un:.3f} ms, unsigned runs "
          f"{[round(x) for x in ev_unsigned]}; the Ed25519 signature alone {sign_us:.0f} us)")
    per_hour = statistics.median(VERIFY_S) * 3600 / seconds
    print(f"verify s per monitored hour: {per_hour:10.3f}   (no target; chain + digests + every commit signature, "
          f"{sizes[0][1]} events; runs {[round(x, 3) for x in VERIFY_S]})")
    ok = med_ev >= 200 and med_rd >= 50_000 and med_mb <= 5
    print("all targets met" if ok else "TARGET MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
