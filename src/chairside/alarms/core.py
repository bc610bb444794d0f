"""What every rule family of the alarm engine shares: the active-alarm list and its
lifecycle (raise, escalate, condition gone, clear), the latest values, and the engine's
shadow of the session (phase, infusing, baseline, NIBP schedule) that events feed.

Owns: ``ActiveAlarm``, ``LimitView``, ``AlarmOffRefused``, ``Core`` and the small helpers
the families use (``fmt``, ``OPS``, ``NAMES``, ``EPS``, the NIBP parameter names).
Every number comes from the ``LimitsProfile`` or the protocol template; none is written here.
Deterministic: time is the ``now`` the caller passes; no clock, no I/O.
May import: chairside.domain, chairside.alarms.profile, stdlib. Must not import: textual,
serial, sqlite3, chairside.store, chairside.transport, chairside.service, chairside.ui.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from chairside.alarms.profile import PRIORITY_RANK, LimitsProfile
from chairside.domain.events import AlarmCleared, AlarmEscalated, AlarmRaised
from chairside.domain.protocol import ProtocolTemplate, bp_cadence_s

__all__ = ["ActiveAlarm", "AlarmOffRefused", "Core", "LimitView"]

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le,
}
NAMES = {rank: name for name, rank in PRIORITY_RANK.items()}
HIGH = PRIORITY_RANK["high"]
MEDIUM = PRIORITY_RANK["medium"]
EPS = 1e-9
NIBP_ORDER = ("nibp_sys", "nibp_dia", "nibp_map")
NIBP = frozenset(NIBP_ORDER)
PHASES = ("pre_infusion", "infusion", "recovery", "discharged")


def fmt(x: float | None) -> str:
    return "--" if x is None else f"{x:g}"


class AlarmOffRefused(Exception):
    """Turning an alarm (or audio) off indefinitely is refused (SpO2/BP while infusing)."""


@dataclass(frozen=True)
class LimitView:
    """One limit as the screen shows it beside a value."""

    rule: str
    param: str
    priority: str
    op: str
    limit: float
    delay_s: float
    source_tag: str
    relative: bool = False


@dataclass(slots=True, eq=False)
class ActiveAlarm:
    """An alarm in the active list (a view for the UI; the events are the record).

    ``value``/``limit`` are those that raised or last escalated it (the evidence);
    ``last_value`` is the latest value seen. ``latching`` says the alarm latches;
    ``latched`` that its condition has gone and only the latch holds it.
    """

    id: str
    priority: str
    alarm_class: str
    rule: str
    param: str | None
    value: float | None
    limit: float | None
    source_tag: str
    message: str
    since: datetime
    acknowledged: bool = False
    acknowledged_by: str | None = None
    latching: bool = False
    latched: bool = False
    audio_paused_until: datetime | None = None
    last_value: float | None = None
    worst_value: float | None = None  # the worst value since raising (see ``note``)
    worse_above: bool = True  # higher values are worse (a "high" rule, a duration)
    condition: bool = True
    conditions: tuple[str, ...] = ()  # a group's conditions that hold now, the leading one first
    held_rules: tuple[str, ...] = ()  # the rules of those conditions
    # internal bookkeeping
    rank: int = 0
    level_mono: float = 0.0  # when it reached its current priority
    reannounced: bool = False
    owner: object = field(default=None, repr=False)

    @property
    def klass(self) -> str:  # "class" is a keyword; alias of alarm_class
        return self.alarm_class

    def note(self, v: float | None) -> None:
        """The latest value of the alarm's parameter; the worst since raising follows it."""
        if v is None:
            return
        self.last_value = v
        w = self.worst_value
        if w is None or (v > w if self.worse_above else v < w):
            self.worst_value = v

    @property
    def now_text(self) -> str:
        """The current value and the worst since raising, for the alarm bar (issue 15 item 7):
        "now 206, worst 210" (empty without values)."""
        if self.last_value is None:
            return ""
        if self.worst_value is None or self.worst_value == self.last_value:
            return f"now {fmt(self.last_value)}"
        return f"now {fmt(self.last_value)}, worst {fmt(self.worst_value)}"


class Core:
    """Shared state of one engine: settings from the profile, the active alarms, the latest
    values (``last``: key -> (value, mono)) and the session shadow the events feed."""

    def __init__(self, profile: LimitsProfile, t0: datetime, template: ProtocolTemplate | None,
                 phase: str) -> None:
        if t0.tzinfo is None or t0.utcoffset() is None:
            raise ValueError("t0 must be timezone-aware (UTC)")
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        self.profile = profile
        self.t0 = t0
        self.template = template
        s = profile.setting
        self.stale_factor = s("stale_factor")
        self.cont_fresh_s = s("stale_factor") * s("continuous_cadence_s")
        self.obs_fresh_s = s("stale_factor") * s("observation_cadence_s")
        self.default_cadence = {
            "pre_infusion": profile.nibp_cadence.pre_infusion.value,
            "infusion": profile.nibp_cadence.infusion.value,
            "recovery": profile.nibp_cadence.recovery.value,
            "discharged": 0.0,
        }
        self.max_cadence = max(self.default_cadence.values())
        self.latch_ranks = frozenset(PRIORITY_RANK[p] for p in profile.behaviour.latch_priorities)
        # the session shadow (fed by events through the engine's effects table)
        self.phase = phase
        self.phase_mono = 0.0
        self.infusing = False
        self.baseline: dict[str, float | None] = {"nibp_sys": None, "nibp_dia": None, "hr": None, "spo2": None}
        self.increase_mono: float | None = None  # last infusion start or rate increase
        self.rate: tuple[float, float] = (0.0, 0.0)  # running rate (mg/kg/h, mL/h)
        # alarms and values
        self.active: dict[str, ActiveAlarm] = {}
        self.counter = 0
        self.last: dict[object, tuple[float, float]] = {}
        self.off_rules: frozenset[str] = frozenset()
        self.questionable: dict[str, bool] = {}  # param -> its last valid value was questionable

    def mono(self, now: datetime) -> float:
        return (now - self.t0).total_seconds()

    # ------------------------------------------------------------------ NIBP schedule
    def scheduled_cadence(self, mono: float) -> float:
        """Seconds between scheduled NIBP checks now (0: none scheduled in this phase).
        From the protocol template (tightened after a start or a rate increase) when the
        engine has one, else the profile's ``nibp_cadence``."""
        if self.template is None:
            return self.default_cadence.get(self.phase, 0.0)
        since = None if self.increase_mono is None else mono - self.increase_mono
        c = bp_cadence_s(self.template, self.phase, since)
        return 0.0 if math.isinf(c) else float(c)

    def nibp_cadence(self, mono: float) -> float:
        """The cadence that decides whether an NIBP value is fresh (never 0)."""
        c = self.scheduled_cadence(mono)
        return c if c > 0 else self.max_cadence

    # ------------------------------------------------------------------ alarm lifecycle
    def new_alarm(self, *, rule: str, rank: int, klass: str, param: str | None, value: float | None,
                  limit: float | None, source: str, message: str, now: datetime, mono: float,
                  owner: object, out: list, worse_above: bool = True) -> ActiveAlarm:
        self.counter += 1
        latching = klass == "physiological" and rank in self.latch_ranks
        if param is not None and self.questionable.get(param):
            message = f"{message} (questionable value)"
        a = ActiveAlarm(
            id=f"{rule}#{self.counter}", priority=NAMES[rank], alarm_class=klass, rule=rule,
            param=param, value=value, limit=limit, source_tag=source, message=message, since=now,
            latching=latching, last_value=value, worst_value=value, worse_above=worse_above, rank=rank,
            level_mono=mono, owner=owner,
        )
        self.active[a.id] = a
        out.append(AlarmRaised(
            t=now, mono=mono, alarm_id=a.id, rule=rule, priority=a.priority, alarm_class=klass,  # type: ignore[arg-type]
            param=param, value=value, limit=limit, source_tag=source, message=message, latching=latching,
        ))
        return a

    def escalate(self, a: ActiveAlarm, rank: int, reason: str, now: datetime, mono: float, out: list,
                 *, value: float | None = None, limit: float | None = None, source: str | None = None,
                 message: str | None = None) -> None:
        frm = a.priority
        a.rank = rank
        a.priority = NAMES[rank]
        a.level_mono = mono
        a.reannounced = False
        a.acknowledged = False  # a worse condition needs attention again
        a.acknowledged_by = None
        a.audio_paused_until = None
        if a.alarm_class == "physiological" and rank in self.latch_ranks:
            a.latching = True
        if value is not None:
            a.value = value
            a.note(value)
        if limit is not None:
            a.limit = limit
        if source is not None:
            a.source_tag = source
        if message is not None:
            a.message = message
        out.append(AlarmEscalated(
            t=now, mono=mono, alarm_id=a.id, rule=a.rule, from_priority=frm, to_priority=a.priority,  # type: ignore[arg-type]
            reason=reason, value=a.last_value if value is None else value,
            limit=a.limit if limit is not None else None, source_tag=source or "",
        ))

    def clear(self, a: ActiveAlarm, reason: str, now: datetime, mono: float, out: list,
              value: float | None = None) -> None:
        self.active.pop(a.id, None)
        owner = a.owner
        if owner is not None and getattr(owner, "alarm", None) is a:
            owner.alarm = None  # type: ignore[attr-defined]
        out.append(AlarmCleared(
            t=now, mono=mono, alarm_id=a.id, rule=a.rule,
            value=a.last_value if value is None else value, reason=reason,
        ))

    def condition_gone(self, a: ActiveAlarm, reason: str, now: datetime, mono: float, out: list,
                       value: float | None = None) -> None:
        a.condition = False
        a.note(value)
        if a.latching and not a.acknowledged:
            a.latched = True  # held by the latch until acknowledged
        else:
            self.clear(a, reason, now, mono, out, value)

    def sorted_active(self, alarm_class: str | None = None) -> list[ActiveAlarm]:
        alarms = self.active.values()
        if alarm_class is not None:
            alarms = [a for a in alarms if a.alarm_class == alarm_class]
        return sorted(alarms, key=lambda a: (-a.rank, a.since, a.id))
