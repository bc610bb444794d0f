"""Technical alarms: conditions of the device and the data path, not of the patient.

Owns: ``Technical`` — the monitor link lost (raised at once from the transport's
``link_lost`` status, high once it has lasted ``high_after_s``; no data is not raised
beside it), no data from the monitor, SpO2 lost (probe off, no pulse, missing values),
a failed NIBP measurement (the device's ``nibp_failed`` status or NIBP values sent empty),
NIBP overdue (the protocol's schedule plus a grace; medium while infusing after
``medium_after_intervals`` intervals), implausible values and the implausible NIBP pair
(systolic <= diastolic). Priorities, times and messages come from the
profile's ``technical`` section; "high while infusing" from its rules.
May import: chairside.domain, chairside.alarms.core/profile, stdlib. Must not import:
textual, serial, sqlite3, chairside.store, chairside.transport, chairside.service.
"""

from __future__ import annotations

import math
from datetime import datetime

from chairside.alarms.core import EPS, HIGH, MEDIUM, Core
from chairside.alarms.profile import PRIORITY_RANK, CrossCheck

__all__ = ["TechState", "Technical"]


class TechState:
    __slots__ = ("name", "param", "alarm", "since", "ok_since")

    def __init__(self, name: str, param: str | None) -> None:
        self.name = name
        self.param = param
        self.alarm = None
        self.since: float | None = None
        self.ok_since: float | None = None  # a cross-check: agreeing again since


class Technical:
    """The technical conditions of one engine."""

    def __init__(self, core: Core) -> None:
        self.core = core
        profile = core.profile
        s = profile.setting
        self.nodata_med_s = s("no_data_medium_s")
        self.nodata_high_s = s("no_data_high_s")
        self.lost_med_s = s("spo2_lost_medium_s")
        self.lost_high_s = s("spo2_lost_high_s")
        self.overdue_grace_s = s("nibp_overdue_grace_s")
        tech = profile.technical
        self.rules = {
            "no_data": tech.no_data, "spo2_lost": tech.spo2_lost,
            "nibp_overdue": tech.nibp_overdue, "implausible": tech.implausible,
            "link_lost": tech.link_lost, "nibp_failed": tech.nibp_failed,
        }
        self.link_high_s = tech.link_lost.high_after_s.value if tech.link_lost.high_after_s else None
        mi = tech.nibp_overdue.medium_after_intervals
        self.overdue_medium_intervals = mi.value if mi is not None else None
        self.plaus: dict[str, tuple[float, float]] = {}
        for imp in profile.implausible:
            lo = imp.below.value if imp.below is not None else -math.inf
            hi = imp.above.value if imp.above is not None else math.inf
            self.plaus[imp.param] = (lo, hi)
        self.pair = profile.implausible_pair
        self.imp_rank = PRIORITY_RANK[tech.implausible.priority]
        self.states: dict[str, TechState] = {
            "no_data": TechState("no_data", None),
            "spo2_lost": TechState("spo2_lost", "spo2"),
            "nibp_overdue": TechState("nibp_overdue", "nibp_sys"),
            "link_lost": TechState("link_lost", None),
            "nibp_failed": TechState("nibp_failed", "nibp_sys"),
        }
        for p in self.plaus:
            self.states[f"{p}_implausible"] = TechState(f"{p}_implausible", p)
        if self.pair is not None:
            self.states["nibp_implausible"] = TechState("nibp_implausible", self.pair.high)
        for cc in profile.cross_check:
            self.states[cc.rule] = TechState(cc.rule, cc.param)
        self.nodata = self.states["no_data"]
        self.lost = self.states["spo2_lost"]
        self.lost_kinds: set[str] = set()  # SpO2-lost device conditions now active
        self.spo2_missing = False  # the latest SpO2 reading was a missing value
        self.last_data = 0.0
        self.last_nibp: float | None = None
        self.link = self.states["link_lost"]
        self.link_detail = ""

    def names(self) -> list[str]:
        return list(self.states)

    # ------------------------------------------------------------------ raise / clear
    def raise_(self, name: str, rule_key: str, rank: int, value: float | None, limit: float | None,
               message: str, now: datetime, mono: float, out: list) -> None:
        ts = self.states[name]
        if name in self.core.off_rules:
            return
        rule = self.rules[rule_key]
        a = ts.alarm
        if a is None:
            ts.alarm = self.core.new_alarm(
                rule=name, rank=rank, klass="technical", param=ts.param, value=value, limit=limit,
                source=rule.source, message=message, now=now, mono=mono, owner=ts, out=out,
            )
        else:
            a.note(value)
            if rank > a.rank:
                self.core.escalate(a, rank, message, now, mono, out, value=value, limit=limit,
                                   source=rule.source, message=message)

    def clear(self, name: str, reason: str, now: datetime, mono: float, out: list,
              value: float | None = None) -> None:
        ts = self.states[name]
        ts.since = None
        if ts.alarm is not None:
            self.core.clear(ts.alarm, reason, now, mono, out, value)

    # ------------------------------------------------------------------ data flow
    def data_seen(self, now: datetime, mono: float, out: list) -> None:
        self.last_data = mono
        if self.nodata.alarm is not None:
            self.clear("no_data", "data received", now, mono, out)

    def implausible(self, p: str, v: float, lo: float, hi: float, now: datetime, mono: float,
                    out: list) -> None:
        self.raise_(f"{p}_implausible", "implausible", self.imp_rank, v, lo if v < lo else hi,
                    f"Implausible {p} value {v:g}", now, mono, out)

    def implausible_pair(self, vals: dict[str, float], now: datetime, mono: float, out: list) -> bool:
        """True when the NIBP set is implausible (systolic <= diastolic): it feeds no rule."""
        pair = self.pair
        if pair is None:
            return False
        hi, lo = vals.get(pair.high), vals.get(pair.low)
        if hi is not None and lo is not None and hi <= lo:
            self.raise_("nibp_implausible", "implausible", self.imp_rank, hi, lo,
                        f"Implausible NIBP: systolic {hi:g} <= diastolic {lo:g}", now, mono, out)
            return True
        if self.states["nibp_implausible"].alarm is not None:
            self.clear("nibp_implausible", "plausible NIBP measurement", now, mono, out, hi)
        return False

    def nibp_measured(self, rmono: float, now: datetime, mono: float, out: list) -> None:
        self.last_nibp = rmono
        if self.states["nibp_overdue"].alarm is not None:
            self.clear("nibp_overdue", "NIBP measured", now, mono, out)
        if self.states["nibp_failed"].alarm is not None:
            self.clear("nibp_failed", "NIBP measured", now, mono, out)

    def nibp_failed(self, detail: str, now: datetime, mono: float, out: list) -> None:
        """The monitor reports a failed NIBP measurement (it clears with the next valid one)."""
        if self.core.phase == "discharged":
            return
        rule = self.rules["nibp_failed"]
        self.raise_("nibp_failed", "nibp_failed", PRIORITY_RANK[rule.priority], None, None,
                    rule.message + (f": {detail}" if detail else ""), now, mono, out)

    def cross(self, cc: CrossCheck, holds: bool, v: float, ref: float | None, now: datetime, mono: float,
              out: list) -> None:
        """The cross-check ``cc`` on a value ``v`` (``ref``: the other parameter's): ``holds``
        when they disagree while ``v`` is beyond one of its parameter's limits; raised once it
        has held for its delay; cleared once they have agreed (or ``v`` has been inside) for
        that delay too (no flapping alarm)."""
        ts = self.states[cc.rule]
        core = self.core
        if not holds:
            ts.since = None
            if ts.alarm is not None:
                if ts.ok_since is None:
                    ts.ok_since = mono
                if mono - ts.ok_since >= cc.delay_s.value - EPS:
                    ts.ok_since = None
                    self.core.clear(ts.alarm, f"{cc.param} agrees with {cc.against} or is inside its limits",
                                    now, mono, out, v)
            return
        ts.ok_since = None
        if ts.since is None:
            ts.since = mono
        a = ts.alarm
        if a is not None:
            a.note(v)
        elif (mono - ts.since >= cc.delay_s.value - EPS and cc.rule not in core.off_rules
              and core.phase != "discharged"):
            ts.alarm = core.new_alarm(
                rule=cc.rule, rank=PRIORITY_RANK[cc.priority], klass="technical", param=cc.param, value=v,
                limit=None, source=cc.source,
                message=f"{cc.message} ({cc.param.upper()} {v:g}, {cc.against.upper()} {ref if ref is None else f'{ref:g}'})",
                now=now, mono=mono, owner=ts, out=out,
            )

    # ------------------------------------------------------------------ the link
    def link_status(self, active: bool, detail: str, now: datetime, mono: float, out: list) -> None:
        """The transport's ``link_lost`` (active: the link is gone or the port cannot be
        opened) and its end (``link_lost`` inactive, or ``link_up``)."""
        ts = self.link
        if active:
            if ts.since is None:
                ts.since = mono
                self.link_detail = detail
            if self.nodata.alarm is not None:
                self.clear("no_data", "superseded by the lost link", now, mono, out)
            if self.core.phase != "discharged":
                rule = self.rules["link_lost"]
                self.raise_("link_lost", "link_lost", PRIORITY_RANK[rule.priority], 0.0, None,
                            rule.message + (f": {detail}" if detail else ""), now, mono, out)
            return
        if ts.since is not None or ts.alarm is not None:
            self.last_data = mono  # the monitor gets a fresh no-data interval after a reconnect
            self.clear("link_lost", "link restored", now, mono, out, mono - (ts.since or mono))

    def spo2_lost_started(self, mono: float) -> None:
        if self.lost.since is None:
            self.lost.since = mono

    def spo2_back(self, v: float, now: datetime, mono: float, out: list) -> None:
        self.spo2_missing = False
        ts = self.lost
        if ts.since is not None or ts.alarm is not None:
            self.clear("spo2_lost", "SpO2 signal back", now, mono, out, v)

    def lost_status(self, kind: str, active: bool, now: datetime, mono: float, out: list) -> bool:
        """A device's SpO2-lost condition (probe off, no pulse...). True when it started."""
        if active:
            self.lost_kinds.add(kind)
            return True
        self.lost_kinds.discard(kind)
        # the condition ends with the device's report only if SpO2 values are not still
        # missing (a probe put back goes on showing dashes while the oximeter searches for
        # a pulse): then the next valid SpO2 ends it, and the time without SpO2 keeps
        # counting towards the high priority
        if not self.lost_kinds and not self.spo2_missing:
            ts = self.lost
            ts.since = None
            if ts.alarm is not None:
                self.clear("spo2_lost", f"{kind} ended", now, mono, out)
        return False

    # ------------------------------------------------------------------ time
    def tick(self, now: datetime, mono: float, out: list) -> None:
        core = self.core
        link = self.link
        if link.since is not None:
            lost = mono - link.since
            rule = self.rules["link_lost"]
            high = self.link_high_s
            if (high is not None and lost >= high - EPS
                    and (core.infusing or not rule.high_while_infusing)):
                self.raise_("link_lost", "link_lost", HIGH, lost, high,
                            f"{rule.message} for {lost:.0f} s" + (f": {self.link_detail}" if self.link_detail else ""),
                            now, mono, out)
        gap = mono - self.last_data
        if link.since is None and gap >= self.nodata_med_s - EPS:
            rule = self.rules["no_data"]
            rank = PRIORITY_RANK[rule.priority]
            limit = self.nodata_med_s
            if core.infusing and rule.high_while_infusing and gap >= self.nodata_high_s - EPS:
                rank, limit = HIGH, self.nodata_high_s
            self.raise_("no_data", "no_data", rank, gap, limit, f"{rule.message} for {gap:.0f} s",
                        now, mono, out)
        ts = self.lost
        if ts.since is not None:
            lost = mono - ts.since
            rule = self.rules["spo2_lost"]
            if lost >= self.lost_med_s - EPS:
                rank = PRIORITY_RANK[rule.priority]
                limit = self.lost_med_s
                if core.infusing and rule.high_while_infusing and lost >= self.lost_high_s - EPS:
                    rank, limit = HIGH, self.lost_high_s
                self.raise_("spo2_lost", "spo2_lost", rank, lost, limit, f"{rule.message} for {lost:.0f} s",
                            now, mono, out)
        cadence = core.scheduled_cadence(mono)
        if cadence > 0:
            ref = core.phase_mono if self.last_nibp is None else max(self.last_nibp, core.phase_mono)
            late = mono - ref - cadence
            if late > self.overdue_grace_s + EPS:
                rule = self.rules["nibp_overdue"]
                rank, limit = PRIORITY_RANK[rule.priority], self.overdue_grace_s
                n = self.overdue_medium_intervals
                if n is not None and core.infusing and mono - ref >= n * cadence - EPS:
                    rank, limit = max(rank, MEDIUM), n * cadence
                self.raise_("nibp_overdue", "nibp_overdue", rank, late, limit,
                            f"{rule.message}: {late / 60:.0f} min past its {cadence / 60:g}-min schedule",
                            now, mono, out)

    def discharged(self, now: datetime, mono: float, out: list) -> None:
        for name, ts in self.states.items():
            if ts.alarm is not None:
                self.clear(name, "discharged", now, mono, out)
            ts.since = None

    def turned_off(self, rules: frozenset[str]) -> None:
        for name in rules:
            ts = self.states.get(name)
            if ts is not None:
                ts.since = None
