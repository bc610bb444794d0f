"""Issue 15 item 6: one active alarm per parameter group (the profile's ``group`` of each
ladder: NIBP; HR/PR) at the highest priority that holds, listing the conditions that hold;
escalation and clearing follow the highest. Values come from the limits data file."""

from __future__ import annotations

from alarms_support import RANK, Harness, at, raw

STD = raw("standard")
LADDERS = {ld["name"]: ld for ld in STD["ladder"]}
BASE = (120.0, 80.0, 70.0, 98.0)


def _tier(rule: str, phase: str, priority: str) -> dict:
    return next(t for t in LADDERS[rule]["tiers"] if phase in t["phases"] and t["priority"] == priority)


def _groups() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for ld in STD["ladder"]:
        if "group" in ld:
            out.setdefault(ld["group"], set()).add(ld["name"])
    return out


def test_the_profile_groups_nibp_and_hr_pr():
    g = _groups()
    assert {"sbp_high", "dbp_high", "sbp_rise", "dbp_rise"} <= g[LADDERS["sbp_high"]["group"]]
    assert {"hr_low", "pr_low", "hr_high", "pr_high"} <= g[LADDERS["hr_low"]["group"]]


def test_one_bp_reading_beyond_four_rules_raises_one_alarm_listing_them():
    h = Harness("standard", phase="infusion", baseline=BASE)
    sys_ = _tier("sbp_high", "infusion", "medium")["limit"] + 2  # also a rise >= 40 over 120
    dia = _tier("dbp_high", "infusion", "medium")["limit"] + 2  # also a rise >= 25 over 80
    assert sys_ - BASE[0] >= _tier("sbp_rise", "infusion", "medium")["limit"]
    assert dia - BASE[1] >= _tier("dbp_rise", "infusion", "medium")["limit"]
    got = h.nibp(0, sys_, dia, (sys_ + 2 * dia) / 3)
    raised = [e for e in got if e.kind == "alarm_raised"]
    assert len(raised) == 1, [e.message for e in raised]
    a = h.e.active()[0]
    assert len(h.e.active()) == 1
    assert set(a.held_rules) == {"sbp_high", "dbp_high", "sbp_rise", "dbp_rise"}
    assert len(a.conditions) == 4 and a.priority == "medium"
    for rule in ("sbp_high", "dbp_high", "sbp_rise", "dbp_rise"):
        assert LADDERS[rule]["message"] in raised[0].message


def test_slow_heart_raises_one_hr_pr_alarm():
    h = Harness("standard", phase="infusion")
    t = _tier("hr_low", "infusion", "medium")
    v = t["limit"] - 3
    assert v > _tier("hr_low", "infusion", "high")["limit"]
    for s in range(0, 30):
        h.reading(s, "hr", v, tick=False)
        h.reading(s, "pr", v)
    assert len(h.raised()) == 1
    a = h.e.active()[0]
    assert set(a.held_rules) == {"hr_low", "pr_low"} and a.priority == t["priority"]


def test_the_group_escalates_with_its_highest_condition_and_clears_when_none_holds():
    h = Harness("standard", phase="infusion", baseline=BASE)
    rise = BASE[0] + _tier("sbp_rise", "infusion", "medium")["limit"]
    h.nibp(0, rise, 80, 95)  # a rise: medium
    a = h.e.active()[0]
    assert a.rule == "sbp_rise" and a.priority == "medium"
    high = _tier("sbp_high", "infusion", "high")["limit"]
    got = h.nibp(300, high, 80, 120)
    esc = [e for e in got if e.kind == "alarm_escalated"]
    assert [(e.alarm_id, e.rule, e.to_priority) for e in esc] == [(a.id, "sbp_high", "high")]
    assert len(h.e.active()) == 1
    margin = LADDERS["sbp_high"]["clear_margin"]["value"]
    low = _tier("sbp_rise", "infusion", "low")["limit"] + BASE[0] - margin - 5
    h.nibp(600, low, 80, 90)
    a = h.e.active()[0]  # high latches until acknowledged
    assert a.latched and not a.held_rules
    h.events += h.e.acknowledge(a.id, "RN", at(601))
    assert h.e.active() == []


def test_a_new_condition_at_the_alarm_priority_is_announced_on_its_reading():
    """The group alarm is medium (a rise); the first reading >= the medium SBP limit adds its
    condition with an event on that reading (it is not lost in the group)."""
    h = Harness("standard", phase="infusion", baseline=(100.0, 60.0, 70.0, 98.0))
    rise = 100 + _tier("sbp_rise", "infusion", "medium")["limit"]
    h.nibp(0, rise, 60, 80)
    a = h.e.active()[0]
    assert a.priority == "medium" and a.rule == "sbp_rise"
    med = _tier("sbp_high", "infusion", "medium")["limit"]
    got = h.nibp(300, med, 60, 100)
    ev = [e for e in got if e.kind == "alarm_escalated"]
    assert len(ev) == 1 and ev[0].rule == "sbp_high" and ev[0].from_priority == ev[0].to_priority == "medium"
    assert not ev[0].reannounce and RANK[h.e.active()[0].priority] == RANK["medium"]
