"""Session state: a pure fold of the session's events.

Owns: ``SessionState`` (frozen) and its queries, the small parts (``SessionInfo``,
``DevicesState``, ``EffectiveEvent``), ``apply(state, event)``, ``fold(events)``, the
readings' part (latest values, the NIBP log: ``log_nibp``) and amendments. The two parts
with rules of their own have their own homes: the infusion (``chairside.domain.infusion_state``)
and the alarms (``chairside.domain.alarm_state``); ``StateError`` is ``chairside.domain.state_error``
(raised by all three, re-exported here).
Must not import: anything outside stdlib and pydantic; of chairside only ``chairside.domain``.

Rules:
- The first event is ``session_opened``; ``seq`` strictly increases. An event with
  ``seq == -1`` (not yet stored) takes the seq the store will give it (``last_seq + 1``, or
  ``FIRST_SEQ`` = 1 for the first) and is kept with that seq, so the live state and the
  fold of the reopened file are equal.
- After ``session_closed`` only amendments are accepted (a late correction of the record,
  21 CFR 11.10(e): changes must not obscure what was recorded); anything else raises.
- Events that contradict the state (pause when not running, ack of an unknown alarm, a
  phase change from the wrong phase, an amendment of a later event) raise :class:`StateError`
  naming the event. The service applies an event before storing it, so a refused event
  never reaches the record.
- Amendments never remove anything: ``state.effective(seq)`` gives the original, every
  amendment and the resulting current version. Session info (weight...) and the infusion
  (segments, totals) are rebuilt from the amended versions, so dose totals use corrected
  values; ``observations``, ``baseline`` etc. return current versions.
- Fold of the same events gives an equal state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from chairside.domain.alarm_state import AlarmState, alarm_step
from chairside.domain.events import (
    Amendment,
    BaselineRecorded,
    ChecklistCompleted,
    DeviceStatusChanged,
    DischargeAssessed,
    Event,
    EventAdapter,
    InterventionGiven,
    NoteAdded,
    ObservationRecorded,
    ReadingsRecorded,
    SessionOpened,
)
from chairside.domain.infusion_state import INFUSION_KINDS, InfusionState, infusion_step
from chairside.domain.readings import NIBP_PARAMS, Reading
from chairside.domain.state_error import StateError
from chairside.domain.state_error import event_label as _label

_NOT_AMENDABLE_FIELDS = frozenset({"seq", "kind"})
_EMPTY: Mapping[Any, Any] = MappingProxyType({})
FIRST_SEQ = 1  # chairside.store numbers a session's events from 1
# what may still be appended after session_closed: corrections, and the REMS form's filing
AFTER_CLOSE_KINDS = frozenset({"amendment", "rems_form_filed"})


# ---------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    patient_id: str
    weight_kg: float
    weight_source: str
    weight_confirmed_by: str | None
    protocol: str
    staff: tuple[str, ...]
    simulated: bool
    sim_seed: int | None
    scenario: str | None
    training: bool
    app_version: str
    opened_t: datetime
    opened_seq: int

    @classmethod
    def from_event(cls, ev: SessionOpened, seq: int) -> SessionInfo:
        return cls(
            session_id=ev.session_id, patient_id=ev.patient_id, weight_kg=ev.weight_kg,
            weight_source=ev.weight_source, weight_confirmed_by=ev.weight_confirmed_by,
            protocol=ev.protocol, staff=tuple(ev.staff), simulated=ev.simulated, sim_seed=ev.sim_seed,
            scenario=ev.scenario, training=ev.training, app_version=ev.app_version, opened_t=ev.t,
            opened_seq=seq,
        )


@dataclass(frozen=True)
class DeviceRecord:
    """One fixed-dose device (esketamine nasal spray)."""

    seq: int
    t: datetime
    mono: float
    device_mg: float
    lot: str


@dataclass(frozen=True)
class DevicesState:
    """The fixed-dose devices given in this session (esketamine)."""

    devices: tuple[DeviceRecord, ...] = ()
    planned_mg: float | None = None

    @property
    def count(self) -> int:
        return len(self.devices)

    @property
    def total_mg(self) -> float:
        return sum(d.device_mg for d in self.devices)

    @property
    def first(self) -> DeviceRecord | None:
        return self.devices[0] if self.devices else None

    @property
    def last(self) -> DeviceRecord | None:
        return self.devices[-1] if self.devices else None


@dataclass(frozen=True)
class EffectiveEvent:
    """An event with its amendments: the original is never removed."""

    seq: int
    original: Any  # the recorded event (None if the state does not index it: readings)
    amendments: tuple[Amendment, ...]
    current: Any  # original with every replacement applied in order (None as above)

    @property
    def amended(self) -> bool:
        return bool(self.amendments)

    def changes(self) -> list[tuple[str, Any, Any, Amendment]]:
        """(field, old value, new value, amendment) for every amended field, in order."""
        out: list[tuple[str, Any, Any, Amendment]] = []
        cur = self.original.model_dump() if self.original is not None else {}
        for a in self.amendments:
            for k, v in a.replacement.items():
                out.append((k, cur.get(k), v, a))
                cur[k] = v
        return out


# ---------------------------------------------------------------------------- state


@dataclass(frozen=True)
class SessionState:
    session: SessionInfo | None = None
    phase: str = "pre_infusion"
    phase_seqs: tuple[int, ...] = ()
    checklist_seq: int | None = None
    baseline_seq: int | None = None
    infusion: InfusionState = field(default_factory=InfusionState)
    device_doses: DevicesState = field(default_factory=DevicesState)  # fixed-dose devices (esketamine)
    # every distinct valid NIBP measurement: (time, mono, systolic, diastolic)
    nibp_log: tuple[tuple[datetime, float, float | None, float | None], ...] = ()
    latest: Mapping[str, Reading] = field(default_factory=lambda: _EMPTY)  # last reading per param (valid or not)
    latest_valid: Mapping[str, Reading] = field(default_factory=lambda: _EMPTY)  # last valid reading per param
    last_nibp_t: datetime | None = None  # time of the last valid NIBP measurement
    last_nibp_mono: float | None = None
    readings_count: int = 0
    observation_seqs: tuple[int, ...] = ()
    intervention_seqs: tuple[int, ...] = ()
    note_seqs: tuple[int, ...] = ()
    discharge_seqs: tuple[int, ...] = ()
    rems_filed_seqs: tuple[int, ...] = ()
    alarms: Mapping[str, AlarmState] = field(default_factory=lambda: _EMPTY)
    devices: Mapping[str, DeviceStatusChanged] = field(default_factory=lambda: _EMPTY)  # "kind:param" -> latest
    amendments: Mapping[int, tuple[Amendment, ...]] = field(default_factory=lambda: _EMPTY)  # target_seq -> amendments
    events: Mapping[int, Any] = field(default_factory=lambda: _EMPTY)  # seq -> every event except readings_recorded
    closed: bool = False
    closed_seq: int | None = None
    close_reason: str = ""
    last_seq: int = -1
    last_t: datetime | None = None
    last_mono: float | None = None

    # ------------------------------------------------------------ effective views

    def effective(self, seq: int) -> EffectiveEvent:
        """The event at ``seq`` with its amendments (original + replacements, together)."""
        original = self.events.get(seq)
        amends = self.amendments.get(seq, ())
        if original is None and not amends:
            raise KeyError(f"no event #{seq} in this state")
        return EffectiveEvent(seq, original, amends, _amended(original, amends) if original is not None else None)

    def current(self, seq: int | None) -> Any:
        """The current (amended) version of the event at ``seq``; None for None."""
        if seq is None:
            return None
        return _amended(self.events[seq], self.amendments.get(seq, ()))

    def effective_events(self) -> list[EffectiveEvent]:
        """Every indexed event in seq order with its amendments."""
        return [self.effective(s) for s in sorted(self.events)]

    @property
    def weight_kg(self) -> float | None:
        return self.session.weight_kg if self.session else None

    @property
    def checklist(self) -> ChecklistCompleted | None:
        return self.current(self.checklist_seq)

    @property
    def baseline(self) -> BaselineRecorded | None:
        return self.current(self.baseline_seq)

    @property
    def observations(self) -> tuple[ObservationRecorded, ...]:
        return tuple(self.current(s) for s in self.observation_seqs)

    @property
    def interventions(self) -> tuple[InterventionGiven, ...]:
        return tuple(self.current(s) for s in self.intervention_seqs)

    @property
    def notes(self) -> tuple[NoteAdded, ...]:
        return tuple(self.current(s) for s in self.note_seqs)

    @property
    def discharge(self) -> DischargeAssessed | None:
        return self.current(self.discharge_seqs[-1]) if self.discharge_seqs else None

    @property
    def open_alarms(self) -> tuple[AlarmState, ...]:
        return tuple(a for a in self.alarms.values() if a.open)

    @property
    def active_device_conditions(self) -> tuple[DeviceStatusChanged, ...]:
        return tuple(d for d in self.devices.values() if d.status.active)


EMPTY_STATE = SessionState()


def _amended(original: Any, amends: tuple[Amendment, ...]) -> Any:
    if not amends:
        return original
    data = original.model_dump()
    for a in amends:
        data.update(a.replacement)
    return EventAdapter.validate_python(data)


def _freeze(d: dict[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(d)


def _rebuild(state: SessionState) -> SessionState:
    """Session info and infusion from the current (amended) versions of their events."""
    session = state.session
    if session is not None:
        opened = state.current(session.opened_seq)
        session = SessionInfo.from_event(opened, session.opened_seq)
    weight = session.weight_kg if session else None
    inf = InfusionState()
    for seq in sorted(state.events):
        ev = state.events[seq]
        if ev.kind in INFUSION_KINDS:
            inf = infusion_step(inf, state.current(seq), seq, weight)
    return replace(state, session=session, infusion=inf)


# ---------------------------------------------------------------------------- readings


def _readings_step(state: SessionState, ev: ReadingsRecorded) -> SessionState:
    if not ev.readings:
        return replace(state, readings_count=state.readings_count + ev.count)
    latest = dict(state.latest)
    valid = dict(state.latest_valid)
    nibp_t, nibp_mono = state.last_nibp_t, state.last_nibp_mono
    log: list[Any] | None = None
    for r in ev.readings:
        latest[r.param] = r
        if r.valid and r.value is not None:
            valid[r.param] = r
            if r.param in NIBP_PARAMS:
                rt = r.time or ev.t
                if nibp_t is None or rt > nibp_t:
                    lag = max(0.0, (ev.t - rt).total_seconds()) if r.time is not None else 0.0
                    nibp_t, nibp_mono = rt, float(ev.mono) - lag
                if r.param in ("nibp_sys", "nibp_dia"):
                    if log is None:
                        log = list(state.nibp_log)
                    log_nibp(log, rt, float(ev.mono) - (max(0.0, (ev.t - rt).total_seconds())
                                                         if r.time is not None else 0.0), r.param, r.value)
    return replace(state, latest=_freeze(latest), latest_valid=_freeze(valid), last_nibp_t=nibp_t,
                   last_nibp_mono=nibp_mono, readings_count=state.readings_count + len(ev.readings),
                   nibp_log=state.nibp_log if log is None else tuple(log))


def log_nibp(log: list[tuple[datetime, float, float | None, float | None]], t: datetime, mono: float,
              param: str, value: float) -> None:
    """Add a valid NIBP value to ``log`` (in place): one entry per measurement time, a systolic
    and its diastolic (same time) join one entry; the monitor repeating its last measurement
    adds nothing. The service keeps its live log with it too."""
    for i in range(len(log) - 1, max(-1, len(log) - 4), -1):
        lt, lm, ls, ld = log[i]
        if lt == t:
            log[i] = (lt, lm, value if param == "nibp_sys" else ls, value if param == "nibp_dia" else ld)
            return
        if lt < t:
            break
    if log and t < log[-1][0]:
        return  # an older measurement re-sent: already logged (or too old to matter)
    log.append((t, mono, value if param == "nibp_sys" else None, value if param == "nibp_dia" else None))


# ---------------------------------------------------------------------------- amendments


def _check_amendment(state: SessionState, ev: Amendment, seq: int) -> None:
    target = ev.target_seq
    if target >= seq:
        raise StateError(f"{_label(ev, seq)}: target #{target} is not an earlier event")
    bad = _NOT_AMENDABLE_FIELDS & set(ev.replacement)
    if bad:
        raise StateError(f"{_label(ev, seq)}: {', '.join(sorted(bad))} cannot be amended")
    original = state.events.get(target)
    if original is None:
        if state.session is not None and target < state.session.opened_seq:
            raise StateError(f"{_label(ev, seq)}: target #{target} is before the session opened")
        return  # a readings_recorded event (not indexed): kept, not validated
    if original.kind == "amendment":
        raise StateError(f"{_label(ev, seq)}: amend the original event #{original.target_seq}, not an amendment")
    unknown = set(ev.replacement) - set(type(original).model_fields)
    if unknown:
        raise StateError(f"{_label(ev, seq)}: {original.kind} has no field {', '.join(sorted(unknown))}")
    try:
        _amended(original, (*state.amendments.get(target, ()), ev))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"][1:]) or "?"
        raise StateError(f"{_label(ev, seq)}: replacement {where}: {err['msg']}") from None


# ---------------------------------------------------------------------------- apply / fold


def apply(state: SessionState, event: Event) -> SessionState:
    """The state after ``event``. Raises :class:`StateError` when it cannot apply."""
    ev: Any = event
    if ev.seq >= 0:
        seq = ev.seq
        if seq <= state.last_seq:
            raise StateError(f"{_label(ev, seq)} is out of order: the last applied event is #{state.last_seq}")
    else:
        # not stored yet: the seq the store will give it (it numbers from FIRST_SEQ, consecutively)
        seq = state.last_seq + 1 if state.last_seq >= 0 else FIRST_SEQ
        if ev.kind != "readings_recorded":  # kept in the state: keep it as it will be stored
            ev = ev.model_copy(update={"seq": seq})
    if state.closed and ev.kind not in AFTER_CLOSE_KINDS:
        raise StateError(f"{_label(ev, seq)}: the session was closed at #{state.closed_seq}")
    if state.session is None and ev.kind != "session_opened":
        raise StateError(f"{_label(ev, seq)}: the first event must be session_opened")
    kind = ev.kind

    base = replace(state, last_seq=seq, last_t=ev.t, last_mono=float(ev.mono))
    if kind == "readings_recorded":
        return _readings_step(base, ev)
    base = replace(base, events=_freeze({**state.events, seq: ev}))

    if kind == "session_opened":
        if state.session is not None:
            raise StateError(f"{_label(ev, seq)}: the session is already open (#{state.session.opened_seq})")
        return replace(base, session=SessionInfo.from_event(ev, seq))
    if kind == "checklist_completed":
        return replace(base, checklist_seq=seq)
    if kind == "baseline_recorded":
        return replace(base, baseline_seq=seq)
    if kind == "phase_changed":
        if ev.from_phase != state.phase:
            raise StateError(f"{_label(ev, seq)}: from_phase {ev.from_phase!r} but the phase is {state.phase!r}")
        if ev.to_phase == ev.from_phase:
            raise StateError(f"{_label(ev, seq)}: to_phase equals from_phase ({ev.to_phase!r})")
        return replace(base, phase=ev.to_phase, phase_seqs=(*state.phase_seqs, seq))
    if kind in INFUSION_KINDS:
        return replace(base, infusion=infusion_step(state.infusion, ev, seq, state.weight_kg))
    if kind == "observation_recorded":
        return replace(base, observation_seqs=(*state.observation_seqs, seq))
    if kind == "device_given":
        d = state.device_doses
        rec = DeviceRecord(seq=seq, t=ev.t, mono=float(ev.mono), device_mg=float(ev.device_mg), lot=ev.lot)
        return replace(base, device_doses=replace(d, devices=(*d.devices, rec),
                                             planned_mg=ev.planned_mg if ev.planned_mg is not None else d.planned_mg))
    if kind == "intervention_given":
        return replace(base, intervention_seqs=(*state.intervention_seqs, seq))
    if kind in ("alarm_raised", "alarm_escalated", "alarm_acknowledged", "alarm_silenced", "alarm_cleared"):
        return replace(base, alarms=alarm_step(state.alarms, ev, seq))
    if kind == "device_status":
        key = f"{ev.status.kind}:{ev.status.param or ''}"
        return replace(base, devices=_freeze({**state.devices, key: ev}))
    if kind == "note":
        return replace(base, note_seqs=(*state.note_seqs, seq))
    if kind == "training":  # a training run's own record: kept, changes nothing clinical
        return base
    if kind in ("monitoring_stopped", "session_resumed"):  # gaps in monitoring: kept, listed in order
        return base
    if kind == "amendment":
        _check_amendment(state, ev, seq)
        amends = dict(state.amendments)
        amends[ev.target_seq] = (*amends.get(ev.target_seq, ()), ev)
        new = replace(base, amendments=_freeze(amends))
        target = state.events.get(ev.target_seq)
        if target is not None and (target.kind in INFUSION_KINDS or target.kind == "session_opened"):
            try:
                new = _rebuild(new)
            except StateError as exc:
                raise StateError(f"{_label(ev, seq)}: the amended record does not hold together: {exc}") from None
        return new
    if kind == "discharge_assessed":
        return replace(base, discharge_seqs=(*state.discharge_seqs, seq))
    if kind == "session_closed":
        return replace(base, closed=True, closed_seq=seq, close_reason=ev.reason)
    if kind == "rems_form_filed":
        return replace(base, rems_filed_seqs=(*state.rems_filed_seqs, seq))
    raise StateError(f"{_label(ev, seq)}: unknown event kind")  # pragma: no cover


def fold(events: Iterable[Event], initial: SessionState | None = None) -> SessionState:
    """Apply ``events`` in order, from ``initial`` (default: the empty state)."""
    state = initial if initial is not None else EMPTY_STATE
    for ev in events:
        state = apply(state, ev)
    return state


__all__ = [
    "DeviceRecord", "DevicesState", "EMPTY_STATE", "EffectiveEvent", "SessionInfo",
    "SessionState", "StateError", "apply", "fold", "log_nibp",
]
