"""The one event -> engine-effects table (``AlarmEngine.on_event``): the engine's shadow of
the session (phase, infusing, baseline, NIBP schedule) comes from domain events only, and
staff actions given as events act on the alarms as the direct calls do. Expected numbers
come from the protocol and limits data files."""

from __future__ import annotations

import tomllib
from pathlib import Path

from alarms_support import T0, UNITS, Harness, at, num, raw

from chairside.alarms import AlarmEngine
from chairside.alarms.effects import EFFECTS
from chairside.domain.events import (
    AlarmAcknowledged,
    AlarmSilenced,
    BaselineRecorded,
    DischargeAssessed,
    InfusionPaused,
    InfusionRateChanged,
    InfusionResumed,
    InfusionStarted,
    InfusionStopped,
    ObservationRecorded,
    PhaseChanged,
)
from chairside.domain.protocol import load_template
from chairside.domain.readings import Reading

PROTOCOLS = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data" / "protocols"


def _proto(name: str) -> dict:
    return tomllib.loads((PROTOCOLS / f"{name}.toml").read_text(encoding="utf-8"))


def _engine(template: str | None = None) -> tuple[Harness, AlarmEngine]:
    h = Harness("standard", phase="pre_infusion", template=None if template is None else load_template(template))
    return h, h.e


def _start(s: float, rate: float = 0.5, ml: float = 100.0) -> InfusionStarted:
    return InfusionStarted(t=at(s), author="RN", concentration_mg_ml=1.0, rate_mg_kg_h=rate, rate_ml_h=ml)


def test_the_table_covers_every_event_that_changes_the_engine():
    assert set(EFFECTS) == {
        "baseline_recorded", "phase_changed", "infusion_started", "infusion_rate_changed", "infusion_paused",
        "infusion_resumed", "infusion_stopped", "infusion_completed", "observation_recorded", "discharge_assessed",
        "alarm_acknowledged", "alarm_silenced",
    }


def test_infusion_events_feed_phase_and_infusing():
    h, e = _engine()
    assert (e.phase, e.infusing) == ("pre_infusion", False)
    e.on_event(_start(10), at(10))
    assert (e.phase, e.infusing) == ("infusion", True)
    e.on_event(InfusionPaused(t=at(20), author="RN", reason="x"), at(20))
    assert (e.phase, e.infusing) == ("infusion", False)
    e.on_event(InfusionResumed(t=at(30), author="RN", rate_mg_kg_h=0.5, rate_ml_h=100.0), at(30))
    assert e.infusing
    e.on_event(InfusionStopped(t=at(40), author="RN", reason="done"), at(40))
    assert (e.phase, e.infusing) == ("recovery", False)
    e.on_event(DischargeAssessed(t=at(50), author="RN", discharged=True), at(50))
    e.on_event(PhaseChanged(t=at(50), author="RN", from_phase="recovery", to_phase="discharged"), at(50))
    assert (e.phase, e.infusing) == ("discharged", False)


def test_baseline_event_arms_the_rise_rules():
    h, e = _engine()
    e.on_event(_start(0), at(0))
    rise = next(ld for ld in raw("standard")["ladder"] if ld.get("relative") and ld["param"] == "nibp_sys")
    assert not [lv for lv in e.limits("nibp_sys") if lv.relative]  # no baseline: no rise rule
    e.on_event(BaselineRecorded(t=at(1), author="RN", sbp=120, dbp=80, hr=70, spo2=98), at(1))
    got = {lv.limit for lv in e.limits("nibp_sys") if lv.relative}
    want = {120 + num(t["limit"]) for t in rise["tiers"] if "infusion" in t["phases"]}
    assert got == want


def test_observation_event_reaches_the_scale_rules():
    h, e = _engine()
    e.on_event(_start(0), at(0))
    ld = next(x for x in raw("standard")["ladder"] if x.get("scale") == "moaas")
    tier = next(t for t in ld["tiers"] if "infusion" in t["phases"] and t["priority"] == "high")
    out = e.on_event(ObservationRecorded(t=at(5), author="RN", scale="moaas", score=tier["limit"]), at(5))
    assert [ev.priority for ev in out if ev.kind == "alarm_raised"] == ["high"]


def test_tightened_nibp_schedule_after_start_and_after_a_rate_increase():
    """Chronic-pain template: NIBP every tightened_every_min for tightened_for_min after the
    start and after each increase, else every_min; NIBP overdue after that plus the grace."""
    c = _proto("iv-ketamine-chronic-pain")["bp_cadence"]["infusion"]
    tight, window, every = c["tightened_every_min"] * 60, c["tightened_for_min"] * 60, c["every_min"] * 60
    grace = num(raw("standard")["settings"]["nibp_overdue_grace_s"])
    h, e = _engine("iv-ketamine-chronic-pain")
    e.on_event(_start(0), at(0))
    assert e.nibp_cadence_s(at(1)) == tight
    assert e.nibp_cadence_s(at(window + 1)) == every
    h.nibp(0, 120, 80, 93)
    h.reading(tight + grace - 1, "hr", 72)
    assert h.alarm("nibp_overdue") is None
    h.reading(tight + grace + 1, "hr", 72)
    assert h.alarm("nibp_overdue") is not None
    # a rate increase tightens the schedule again; a decrease does not
    t1 = window + 60
    h.nibp(t1, 120, 80, 93)
    e.on_event(InfusionRateChanged(t=at(t1), author="RN", rate_mg_kg_h=0.4, rate_ml_h=80.0,
                                   old_rate_mg_kg_h=0.5, old_rate_ml_h=100.0, reason="down"), at(t1))
    assert e.nibp_cadence_s(at(t1 + 1)) == every
    e.on_event(InfusionRateChanged(t=at(t1), author="RN", rate_mg_kg_h=0.6, rate_ml_h=120.0,
                                   old_rate_mg_kg_h=0.4, old_rate_ml_h=80.0, reason="up"), at(t1))
    assert e.nibp_cadence_s(at(t1 + 1)) == tight


def test_staff_acknowledgement_event_falls_back_to_the_same_rule():
    """A replayed acknowledgement names the recorded alarm id; the recomputed alarm of the
    same rule is acknowledged instead."""
    h = Harness("standard", phase="infusion")
    sev = next(ld for ld in raw("standard")["ladder"] if ld["name"] == "sbp_high")
    high = next(t for t in sev["tiers"] if "infusion" in t["phases"] and t["priority"] == "high")
    h.nibp(0, high["limit"] + 5, 90, 110)
    a = h.alarm("sbp_high")
    assert a is not None and not a.acknowledged
    out = h.e.on_event(AlarmAcknowledged(t=at(1), alarm_id="sbp_high#999", rule="sbp_high", by="RN",
                                         author="RN"), at(1))
    assert [(ev.kind, ev.alarm_id, ev.by) for ev in out] == [("alarm_acknowledged", a.id, "RN")]
    # the engine's own events (no staff initials) have no effect
    assert h.e.on_event(AlarmSilenced(t=at(2), alarm_id=a.id, rule="sbp_high", mode="resumed"), at(2)) == []


def test_staff_audio_pause_event_uses_its_duration():
    h = Harness("standard", phase="infusion")
    h.reading(0, "spo2", 50)
    out = h.e.on_event(AlarmSilenced(t=at(1), alarm_id="*", mode="audio_paused", duration_s=30, by="RN",
                                     author="RN"), at(1))
    assert out and all(ev.mode == "audio_paused" and ev.duration_s == 30 for ev in out)
    assert h.e.audio_priority() is None
    got = h.tick(32)
    assert any(ev.kind == "alarm_silenced" and ev.mode == "resumed" for ev in got)


def test_live_calls_and_events_give_the_same_alarms():
    """The same session as direct calls and as events: identical engine output."""
    def run(as_events: bool) -> list[tuple]:
        e = AlarmEngine(Harness("standard").profile, t0=T0, template=load_template("iv-ketamine-depression"))
        out: list = []
        if as_events:
            out += e.on_event(BaselineRecorded(t=at(0), author="RN", sbp=120, dbp=80, hr=70, spo2=98), at(0))
            out += e.on_event(_start(60), at(60))
        else:
            e.set_baseline(120, 80, 70, 98)
            out += e.set_phase("infusion", at(60)) + e.set_infusing(True, at(60))
        for s in range(60, 60 + 1800, 5):
            spo2 = 84 if 600 <= s < 700 else 97
            out += e.on_reading(Reading(param="spo2", value=spo2, unit=UNITS["spo2"], device_time=at(s)), at(s))
            out += e.tick(at(s))
        return [(ev.kind, getattr(ev, "alarm_id", ""), getattr(ev, "priority", "")) for ev in out]
    assert run(True) == run(False)
    assert any(k == "alarm_raised" for k, _i, _p in run(True))
