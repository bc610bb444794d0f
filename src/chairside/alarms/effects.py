"""The one table of domain event -> alarm-engine effects.

Everything a recorded (or commanded) event does to the alarm engine lives here, in the
spirit of h11's ``_state.py``: the live console and the replay of a session file feed the
same events through ``AlarmEngine.on_event(ev, now)`` and so make the same calls. The
engine's shadow of the session (phase, infusing, baseline, the infusion start / last
rate increase that tightens the NIBP schedule) is fed only from here.

Two kinds of input events:

* clinical events as stored (session, baseline, phase, infusion, observation, discharge);
* staff actions on alarms: ``AlarmAcknowledged`` and ``AlarmSilenced`` carrying ``by``
  (a live command builds one; a replay passes the recorded one). The engine answers with
  its own events about the alarms it holds; an acknowledgement whose alarm id is not
  active falls back to the same rule's unacknowledged alarm (a replay recomputes alarms).

A session's opening has no entry: an engine is made for each record (``t0`` its opening,
phase pre-infusion). Events the engine itself emitted (``by`` empty, or ``reminder``) and every other kind have
no effect. Readings, device status and time have their own entry points
(``on_reading``, ``on_device_status``, ``tick``).
May import: chairside.domain, stdlib. Must not import: textual, serial, sqlite3,
chairside.store, chairside.transport, chairside.service.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chairside.alarms.engine import AlarmEngine

__all__ = ["EFFECTS", "STAFF_SILENCE_MODES", "is_increase"]

Effect = Callable[["AlarmEngine", Any, datetime], list]

STAFF_SILENCE_MODES = ("audio_paused", "audio_off", "alarm_off", "resumed")


def is_increase(old: tuple[float, float], mg_kg_h: float, ml_h: float) -> bool:
    """A rate above the running one (mg/kg/h when both are known, else mL/h): the same
    test the session state uses to tighten the NIBP schedule."""
    if mg_kg_h > 0 and old[0] > 0:
        return mg_kg_h > old[0]
    return ml_h > old[1]


def _baseline(e: AlarmEngine, ev: Any, now: datetime) -> list:
    e.set_baseline(ev.sbp, ev.dbp, ev.hr, ev.spo2)
    return []


def _phase(e: AlarmEngine, ev: Any, now: datetime) -> list:
    return e.set_phase(ev.to_phase, now)


def _started(e: AlarmEngine, ev: Any, now: datetime) -> list:
    e.rate_changed((ev.rate_mg_kg_h, ev.rate_ml_h), True, now)
    return e.set_phase("infusion", now) + e.set_infusing(True, now)


def _rate_changed(e: AlarmEngine, ev: Any, now: datetime) -> list:
    running = e.infusing
    e.rate_changed((ev.rate_mg_kg_h, ev.rate_ml_h),
                   running and is_increase(e.rate, ev.rate_mg_kg_h, ev.rate_ml_h), now)
    return []


def _paused(e: AlarmEngine, ev: Any, now: datetime) -> list:
    return e.set_infusing(False, now)


def _resumed(e: AlarmEngine, ev: Any, now: datetime) -> list:
    e.rate_changed((ev.rate_mg_kg_h, ev.rate_ml_h), is_increase(e.rate, ev.rate_mg_kg_h, ev.rate_ml_h), now)
    return e.set_infusing(True, now)


def _stopped(e: AlarmEngine, ev: Any, now: datetime) -> list:
    return e.set_infusing(False, now) + e.set_phase("recovery", now)


def _observation(e: AlarmEngine, ev: Any, now: datetime) -> list:
    return e.on_observation(ev, now)


def _discharge(e: AlarmEngine, ev: Any, now: datetime) -> list:
    return e.set_infusing(False, now) if ev.discharged else []


def _acknowledged(e: AlarmEngine, ev: Any, now: datetime) -> list:
    if not ev.by:
        return []
    target = None if ev.alarm_id in ("", "*") else ev.alarm_id
    return e.silencing.acknowledge(target, ev.by, now, rule=ev.rule)


def _silenced(e: AlarmEngine, ev: Any, now: datetime) -> list:
    if not ev.by or ev.mode not in STAFF_SILENCE_MODES:
        return []
    s = e.silencing
    if ev.mode == "audio_paused":
        return s.pause_audio(ev.by, now, ev.duration_s)
    if ev.mode == "audio_off":
        return s.audio_off(ev.by, now)
    if ev.mode == "alarm_off":
        return e.alarm_off(ev.rule, ev.by, now)
    return s.resume(ev.alarm_id, ev.by, now)


EFFECTS: dict[str, tuple[Effect, ...]] = {
    "baseline_recorded": (_baseline,),
    "phase_changed": (_phase,),
    "infusion_started": (_started,),
    "infusion_rate_changed": (_rate_changed,),
    "infusion_paused": (_paused,),
    "infusion_resumed": (_resumed,),
    "infusion_stopped": (_stopped,),
    "infusion_completed": (_stopped,),  # the ordered dose is in: the pump has nothing left to give
    "observation_recorded": (_observation,),
    "discharge_assessed": (_discharge,),
    "alarm_acknowledged": (_acknowledged,),
    "alarm_silenced": (_silenced,),
}
