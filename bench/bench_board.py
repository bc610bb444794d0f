#!/usr/bin/env python3
"""Benchmarks of the clinic board (issue 18).

1. Through the broker: 12 chairs at 1 Hz publish their state, and an alarm event every few
   seconds, through one Mosquitto into one board process. Latency from the chair's alarm
   event (its record time) to the board's model holding it: p50/p99 (target p99 <= 1 s);
   the board process's CPU (target <= 10 % of a core) and memory.
2. A clinic's day on one PC: 12 simulated chairs in one in-process board, each a full
   monitoring service recording its own session file, at real pace for a while (default
   10 min; --quick 1 min); total CPU of the process over the run (target <= 25 % of the
   machine's 2 cores) and its memory after the first minutes (target: flat), extrapolated
   to an 8-hour day.

    python3 dev.py bench board            # 2 min through the broker, 10 min in process
    python3 dev.py bench board --quick    # 20 s and 1 min
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class FakeService:
    """What a ChairPublisher needs of a chair's service: snapshots and events, at 1 Hz."""

    def __init__(self, chair: int) -> None:
        self.chair = chair
        self.snap_cbs: list = []
        self.ev_cbs: list = []
        self.seq = 0

    def subscribe(self, cb):
        self.snap_cbs.append(cb)
        return lambda: None

    def subscribe_events(self, cb):
        self.ev_cbs.append(cb)
        return lambda: None

    def step(self, i: int) -> None:
        now = datetime.now(timezone.utc)
        tile = lambda k, v: SimpleNamespace(key=k, value=v, value2=80.0 if k == "nibp" else None, age_s=1.0,  # noqa: E731
                                            stale=False, missing_reason=None)
        snap = SimpleNamespace(
            now=now, tiles=[tile("hr", 70 + i % 5), tile("spo2", 97.0), tile("nibp", 120.0 + i % 7)], alarms=[],
            infusion=SimpleNamespace(state="running", drug="ketamine", delivered_mg=i * 0.01,
                                     delivered_mg_kg=i * 0.0002, target_dose_mg_kg=0.5),
            session=SimpleNamespace(open=True, patient_id=f"P-{self.chair}", phase="infusion"), timeline=(),
            next_bp_due_s=300.0 - i % 300, device=SimpleNamespace(link_state="up", store=SimpleNamespace(events=self.seq)))
        for cb in self.snap_cbs:
            cb(snap)
        if i % 5 == self.chair % 5:
            self.seq += 1
            ev = SimpleNamespace(kind="alarm_raised", seq=self.seq, t=now, alarm_id=f"a#{self.seq}", priority="medium",
                                 message="bench alarm")
            for cb in self.ev_cbs:
                cb(ev)


BOARD = r'''
import json, resource, sys, time
from datetime import datetime, timezone
sys.path[:0] = [sys.argv[2], sys.argv[3]]
from chairside.board.mqtt import BoardSubscriber, parse_broker
from chairside.board.state import BoardModel
model = BoardModel()
lat = []
orig = model.on_alarm
def on_alarm(chair, payload, mono):
    ok = orig(chair, payload, mono)
    if ok:
        t = datetime.fromisoformat(json.loads(payload)["t"])
        lat.append((datetime.now(timezone.utc) - t).total_seconds())
    return ok
model.on_alarm = on_alarm
sub = BoardSubscriber(parse_broker(sys.argv[1]), model, client_id="bench-board")
sub.start()
c0 = time.process_time(); w0 = time.monotonic()
time.sleep(float(sys.argv[4]))
cpu = (time.process_time() - c0) / (time.monotonic() - w0)
sub.stop()
print(json.dumps({"lat": lat, "cpu": cpu, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "malformed": model.malformed}))
'''


def through_broker(seconds: float) -> None:
    from chairside.board.mqtt import ChairPublisher, parse_broker

    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "m.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        broker = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        url = f"mqtt://127.0.0.1:{port}"
        board = subprocess.Popen([sys.executable, "-c", BOARD, url, str(ROOT / "src"), str(ROOT), str(seconds + 2)],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        fakes = [FakeService(i) for i in range(12)]
        pubs = [ChairPublisher(f, parse_broker(url), clinic="bench", chair=f"chair-{i + 1}") for i, f in enumerate(fakes)]
        for p in pubs:
            p.start()
        for i in range(int(seconds)):
            t0 = time.monotonic()
            for f in fakes:
                f.step(i)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        out = json.loads(board.communicate(timeout=60)[0])
        for p in pubs:
            p.stop()
        broker.terminate()
        broker.wait()
    lat = sorted(out["lat"])
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    print(f"12 chairs x {seconds:.0f} s through one broker: {len(lat)} alarm events at the board")
    print(f"  alarm event -> board model: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
          f"(target p99 <= 1000 ms: ratio {p99 / 1.0:.3f})")
    print(f"  board process CPU {out['cpu'] * 100:.1f} % of a core (target <= 10 %: ratio {out['cpu'] / 0.10:.2f}); "
          f"peak RSS {out['rss_mb']:.0f} MB")


def clinic_day(minutes: float) -> None:
    from chairside.board.local import ChairSpec, LocalBoard

    scenarios = ["uneventful", "hypertensive-surge", "vasovagal", "over-sedation", "emergence-agitation",
                 "nausea-vomiting", "probe-off", "nibp-failures", "tachyarrhythmia", "chronic-pain-4h", "uneventful",
                 "hypertensive-surge"]
    specs = [ChairSpec(f"chair-{i + 1}", scenario=s, minutes_in=0.0, seed=200 + i) for i, s in enumerate(scenarios)]
    with tempfile.TemporaryDirectory() as tmp:
        board = LocalBoard(specs, folder=Path(tmp))
        board.start()
        rss: list[tuple[float, float]] = []
        c0, w0 = time.process_time(), time.monotonic()
        end = w0 + minutes * 60
        while time.monotonic() < end:
            time.sleep(5)
            with open("/proc/self/status") as f:
                kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            rss.append(((time.monotonic() - w0) / 60, kb / 1024))
        cpu = (time.process_time() - c0) / (time.monotonic() - w0)
        board.stop()
        size = sum(p.stat().st_size for p in Path(tmp).glob("*.chairside")) / 1e6
    first = min(2.0, minutes / 2)
    settled = [(t, m) for t, m in rss if t >= first] or rss
    ts, ms = [t for t, _ in settled], [m for _, m in settled]
    mt, mm = statistics.fmean(ts), statistics.fmean(ms)
    var = sum((t - mt) ** 2 for t in ts)
    growth = 0.0 if var == 0 else sum((t - mt) * (m - mm) for t, m in settled) / var * 60  # MB per hour
    print(f"12 in-process chairs at real pace for {minutes:g} min: CPU {cpu * 100:.1f} % of one core = "
          f"{cpu * 50:.1f} % of the machine's 2 cores (target <= 25 %: ratio {cpu * 50 / 25:.2f})")
    print(f"  RSS {rss[0][1]:.0f} MB after 5 s, {ms[0]:.0f} -> {ms[-1]:.0f} MB from minute {first:g} on "
          f"(least-squares slope {growth:+.1f} MB/h); session files {size:.1f} MB -> an 8-hour day "
          f"~{size * 480 / minutes:.0f} MB")


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    through_broker(20 if quick else 120)
    clinic_day(1 if quick else 10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
