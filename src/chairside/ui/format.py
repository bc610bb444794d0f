"""Text formatting for the console: numbers, ages, durations, alarm markers.

Owns: small pure functions shared by the widgets (no Textual objects here, so they are
trivially testable). Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from datetime import datetime

from chairside.domain.clock import elapsed_text
from chairside.service.model import MARKERS

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


# ---------------------------------------------------------------------- fitting a width
# At 80x24 nothing is cut mid-word (issue 17): a line too long for its widget drops whole
# parts, takes a shorter wording, or ends at a word boundary with "…".

def fit_words(text: str, width: int) -> str:
    """``text`` if it fits ``width`` cells, else cut after the last whole word that leaves
    room for " …" (never inside a word; the space says the word before it is whole)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    cut = text[: max(0, width - 2)]  # room for " …"
    if text[len(cut)] == " ":  # the cut falls on a space: the last word is whole
        space = len(cut)
    else:
        space = cut.rfind(" ")
    if space <= 0:
        return "…"
    return cut[:space].rstrip(" ·,;:—-") + " …"


def fit_parts(parts: "list[str | tuple[str, ...]]", width: int, *, sep: str = " · ",
              keep: int = 1) -> str:
    """Join ``parts`` with ``sep`` in ``width`` cells: a part given as a tuple of wordings
    (longest first) takes a shorter one first, then parts are dropped from the end (the first
    ``keep`` parts stay); what is left over is cut at a word boundary."""
    options = [p if isinstance(p, tuple) else (p,) for p in parts if p]
    choice = [0] * len(options)
    n = len(options)

    def text() -> str:
        return sep.join(options[i][choice[i]] for i in range(n) if options[i][choice[i]])

    while len(text()) > width:
        shorter = [i for i in range(n - 1, -1, -1) if choice[i] < len(options[i]) - 1]
        if shorter:
            choice[shorter[0]] += 1
        elif n > keep:
            n -= 1
        else:
            break
    return fit_words(text(), width)
