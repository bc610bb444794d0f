"""Session state: unit tests and hypothesis properties of the fold."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from domain_session_gen import T0, at, sessions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chairside.domain.dose import totals
from chairside.domain.events import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmEscalated,
    AlarmRaised,
    AlarmSilenced,
    Amendment,
    BaselineRecorded,
    DeviceStatusChanged,
    EventAdapter,
    InfusionPaused,
    InfusionRateChanged,
    InfusionResumed,
    InfusionStarted,
    InfusionStopped,
    NoteAdded,
    ObservationRecorded,
    PhaseChanged,
    ReadingsRecorded,
    SessionClosed,
    SessionOpened,
)
from chairside.domain.readings import DeviceStatus, Reading
from chairside.domain.state import EMPTY_STATE, SessionState, StateError, apply, fold

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def opened(seq: int = 0, weight: float = 70.0, **kw) -> SessionOpened:
    return SessionOpened(seq=seq, session_id="S1", patient_id="P-0001", weight_kg=weight,
                         weight_source="measured", protocol="iv-ketamine-depression", staff=("AB",),
                         simulated=True, sim_seed=7, **at(0.0), **kw)


def numbered(*events):
    return [e.model_copy(update={"seq": i}) for i, e in enumerate(events)]


# ------------------------------------------------------------------ structure


def test_empty_and_opened():
    s = fold([opened()])
    assert s.session is not None
    assert (s.session.patient_id, s.session.weight_kg, s.session.weight_source) == ("P-0001", 70.0, "measured")
    assert (s.session.protocol, s.session.staff, s.session.simulated, s.session.sim_seed) == (
        "iv-ketamine-depression", ("AB",), True, 7)
    assert s.phase == "pre_infusion"
    assert s.infusion.status == "not_started"
    assert s.last_seq == 0 and not s.closed


def test_first_event_must_open_the_session():
    with pytest.raises(StateError, match=r"#0 \(note\).*first event must be session_opened"):
        apply(EMPTY_STATE, NoteAdded(seq=0, text="x", **at(0)))


def test_out_of_order_seq_is_refused():
    s = fold([opened(seq=0), NoteAdded(seq=1, text="a", **at(1))])
    with pytest.raises(StateError, match=r"#1 \(note\) is out of order.*#1"):
        apply(s, NoteAdded(seq=1, text="again", **at(2)))
    with pytest.raises(StateError, match="out of order"):
        apply(s, NoteAdded(seq=0, text="older", **at(2)))


def test_unsequenced_event_takes_the_next_seq():
    s = fold([opened(seq=0), NoteAdded(seq=-1, text="a", **at(1))])
    assert s.last_seq == 1
    assert s.notes[0].text == "a"


def test_events_after_close_are_refused_but_amendments_are_kept():
    s = fold(numbered(opened(), NoteAdded(text="a", **at(1)), SessionClosed(reason="done", **at(2))))
    assert s.closed and s.closed_seq == 2 and s.close_reason == "done"
    with pytest.raises(StateError, match=r"#3 \(note\).*closed at #2"):
        apply(s, NoteAdded(seq=3, text="late", **at(3)))
    s2 = apply(s, Amendment(seq=3, target_seq=1, reason="typo", replacement={"text": "b"}, **at(3)))
    assert s2.notes[0].text == "b"
    assert s2.effective(1).original.text == "a"


def test_second_open_is_refused():
    with pytest.raises(StateError, match="already open"):
        fold(numbered(opened(), opened()))


def test_phase_changes_follow_the_current_phase():
    s = fold(numbered(opened(), PhaseChanged(from_phase="pre_infusion", to_phase="infusion", **at(5))))
    assert s.phase == "infusion" and s.phase_seqs == (1,)
    with pytest.raises(StateError, match="from_phase 'pre_infusion' but the phase is 'infusion'"):
        apply(s, PhaseChanged(seq=2, from_phase="pre_infusion", to_phase="recovery", **at(6)))


# ------------------------------------------------------------------ infusion


def test_infusion_segments_and_totals_through_pause_and_rate_change():
    # 70 kg, 0.35 mg/mL: 150 mL/h (0.75 mg/kg/h) for 10 min, paused 5 min, 150 mL/h for 10 min,
    # then 300 mL/h for 10 min, stopped. mL = 150*20/60 + 300*10/60 = 50 + 50 = 100 mL; mg = 35.
    evs = numbered(
        opened(),
        InfusionStarted(concentration_mg_ml=0.35, rate_mg_kg_h=0.75, rate_ml_h=150.0, **at(60)),
        InfusionPaused(reason="BP", **at(660)),
        InfusionResumed(**at(960)),
        InfusionRateChanged(rate_mg_kg_h=1.5, rate_ml_h=300.0, old_rate_ml_h=150.0, **at(1560)),
        InfusionStopped(**at(2160)),
    )
    s = fold(evs)
    inf = s.infusion
    assert inf.status == "stopped"
    assert [(g.start_mono, g.end_mono, g.rate_ml_h) for g in inf.segments] == [
        (60, 660, 150.0), (960, 1560, 150.0), (1560, 2160, 300.0)]
    assert inf.last_start_or_increase_mono == 1560  # the increase
    tot = totals(s, 5000.0)
    assert tot.ml == pytest.approx(100.0)
    assert tot.mg == pytest.approx(35.0)
    assert tot.mg_kg == pytest.approx(0.5)
    # at the pause: 10 min at 150 mL/h = 25 mL; same by wall time
    assert totals(s, 800.0).ml == pytest.approx(25.0)
    assert totals(s, T0 + timedelta(seconds=800)).ml == pytest.approx(25.0)


def test_running_segment_counts_up_to_now():
    s = fold(numbered(opened(), InfusionStarted(concentration_mg_ml=0.35, rate_ml_h=150.0, **at(0))))
    assert s.infusion.segments[-1].open
    assert totals(s, 1200.0).ml == pytest.approx(50.0)  # 20 min at 150 mL/h


def test_rate_from_mg_kg_h_only_is_completed_with_weight_and_concentration():
    s = fold(numbered(opened(weight=70), InfusionStarted(concentration_mg_ml=0.35, rate_mg_kg_h=0.75, **at(0))))
    assert s.infusion.rate_ml_h == pytest.approx(150.0)  # published example, section (b) A


@pytest.mark.parametrize("bad, msg", [
    (InfusionPaused(**at(1)), "not running"),
    (InfusionResumed(**at(1)), "not paused"),
    (InfusionStopped(**at(1)), "no infusion to stop"),
    (InfusionRateChanged(rate_ml_h=10, **at(1)), "no infusion to change"),
    (InfusionStarted(concentration_mg_ml=0.0, rate_ml_h=10, **at(1)), "concentration must be > 0"),
])
def test_infusion_transitions_are_checked(bad, msg):
    with pytest.raises(StateError, match=msg):
        fold(numbered(opened(), bad))


def test_start_while_running_is_refused():
    with pytest.raises(StateError, match="already running"):
        fold(numbered(opened(), InfusionStarted(concentration_mg_ml=1, rate_ml_h=1, **at(1)),
                      InfusionStarted(concentration_mg_ml=1, rate_ml_h=1, **at(2))))


# ------------------------------------------------------------------ readings


def test_latest_readings_and_last_nibp_time():
    r1 = ReadingsRecorded(readings=(
        Reading(param="nibp_sys", value=130, unit="mmHg", device_time=T0 + timedelta(seconds=100)),
        Reading(param="spo2", value=97, unit="%"),
    ), **at(101))
    r2 = ReadingsRecorded(readings=(
        Reading(param="spo2", value=None, unit="%", valid=False, flags=("probe_off",)),
        Reading(param="nibp_sys", value=None, unit="mmHg", valid=False, flags=("nibp_failed",)),
    ), **at(400))
    s = fold(numbered(opened(), r1, r2))
    assert s.latest["spo2"].value is None and s.latest["spo2"].flags == ("probe_off",)
    assert s.latest_valid["spo2"].value == 97
    assert s.last_nibp_t == T0 + timedelta(seconds=100)  # the failed cuff is not a measurement
    assert s.last_nibp_mono == pytest.approx(100.0)
    assert s.readings_count == 4
    with pytest.raises(TypeError):
        s.latest["hr"] = None  # type: ignore[index]


# ------------------------------------------------------------------ alarms


def _raise(aid, seq_mono, latching=False, priority="high"):
    return AlarmRaised(alarm_id=aid, priority=priority, param="nibp_sys", value=210, limit=200,
                       latching=latching, source_tag="[S]", **at(seq_mono))


def test_latching_alarm_stays_until_acknowledged():
    s = fold(numbered(opened(), _raise("bp#1", 10, latching=True), AlarmCleared(alarm_id="bp#1", **at(20))))
    a = s.alarms["bp#1"]
    assert (a.status, a.condition_present) == ("latched", False)
    assert a.open
    s = apply(s, AlarmAcknowledged(seq=3, alarm_id="bp#1", by="AB", **at(30)))
    a = s.alarms["bp#1"]
    assert (a.status, a.acknowledged_by) == ("cleared", "AB")
    assert not s.open_alarms


def test_non_latching_alarm_clears_by_itself_and_ack_is_recorded():
    s = fold(numbered(opened(), _raise("hr#1", 10, priority="medium"),
                      AlarmAcknowledged(alarm_id="hr#1", by="CD", **at(12)),
                      AlarmSilenced(alarm_id="hr#1", mode="audio_paused", duration_s=120, by="CD", **at(13))))
    a = s.alarms["hr#1"]
    assert (a.status, a.acknowledged_by, a.priority, a.alarm_class) == ("acknowledged", "CD", "medium", "physiological")
    assert a.silenced_at(100.0) and not a.silenced_at(133.0)
    s = apply(s, AlarmEscalated(seq=4, alarm_id="hr#1", from_priority="medium", to_priority="high", **at(14)))
    assert (s.alarms["hr#1"].priority, s.alarms["hr#1"].status, s.alarms["hr#1"].escalations) == ("high", "active", 1)
    s = apply(s, AlarmCleared(seq=5, alarm_id="hr#1", **at(15)))
    assert s.alarms["hr#1"].status == "cleared"
    with pytest.raises(StateError, match="already cleared"):
        apply(s, AlarmCleared(seq=6, alarm_id="hr#1", **at(16)))


def test_unknown_alarm_and_double_raise_are_refused():
    with pytest.raises(StateError, match="unknown alarm 'x'"):
        fold(numbered(opened(), AlarmAcknowledged(alarm_id="x", **at(1))))
    with pytest.raises(StateError, match="already raised"):
        fold(numbered(opened(), _raise("a", 1), _raise("a", 2)))


def test_device_status_latest_per_condition():
    st_on = DeviceStatusChanged(status=DeviceStatus(kind="probe_off", param="spo2"), **at(1))
    st_off = DeviceStatusChanged(status=DeviceStatus(kind="probe_off", param="spo2", active=False), **at(9))
    s = fold(numbered(opened(), st_on))
    assert [d.status.kind for d in s.active_device_conditions] == ["probe_off"]
    s = apply(s, st_off.model_copy(update={"seq": 2}))
    assert s.active_device_conditions == ()


# ------------------------------------------------------------------ amendments


def test_amendment_keeps_the_original_beside_the_replacement():
    s = fold(numbered(opened(), ObservationRecorded(scale="cadss", score=12, **at(5)),
                      Amendment(target_seq=1, reason="added wrong", replacement={"score": 2}, author="CD", **at(9))))
    eff = s.effective(1)
    assert eff.original.score == 12 and eff.current.score == 2 and eff.amended
    assert [(f, old, new) for f, old, new, _ in eff.changes()] == [("score", 12, 2)]
    assert s.observations[0].score == 2
    assert s.events[1].score == 12  # the record itself is unchanged


def test_weight_amendment_changes_mg_per_kg_not_delivered_ml():
    evs = numbered(
        opened(weight=70),
        InfusionStarted(concentration_mg_ml=0.35, rate_mg_kg_h=0.75, rate_ml_h=150.0, **at(0)),
        InfusionStopped(**at(2400)),
        Amendment(target_seq=0, reason="re-weighed", replacement={"weight_kg": 100.0}, **at(2500)),
    )
    s = fold(evs)
    assert s.weight_kg == 100.0
    t = totals(s, 3000.0)
    assert t.ml == pytest.approx(100.0) and t.mg == pytest.approx(35.0)
    assert t.mg_kg == pytest.approx(0.35)


@pytest.mark.parametrize("amend, msg", [
    (Amendment(target_seq=5, reason="x", replacement={}, **at(3)), "not an earlier event"),
    (Amendment(target_seq=1, reason="x", replacement={"kind": "note"}, **at(3)), "cannot be amended"),
    (Amendment(target_seq=1, reason="x", replacement={"bogus": 1}, **at(3)), "has no field bogus"),
    (Amendment(target_seq=1, reason="x", replacement={"score": "high"}, **at(3)), "replacement score"),
])
def test_bad_amendments_are_refused(amend, msg):
    with pytest.raises(StateError, match=msg):
        fold(numbered(opened(), ObservationRecorded(scale="moaas", score=4, **at(1)), amend))


def test_baseline_is_the_current_version():
    s = fold(numbered(opened(), BaselineRecorded(sbp=120, dbp=80, **at(1)),
                      Amendment(target_seq=1, reason="wrong arm", replacement={"sbp": 125}, **at(2))))
    assert (s.baseline.sbp, s.baseline.dbp) == (125, 80)


# ------------------------------------------------------------------ properties


@SETTINGS
@given(sessions(), st.data())
def test_fold_of_prefix_then_apply_equals_fold_of_whole(gen, data):
    events, _ = gen
    k = data.draw(st.integers(0, len(events)))
    s = fold(events[:k])
    for ev in events[k:]:
        s = apply(s, ev)
    assert s == fold(events)


@SETTINGS
@given(sessions())
def test_json_round_trip_folds_equal(gen):
    events, _ = gen
    again = [EventAdapter.validate_json(EventAdapter.dump_json(e)) for e in events]
    assert fold(again) == fold(events)
    assert fold(again).last_seq == len(events) - 1


@SETTINGS
@given(sessions())
def test_fold_agrees_with_the_generators_model(gen):
    events, m = gen
    s = fold(events)
    assert s.infusion.status == m.status
    assert s.closed == m.closed
    assert {a: st_.status for a, st_ in s.alarms.items()} == m.alarms
    assert s.weight_kg == m.weight
    # totals: the integral of the pump schedule, computed by the generator
    for t in (m.end / 3, m.end / 2, m.end, m.end + 3600):
        tot = totals(s, t)
        assert tot.ml == pytest.approx(m.expected_ml(t), rel=1e-9, abs=1e-9)
        assert tot.mg == pytest.approx(m.expected_mg(t), rel=1e-9, abs=1e-9)
        assert tot.mg_kg == pytest.approx(m.expected_mg(t) / m.weight, rel=1e-9, abs=1e-12)
    segs = s.infusion.segments
    assert all(a.end_mono is not None and a.end_mono <= b.start_mono for a, b in zip(segs, segs[1:]))
    assert sum(1 for g in segs if g.open) == (1 if m.status == "running" else 0)
    # amendments: originals are never lost
    for target, amends in s.amendments.items():
        assert s.events[target] is events[target]
        assert all(a.target_seq == target for a in amends)


@SETTINGS
@given(sessions(close=True))
def test_nothing_but_amendments_after_close(gen):
    events, _ = gen
    s = fold(events)
    with pytest.raises(StateError, match="closed"):
        apply(s, NoteAdded(seq=len(events), text="late", **at(1e6)))


def test_fold_is_fast_enough_for_a_long_session():
    # 1 h at 1 Hz, one readings event per second: the console reopens such files
    rs = [ReadingsRecorded(seq=i + 1, readings=(Reading(param="hr", value=70, unit="bpm"),
                                                Reading(param="spo2", value=98, unit="%")), **at(i + 1.0))
          for i in range(3_600)]
    s = fold([opened(), *rs])
    assert s.readings_count == 7_200
    assert isinstance(s, SessionState) and math.isclose(s.last_mono, 3_600.0)



@SETTINGS
@given(sessions(first_seq=1))
def test_unsequenced_events_fold_like_the_stored_file(gen):
    # live: events applied before the store numbers them (seq -1); file: numbered from 1
    events, _ = gen
    live = fold([e.model_copy(update={"seq": -1}) for e in events])
    assert live == fold(events)
    assert live.session.opened_seq == 1
