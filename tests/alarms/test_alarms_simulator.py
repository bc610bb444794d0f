"""The alarm engine against the simulated monitor: scenario bytes -> driver -> engine.

Uses ``simulators.api.generate(scenario, driver, seed, duration_s)`` and
``chairside.drivers.get_driver``; the engine is ticked on its own 1 Hz clock (the
simulator skips empty chunks, e.g. while the cable is disconnected). The scenario's
timeline gives the phases: infusion from its start for ``over_min`` (or, for a rate, until
the timeline's ``stop_infusion``), then recovery.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from alarms_support import raw

from chairside.alarms import AlarmEngine, load_profile
from chairside.domain.readings import Reading
from simulators import api as sim_api


def _infusion_window(sc) -> tuple[float | None, float | None]:
    """(start, end) of the infusion from the scenario's timeline: a dose over a time, or a
    rate until the timeline's stop_infusion (else to the end of the scenario)."""
    start = next((a for a in sc.timeline if a.action == "start_infusion"), None)
    if start is None:
        return None, None
    t_start = float(start.t)
    if start.over_min is not None:
        return t_start, t_start + 60.0 * float(start.over_min)
    stop = next((a for a in sc.timeline if a.action == "stop_infusion" and float(a.t) > t_start), None)
    return t_start, float(stop.t) if stop is not None else float(sc.duration_s)


def run_scenario(scenario, seed: int, duration_s: float, driver: str = "ge-s5", profile: str = "standard",
                 sim_out: list | None = None):
    """Feed a scenario (a name or a Scenario) through a driver into the engine. Returns
    (events, readings) with each reading as (sim_s, Reading) and each event carrying its
    mono (= sim seconds). ``sim_out`` receives the Simulation (its patient, its log)."""
    from chairside.drivers import get_driver

    sc = scenario if isinstance(scenario, sim_api.Scenario) else sim_api.load_scenario(scenario)
    t0 = sim_api.DEFAULT_START
    t_start, t_end = _infusion_window(sc)
    e = AlarmEngine(load_profile(profile), t0=t0)
    p = sc.patient
    e.set_baseline(p.sbp, p.dbp, p.hr, p.spo2)
    events: list = []
    readings: list = []
    drv = get_driver(driver)
    phase = "pre_infusion"
    clock = 0.0

    def at(s: float):
        return t0 + timedelta(seconds=s)

    def advance(s: float) -> None:
        nonlocal phase
        if phase == "pre_infusion" and t_start is not None and s >= t_start:
            phase = "infusion"
            events.extend(e.set_phase("infusion", at(t_start)))
            events.extend(e.set_infusing(True, at(t_start)))
        if phase == "infusion" and t_end is not None and s >= t_end:
            phase = "recovery"
            events.extend(e.set_phase("recovery", at(t_end)))
            events.extend(e.set_infusing(False, at(t_end)))

    advance(0.0)
    for s, data in sim_api.generate(sc, driver, seed, duration_s, sim=sim_out):
        while clock + 1.0 < s:  # keep time moving through gaps in the data
            clock += 1.0
            advance(clock)
            events.extend(e.tick(at(clock)))
        clock = max(clock, s)
        advance(s)
        now = at(s)
        for item in drv.feed(data):
            if isinstance(item, Reading):
                readings.append((s, item))
                events.extend(e.on_reading(item, now))
            else:
                events.extend(e.on_device_status(item, now))
        events.extend(e.tick(now))
    while clock + 1.0 <= duration_s:
        clock += 1.0
        advance(clock)
        events.extend(e.tick(at(clock)))
    return events, readings


def _phys_medium_or_high(events) -> list:
    out = []
    for ev in events:
        if ev.kind == "alarm_raised" and ev.alarm_class == "physiological" and ev.priority != "low":
            out.append(ev)
        elif ev.kind == "alarm_escalated" and ev.from_priority == "low" and ev.to_priority != "low":
            out.append(ev)
    return out


@pytest.fixture(scope="module")
def uneventful_runs():
    """100 seeded patients of the uneventful scenario, its whole length (infusion and
    recovery), with the scenario's inter-individual variation and realistic noise:
    [(seed, the patient's BP response factor, events)]."""
    duration = float(sim_api.load_scenario("uneventful").duration_s)
    runs = []
    for seed in range(100):
        got: list = []
        events, _ = run_scenario("uneventful", seed, duration, sim_out=got)
        runs.append((seed, got[0].individual["emax_bp"], events))
    return runs


def _raised(events, klass: str) -> list:
    return [ev for ev in events if ev.kind == "alarm_raised" and ev.alarm_class == klass]


@pytest.mark.slow
def test_the_uneventful_patient_with_realistic_noise_raises_no_alarm_in_95_of_100_seeds():
    """Scenario 1 of the model document: the calibrated patient (the scenario's own, model
    A3: +14/+9.5 mmHg at 40 min), "no false alarms under realistic noise". The seeds vary
    the noise only (drift, beat-to-beat variability, cuff read noise, random measurement
    failures); the population's spread of responses is the calibration test's business.
    With artefacts ON (issue 15 item 5) the target is the issue's: at most 1 physiological
    alarm per session on average, none of them HIGH."""
    sc = sim_api.load_scenario("uneventful")
    sc = sc.model_copy(update={"pkpd": sc.pkpd.model_copy(update={"variation": False})})
    noisy = {}
    for seed in range(100):
        events, _ = run_scenario(sc, seed, float(sc.duration_s))
        phys = _raised(events, "physiological")
        if phys:
            noisy[seed] = sorted({(x.rule, x.priority) for x in phys})
    total = sum(len(v) for v in noisy.values())
    assert total / 100 <= 1.0, f"{total} physiological alarms in 100 sessions: {noisy}"
    assert not [k for k, v in noisy.items() if any(p == "high" for _r, p in v)], noisy


@pytest.mark.slow
def test_uneventful_raises_no_medium_or_high_physiological_alarm_in_95_of_100_seeds(uneventful_runs):
    noisy = {seed: sorted({x.rule for x in _phys_medium_or_high(ev)}) for seed, _f, ev in uneventful_runs
             if _phys_medium_or_high(ev)}
    assert len(noisy) <= 5, f"medium/high physiological alarms in {len(noisy)}/100 seeds: {noisy}"


@pytest.mark.slow
def test_uneventful_patients_with_an_average_response_raise_no_alarm_at_all(uneventful_runs):
    """No crying wolf under realistic noise: patients whose BP response is at most the
    calibrated average (individual factor <= 1; the mean peak rise is +14/+9.5 mmHg, model
    doc A3) raise no physiological alarm of ANY priority in >= 95 % of seeds. The alarms
    the scenario does raise come from high responders, whose rise is real: the lognormal
    spread reproduces the published SD (Yale 2024: +16, SD 11.2 mmHg), and table (a)'s
    advisories (dSBP >= 20, >= 160/100) then fire in some infusions by design."""
    average = [(seed, ev) for seed, f, ev in uneventful_runs if f <= 1.0]
    assert len(average) >= 40  # the median lognormal factor is below 1: most patients
    noisy = {seed: sorted({(x.rule, x.priority) for x in _raised(ev, "physiological")}) for seed, ev in average
             if _raised(ev, "physiological")}
    assert len(noisy) <= 0.05 * len(average), f"{len(noisy)}/{len(average)} average responders alarmed: {noisy}"


@pytest.mark.slow
def test_uneventful_raises_technical_alarms_only_for_its_artefacts(uneventful_runs):
    """Artefacts are ON (probe off, motion, low perfusion; issue 15 item 5) but nothing else
    fails: no data gap, no link loss, NIBP on schedule, no implausible value. The technical
    alarms are the sensor's (SpO2 lost, pulse signal quality, a cuff failing under motion)."""
    artefact_rules = {"spo2_lost", "pr_signal_quality", "nibp_failed", "nibp_overdue", "pr_implausible",
                      "spo2_implausible"}  # a cuff failing under motion; motion's erratic pulse
    other = {seed: sorted({x.rule for x in _raised(ev, "technical")} - artefact_rules)
             for seed, _f, ev in uneventful_runs}
    assert {k: v for k, v in other.items() if v} == {}


@pytest.mark.parametrize("driver", ["ge-s5", "hl7"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_hypertensive_surge_alarms_on_first_nibp_at_or_above_180(seed, driver):
    events, readings = run_scenario("hypertensive-surge", seed, 2700.0, driver=driver)
    first = next(((s, r) for s, r in readings if r.param == "nibp_sys" and r.value is not None
                  and r.valid and r.value >= 180), None)
    assert first is not None, "the scenario did not reach 180 systolic"
    s180, r180 = first
    # one alarm per parameter group (issue 15 item 6): the NIBP group's alarm is raised or
    # escalated on that reading, led by SBP >= 180 or by a worse BP condition of the same set
    group = {ld["name"] for ld in raw("standard")["ladder"] if ld.get("group") == "nibp"}
    at_that_reading = [ev for ev in events if ev.rule in group and abs(ev.mono - s180) < 1e-6
                       and ev.kind in ("alarm_raised", "alarm_escalated") and not getattr(ev, "reannounce", False)]
    assert at_that_reading, f"no NIBP alarm at the first reading >= 180 (t={s180}, {r180.value})"
    ev = at_that_reading[-1]
    prio = ev.priority if ev.kind == "alarm_raised" else ev.to_priority
    assert prio in ("medium", "high")
    if ev.rule == "sbp_high":
        assert ev.value == pytest.approx(r180.value)
    assert ev.source_tag in ("[P]", "[P*]", "[S]", "[C]")


@pytest.mark.parametrize("driver", ["ge-s5", "masimo"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_probe_off_is_technical_and_never_spo2_low(seed, driver):
    events, _ = run_scenario("probe-off", seed, 2400.0, driver=driver)
    tech = [ev for ev in events if ev.kind == "alarm_raised" and ev.alarm_class == "technical"]
    assert any(ev.rule == "spo2_lost" for ev in tech), [ev.rule for ev in tech]
    spo2_phys = [ev for ev in events if ev.kind == "alarm_raised" and ev.alarm_class == "physiological"
                 and ev.param == "spo2"]
    assert spo2_phys == [], [(ev.rule, ev.value, ev.mono) for ev in spo2_phys]
    # the probe comes off while infusing for more than the high threshold: it escalates
    prof = load_profile("standard")
    esc = [ev for ev in events if ev.kind == "alarm_escalated" and ev.rule == "spo2_lost"]
    assert esc and esc[0].to_priority == "high"
    lost = next(ev for ev in tech if ev.rule == "spo2_lost")
    assert esc[0].mono - lost.mono == pytest.approx(
        prof.setting("spo2_lost_high_s") - prof.setting("spo2_lost_medium_s"), abs=2.0)


def test_cable_disconnect_raises_no_data():
    """probe-off scenario, 30 min: the monitor's cable is pulled (silent link) while infusing."""
    events, _ = run_scenario("probe-off", 0, 2100.0, driver="ge-s5")
    nd = [ev for ev in events if ev.rule == "no_data" and ev.kind in ("alarm_raised", "alarm_escalated")]
    assert nd and nd[0].kind == "alarm_raised" and nd[0].priority == "medium" and nd[0].mono >= 1800
    assert any(ev.kind == "alarm_escalated" and ev.to_priority == "high" for ev in nd)


def test_probe_off_alarm_ends_when_spo2_is_back_not_when_the_probe_is_reattached():
    """probe-off through the Masimo driver: the probe is put back 300 s after the dashes
    (probe-off.toml), the oximeter then searches for a pulse with dashes still shown; the
    technical alarm ends with the first valid SpO2, and never became a desaturation."""
    got: list = []
    events, readings = run_scenario("probe-off", 0, 1300.0, driver="masimo", sim_out=got)
    cleared = [ev for ev in events if ev.kind == "alarm_cleared" and ev.rule == "spo2_lost"]
    assert len(cleared) == 1
    back = next(s for s, r in readings if r.param == "spo2" and r.valid and r.value is not None and s > 950)
    assert cleared[0].mono == pytest.approx(back)
    reattached = next(e.t for e in got[0].events if e.kind == "artefact_end" and e.detail == "probe_off")
    assert cleared[0].mono > reattached  # the pulse search in between still counted as no SpO2
    assert not [ev for ev in _raised(events, "physiological") if ev.param == "spo2"]
