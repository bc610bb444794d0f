"""Session events: the append-only record of a session, as one discriminated union.

Owns: every event type, the ``Event`` union and ``EventAdapter`` (validate/serialise).
Must not import: anything outside stdlib and pydantic.

Every event carries ``seq`` (assigned by the store on append; -1 before), ``t`` (UTC),
``mono`` (seconds since the session opened, from the monotonic clock) and ``author``
(staff initials, or ``SYS`` for the system, ``ALM`` for the alarm engine, ``DEV`` for
the device). Events are never changed: a correction is an :class:`Amendment` that
points at the event it corrects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from chairside.domain.readings import DeviceStatus, Reading

Phase = Literal["pre_infusion", "infusion", "recovery", "discharged"]
Priority = Literal["low", "medium", "high"]
AlarmClass = Literal["physiological", "technical"]
SYSTEM = "SYS"
ALARM_ENGINE = "ALM"
DEVICE = "DEV"


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = -1
    t: datetime
    mono: float = 0.0
    author: str = SYSTEM

    @field_validator("t")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.utcoffset() is None:
            raise ValueError("event time must be timezone-aware (UTC)")
        return v

    @field_validator("author")
    @classmethod
    def _initials(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("author initials are required")
        return v


class SessionOpened(_EventBase):
    kind: Literal["session_opened"] = "session_opened"
    session_id: str
    patient_id: str  # pseudonymous
    weight_kg: float
    weight_source: Literal["measured", "stated", "chart"] = "measured"
    weight_confirmed_by: str | None = None
    protocol: str  # protocol template name
    staff: tuple[str, ...] = ()
    app_version: str = ""
    simulated: bool = False
    sim_seed: int | None = None
    scenario: str | None = None
    training: bool = False
    # the course (issue 14 item 10): infusion n of the template's planned count, and a
    # summary of the previous session of the same pseudonym found in the session folder
    course_n: int | None = None
    course_planned: int | None = None
    previous: dict[str, Any] = Field(default_factory=dict)
    # the limits file the alarm engine used (issue 15): its path and the SHA-256 of its bytes
    limits_file: str | None = None
    limits_sha256: str | None = None


class ChecklistCompleted(_EventBase):
    kind: Literal["checklist_completed"] = "checklist_completed"
    # contraindication name -> present (True means the contraindication IS present)
    contraindications: dict[str, bool] = Field(default_factory=dict)
    hours_fasted: float | None = None
    escort_confirmed: bool = False
    consent: bool = False
    notes: str = ""
    # the template's own checks (chairside.domain.start_checks); None = not answered
    medications_reviewed: bool | None = None
    allergies: str | None = None  # what was recorded ("none known" counts as recorded)
    concomitant: dict[str, bool] = Field(default_factory=dict)  # esketamine drug classes: present?


class BaselineRecorded(_EventBase):
    kind: Literal["baseline_recorded"] = "baseline_recorded"
    sbp: float | None = None
    dbp: float | None = None
    map: float | None = None
    hr: float | None = None
    spo2: float | None = None
    moaas: int | None = None
    cadss: int | None = None
    source_seqs: tuple[int, ...] = ()  # readings events the values came from, if any


class PhaseChanged(_EventBase):
    kind: Literal["phase_changed"] = "phase_changed"
    from_phase: Phase
    to_phase: Phase
    reason: str = ""


class _InfusionRate(_EventBase):
    drug: str = "ketamine"
    concentration_mg_ml: float = 0.0
    rate_mg_kg_h: float = 0.0
    rate_ml_h: float = 0.0
    reason: str = ""


class InfusionStarted(_InfusionRate):
    kind: Literal["infusion_started"] = "infusion_started"
    route: str = "IV"
    dose_mg_kg: float | None = None  # target dose for the infusion, if dosed by mg/kg
    duration_min: float | None = None
    lot: str = ""
    diluent: str = ""
    bag_volume_ml: float | None = None
    gate_override_reason: str = ""  # pre-infusion BP/SpO2 gate overridden
    above_usual_reason: str = ""  # dose above the template's usual range
    confirmed_by: str | None = None
    dose_mg: float | None = None  # the ordered dose in mg (what completes the infusion)
    volume_to_infuse_ml: float | None = None  # the order's volume to be infused (dose / concentration)
    advisories: tuple[str, ...] = ()  # start-gate advisories that applied (each needs the reason)
    advisory_reason: str = ""
    bag_findings: tuple[str, ...] = ()  # bag checks that needed a reason (concentration, content)
    bag_reason: str = ""


class InfusionRateChanged(_InfusionRate):
    kind: Literal["infusion_rate_changed"] = "infusion_rate_changed"
    old_rate_mg_kg_h: float = 0.0
    old_rate_ml_h: float = 0.0
    above_usual_reason: str = ""


class InfusionPaused(_EventBase):
    kind: Literal["infusion_paused"] = "infusion_paused"
    reason: str = ""


class InfusionResumed(_InfusionRate):
    kind: Literal["infusion_resumed"] = "infusion_resumed"
    gate_findings: tuple[str, ...] = ()  # what the gate said on the BP taken after the pause
    prescriber: str = ""  # initials of the prescriber who agreed to resume above the limits


class InfusionStopped(_EventBase):
    """The pump stopped by the nurse; after ``infusion_completed`` it is the nurse's
    confirmation that the pump has stopped (the totals already ended at completion)."""

    kind: Literal["infusion_stopped"] = "infusion_stopped"
    reason: str = ""


class InfusionCompleted(_EventBase):
    """The ordered dose is in, by the record's own rate/pause arithmetic. Recorded by the
    service's tick once the clock passes the computed end; ``at_t``/``at_mono`` is that
    moment (the totals stop there), ``t``/``mono`` when it was recorded."""

    kind: Literal["infusion_completed"] = "infusion_completed"
    at_t: datetime
    at_mono: float
    dose_mg: float
    dose_mg_kg: float | None = None
    volume_ml: float


class DeviceGiven(_EventBase):
    """One fixed-dose device (esketamine nasal spray, 28 mg): the record holds each device
    with its time and lot, and the running total in mg. No mg/kg or mL/h here."""

    kind: Literal["device_given"] = "device_given"
    drug: str = "esketamine"
    route: str = "IN"
    device_mg: float
    n: int  # 1 for the first device of the session
    total_mg: float  # after this device
    planned_mg: float | None = None
    lot: str = ""
    gate_override_reason: str = ""
    advisories: tuple[str, ...] = ()
    advisory_reason: str = ""
    reason: str = ""


class ReadingsRecorded(_EventBase):
    """A group of readings committed together. The store keeps the readings compactly in
    its own table and chains their digest; ``readings`` is filled back in on load."""

    kind: Literal["readings_recorded"] = "readings_recorded"
    readings: tuple[Reading, ...] = ()
    count: int = 0
    digest: str = ""  # sha256 of the readings' canonical form, set by the store


class ObservationRecorded(_EventBase):
    kind: Literal["observation_recorded"] = "observation_recorded"
    # cadss, moaas, rass, nausea, vomiting, anxiety, htn_symptoms, bprs, other
    scale: str
    score: float | None = None
    items: dict[str, Any] = Field(default_factory=dict)
    text: str = ""


class InterventionGiven(_EventBase):
    kind: Literal["intervention_given"] = "intervention_given"
    drug: str
    dose: float | None = None
    dose_unit: str = ""
    route: str = ""
    lot: str = ""
    given_by: str = ""
    ordered_by: str = ""
    reason: str = ""
    response: str = ""


class _AlarmBase(_EventBase):
    author: str = ALARM_ENGINE
    alarm_id: str  # stable id of this alarm instance, e.g. "spo2_low_medium#3"
    rule: str = ""  # rule name from the limits data file


class AlarmRaised(_AlarmBase):
    kind: Literal["alarm_raised"] = "alarm_raised"
    priority: Priority
    alarm_class: AlarmClass = "physiological"
    param: str | None = None
    value: float | None = None
    limit: float | None = None
    source_tag: str = ""  # [P], [P*], [S], [C]
    message: str = ""
    latching: bool = False


class AlarmEscalated(_AlarmBase):
    kind: Literal["alarm_escalated"] = "alarm_escalated"
    from_priority: Priority
    to_priority: Priority
    reason: str = ""  # e.g. "unacknowledged 5 min", "second consecutive severe reading"
    reannounce: bool = False  # re-announced at the same priority (2-min reminder)
    value: float | None = None
    limit: float | None = None  # the limit of the new priority (None: escalated by time)
    source_tag: str = ""  # that limit's source tag


class AlarmAcknowledged(_AlarmBase):
    kind: Literal["alarm_acknowledged"] = "alarm_acknowledged"
    by: str = ""


class AlarmSilenced(_AlarmBase):
    kind: Literal["alarm_silenced"] = "alarm_silenced"
    mode: Literal["audio_paused", "audio_off", "alarm_off", "alarm_paused", "reminder", "resumed"]
    duration_s: float | None = None
    by: str = ""


class AlarmCleared(_AlarmBase):
    kind: Literal["alarm_cleared"] = "alarm_cleared"
    value: float | None = None
    reason: str = ""


class DeviceStatusChanged(_EventBase):
    kind: Literal["device_status"] = "device_status"
    author: str = DEVICE
    status: DeviceStatus
    port: str = ""
    driver: str = ""


class NoteAdded(_EventBase):
    kind: Literal["note"] = "note"
    text: str


class Amendment(_EventBase):
    kind: Literal["amendment"] = "amendment"
    target_seq: int
    reason: str
    replacement: dict[str, Any] = Field(default_factory=dict)

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("an amendment needs a reason")
        return v


class DischargeAssessed(_EventBase):
    kind: Literal["discharge_assessed"] = "discharge_assessed"
    aldrete: dict[str, int] = Field(default_factory=dict)
    aldrete_total: int | None = None
    padss: dict[str, int] = Field(default_factory=dict)
    padss_total: int | None = None
    vitals_within_20pct: bool | None = None
    minutes_since_end: float | None = None
    min_recovery_met: bool | None = None
    escort_present: bool = False
    instructions_given: bool = False
    criteria_met: bool = False
    blocked_reasons: tuple[str, ...] = ()
    override_reason: str = ""
    override_by: str = ""  # the prescriber's initials on an override
    discharged: bool = False


class TrainingEvent(_EventBase):
    """The record of a simulated training run: what the scenario and the simulated devices
    did, what the instructor did, and the debrief's expectations (listed at the start,
    opened when their condition held, met by a trainee action). ``sim_t`` is simulated
    seconds since the scenario began (None before it began). Authors: ``SIM`` (the
    simulator), ``INS`` (the instructor)."""

    kind: Literal["training"] = "training"
    author: str = "SIM"
    source: Literal["scenario", "device", "instructor", "trainee", "sim"] = "sim"
    action: str
    detail: str = ""
    sim_t: float | None = None
    args: dict[str, Any] = Field(default_factory=dict)


class MonitoringStopped(_EventBase):
    """The console or the headless recorder stopped monitoring with the session left open
    (to be resumed): who and why. Time without monitoring follows until ``session_resumed``."""

    kind: Literal["monitoring_stopped"] = "monitoring_stopped"
    reason: str


class SessionResumed(_EventBase):
    """Recording resumed into an open session file: the last event before the gap and the
    time lost (``gap_s``, from that event's time to this one's; never negative)."""

    kind: Literal["session_resumed"] = "session_resumed"
    last_seq: int
    last_kind: str
    last_t: datetime
    gap_s: float = Field(ge=0)
    reason: str = ""


class SessionClosed(_EventBase):
    kind: Literal["session_closed"] = "session_closed"
    reason: str = ""


class RemsFormFiled(_EventBase):
    """The esketamine REMS Patient Monitoring Form of this session was filed (appended after
    the session closed, by ``chairside rems --filed``). ``reference`` is the clinic's own
    reference of the submission (a confirmation number, say)."""

    kind: Literal["rems_form_filed"] = "rems_form_filed"
    by: str
    reference: str = ""


Event = Annotated[
    Union[
        SessionOpened,
        ChecklistCompleted,
        BaselineRecorded,
        PhaseChanged,
        InfusionStarted,
        InfusionRateChanged,
        InfusionPaused,
        InfusionResumed,
        InfusionStopped,
        InfusionCompleted,
        DeviceGiven,
        ReadingsRecorded,
        ObservationRecorded,
        InterventionGiven,
        AlarmRaised,
        AlarmEscalated,
        AlarmAcknowledged,
        AlarmSilenced,
        AlarmCleared,
        DeviceStatusChanged,
        NoteAdded,
        Amendment,
        DischargeAssessed,
        TrainingEvent,
        MonitoringStopped,
        SessionResumed,
        SessionClosed,
        RemsFormFiled,
    ],
    Field(discriminator="kind"),
]

EventAdapter: TypeAdapter[Event] = TypeAdapter(Event)

ALARM_EVENT_KINDS = frozenset(
    {"alarm_raised", "alarm_escalated", "alarm_acknowledged", "alarm_silenced", "alarm_cleared"}
)
CLINICAL_EVENT_KINDS = frozenset(
    {
        "session_opened", "checklist_completed", "baseline_recorded", "phase_changed",
        "infusion_started", "infusion_rate_changed", "infusion_paused", "infusion_resumed",
        "infusion_stopped", "infusion_completed", "device_given", "observation_recorded", "intervention_given",
        "note", "amendment", "discharge_assessed", "session_closed", "monitoring_stopped", "session_resumed",
        "rems_form_filed",
    }
)
