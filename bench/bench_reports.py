"""Report benchmarks: HTML report, FHIR bundle and REMS fields of a long session.

    .venv/bin/python bench/bench_reports.py [--quick]

Builds a session in memory (1-Hz HR, PR and SpO2 with one ``readings_recorded`` event per
second, as the store's group commit writes them, NIBP every 5 min, a few clinical events) and
prints the median time to render each report, its size, and the events handled per second.
Target: a 2-hour session's HTML report in well under 10 s on a 2-core machine (a nurse
waits for it at discharge).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

from chairside.domain import events as ev
from chairside.domain.readings import Reading
from chairside.reports import fhir as report_fhir, html as report_html, rems as report_rems


def build(hours: float) -> list:
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    out: list = [ev.SessionOpened(t=t0, author="KB", session_id="BENCH", patient_id="P-B", weight_kg=70,
                                  protocol="iv-ketamine-depression", staff=("KB",))]
    n = int(hours * 3600)
    start, stop = min(600, n // 4), min(n - 1, 600 + 2400)  # a record the state accepts: started before stopped
    for k in range(1, n):
        t = t0 + timedelta(seconds=k)
        rs = [Reading(param="hr", value=70 + (k % 7), unit="bpm", device_time=t, source="ecg"),
              Reading(param="pr", value=70 + (k % 5), unit="bpm", device_time=t, source="spo2"),
              Reading(param="spo2", value=97 - (k % 3), unit="%", device_time=t, source="spo2")]
        if k % 300 == 0:
            rs += [Reading(param="nibp_sys", value=120 + (k % 40), unit="mmHg", device_time=t, source="nibp"),
                   Reading(param="nibp_dia", value=75 + (k % 20), unit="mmHg", device_time=t, source="nibp"),
                   Reading(param="nibp_map", value=90 + (k % 25), unit="mmHg", device_time=t, source="nibp")]
        out.append(ev.ReadingsRecorded(t=t, author="DEV", readings=tuple(rs), count=len(rs)))
        if k == start:
            out.append(ev.PhaseChanged(t=t, from_phase="pre_infusion", to_phase="infusion"))
            out.append(ev.InfusionStarted(t=t, author="KB", concentration_mg_ml=0.35, rate_mg_kg_h=0.75,
                                          rate_ml_h=150, lot="L1"))
        if k == stop:
            out.append(ev.InfusionStopped(t=t, author="KB"))
            out.append(ev.PhaseChanged(t=t, from_phase="infusion", to_phase="recovery"))
        if k % 900 == 0:
            out.append(ev.ObservationRecorded(t=t, author="KB", scale="moaas", score=5))
    out.append(ev.SessionClosed(t=t0 + timedelta(seconds=n)))
    return [e.model_copy(update={"seq": i + 1}) for i, e in enumerate(out)]


def timeit(fn, runs: int) -> tuple[float, object]:
    times, res = [], None
    for _ in range(runs):
        a = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - a)
    return statistics.median(times), res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10-minute session, one run (smoke test)")
    args = ap.parse_args()
    hours, runs = (1 / 6, 1) if args.quick else (2.0, 3)
    events = build(hours)
    n = len(events)
    readings = sum(len(e.readings) for e in events if e.kind == "readings_recorded")
    print(f"session: {hours:g} h, {n} events, {readings} readings")
    t, html = timeit(lambda: report_html.render(events, last_hash="0" * 64), runs)
    print(f"html render   median {t:7.3f} s  {len(html) / 1e6:6.2f} MB  {n / t:10.0f} events/s")
    t, b = timeit(lambda: report_fhir.bundle(events), runs)
    t2, js = timeit(lambda: json.dumps(b), runs)
    print(f"fhir bundle   median {t:7.3f} s  {len(b['entry'])} resources  {readings / t:10.0f} readings/s;"
          f" json {t2:.3f} s {len(js) / 1e6:.1f} MB")
    t, _ = timeit(lambda: report_rems.fields(events), runs)
    print(f"rems fields   median {t:7.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
