"""Alarm engine: phase-aware limits, priorities, delays, hysteresis, latching,
acknowledgement, audio pause, escalation, technical and combined alarms.

Pure and deterministic: time is passed in; state changes come out as domain events.
Owns: the public names re-exported here (``AlarmEngine``, ``load_profile``...).
May import: chairside.domain, stdlib. Must not import: textual, serial, sqlite3,
chairside.store, chairside.transport, chairside.service.
"""

from chairside.alarms.engine import ActiveAlarm, AlarmEngine, AlarmOffRefused, GateResult, LimitView
from chairside.alarms.profile import LimitsError, LimitsProfile, list_profiles, load_profile

__all__ = [
    "ActiveAlarm",
    "AlarmEngine",
    "AlarmOffRefused",
    "GateResult",
    "LimitView",
    "LimitsError",
    "LimitsProfile",
    "list_profiles",
    "load_profile",
]
