"""Readings as a monitor's link hands them on, for the service, console and snapshot tests:
``nibp(clock, sys, dia)`` (one cuff result; MAP = (SBP + 2 DBP) / 3) and ``cont(clock, hr,
spo2)`` (ECG HR, SpO2 and its pulse rate), stamped with the clock's time."""

from __future__ import annotations

from chairside.domain.readings import Reading


def nibp(clock, s, d):
    t = clock.now()
    return [Reading(param="nibp_sys", value=s, unit="mmHg", receive_time=t, source="nibp"),
            Reading(param="nibp_dia", value=d, unit="mmHg", receive_time=t, source="nibp"),
            Reading(param="nibp_map", value=round((s + 2 * d) / 3), unit="mmHg", receive_time=t, source="nibp")]


def cont(clock, hr=72, spo2=98):
    t = clock.now()
    return [Reading(param="hr", value=hr, unit="bpm", receive_time=t, source="ecg"),
            Reading(param="spo2", value=spo2, unit="%", receive_time=t, source="spo2"),
            Reading(param="pr", value=hr, unit="bpm", receive_time=t, source="spo2")]
