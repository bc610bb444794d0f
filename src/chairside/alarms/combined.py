"""Combined ("smart") conditions: several terms that together raise one alarm, e.g. SBP
at or above a limit plus a crisis symptom, or MOAA/S at or below 3 plus low SpO2.

Owns: ``Combined`` (the profile's ``combined`` rules in force in the phase). A term reads
the latest fresh value of its parameter (NIBP: fresh for stale_factor x the NIBP schedule;
observations: stale_factor x observation cadence; others: stale_factor x continuous
cadence); a stale or missing term does not hold. No hidden suppression: a combined alarm
is raised beside the single-parameter ones.
May import: chairside.domain, chairside.alarms.core/ladders/profile, stdlib. Must not
import: textual, serial, sqlite3, chairside.store, chairside.transport, chairside.service.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chairside.alarms.core import EPS, NIBP, OPS, Core, fmt
from chairside.alarms.ladders import obs_value
from chairside.alarms.profile import PRIORITY_RANK, Term
from chairside.alarms.profile import Combined as CombinedRule
from chairside.domain.events import ObservationRecorded

__all__ = ["Combined", "CombState"]


class CombState:
    __slots__ = ("rule", "name", "terms", "since", "alarm", "active", "delay", "rank", "primary")

    def __init__(self, rule: CombinedRule) -> None:
        self.rule = rule
        self.name = rule.name
        # (key into core.last, op function, limit, clear limit, term)
        self.terms: list[tuple[object, Callable[[float, float], bool], float, float, Term]] = []
        for t in rule.when:
            key: object = (t.param, t.value_from) if t.value_from is not None else t.param
            above = t.op in (">=", ">")
            clear = t.limit - t.clear_margin if above else t.limit + t.clear_margin
            self.terms.append((key, OPS[t.op], t.limit, clear, t))
        self.primary = next(x for x in self.terms if x[4].param == rule.primary)
        self.since: float | None = None
        self.alarm = None
        self.active = False
        self.delay = rule.delay_s.value
        self.rank = PRIORITY_RANK[rule.priority]


class Combined:
    """The combined rules of one engine."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.all = [CombState(c) for c in core.profile.combined]
        self.pending: dict[CombState, None] = {}
        self.by_key: dict[object, tuple[CombState, ...]] = {}
        self.obs_keys: dict[str, tuple[tuple[str, str], ...]] = {}

    def names(self) -> list[str]:
        return [cs.name for cs in self.all]

    def compile(self) -> None:
        core = self.core
        phase, off = core.phase, core.off_rules
        by_key: dict[object, list[CombState]] = {}
        obs_keys: dict[str, list[tuple[str, str]]] = {}
        for cs in self.all:
            cs.active = phase in cs.rule.phases and cs.name not in off
            if not cs.active:
                cs.since = None
                self.pending.pop(cs, None)
                continue
            for key, _op, _lim, _clr, term in cs.terms:
                by_key.setdefault(key, []).append(cs)
                if term.value_from is not None:
                    keys = obs_keys.setdefault(term.param, [])
                    if key not in keys:
                        keys.append(key)  # type: ignore[arg-type]
        self.by_key = {k: tuple(v) for k, v in by_key.items()}
        self.obs_keys = {k: tuple(v) for k, v in obs_keys.items()}

    def _term_value(self, key: object, mono: float) -> float | None:
        core = self.core
        got = core.last.get(key)
        if got is None:
            return None
        v, t = got
        if isinstance(key, tuple):
            fresh = core.obs_fresh_s
        elif key in NIBP:
            fresh = core.stale_factor * core.nibp_cadence(mono)
        else:
            fresh = core.cont_fresh_s
        return v if mono - t <= fresh + EPS else None

    def evaluate(self, cs: CombState, now: datetime, mono: float, out: list) -> None:
        core = self.core
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
            if mono - cs.since >= cs.delay - EPS:
                self.pending.pop(cs, None)
                if a is None:
                    cs.alarm = core.new_alarm(
                        rule=cs.name, rank=cs.rank, klass="physiological", param=cs.rule.primary,
                        value=pv, limit=plim, source=cs.rule.source,
                        message=f"{cs.rule.message} ({cs.rule.primary} {fmt(pv)})",
                        now=now, mono=mono, owner=cs, out=out, worse_above=cs.primary[4].op in (">=", ">"),
                    )
                else:
                    a.note(pv)
                    if not a.condition:
                        a.condition = True
                        a.latched = False
                    if cs.rank > a.rank:
                        core.escalate(a, cs.rank, "combined condition", now, mono, out, value=pv)
            else:
                self.pending[cs] = None
        else:
            cs.since = None
            self.pending.pop(cs, None)
            if a is not None:
                if pv is not None:
                    a.note(pv)
                if a.condition and cleared:
                    core.condition_gone(a, "combined condition no longer holds", now, mono, out, pv)

    def for_key(self, key: object, now: datetime, mono: float, out: list) -> None:
        for cs in self.by_key.get(key, ()):
            self.evaluate(cs, now, mono, out)

    def on_value(self, combs: tuple[CombState, ...], p: str, v: float, now: datetime, mono: float,
                 out: list) -> None:
        """A new valid value of continuous parameter ``p`` (already in ``core.last``)."""
        for cs in combs:
            if cs.alarm is None and cs.since is None:
                # cheap pre-check on this parameter's own term
                for key, op, lim, _c, _t in cs.terms:
                    if key == p and not op(v, lim):
                        break
                else:
                    self.evaluate(cs, now, mono, out)
                continue
            self.evaluate(cs, now, mono, out)

    def on_observation(self, obs: ObservationRecorded, now: datetime, mono: float, out: list) -> None:
        for key in self.obs_keys.get(obs.scale, ()):
            v = obs_value(obs, key[1])
            if v is None:
                continue
            self.core.last[key] = (v, mono)
            self.for_key(key, now, mono, out)

    def tick(self, now: datetime, mono: float, out: list) -> None:
        for cs in list(self.pending):
            self.evaluate(cs, now, mono, out)
        for cs in self.all:  # a combined alarm whose term went stale no longer holds
            a = cs.alarm
            if a is not None and a.condition and cs.active:
                self.evaluate(cs, now, mono, out)

    def phase_changed(self, phase: str, now: datetime, mono: float, out: list) -> None:
        reason = f"rule does not apply in phase {phase}"
        for cs in self.all:
            if cs.alarm is not None and cs.alarm.condition and not cs.active:
                self.core.condition_gone(cs.alarm, reason, now, mono, out)
