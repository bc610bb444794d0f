"""Issue 15 item 10: replay and debrief count and time each alarm at the highest priority it
reached, re-announcements are reminders, and a difference names the record's own event
number. Events are built as the engine writes them (priorities from the IEC names)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chairside.domain.events import AlarmAcknowledged, AlarmEscalated, AlarmRaised
from chairside.replay.compare import compare_alarms
from chairside.replay.replayer import _by_priority
from chairside.reports.debrief import _alarm_responses

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def _escalated_session() -> list:
    return [
        AlarmRaised(seq=290, t=at(0), alarm_id="sbp_high#1", rule="sbp_high", priority="low", param="nibp_sys",
                    value=165, limit=160),
        AlarmEscalated(seq=292, t=at(120), alarm_id="sbp_high#1", rule="sbp_high", from_priority="low",
                       to_priority="medium", reason="beyond the medium limit"),
        AlarmEscalated(seq=294, t=at(240), alarm_id="sbp_high#1", rule="sbp_high", from_priority="medium",
                       to_priority="medium", reason="unacknowledged 120 s", reannounce=True),
        AlarmEscalated(seq=296, t=at(300), alarm_id="sbp_high#1", rule="sbp_high", from_priority="medium",
                       to_priority="high", reason="2 consecutive readings"),
        AlarmAcknowledged(seq=297, t=at(330), alarm_id="sbp_high#1", rule="sbp_high", by="RN", author="RN"),
        AlarmRaised(seq=300, t=at(400), alarm_id="hr_low#2", rule="hr_low", priority="medium", param="hr"),
    ]


def test_replay_counts_each_alarm_at_its_highest_priority():
    assert _by_priority(_escalated_session()) == {"high": 1, "medium": 1, "low": 0}


def test_debrief_times_the_acknowledgement_from_the_highest_priority():
    rows = {r["alarm_id"]: r for r in _alarm_responses(_escalated_session(), lambda t: (t - T0).total_seconds())}
    a = rows["sbp_high#1"]
    assert a["highest"] == "high" and a["highest_s"] == 300
    assert a["time_to_ack_at_highest_s"] == 30  # the nurse answered the HIGH in 30 s (330 s from the low raise)
    assert a["reminders"] == 1 and a["seq"] == 290


def test_a_difference_names_the_recorded_event_number():
    rec = _escalated_session()
    diffs = compare_alarms(rec, [], tolerance_s=5)
    assert diffs and all(d.seq is not None for d in diffs)
    assert any("#296" in d.line(T0) for d in diffs)


def test_a_same_priority_reannouncement_reads_as_a_reminder_not_an_escalation():
    from chairside.domain.describe import describe

    ev = _escalated_session()[2]
    text = describe(ev, full=True)
    assert "medium → medium" not in text and "reminder" in text
    assert "→ high" in describe(_escalated_session()[3], full=True)
