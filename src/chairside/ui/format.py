"""Text formatting for the console: numbers, ages, durations, alarm markers.

Owns: small pure functions shared by the widgets (no Textual objects here, so they are
trivially testable). Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from datetime import datetime

from chairside.domain.clock import elapsed_text
from chairside.service_model import MARKERS

DASHES = "---"


def num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return DASHES
    return f"{v:.{digits}f}"


def age(seconds: float | None) -> str:
    """'12 s', '3 min', '1 h 05' ago; '' when unknown."""
    if seconds is None:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    return f"{s // 3600} h {s % 3600 // 60:02d} ago"


def duration(seconds: float | None) -> str:
    """'mm:ss' or 'h:mm:ss' ('--:--' when unknown)."""
    return elapsed_text(seconds)


def clock(t: datetime | None) -> str:
    return "--:--:--" if t is None else t.strftime("%H:%M:%S")


def marker(priority: str | None) -> str:
    return MARKERS.get(priority or "", "")


def limits(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return ""
    lo = "" if low is None else f"{low:g}"
    hi = "" if high is None else f"{high:g}"
    if not lo:
        return f"hi {hi}"
    if not hi:
        return f"lo {lo}"
    return f"{lo}–{hi}"


PHASE_TEXT = {
    "pre_infusion": "PRE-INFUSION",
    "infusion": "INFUSION",
    "recovery": "RECOVERY",
    "discharged": "DISCHARGED",
}
