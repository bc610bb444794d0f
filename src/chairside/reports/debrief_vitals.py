"""The debrief's vital signs: what the patient's SBP, DBP, HR and SpO2 did over the run.

Owns: ``vital_figures`` (per parameter its nadir and peak with their times, and the time
spent beyond each limit of the session's limits profile) and ``truth_figures`` (for a
simulated run that recorded the patient's true physiology: what the physiology did beside
what the monitor showed), and the series the debrief's chart draws (``chart_series``).
How long a reading counts comes from ``data/reports/debrief.toml``; limits come from the
limits profile of the session's protocol (``chairside.alarms.profile``).
Pure functions of the events. Must not import: textual, chairside.ui, chairside.service.
"""

from __future__ import annotations

import tomllib
from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from chairside.reports.common import DATA, LimitLine, Point, vital_series

VITALS = (("nibp_sys", "SBP", "mmHg"), ("nibp_dia", "DBP", "mmHg"), ("hr", "HR", "/min"), ("spo2", "SpO2", "%"))
# the simulator's true value for each displayed parameter (chairside.training.TRUTH_FIELDS)
TRUE_OF = {"nibp_sys": "sbp", "nibp_dia": "dbp", "hr": "hr", "pr": "pr", "spo2": "sao2"}
_BEYOND: dict[str, Callable[[float, float], bool]] = {
    "<": lambda v, lim: v < lim, "<=": lambda v, lim: v <= lim,
    ">": lambda v, lim: v > lim, ">=": lambda v, lim: v >= lim,
}


@cache
def config() -> dict[str, Any]:
    """``data/reports/debrief.toml``."""
    return tomllib.loads((DATA / "reports" / "debrief.toml").read_text(encoding="utf-8"))


def _held(points: Sequence[Point], end: datetime, hold_max_s: float) -> list[tuple[Point, float]]:
    """Each reading with the seconds it stands for: until the next reading of its parameter
    (valid or not), at most ``hold_max_s`` (a gap in the record is no time at any value)."""
    out = []
    for i, p in enumerate(points):
        nxt = points[i + 1].t if i + 1 < len(points) else end
        out.append((p, max(0.0, min((nxt - p.t).total_seconds(), hold_max_s))))
    return out


def vital_figures(events: Sequence[Any], rel: Callable[[datetime], float], limits: Sequence[LimitLine],
                  end: datetime) -> list[dict[str, Any]]:
    """Per parameter of ``VITALS``: readings, nadir and peak (value, time from time zero), and
    the time beyond each absolute limit of the profile (any phase it applies to)."""
    cfg = config()["vitals"]
    series = vital_series(events)
    out = []
    for prm, label, unit in VITALS:
        pts = series.get(prm, [])
        valid = [p for p in pts if p.value is not None]
        fig: dict[str, Any] = {"param": prm, "label": label, "unit": unit, "readings": len(pts),
                               "without_value": len(pts) - len(valid), "nadir": None, "peak": None, "beyond": []}
        if valid:
            lo = min(valid, key=lambda p: (p.value, p.t))
            hi = max(valid, key=lambda p: (p.value, -p.t.timestamp()))
            fig["nadir"] = {"value": lo.value, "t_s": rel(lo.t)}
            fig["peak"] = {"value": hi.value, "t_s": rel(hi.t)}
            hold = float(cfg["nibp_hold_max_s"] if prm.startswith("nibp") else cfg["hold_max_s"])
            held = _held(pts, end, hold)
            seen: dict[tuple[str, float], dict[str, Any]] = {}
            for lim in limits:
                if lim.param != prm or lim.relative or lim.symbol not in _BEYOND:
                    continue
                key = (lim.symbol, lim.value)
                if key in seen:
                    seen[key]["priorities"] = sorted({*seen[key]["priorities"], lim.priority})
                    continue
                test = _BEYOND[lim.symbol]
                secs = sum(s for p, s in held if p.value is not None and test(p.value, lim.value))
                seen[key] = {"op": lim.symbol, "limit": lim.value, "priorities": [lim.priority],
                             "source": lim.source_tag, "seconds": round(secs, 1)}
            fig["beyond"] = sorted(seen.values(), key=lambda b: (b["op"], b["limit"]))
        out.append(fig)
    return out


def truth_samples(training: Sequence[Any], t0: datetime) -> dict[str, list[Point]]:
    """The true physiology the run recorded, as series keyed ``true:<displayed param>``."""
    out: dict[str, list[Point]] = {}
    for e in training:
        if e.action != "truth":
            continue
        fields = list(e.args.get("fields", ()))
        for row in e.args.get("samples", ()):
            rec = dict(zip(fields, row, strict=False))
            t = t0 + timedelta(seconds=float(rec["t"]))
            for prm, name in TRUE_OF.items():
                if name in rec:
                    out.setdefault(f"true:{prm}", []).append(Point(t, rec[name], None, e.seq))  # type: ignore[arg-type]
    for v in out.values():
        v.sort(key=lambda p: p.t)
    return out


def truth_figures(events: Sequence[Any], truth: dict[str, list[Point]], rel: Callable[[datetime], float],
                  end: datetime) -> list[dict[str, Any]]:
    """Per parameter: the range of the true values and of the displayed ones, the time the
    monitor showed no value while the patient had one, and the largest difference between
    a displayed reading and the true value at that moment."""
    if not truth:
        return []
    cfg = config()["vitals"]
    series = vital_series(events)
    out = []
    for prm, label, unit in VITALS:
        tr = [p for p in truth.get(f"true:{prm}", []) if p.value is not None]
        shown = series.get(prm, [])
        if not tr:
            continue
        valid = [p for p in shown if p.value is not None]
        hold = float(cfg["nibp_hold_max_s"] if prm.startswith("nibp") else cfg["hold_max_s"])
        no_value = sum(s for p, s in _held(shown, end, hold) if p.value is None)
        times = [p.t for p in tr]
        worst: dict[str, Any] | None = None
        for p in valid:
            q = _nearest(tr, times, p.t)
            if q is None or abs((q.t - p.t).total_seconds()) > float(config()["truth"]["match_s"]):
                continue
            d = p.value - q.value
            if worst is None or abs(d) > abs(worst["difference"]):
                worst = {"t_s": rel(p.t), "shown": p.value, "true": q.value, "difference": round(d, 1)}
        out.append({"param": prm, "label": label, "unit": unit,
                    "true_min": min(p.value for p in tr), "true_max": max(p.value for p in tr),
                    "shown_min": min((p.value for p in valid), default=None),
                    "shown_max": max((p.value for p in valid), default=None),
                    "no_value_s": round(no_value, 1), "largest_difference": worst})
    return out


def _nearest(points: Sequence[Point], times: Sequence[datetime], t: datetime) -> Point | None:
    i = bisect_left(times, t)
    cands = [points[j] for j in (i - 1, i) if 0 <= j < len(points)]
    return min(cands, key=lambda p: abs((p.t - t).total_seconds())) if cands else None


def chart_series(events: Sequence[Any], truth: dict[str, list[Point]]) -> dict[str, list[Point]]:
    """What the debrief's chart draws: the displayed readings and, when recorded, the truth."""
    return {**vital_series(events), **truth}
