"""Issue 15: respiratory rate (where the monitor sends it) has limits in the data files and
the engine alarms on them. Values from the limits data."""

from __future__ import annotations

import pytest
from alarms_support import PROFILES, Harness, num, raw


@pytest.mark.parametrize("prof", PROFILES)
def test_a_slow_breathing_rate_alarms_after_its_delay(prof):
    ld = next(x for x in raw(prof)["ladder"] if x["name"] == "rr_low")
    t = next(x for x in ld["tiers"] if "infusion" in x["phases"] and x["priority"] == "medium")
    d = num(t["delay_s"])
    h = Harness(prof, phase="infusion")
    for s in range(0, int(d)):
        h.reading(s, "rr", t["limit"] - 1)
    assert h.alarm("rr_low") is None
    h.reading(d + 1, "rr", t["limit"] - 1)
    a = h.alarm("rr_low")
    assert a is not None and a.priority == "medium" and a.param == "rr"
    assert [lv.limit for lv in h.e.limits("rr") if lv.rule == "rr_low"]
