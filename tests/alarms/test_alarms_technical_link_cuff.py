"""Issue 15 items 1 and 4 in the engine: a lost monitor link is a technical alarm at once
(medium, then high once it has lasted the profile's ``high_after_s``); a failed NIBP
measurement is a technical alarm; NIBP overdue becomes medium while infusing once the
protocol's interval has passed ``medium_after_intervals`` times. Expected values come from
the limits and protocol data files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from alarms_support import PROFILES, Harness, at, num, raw

from chairside.domain.protocol import load_template
from chairside.domain.readings import Reading

PROTOCOLS = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data" / "protocols"


def _link(h: Harness, s: float, active: bool, kind: str = "link_lost", detail: str = ""):
    from chairside.domain.readings import DeviceStatus

    got = h.e.on_device_status(DeviceStatus(kind=kind, active=active, detail=detail, flags=("transport",)), at(s))
    h.events += got
    return got


@pytest.mark.parametrize("prof", PROFILES)
def test_link_loss_is_a_technical_alarm_at_once_then_high(prof):
    rule = raw(prof)["technical"]["link_lost"]
    high_s = num(rule["high_after_s"])
    h = Harness(prof, phase="recovery")  # not infusing: the escalation holds in every phase
    h.reading(0, "hr", 72)
    got = _link(h, 1, True, detail="socket closed")
    raised = [e for e in got if e.kind == "alarm_raised"]
    assert len(raised) == 1 and raised[0].rule == "link_lost"
    assert raised[0].alarm_class == "technical" and raised[0].priority == rule["priority"]
    assert raised[0].source_tag == rule["source"] and "socket closed" in raised[0].message
    h.tick(1 + high_s - 1)
    assert h.priority("link_lost") == rule["priority"]
    h.tick(1 + high_s)
    assert h.priority("link_lost") == "high"
    # no second alarm for the same outage: no data is not raised beside it
    assert [e.rule for e in h.raised()] == ["link_lost"]
    got = _link(h, 1 + high_s + 5, False)
    assert [e.kind for e in got] == ["alarm_cleared"] and h.alarm("link_lost") is None


@pytest.mark.parametrize("prof", PROFILES)
def test_a_short_outage_leaves_its_alarm_in_the_record(prof):
    h = Harness(prof, phase="infusion")
    h.reading(0, "hr", 72)
    _link(h, 1, True)
    h.tick(21)
    _link(h, 21, True, kind="link_up")  # reconnected after 20 s
    assert [e.kind for e in h.events if e.rule == "link_lost"] == ["alarm_raised", "alarm_cleared"]
    # a fresh no-data interval after the reconnect: nothing at once
    h.tick(22)
    assert h.alarm("no_data") is None


def test_an_unopenable_port_is_a_technical_alarm_while_retrying():
    h = Harness("standard", phase="pre_infusion")
    _link(h, 0, True, detail="cannot open /dev/ttyUSB9: [Errno 2] No such file")
    a = h.alarm("link_lost")
    assert a is not None and "cannot open /dev/ttyUSB9" in a.message


@pytest.mark.parametrize("prof", PROFILES)
def test_failed_nibp_status_is_a_technical_alarm_cleared_by_a_valid_measurement(prof):
    rule = raw(prof)["technical"]["nibp_failed"]
    h = Harness(prof, phase="infusion")
    h.status(10, "nibp_failed", True, param="nibp_sys")
    a = h.alarm("nibp_failed")
    assert a is not None and a.alarm_class == "technical" and a.priority == rule["priority"]
    h.nibp(40, 120, 80, 93)
    assert h.alarm("nibp_failed") is None


@pytest.mark.parametrize("prof", PROFILES)
def test_nibp_values_sent_empty_are_one_failed_measurement(prof):
    """HL7 PCD-01: a failed cycle comes as empty NIBP observations (flag in the profile's
    ``input.nibp_failed_flags``) at the attempt's time; sys, dia and mean make one report."""
    flag = raw(prof)["input"]["nibp_failed_flags"][0]
    h = Harness(prof, phase="infusion")
    for p in ("nibp_sys", "nibp_dia", "nibp_map"):
        h.events += h.e.on_reading(Reading(param=p, value=None, unit="mmHg", valid=False, flags=(flag, "status:X"),
                                         device_time=at(30)), at(30))
    h.events += h.e.tick(at(30))
    assert [e.rule for e in h.raised()] == ["nibp_failed"]


def test_nibp_overdue_becomes_medium_after_two_intervals_while_infusing():
    d = raw("standard")
    grace = num(d["settings"]["nibp_overdue_grace_s"])
    n = num(d["technical"]["nibp_overdue"]["medium_after_intervals"])
    proto = tomllib.loads((PROTOCOLS / "iv-ketamine-depression.toml").read_text(encoding="utf-8"))
    every = proto["bp_cadence"]["infusion"]["every_min"] * 60
    h = Harness("standard", phase="infusion", template=load_template("iv-ketamine-depression"))
    h.nibp(0, 120, 80, 93)
    h.reading(every + grace + 1, "hr", 72)
    assert h.priority("nibp_overdue") == d["technical"]["nibp_overdue"]["priority"] == "low"
    h.reading(n * every - 1, "hr", 72)
    assert h.priority("nibp_overdue") == "low"
    h.reading(n * every + 1, "hr", 72)
    assert h.priority("nibp_overdue") == "medium"


def test_nibp_overdue_stays_low_when_not_infusing():
    d = raw("standard")
    n = num(d["technical"]["nibp_overdue"]["medium_after_intervals"])
    proto = tomllib.loads((PROTOCOLS / "iv-ketamine-depression.toml").read_text(encoding="utf-8"))
    every = proto["bp_cadence"]["recovery"]["every_min"] * 60
    h = Harness("standard", phase="recovery", template=load_template("iv-ketamine-depression"))
    h.nibp(0, 120, 80, 93)
    h.reading(n * every + 60, "hr", 72)
    assert h.priority("nibp_overdue") == "low"
