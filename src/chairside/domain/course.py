"""The course of treatment: which session of the template's planned count this is, and what
the previous session of the same patient pseudonym gave.

Owns: ``session_summary`` (a folded session's dose in mg and mg/kg, peak BP, protocol,
dates), ``course_position`` (n of the planned count from the earlier sessions' summaries)
and ``previous_for`` (the latest earlier summary, as recorded in ``session_opened``).
Must not import: anything outside stdlib; of chairside only ``chairside.domain``. Finding
the session files is the caller's I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any


def session_summary(state: Any) -> dict[str, Any]:
    """What the record of a session says about its dose and its BP: ``session_id``,
    ``protocol``, ``opened``, ``dose_mg`` (infusion totals or devices), ``dose_mg_kg``,
    ``peak_sbp``/``peak_dbp`` (the highest measured; None without a BP), ``dosed``."""
    from chairside.domain.dose import totals

    s = state.session
    inf = state.infusion
    dose_mg: float | None = None
    dose_mg_kg: float | None = None
    if inf.status != "not_started":
        end = inf.stopped_t or state.last_t
        if end is not None:
            tot = totals(state, end)
            dose_mg, dose_mg_kg = tot.mg, tot.mg_kg
    dev = getattr(state, "device_doses", None)
    if dev is not None and dev.count:
        dose_mg = (dose_mg or 0.0) + dev.total_mg
    sys_ = [e[2] for e in state.nibp_log if e[2] is not None]
    dia = [e[3] for e in state.nibp_log if e[3] is not None]
    return {
        "session_id": s.session_id if s else "", "protocol": s.protocol if s else "",
        "opened": s.opened_t.isoformat() if s else None,
        "dose_mg": None if dose_mg is None else round(dose_mg, 3),
        "dose_mg_kg": None if dose_mg_kg is None else round(dose_mg_kg, 4),
        "peak_sbp": max(sys_) if sys_ else None, "peak_dbp": max(dia) if dia else None,
        "dosed": bool(dose_mg),
    }


def course_position(summaries: Iterable[dict[str, Any]], protocol: str, planned: int | None) -> tuple[int, int | None]:
    """(n, planned): this session is the n-th dosed session of ``protocol`` for the patient."""
    n = 1 + sum(1 for s in summaries if s.get("dosed") and s.get("protocol") == protocol)
    return n, planned


def previous_for(summaries: Iterable[dict[str, Any]], before: datetime | None = None) -> dict[str, Any]:
    """The latest earlier dosed session's summary ({} when there is none)."""
    best: dict[str, Any] = {}
    for s in summaries:
        if not s.get("dosed") or not s.get("opened"):
            continue
        opened = datetime.fromisoformat(s["opened"])
        if before is not None and opened >= before:
            continue
        if not best or opened > datetime.fromisoformat(best["opened"]):
            best = s
    return dict(best)
