"""Limit ladders: one physiological alarm per rule, its priority the highest tier met.

Owns: ``Ladders`` (the profile's ``ladder`` rules compiled for the phase, baseline and the
rules turned off), continuous evaluation with delays (SpO2, HR, PR), discrete evaluation
with confirmation and escalation by consecutive readings (NIBP, scales), and the limits in
force (``LimitView``).

Semantics (the tests check them): ladders of one ``group`` in the profile (NIBP; HR/PR)
share ONE alarm: its priority is the highest a member's condition reached, it names the
member that leads (``rule``) and lists every condition that holds (``conditions``); while
it is active its priority never drops. A member's condition holds from the tier it meets
until its value is back inside the ladder's least severe limit by ``clear_margin``; the
alarm clears (or latches) when no member's condition holds. A ladder without a group is a
group of its own.
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


class GroupState:
    """The one alarm of a group of ladders."""

    __slots__ = ("name", "members", "alarm")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: list[LadderState] = []
        self.alarm = None


class LadderState:
    __slots__ = ("rule", "name", "key", "observation", "continuous", "beyond", "above", "tiers",
                 "outer", "clear_limit", "since", "consec", "pending", "last", "group",
                 "active", "margin", "base", "held", "held_limit", "held_source", "held_msg", "held_reason",
                 "lowq")

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
        self.last: float | None = None
        self.active = False
        self.base: float | None = None
        self.group: GroupState = GroupState(rule.name)
        self.held = 0  # the rank this ladder's condition reached while it holds (0: it does not)
        self.held_limit = 0.0
        self.held_source = ""
        self.held_msg = ""
        self.held_reason = ""
        self.lowq = False  # the last value was of low signal quality


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


def _compose(lead: LadderState, held: list[LadderState]) -> str:
    others = [m.held_msg for m in held if m is not lead]
    return lead.held_msg if not others else f"{lead.held_msg}; also {'; '.join(others)}"


def _list(a, lead: LadderState, held: list[LadderState]) -> None:
    a.conditions = (lead.held_msg, *(m.held_msg for m in held if m is not lead))
    a.held_rules = (lead.name, *(m.name for m in held if m is not lead))


class Ladders:
    """The ladder rules of one engine."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.all = [LadderState(ld) for ld in core.profile.ladder]
        groups: dict[str, GroupState] = {}
        for ld in self.all:
            name = ld.rule.group or ld.name
            g = groups.setdefault(name, GroupState(name))
            g.members.append(ld)
            ld.group = g
        self.groups = list(groups.values())
        self.pending: dict[LadderState, None] = {}
        self.by_param: dict[str, tuple[LadderState, ...]] = {}
        self.by_scale: dict[str, tuple[LadderState, ...]] = {}
        self._defer: dict[GroupState, list] | None = None
        up_to = core.profile.input.low_quality_up_to
        self.lowq_rank = PRIORITY_RANK[up_to] if up_to is not None else 0

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
                if ld.held and ld.name in off:
                    ld.held = 0  # turned off: its condition no longer counts
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
        g = ld.group
        if best is not None:
            bumped = rank > ld.held
            if bumped:
                ld.held = rank
                ld.held_limit = best.limit
                ld.held_source = best.source
                ld.held_msg = self._message(ld, v, best)
                ld.held_reason = reason
            self._touch(g, "", ld if bumped else None, now, mono, out)
        elif ld.held:
            if not ld.beyond(v, ld.clear_limit):
                ld.held = 0
                self._touch(g, f"back inside {fmt(ld.outer)} by {fmt(ld.margin)}", None, now, mono, out)
            else:
                self._touch(g, "", None, now, mono, out)
        elif g.alarm is not None and g.alarm.rule == ld.name:
            g.alarm.note(v)

    def _touch(self, g: GroupState, gone: str, bumped: LadderState | None, now: datetime, mono: float,
               out: list) -> None:
        """A member of ``g`` changed: update its alarm now, or at the end of an NIBP set."""
        d = self._defer
        if d is None:
            self._update(g, gone, [bumped] if bumped is not None else [], now, mono, out)
            return
        got = d.setdefault(g, ["", []])
        if gone:
            got[0] = gone
        if bumped is not None:
            got[1].append(bumped)

    def regroup(self, g: GroupState, now: datetime, mono: float, out: list) -> None:
        """Raise the group's alarm anew from the conditions that hold (after a clear)."""
        self._update(g, "", [], now, mono, out)

    def begin_set(self) -> None:
        """The values of one measurement (an NIBP set) follow: one update per group at the end."""
        self._defer = {}

    def end_set(self, now: datetime, mono: float, out: list) -> None:
        d, self._defer = self._defer, None
        for g, (gone, bumped) in (d or {}).items():
            self._update(g, gone, bumped, now, mono, out)

    def _update(self, g: GroupState, gone: str, bumped: list[LadderState], now: datetime, mono: float,
                out: list) -> None:
        """The group's alarm after its members changed (``bumped``: members whose condition
        reached a higher tier). Raised by the highest condition; escalated when a condition
        goes above its priority; a member reaching a tier at the alarm's own priority is
        announced as a new condition (it leads from then on); the condition is gone
        (``gone``) when no member's holds."""
        core = self.core
        a = g.alarm
        held = [m for m in g.members if m.held]
        if a is not None:
            cur = next((m for m in g.members if m.name == a.rule), None)
            if cur is not None and cur.last is not None:
                a.note(cur.last)
        if not held:
            if a is not None:
                a.conditions = a.held_rules = ()
                if a.condition:
                    core.condition_gone(a, gone, now, mono, out, a.last_value)
            return
        top = max(held, key=lambda m: m.held)  # the first of the highest (profile order)
        if a is None:
            g.alarm = a = core.new_alarm(
                rule=top.name, rank=top.held, klass="physiological", param=top.key, value=top.last,
                limit=top.held_limit, source=top.held_source, message=_compose(top, held), now=now, mono=mono,
                owner=g, out=out, worse_above=top.above,
            )
            _list(a, top, held)
            return
        if a.latching and top.held < a.rank:
            # the condition that made it latch has gone: the latch holds it (acknowledged, it
            # clears, and the conditions that still hold raise a new alarm at their priority)
            _list(a, top, held)
            if a.condition:
                core.condition_gone(a, gone or f"no {a.priority} condition holds", now, mono, out, a.last_value)
                if g.alarm is None:
                    self._update(g, gone, bumped, now, mono, out)
            return
        if not a.condition:
            a.condition = True
            a.latched = False
        new = [m for m in bumped if m.held and m.held >= a.rank]
        if top.held > a.rank:
            lead, reason = top, top.held_reason
        elif new:
            lead = max(new, key=lambda m: m.held)
            reason = "new condition: " + "; ".join(m.held_msg for m in new)
        else:
            lead = next((m for m in held if m.name == a.rule), top)
            _list(a, lead, held)
            return
        a.rule = lead.name
        a.param = lead.key
        if a.worse_above != lead.above:  # led by a rule of the other direction from now on
            a.worse_above = lead.above
            a.worst_value = None
        a.note(lead.last)
        _list(a, lead, held)
        core.escalate(a, lead.held, reason, now, mono, out, value=lead.last, limit=lead.held_limit,
                      source=lead.held_source, message=_compose(lead, held))

    def eval_cont(self, ld: LadderState, v: float, now: datetime, mono: float, out: list,
                  lowq: bool | None = None) -> None:
        """A continuous value; ``lowq`` (None: as last time): of low signal quality, it feeds
        only the tiers above the profile's ``low_quality_up_to``."""
        best: CTier | None = None
        rank = 0
        pending = False
        since = ld.since
        beyond = ld.beyond
        if lowq is None:
            lowq = ld.lowq
        ld.lowq = lowq
        skip = self.lowq_rank if lowq else 0
        for i, t in enumerate(ld.tiers):
            if t.rank > skip and beyond(v, t.limit):
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
            if not ld.held and ld.group.alarm is None and not ld.beyond(v, ld.outer) and not any(ld.consec):
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
        reason = f"rule does not apply in phase {phase}"
        for ld in self.all:
            if not ld.held:
                continue
            if not ld.active:
                ld.held = 0
                self._update(ld.group, reason, [], now, mono, out)
            elif ld.last is not None and not ld.beyond(ld.last, ld.clear_limit):
                ld.held = 0
                self._update(ld.group, f"inside the {phase} limits", [], now, mono, out)

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
