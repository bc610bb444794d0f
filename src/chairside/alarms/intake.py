"""How one input reaches the rule families: a reading (validity, plausibility, SpO2 lost,
NIBP measurement grouping), a device status, a recorded observation.

Owns: ``Intake``. NIBP readings of one measurement (same device or receive time) are
evaluated together once the set is complete (sys, dia, mean), or at the next non-NIBP
input or ``tick``; a pair with SBP <= DBP is a technical condition and feeds no
physiological rule. A value the device calls questionable is evaluated like any other and
an alarm it raises says so. A missing SpO2 (value None, invalid, or flagged as the profile's
``input.invalid_flags`` say) never feeds the SpO2-low rule; it starts the technical
"SpO2 lost" timer instead.
May import: chairside.domain, chairside.alarms.*, stdlib. Must not import: textual,
serial, sqlite3, chairside.store, chairside.transport, chairside.service.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from chairside.alarms.combined import Combined
from chairside.alarms.core import EPS, NIBP, NIBP_ORDER, Core
from chairside.alarms.ladders import Ladders
from chairside.alarms.technical import Technical
from chairside.domain.events import ObservationRecorded
from chairside.domain.readings import DeviceStatus, Reading

__all__ = ["Intake"]

# device-status kinds (chairside.domain.readings.DeviceStatus) with a rule of their own
LINK_LOST, LINK_UP, NIBP_FAILED = "link_lost", "link_up", "nibp_failed"


class Intake:
    """The input side of one engine."""

    def __init__(self, core: Core, ladders: Ladders, combined: Combined, technical: Technical) -> None:
        self.core = core
        self.ladders = ladders
        self.combined = combined
        self.technical = technical
        inp = core.profile.input
        self.invalid_flags = frozenset(inp.invalid_flags)
        self.questionable_flags = frozenset(inp.questionable_flags)
        self.lost_status = frozenset(inp.spo2_lost_status)
        self.not_data_status = frozenset(inp.not_data_status)
        self.nibp_failed_flags = frozenset(inp.nibp_failed_flags)
        self.nibp_failed_seen: object = None  # the failed measurement already reported
        self.hot: dict[str, tuple] = {}
        self.cross = {cc.param: cc for cc in core.profile.cross_check}
        self.lowq_flags = frozenset(inp.low_quality_flags)
        self.suspended_until: dict[str, float] = {}  # param -> low quality until (mono)
        self.nibp_pend: dict[str, float] = {}
        self.nibp_pend_key: object = None
        self.nibp_pend_mono = 0.0
        self.nibp_seen: dict[str, object] = {}

    def compile(self) -> None:
        """Per continuous parameter: (plausible low, high, its implausible state, ladders,
        combined rules) — after the families compiled."""
        tech = self.technical
        by_param = self.ladders.by_param
        by_key = self.combined.by_key
        hot = {}
        params = set(by_param) | {k for k in by_key if isinstance(k, str)} | set(tech.plaus)
        for p in params - NIBP:
            lo, hi = tech.plaus.get(p, (-math.inf, math.inf))
            hot[p] = (lo, hi, tech.states.get(f"{p}_implausible"), by_param.get(p, ()), by_key.get(p, ()))
        self.hot = hot

    # ------------------------------------------------------------------ readings
    def _flag_invalid(self, flags: Iterable[str]) -> bool:
        bad = self.invalid_flags
        for f in flags:
            if f in bad or f.split(":", 1)[0] in bad:
                return True
        return False

    def on_reading(self, reading: Reading, now: datetime) -> list:
        out: list = []
        core = self.core
        tech = self.technical
        mono = (now - core.t0).total_seconds()
        tech.data_seen(now, mono, out)
        p = reading.param
        v = reading.value
        nibp = p in NIBP
        if self.nibp_pend and not nibp:
            self.flush_nibp(now, mono, out)
        if v is None or not reading.valid or (reading.flags and self._flag_invalid(reading.flags)):
            if p == "spo2":
                tech.spo2_missing = True
                self._spo2_lost(now, mono, out)
            elif not nibp:
                self._drop(p, now, mono, out)
            elif reading.flags and not self.nibp_failed_flags.isdisjoint(reading.flags):
                key = reading.device_time or reading.receive_time or now
                if key != self.nibp_failed_seen:  # sys, dia and mean of one failed cycle: one report
                    self.nibp_failed_seen = key
                    tech.nibp_failed("", now, mono, out)
            return out
        # a questionable value (device flag) is evaluated like any other; an alarm it raises says so
        questionable = core.questionable
        if reading.flags and not self.questionable_flags.isdisjoint(reading.flags):
            questionable[p] = True
        elif questionable:
            questionable.pop(p, None)
        if nibp:
            self._add_nibp(reading, p, v, now, mono, out)
            return out
        hot = self.hot.get(p)
        if hot is None:
            core.last[p] = (v, mono)
            return out
        lo, hi, imp, ladders, combs = hot
        if v < lo or v > hi:
            tech.implausible(p, v, lo, hi, now, mono, out)
            self._drop(p, now, mono, out)
            return out
        if imp is not None and imp.alarm is not None:
            tech.clear(imp.name, "plausible value", now, mono, out, v)
        if p == "spo2":
            tech.spo2_back(v, now, mono, out)
        cc = self.cross.get(p)
        if cc is not None and self._disagrees(cc, p, v, ladders, now, mono, out):
            return out
        lowq = bool(reading.flags) and not self.lowq_flags.isdisjoint(reading.flags)
        if not lowq and self.suspended_until:
            lowq = mono <= self.suspended_until.get(p, -1.0) + EPS
        core.last[p] = (v, mono)
        eval_cont = self.ladders.eval_cont
        for ld in ladders:
            if not ld.held and not ld.pending and ld.group.alarm is None and not ld.beyond(v, ld.outer):
                ld.lowq = lowq
                continue
            eval_cont(ld, v, now, mono, out, lowq)
        if combs:
            self.combined.on_value(combs, p, v, now, mono, out)
        return out

    def _disagrees(self, cc, p: str, v: float, ladders: tuple, now: datetime, mono: float, out: list) -> bool:
        """The cross-check of ``p`` against a fresh value of ``cc.against``: True when they
        disagree (the value is then an artefact for the physiological rules)."""
        core = self.core
        ref = core.last.get(cc.against)
        if (ref is not None and cc.suspends and mono - ref[1] <= core.cont_fresh_s + EPS
                and abs(v - ref[0]) > cc.quality_difference.value):  # type: ignore[union-attr]
            for q in (*cc.suspends, p):
                self.suspended_until[q] = mono + cc.hold_s.value  # type: ignore[union-attr]
        if ref is None or mono - ref[1] > core.cont_fresh_s + EPS or abs(v - ref[0]) <= cc.max_difference.value:
            self.technical.cross(cc, False, v, None if ref is None else ref[0], now, mono, out)
            return False
        beyond = any(ld.beyond(v, ld.outer) for ld in ladders)
        self.technical.cross(cc, beyond, v, ref[0], now, mono, out)
        self._drop(p, now, mono, out)
        return True

    def _drop(self, p: str, now: datetime, mono: float, out: list) -> None:
        """A missing or implausible value: it is not current and restarts the delays."""
        self.core.last.pop(p, None)
        self.ladders.reset_param(p)
        self.combined.for_key(p, now, mono, out)

    def _spo2_lost(self, now: datetime, mono: float, out: list) -> None:
        self.technical.spo2_lost_started(mono)
        self._drop("spo2", now, mono, out)

    # ------------------------------------------------------------------ NIBP measurement
    def flush_nibp(self, now: datetime, mono: float, out: list) -> None:
        vals = self.nibp_pend
        self.nibp_pend = {}
        key = self.nibp_pend_key
        rmono = self.nibp_pend_mono
        for p in vals:
            self.nibp_seen[p] = key
        if self.technical.implausible_pair(vals, now, mono, out):
            return
        if "nibp_sys" in vals or "nibp_dia" in vals:
            self.technical.nibp_measured(rmono, now, mono, out)
        self.ladders.begin_set()
        for p in NIBP_ORDER:
            v = vals.get(p)
            if v is None:
                continue
            self.core.last[p] = (v, rmono)
            self.ladders.on_nibp(p, v, now, mono, out)
        self.ladders.end_set(now, mono, out)
        for p in NIBP_ORDER:
            if p in vals:
                self.combined.for_key(p, now, mono, out)

    def _add_nibp(self, r: Reading, p: str, v: float, now: datetime, mono: float, out: list) -> None:
        key = r.device_time or r.receive_time
        if key is not None and self.nibp_seen.get(p) == key and p not in self.nibp_pend:
            return  # the same measurement again (a resent message)
        if self.nibp_pend and (p in self.nibp_pend or key != self.nibp_pend_key):
            self.flush_nibp(now, mono, out)
        if not self.nibp_pend:
            self.nibp_pend_key = key
            self.nibp_pend_mono = mono
        self.nibp_pend[p] = v
        if len(self.nibp_pend) == len(NIBP_ORDER):
            self.flush_nibp(now, mono, out)

    def flush_pending(self, now: datetime, mono: float, out: list) -> None:
        if self.nibp_pend:
            self.flush_nibp(now, mono, out)

    # ------------------------------------------------------------------ status, observations
    def on_device_status(self, status: DeviceStatus, now: datetime) -> list:
        out: list = []
        mono = self.core.mono(now)
        kind = status.kind
        if kind not in self.not_data_status:
            self.technical.data_seen(now, mono, out)
        self.flush_pending(now, mono, out)
        if kind == LINK_LOST:
            self.technical.link_status(status.active, status.detail or "", now, mono, out)
        elif kind == LINK_UP:
            self.technical.link_status(False, "", now, mono, out)
        elif kind == NIBP_FAILED:
            if status.active:
                self.technical.nibp_failed(status.detail or "", now, mono, out)
        elif kind in self.lost_status and (status.param in (None, "spo2")):
            if self.technical.lost_status(kind, status.active, now, mono, out):
                self._spo2_lost(now, mono, out)
        return out

    def on_observation(self, obs: ObservationRecorded, now: datetime) -> list:
        out: list = []
        mono = self.core.mono(now)
        self.flush_pending(now, mono, out)
        self.ladders.on_observation(obs, now, mono, out)
        self.combined.on_observation(obs, now, mono, out)
        return out
