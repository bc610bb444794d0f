"""The alarm engine: phase-aware limits, priorities, delays and hysteresis, NIBP
escalation, latching, acknowledgement, audio pause / audio off / alarm off with reminders,
time escalation, technical alarms and combined conditions.

Owns: ``AlarmEngine``, ``ActiveAlarm``, ``GateResult``, ``LimitView``, ``AlarmOffRefused``.
Every number comes from a ``LimitsProfile`` (TOML with source tags); none is written here.
Pure and deterministic: the caller passes ``now`` (timezone-aware UTC) into every call;
there is no clock read, no I/O and no randomness. State changes come out as domain events
(``AlarmRaised``/``Escalated``/``Acknowledged``/``Silenced``/``Cleared``, ``seq=-1``).
May import: chairside.domain, chairside.alarms.profile, stdlib. Must not import: textual,
serial, sqlite3, chairside.store, chairside.transport, chairside.service, chairside.ui.

Semantics worth knowing (the tests check them):

* One alarm per rule ("ladder"). Its priority is the highest tier met; while it is active its
  priority never drops. It clears once the value is back inside the ladder's least severe
  limit by ``clear_margin``. High physiological alarms latch: once the condition has gone
  they stay (``latched=True``) until acknowledged.
* Continuous signals (SpO2, HR, PR) need the value beyond a tier's limit on every valid
  reading for the tier's delay; a missing, flagged or implausible reading restarts the delay.
  Delays complete on a later reading or on ``tick`` while the last reading is fresh.
* NIBP readings of one measurement (same time) are evaluated together once the set is
  complete (sys, dia, mean), or at the next non-NIBP input or ``tick``: a pair with
  SBP <= DBP is a technical condition and feeds no physiological rule.
* A missing SpO2 (value None, invalid, or flagged sensor_off / no_sensor / marker...) never
  feeds the SpO2-low rule; it starts the technical "SpO2 lost" timer instead.
* ``set_phase`` / ``set_infusing`` return events too (alarms cleared because their rule
  does not apply in the new phase; alarm-off cancelled when an infusion starts).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chairside.alarms.profile import PRIORITY_RANK, Combined, Ladder, LimitsProfile, Term, Tier
from chairside.domain.events import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmEscalated,
    AlarmRaised,
    AlarmSilenced,
    ObservationRecorded,
)
from chairside.domain.readings import DeviceStatus, Reading

__all__ = ["ActiveAlarm", "AlarmEngine", "AlarmOffRefused", "GateResult", "LimitView"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le,
}
_NAMES = {rank: name for name, rank in PRIORITY_RANK.items()}
_HIGH = PRIORITY_RANK["high"]
_MEDIUM = PRIORITY_RANK["medium"]
_ITEM = "item:"
_EPS = 1e-9
_NIBP_ORDER = ("nibp_sys", "nibp_dia", "nibp_map")
_NIBP = frozenset(_NIBP_ORDER)


class AlarmOffRefused(Exception):
    """Turning an alarm (or audio) off indefinitely is refused (SpO2/BP while infusing)."""


@dataclass(frozen=True)
class GateResult:
    """The pre-infusion gate on the baseline values.

    ``level`` is the highest level reached (None when every value is inside),
    ``blocks_start`` whether START needs a prescriber's override with a reason.
    """

    level: str | None
    blocks_start: bool
    reasons: tuple[str, ...] = ()
    source_tags: tuple[str, ...] = ()

    def may_start(self, override_reason: str = "") -> bool:
        """True when the infusion may start: nothing blocks, or an override reason is given."""
        return not self.blocks_start or bool(override_reason.strip())


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
    condition: bool = True
    # internal bookkeeping
    rank: int = 0
    level_mono: float = 0.0  # when it reached its current priority
    reannounced: bool = False
    owner: object = field(default=None, repr=False)

    @property
    def klass(self) -> str:  # "class" is a keyword; alias of alarm_class
        return self.alarm_class


class _CTier:
    __slots__ = ("limit", "delay", "rank", "confirm", "esc_after", "esc_rank", "source", "delta")

    def __init__(self, t: Tier, limit: float) -> None:
        self.limit = limit
        self.delta = t.limit
        self.delay = t.delay
        self.rank = PRIORITY_RANK[t.priority]
        self.confirm = t.confirm
        self.esc_after = t.escalate_after
        self.esc_rank = PRIORITY_RANK[t.escalate_to] if t.escalate_to else 0
        self.source = t.source


class _LadderState:
    __slots__ = ("rule", "name", "key", "observation", "continuous", "beyond", "above", "tiers",
                 "outer", "clear_limit", "since", "consec", "pending", "alarm", "last",
                 "active", "margin", "base")

    def __init__(self, rule: Ladder) -> None:
        self.rule = rule
        self.name = rule.name
        self.key = rule.key
        self.observation = rule.scale is not None
        self.continuous = rule.param is not None and rule.param not in _NIBP
        self.beyond = _OPS[rule.op]
        self.above = rule.op in (">=", ">")
        self.margin = rule.clear_margin.value if rule.clear_margin is not None else 0.0
        self.tiers: list[_CTier] = []
        self.outer = 0.0
        self.clear_limit = 0.0
        self.since: list[float | None] = []
        self.consec: list[int] = []
        self.pending = False
        self.alarm: ActiveAlarm | None = None
        self.last: float | None = None
        self.active = False
        self.base: float | None = None


class _CombState:
    __slots__ = ("rule", "name", "terms", "since", "alarm", "active", "delay", "rank", "primary")

    def __init__(self, rule: Combined) -> None:
        self.rule = rule
        self.name = rule.name
        # (key into engine._last, op function, limit, clear limit, term)
        self.terms: list[tuple[object, Callable[[float, float], bool], float, float, Term]] = []
        for t in rule.when:
            key: object = (t.param, t.value_from) if t.value_from is not None else t.param
            above = t.op in (">=", ">")
            clear = t.limit - t.clear_margin if above else t.limit + t.clear_margin
            self.terms.append((key, _OPS[t.op], t.limit, clear, t))
        self.primary = next(x for x in self.terms if x[4].param == rule.primary)
        self.since: float | None = None
        self.alarm: ActiveAlarm | None = None
        self.active = False
        self.delay = rule.delay_s.value
        self.rank = PRIORITY_RANK[rule.priority]


class _TechState:
    __slots__ = ("name", "param", "alarm", "since")

    def __init__(self, name: str, param: str | None) -> None:
        self.name = name
        self.param = param
        self.alarm: ActiveAlarm | None = None
        self.since: float | None = None


def _obs_value(obs: ObservationRecorded, value_from: str) -> float | None:
    if value_from == "score":
        return None if obs.score is None else float(obs.score)
    items = obs.items or {}
    if value_from.startswith(_ITEM):
        v = items.get(value_from[len(_ITEM):])
        if v is None:
            return 0.0
        if isinstance(v, bool):
            return 1.0 if v else 0.0
        try:
            return float(v)
        except (TypeError, ValueError):
            return 1.0 if v else 0.0
    if value_from == "max_item":
        nums = [float(v) for v in items.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if nums:
            return max(nums)
        return None if obs.score is None else float(obs.score)
    if value_from == "count_items":
        if items:
            return float(sum(1 for v in items.values() if v))
        return None if obs.score is None else float(obs.score)
    raise ValueError(f"unknown value_from {value_from!r}")


def _fmt(x: float | None) -> str:
    return "--" if x is None else f"{x:g}"


class AlarmEngine:
    """Evaluates readings, device status and observations against a limits profile.

    All methods take ``now`` (aware UTC datetime) and return the events they cause, in order.
    """

    def __init__(
        self,
        profile: LimitsProfile,
        *,
        t0: datetime,
        nibp_cadence_s: Callable[[str, float], float] | None = None,
        phase: str = "pre_infusion",
    ) -> None:
        if t0.tzinfo is None or t0.utcoffset() is None:
            raise ValueError("t0 must be timezone-aware (UTC)")
        self.profile = profile
        self._t0 = t0
        self._cadence_fn = nibp_cadence_s
        s = profile.setting
        self._audio_pause_s = s("audio_pause_s")
        self._reminder_s = s("reminder_interval_s")
        self._reannounce_s = s("escalation_reannounce_s")
        self._esc_high_s = s("escalation_high_s")
        self._nodata_med_s = s("no_data_medium_s")
        self._nodata_high_s = s("no_data_high_s")
        self._lost_med_s = s("spo2_lost_medium_s")
        self._lost_high_s = s("spo2_lost_high_s")
        self._overdue_grace_s = s("nibp_overdue_grace_s")
        self._stale_factor = s("stale_factor")
        self._cont_fresh_s = s("stale_factor") * s("continuous_cadence_s")
        self._obs_fresh_s = s("stale_factor") * s("observation_cadence_s")
        self._default_cadence = {
            "pre_infusion": profile.nibp_cadence.pre_infusion.value,
            "infusion": profile.nibp_cadence.infusion.value,
            "recovery": profile.nibp_cadence.recovery.value,
            "discharged": 0.0,
        }
        self._max_cadence = max(self._default_cadence.values())
        b = profile.behaviour
        self._latch_ranks = frozenset(PRIORITY_RANK[p] for p in b.latch_priorities)
        self._esc_classes = frozenset(b.escalation_classes)
        self._protected = frozenset(b.protected_params_while_infusing)
        inp = profile.input
        self._invalid_flags = frozenset(inp.invalid_flags)
        self._questionable_flags = frozenset(inp.questionable_flags)
        self._questionable: dict[str, bool] = {}  # param -> its last valid value was questionable
        self._lost_status = frozenset(inp.spo2_lost_status)
        self._not_data_status = frozenset(inp.not_data_status)
        tech = profile.technical
        self._tech_rules = {
            "no_data": tech.no_data, "spo2_lost": tech.spo2_lost,
            "nibp_overdue": tech.nibp_overdue, "implausible": tech.implausible,
        }
        self._plaus: dict[str, tuple[float, float]] = {}
        for imp in profile.implausible:
            lo = imp.below.value if imp.below is not None else -math.inf
            hi = imp.above.value if imp.above is not None else math.inf
            self._plaus[imp.param] = (lo, hi)
        self._pair = profile.implausible_pair

        self._ladders = [_LadderState(ld) for ld in profile.ladder]
        self._combs = [_CombState(c) for c in profile.combined]
        self._tech: dict[str, _TechState] = {
            "no_data": _TechState("no_data", None),
            "spo2_lost": _TechState("spo2_lost", "spo2"),
            "nibp_overdue": _TechState("nibp_overdue", "nibp_sys"),
        }
        for p in self._plaus:
            self._tech[f"{p}_implausible"] = _TechState(f"{p}_implausible", p)
        if self._pair is not None:
            self._tech["nibp_implausible"] = _TechState("nibp_implausible", self._pair.high)

        self._t_nodata = self._tech["no_data"]
        self._t_lost = self._tech["spo2_lost"]
        self._lost_kinds: set[str] = set()  # SpO2-lost device conditions now active
        self._spo2_missing = False  # the latest SpO2 reading was a missing value
        self._imp_rank = PRIORITY_RANK[tech.implausible.priority]
        self._hot: dict[str, tuple] = {}
        self._phase = phase
        self._phase_mono = 0.0
        self._infusing = False
        self._baseline: dict[str, float | None] = {"nibp_sys": None, "nibp_dia": None, "hr": None, "spo2": None}
        self._active: dict[str, ActiveAlarm] = {}
        self._counter = 0
        self._last: dict[object, tuple[float, float]] = {}  # key -> (value, mono)
        self._last_data = 0.0
        self._last_nibp: float | None = None
        self._nibp_pend: dict[str, float] = {}
        self._nibp_pend_key: object = None
        self._nibp_pend_mono = 0.0
        self._nibp_seen: dict[str, object] = {}
        self._pending: dict[_LadderState, None] = {}
        self._comb_pending: dict[_CombState, None] = {}
        self._audio_off: list[float] | None = None  # [last reminder mono]
        self._audio_off_by = ""
        self._off: dict[str, tuple[frozenset[str], str, list[float]]] = {}
        self._off_rules: frozenset[str] = frozenset()
        self._by_param: dict[str, tuple[_LadderState, ...]] = {}
        self._by_scale: dict[str, tuple[_LadderState, ...]] = {}
        self._comb_by_key: dict[object, tuple[_CombState, ...]] = {}
        self._comb_obs_keys: dict[str, tuple[tuple[str, str], ...]] = {}
        self._compile()

    # ------------------------------------------------------------------ properties
    @property
    def phase(self) -> str:
        return self._phase

    @property
    def infusing(self) -> bool:
        return self._infusing

    @property
    def baseline(self) -> dict[str, float | None]:
        return dict(self._baseline)

    # ------------------------------------------------------------------ compile
    def _compile(self) -> None:
        phase = self._phase
        off = self._off_rules
        by_param: dict[str, list[_LadderState]] = {}
        by_scale: dict[str, list[_LadderState]] = {}
        for ld in self._ladders:
            rule = ld.rule
            tiers = rule.tiers_for(phase)
            base = self._baseline.get(rule.param or "") if rule.relative else 0.0
            active = bool(tiers) and ld.name not in off and base is not None
            old = {(t.rank, t.delta): (ld.since[i], ld.consec[i]) for i, t in enumerate(ld.tiers)}
            if active:
                ld.tiers = [_CTier(t, t.limit + (base or 0.0)) for t in tiers]
                lims = [t.limit for t in ld.tiers]
                ld.outer = min(lims) if ld.above else max(lims)
                ld.clear_limit = ld.outer - ld.margin if ld.above else ld.outer + ld.margin
                ld.base = base if rule.relative else None
                ld.since = [old.get((t.rank, t.delta), (None, 0))[0] for t in ld.tiers]
                ld.consec = [old.get((t.rank, t.delta), (None, 0))[1] for t in ld.tiers]
                (by_scale if ld.observation else by_param).setdefault(ld.key, []).append(ld)
            else:
                ld.tiers, ld.since, ld.consec = [], [], []
                ld.pending = False
                self._pending.pop(ld, None)
            ld.active = active
        self._by_param = {k: tuple(v) for k, v in by_param.items()}
        self._by_scale = {k: tuple(v) for k, v in by_scale.items()}
        comb_by_key: dict[object, list[_CombState]] = {}
        obs_keys: dict[str, list[tuple[str, str]]] = {}
        for cs in self._combs:
            cs.active = phase in cs.rule.phases and cs.name not in off
            if not cs.active:
                cs.since = None
                self._comb_pending.pop(cs, None)
                continue
            for key, _op, _lim, _clr, term in cs.terms:
                comb_by_key.setdefault(key, []).append(cs)
                if term.value_from is not None:
                    keys = obs_keys.setdefault(term.param, [])
                    if key not in keys:
                        keys.append(key)  # type: ignore[arg-type]
        self._comb_by_key = {k: tuple(v) for k, v in comb_by_key.items()}
        self._comb_obs_keys = {k: tuple(v) for k, v in obs_keys.items()}
        hot = {}
        params = set(self._by_param) | {k for k in self._comb_by_key if isinstance(k, str)} | set(self._plaus)
        for p in params - _NIBP:
            lo, hi = self._plaus.get(p, (-math.inf, math.inf))
            hot[p] = (lo, hi, self._tech.get(f"{p}_implausible"), self._by_param.get(p, ()),
                      self._comb_by_key.get(p, ()))
        self._hot = hot

    # ------------------------------------------------------------------ helpers
    def _mono(self, now: datetime) -> float:
        return (now - self._t0).total_seconds()

    def _new_alarm(self, *, rule: str, rank: int, klass: str, param: str | None, value: float | None,
                   limit: float | None, source: str, message: str, now: datetime, mono: float,
                   owner: object, out: list) -> ActiveAlarm:
        self._counter += 1
        latching = klass == "physiological" and rank in self._latch_ranks
        if param is not None and self._questionable.get(param):
            message = f"{message} (questionable value)"
        a = ActiveAlarm(
            id=f"{rule}#{self._counter}", priority=_NAMES[rank], alarm_class=klass, rule=rule,
            param=param, value=value, limit=limit, source_tag=source, message=message, since=now,
            latching=latching, last_value=value, rank=rank, level_mono=mono, owner=owner,
        )
        self._active[a.id] = a
        out.append(AlarmRaised(
            t=now, mono=mono, alarm_id=a.id, rule=rule, priority=a.priority, alarm_class=klass,  # type: ignore[arg-type]
            param=param, value=value, limit=limit, source_tag=source, message=message, latching=latching,
        ))
        return a

    def _escalate(self, a: ActiveAlarm, rank: int, reason: str, now: datetime, mono: float, out: list,
                  *, value: float | None = None, limit: float | None = None, source: str | None = None,
                  message: str | None = None) -> None:
        frm = a.priority
        a.rank = rank
        a.priority = _NAMES[rank]
        a.level_mono = mono
        a.reannounced = False
        a.acknowledged = False  # a worse condition needs attention again
        a.acknowledged_by = None
        a.audio_paused_until = None
        if a.alarm_class == "physiological" and rank in self._latch_ranks:
            a.latching = True
        if value is not None:
            a.value = value
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

    def _clear(self, a: ActiveAlarm, reason: str, now: datetime, mono: float, out: list,
               value: float | None = None) -> None:
        self._active.pop(a.id, None)
        owner = a.owner
        if owner is not None and getattr(owner, "alarm", None) is a:
            owner.alarm = None  # type: ignore[attr-defined]
        out.append(AlarmCleared(
            t=now, mono=mono, alarm_id=a.id, rule=a.rule,
            value=a.last_value if value is None else value, reason=reason,
        ))

    def _condition_gone(self, a: ActiveAlarm, reason: str, now: datetime, mono: float, out: list,
                        value: float | None = None) -> None:
        a.condition = False
        if value is not None:
            a.last_value = value
        if a.latching and not a.acknowledged:
            a.latched = True  # held by the latch until acknowledged
        else:
            self._clear(a, reason, now, mono, out, value)

    # ------------------------------------------------------------------ ladders
    def _message(self, ld: _LadderState, v: float, t: _CTier) -> str:
        rule = ld.rule
        if ld.base is not None:
            return f"{rule.message}: {_fmt(v)} {rule.op} baseline {_fmt(ld.base)} + {_fmt(t.delta)}"
        return f"{rule.message}: {_fmt(v)} {rule.op} {_fmt(t.limit)}"

    def _apply(self, ld: _LadderState, best: _CTier | None, rank: int, v: float, reason: str,
               now: datetime, mono: float, out: list) -> None:
        a = ld.alarm
        if best is not None:
            if a is None:
                ld.alarm = self._new_alarm(
                    rule=ld.name, rank=rank, klass="physiological", param=ld.key, value=v,
                    limit=best.limit, source=best.source, message=self._message(ld, v, best),
                    now=now, mono=mono, owner=ld, out=out,
                )
                return
            a.last_value = v
            if not a.condition:
                a.condition = True
                a.latched = False
            if rank > a.rank:
                self._escalate(a, rank, reason, now, mono, out, value=v, limit=best.limit,
                               source=best.source, message=self._message(ld, v, best))
        elif a is not None:
            a.last_value = v
            if a.condition and not ld.beyond(v, ld.clear_limit):
                self._condition_gone(a, f"back inside {_fmt(ld.outer)} by {_fmt(ld.margin)}", now, mono, out, v)

    def _eval_cont(self, ld: _LadderState, v: float, now: datetime, mono: float, out: list) -> None:
        best: _CTier | None = None
        rank = 0
        pending = False
        since = ld.since
        beyond = ld.beyond
        for i, t in enumerate(ld.tiers):
            if beyond(v, t.limit):
                s = since[i]
                if s is None:
                    s = since[i] = mono
                if mono - s >= t.delay - _EPS:
                    if t.rank > rank:
                        best, rank = t, t.rank
                else:
                    pending = True
            else:
                since[i] = None
        if pending != ld.pending:
            ld.pending = pending
            if pending:
                self._pending[ld] = None
            else:
                self._pending.pop(ld, None)
        ld.last = v
        reason = "" if best is None else (f"beyond the {_NAMES[rank]} limit {_fmt(best.limit)} for "
                                          f"{_fmt(best.delay)} s {best.source}")
        self._apply(ld, best, rank, v, reason, now, mono, out)

    def _eval_disc(self, ld: _LadderState, v: float, now: datetime, mono: float, out: list) -> None:
        best: _CTier | None = None
        rank = 0
        reason = ""
        consec = ld.consec
        beyond = ld.beyond
        for i, t in enumerate(ld.tiers):
            if beyond(v, t.limit):
                n = consec[i] = consec[i] + 1
                if n >= t.confirm:
                    r = t.esc_rank if (t.esc_after and n >= t.esc_after) else t.rank
                    if r > rank:
                        best, rank = t, r
                        # the limit and its source tag go into the reason: AlarmEscalated
                        # has no fields of its own for them
                        if r != t.rank:
                            reason = f"{n} consecutive readings {ld.rule.op} {_fmt(t.limit)} {t.source}"
                        elif t.confirm > 1:
                            reason = f"{n} consecutive readings {ld.rule.op} {_fmt(t.limit)} {t.source} (confirmed)"
                        else:
                            reason = f"beyond the {_NAMES[r]} limit {_fmt(t.limit)} {t.source}"
            else:
                consec[i] = 0
        ld.last = v
        self._apply(ld, best, rank, v, reason, now, mono, out)

    def _reset_cont(self, ld: _LadderState) -> None:
        for i in range(len(ld.since)):
            ld.since[i] = None
        if ld.pending:
            ld.pending = False
            self._pending.pop(ld, None)

    # ------------------------------------------------------------------ combined
    def _term_value(self, key: object, mono: float) -> float | None:
        got = self._last.get(key)
        if got is None:
            return None
        v, t = got
        if isinstance(key, tuple):
            fresh = self._obs_fresh_s
        elif key in _NIBP:
            fresh = self._stale_factor * self._nibp_cadence_now(mono)
        else:
            fresh = self._cont_fresh_s
        return v if mono - t <= fresh + _EPS else None

    def _eval_comb(self, cs: _CombState, now: datetime, mono: float, out: list) -> None:
        all_in = True
        cleared = False
        for key, op, lim, clr, _term in cs.terms:
            v = self._term_value(key, mono)
            if v is None:
                all_in = False
                cleared = True
            elif not op(v, lim):
                all_in = False
                if not op(v, clr):
                    cleared = True
        pkey, _pop, plim, _pclr, _pt = cs.primary
        pv = self._term_value(pkey, mono)
        a = cs.alarm
        if all_in:
            if cs.since is None:
                cs.since = mono
            if mono - cs.since >= cs.delay - _EPS:
                self._comb_pending.pop(cs, None)
                if a is None:
                    cs.alarm = self._new_alarm(
                        rule=cs.name, rank=cs.rank, klass="physiological", param=cs.rule.primary,
                        value=pv, limit=plim, source=cs.rule.source,
                        message=f"{cs.rule.message} ({cs.rule.primary} {_fmt(pv)})",
                        now=now, mono=mono, owner=cs, out=out,
                    )
                else:
                    a.last_value = pv
                    if not a.condition:
                        a.condition = True
                        a.latched = False
                    if cs.rank > a.rank:
                        self._escalate(a, cs.rank, "combined condition", now, mono, out, value=pv)
            else:
                self._comb_pending[cs] = None
        else:
            cs.since = None
            self._comb_pending.pop(cs, None)
            if a is not None:
                if pv is not None:
                    a.last_value = pv
                if a.condition and cleared:
                    self._condition_gone(a, "combined condition no longer holds", now, mono, out, pv)

    def _combined_for(self, key: object, now: datetime, mono: float, out: list) -> None:
        for cs in self._comb_by_key.get(key, ()):
            self._eval_comb(cs, now, mono, out)

    # ------------------------------------------------------------------ technical
    def _tech_raise(self, name: str, rule_key: str, rank: int, value: float | None, limit: float | None,
                    message: str, now: datetime, mono: float, out: list) -> None:
        ts = self._tech[name]
        if name in self._off_rules:
            return
        rule = self._tech_rules[rule_key]
        a = ts.alarm
        if a is None:
            ts.alarm = self._new_alarm(
                rule=name, rank=rank, klass="technical", param=ts.param, value=value, limit=limit,
                source=rule.source, message=message, now=now, mono=mono, owner=ts, out=out,
            )
        else:
            a.last_value = value
            if rank > a.rank:
                self._escalate(a, rank, message, now, mono, out, value=value, limit=limit, source=rule.source,
                               message=message)

    def _tech_clear(self, name: str, reason: str, now: datetime, mono: float, out: list,
                    value: float | None = None) -> None:
        ts = self._tech[name]
        ts.since = None
        if ts.alarm is not None:
            self._clear(ts.alarm, reason, now, mono, out, value)

    def _nibp_cadence_now(self, mono: float) -> float:
        if self._cadence_fn is not None:
            c = float(self._cadence_fn(self._phase, mono - self._phase_mono))
        else:
            c = self._default_cadence.get(self._phase, 0.0)
        return c if c > 0 else self._max_cadence

    def _spo2_lost(self, now: datetime, mono: float, out: list) -> None:
        ts = self._tech["spo2_lost"]
        if ts.since is None:
            ts.since = mono
        self._last.pop("spo2", None)
        for ld in self._by_param.get("spo2", ()):
            self._reset_cont(ld)
        self._combined_for("spo2", now, mono, out)

    # ------------------------------------------------------------------ NIBP measurement
    def _flush_nibp(self, now: datetime, mono: float, out: list) -> None:
        vals = self._nibp_pend
        self._nibp_pend = {}
        key = self._nibp_pend_key
        rmono = self._nibp_pend_mono
        for p in vals:
            self._nibp_seen[p] = key
        pair = self._pair
        if pair is not None:
            hi, lo = vals.get(pair.high), vals.get(pair.low)
            if hi is not None and lo is not None and hi <= lo:
                self._tech_raise(
                    "nibp_implausible", "implausible", PRIORITY_RANK[self._tech_rules["implausible"].priority],
                    hi, lo, f"Implausible NIBP: systolic {_fmt(hi)} <= diastolic {_fmt(lo)}", now, mono, out,
                )
                return
            if self._tech["nibp_implausible"].alarm is not None:
                self._tech_clear("nibp_implausible", "plausible NIBP measurement", now, mono, out, hi)
        if "nibp_sys" in vals or "nibp_dia" in vals:
            self._last_nibp = rmono
            if self._tech["nibp_overdue"].alarm is not None:
                self._tech_clear("nibp_overdue", "NIBP measured", now, mono, out)
        for p in _NIBP_ORDER:
            v = vals.get(p)
            if v is None:
                continue
            self._last[p] = (v, rmono)
            for ld in self._by_param.get(p, ()):
                if ld.alarm is None and not ld.beyond(v, ld.outer) and not any(ld.consec):
                    continue
                self._eval_disc(ld, v, now, mono, out)
            self._combined_for(p, now, mono, out)

    def _add_nibp(self, r: Reading, p: str, v: float, now: datetime, mono: float, out: list) -> None:
        key = r.device_time or r.receive_time
        if key is not None and self._nibp_seen.get(p) == key and p not in self._nibp_pend:
            return  # the same measurement again (a resent message)
        if self._nibp_pend and (p in self._nibp_pend or key != self._nibp_pend_key):
            self._flush_nibp(now, mono, out)
        if not self._nibp_pend:
            self._nibp_pend_key = key
            self._nibp_pend_mono = mono
        self._nibp_pend[p] = v
        if len(self._nibp_pend) == len(_NIBP_ORDER):
            self._flush_nibp(now, mono, out)

    # ------------------------------------------------------------------ inputs
    def _flag_invalid(self, flags: Iterable[str]) -> bool:
        bad = self._invalid_flags
        for f in flags:
            if f in bad or f.split(":", 1)[0] in bad:
                return True
        return False

    def on_reading(self, reading: Reading, now: datetime) -> list:
        """Evaluate one reading. Returns the events it causes (often none)."""
        out: list = []
        mono = (now - self._t0).total_seconds()
        self._last_data = mono
        if self._t_nodata.alarm is not None:
            self._tech_clear("no_data", "data received", now, mono, out)
        p = reading.param
        v = reading.value
        nibp = p in _NIBP
        if self._nibp_pend and not nibp:
            self._flush_nibp(now, mono, out)
        if v is None or not reading.valid or (reading.flags and self._flag_invalid(reading.flags)):
            if p == "spo2":
                self._spo2_missing = True
                self._spo2_lost(now, mono, out)
            elif not nibp:
                self._drop(p, now, mono, out)
            return out
        # a questionable value (device flag) is evaluated like any other; an alarm it raises says so
        if reading.flags and not self._questionable_flags.isdisjoint(reading.flags):
            self._questionable[p] = True
        elif self._questionable:
            self._questionable.pop(p, None)
        if nibp:
            self._add_nibp(reading, p, v, now, mono, out)
            return out
        hot = self._hot.get(p)
        if hot is None:
            self._last[p] = (v, mono)
            return out
        lo, hi, imp, ladders, combs = hot
        if v < lo or v > hi:
            self._tech_raise(
                imp.name, "implausible", self._imp_rank, v, lo if v < lo else hi,
                f"Implausible {p} value {_fmt(v)}", now, mono, out,
            )
            self._drop(p, now, mono, out)
            return out
        if imp is not None and imp.alarm is not None:
            self._tech_clear(imp.name, "plausible value", now, mono, out, v)
        if p == "spo2":
            self._spo2_missing = False
            ts = self._t_lost
            if ts.since is not None or ts.alarm is not None:
                self._tech_clear("spo2_lost", "SpO2 signal back", now, mono, out, v)
        self._last[p] = (v, mono)
        for ld in ladders:
            if ld.alarm is None and not ld.pending and not ld.beyond(v, ld.outer):
                continue
            self._eval_cont(ld, v, now, mono, out)
        for cs in combs:
            if cs.alarm is None and cs.since is None:
                # cheap pre-check on this parameter's own term
                for key, op, lim, _c, _t in cs.terms:
                    if key == p and not op(v, lim):
                        break
                else:
                    self._eval_comb(cs, now, mono, out)
                continue
            self._eval_comb(cs, now, mono, out)
        return out

    def _drop(self, p: str, now: datetime, mono: float, out: list) -> None:
        """A missing or implausible value: it is not current and restarts the delays."""
        self._last.pop(p, None)
        for ld in self._by_param.get(p, ()):
            self._reset_cont(ld)
        self._combined_for(p, now, mono, out)

    def on_device_status(self, status: DeviceStatus, now: datetime) -> list:
        """A condition reported by the device or the data path."""
        out: list = []
        mono = self._mono(now)
        kind = status.kind
        if kind not in self._not_data_status:
            self._last_data = mono
            if self._tech["no_data"].alarm is not None:
                self._tech_clear("no_data", "data received", now, mono, out)
        if self._nibp_pend:
            self._flush_nibp(now, mono, out)
        if kind in self._lost_status and (status.param in (None, "spo2")):
            if status.active:
                self._lost_kinds.add(kind)
                self._spo2_lost(now, mono, out)
            else:
                self._lost_kinds.discard(kind)
                # the condition ends with the device's report only if SpO2 values are not
                # still missing (a probe put back goes on showing dashes while the oximeter
                # searches for a pulse): then the next valid SpO2 ends it, and the time
                # without SpO2 keeps counting towards the high priority
                if not self._lost_kinds and not self._spo2_missing:
                    ts = self._tech["spo2_lost"]
                    ts.since = None
                    if ts.alarm is not None:
                        self._tech_clear("spo2_lost", f"{kind} ended", now, mono, out)
        return out

    def on_observation(self, obs: ObservationRecorded, now: datetime) -> list:
        """A scale recorded by staff (MOAA/S, RASS, CADSS, BPRS, anxiety, vomiting, htn symptoms)."""
        out: list = []
        mono = self._mono(now)
        if self._nibp_pend:
            self._flush_nibp(now, mono, out)
        scale = obs.scale
        for ld in self._by_scale.get(scale, ()):
            v = _obs_value(obs, ld.rule.value_from)
            if v is None:
                continue
            self._eval_disc(ld, v, now, mono, out)
        for key in self._comb_obs_keys.get(scale, ()):
            v = _obs_value(obs, key[1])
            if v is None:
                continue
            self._last[key] = (v, mono)
            self._combined_for(key, now, mono, out)
        return out

    # ------------------------------------------------------------------ context
    def set_phase(self, phase: str, now: datetime) -> list:
        """Change the phase (limits change). Returns events for alarms whose rule no longer applies."""
        if phase not in self._default_cadence:
            raise ValueError(f"unknown phase {phase!r}")
        out: list = []
        mono = self._mono(now)
        if self._nibp_pend:
            self._flush_nibp(now, mono, out)
        if phase == self._phase:
            return out
        self._phase = phase
        self._phase_mono = mono
        self._compile()
        reason = f"rule does not apply in phase {phase}"
        for ld in self._ladders:
            a = ld.alarm
            if a is None or not a.condition:
                continue
            if not ld.active:
                self._condition_gone(a, reason, now, mono, out)
            elif ld.last is not None and not ld.beyond(ld.last, ld.clear_limit):
                self._condition_gone(a, f"inside the {phase} limits", now, mono, out, ld.last)
        for cs in self._combs:
            if cs.alarm is not None and cs.alarm.condition and not cs.active:
                self._condition_gone(cs.alarm, reason, now, mono, out)
        if phase == "discharged":
            for name, ts in self._tech.items():
                if ts.alarm is not None:
                    self._tech_clear(name, "discharged", now, mono, out)
                ts.since = None
        return out

    def set_baseline(self, sbp: float | None, dbp: float | None, hr: float | None = None,
                     spo2: float | None = None) -> None:
        """The recorded baseline; the relative limits (rise from baseline) follow it."""
        self._baseline = {"nibp_sys": sbp, "nibp_dia": dbp, "hr": hr, "spo2": spo2}
        self._compile()

    def set_infusing(self, infusing: bool, now: datetime) -> list:
        """Whether the drug is running. Starting cancels alarm-off of SpO2/BP and audio off."""
        out: list = []
        mono = self._mono(now)
        self._infusing = bool(infusing)
        if not infusing:
            return out
        for target in list(self._off):
            rules, _by, _rem = self._off[target]
            if self._is_protected(rules):
                del self._off[target]
                out.append(AlarmSilenced(t=now, mono=mono, alarm_id=f"off:{target}", rule=target,
                                         mode="resumed", by=""))
        self._off_rules = frozenset().union(*(r for r, _b, _m in self._off.values())) if self._off else frozenset()
        self._compile()
        if self._audio_off is not None:
            self._audio_off = None
            out.append(AlarmSilenced(t=now, mono=mono, alarm_id="audio", rule="", mode="resumed", by=""))
        return out

    # ------------------------------------------------------------------ time
    def tick(self, now: datetime) -> list:
        """Time passing: delays elapsing, escalation, no data, NIBP overdue, audio pause expiry,
        reminders. Call it regularly (e.g. every second) and after each batch of readings."""
        out: list = []
        mono = self._mono(now)
        if self._nibp_pend:
            self._flush_nibp(now, mono, out)
        if self._phase != "discharged":
            self._tick_technical(now, mono, out)
        if self._pending:
            for ld in list(self._pending):
                got = self._last.get(ld.key)
                if got is None or mono - got[1] > self._cont_fresh_s + _EPS:
                    self._reset_cont(ld)
                    continue
                self._eval_cont(ld, got[0], now, mono, out)
        if self._comb_pending:
            for cs in list(self._comb_pending):
                self._eval_comb(cs, now, mono, out)
        for cs in self._combs:  # a combined alarm whose term went stale no longer holds
            a = cs.alarm
            if a is not None and a.condition and cs.active:
                self._eval_comb(cs, now, mono, out)
        if self._active:
            self._tick_escalation(now, mono, out)
            self._tick_audio(now, mono, out)
        elif self._audio_off is not None or self._off:
            self._tick_audio(now, mono, out)
        return out

    def _tick_technical(self, now: datetime, mono: float, out: list) -> None:
        gap = mono - self._last_data
        ts = self._tech["no_data"]
        rule = self._tech_rules["no_data"]
        if gap >= self._nodata_med_s - _EPS:
            rank = PRIORITY_RANK[rule.priority]
            limit = self._nodata_med_s
            if self._infusing and rule.high_while_infusing and gap >= self._nodata_high_s - _EPS:
                rank, limit = _HIGH, self._nodata_high_s
            self._tech_raise("no_data", "no_data", rank, gap, limit,
                             f"{rule.message} for {gap:.0f} s", now, mono, out)
        ts = self._tech["spo2_lost"]
        if ts.since is not None:
            lost = mono - ts.since
            rule = self._tech_rules["spo2_lost"]
            if lost >= self._lost_med_s - _EPS:
                rank = PRIORITY_RANK[rule.priority]
                limit = self._lost_med_s
                if self._infusing and rule.high_while_infusing and lost >= self._lost_high_s - _EPS:
                    rank, limit = _HIGH, self._lost_high_s
                self._tech_raise("spo2_lost", "spo2_lost", rank, lost, limit,
                                 f"{rule.message} for {lost:.0f} s", now, mono, out)
        if self._cadence_fn is not None:
            cadence = float(self._cadence_fn(self._phase, mono - self._phase_mono))
        else:
            cadence = self._default_cadence.get(self._phase, 0.0)
        if cadence > 0:
            ref = self._phase_mono if self._last_nibp is None else max(self._last_nibp, self._phase_mono)
            late = mono - ref - cadence
            if late > self._overdue_grace_s + _EPS:
                rule = self._tech_rules["nibp_overdue"]
                self._tech_raise("nibp_overdue", "nibp_overdue", PRIORITY_RANK[rule.priority], late,
                                 self._overdue_grace_s,
                                 f"{rule.message}: {late / 60:.0f} min past its {cadence / 60:g}-min schedule",
                                 now, mono, out)

    def _tick_escalation(self, now: datetime, mono: float, out: list) -> None:
        for a in list(self._active.values()):
            if a.rank != _MEDIUM or a.acknowledged or a.alarm_class not in self._esc_classes:
                continue
            age = mono - a.level_mono
            if age >= self._esc_high_s - _EPS:
                self._escalate(a, _HIGH, f"unacknowledged {self._esc_high_s:g} s", now, mono, out)
            elif age >= self._reannounce_s - _EPS and not a.reannounced:
                a.reannounced = True
                out.append(AlarmEscalated(
                    t=now, mono=mono, alarm_id=a.id, rule=a.rule, from_priority="medium",
                    to_priority="medium", reason=f"unacknowledged {self._reannounce_s:g} s",
                    reannounce=True, value=a.last_value,
                ))

    def _tick_audio(self, now: datetime, mono: float, out: list) -> None:
        for a in self._active.values():
            if a.audio_paused_until is not None and now >= a.audio_paused_until:
                a.audio_paused_until = None
                out.append(AlarmSilenced(t=now, mono=mono, alarm_id=a.id, rule=a.rule, mode="resumed", by=""))
        if self._audio_off is not None:
            if mono - self._audio_off[0] >= self._reminder_s - _EPS:
                self._audio_off[0] = mono
                out.append(AlarmSilenced(t=now, mono=mono, alarm_id="audio", rule="", mode="reminder",
                                         by=self._audio_off_by))
        for target, (_rules, by, rem) in self._off.items():
            if mono - rem[0] >= self._reminder_s - _EPS:
                rem[0] = mono
                out.append(AlarmSilenced(t=now, mono=mono, alarm_id=f"off:{target}", rule=target,
                                         mode="reminder", by=by))

    # ------------------------------------------------------------------ user actions
    def acknowledge(self, alarm_id: str | None, by: str, now: datetime) -> list:
        """Acknowledge one alarm (by id) or all active ones (None). A latched alarm whose
        condition has gone is cleared after its acknowledgement; the events keep its record."""
        if not by or not by.strip():
            raise ValueError("acknowledge needs the initials of who acknowledged")
        out: list = []
        mono = self._mono(now)
        targets = self.active() if alarm_id is None else [a for a in self.active() if a.id == alarm_id]
        for a in targets:
            if a.acknowledged:
                continue
            a.acknowledged = True
            a.acknowledged_by = by
            a.audio_paused_until = None
            out.append(AlarmAcknowledged(t=now, mono=mono, alarm_id=a.id, rule=a.rule, by=by, author=by))
            if not a.condition:
                a.latched = False
                self._clear(a, f"acknowledged by {by} after the condition had cleared", now, mono, out)
        return out

    def pause_audio(self, by: str, now: datetime, seconds: float | None = None) -> list:
        """Pause the audio of the active unacknowledged alarms for ``seconds``
        (default: the profile's audio_pause_s). New or escalated alarms sound again."""
        s = self._audio_pause_s if seconds is None else float(seconds)
        if not (s > 0) or math.isinf(s):
            raise ValueError("audio pause needs a positive, limited number of seconds")
        out: list = []
        mono = self._mono(now)
        until = now + timedelta(seconds=s)
        targets = [a for a in self.active() if not a.acknowledged]
        for a in targets:
            a.audio_paused_until = until
            out.append(AlarmSilenced(t=now, mono=mono, alarm_id=a.id, rule=a.rule, mode="audio_paused",
                                     duration_s=s, by=by, author=by))
        if not targets:
            out.append(AlarmSilenced(t=now, mono=mono, alarm_id="*", rule="", mode="audio_paused",
                                     duration_s=s, by=by, author=by))
        return out

    def audio_off(self, by: str, now: datetime) -> list:
        """Audio off indefinitely (a reminder every reminder_interval_s); refused while infusing."""
        if self._infusing:
            raise AlarmOffRefused("audio off is refused while infusing: SpO2 and BP alarms must sound")
        out: list = []
        mono = self._mono(now)
        if self._audio_off is None:
            self._audio_off = [mono]
            self._audio_off_by = by
            out.append(AlarmSilenced(t=now, mono=mono, alarm_id="audio", rule="", mode="audio_off", by=by, author=by))
        return out

    def audio_on(self, by: str, now: datetime) -> list:
        out: list = []
        if self._audio_off is not None:
            self._audio_off = None
            out.append(AlarmSilenced(t=now, mono=self._mono(now), alarm_id="audio", rule="", mode="resumed",
                                     by=by, author=by))
        return out

    def _rule_params(self, name: str) -> set[str]:
        for ld in self._ladders:
            if ld.name == name:
                return {ld.key}
        for cs in self._combs:
            if cs.name == name:
                return {t.param for t in cs.rule.when}
        ts = self._tech.get(name)
        if ts is not None:
            return {"*"} if ts.param is None else {ts.param}
        return set()

    def _resolve(self, target: str) -> frozenset[str]:
        names = [ld.name for ld in self._ladders] + [cs.name for cs in self._combs] + list(self._tech)
        if target in names:
            return frozenset({target})
        found = {ld.name for ld in self._ladders if ld.key == target}
        found |= {cs.name for cs in self._combs if cs.rule.primary == target}
        found |= {n for n, ts in self._tech.items() if ts.param == target}
        if not found:
            raise ValueError(f"unknown rule or parameter {target!r}; rules: {', '.join(names)}")
        return frozenset(found)

    def _is_protected(self, rules: Iterable[str]) -> bool:
        for r in rules:
            ps = self._rule_params(r)
            if "*" in ps or ps & self._protected:
                return True
        return False

    def alarm_off(self, rule_or_param: str, by: str, now: datetime) -> list:
        """Turn a rule (or every rule of a parameter) off until ``alarm_on``. Refused for
        SpO2 and BP while infusing. Active alarms of those rules are cleared (their events stay)."""
        rules = self._resolve(rule_or_param)
        if self._infusing and self._is_protected(rules):
            raise AlarmOffRefused(
                f"alarm off for {rule_or_param!r} is refused while infusing (SpO2 and BP alarms stay on)"
            )
        out: list = []
        mono = self._mono(now)
        self._off[rule_or_param] = (rules, by, [mono])
        self._off_rules = self._off_rules | rules
        out.append(AlarmSilenced(t=now, mono=mono, alarm_id=f"off:{rule_or_param}", rule=rule_or_param,
                                 mode="alarm_off", by=by, author=by))
        for a in self.active():
            if a.rule in rules:
                self._clear(a, f"alarm off by {by}", now, mono, out)
        for name in rules:
            ts = self._tech.get(name)
            if ts is not None:
                ts.since = None
        self._compile()
        return out

    def alarm_on(self, rule_or_param: str, by: str, now: datetime) -> list:
        out: list = []
        if rule_or_param in self._off:
            del self._off[rule_or_param]
            self._off_rules = frozenset().union(*(r for r, _b, _m in self._off.values())) if self._off else frozenset()
            self._compile()
            out.append(AlarmSilenced(t=now, mono=self._mono(now), alarm_id=f"off:{rule_or_param}",
                                     rule=rule_or_param, mode="resumed", by=by, author=by))
        return out

    # ------------------------------------------------------------------ queries
    def gate(self, sbp: float | None, dbp: float | None, spo2: float | None, hr: float | None) -> GateResult:
        """The pre-infusion gate on baseline values (profile ``gate`` rules)."""
        vals = {"sbp": sbp, "dbp": dbp, "spo2": spo2, "hr": hr}
        level = 0
        blocks = False
        reasons: list[str] = []
        tags: list[str] = []
        for g in self.profile.gate:
            v = vals[g.param]
            if v is None:
                continue
            if _OPS[g.op](v, g.limit):
                rank = PRIORITY_RANK[g.level]
                level = max(level, rank)
                blocks = blocks or g.blocks_start
                reasons.append(g.reason)
                tags.append(g.source)
        missing = [k for k, v in vals.items() if v is None]
        if missing:
            reasons.append(f"no value for {', '.join(missing)}: not checked")
            tags.append("")
        return GateResult(_NAMES.get(level), blocks, tuple(reasons), tuple(tags))

    def active(self, alarm_class: str | None = None) -> list[ActiveAlarm]:
        """Active alarms, highest priority first, then oldest; optionally only one class
        (``"physiological"`` or ``"technical"``)."""
        alarms = self._active.values()
        if alarm_class is not None:
            alarms = [a for a in alarms if a.alarm_class == alarm_class]
        return sorted(alarms, key=lambda a: (-a.rank, a.since, a.id))

    def audio_priority(self) -> str | None:
        """The priority that should sound now: the highest unacknowledged, not audio-paused alarm."""
        if self._audio_off is not None:
            return None
        best = 0
        for a in self._active.values():
            if not a.acknowledged and a.audio_paused_until is None and a.rank > best:
                best = a.rank
        return _NAMES.get(best)

    def limits(self, param: str | None = None) -> list[LimitView]:
        """The limits in force in this phase (to show beside each value)."""
        out = []
        for ld in self._ladders:
            if not ld.active or ld.observation or (param is not None and ld.key != param):
                continue
            for t in ld.tiers:
                out.append(LimitView(ld.name, ld.key, _NAMES[t.rank], ld.rule.op, t.limit, t.delay,
                                     t.source, ld.rule.relative))
        return out

    def value_age(self, param: str, now: datetime) -> float | None:
        """Seconds since the last valid value of ``param`` (None when there is none)."""
        got = self._last.get(param)
        return None if got is None else self._mono(now) - got[1]

    def is_stale(self, param: str, now: datetime) -> bool:
        """Older than stale_factor x its cadence (NIBP: the schedule; others: continuous cadence)."""
        age = self.value_age(param, now)
        if age is None:
            return True
        mono = self._mono(now)
        limit = self._stale_factor * self._nibp_cadence_now(mono) if param in _NIBP else self._cont_fresh_s
        return age > limit
