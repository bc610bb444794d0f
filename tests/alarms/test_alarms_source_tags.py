"""Source tags of the limits agree with the clinical table and with each other.

The clinical table (/work/shared/clinical/limits-protocols-alarms.md, section (a)) says the
label's 40/25 mmHg rise is a *reporting* threshold "used as a limit [S]", and that MOAA/S <= 3
means "moderate or greater" [P] with the alarm mapping [S] (scales.toml says the same). The
pulse-rate ladders apply the heart-rate limits, so a PR tier carries the tag of the HR tier
with the same phase, priority and limit."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

LIMITS = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data" / "limits"
SCALES = LIMITS.parent / "scales.toml"
PROFILES = sorted(p.stem for p in LIMITS.glob("*.toml"))


def _doc(name):
    return tomllib.loads((LIMITS / f"{name}.toml").read_text(encoding="utf-8"))


def _ladder(doc, name):
    return next(ld for ld in doc["ladder"] if ld["name"] == name)


@pytest.mark.parametrize("profile", PROFILES)
def test_rise_from_baseline_limits_are_suggested(profile):
    doc = _doc(profile)
    rises = [ld for ld in doc["ladder"] if ld.get("relative")]
    assert rises
    assert {t["source"] for ld in rises for t in ld["tiers"]} == {"[S]"}


@pytest.mark.parametrize("profile", PROFILES)
def test_moaas_alarm_tags_agree_with_the_scale_file(profile):
    scale = tomllib.loads(SCALES.read_text(encoding="utf-8"))["moaas"]
    by_value = {f["value"]: f["source"] for f in scale["flags"]}
    doc = _doc(profile)
    for t in _ladder(doc, "sedation")["tiers"]:
        if t["limit"] in by_value:
            assert t["source"] == by_value[t["limit"]], (profile, t)
    terms = [term for c in doc.get("combined", []) for term in c.get("when", [])
             if isinstance(term, dict) and term.get("param") == "moaas"]
    assert terms
    for term in terms:
        assert term["source"] == by_value[term["limit"]], (profile, term)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("hr, pr", [("hr_high", "pr_high"), ("hr_low", "pr_low")])
def test_pulse_rate_tiers_carry_the_heart_rate_tags(profile, hr, pr):
    doc = _doc(profile)
    key = lambda t: (tuple(t["phases"]), t["priority"], t["limit"])  # noqa: E731
    hr_tags = {key(t): t["source"] for t in _ladder(doc, hr)["tiers"]}
    pr_tags = {key(t): t["source"] for t in _ladder(doc, pr)["tiers"]}
    assert pr_tags == hr_tags
