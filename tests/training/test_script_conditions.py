"""The scripted nurse's ``when`` conditions read the console's screen state: a missing value
is never a zero, "no data yet" is not a loss, and a bad condition is refused with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from chairside.script_conditions import parse_when


@dataclass
class T:
    key: str
    value: float | None = None
    value2: float | None = None
    value3: float | None = None
    missing_reason: str | None = None


@dataclass
class A:
    message: str
    rule: str = ""
    param: str | None = None
    alarm_class: str = "physiological"


@dataclass
class S:
    tiles: list = field(default_factory=list)
    alarms: list = field(default_factory=list)

    def tile(self, key):
        return next((t for t in self.tiles if t.key == key), None)


def snap(**kw):
    return S(tiles=[T("nibp", kw.get("sys"), kw.get("dia"), None, kw.get("nibp_why")),
                    T("hr", kw.get("hr"), missing_reason=kw.get("hr_why")),
                    T("spo2", kw.get("spo2"), missing_reason=kw.get("spo2_why"))], alarms=kw.get("alarms", []))


def test_comparisons_and_or():
    c = parse_when("nibp_sys >= 180 or nibp_dia >= 110")
    assert c.holds(snap(sys=181, dia=90)) and c.holds(snap(sys=150, dia=112))
    assert not c.holds(snap(sys=179, dia=109))
    both = parse_when("hr >= 130 and spo2 < 90")
    assert both.holds(snap(hr=140, spo2=85)) and not both.holds(snap(hr=140, spo2=95))


def test_a_missing_value_is_never_a_zero():
    assert not parse_when("spo2 < 90").holds(snap(spo2=None, spo2_why="probe off"))
    assert parse_when("spo2 missing").holds(snap(spo2=None, spo2_why="probe off"))
    assert not parse_when("spo2 missing").holds(snap(spo2=None, spo2_why="no data yet"))
    assert not parse_when("spo2 missing").holds(snap(spo2=97))


def test_nibp_failed_and_alarm_words():
    failed = snap(alarms=[A("NIBP measurement failed", rule="nibp_failed", param="nibp", alarm_class="technical")])
    assert parse_when("nibp failed").holds(failed)
    assert not parse_when("nibp failed").holds(snap(alarms=[A("SBP high 185 > 180", param="nibp_sys")]))
    assert parse_when("alarm sbp").holds(snap(alarms=[A("SBP high 185 > 180", param="nibp_sys")]))


@pytest.mark.parametrize("bad", ["", "spo2 <", "mood > 3", "temp missing", "spo2 < ninety"])
def test_bad_conditions_are_refused_with_the_reason(bad):
    with pytest.raises(ValueError):
        parse_when(bad)
