"""The true-physiology layer of the simulated patient (what the patient really does).

Owns: individual parameters (``sample_individual``: lognormal PK and Emax factors, age
and hypertension factors), the infusion pump (``Pump``: rate, pause/resume, stop when the
dose is in), the haemodynamic effect model (effect site, Emax as fractions of baseline),
baseline drift (exact Ornstein-Uhlenbeck), beat-to-beat variability and respiratory sinus
arrhythmia, rhythm (sinus / AF / SVT with a pulse deficit), the labetalol bolus effect,
hidden arterial saturation (SaO2) driven by airway obstruction / respiratory depression
and relieved by oxygen and airway support, and perfusion index.

Scenario-controlled state variables (``VARIABLES``: agitation, vagal tone, nausea,
airway obstruction...) are moved by trends and treatments; they act on the model, never
on displayed numbers. Every constant comes from ``data/model.toml``.

One class serves one patient (floats, used by the engine) or a population (numpy arrays
over patients, used by the calibration runs) with the same equations.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.pk import PkState

# Scenario-controlled state variables and their resting values.
VARIABLES: dict[str, float] = {
    "emax_scale": 1.0,  # multiplies the individual ketamine Emax (surge scenario)
    "sbp_offset": 0.0,  # mmHg, scripted additive change (e.g. sustained tachyarrhythmia)
    "dbp_offset": 0.0,
    "hr_offset": 0.0,  # bpm
    "vagal": 0.0,  # 0..1 vagal tone (vasovagal reaction)
    "agitation": 0.0,  # 0..1 emergence / dissociative agitation
    "nausea": 0.0,  # 0..1
    "preload": 0.0,  # 0..1 legs raised
    "airway_obstruction": 0.0,  # 0..1
    "resp_depression": 0.0,  # 0..1
    "o2_support": 0.0,  # 0..1 supplemental oxygen
    "airway_support": 0.0,  # 0..1 jaw thrust / airway manoeuvre
    "pi_scale": 1.0,  # multiplies the perfusion index
    "rhythm_rate": 0.0,  # ventricular rate in AF / SVT, bpm (set from the model at start)
    "pulse_deficit": 0.0,  # fraction of beats without a palpable pulse
    "motion": 0.0,  # 0..1 patient movement (read by the device layer)
    "sedative": 0.0,  # 0..1 benzodiazepine effect (midazolam): deepens obstruction and depression
    "destimulation": 0.0,  # 0..1 reassurance and a quiet room (eases agitation)
    "stimulation": 0.0,  # 0..1 verbal/tactile stimulation (eases obstruction for a while)
}
RHYTHMS = ("sinus", "af", "svt")

# Noise columns drawn per step from the physiology stream.
NOISE_COLUMNS = ("drift_sbp", "drift_dbp", "drift_hr", "drift_sao2", "beat_sbp", "beat_dbp", "beat_hr", "pi")
N_NOISE = len(NOISE_COLUMNS)


@dataclass(frozen=True)
class PatientSpec:
    """The scenario's patient (baseline values at rest, before the infusion)."""

    weight_kg: float
    age: float
    sbp: float
    dbp: float
    hr: float
    spo2: float
    hypertension: bool = False


def sample_individual(spec: PatientSpec, model: dict[str, Any], rng: np.random.Generator,
                      variation: bool = True, emax_factor: float | None = None) -> dict[str, float]:
    """Draw one patient's factors. The draws are always made in the same order so that
    switching variation off does not shift any other stream."""
    z = rng.standard_normal(4)
    phase = float(rng.uniform(0.0, 2.0 * math.pi))
    pv, dv = model["pk"]["variation"], model["pd"]["variation"]
    age_factor = max(dv["age_factor_min"], 1.0 + dv["age_slope_per_year"] * (spec.age - dv["age_reference_years"]))
    htn = dv["hypertension_factor"] if spec.hypertension else 1.0
    if variation:
        cl = math.exp(pv["omega_cl"] * z[0])
        v = math.exp(pv["omega_v"] * z[1])
        wb, wh, rho = dv["omega_emax_bp"], dv["omega_emax_hr"], dv["rho_bp_hr"]
        bp = math.exp(wb * z[2] - wb * wb / 2.0)
        hr = math.exp(wh * (rho * z[2] + math.sqrt(1.0 - rho * rho) * z[3]) - wh * wh / 2.0)
    else:
        cl = v = bp = hr = 1.0
    if emax_factor is not None:
        bp = hr = float(emax_factor)
    else:
        bp *= age_factor * htn
        hr *= age_factor * htn
    return {"cl_factor": cl, "v_factor": v, "emax_bp": bp, "emax_hr": hr, "rsa_phase": phase}


class Pump:
    """The infusion pump: a rate in mg/kg/h, an optional dose target, pause/resume/stop."""

    __slots__ = ("weight_kg", "rate_mg_kg_h", "paused", "running", "target_mg", "delivered_mg")

    def __init__(self, weight_kg: float) -> None:
        self.weight_kg = weight_kg
        self.rate_mg_kg_h = 0.0
        self.paused = False
        self.running = False
        self.target_mg: float | None = None
        self.delivered_mg = 0.0

    def start(self, rate_mg_kg_h: float, dose_mg_kg: float | None = None) -> None:
        self.rate_mg_kg_h = rate_mg_kg_h
        self.running = True
        self.paused = False
        self.target_mg = None if dose_mg_kg is None else dose_mg_kg * self.weight_kg + self.delivered_mg

    def set_rate(self, rate_mg_kg_h: float) -> None:
        self.rate_mg_kg_h = rate_mg_kg_h

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def stop(self) -> None:
        self.running = False
        self.paused = False

    @property
    def infusing(self) -> bool:
        return self.running and not self.paused and self.rate_mg_kg_h > 0

    def take(self, dt_s: float) -> float:
        """The mean rate (mg/s) over the next ``dt_s`` and the bookkeeping of the dose;
        stops the pump when the target dose is in."""
        if not self.infusing:
            return 0.0
        rate = self.rate_mg_kg_h * self.weight_kg / 3600.0
        amount = rate * dt_s
        if self.target_mg is not None and self.delivered_mg + amount >= self.target_mg:
            amount = max(0.0, self.target_mg - self.delivered_mg)
            self.running = False
        self.delivered_mg += amount
        return amount / dt_s


class TrueValues:
    """One second of true physiology (floats, or arrays over patients)."""

    __slots__ = ("t", "sbp", "dbp", "map", "hr", "pr", "sao2", "pi", "cp", "ce",
                 "sbp_smooth", "dbp_smooth", "hr_smooth", "rhythm", "rate", "motion")

    def get(self, name: str):
        return getattr(self, name)


class Physiology:
    """True physiology of one patient (``batch=False``) or of many (``batch=True``; the
    individual factors are then arrays)."""

    def __init__(self, spec: PatientSpec, individual: dict[str, Any], model: dict[str, Any],
                 pkpd: dict[str, Any] | None = None, dt_s: float = 1.0, batch: bool = False,
                 noise: bool = True) -> None:
        pkpd = pkpd or {}
        self.model = model
        self.spec = spec
        self.dt = dt_s
        self.batch = batch
        self.noise = noise
        pd = dict(model["pd"])
        for key in ("ke0_per_min", "ec50_ug_ml", "gamma", "emax_sbp", "emax_dbp", "emax_hr"):
            if pkpd.get(key) is not None:
                pd[key] = float(pkpd[key])
        self.pd = pd
        pk_name = pkpd.get("pk", "domino")
        self.pk = PkState(model["pk"][pk_name], spec.weight_kg, individual["cl_factor"],
                          individual["v_factor"], pd["ke0_per_min"], dt_s, batch)
        self.pump = Pump(spec.weight_kg)
        self.vars: dict[str, float] = dict(VARIABLES)
        self.vars["rhythm_rate"] = model["arrhythmia"]["default_rate_bpm"]
        self.rhythm = "sinus"
        self.ind = individual
        self._labetalol: list[tuple[float, float]] = []  # (time given, dose scale)
        if batch:
            n = np.asarray(individual["cl_factor"]).shape[0]
            zero = np.zeros(n)
            self.d_sbp, self.d_dbp, self.d_hr, self.d_sao2 = zero.copy(), zero.copy(), zero.copy(), zero.copy()
            self.sao2 = np.full(n, float(spec.spo2))
            self._min, self._max = np.minimum, np.maximum
        else:
            self.d_sbp = self.d_dbp = self.d_hr = self.d_sao2 = 0.0
            self.sao2 = float(spec.spo2)
            self._min, self._max = min, max
        dr = model["drift"]
        a = math.exp(-dt_s / dr["tau_s"])
        s = math.sqrt(1.0 - a * a)
        self._ou_a, self._ou_s = a, s
        self._ou_rho = dr["rho_sbp_dbp"]
        self._ou_sao2_a = math.exp(-dt_s / dr["sao2_tau_s"])
        self._ou_sao2_s = math.sqrt(1.0 - self._ou_sao2_a**2)
        sa = model["sao2"]
        self._sao2_fall = 1.0 - math.exp(-dt_s / sa["tau_fall_s"])
        self._sao2_rise = 1.0 - math.exp(-dt_s / sa["tau_rise_s"])
        lab = model["labetalol"]
        kon = lab["onset_rate_per_min"] / 60.0
        kout = math.log(2.0) / (lab["half_life_min"] * 60.0)
        tpk = math.log(kon / kout) / (kon - kout)
        self._lab_k = (kon, kout, math.exp(-kout * tpk) - math.exp(-kon * tpk))
        self._rsa_w = 2.0 * math.pi * model["beat"]["resp_rate_per_min"] / 60.0
        self._rsa_phase = individual["rsa_phase"]
        self._sin = np.sin if batch else math.sin
        # per-patient constants of the step (floats, or arrays over patients)
        self._k_sbp = spec.sbp * pd["emax_sbp"] * individual["emax_bp"]
        self._k_dbp = spec.dbp * pd["emax_dbp"] * individual["emax_bp"]
        self._k_hr = spec.hr * pd["emax_hr"] * individual["emax_hr"]
        rho = self._ou_rho
        self._c_dsbp = s * dr["sbp_sd_mmhg"]
        self._c_ddbp1 = s * dr["dbp_sd_mmhg"] * rho
        self._c_ddbp2 = s * dr["dbp_sd_mmhg"] * math.sqrt(1.0 - rho * rho)
        self._c_dhr = s * dr["hr_sd_bpm"]
        self._c_dsao2 = self._ou_sao2_s * dr["sao2_sd_pct"]
        self._constants()

    # --- actions on the model -------------------------------------------------------
    def labetalol(self, t: float, dose_mg_kg: float | None = None) -> None:
        lab = self.model["labetalol"]
        ref = lab["reference_dose_mg_kg"]
        scale = 1.0 if dose_mg_kg is None else min(lab["max_dose_factor"], dose_mg_kg / ref)
        self._labetalol.append((t, scale))

    def bolus(self, dose_mg_kg: float) -> None:
        self.pk.bolus(dose_mg_kg * self.spec.weight_kg)

    def _labetalol_effect(self, t: float) -> float:
        if not self._labetalol:
            return 0.0
        kon, kout, norm = self._lab_k
        total = 0.0
        for t0, scale in self._labetalol:
            age = t - t0
            if age > 0:
                total += scale * (math.exp(-kout * age) - math.exp(-kon * age)) / norm
        return total

    # --- one step ---------------------------------------------------------------------
    def _constants(self) -> None:
        """Model constants of the step, read once from the parameter dicts."""
        m = self.model
        lab, ag, na, pl, vg = m["labetalol"], m["agitation"], m["nausea"], m["preload"], m["vagal"]
        self._c_lab = (lab["sbp_mmhg"], lab["dbp_mmhg"], lab["hr_bpm"])
        self._c_ag = (ag["sbp_mmhg"], ag["dbp_mmhg"], ag["hr_bpm"])
        self._c_na = (na["sbp_mmhg"], na["dbp_mmhg"], na["hr_bpm"])
        self._c_pl = (pl["sbp_mmhg"], pl["dbp_mmhg"])
        self._c_vg = (vg["sbp_mmhg"], vg["dbp_mmhg"], vg["hr_fraction"])
        b = m["beat"]
        self._c_beat = (b["sbp_sd_mmhg"], b["dbp_sd_mmhg"], b["rsa_amplitude_bpm"], b["hr_sd_bpm"])
        ar = m["arrhythmia"]
        self._c_arr = {"af": ar["af_irregularity_sd_bpm"], "svt": ar["svt_sd_bpm"]}
        c = m["clamp"]
        self._c_clamp = (c["sbp_min_mmhg"], c["sbp_max_mmhg"], c["dbp_min_mmhg"], c["pulse_pressure_min_mmhg"],
                         c["hr_min_bpm"], c["hr_max_bpm"])
        sa = m["sao2"]
        self._c_sao2 = (sa["airway_support_benefit"], sa["o2_benefit"], sa["desat_max_pct"], sa["floor_pct"],
                        sa["ceiling_pct"])
        pf = m["perfusion"]
        self._c_pi = (pf["pi_baseline"], pf["vagal_fraction"], pf["pi_sd"], pf["pi_min"])
        pd = self.pd
        self._c_pd = (pd["gamma"], pd["ec50_ug_ml"])
        cc = dict(m.get("ce_coupling", {}))
        self._c_floor = cc.pop("ce_floor_ug_ml", 0.05)
        self._coupled = tuple(name for name, on in cc.items() if on)
        self._c_destim = m.get("destimulation", {}).get("agitation_fraction", 0.0)
        st = m.get("stimulation", {})
        self._c_stim = (st.get("obstruction_fraction", 0.0), st.get("decay_s", 0.0))
        sd = m.get("sedative", {})
        self._c_sed = (sd.get("resp_depression", 0.0), sd.get("obstruction_factor", 0.0))
        self._ce_peak: dict[str, Any] = {}

    def _coupling(self, ce) -> dict[str, Any]:
        """Ce / its peak since each drug-driven variable rose above zero (1 when unset)."""
        v = self.vars
        out: dict[str, Any] = {}
        for name in self._coupled:
            if v[name] <= 0.0:
                self._ce_peak.pop(name, None)
                continue
            peak = self._ce_peak.get(name)
            peak = self._max(ce, self._c_floor) if peak is None else self._max(peak, ce)
            self._ce_peak[name] = peak
            out[name] = self._min(1.0, self._max(ce, 0.0) / peak)
        return out

    def step(self, t: float, z) -> TrueValues:
        """Advance to time ``t`` (the end of the step) with the noise row ``z``
        (``N_NOISE`` values, or an (N, N_NOISE) array in batch mode)."""
        v = self.vars
        spec = self.spec
        self.pk.step(self.pump.take(self.dt))
        ce = self.pk.ce
        gamma, ec50 = self._c_pd
        if gamma == 1.0:
            eff = ce / (ec50 + ce)
        else:
            cg = self._max(ce, 0.0) ** gamma
            eff = cg / (ec50**gamma + cg)
        zc = [z[:, k] for k in range(N_NOISE)] if self.batch else z
        noise = self.noise
        if noise:
            a = self._ou_a
            self.d_sbp = a * self.d_sbp + self._c_dsbp * zc[0]
            self.d_dbp = a * self.d_dbp + (self._c_ddbp1 * zc[0] + self._c_ddbp2 * zc[1])
            self.d_hr = a * self.d_hr + self._c_dhr * zc[2]
            self.d_sao2 = self._ou_sao2_a * self.d_sao2 + self._c_dsao2 * zc[3]
        # the scenario's state variables and rescue drugs: plain numbers shared by all patients
        lab_e = self._labetalol_effect(t) if self._labetalol else 0.0
        coupling = self._coupling(ce) if self._coupled else {}
        ag, na, pl, vg = v["agitation"], v["nausea"], v["preload"], v["vagal"]
        if ag > 0.0:
            ag = ag * coupling.get("agitation", 1.0) * (1.0 - v["destimulation"] * self._c_destim)
        c_lab, c_ag, c_na, c_pl, c_vg = self._c_lab, self._c_ag, self._c_na, self._c_pl, self._c_vg
        s_add = (spec.sbp + lab_e * c_lab[0] + v["sbp_offset"] + ag * c_ag[0] + na * c_na[0]
                 + pl * c_pl[0] + vg * c_vg[0])
        d_add = (spec.dbp + lab_e * c_lab[1] + v["dbp_offset"] + ag * c_ag[1] + na * c_na[1]
                 + pl * c_pl[1] + vg * c_vg[1])
        h_add = spec.hr + lab_e * c_lab[2] + v["hr_offset"] + ag * c_ag[2] + na * c_na[2]
        vag_f = 1.0 - vg * c_vg[2]
        se = v["emax_scale"] * eff
        sbp_s = s_add + self.d_sbp + self._k_sbp * se
        dbp_s = d_add + self.d_dbp + self._k_dbp * se
        hr_s = (h_add + self.d_hr + self._k_hr * se) * vag_f
        sd_s, sd_d, rsa, sd_h = self._c_beat
        if noise:
            sbp = sbp_s + sd_s * zc[4]
            dbp = dbp_s + sd_d * zc[5]
        else:
            sbp, dbp = sbp_s, dbp_s
        rhythm = self.rhythm
        if rhythm == "sinus":
            hr = hr_s
            if noise:
                hr = hr + (rsa * self._sin(self._rsa_w * t + self._rsa_phase) + sd_h * zc[6])
        else:
            hr = v["rhythm_rate"] * vag_f + (self._c_arr[rhythm] * zc[6] if noise else 0.0)
        s_lo, s_hi, d_lo, pp, h_lo, h_hi = self._c_clamp
        mn, mx = self._min, self._max
        sbp = mn(mx(sbp, s_lo), s_hi)
        dbp = mn(mx(dbp, d_lo), sbp - pp)
        hr = mn(mx(hr, h_lo), h_hi)
        # saturation: first order towards a target set by ventilation
        support, o2_benefit, desat, floor, ceiling = self._c_sao2
        sed_resp, sed_obst = self._c_sed
        stim_frac, stim_decay = self._c_stim
        sed = v["sedative"]
        obstruction = v["airway_obstruction"] * coupling.get("airway_obstruction", 1.0)
        if v["airway_obstruction"] > 0.0:
            obstruction = mn(1.0, obstruction * (1.0 + sed * sed_obst)) * (1.0 - v["stimulation"] * stim_frac)
        obstruction = obstruction * (1.0 - v["airway_support"] * support)
        resp = mn(1.0, v["resp_depression"] * coupling.get("resp_depression", 1.0) + sed * sed_resp)
        hypo = mx(obstruction, resp) * (1.0 - v["o2_support"] * o2_benefit)
        if v["stimulation"] > 0.0 and stim_decay > 0.0:
            v["stimulation"] = max(0.0, v["stimulation"] - self.dt / stim_decay)
        target = mn(mx((spec.spo2 - desat * hypo) + self.d_sao2, floor), ceiling)
        if self.batch:
            k = np.where(target < self.sao2, self._sao2_fall, self._sao2_rise)
        else:
            k = self._sao2_fall if target < self.sao2 else self._sao2_rise
        self.sao2 = self.sao2 + (target - self.sao2) * k
        pi_base, pi_vag, pi_sd, pi_min = self._c_pi
        pi = pi_base * v["pi_scale"] * (1.0 - vg * pi_vag)
        if noise:
            pi = pi * (1.0 + pi_sd * zc[7])
        pi = mx(pi, pi_min)
        out = TrueValues()
        out.t = t
        out.sbp, out.dbp, out.hr = sbp, dbp, hr
        out.map = dbp + (sbp - dbp) / 3.0
        out.pr = hr * (1.0 - v["pulse_deficit"])
        out.sao2 = self.sao2
        out.pi = pi
        out.cp = self.pk.cp
        out.ce = ce
        out.sbp_smooth, out.dbp_smooth, out.hr_smooth = sbp_s, dbp_s, hr_s
        out.rhythm = rhythm
        out.rate = self.pump.rate_mg_kg_h if self.pump.infusing else 0.0
        out.motion = v["motion"]
        return out


class NoiseBlocks:
    """Standard normal rows from one generator, drawn in fixed blocks (the stream is the
    same whatever the caller's stepping)."""

    BLOCK = 600

    def __init__(self, rng: np.random.Generator, columns: int = N_NOISE) -> None:
        self.rng = rng
        self.columns = columns
        self._rows: list[list[float]] = []
        self._i = self.BLOCK

    def next(self) -> list[float]:
        if self._i >= self.BLOCK:
            self._rows = self.rng.standard_normal((self.BLOCK, self.columns)).tolist()
            self._i = 0
        row = self._rows[self._i]
        self._i += 1
        return row
