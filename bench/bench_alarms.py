#!/usr/bin/env python3
"""Alarm engine throughput: readings evaluated per second with all rules active.

    .venv/bin/python bench/bench_alarms.py          # full: 600,000 readings x 7 runs
    .venv/bin/python bench/bench_alarms.py --quick  # smoke: 60,000 readings x 3 runs

Setup: the standard profile in the infusion phase, infusing, baseline recorded (so the
rise-from-baseline rules are live), a MOAA/S of 3 and a symptom checklist on record (so
both combined conditions are live). The stream is a 1 Hz monitor: HR, PR and SpO2 each
second with noise, an NIBP set (sys/dia/mean) every 5 min, episodes of desaturation,
tachycardia, hypertension and probe-off that raise, escalate and clear alarms, an
acknowledgement now and then, MOAA/S and the symptom checklist re-recorded every 15 min
(so the combined conditions stay live, not stale), and ``tick`` once per simulated second. Readings are built
before timing; the figure counts readings (ticks and acknowledgements are inside the
timed loop but not counted). Target: >= 200,000 readings/s.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from chairside.alarms import AlarmEngine, load_profile  # noqa: E402
from chairside.domain.events import ObservationRecorded  # noqa: E402
from chairside.domain.protocol import load_template  # noqa: E402
from chairside.domain.readings import Reading  # noqa: E402

TARGET = 200_000
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def build_stream(n_readings: int, seed: int = 7):
    """[(kind, obj, now)] with kind 'r' (reading), 't' (tick) or 'a' (acknowledge all)."""
    rng = np.random.default_rng(seed)
    out = []
    s = 0
    count = 0
    while count < n_readings:
        now = T0 + timedelta(seconds=s)
        phase_in_cycle = s % 1800
        desat = 600 <= phase_in_cycle < 640
        tachy = 900 <= phase_in_cycle < 960
        probe_off = 1200 <= phase_in_cycle < 1230
        hr = 74 + rng.normal(0, 3) + (60 if tachy else 0)
        spo2 = min(100.0, round(97 + rng.normal(0, 0.8) - (12 if desat else 0)))
        out.append(("r", Reading(param="hr", value=float(round(hr)), unit="bpm", source="ecg"), now))
        if probe_off:
            out.append(("r", Reading(param="spo2", value=None, unit="%", valid=False, flags=("sensor_off",)), now))
            out.append(("r", Reading(param="pr", value=None, unit="bpm", valid=False, flags=("sensor_off",)), now))
        else:
            out.append(("r", Reading(param="spo2", value=float(spo2), unit="%"), now))
            out.append(("r", Reading(param="pr", value=float(round(hr + rng.normal(0, 1))), unit="bpm",
                                     source="spo2"), now))
        count += 3
        if s % 300 == 0:
            high = (s // 300) % 4 == 3
            sys_ = 190.0 if high else 128.0 + rng.normal(0, 5)
            dia = 112.0 if high else 78.0 + rng.normal(0, 3)
            mean = dia + (sys_ - dia) / 3
            for p, v in (("nibp_sys", sys_), ("nibp_dia", dia), ("nibp_map", mean)):
                out.append(("r", Reading(param=p, value=float(round(v)), unit="mmHg", device_time=now), now))
            count += 3
        if s % 97 == 50:
            out.append(("a", None, now))
        if s % 900 == 0:  # staff record MOAA/S every 15 min (scales, (d)): the combined
            # sedation + desaturation condition stays live through the whole stream
            out.append(("o", ObservationRecorded(t=now, scale="moaas", score=3, author="RN"), now))
            out.append(("o", ObservationRecorded(t=now, scale="htn_symptoms", items={"headache": (s // 900) % 8 == 7},
                                                 author="RN"), now))
        out.append(("t", None, now))
        s += 1
    return out, count


def run_once(stream, profile) -> tuple[float, float, int]:
    e = AlarmEngine(profile, t0=T0, template=load_template("generic"))  # NIBP every 5 min while infusing
    e.set_phase("infusion", T0)
    e.set_infusing(True, T0)
    e.set_baseline(128.0, 78.0, 74.0, 97.0)
    e.on_observation(ObservationRecorded(t=T0, scale="moaas", score=3, author="RN"), T0)
    e.on_observation(ObservationRecorded(t=T0, scale="htn_symptoms", items={"headache": False}, author="RN"), T0)
    on_reading, tick, ack, obs = e.on_reading, e.tick, e.acknowledge, e.on_observation
    n_events = 0
    start = time.perf_counter()
    cpu0 = time.process_time()
    for kind, obj, now in stream:
        if kind == "r":
            n_events += len(on_reading(obj, now))
        elif kind == "t":
            n_events += len(tick(now))
        elif kind == "o":
            n_events += len(obs(obj, now))
        else:
            n_events += len(ack(None, "RN", now))
    return time.perf_counter() - start, time.process_time() - cpu0, n_events


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    n, runs = (60_000, 3) if quick else (600_000, 7)
    profile = load_profile("standard")
    stream, count = build_stream(n)
    rates = []
    cpu_rates = []
    events = 0
    for _ in range(runs):
        elapsed, cpu, events = run_once(stream, profile)
        rates.append(count / elapsed)
        cpu_rates.append(count / max(cpu, 1e-9))
    med = statistics.median(rates)
    cpu_med = statistics.median(cpu_rates)
    print(f"alarm engine, standard profile, infusion phase, all rules active{' (quick)' if quick else ''}")
    print(f"readings per run: {count:,}  (simulated {sum(1 for k, _, _ in stream if k == 't'):,} s), "
          f"alarm events per run: {events:,}")
    print(f"readings/s: median {med:,.0f}  (min {min(rates):,.0f}, max {max(rates):,.0f}, {runs} runs)")
    print(f"readings/s by process CPU time (insensitive to other load): median {cpu_med:,.0f}")
    print(f"us per reading (incl. ticks): {1e6 / med:.2f} wall, {1e6 / cpu_med:.2f} cpu")
    print(f"ratio to target {TARGET:,}/s: {med / TARGET:.2f}x  {'OK' if med >= TARGET else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
