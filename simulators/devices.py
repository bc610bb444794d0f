"""The measurement layer: what the monitor shows, derived from the true physiology.

Owns: ``Monitor`` (ECG HR counted over a window, pulse oximetry with averaging, display
lag, noise, probe-off dashes, pulse search, motion artefact with held then low-biased
values and erratic PR, low perfusion; NIBP on an automatic cycle with STAT and manual
measurements, failures, one automatic retry and an INOP), the artefact state (scripted
episodes and random Markov-switching episodes), and the ``Display`` snapshot the
emulators encode. ``nibp_values`` is the cuff's read model, shared with the vectorised
calibration runs. Every constant comes from ``data/devices.toml`` (or the scenario).
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulators.physiology import TrueValues

PERCENT_MAX = 100  # a saturation is a percentage
_NONE: dict = {}

ARTEFACT_KINDS = (
    "probe_off",  # SpO2 probe off the finger: dashes, PR lost, ECG HR continues
    "motion",  # patient movement: SpO2 held then false lows, erratic PR, NIBP fails
    "low_perfusion",  # weak pulse signal at the probe
    "nibp_fail",  # the next ``count`` NIBP attempts fail
    "loose_cuff",  # NIBP fails until the cuff is reapplied
    "cable_disconnect",  # the data cable: the device goes silent
    "ecg_leads_off",  # ECG HR lost, SpO2 continues
)
# The event that ends an open-ended artefact.
CLEARED_BY = {
    "probe_off": "probe_reattach",
    "loose_cuff": "cuff_reapply",
    "cable_disconnect": "reconnect_cable",
    "ecg_leads_off": "leads_reattach",
    "motion": "motion_stops",
    "low_perfusion": "warm_hand",
}


def nibp_values(sbp, dbp, z_sys, z_dia, z_map, cfg: dict[str, Any]):
    """One cuff result from the true pressures and three standard normal draws
    (floats or arrays): integer mmHg with SBP > MAP > DBP."""
    sd, msd = cfg["read_noise_sd_mmhg"], cfg["map_noise_sd_mmhg"]
    sys_ = np.rint(sbp + sd * z_sys)
    dia = np.rint(dbp + sd * z_dia)
    dia = np.minimum(dia, sys_ - cfg["min_pulse_pressure_mmhg"])
    mean = np.rint(dia + (sys_ - dia) / 3.0 + msd * z_map)
    mean = np.clip(mean, dia + 1, sys_ - 1)
    return sys_, dia, mean


@dataclass
class Artefact:
    kind: str
    start: float
    end: float | None  # None = until cleared by its event
    count: int = 0  # nibp_fail: attempts left to fail
    level: float = 1.0


@dataclass
class NibpResult:
    t: float  # sim seconds when the result appeared
    sys: float | None
    dia: float | None
    map: float | None
    ok: bool
    kind: str  # auto, retry, stat, manual
    cycle_start: float
    reason: str = ""


class Display:
    """What the monitor shows at one second (None = dashes / no value)."""

    __slots__ = ("t", "hr", "pr", "spo2", "pi", "nibp_sys", "nibp_dia", "nibp_map", "nibp_time",
                 "nibp_new", "nibp_failed", "nibp_measuring", "probe_off", "pulse_search", "motion",
                 "low_perfusion", "disconnected", "ecg_off", "nibp_result")

    def get(self, name: str):
        return getattr(self, name)


@dataclass
class _Nibp:
    interval_s: float
    next_cycle: float
    measuring_until: float | None = None
    attempt_kind: str = ""
    cycle_start: float = 0.0
    retries_left: int = 0
    stat_until: float = -1.0
    last: NibpResult | None = None
    last_ok: NibpResult | None = None
    failed: bool = False
    results: list[NibpResult] = field(default_factory=list)
    cycle_starts: list[float] = field(default_factory=list)


class Monitor:
    """The device layer of one simulated bedside monitor (with its pulse oximeter)."""

    def __init__(self, cfg: dict[str, Any], rng_nibp: np.random.Generator, rng_spo2: np.random.Generator,
                 rng_artefacts: np.random.Generator, epoch_s: float = 0.0, noise: bool = True) -> None:
        self.cfg = cfg
        self.noise = noise
        self.rng_nibp = rng_nibp
        self.rng_spo2 = rng_spo2
        self.rng_art = rng_artefacts
        self.epoch_s = epoch_s  # wall seconds of sim time 0 (for clock-aligned NIBP cycles)
        ecg, sp = cfg["ecg"], cfg["spo2"]
        self._hr_win: deque[float] = deque(maxlen=int(ecg["averaging_s"]))
        self._sat_win: deque[float] = deque(maxlen=int(sp["averaging_s"]))
        self._pr_win: deque[float] = deque(maxlen=int(sp["averaging_s"]))
        self._sat_lag: deque[float] = deque(maxlen=int(sp["display_lag_s"]) + 1)
        self._pr_lag: deque[float] = deque(maxlen=int(sp["display_lag_s"]) + 1)
        self._hr_sum = 0.0
        self.artefacts: list[Artefact] = []
        self.log: list[tuple[float, str, str]] = []  # (t, kind, detail) for the engine's event log
        self._probe_off_since: float | None = None
        self._search_until = -1.0
        self._motion_since: float | None = None
        self._held_spo2: int | None = None
        self._last_spo2: int | None = None
        self._spo2_rows: list[list[float]] = []
        self._spo2_i = 0
        nb = cfg["nibp"]
        first = float(nb["first_at_s"])
        self.nibp = _Nibp(interval_s=float(nb["interval_s"]), next_cycle=first)
        if nb.get("align_to_clock"):
            self.nibp.next_cycle = self._aligned(first)
        self._forced_fails = 0
        self._pending_retry: float | None = None
        self._pending_stat: float | None = None
        self._rand = cfg["artefacts"]
        self._sp = cfg["spo2"]
        self._motion_threshold = cfg["artefacts"]["motion_threshold"]
        self._low_pi_factor = cfg["artefacts"]["low_perfusion_pi_factor"]
        self._random_on = noise and any(self._rand.get(f"{k}_per_h", 0.0) > 0 for k in self._RANDOM_KINDS)
        self._art_rows: list[list[float]] = []
        self._art_i = 0

    # --- control ----------------------------------------------------------------------
    def _aligned(self, t: float) -> float:
        iv = self.nibp.interval_s
        wall = self.epoch_s + t
        return math.ceil(wall / iv) * iv - self.epoch_s

    def set_nibp_interval(self, t: float, interval_s: float) -> None:
        nb = self.nibp
        nb.interval_s = float(interval_s)
        if interval_s <= 0:
            nb.next_cycle = math.inf
            return
        base = nb.cycle_starts[-1] if nb.cycle_starts else t
        nb.next_cycle = max(t, base + interval_s)
        if self.cfg["nibp"].get("align_to_clock"):
            nb.next_cycle = self._aligned(nb.next_cycle)

    def nibp_stat(self, t: float) -> None:
        self.nibp.stat_until = t + float(self.cfg["nibp"]["stat_duration_s"])
        self._start_measurement(t, "stat")

    def nibp_measure(self, t: float) -> None:
        self._start_measurement(t, "manual")

    def start_artefact(self, t: float, kind: str, dur_s: float | None = None, count: int = 1,
                       level: float = 1.0) -> None:
        if kind not in ARTEFACT_KINDS:
            raise ValueError(f"unknown artefact {kind!r}")
        if kind == "nibp_fail":
            self._forced_fails += max(1, int(count))
            self.log.append((t, "artefact", f"nibp_fail count={count}"))
            return
        end = None if dur_s is None else t + dur_s
        self.artefacts.append(Artefact(kind, t, end, count, level))
        self.log.append((t, "artefact_start", kind + ("" if dur_s is None else f" for {dur_s:.0f} s")))

    def clear(self, t: float, event: str) -> bool:
        """A trainee/instructor event that may end an artefact (probe_reattach...)."""
        hit = False
        for art in list(self.artefacts):
            if CLEARED_BY.get(art.kind) == event:
                self._end_artefact(t, art)
                hit = True
        return hit

    def _end_artefact(self, t: float, art: Artefact) -> None:
        self.artefacts.remove(art)
        self.log.append((t, "artefact_end", art.kind))
        if art.kind == "probe_off":
            self._search_until = t + float(self.cfg["spo2"]["pulse_search_s"])

    def active(self, kind: str) -> Artefact | None:
        for art in self.artefacts:
            if art.kind == kind:
                return art
        return None

    # --- per second -------------------------------------------------------------------
    def _spo2_noise(self) -> list[float]:
        if self._spo2_i >= len(self._spo2_rows):
            self._spo2_rows = self.rng_spo2.standard_normal((600, 3)).tolist()
            self._spo2_i = 0
        row = self._spo2_rows[self._spo2_i]
        self._spo2_i += 1
        return row

    _RANDOM_KINDS = ("motion", "probe_off", "low_perfusion")

    def _random_artefacts(self, t: float) -> None:
        """Markov switching into artefact episodes: a Bernoulli draw per second per kind
        (rate per hour / 3600), exponential durations; draws come in fixed blocks."""
        if self._art_i >= len(self._art_rows):
            k = len(self._RANDOM_KINDS)
            u = self.rng_art.random((600, k))
            e = self.rng_art.standard_exponential((600, k))
            self._art_rows = np.concatenate([u, e], axis=1).tolist()
            self._art_i = 0
        row = self._art_rows[self._art_i]
        self._art_i += 1
        r = self._rand
        for i, kind in enumerate(self._RANDOM_KINDS):
            rate = r.get(f"{kind}_per_h", 0.0)
            if rate > 0 and row[i] < rate / 3600.0 and not self.active(kind):
                dur = float(max(3, round(row[3 + i] * r[f"{kind}_mean_s"])))
                self.start_artefact(t, kind, dur)

    def update(self, tv: TrueValues) -> Display:
        t = tv.t
        for art in list(self.artefacts):
            if art.end is not None and t >= art.end:
                self._end_artefact(t, art)
        if self._random_on:
            self._random_artefacts(t)
        act = {a.kind: a for a in reversed(self.artefacts)} if self.artefacts else _NONE
        sp = self._sp
        d = Display()
        d.t = t
        d.disconnected = "cable_disconnect" in act
        motion_art = act.get("motion")
        motion = max(tv.motion, motion_art.level if motion_art else 0.0)
        d.motion = motion > self._motion_threshold
        # ECG
        d.ecg_off = "ecg_leads_off" in act
        win = self._hr_win
        win.append(tv.hr)
        d.hr = None if d.ecg_off else int(round(sum(win) / len(win)))
        # pulse oximetry
        z = self._spo2_noise() if self.noise else (0.0, 0.0, 0.0)
        probe = act.get("probe_off")
        pi = tv.pi * (self._low_pi_factor if "low_perfusion" in act else 1.0)
        d.low_perfusion = pi < sp["low_perfusion_pi"]
        d.probe_off = False
        d.pulse_search = False
        if probe is not None:
            if t - probe.start >= sp["probe_off_delay_s"]:
                d.probe_off = True
        if d.probe_off or t < self._search_until:
            d.pulse_search = not d.probe_off
            self._sat_win.clear()
            self._pr_win.clear()
            self._sat_lag.clear()
            self._pr_lag.clear()
            d.spo2 = d.pr = d.pi = None
            self._last_spo2 = None
            self._motion_since = None
        else:
            # Under motion the oximeter's per-second estimate is biased low; the bias goes
            # through the same averaging window and display lag as the saturation (a
            # displayed value does not jump 20 % from one second to the next), after the
            # last value has been held for motion_hold_s.
            raw_sat = tv.sao2
            if d.motion:
                raw_sat = raw_sat - motion * sp["motion_bias_max_pct"] * abs(z[2])
            self._sat_win.append(raw_sat)
            self._pr_win.append(tv.pr)
            self._sat_lag.append(sum(self._sat_win) / len(self._sat_win))
            self._pr_lag.append(sum(self._pr_win) / len(self._pr_win))
            sat = self._sat_lag[0]
            pr = self._pr_lag[0]
            nsd = sp["noise_sd_pct"] * (2.0 if d.low_perfusion else 1.0)
            spo2 = sat + nsd * z[0]
            pr = pr + sp["pr_noise_sd_bpm"] * z[1]
            if d.motion:
                if self._motion_since is None:
                    self._motion_since = t
                    self._held_spo2 = self._last_spo2
                if t - self._motion_since < sp["motion_hold_s"] and self._held_spo2 is not None:
                    spo2 = self._held_spo2
                pr = pr + motion * sp["motion_pr_sd_bpm"] * z[1]
            else:
                self._motion_since = None
            spo2_i = int(min(PERCENT_MAX, max(0, round(spo2))))
            d.spo2 = spo2_i
            self._last_spo2 = spo2_i
            d.pr = int(max(0, round(pr)))
            d.pi = round(float(pi), 2)
        # NIBP
        self._nibp_step(t, tv, motion, d, act)
        return d

    # --- NIBP -------------------------------------------------------------------------
    def _start_measurement(self, t: float, kind: str) -> None:
        nb = self.nibp
        if nb.measuring_until is not None:
            if kind in ("stat", "manual"):
                nb.attempt_kind = kind  # the running measurement counts
            return
        if kind == "auto" and t - 1.0 <= nb.next_cycle <= t:
            t = nb.next_cycle  # the cycle started on its schedule (e.g. at 0, before the first step)
        nb.measuring_until = t + float(self.cfg["nibp"]["measure_s"])
        nb.attempt_kind = kind
        nb.cycle_start = t
        if kind != "retry":
            nb.retries_left = int(self.cfg["nibp"]["retries"])
        nb.cycle_starts.append(t)

    def _nibp_step(self, t: float, tv: TrueValues, motion: float, d: Display, act: dict) -> None:
        nb = self.nibp
        cfg = self.cfg["nibp"]
        d.nibp_new = False
        d.nibp_result = None
        if nb.measuring_until is not None and t >= nb.measuring_until:
            nb.measuring_until = None
            res = self._measure(t, tv, motion, nb.attempt_kind, act)
            nb.results.append(res)
            nb.last = res
            d.nibp_new = True
            d.nibp_result = res
            if res.ok:
                nb.last_ok = res
                nb.failed = False
                self.log.append((t, "nibp", f"{res.kind} {res.sys:.0f}/{res.dia:.0f} ({res.map:.0f})"))
            elif nb.retries_left > 0:
                nb.retries_left -= 1
                self.log.append((t, "nibp_retry", res.reason))
                self._pending_retry = t + float(cfg["retry_delay_s"])
            else:
                nb.failed = True
                self.log.append((t, "nibp_failed", res.reason))
            if self._pending_retry is None and nb.stat_until > t:
                self._pending_stat = t + float(cfg["stat_gap_s"])
        if nb.measuring_until is None:
            if self._pending_retry is not None:
                if t >= self._pending_retry:
                    self._pending_retry = None
                    self._start_measurement(t, "retry")
            elif self._pending_stat is not None and t >= self._pending_stat:
                self._pending_stat = None
                if nb.stat_until > t:
                    self._start_measurement(t, "stat")
            elif t >= nb.next_cycle and nb.stat_until <= t:
                self._start_measurement(t, "auto")
        while nb.next_cycle <= t:  # an auto cycle that falls in a STAT series or a retry is skipped
            nb.next_cycle += nb.interval_s if nb.interval_s > 0 else math.inf
        d.nibp_measuring = nb.measuring_until is not None
        d.nibp_failed = nb.failed
        last = nb.last_ok
        if last is not None and t - last.t <= cfg["valid_for_s"]:
            d.nibp_sys, d.nibp_dia, d.nibp_map, d.nibp_time = last.sys, last.dia, last.map, last.t
        else:
            d.nibp_sys = d.nibp_dia = d.nibp_map = d.nibp_time = None

    def _measure(self, t: float, tv: TrueValues, motion: float, kind: str, act: dict) -> NibpResult:
        cfg = self.cfg["nibp"]
        nb = self.nibp
        u, z1, z2, z3 = self.rng_nibp.random(), *self.rng_nibp.standard_normal(3)
        if not self.noise:
            z1 = z2 = z3 = 0.0
        reason = ""
        if tv.hr < cfg["hr_min_measurable_bpm"]:
            reason = "heart rate too low"
        elif tv.hr > cfg["hr_max_measurable_bpm"]:
            reason = "heart rate too high"
        elif self._forced_fails > 0:
            self._forced_fails -= 1
            reason = "measurement failed"
        else:
            p = cfg["fail_prob"] if self.noise else 0.0
            moving = motion > self._motion_threshold
            if moving:
                p = max(p, cfg["motion_fail_prob"] * motion)
            if tv.rhythm == "af":
                p = max(p, cfg["arrhythmia_fail_prob"])
            if "loose_cuff" in act:
                p = max(p, cfg["loose_cuff_fail_prob"])
            if u < p:
                reason = "motion" if moving else ("irregular pulse" if tv.rhythm == "af" else "measurement failed")
        if reason:
            return NibpResult(t, None, None, None, False, kind, nb.cycle_start, reason)
        s, di, m = nibp_values(tv.sbp, tv.dbp, z1, z2, z3, cfg)
        return NibpResult(t, float(s), float(di), float(m), True, kind, nb.cycle_start)
