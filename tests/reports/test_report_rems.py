"""REMS form fields of a scripted esketamine session equal what the script did.

Expected values are written from the script's inputs (report_scenario.esketamine_session):
3 devices of 28 mg at 09:15, 09:20, 09:25, lot ESK-4471; NIBP 130/80 at 09:10 (last before
dosing), 150/92 at 09:56 (nearest 09:55 = first device + 40 min), 126/80 at 11:17 (last before
the discharge at 11:20); a discharge assessment at 11:00 blocked only by the minimum time;
MOAA/S 4 and CADSS 12 at 09:55; a note saying there was NO respiratory depression; a
check-in checklist recording concomitant benzodiazepines (yes) and opioids (no).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

import report_scenario as rs
from report_scenario import esk_file, iv_file  # noqa: F401 (fixtures)
from chairside.domain import events as ev
from chairside.reports import rems as report_rems


@pytest.fixture(scope="module")
def esk():
    events, inp = rs.esketamine_session()
    return rs.numbered(events), inp


def test_fields_equal_the_script(esk):
    events, inp = esk
    f = report_rems.fields(events)
    assert f["applicable"] is True
    assert f["dose"]["mg"] == sum(28 for _ in inp["devices"]) == inp["mg"]
    assert f["dose"]["category"] == "84 mg"
    assert f["dose"]["devices"] == len(inp["devices"])
    assert f["lot"] == inp["lot"]
    assert f["first_device_time"] == inp["first_device"].isoformat()
    for key, (sys_, dia) in (("bp_before_dosing", inp["bp_before"]), ("bp_at_40_min", inp["bp_40"]),
                             ("bp_before_completion", inp["bp_end"])):
        assert (f[key]["sys"], f[key]["dia"]) == (sys_, dia), key
    assert f["bp_at_40_min"]["minutes_after_first_device"] == 41
    total = int((inp["discharged_at"] - inp["first_device"]).total_seconds() // 60)
    assert f["total_minutes_monitored"] == total == 125
    assert f["minimum_met"] is True
    assert f["ready_to_leave_minutes"] == int((inp["ready_at"] - inp["first_device"]).total_seconds() // 60) == 105
    assert f["vitals_acceptable_before_administration"] is True  # 130/80 < 140/90
    assert f["vitals_acceptable_before_completion"] is True  # 126/80 < 140/90
    assert f["sedation"] is True  # MOAA/S 4
    assert f["dissociation"] is True  # CADSS 12 > 4
    assert f["respiratory_depression"] is False  # the note says "No respiratory depression"
    assert f["patient_id"] == "P-ESK-19"
    # check-in checklist: benzodiazepines yes, opioids no, the other classes not asked
    assert f["concomitant"]["benzodiazepines"] is True and f["concomitant"]["opioids"] is False
    assert f["concomitant"]["non-benzodiazepine sedative-hypnotics"] is None
    assert f["treatment_date"] == "2026-03-02"


def _with(events, *extra):
    """The script's events plus extra ones, in time order, renumbered."""
    evs = sorted([e.model_copy(update={"seq": -1}) for e in events] + list(extra), key=lambda e: e.t)
    return rs.numbered(evs)


def test_respiratory_depression_from_an_oxygen_intervention_or_observation(esk):
    events, _ = esk
    o2 = ev.InterventionGiven(t=rs.at(62), author="AN", drug="oxygen", dose=2, dose_unit="L/min", route="nasal cannula",
                              reason="SpO2 91, shallow breathing")
    assert report_rems.fields(_with(events, o2))["respiratory_depression"] is True
    obs = ev.ObservationRecorded(t=rs.at(62), author="AN", scale="respiratory_depression", score=1)
    f = report_rems.fields(_with(events, obs))
    assert f["respiratory_depression"] is True and f["evidence"]["respiratory_depression"]


def test_no_sedation_no_dissociation_and_56_mg(esk):
    events, inp = esk
    # drop device 3 and the MOAA/S 4 / CADSS 12 observations
    keep = [e for e in events
            if not (isinstance(e, ev.InterventionGiven) and e.t == rs.at(25))
            and not (isinstance(e, ev.ObservationRecorded) and e.t in (rs.at(55), rs.at(55.5)))]
    f = report_rems.fields(_with(keep))
    assert f["dose"]["category"] == "56 mg" and f["dose"]["mg"] == 56
    assert f["sedation"] is False and f["dissociation"] is False


def test_bp_above_label_guide_before_dosing_is_not_acceptable(esk):
    events, _ = esk
    high = rs.Script()
    high.nibp(13, 150, 96)  # the last BP before the first device (09:15)
    f = report_rems.fields(_with(events, *high.events))
    assert (f["bp_before_dosing"]["sys"], f["bp_before_dosing"]["dia"]) == (150, 96)
    assert f["vitals_acceptable_before_administration"] is False


def test_amended_lot_is_used(esk):
    events, _ = esk
    first = next(e for e in events if isinstance(e, ev.InterventionGiven))
    am = ev.Amendment(t=rs.at(70), author="AN", target_seq=first.seq, reason="lot misread",
                      replacement={"lot": "ESK-9999"})
    evs = rs.numbered([*[e.model_copy(update={"seq": -1}) for e in events], am])  # appended at the end
    assert report_rems.fields(evs)["lot"] == "ESK-9999, ESK-4471"


def test_iv_ketamine_is_not_a_rems_session():
    events, _ = rs.iv_session()
    assert report_rems.is_esketamine(rs.numbered(events)) is False


def test_rems_json_export(tmp_path, esk_file, iv_file):
    _, inp = rs.esketamine_session()
    out = report_rems.export(esk_file, tmp_path / "esk.rems.json")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["dose"]["category"] == "84 mg" and doc["lot"] == inp["lot"]
    assert doc["total_minutes_monitored"] == 125
    from chairside.store import SessionFile

    sf = SessionFile.open(esk_file, readonly=True)
    try:
        assert doc["last_event_hash"] == sf.last_hash
    finally:
        sf.close()
    with pytest.raises(ValueError, match="not an esketamine session"):
        report_rems.export(iv_file, tmp_path / "iv.rems.json")


def test_rems_json_default_name(tmp_path):
    events, _ = rs.esketamine_session()
    db = tmp_path / "e.chairside"
    assert rs.write_session(db, events[:60])
    assert report_rems.export(db, None) == tmp_path / "e.rems.json"


def test_minutes_are_rounded_down(esk):
    events, inp = esk
    # discharge 30 s earlier: 124.5 min monitored is 124 whole minutes, not 125
    evs = [e.model_copy(update={"t": e.t - timedelta(seconds=30)}) if isinstance(e, ev.DischargeAssessed) and e.discharged
           else e for e in events]
    assert report_rems.fields(evs)["total_minutes_monitored"] == 124
