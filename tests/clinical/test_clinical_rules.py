"""Issue 14, the rules as pure domain code: infusion completion, esketamine devices, the
template's start checks, the resume and bag checks, sedation/dissociation at discharge.

Expected values come from the protocol files (read here as data, not through the code
under test where it matters) and from the order arithmetic done independently in
fractions; never from running the code under test.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from chairside.domain import completion, esketamine, recovery_criteria, start_checks
from chairside.domain.dose import totals
from chairside.domain.events import (
    BaselineRecorded,
    ChecklistCompleted,
    DeviceGiven,
    InfusionCompleted,
    InfusionPaused,
    InfusionRateChanged,
    InfusionResumed,
    InfusionStarted,
    InfusionStopped,
    ObservationRecorded,
    SessionOpened,
)
from chairside.domain.protocol import load_template
from chairside.domain.state import StateError, apply, fold

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PROTOCOLS = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data" / "protocols"


def toml(name: str) -> dict:
    return tomllib.loads((PROTOCOLS / f"{name}.toml").read_text(encoding="utf-8"))


def at(mono: float) -> dict:
    return {"t": T0 + timedelta(seconds=mono), "mono": mono}


def opened(weight: float = 70.0, protocol: str = "iv-ketamine-depression") -> SessionOpened:
    return SessionOpened(**at(0), session_id="s1", patient_id="P1", weight_kg=weight, protocol=protocol)


def started(mono: float, *, weight: float, dose_mg_kg: float, minutes: float, conc: float) -> InfusionStarted:
    mg = dose_mg_kg * weight
    rate = dose_mg_kg / (minutes / 60)
    return InfusionStarted(**at(mono), concentration_mg_ml=conc, rate_mg_kg_h=rate, rate_ml_h=rate * weight / conc,
                           dose_mg_kg=dose_mg_kg, duration_min=minutes, dose_mg=mg, volume_to_infuse_ml=mg / conc)


# ------------------------------------------------------------------ completion


def test_order_of_template_a_completes_at_40_min_and_totals_stop():
    # (b) A: 70 kg, 0.5 mg/kg over 40 min at 0.35 mg/mL -> 35 mg, 100 mL; nobody presses Stop
    a = toml("iv-ketamine-depression")["dosing"]
    dose, minutes = a["dose"], a["duration_min"]
    st0 = fold([opened(70), started(60, weight=70, dose_mg_kg=dose, minutes=minutes, conc=0.35)])
    c = completion.due(st0.infusion, 60 + minutes * 60)
    assert c is not None and c.at_mono == pytest.approx(60 + minutes * 60)
    assert c.dose_mg == pytest.approx(dose * 70) and c.volume_ml == pytest.approx(dose * 70 / 0.35)
    # before the tick records it, the totals already stop at the order (90 min: not 1.125 mg/kg)
    assert totals(st0, 60 + 90 * 60).mg_kg == pytest.approx(dose)
    ev = InfusionCompleted(**at(60 + minutes * 60 + 0.7), at_t=c.at_t, at_mono=c.at_mono, dose_mg=c.dose_mg,
                           volume_ml=c.volume_ml)
    st1 = apply(st0, ev)
    assert st1.infusion.status == "stopped" and st1.infusion.completed
    assert st1.infusion.stopped_t == T0 + timedelta(seconds=60 + minutes * 60)
    assert totals(st1, 60 + 90 * 60).mg == pytest.approx(dose * 70)
    # the nurse's Stop afterwards confirms the pump stopped; the totals do not move
    st2 = apply(st1, InfusionStopped(**at(60 + 41 * 60), reason="pump stopped"))
    assert st2.infusion.pump_stop_confirmed and st2.infusion.stopped_t == st1.infusion.stopped_t


def test_rate_change_recomputes_the_end():
    # 70 kg, 35 mg at 52.5 mg/h; after 20 min (17.5 mg in) the rate halves: 17.5 mg at 26.25 mg/h = 40 min more
    st0 = fold([opened(70), started(0, weight=70, dose_mg_kg=0.5, minutes=40, conc=0.35),
                InfusionRateChanged(**at(1200), concentration_mg_ml=0.35, rate_mg_kg_h=0.375,
                                    rate_ml_h=0.375 * 70 / 0.35, reason="slower")])
    assert completion.expected_end(st0.infusion).at_mono == pytest.approx(1200 + 40 * 60)


def test_pause_holds_the_end_and_completion_refused_when_paused():
    st0 = fold([opened(70), started(0, weight=70, dose_mg_kg=0.5, minutes=40, conc=0.35),
                InfusionPaused(**at(600), reason="BP")])
    assert completion.expected_end(st0.infusion) is None
    st1 = apply(st0, InfusionResumed(**at(900)))
    assert completion.expected_end(st1.infusion).at_mono == pytest.approx(40 * 60 + 300)
    with pytest.raises(StateError):
        apply(st0, InfusionCompleted(**at(3000), at_t=T0, at_mono=2400.0, dose_mg=35, volume_ml=100))


steps = st.lists(st.tuples(st.integers(min_value=1, max_value=1500),
                           st.sampled_from(["rate", "pause", "resume"]),
                           st.sampled_from([Fraction(1, 4), Fraction(1, 2), Fraction(1), Fraction(3, 2), Fraction(2)])),
                 max_size=12)


@given(weight=st.sampled_from([50, 63, 70, 88, 120]), conc=st.sampled_from([Fraction(35, 100), Fraction(1), Fraction(1, 2)]),
       seq=steps)
def test_property_total_never_exceeds_the_order_and_completion_matches(weight, conc, seq):
    order = Fraction(1, 2) * weight  # 0.5 mg/kg
    base = Fraction(3, 4)  # mg/kg/h for 0.5 mg/kg over 40 min
    events = [opened(weight), started(0, weight=weight, dose_mg_kg=0.5, minutes=40, conc=float(conc))]
    state = fold(events)
    # the reference, in exact fractions: piecewise constant mg/s, paused = 0
    t = Fraction(0)
    rate = base
    running = True
    given_mg = Fraction(0)
    expected_end: Fraction | None = None

    def advance(to: Fraction) -> None:
        nonlocal given_mg, expected_end
        if running and expected_end is None:
            per_s = rate * weight / 3600
            if given_mg + per_s * (to - t) >= order:
                expected_end = t + (order - given_mg) / per_s
            given_mg += per_s * (to - t)

    recorded = False
    for dt, action, factor in seq:
        nxt = t + dt
        due = completion.due(state.infusion, float(nxt))
        if due is not None and not recorded:
            state = apply(state, InfusionCompleted(**at(float(nxt)), at_t=due.at_t, at_mono=due.at_mono,
                                                   dose_mg=due.dose_mg, volume_ml=due.volume_ml))
            recorded = True
        advance(nxt)
        t = nxt
        if recorded:
            break
        if action == "rate":
            rate = base * factor
            state = apply(state, InfusionRateChanged(**at(float(t)), concentration_mg_ml=float(conc),
                                                     rate_mg_kg_h=float(rate), rate_ml_h=float(rate * weight / conc),
                                                     reason="r"))
        elif action == "pause" and running:
            running = False
            state = apply(state, InfusionPaused(**at(float(t)), reason="p"))
        elif action == "resume" and not running:
            running = True
            state = apply(state, InfusionResumed(**at(float(t))))
    event(f"completion recorded during the steps: {recorded}")
    if not recorded:  # let the clock run on: the end comes when the pump runs
        if running:
            advance(t + 10 ** 7)
            end = completion.expected_end(state.infusion)
            assert end is not None and end.at_mono == pytest.approx(float(expected_end), abs=1e-6)
        else:
            assert completion.expected_end(state.infusion) is None
    else:
        assert expected_end is not None
        assert state.infusion.stopped_mono == pytest.approx(float(expected_end), abs=1e-6)
    for probe in (t, t + 3600, t + 10 ** 6):
        assert totals(state, float(probe)).mg <= float(order) * (1 + 1e-12)


# ------------------------------------------------------------------ esketamine devices


def eske_state(*device_monos: float, planned: float | None = None):
    evs = [opened(70, "esketamine")]
    total = 0.0
    dev = toml("esketamine")["dosing"]["device_mg"]
    for i, m in enumerate(device_monos):
        total += dev
        evs.append(DeviceGiven(**at(m), device_mg=dev, n=i + 1, total_mg=total, planned_mg=planned, lot=f"L{i}"))
    return fold(evs)


def test_esketamine_three_devices_84_mg_and_fourth_refused():
    tpl = load_template("esketamine")
    doc = toml("esketamine")["dosing"]
    wait = doc["device_wait_min"] * 60
    st0 = eske_state(0, wait, 2 * wait, planned=doc["hard_max"])
    assert st0.device_doses.total_mg == doc["hard_max"] == 84
    assert [d.lot for d in st0.device_doses.devices] == ["L0", "L1", "L2"]
    with pytest.raises(esketamine.DeviceRefused, match="112 mg, above the maximum 84 mg"):
        esketamine.check_device(tpl, st0.device_doses, 3 * wait, reason="asked")


def test_esketamine_wait_between_devices_and_plan_bounds():
    tpl = load_template("esketamine")
    wait = toml("esketamine")["dosing"]["device_wait_min"] * 60
    st0 = eske_state(0, planned=56)
    with pytest.raises(esketamine.DeviceRefused, match="wait 5 min"):
        esketamine.check_device(tpl, st0.device_doses, wait - 30)
    chk = esketamine.check_device(tpl, st0.device_doses, wait)
    assert (chk.n, chk.total_mg, chk.completes_plan) == (2, 56, True)
    with pytest.raises(esketamine.DeviceRefused, match="above the maximum"):
        esketamine.check_plan(tpl, 500)
    with pytest.raises(esketamine.DeviceRefused, match="whole number"):
        esketamine.check_plan(tpl, 50)


def test_esketamine_bp_checks():
    tpl = load_template("esketamine")
    rems = toml("esketamine")["rems"]
    st0 = eske_state(600, planned=56)
    first = st0.device_doses.first.t
    log = [(first - timedelta(minutes=2), 0.0, 150.0, 90.0),
           (first + timedelta(minutes=rems["bp_at_min"]), 0.0, 160.0, 95.0)]
    now = first + timedelta(minutes=125)
    found = esketamine.bp_findings(tpl, st0.device_doses, log, now)
    assert found == (f"no BP in the last {rems['bp_before_completion_min']:g} min before discharge [S]",)
    log.append((now - timedelta(minutes=5), 0.0, 130.0, 80.0))
    assert esketamine.bp_findings(tpl, st0.device_doses, log, now) == ()
    assert len(esketamine.bp_findings(tpl, st0.device_doses, log[2:], now)) == 2


# ------------------------------------------------------------------ start checks


def checklist(**kw) -> ChecklistCompleted:
    base = dict(contraindications={}, hours_fasted=6.0, escort_confirmed=True, consent=True,
                medications_reviewed=True, allergies="none known")
    base.update(kw)
    return ChecklistCompleted(**at(10), **base)


def two_bps(gap_min: float):
    return ((T0, 0.0, 130.0, 80.0), (T0 + timedelta(minutes=gap_min), gap_min * 60, 132.0, 82.0))


def test_start_checks_follow_the_template():
    tpl = load_template("iv-ketamine-depression")
    g = toml("iv-ketamine-depression")["gate"]
    ok = start_checks.verdict(start_checks.start_findings(tpl, checklist(), two_bps(g["baseline_interval_min"])))
    assert ok.clear and ok.line() == "clear to start"
    v = start_checks.verdict(start_checks.start_findings(tpl, checklist(escort_confirmed=False, hours_fasted=0.5),
                                                        two_bps(g["baseline_interval_min"] - 1)))
    assert [f.key for f in v.blocks] == ["escort"]
    assert {f.key for f in v.advisories} == {"fasting", "baseline_bp"}
    assert f"fasted 0.5 h, the template asks >= {g['fasting_food_h']:g} h [C]" in [f.text for f in v.advisories]
    assert v.line().startswith("BLOCKED")
    adv = start_checks.verdict(start_checks.start_findings(tpl, checklist(hours_fasted=0.5),
                                                          two_bps(g["baseline_interval_min"])))
    assert not adv.refused and adv.line() == "1 advisory applies: a recorded reason is needed to start"


def test_start_checks_esketamine_concomitant_classes():
    tpl = load_template("esketamine")
    classes = toml("esketamine")["gate"]["concomitant_classes"]
    bp = ((T0, 0.0, 130.0, 80.0),)
    found = start_checks.start_findings(tpl, checklist(), bp)
    assert [f.key for f in found] == ["concomitant"] and all(c in found[0].text for c in classes)
    answers = {c: False for c in classes} | {"benzodiazepines": True}
    found = start_checks.start_findings(tpl, checklist(concomitant=answers), bp)
    assert [(f.key, f.level) for f in found] == [("concomitant", "advisory")] and "benzodiazepines" in found[0].text


def test_resume_needs_a_bp_after_the_pause():
    st0 = fold([opened(70), started(0, weight=70, dose_mg_kg=0.5, minutes=40, conc=0.35),
                InfusionPaused(**at(900), reason="BP 188/123")])
    before = ((T0 + timedelta(seconds=800), 800.0, 188.0, 123.0),)
    assert [f.level for f in start_checks.resume_findings(st0.infusion, before)] == ["block"]
    after = (*before, (T0 + timedelta(seconds=1200), 1200.0, 186.0, 118.0))
    found = start_checks.resume_findings(st0.infusion, after, ("SBP >= 180",), True)
    assert [f.level for f in found] == ["override"] and "186/118" in found[0].text


def test_bag_checks():
    tpl = load_template("iv-ketamine-depression")
    d = toml("iv-ketamine-depression")["dosing"]
    assert [f.level for f in start_checks.bag_findings(tpl, concentration_mg_ml=150, bag_ml=100, order_mg=37.5)] \
        == ["block"]
    assert d["concentration_max_mg_ml"] < 150
    low = start_checks.bag_findings(tpl, concentration_mg_ml=0.205, bag_ml=100, order_mg=37.5)
    assert [(f.key, f.level) for f in low] == [("bag_content", "advisory")] and "20.5 mg" in low[0].text
    assert start_checks.bag_findings(tpl, concentration_mg_ml=0.375, bag_ml=100, order_mg=37.5) == ()


# ------------------------------------------------------------------ discharge: sedation, dissociation


def obs(mono: float, scale: str, score: float) -> ObservationRecorded:
    return ObservationRecorded(**at(mono), scale=scale, score=score)


def test_sedated_dissociated_patient_is_not_ready():
    tpl = load_template("iv-ketamine-depression")
    d = toml("iv-ketamine-depression")["discharge"]
    evs = [opened(70), BaselineRecorded(**at(30), sbp=130, dbp=80, cadss=0),
           started(60, weight=70, dose_mg_kg=0.5, minutes=40, conc=0.35),
           InfusionStopped(**at(60 + 2400), reason="done"),
           obs(3000, "moaas", 3), obs(3000, "cadss", 20), obs(3000, "rass", 2)]
    unmet = recovery_criteria.unmet_recovery_criteria(tpl, fold(evs))
    assert len(unmet) == 3
    assert f"MOAA/S 3" in unmet[0] and f"needs {d['moaas_required']} [S]" in unmet[0]
    assert "RASS +2" in unmet[1]
    assert "CADSS 20" in unmet[2] and f"<= {d['cadss_max']} [S]" in unmet[2]
    # an observation before the end does not count; a missing required score blocks
    pre = [*evs[:3], obs(1000, "moaas", 5), obs(1000, "cadss", 0), evs[3]]
    unmet = recovery_criteria.unmet_recovery_criteria(tpl, fold(pre))
    assert [u.split(":")[0] for u in unmet] == ["sedation", "dissociation"] and all("no " in u for u in unmet)
    well = [*evs, obs(4000, "moaas", 5), obs(4000, "cadss", 2), obs(4000, "rass", 0)]
    assert recovery_criteria.unmet_recovery_criteria(tpl, fold(well)) == ()
