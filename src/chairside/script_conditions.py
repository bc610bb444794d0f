"""What a scripted nurse waits for: conditions on what the console shows.

Owns: the ``when`` field of a scripted-session step (``chairside train --script``): a step
with ``when`` is done at the first simulated second, from its ``at`` on, at which the
condition holds on the console's own screen state (the service's snapshot), as a nurse
acts on what the monitor shows, never on the simulator's hidden truth. Grammar: terms
joined by ``and`` / ``or`` (``and`` binds tighter):

- ``<vital> <op> <number>``: ``hr``, ``pr``, ``spo2``, ``nibp_sys``, ``nibp_dia``,
  ``nibp_map``, ``rr`` with ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=`` (a missing value
  makes the term false, never a zero);
- ``<vital> missing``: the tile shows dashes for a reason (probe off, no data from the
  monitor...), not merely "no data yet";
- ``nibp failed``: the monitor reported a failed NIBP measurement (a technical alarm about
  the cuff or the measurement is active);
- ``alarm <word>``: an active alarm whose text or rule contains the word.

``parse_when`` refuses a bad condition with the reason (the script loader adds the file,
step and field). Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

__all__ = ["Condition", "parse_when"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt}
# vital -> (tile key, which value of the tile)
VITALS: dict[str, tuple[str, str]] = {
    "hr": ("hr", "value"), "pr": ("pr", "value"), "spo2": ("spo2", "value"), "rr": ("rr", "value"),
    "nibp_sys": ("nibp", "value"), "nibp_dia": ("nibp", "value2"), "nibp_map": ("nibp", "value3"),
}
_COMPARE = re.compile(r"^([a-z_0-9]+)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)$")
_MISSING = re.compile(r"^([a-z_0-9]+)\s+missing$")
_ALARM = re.compile(r"^alarm\s+(.+)$")
_NOT_YET = ("no data yet",)

Term = Callable[[Any], bool]


def _tile_value(snap: Any, vital: str) -> float | None:
    key, attr = VITALS[vital]
    tile = snap.tile(key)
    return None if tile is None else getattr(tile, attr)


def _compare(vital: str, op: str, num: float) -> Term:
    fn = _OPS[op]

    def term(snap: Any) -> bool:
        v = _tile_value(snap, vital)
        return v is not None and fn(v, num)
    return term


def _missing(vital: str) -> Term:
    def term(snap: Any) -> bool:
        key, _ = VITALS[vital]
        tile = snap.tile(key)
        if tile is None or _tile_value(snap, vital) is not None:
            return False
        reason = (tile.missing_reason or "").lower()
        return bool(reason) and not any(reason.startswith(n) for n in _NOT_YET)
    return term


def _alarm(word: str) -> Term:
    w = word.lower()

    def term(snap: Any) -> bool:
        return any(w in f"{a.message} {a.rule} {a.param or ''}".lower() for a in snap.alarms)
    return term


def _nibp_failed(snap: Any) -> bool:
    for a in snap.alarms:
        text = f"{a.message} {a.rule}".lower()
        if a.alarm_class == "technical" and ("nibp" in text or "cuff" in text) and (
                "fail" in text or "cuff" in text):
            return True
    tile = snap.tile("nibp")
    return tile is not None and "fail" in (tile.missing_reason or "").lower()


class Condition:
    """A parsed ``when``: ``holds(snapshot)``."""

    def __init__(self, text: str, groups: list[list[Term]]) -> None:
        self.text = text
        self._groups = groups

    def holds(self, snap: Any) -> bool:
        return any(all(t(snap) for t in g) for g in self._groups)

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def parse_when(text: str) -> Condition:
    """Parse a ``when`` condition; ValueError naming the part it cannot read."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("give a condition, e.g. 'spo2 < 90' or 'nibp_sys >= 180 or nibp_dia >= 110'")
    groups: list[list[Term]] = []
    for alt in re.split(r"\s+or\s+", text.strip()):
        group: list[Term] = []
        for part in re.split(r"\s+and\s+", alt.strip()):
            part = part.strip()
            if m := _COMPARE.match(part):
                vital, op, num = m.groups()
                if vital not in VITALS:
                    raise ValueError(f"unknown vital {vital!r} in {part!r}; vitals: {', '.join(VITALS)}")
                group.append(_compare(vital, op, float(num)))
            elif m := _MISSING.match(part):
                if m.group(1) not in VITALS:
                    raise ValueError(f"unknown vital {m.group(1)!r} in {part!r}; vitals: {', '.join(VITALS)}")
                group.append(_missing(m.group(1)))
            elif part == "nibp failed":
                group.append(_nibp_failed)
            elif m := _ALARM.match(part):
                group.append(_alarm(m.group(1).strip()))
            else:
                raise ValueError(f"cannot read {part!r}: expected e.g. 'spo2 < 90', 'spo2 missing', "
                                 "'nibp failed' or 'alarm <word>'")
        groups.append(group)
    return Condition(text, groups)
