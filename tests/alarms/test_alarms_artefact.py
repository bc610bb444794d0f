"""Issue 15 item 5 in the engine: a pulse rate that disagrees with a fresh ECG heart rate
is the pulse signal's quality, not the patient (a technical condition, no physiological
alarm); HIGH HR/PR alarms wait for the delay of (c) rule 5. Values from the limits data."""

from __future__ import annotations

import pytest
from alarms_support import PROFILES, Harness, num, raw


def _tier(prof: str, rule: str, phase: str, priority: str) -> dict:
    ld = next(x for x in raw(prof)["ladder"] if x["name"] == rule)
    return next(t for t in ld["tiers"] if phase in t["phases"] and t["priority"] == priority)


@pytest.mark.parametrize("prof", PROFILES)
def test_pr_low_with_a_normal_ecg_hr_is_a_technical_signal_quality_condition(prof):
    cc = next(c for c in raw(prof)["cross_check"] if c["param"] == "pr")
    pr = _tier(prof, "pr_low", "infusion", "high")["limit"] - 5  # motion-corrupted pulse
    hr = 78.0
    assert abs(hr - pr) > num(cc["max_difference"])
    h = Harness(prof, phase="infusion")
    end = int(num(cc["delay_s"])) + 15
    for s in range(0, end):
        h.reading(s, "hr", hr, tick=False)
        h.reading(s, "pr", pr)
    assert not h.raised(klass="physiological"), [e.message for e in h.raised()]
    a = h.alarm(cc["rule"])
    assert a is not None and a.alarm_class == "technical" and a.priority == cc["priority"]
    first = h.raised(cc["rule"])[0]
    assert first.mono >= num(cc["delay_s"]) - 1e-6
    # the pulse agrees with the ECG again: the condition ends once that has lasted the delay
    d = num(cc["delay_s"])
    for s in range(end, end + int(d) + 1):
        h.reading(s, "hr", hr, tick=False)
        h.reading(s, "pr", hr)
        if s < end + d:
            assert h.alarm(cc["rule"]) is not None, "cleared before agreeing for its delay"
    assert h.alarm(cc["rule"]) is None


@pytest.mark.parametrize("prof", PROFILES)
def test_a_single_motion_corrupted_pulse_raises_nothing(prof):
    pr = _tier(prof, "pr_low", "infusion", "high")["limit"] - 5
    h = Harness(prof, phase="infusion")
    for s in range(0, 20):
        h.reading(s, "hr", 78, tick=False)
        h.reading(s, "pr", pr if s == 10 else 78)
    assert h.raised() == []


@pytest.mark.parametrize("prof", PROFILES)
def test_pr_low_without_an_ecg_hr_is_still_physiological(prof):
    t = _tier(prof, "pr_low", "infusion", "high")
    h = Harness(prof, phase="infusion")
    for s in range(0, int(num(t["delay_s"])) + 3):
        h.reading(s, "pr", t["limit"] - 5)
    a = h.alarm("pr_low")
    assert a is not None and a.priority == "high" and a.alarm_class == "physiological"


@pytest.mark.parametrize("prof", PROFILES)
@pytest.mark.parametrize("rule", ["hr_high", "hr_low", "pr_high", "pr_low"])
def test_high_hr_and_pr_wait_for_their_delay(prof, rule):
    t = _tier(prof, rule, "infusion", "high")
    d = num(t["delay_s"])
    assert d > 0  # (c) rule 5: only high desaturation has no delay
    param = rule.split("_")[0]
    v = t["limit"] + 5 if rule.endswith("high") else t["limit"] - 5
    h = Harness(prof, phase="infusion")
    h.reading(0, param, v)
    assert h.priority(rule) != "high"
    h.reading(1, param, 75)  # back to normal at once: an artefact
    for s in range(2, int(d) + 5):
        h.reading(s, param, 75)
    assert not [e for e in h.events if getattr(e, "priority", None) == "high"
                or getattr(e, "to_priority", None) == "high"]
    for s in range(100, 100 + int(d) + 1):
        h.reading(s, param, v)
    assert h.priority(rule) == "high"


@pytest.mark.parametrize("prof", PROFILES)
def test_high_desaturation_still_has_no_delay(prof):
    ld = next(x for x in raw(prof)["ladder"] if x["name"] == "spo2_low")
    nodelay = [t for t in ld["tiers"] if "infusion" in t["phases"] and t["priority"] == "high"
               and num(t.get("delay_s", {"value": 0})) == 0]
    assert nodelay
    h = Harness(prof, phase="infusion")
    h.reading(0, "spo2", nodelay[0]["limit"] - 1)
    assert h.priority("spo2_low") == "high"
