"""Vectorised runs of many seeded patients of one scenario (calibration and studies).

Owns: ``run_population(scenario, seeds, duration_s, ...)``: the same ``Physiology``
equations as the engine, stepped for all patients at once (numpy arrays over patients),
with each patient's random numbers drawn from that seed's own streams exactly as
``Simulation`` draws them; so patient i of a population is the run ``Simulation(scenario,
seeds[i])`` (true layer, displayed SpO2 without artefacts, and cuff readings at the
automatic cycle times, failures not modelled).

Supported: the patient, pkpd and device settings; timeline actions on the pump, boluses,
labetalol, ``set`` / ``trend`` / treatments, NIBP interval changes; the initial state's
trends; and extra timed actions passed by the caller (e.g. a pause at 25 min). Triggers
and artefacts are not evaluated here: use ``Simulation`` for them.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from simulators import params
from simulators.devices import nibp_values
from simulators.engine import DT_S, _TrendRun, load_scenario, rng_streams
from simulators.physiology import N_NOISE, NoiseBlocks, Physiology, sample_individual
from simulators.scenario import (
    Action,
    Bolus,
    Labetalol,
    PumpAction,
    Scenario,
    SetNibpInterval,
    SetRate,
    SetVar,
    StartInfusion,
    Treatment,
    Trend,
    TrendAction,
)

_ADAPTER: TypeAdapter = TypeAdapter(Action)
_SUPPORTED = (StartInfusion, SetRate, PumpAction, Bolus, Labetalol, SetVar, TrendAction, Treatment, SetNibpInterval)


@dataclass
class PopulationResult:
    seeds: list[int]
    t: np.ndarray  # (T,) sim seconds of the samples
    sbp: np.ndarray  # (N, T) true values, with beat-to-beat variability
    dbp: np.ndarray
    hr: np.ndarray
    sbp_smooth: np.ndarray  # (N, T) without beat-to-beat variability
    dbp_smooth: np.ndarray
    hr_smooth: np.ndarray
    ce: np.ndarray  # (N, T) effect-site concentration, ug/mL
    spo2_min: np.ndarray  # (N,) lowest displayed SpO2 (integer %)
    spo2_max: np.ndarray
    nibp_t: np.ndarray  # (M,) times of the cuff results
    nibp_sys: np.ndarray  # (N, M)
    nibp_dia: np.ndarray
    nibp_map: np.ndarray
    baseline: dict[str, float] = field(default_factory=dict)
    individual: dict[str, np.ndarray] = field(default_factory=dict)


def run_population(scenario: str | Path | Scenario, seeds: Sequence[int], duration_s: float | None = None, *,
                   every_s: float = 10.0, actions: Sequence[dict[str, Any]] = (), noise: bool = True) -> PopulationResult:
    sc = load_scenario(scenario)
    seeds = [int(s) for s in seeds]
    n = len(seeds)
    duration = float(duration_s if duration_s is not None else sc.duration_s)
    model = params.load_model()
    dcfg = params.merged(params.load_devices(), sc.devices.model_dump(exclude_none=True))
    spec = sc.patient_spec
    streams = [rng_streams(s) for s in seeds]
    inds = [sample_individual(spec, model, st["patient"], variation=noise and sc.pkpd.variation,
                              emax_factor=sc.pkpd.emax_factor) for st in streams]
    individual = {k: np.array([d[k] for d in inds]) for k in inds[0]}
    phys = Physiology(spec, individual, model, sc.pkpd.model_dump(), DT_S, batch=True, noise=noise)
    phys_noise = [NoiseBlocks(st["physiology"], N_NOISE) for st in streams]
    spo2_rng = [st["spo2"] for st in streams]
    nibp_rng = [st["nibp"] for st in streams]

    queue: list[tuple[float, int, Any]] = []
    for i, a in enumerate(sc.timeline):
        if isinstance(a, _SUPPORTED):
            queue.append((float(a.t), i, a))
    for j, raw in enumerate(actions):
        raw = dict(raw)
        when = float(raw.pop("t"))
        a = _ADAPTER.validate_python(raw)
        if not isinstance(a, _SUPPORTED):
            raise ValueError(f"population runs do not support the action {a.action!r}")
        queue.append((when, len(sc.timeline) + j, a))
    queue.sort(key=lambda e: (e[0], e[1]))
    trends: dict[str, _TrendRun] = {}

    def start_trend(t: float, p: str, to: float, over: float, shape: str, delay: float = 0.0) -> None:
        if over <= 0 and delay <= 0:
            phys.vars[p] = float(to)
            trends.pop(p, None)
        else:
            trends[p] = _TrendRun(p, phys.vars[p], float(to), t + delay, float(over), shape)

    nb = dcfg["nibp"]
    nibp_interval = float(nb["interval_s"])
    next_cycle = float(nb["first_at_s"])
    measuring_until: float | None = None
    last_cycle: float | None = None

    def apply(t: float, a: Any) -> None:
        nonlocal nibp_interval, next_cycle
        pump = phys.pump
        if isinstance(a, StartInfusion):
            pump.start(a.rate(), a.dose_mg_kg if a.over_min is not None else None)
        elif isinstance(a, SetRate):
            pump.set_rate(a.rate_mg_kg_h)
        elif isinstance(a, PumpAction):
            {"pause_infusion": pump.pause, "resume_infusion": pump.resume, "stop_infusion": pump.stop}[a.action]()
        elif isinstance(a, Bolus):
            phys.bolus(a.dose_mg_kg)
        elif isinstance(a, Labetalol):
            phys.labetalol(t, a.dose_mg_kg)
        elif isinstance(a, SetVar):
            trends.pop(a.param, None)
            phys.vars[a.param] = a.to
        elif isinstance(a, TrendAction):
            start_trend(t, a.param, a.to, a.over_s, a.shape)
        elif isinstance(a, Treatment):
            for tr in model["treatments"][a.action]["trends"]:
                tr = Trend.model_validate(tr)
                start_trend(t, tr.param, tr.to, tr.over_s, tr.shape, tr.delay_s)
        elif isinstance(a, SetNibpInterval):
            nibp_interval = a.interval_s
            base = last_cycle if last_cycle is not None else t
            next_cycle = max(t, base + a.interval_s) if a.interval_s > 0 else np.inf

    if sc.initial_state is not None:
        for tr in sc.states[sc.initial_state].trends:
            start_trend(0.0, tr.param, tr.to, tr.over_s, tr.shape, tr.delay_s)
    while queue and queue[0][0] <= 0:
        apply(0.0, queue.pop(0)[2])

    steps = int(round(duration / DT_S))
    every = max(1, int(round(every_s / DT_S)))
    n_samples = steps // every
    rec = {k: np.empty((n, n_samples)) for k in ("sbp", "dbp", "hr", "sbp_smooth", "dbp_smooth", "hr_smooth", "ce")}
    t_rec = np.empty(n_samples)
    sp = dcfg["spo2"]
    avg_n, lag_n = int(sp["averaging_s"]), int(sp["display_lag_s"])
    sat_ring = np.zeros((n, avg_n))
    lag_ring = np.zeros((n, lag_n + 1))
    spo2_min = np.full(n, np.inf)
    spo2_max = np.full(n, -np.inf)
    spo2_rows = np.empty((n, 0, 3))
    spo2_i = 0
    nibp_t: list[float] = []
    nibp_out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    block = NoiseBlocks.BLOCK
    zblock = np.zeros((n, block, N_NOISE))
    zero = np.zeros((n, N_NOISE))
    for k in range(steps):
        t = (k + 1) * DT_S
        if trends:
            done = []
            for name, tr in trends.items():
                phys.vars[name], fin = tr.value(t)
                if fin:
                    done.append(name)
            for name in done:
                del trends[name]
        if noise:
            if k % block == 0:
                zblock = np.stack([g.rng.standard_normal((block, N_NOISE)) for g in phys_noise])
            z = zblock[:, k % block, :]
        else:
            z = zero
        tv = phys.step(t, z)
        # displayed SpO2 (no artefacts): window average, display lag, noise, integer
        if noise and spo2_i % 600 == 0:
            spo2_rows = np.stack([g.standard_normal((600, 3)) for g in spo2_rng])
            spo2_i = 0
        zs = spo2_rows[:, spo2_i, 0] if noise else 0.0
        spo2_i += 1
        slot = k % avg_n
        sat_ring[:, slot] = tv.sao2
        filled = min(k + 1, avg_n)
        avg = sat_ring[:, :filled].sum(axis=1) / filled if filled < avg_n else sat_ring.sum(axis=1) / avg_n
        lag_ring[:, k % (lag_n + 1)] = avg
        oldest = lag_ring[:, (k + 1) % (lag_n + 1)] if k >= lag_n else lag_ring[:, 0]
        disp = np.clip(np.rint(oldest + sp["noise_sd_pct"] * zs), 0, 100)
        np.minimum(spo2_min, disp, out=spo2_min)
        np.maximum(spo2_max, disp, out=spo2_max)
        # NIBP at the automatic cycle (no failures)
        if measuring_until is not None and t >= measuring_until:
            measuring_until = None
            draws = np.array([[g.random(), *g.standard_normal(3)] for g in nibp_rng])
            zz = draws if noise else np.zeros_like(draws)
            nibp_t.append(t)
            nibp_out.append(nibp_values(tv.sbp, tv.dbp, zz[:, 1], zz[:, 2], zz[:, 3], nb))
        if measuring_until is None and t >= next_cycle:
            begun = next_cycle if t - DT_S <= next_cycle else t  # as Monitor._start_measurement
            measuring_until = begun + float(nb["measure_s"])
            last_cycle = begun
        while next_cycle <= t:
            next_cycle += nibp_interval if nibp_interval > 0 else np.inf
        while queue and queue[0][0] <= t + 1e-9:
            apply(t, queue.pop(0)[2])
        if (k + 1) % every == 0:
            j = (k + 1) // every - 1
            if j < n_samples:
                t_rec[j] = t
                for key in rec:
                    rec[key][:, j] = getattr(tv, key)
    m = len(nibp_t)
    ns = np.array([o[0] for o in nibp_out]).T if m else np.empty((n, 0))
    nd = np.array([o[1] for o in nibp_out]).T if m else np.empty((n, 0))
    nm = np.array([o[2] for o in nibp_out]).T if m else np.empty((n, 0))
    return PopulationResult(seeds=seeds, t=t_rec, spo2_min=spo2_min, spo2_max=spo2_max,
                            nibp_t=np.array(nibp_t), nibp_sys=ns, nibp_dia=nd, nibp_map=nm,
                            baseline={"sbp": spec.sbp, "dbp": spec.dbp, "hr": spec.hr, "spo2": spec.spo2},
                            individual=individual, **rec)
