"""``chairside.domain.describe``: one wording of every event kind, the priority markers of
the alarm standard and ``record``'s stderr line.

Expected values come from the clinical material (the ``***``/``**``/``*`` text markers of
IEC 60601-1-8 as tabled in ../shared/clinical/limits-protocols-alarms.md section (c)) and
from the events built here, never from running the code under test.
"""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chairside.domain import describe as d
from chairside.domain import events as ev
from chairside.domain.readings import DeviceStatus, Reading

T = datetime(2026, 1, 1, 9, 25, tzinfo=UTC)
CLINICAL = Path(__file__).resolve().parents[2].parent / "shared" / "clinical" / "limits-protocols-alarms.md"


def _markers_from_the_table() -> dict[str, str]:
    """Priority -> text marker, read from the alarm table of the clinical material."""
    text = CLINICAL.read_text(encoding="utf-8")
    out = {}
    for m in re.finditer(r"^\| (High|Medium|Low) \|.*\| `(\*+)` \|$", text, re.M):
        out[m.group(1).lower()] = m.group(2)
    assert len(out) == 3, "the alarm table of limits-protocols-alarms.md (c) names three markers"
    return out


def test_markers_and_ranks_follow_the_standard():
    table = _markers_from_the_table()
    assert d.MARKERS == table
    for p, m in table.items():
        assert d.marker(p) == m
        assert d.rank(p) == len(m)  # more asterisks, higher priority
    assert d.marker(None) == "" and d.marker("bogus") == ""
    assert d.rank(None) == 0


def _kinds_of_the_union() -> set[str]:
    members = typing.get_args(typing.get_args(ev.Event)[0])
    return {m.model_fields["kind"].default for m in members}


def test_every_event_kind_has_its_own_sentence():
    """An event kind without a branch would be worded as its bare kind name."""
    assert _kinds_of_the_union() <= set(d._KINDS), _kinds_of_the_union() - set(d._KINDS)


def _intervention() -> ev.InterventionGiven:
    return ev.InterventionGiven(t=T, author="AB", drug="labetalol", dose=10, dose_unit="mg", route="IV",
                                lot="L-77", given_by="AB", ordered_by="Dr K", reason="SBP 186",
                                response="SBP 162 at 10 min")


def test_console_sentence_and_the_full_record():
    e = _intervention()
    short, full = d.describe(e), d.describe(e, full=True)
    assert short == "Intervention: labetalol 10 mg IV lot L-77"
    assert full.startswith(short + "; ")
    for detail in ("given by AB", "ordered by Dr K", "reason: SBP 186", "response: SBP 162 at 10 min"):
        assert detail in full and detail not in short


def test_alarm_sentences_carry_the_marker_and_the_condition():
    raised = ev.AlarmRaised(t=T, alarm_id="sbp_high#1", rule="sbp_high", priority="high", param="nibp_sys",
                            value=188, limit=180, source_tag="[S]", message="Systolic BP high")
    assert d.describe(raised) == "*** Systolic BP high"
    full = d.describe(raised, full=True)
    assert "HIGH physiological alarm sbp_high#1" in full and "SBP 188 (limit 180 [S])" in full
    assert d.colour(raised) == "high"
    esc = ev.AlarmEscalated(t=T, alarm_id="dbp_high#2", rule="dbp_high", from_priority="low", to_priority="high",
                            reason="beyond 110")
    assert d.colour(esc) == "high"
    assert d.colour(ev.NoteAdded(t=T, author="AB", text="x")) is None


def test_record_stderr_lines():
    raised = ev.AlarmRaised(t=T, alarm_id="spo2_low#3", rule="spo2_low", priority="medium", param="spo2",
                            value=88, limit=90, source_tag="[P]", message="SpO2 low")
    assert d.alarm_log_line(raised) == ("2026-01-01T09:25:00Z ** SpO2 low; MEDIUM physiological alarm spo2_low#3, "
                                        "SpO2 88 (limit 90 [P])")
    esc = ev.AlarmEscalated(t=T, alarm_id="spo2_low#3", rule="spo2_low", from_priority="medium",
                            to_priority="high", reason="below 85")
    assert d.alarm_log_line(esc).startswith("2026-01-01T09:25:00Z *** Alarm spo2_low#3 medium → high: below 85")
    ack = ev.AlarmAcknowledged(t=T, alarm_id="spo2_low#3", rule="spo2_low", by="AB")
    assert d.alarm_log_line(ack) == "2026-01-01T09:25:00Z Alarm spo2_low#3 acknowledged by AB"
    assert d.alarm_log_line(ev.NoteAdded(t=T, author="AB", text="x")) is None


@pytest.mark.parametrize("n", [2, 40])
def test_readings_never_show_a_missing_value_as_zero(n):
    rs = [Reading(param="spo2", value=None, unit="%", valid=False, flags=("probe_off",), device_time=T)] * n
    text = d.describe(ev.ReadingsRecorded(t=T, author="SYS", readings=tuple(rs), count=n), full=True)
    values = text.split(": ", 1)[1]  # after the count and the time span
    assert "n/a" in values and " 0" not in values


def test_device_status_sentence():
    st = DeviceStatus(kind="probe_off", active=False, param="spo2", detail="finger clip")
    e = ev.DeviceStatusChanged(t=T, status=st, driver="masimo", port="socket://127.0.0.1:9")
    assert d.describe(e) == "Device: probe off ended (finger clip)"
    assert d.describe(e, full=True).endswith("; SpO2, masimo socket://127.0.0.1:9")
