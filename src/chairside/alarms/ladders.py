"""Limit ladders: one physiological alarm per rule, its priority the highest tier met.

Owns: ``Ladders`` (the profile's ``ladder`` rules compiled for the phase, baseline and the
rules turned off), continuous evaluation with delays (SpO2, HR, PR), discrete evaluation
with confirmation and escalation by consecutive readings (NIBP, scales), and the limits in
force (``LimitView``).

Semantics (the tests check them): while an alarm is active its priority never drops; it
clears once the value is back inside the ladder's least severe limit by ``clear_margin``.
A continuous tier needs the value beyond its limit on every valid reading for its delay;
a missing, flagged or implausible value restarts the delay.
May import: chairside.domain, chairside.alarms.core/profile, stdlib. Must not import:
textual, serial, sqlite3, chairside.store, chairside.transport, chairside.service.
"""

from __future__ import annotations

from datetime import datetime

from chairside.alarms.core import EPS, NAMES, NIBP, OPS, Core, LimitView, fmt
from chairside.alarms.profile import PRIORITY_RANK, Ladder, Tier
from chairside.domain.events import ObservationRecorded

__all__ = ["Ladders", "LadderState", "obs_value"]

_ITEM = "item:"


class CTier:
    """A tier compiled for the current baseline (``limit`` absolute, ``delta`` as written)."""

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


class LadderState:
    __slots__ = ("rule", "name", "key", "observation", "continuous", "beyond", "above", "tiers",
                 "outer", "clear_limit", "since", "consec", "pending", "alarm", "last",
                 "active", "margin", "base")

    def __init__(self, rule: Ladder) -> None:
        self.rule = rule
        self.name = rule.name
        self.key = rule.key
        self.observation = rule.scale is not None
        self.continuous = rule.param is not None and rule.param not in NIBP
        self.beyond = OPS[rule.op]
        self.above = rule.op in (">=", ">")
        self.margin = rule.clear_margin.value if rule.clear_margin is not None else 0.0
        self.tiers: list[CTier] = []
        self.outer = 0.0
        self.clear_limit = 0.0
        self.since: list[float | None] = []
        self.consec: list[int] = []
        self.pending = False
        self.alarm = None
        self.last: float | None = None
        self.active = False
        self.base: float | None = None


def obs_value(obs: ObservationRecorded, value_from: str) -> float | None:
    """The number an observation gives a rule (``score``, ``item:<name>``, ``max_item``,
    ``count_items``)."""
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


class Ladders:
    """The ladder rules of one engine."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.all = [LadderState(ld) for ld in core.profile.ladder]
        self.pending: dict[LadderState, None] = {}
        self.by_param: dict[str, tuple[LadderState, ...]] = {}
        self.by_scale: dict[str, tuple[LadderState, ...]] = {}

    def names(self) -> list[str]:
        return [ld.name for ld in self.all]

    # ------------------------------------------------------------------ compile
    def compile(self) -> None:
        """Tiers for the phase and baseline in force; rules turned off are inactive."""
        core = self.core
        phase, off, baseline = core.phase, core.off_rules, core.baseline
        by_param: dict[str, list[LadderState]] = {}
        by_scale: dict[str, list[LadderState]] = {}
        for ld in self.all:
            rule = ld.rule
            tiers = rule.tiers_for(phase)
            base = baseline.get(rule.param or "") if rule.relative else 0.0
            active = bool(tiers) and ld.name not in off and base is not None
            old = {(t.rank, t.delta): (ld.since[i], ld.consec[i]) for i, t in enumerate(ld.tiers)}
            if active:
                ld.tiers = [CTier(t, t.limit + (base or 0.0)) for t in tiers]
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
                self.pending.pop(ld, None)
            ld.active = active
        self.by_param = {k: tuple(v) for k, v in by_param.items()}
        self.by_scale = {k: tuple(v) for k, v in by_scale.items()}

    # ------------------------------------------------------------------ evaluation
    def _message(self, ld: LadderState, v: float, t: CTier) -> str:
        rule = ld.rule
        if ld.base is not None:
            return f"{rule.message}: {fmt(v)} {rule.op} baseline {fmt(ld.base)} + {fmt(t.delta)}"
        return f"{rule.message}: {fmt(v)} {rule.op} {fmt(t.limit)}"

    def _apply(self, ld: LadderState, best: CTier | None, rank: int, v: float, reason: str,
               now: datetime, mono: float, out: list) -> None:
        a = ld.alarm
        core = self.core
        if best is not None:
            if a is None:
                ld.alarm = core.new_alarm(
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
                core.escalate(a, rank, reason, now, mono, out, value=v, limit=best.limit,
                              source=best.source, message=self._message(ld, v, best))
        elif a is not None:
            a.last_value = v
            if a.condition and not ld.beyond(v, ld.clear_limit):
                core.condition_gone(a, f"back inside {fmt(ld.outer)} by {fmt(ld.margin)}", now, mono, out, v)

    def eval_cont(self, ld: LadderState, v: float, now: datetime, mono: float, out: list) -> None:
        best: CTier | None = None
        rank = 0
        pending = False
        since = ld.since
        beyond = ld.beyond
        for i, t in enumerate(ld.tiers):
            if beyond(v, t.limit):
                s = since[i]
                if s is None:
                    s = since[i] = mono
                if mono - s >= t.delay - EPS:
                    if t.rank > rank:
                        best, rank = t, t.rank
                else:
                    pending = True
            else:
                since[i] = None
        if pending != ld.pending:
            ld.pending = pending
            if pending:
                self.pending[ld] = None
            else:
                self.pending.pop(ld, None)
        ld.last = v
        reason = "" if best is None else (f"beyond the {NAMES[rank]} limit {fmt(best.limit)} for "
                                          f"{fmt(best.delay)} s {best.source}")
        self._apply(ld, best, rank, v, reason, now, mono, out)

    def eval_disc(self, ld: LadderState, v: float, now: datetime, mono: float, out: list) -> None:
        best: CTier | None = None
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
                            reason = f"{n} consecutive readings {ld.rule.op} {fmt(t.limit)} {t.source}"
                        elif t.confirm > 1:
                            reason = f"{n} consecutive readings {ld.rule.op} {fmt(t.limit)} {t.source} (confirmed)"
                        else:
                            reason = f"beyond the {NAMES[r]} limit {fmt(t.limit)} {t.source}"
            else:
                consec[i] = 0
        ld.last = v
        self._apply(ld, best, rank, v, reason, now, mono, out)

    def reset_cont(self, ld: LadderState) -> None:
        for i in range(len(ld.since)):
            ld.since[i] = None
        if ld.pending:
            ld.pending = False
            self.pending.pop(ld, None)

    def reset_param(self, p: str) -> None:
        """A missing or implausible value of ``p``: its delays restart."""
        for ld in self.by_param.get(p, ()):
            self.reset_cont(ld)

    def on_nibp(self, p: str, v: float, now: datetime, mono: float, out: list) -> None:
        for ld in self.by_param.get(p, ()):
            if ld.alarm is None and not ld.beyond(v, ld.outer) and not any(ld.consec):
                continue
            self.eval_disc(ld, v, now, mono, out)

    def on_observation(self, obs: ObservationRecorded, now: datetime, mono: float, out: list) -> None:
        for ld in self.by_scale.get(obs.scale, ()):
            v = obs_value(obs, ld.rule.value_from)
            if v is None:
                continue
            self.eval_disc(ld, v, now, mono, out)

    def tick(self, now: datetime, mono: float, out: list) -> None:
        """Delays elapsing while the last value is fresh."""
        last = self.core.last
        fresh = self.core.cont_fresh_s + EPS
        for ld in list(self.pending):
            got = last.get(ld.key)
            if got is None or mono - got[1] > fresh:
                self.reset_cont(ld)
                continue
            self.eval_cont(ld, got[0], now, mono, out)

    def phase_changed(self, phase: str, now: datetime, mono: float, out: list) -> None:
        """After ``compile`` for a new phase: alarms whose rule no longer applies, or whose
        last value is inside the new limits, lose their condition."""
        core = self.core
        reason = f"rule does not apply in phase {phase}"
        for ld in self.all:
            a = ld.alarm
            if a is None or not a.condition:
                continue
            if not ld.active:
                core.condition_gone(a, reason, now, mono, out)
            elif ld.last is not None and not ld.beyond(ld.last, ld.clear_limit):
                core.condition_gone(a, f"inside the {phase} limits", now, mono, out, ld.last)

    # ------------------------------------------------------------------ queries
    def limits(self, param: str | None = None) -> list[LimitView]:
        out = []
        for ld in self.all:
            if not ld.active or ld.observation or (param is not None and ld.key != param):
                continue
            for t in ld.tiers:
                out.append(LimitView(ld.name, ld.key, NAMES[t.rank], ld.rule.op, t.limit, t.delay,
                                     t.source, ld.rule.relative))
        return out
