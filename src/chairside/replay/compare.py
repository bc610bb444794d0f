"""Recorded alarms against the alarms the engine recomputed on a replay.

Owns: ``AlarmDifference`` (one unpaired or moved alarm event, with its one-line text) and
``compare_alarms``. Events are worded by ``chairside.domain.describe``. Pure.
Must not import: textual, chairside.ui, chairside.service.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chairside.domain.describe import describe

COMPARED_KINDS = ("alarm_raised", "alarm_escalated", "alarm_acknowledged", "alarm_cleared")


@dataclass(frozen=True)
class AlarmDifference:
    """A recorded alarm event with no recomputed counterpart, or the reverse, or one whose
    time moved by more than the tolerance."""

    what: str  # "recorded only", "recomputed only", "time differs"
    kind: str
    rule: str
    priority: str
    t: datetime
    other_t: datetime | None = None
    alarm_id: str = ""
    text: str = ""
    seq: int | None = None  # the recorded event's own number (never the replay's)

    def line(self, start: datetime | None = None) -> str:
        at = _clock(self.t, start)
        extra = f" (recomputed at {_clock(self.other_t, start)})" if self.other_t is not None else ""
        num = f" #{self.seq}" if self.seq is not None and self.seq >= 0 else ""
        return f"{at}  {self.what}{num}: {self.kind.removeprefix('alarm_')} {self.rule or self.alarm_id}" \
               f"{' ' + self.priority if self.priority else ''}{extra}{': ' + self.text if self.text else ''}"


def alarm_key(ev: Any) -> tuple[str, str, str]:
    prio = getattr(ev, "priority", None) or getattr(ev, "to_priority", None) or ""
    return ev.kind, ev.rule or ev.alarm_id.split("#", 1)[0], prio


def compare_alarms(recorded: Iterable[Any], recomputed: Iterable[Any], *, tolerance_s: float,
                   until: datetime | None = None) -> list[AlarmDifference]:
    """Pair recorded and recomputed alarm events of the same kind, rule and priority in time
    order; report the unpaired ones and the pairs further apart than ``tolerance_s``."""
    def keep(ev: Any) -> bool:
        return ev.kind in COMPARED_KINDS and (until is None or ev.t <= until)

    rec: dict[tuple[str, str, str], list[Any]] = {}
    new: dict[tuple[str, str, str], list[Any]] = {}
    for ev in filter(keep, recorded):
        rec.setdefault(alarm_key(ev), []).append(ev)
    for ev in filter(keep, recomputed):
        new.setdefault(alarm_key(ev), []).append(ev)
    out: list[AlarmDifference] = []
    for key in sorted(set(rec) | set(new)):
        a = sorted(rec.get(key, []), key=lambda e: e.t)
        b = sorted(new.get(key, []), key=lambda e: e.t)
        only_a: list[Any] = []
        only_b: list[Any] = []
        i = j = 0
        while i < len(a) and j < len(b):
            dt = (b[j].t - a[i].t).total_seconds()
            if abs(dt) <= tolerance_s:
                i, j = i + 1, j + 1
            elif dt > 0:
                only_a.append(a[i])
                i += 1
            else:
                only_b.append(b[j])
                j += 1
        only_a += a[i:]
        only_b += b[j:]
        kind, rule, prio = key
        n = min(len(only_a), len(only_b))
        for x, y in zip(only_a[:n], only_b[:n], strict=True):
            out.append(AlarmDifference("time differs", kind, rule, prio, x.t, y.t, x.alarm_id, describe(x), x.seq))
        for x in only_a[n:]:
            out.append(AlarmDifference("recorded only", kind, rule, prio, x.t, None, x.alarm_id, describe(x),
                                       x.seq))
        for y in only_b[n:]:
            out.append(AlarmDifference("recomputed only", kind, rule, prio, y.t, None, y.alarm_id,
                                       describe(y)))
    out.sort(key=lambda d: d.t)
    return out


def _clock(t: datetime | None, start: datetime | None) -> str:
    if t is None:
        return "--:--:--"
    if start is None:
        return f"{t:%H:%M:%S}"
    s = int(round((t - start).total_seconds()))
    sign = "-" if s < 0 else "+"
    s = abs(s)
    return f"{sign}{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"
