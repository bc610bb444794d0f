"""Scripted sessions for the report tests: every number here is an input the tests check against.

Two scripts: an IV ketamine infusion (``iv_session``) and an esketamine session
(``esketamine_session``). Each returns the list of domain events (seq = -1) plus a dict of the
script's own inputs (times, doses, BPs) that the tests use for their expected values.
``write_session(path, events)`` writes them through ``chairside.store.SessionFile`` when the
store exists.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chairside.domain import events as ev
from chairside.domain.readings import DeviceStatus, Reading

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _mono(t: datetime) -> float:
    return (t - T0).total_seconds()


class Script:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def add(self, cls, t: datetime, **kw) -> Any:
        e = cls(t=t, mono=_mono(t), **kw)
        self.events.append(e)
        return e

    def continuous(self, start_min: float, end_min: float, *, hr, spo2, pr=None, gap=None, group_s=30,
                   every_s=5) -> None:
        """HR (ECG), PR (oximeter) and SpO2 every ``every_s`` seconds (a GE S/5 displayed-values
        interval), committed in groups of ``group_s`` seconds.

        ``gap`` = (from_min, to_min): the oximeter reports no value (probe off) in that window.
        """
        s = int(start_min * 60)
        end = int(end_min * 60)
        while s < end:
            rs = []
            for k in range(s, min(s + group_s, end), every_s):
                t = T0 + timedelta(seconds=k)
                m = k / 60.0
                h = hr(m)
                rs.append(Reading(param="hr", value=round(h), unit="bpm", device_time=t, receive_time=t, source="ecg"))
                off = gap is not None and gap[0] <= m < gap[1]
                if off:
                    rs.append(Reading(param="spo2", value=None, unit="%", valid=False, flags=("sensor_off",),
                                      device_time=t, receive_time=t, source="spo2"))
                    rs.append(Reading(param="pr", value=None, unit="bpm", valid=False, flags=("sensor_off",),
                                      device_time=t, receive_time=t, source="spo2"))
                else:
                    rs.append(Reading(param="spo2", value=round(spo2(m)), unit="%", device_time=t, receive_time=t,
                                      source="spo2"))
                    rs.append(Reading(param="pr", value=round((pr or hr)(m)), unit="bpm", device_time=t,
                                      receive_time=t, source="spo2"))
            tc = T0 + timedelta(seconds=min(s + group_s, end))
            self.add(ev.ReadingsRecorded, tc, author=ev.DEVICE, readings=tuple(rs), count=len(rs))
            s += group_s

    def nibp(self, minute: float, sys: float, dia: float, mean: float | None = None) -> None:
        t = at(minute)
        mean = mean if mean is not None else round((sys + 2 * dia) / 3)
        rs = tuple(Reading(param=p, value=v, unit="mmHg", device_time=t, receive_time=t, source="nibp")
                   for p, v in (("nibp_sys", sys), ("nibp_dia", dia), ("nibp_map", mean)))
        self.add(ev.ReadingsRecorded, t + timedelta(seconds=1), author=ev.DEVICE, readings=rs, count=3)


def _sorted(events: list[Any]) -> list[Any]:
    return sorted(events, key=lambda e: e.t)  # stable: same-time events keep script order


# --------------------------------------------------------------------------- IV ketamine


def iv_session() -> tuple[list[Any], dict[str, Any]]:
    s = Script()
    weight = 70.0
    conc = 0.35  # mg/mL: 35 mg in 100 mL
    rate, rate_ml = 0.75, 150.0  # 0.5 mg/kg over 40 min
    low_rate, low_ml = 0.5, 100.0
    nibps = [(2, 124, 78), (7, 122, 76), (15, 130, 82), (25, 142, 88), (35, 168, 98), (45, 182, 104),
             (50, 176, 100), (55, 150, 92), (65, 140, 86), (75, 132, 82), (90, 126, 80), (105, 124, 78)]
    inputs: dict[str, Any] = {
        "weight": weight, "conc": conc, "lot": "KET-2291-A", "patient": "P-7Q2X",
        "start": at(10), "rate_change": at(46), "pause": at(50), "resume": at(53), "stop": at(53 + 1),
        "nibps": nibps, "discharged_at": at(108), "staff": ("KB", "MT"),
        "note_text": '<script>alert("x")</script> & <b>bold</b> patient said "hi"',
    }
    s.add(ev.SessionOpened, at(0), author="KB", session_id="S-IV-0001", patient_id="P-7Q2X", weight_kg=weight,
          weight_source="measured", weight_confirmed_by="MT", protocol="iv-ketamine-depression", staff=("KB", "MT"),
          app_version="0.1.0")
    s.add(ev.DeviceStatusChanged, at(0.2), status=DeviceStatus(kind="link_up"), port="sim://uneventful", driver="ge-s5")
    s.add(ev.ChecklistCompleted, at(1), author="KB",
          contraindications={"uncontrolled_hypertension": False, "psychosis_history": False, "pregnancy": False},
          hours_fasted=5.0, escort_confirmed=True, consent=True, notes="escort: partner")
    s.add(ev.BaselineRecorded, at(8), author="KB", sbp=123, dbp=77, map=92, hr=72, spo2=98, moaas=5, cadss=0)
    s.add(ev.ObservationRecorded, at(8.5), author="KB", scale="moaas", score=5)
    s.add(ev.ObservationRecorded, at(8.6), author="KB", scale="cadss", score=0)
    s.add(ev.PhaseChanged, at(10), from_phase="pre_infusion", to_phase="infusion")
    s.add(ev.InfusionStarted, at(10), author="KB", drug="ketamine", concentration_mg_ml=conc, rate_mg_kg_h=rate,
          rate_ml_h=rate_ml, route="IV", dose_mg_kg=0.5, duration_min=40, lot="KET-2291-A", diluent="NaCl 0.9%",
          bag_volume_ml=100, confirmed_by="MT")
    s.add(ev.ObservationRecorded, at(20), author="KB", scale="moaas", score=4)
    s.add(ev.ObservationRecorded, at(30), author="KB", scale="nausea", score=5, text="queasy")
    iv1 = s.add(ev.InterventionGiven, at(31), author="KB", drug="ondansetron", dose=4, dose_unit="mg", route="IV",
                lot="OND-77", given_by="KB", ordered_by="DR", reason="nausea", response="settled")
    cadss = s.add(ev.ObservationRecorded, at(40), author="MT", scale="cadss", score=12, text="floating")
    s.add(ev.AlarmRaised, at(45) + timedelta(seconds=1), alarm_id="bp_sys_high#1", rule="sbp_high_infusion",
          priority="high", param="nibp_sys", value=182, limit=180, source_tag="[S]",
          message="SBP 182 ≥ 180", latching=True)
    s.add(ev.AlarmAcknowledged, at(45) + timedelta(seconds=40), alarm_id="bp_sys_high#1", by="KB", author="KB")
    s.add(ev.InfusionRateChanged, at(46), author="KB", drug="ketamine", concentration_mg_ml=conc,
          rate_mg_kg_h=low_rate, rate_ml_h=low_ml, old_rate_mg_kg_h=rate, old_rate_ml_h=rate_ml, reason="SBP 182")
    s.add(ev.InfusionPaused, at(50), author="KB", reason="SBP still 176, recheck")
    s.add(ev.AlarmRaised, at(51), alarm_id="spo2_low#2", rule="spo2_low_infusion", priority="medium",
          param="spo2", value=89, limit=90, source_tag="[P]", message="SpO2 89 < 90")
    s.add(ev.AlarmEscalated, at(53), alarm_id="spo2_low#2", from_priority="medium", to_priority="medium",
          reannounce=True, reason="unacknowledged 2 min")
    s.add(ev.AlarmAcknowledged, at(53.5), alarm_id="spo2_low#2", by="MT", author="MT")
    s.add(ev.AlarmCleared, at(54), alarm_id="spo2_low#2", value=95)
    s.add(ev.InfusionResumed, at(53), author="KB", drug="ketamine", concentration_mg_ml=conc,
          rate_mg_kg_h=low_rate, rate_ml_h=low_ml, reason="SBP 150")
    s.add(ev.InfusionStopped, at(54), author="KB", reason="dose complete per prescriber")
    s.add(ev.PhaseChanged, at(54), from_phase="infusion", to_phase="recovery")
    s.add(ev.AlarmCleared, at(55), alarm_id="bp_sys_high#1", value=150)
    s.add(ev.NoteAdded, at(60), author="MT", text=inputs["note_text"])
    s.add(ev.Amendment, at(62), author="MT", target_seq=-1, reason="transcription: CADSS was 8",
          replacement={"score": 8})  # target fixed below once seqs are known
    s.add(ev.ObservationRecorded, at(95), author="KB", scale="moaas", score=5)
    s.add(ev.ObservationRecorded, at(96), author="KB", scale="cadss", score=1)
    s.add(ev.DischargeAssessed, at(100), author="KB", aldrete={"activity": 2, "respiration": 2, "circulation": 2,
          "consciousness": 2, "spo2": 2}, aldrete_total=10, padss_total=10, vitals_within_20pct=True,
          minutes_since_end=46, min_recovery_met=True, escort_present=True, instructions_given=True,
          criteria_met=True, discharged=False)
    s.add(ev.DischargeAssessed, at(108), author="KB", aldrete_total=10, padss_total=10, vitals_within_20pct=True,
          minutes_since_end=54, min_recovery_met=True, escort_present=True, instructions_given=True,
          criteria_met=True, discharged=True)
    s.add(ev.PhaseChanged, at(108), from_phase="recovery", to_phase="discharged")
    s.add(ev.SessionClosed, at(109.5), reason="discharged")
    # vitals: HR rising with the infusion, a 2-minute probe-off during recovery
    s.continuous(0.5, 109, hr=lambda m: 72 + 14 * math.exp(-((m - 40) / 18) ** 2),
                 spo2=lambda m: 89 if 51 <= m < 52.5 else 97, gap=(70, 72), group_s=10)
    for m, sy, di in nibps:
        s.nibp(m, sy, di)
    events = _sorted(s.events)
    # amendment target: the CADSS 12 observation (its seq = position + 1 after ordering)
    pos = {id(e): i + 1 for i, e in enumerate(events)}
    events = [e.model_copy(update={"target_seq": pos[id(cadss)]}) if isinstance(e, ev.Amendment) else e
              for e in events]
    inputs["cadss_seq"] = pos[id(cadss)]
    inputs["ondansetron_seq"] = pos[id(iv1)]
    return events, inputs


# --------------------------------------------------------------------------- esketamine


def esketamine_session() -> tuple[list[Any], dict[str, Any]]:
    s = Script()
    first = 15  # minute of the first device
    devices = [(15, "ESK-4471"), (20, "ESK-4471"), (25, "ESK-4471")]  # 3 x 28 mg = 84 mg
    nibps = [(5, 128, 82), (10, 130, 80), (35, 138, 88), (50, 152, 94), (56, 150, 92), (70, 142, 88),
             (85, 136, 84), (100, 132, 82), (115, 128, 80), (137, 126, 80)]
    inputs = {
        "first_device": at(first), "devices": devices, "mg": 84.0, "lot": "ESK-4471",
        "bp_before": (130, 80), "bp_40": (150, 92), "bp_end": (126, 80),
        "ready_at": at(120), "discharged_at": at(140),
    }
    s.add(ev.SessionOpened, at(0), author="AN", session_id="S-ESK-0007", patient_id="P-ESK-19", weight_kg=80,
          weight_source="stated", protocol="esketamine", staff=("AN",))
    s.add(ev.ChecklistCompleted, at(2), author="AN", contraindications={"aneurysmal_vascular_disease": False,
          "concomitant benzodiazepines": True, "concomitant_opioids": False},
          hours_fasted=3, escort_confirmed=True, consent=True)
    s.add(ev.BaselineRecorded, at(11), author="AN", sbp=130, dbp=80, hr=70, spo2=98, moaas=5, cadss=0)
    s.add(ev.PhaseChanged, at(first), from_phase="pre_infusion", to_phase="infusion", reason="device 1")
    for m, lot in devices:
        s.add(ev.InterventionGiven, at(m), author="AN", drug="esketamine (Spravato) 28 mg device", dose=28,
              dose_unit="mg", route="IN", lot=lot, given_by="self (observed by AN)", reason="scheduled dose")
    s.add(ev.PhaseChanged, at(30), from_phase="infusion", to_phase="recovery", reason="last device + 5 min")
    s.add(ev.ObservationRecorded, at(55), author="AN", scale="moaas", score=4)
    s.add(ev.ObservationRecorded, at(55.5), author="AN", scale="cadss", score=12)
    s.add(ev.NoteAdded, at(60), author="AN", text="No respiratory depression observed; resting comfortably.")
    s.add(ev.ObservationRecorded, at(118), author="AN", scale="moaas", score=5)
    s.add(ev.ObservationRecorded, at(118.5), author="AN", scale="cadss", score=2)
    s.add(ev.DischargeAssessed, at(110), author="AN", aldrete_total=8, padss_total=8, vitals_within_20pct=True,
          min_recovery_met=False, criteria_met=False,
          blocked_reasons=("still drowsy", "minimum observation time not reached (120 min)"))
    s.add(ev.DischargeAssessed, at(120), author="AN", aldrete_total=10, padss_total=10, vitals_within_20pct=True,
          min_recovery_met=False, criteria_met=False,
          blocked_reasons=("minimum observation time not reached (120 min)",))
    s.add(ev.DischargeAssessed, at(140), author="AN", aldrete_total=10, padss_total=10, vitals_within_20pct=True,
          min_recovery_met=True, escort_present=True, instructions_given=True, criteria_met=True, discharged=True)
    s.add(ev.PhaseChanged, at(140), from_phase="recovery", to_phase="discharged")
    s.add(ev.SessionClosed, at(141.5))
    s.continuous(1, 141, hr=lambda m: 70 + 8 * math.exp(-((m - 55) / 25) ** 2), spo2=lambda m: 97, group_s=30)
    for m, sy, di in nibps:
        s.nibp(m, sy, di)
    return _sorted(s.events), inputs


# --------------------------------------------------------------------------- store


def numbered(events: list[Any]) -> list[Any]:
    """The events with the seq a store would give them (1-based, in order)."""
    return [e.model_copy(update={"seq": i + 1}) for i, e in enumerate(events)]


def write_session(path: Path, events: list[Any]) -> bool:
    """Write the events through ``chairside.store.SessionFile`` (True when written)."""
    from chairside.domain.clock import ManualClock
    from chairside.store import SessionFile

    clock = ManualClock(T0)
    sf = SessionFile.create(path, events[0], clock)
    try:
        for e in events[1:]:
            clock.set(max(clock.monotonic(), _mono(e.t)))
            sf.append(e)
        sf.flush()
    finally:
        sf.close()
    return True


def long_session(hours: float) -> list:
    """A long session at 1 Hz, as the benchmarks and the page-count test use it: HR, PR and
    SpO2 every second in one batch a second, NIBP every 5 min, an infusion from 10 min to
    50 min, an SpO2 dip of two minutes with its alarm, MOAA/S every 15 min (numbered from 1)."""
    out: list = [ev.SessionOpened(t=T0, author="KB", session_id="BENCH", patient_id="P-B", weight_kg=70,
                                  protocol="iv-ketamine-depression", staff=("KB",))]
    n = int(hours * 3600)
    start, stop = min(600, n // 4), min(n - 1, 600 + 2400)
    alarm = (start + 300, start + 420)  # an SpO2 dip of two minutes during the infusion
    for k in range(1, n):
        t = T0 + timedelta(seconds=k)
        spo2 = 88 if alarm[0] <= k < alarm[1] else 97 - (k % 3)
        rs = [Reading(param="hr", value=70 + (k % 7), unit="bpm", device_time=t, source="ecg"),
              Reading(param="pr", value=70 + (k % 5), unit="bpm", device_time=t, source="spo2"),
              Reading(param="spo2", value=spo2, unit="%", device_time=t, source="spo2")]
        if k % 300 == 0:
            rs += [Reading(param="nibp_sys", value=120 + (k % 40), unit="mmHg", device_time=t, source="nibp"),
                   Reading(param="nibp_dia", value=75 + (k % 20), unit="mmHg", device_time=t, source="nibp"),
                   Reading(param="nibp_map", value=90 + (k % 25), unit="mmHg", device_time=t, source="nibp")]
        out.append(ev.ReadingsRecorded(t=t, author="DEV", readings=tuple(rs), count=len(rs)))
        if k == start:
            out.append(ev.PhaseChanged(t=t, from_phase="pre_infusion", to_phase="infusion"))
            out.append(ev.InfusionStarted(t=t, author="KB", concentration_mg_ml=0.35, rate_mg_kg_h=0.75,
                                          rate_ml_h=150, lot="L1"))
        if k == alarm[0] + 15:
            out.append(ev.AlarmRaised(t=t, alarm_id="spo2_low#1", rule="spo2_low", priority="medium",
                                      param="spo2", value=88, limit=90, source_tag="[P]", message="SpO2 88 < 90"))
        if k == alarm[0] + 40:
            out.append(ev.AlarmAcknowledged(t=t, alarm_id="spo2_low#1", rule="spo2_low", by="KB", author="KB"))
        if k == alarm[1] + 5:
            out.append(ev.AlarmCleared(t=t, alarm_id="spo2_low#1", rule="spo2_low", value=96))
        if k == stop and stop > start:
            out.append(ev.InfusionStopped(t=t, author="KB"))
            out.append(ev.PhaseChanged(t=t, from_phase="infusion", to_phase="recovery"))
        if k % 900 == 0:
            out.append(ev.ObservationRecorded(t=t, author="KB", scale="moaas", score=5))
    out.append(ev.SessionClosed(t=T0 + timedelta(seconds=n)))
    return out


# --------------------------------------------------------------------------- fixtures
# Imported by the test modules (``from report_scenario import iv_file, esk_file``): each
# session file is written once per test process, not once per test.

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def iv_file(tmp_path_factory) -> Path:
    """The IV script written through the store."""
    path = tmp_path_factory.mktemp("reports-iv") / "iv.chairside"
    write_session(path, iv_session()[0])
    return path


@pytest.fixture(scope="session")
def esk_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reports-esk") / "esk.chairside"
    write_session(path, esketamine_session()[0])
    return path
