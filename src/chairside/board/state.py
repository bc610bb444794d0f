"""One chair's state as the board sees it, and the board's model of every chair.

Owns: ``ChairState`` (the JSON payload of ``chairside/v1/<clinic>/<chair>/state``:
chair, pseudonym, phase and its start, infusion state and totals, next BP due, active
alarms, latest value/time/validity of each vital, link state, the record's last seq;
never a name), ``chair_state(snapshot, chair)`` built from the service's snapshot,
``AlarmMessage`` (an alarm event as recorded, with its seq), ``BoardModel`` — what the
board shows: per chair the latest state, online/offline (Last Will), NOT REPORTING when
the state stops arriving, the alarm events received (duplicates dropped by seq), and the
counts of malformed or foreign messages; ``board_settings`` (``data/board.toml``).
Deterministic: callers pass the monotonic time. Must not import: textual, paho.
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chairside.domain.describe import PRIORITY_RANK

__all__ = ["AlarmMessage", "alarm_message", "BoardModel", "ChairState", "ChairView", "board_settings", "chair_state"]

SCHEMA = "chairside-board/1"


@lru_cache(maxsize=1)
def board_settings() -> dict[str, Any]:
    text = resources.files("chairside").joinpath("data/board.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


class _M(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Vital(_M):
    value: float | None = None
    value2: float | None = None  # NIBP diastolic
    t: str | None = None  # ISO time of the value (None: never one)
    age_s: float | None = None
    valid: bool = False
    missing_reason: str | None = None


class AlarmBrief(_M):
    alarm_id: str
    priority: str
    message: str
    alarm_class: str = "physiological"
    acknowledged: bool = False


class ChairState(_M):
    schema_: str = Field(default=SCHEMA, alias="schema")
    chair: str
    pseudonym: str = ""
    session_open: bool = False
    phase: str = ""
    phase_since: str | None = None
    infusion_state: str = "not_started"
    drug: str = ""
    given_mg: float = 0.0
    given_mg_kg: float = 0.0
    ordered_mg_kg: float | None = None
    next_bp_due_s: float | None = None
    alarms: list[AlarmBrief] = []
    vitals: dict[str, Vital] = {}
    link_state: str = ""
    last_seq: int = 0
    sent: str = ""  # ISO time of publication

    def worst_alarm(self) -> AlarmBrief | None:
        if not self.alarms:
            return None
        return max(self.alarms, key=lambda a: PRIORITY_RANK.get(a.priority, 0))


class AlarmMessage(_M):
    chair: str
    seq: int
    kind: str  # alarm_raised, alarm_escalated, alarm_acknowledged, alarm_cleared, alarm_silenced
    t: str
    alarm_id: str
    priority: str | None = None
    message: str = ""


def alarm_message(chair: str, ev: Any) -> AlarmMessage:
    """An alarm event as recorded (raised, escalated, acknowledged, silenced, cleared), for the board."""
    return AlarmMessage(chair=chair, seq=ev.seq, kind=ev.kind, t=ev.t.isoformat(), alarm_id=ev.alarm_id,
                        priority=getattr(ev, "priority", None) or getattr(ev, "to_priority", None),
                        message=getattr(ev, "message", "") or "")


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def chair_state(snap: Any, chair: str, *, last_seq: int = 0) -> ChairState:
    """The board payload of one chair from the service's snapshot (pseudonym only)."""
    vitals: dict[str, Vital] = {}
    for tile in snap.tiles:
        t = None
        if tile.age_s is not None:
            t = _iso(snap.now.__class__.fromtimestamp(snap.now.timestamp() - tile.age_s, tz=snap.now.tzinfo))
        vitals[tile.key] = Vital(value=tile.value, value2=tile.value2 if tile.key == "nibp" else None, t=t,
                                 age_s=tile.age_s, valid=tile.value is not None and not tile.stale,
                                 missing_reason=tile.missing_reason)
    inf = snap.infusion
    sess = snap.session
    phase_since = None
    if getattr(snap, "timeline", None):
        for item in reversed(snap.timeline):
            if item.kind in ("phase_changed", "session_opened"):
                phase_since = _iso(item.t)
                break
    return ChairState(
        chair=chair, pseudonym=sess.patient_id if sess.open else "", session_open=sess.open,
        phase=sess.phase if sess.open else "", phase_since=phase_since, infusion_state=inf.state, drug=inf.drug,
        given_mg=round(inf.delivered_mg, 1), given_mg_kg=round(inf.delivered_mg_kg, 3),
        ordered_mg_kg=inf.target_dose_mg_kg, next_bp_due_s=snap.next_bp_due_s,
        alarms=[AlarmBrief(alarm_id=a.alarm_id, priority=a.priority, message=a.message, alarm_class=a.alarm_class,
                           acknowledged=a.acknowledged) for a in snap.alarms],
        vitals=vitals, link_state=snap.device.link_state, last_seq=last_seq, sent=_iso(snap.now) or "")


@dataclass
class ChairView:
    """What the board shows of one chair."""

    name: str
    state: ChairState | None = None
    received_mono: float | None = None
    online: bool | None = None  # None: never heard; False: the Last Will (or a clean goodbye)
    not_reporting: bool = False
    alarms_seen: dict[int, AlarmMessage] = field(default_factory=dict)  # by the record's seq

    @property
    def status(self) -> str:
        if self.online is False:
            return "OFFLINE"
        if self.not_reporting:
            return "NOT REPORTING"
        if self.state is None:
            return "WAITING"
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        st = self.state
        worst = st.worst_alarm() if st else None
        return {"chair": self.name, "status": self.status, "online": self.online,
                "state": None if st is None else st.model_dump(by_alias=True),
                "worst_alarm": None if worst is None else worst.priority,
                "alarm_events": len(self.alarms_seen)}


class BoardModel:
    """Every chair's view; thread-safe (the MQTT thread updates, the screen reads)."""

    def __init__(self, *, not_reporting_after_s: float | None = None) -> None:
        self.not_reporting_after_s = float(
            not_reporting_after_s if not_reporting_after_s is not None
            else board_settings()["board"]["not_reporting_after_s"])
        self.chairs: dict[str, ChairView] = {}
        self.malformed = 0
        self.foreign = 0
        self.duplicates = 0
        self._lock = threading.Lock()

    def _chair(self, name: str) -> ChairView:
        view = self.chairs.get(name)
        if view is None:
            view = self.chairs[name] = ChairView(name)
        return view

    def on_state(self, chair: str, payload: bytes | str | dict[str, Any], mono: float) -> bool:
        """A state message; False (and counted) when it is malformed or not ours."""
        try:
            st = ChairState.model_validate_json(payload) if isinstance(payload, (bytes, str)) else \
                ChairState.model_validate(payload)
        except (ValidationError, ValueError):
            with self._lock:
                self.malformed += 1
            return False
        if st.schema_ != SCHEMA or st.chair != chair:
            with self._lock:
                self.foreign += 1
            return False
        with self._lock:
            view = self._chair(chair)
            view.state, view.received_mono, view.not_reporting = st, mono, False
            if view.online is None:
                view.online = True
        return True

    def on_alarm(self, chair: str, payload: bytes | str, mono: float) -> bool:
        try:
            msg = AlarmMessage.model_validate_json(payload)
        except (ValidationError, ValueError):
            with self._lock:
                self.malformed += 1
            return False
        if msg.chair != chair:
            with self._lock:
                self.foreign += 1
            return False
        with self._lock:
            view = self._chair(chair)
            if msg.seq in view.alarms_seen:
                self.duplicates += 1
                return False
            view.alarms_seen[msg.seq] = msg
        return True

    def on_online(self, chair: str, payload: bytes | str) -> bool:
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        if text not in ("online", "offline"):
            with self._lock:
                self.malformed += 1
            return False
        with self._lock:
            self._chair(chair).online = text == "online"
        return True

    def tick(self, mono: float) -> list[str]:
        """Mark chairs whose state stopped arriving; the names that just became NOT REPORTING."""
        out = []
        with self._lock:
            for view in self.chairs.values():
                if view.received_mono is None or view.online is False:
                    continue
                late = mono - view.received_mono >= self.not_reporting_after_s
                if late and not view.not_reporting:
                    out.append(view.name)
                view.not_reporting = late
        return out

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.chairs[name].as_dict() for name in sorted(self.chairs)]
