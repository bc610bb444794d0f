"""Dose arithmetic: published examples, refusals, and properties of rates and totals."""

from __future__ import annotations

import pytest
from domain_session_gen import at
from hypothesis import given, settings
from hypothesis import strategies as st

from chairside.domain.dose import (
    DoseError,
    NeedsReason,
    check_concentration,
    check_dose,
    check_weight,
    load_safety,
    plan_from_dose,
    rate_from_ml_h,
    rate_from_order,
    safety,
    totals,
)
from chairside.domain.events import (
    InfusionPaused,
    InfusionRateChanged,
    InfusionResumed,
    InfusionStarted,
    InfusionStopped,
    SessionOpened,
)
from chairside.domain.protocol import load_template
from chairside.domain.state import fold

weights = st.floats(min_value=20, max_value=300, allow_nan=False)
concs = st.floats(min_value=0.01, max_value=100, allow_nan=False)


# ------------------------------------------------------------------ published numbers


def test_published_example_depression():
    # (b) A: 70 kg, 0.5 mg/kg over 40 min, 0.35 mg/mL (100 mL) -> 0.75 mg/kg/h, 35 mg, 150 mL/h
    p = plan_from_dose(70, 0.5, 40, 0.35)
    assert p.rate.mg_kg_h == pytest.approx(0.75)
    assert p.total_mg == pytest.approx(35.0)
    assert p.total_ml == pytest.approx(100.0)
    assert p.rate.ml_h == pytest.approx(150.0)
    assert p.rate.mg_h == pytest.approx(52.5)  # 35 mg over 40 min


def test_published_formula_ml_h():
    # (b) A: mL/h = (0.5 x kg / concentration) x 60/40
    for kg, c in [(55, 0.5), (82.5, 1.0), (120, 0.35)]:
        assert plan_from_dose(kg, 0.5, 40, c).rate.ml_h == pytest.approx(0.5 * kg / c * 60 / 40)


def test_chronic_pain_order():
    # (b) B: CRPS 0.35 mg/kg/h; 80 kg -> 28 mg/h; at 1 mg/mL -> 28 mL/h
    r = rate_from_order(80, 0.35, 1.0)
    assert (r.mg_h, r.ml_h) == (pytest.approx(28.0), pytest.approx(28.0))
    back = rate_from_ml_h(80, r.ml_h, 1.0)
    assert back.mg_kg_h == pytest.approx(0.35)


# ------------------------------------------------------------------ refusals


def test_safety_bounds_from_data():
    s = safety()
    assert (s.weight_min_kg, s.weight_max_kg) == (20, 300)  # issue 2: 20-300 kg
    assert s.weight_min_source == "[S]" and s.weight_max_source == "[S]"


@pytest.mark.parametrize("w", [19.9, 0, -70, 300.5, 7000])
def test_weight_outside_range_is_refused(w):
    with pytest.raises(DoseError, match=r"weight .* kg is outside 20–300 kg \[S\]"):
        check_weight(w)
    with pytest.raises(DoseError, match="outside"):
        plan_from_dose(w, 0.5, 40, 0.35)


@pytest.mark.parametrize("w", [20, 20.0, 300, 70.4])
def test_weight_inside_range(w):
    assert check_weight(w) == w


@pytest.mark.parametrize("c", [0, -0.35, float("nan"), "0.35"])
def test_bad_concentration_is_refused(c):
    with pytest.raises(DoseError, match="concentration"):
        check_concentration(c)
    with pytest.raises(DoseError):
        rate_from_order(70, 0.75, c)


def test_zero_duration_is_refused():
    with pytest.raises(DoseError, match="duration must be > 0"):
        plan_from_dose(70, 0.5, 0, 0.35)


def test_safety_file_errors_name_the_field(tmp_path):
    p = tmp_path / "safety.toml"
    p.write_text("[weight]\nmin_kg = 20\nmin_kg_source = \"[S]\"\nmax_kg = 300\n")
    with pytest.raises(DoseError, match=r"safety.toml: weight.max_kg_source"):
        load_safety(p)


def test_dose_above_hard_max_refused_usual_needs_reason():
    t = load_template("iv-ketamine-depression")
    d = t.dosing
    ok = check_dose(t, 0.5)
    assert not ok.above_usual and ok.unit == "mg/kg"
    above = (d.usual_max + d.hard_max) / 2
    with pytest.raises(NeedsReason) as exc:
        check_dose(t, above)
    assert exc.value.usual_max == d.usual_max and "record a reason" in str(exc.value)
    with pytest.raises(NeedsReason):
        check_dose(t, above, reason="   ")
    c = check_dose(t, above, reason="prescriber: partial response at 1.0 mg/kg")
    assert c.above_usual and c.reason.startswith("prescriber")
    with pytest.raises(DoseError, match="hard maximum") as exc2:
        check_dose(t, d.hard_max * 1.01, reason="any reason")
    assert not isinstance(exc2.value, NeedsReason)
    with pytest.raises(DoseError, match="> 0"):
        check_dose(t, 0)


def test_chronic_pain_checks_in_mg_kg_h():
    t = load_template("iv-ketamine-chronic-pain")
    assert check_dose(t, 0.35).unit == "mg/kg/h"
    with pytest.raises(DoseError, match="mg/kg/h"):
        check_dose(t, t.dosing.hard_max + 0.1)


def test_esketamine_84_mg_is_usual_and_above_is_refused():
    t = load_template("esketamine")
    assert not check_dose(t, 84).above_usual  # 56 or 84 mg [P]
    with pytest.raises(DoseError, match="hard maximum"):
        check_dose(t, 112)


# ------------------------------------------------------------------ properties


@settings(max_examples=300, deadline=None)
@given(weights, st.floats(min_value=0.01, max_value=5, allow_nan=False),
       st.floats(min_value=1, max_value=600, allow_nan=False), concs)
def test_plan_units_agree(w, dose, minutes, c):
    p = plan_from_dose(w, dose, minutes, c)
    assert p.rate.ml_h == pytest.approx(p.rate.mg_h / c, rel=1e-12)
    assert p.rate.mg_h == pytest.approx(p.rate.mg_kg_h * w, rel=1e-12)
    assert p.total_mg == pytest.approx(dose * w, rel=1e-12)
    assert p.rate.ml_h * minutes / 60 == pytest.approx(p.total_ml, rel=1e-12)
    assert p.total_ml * c == pytest.approx(p.total_mg, rel=1e-12)


@settings(max_examples=300, deadline=None)
@given(weights, st.floats(min_value=0, max_value=10, allow_nan=False), concs)
def test_order_units_agree(w, r, c):
    rate = rate_from_order(w, r, c)
    assert rate.ml_h == pytest.approx(rate.mg_h / c, rel=1e-12, abs=1e-15)
    assert rate.mg_h == pytest.approx(r * w, rel=1e-12, abs=1e-15)


steps = st.lists(
    st.tuples(st.sampled_from(["run", "pause", "rate"]),
              st.floats(min_value=0, max_value=3600, allow_nan=False),
              st.floats(min_value=0.5, max_value=500, allow_nan=False)),
    min_size=1, max_size=25,
)


@settings(max_examples=100, deadline=None)
@given(weights, concs, st.floats(min_value=0.5, max_value=500, allow_nan=False), steps, st.data())
def test_totals_equal_the_integral_of_the_schedule(w, c, first_rate, plan, data):
    """Totals through pauses and rate changes equal the integral of the pump's step function,
    computed here by a Riemann sum on a fine grid (independent of the segment bookkeeping)."""
    events = [SessionOpened(seq=0, session_id="S", patient_id="P", weight_kg=w, protocol="generic", **at(0))]
    t = 0.0
    events.append(InfusionStarted(concentration_mg_ml=c, rate_ml_h=first_rate, **at(t)))
    rate, running = first_rate, True
    pieces: list[tuple[float, float, float]] = []  # (from, to, mL/h while running)
    for op, dt, new_rate in plan:
        if running:
            pieces.append((t, t + dt, rate))
        t += dt
        if op == "pause" and running:
            events.append(InfusionPaused(**at(t)))
            running = False
        elif op == "pause":
            events.append(InfusionResumed(**at(t)))
            running = True
        elif op == "rate":
            events.append(InfusionRateChanged(rate_ml_h=new_rate, **at(t)))
            rate = new_rate
    events.append(InfusionStopped(**at(t)))
    events = [e.model_copy(update={"seq": i}) for i, e in enumerate(events)]
    s = fold(events)
    end = t
    q = data.draw(st.floats(min_value=0, max_value=end + 100, allow_nan=False)) if end > 0 else 0.0

    def integral(upto: float) -> float:
        # the step function sampled at 4,000 midpoints: error <= max rate * pieces * step
        n = 4_000
        if upto <= 0:
            return 0.0
        h = upto / n
        total = 0.0
        i = 0
        for k in range(n):
            x = (k + 0.5) * h
            while i < len(pieces) and pieces[i][1] <= x:
                i += 1
            if i < len(pieces) and pieces[i][0] <= x < pieces[i][1]:
                total += pieces[i][2] * h / 3600.0
        return total

    for when in (q, end):
        tot = totals(s, when)
        tol = max(r for _, _, r in pieces) * (len(pieces) + 1) * (when / 4_000) / 3600 * 2 + 1e-9 if pieces else 1e-9
        expected_ml = integral(when)
        assert tot.ml == pytest.approx(expected_ml, abs=tol)
        assert tot.mg == pytest.approx(tot.ml * c, rel=1e-12, abs=1e-12)
        assert tot.mg_kg == pytest.approx(tot.mg / w, rel=1e-12, abs=1e-12)
    # and exactly, piece by piece
    exact = sum(r * (b - a) / 3600 for a, b, r in pieces)
    assert totals(s, end + 1e6).ml == pytest.approx(exact, rel=1e-9, abs=1e-9)
