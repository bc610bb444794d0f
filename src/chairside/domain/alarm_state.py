"""The alarms' part of the session state: each alarm's life as the record tells it.

Owns: ``AlarmState`` (raised, escalated, acknowledged, silenced, latched, cleared),
``GLOBAL_SILENCE_IDS`` and ``alarm_step``. The alarm engine (``chairside.alarms``) decides
when an alarm is raised or cleared; this module only keeps what the events say.
Must not import: anything outside stdlib and pydantic; of chairside only ``chairside.domain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from chairside.domain.events import AlarmAcknowledged, AlarmCleared, AlarmEscalated, AlarmRaised, AlarmSilenced
from chairside.domain.state_error import StateError, event_label

AlarmStatus = Literal["active", "acknowledged", "latched", "cleared"]


@dataclass(frozen=True)
class AlarmState:
    alarm_id: str
    rule: str
    priority: str
    alarm_class: str
    param: str | None
    value: float | None
    limit: float | None
    source_tag: str
    message: str
    latching: bool
    raised_seq: int
    raised_t: datetime
    raised_mono: float
    status: AlarmStatus = "active"
    condition_present: bool = True
    acknowledged_by: str | None = None
    acknowledged_t: datetime | None = None
    cleared_t: datetime | None = None
    cleared_seq: int | None = None
    escalations: int = 0
    reannouncements: int = 0
    silence_mode: str | None = None
    silenced_by: str | None = None
    silence_until_mono: float | None = None  # None with a mode: indefinite

    @property
    def open(self) -> bool:
        """Still to be seen: active, acknowledged while the condition persists, or latched."""
        return self.status != "cleared"

    def silenced_at(self, mono: float) -> bool:
        if self.silence_mode is None:
            return False
        return self.silence_until_mono is None or mono < self.silence_until_mono


GLOBAL_SILENCE_IDS = frozenset({"*", "audio"})  # alarm ids of silences that name no alarm


def alarm_step(alarms: Mapping[str, AlarmState], ev: Any, seq: int) -> Mapping[str, AlarmState]:
    """The alarms (by id) after one alarm event; raises ``StateError``."""
    aid = ev.alarm_id
    cur = alarms.get(aid)
    if isinstance(ev, AlarmRaised):
        if cur is not None and cur.open:
            raise StateError(f"{event_label(ev, seq)}: alarm {aid!r} is already raised and not cleared")
        new = AlarmState(
            alarm_id=aid, rule=ev.rule, priority=ev.priority, alarm_class=ev.alarm_class, param=ev.param,
            value=ev.value, limit=ev.limit, source_tag=ev.source_tag, message=ev.message, latching=ev.latching,
            raised_seq=seq, raised_t=ev.t, raised_mono=float(ev.mono),
        )
        return MappingProxyType({**alarms, aid: new})
    if cur is None:
        if isinstance(ev, AlarmSilenced) and (aid in GLOBAL_SILENCE_IDS or aid.startswith("off:")):
            # the audio paused or off for every alarm ("*", "audio"), or an alarm turned off
            # by rule ("off:<rule>"): a record of the staff's action, no alarm of its own
            return alarms
        raise StateError(f"{event_label(ev, seq)}: unknown alarm {aid!r}")
    if isinstance(ev, AlarmEscalated):
        if not cur.open:
            raise StateError(f"{event_label(ev, seq)}: alarm {aid!r} is already cleared")
        changed = ev.to_priority != cur.priority
        new = replace(
            cur, priority=ev.to_priority, value=ev.value if ev.value is not None else cur.value,
            escalations=cur.escalations + (1 if changed else 0),
            reannouncements=cur.reannouncements + (1 if ev.reannounce else 0),
            # a new priority needs a new acknowledgement
            status="active" if changed and cur.status == "acknowledged" else cur.status,
        )
    elif isinstance(ev, AlarmAcknowledged):
        by = ev.by or ev.author
        status: AlarmStatus = cur.status
        if cur.status == "active":
            status = "acknowledged" if cur.condition_present else "cleared"
        elif cur.status == "latched":
            status = "cleared"
        new = replace(cur, status=status, acknowledged_by=by, acknowledged_t=ev.t,
                      cleared_t=ev.t if status == "cleared" and cur.cleared_t is None else cur.cleared_t,
                      cleared_seq=seq if status == "cleared" and cur.cleared_seq is None else cur.cleared_seq)
    elif isinstance(ev, AlarmSilenced):
        if ev.mode == "resumed":
            new = replace(cur, silence_mode=None, silenced_by=None, silence_until_mono=None)
        else:
            until = float(ev.mono) + ev.duration_s if ev.duration_s is not None else None
            new = replace(cur, silence_mode=ev.mode, silenced_by=ev.by or ev.author, silence_until_mono=until)
    elif isinstance(ev, AlarmCleared):
        if not cur.condition_present:
            raise StateError(f"{event_label(ev, seq)}: alarm {aid!r} is already cleared")
        # a latching alarm nobody acknowledged stays visible ("latched") until acknowledged
        if cur.status == "active" and cur.latching:
            new = replace(cur, status="latched", condition_present=False,
                          value=ev.value if ev.value is not None else cur.value)
        else:
            new = replace(cur, status="cleared", condition_present=False, cleared_t=ev.t, cleared_seq=seq,
                          value=ev.value if ev.value is not None else cur.value)
    else:  # pragma: no cover
        raise AssertionError(ev.kind)
    return MappingProxyType({**alarms, aid: new})
