"""Domain layer: frozen pydantic models for readings, session events (one discriminated
union), session state rebuilt by folding events, protocol templates and dose arithmetic.

May import: stdlib, pydantic. Must not import textual, serial, sqlite3, or any other
chairside package.
"""

from chairside.domain.readings import DeviceStatus, DriverOutput, Param, Reading
from chairside.domain.events import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmEscalated,
    AlarmRaised,
    AlarmSilenced,
    Amendment,
    BaselineRecorded,
    ChecklistCompleted,
    DeviceStatusChanged,
    DischargeAssessed,
    Event,
    EventAdapter,
    InfusionPaused,
    InfusionRateChanged,
    InfusionResumed,
    InfusionStarted,
    InfusionStopped,
    InterventionGiven,
    NoteAdded,
    ObservationRecorded,
    PhaseChanged,
    ReadingsRecorded,
    MonitoringStopped,
    SessionClosed,
    SessionResumed,
    SessionOpened,
    TrainingEvent,
)

__all__ = [
    "AlarmAcknowledged", "AlarmCleared", "AlarmEscalated", "AlarmRaised", "AlarmSilenced",
    "Amendment", "BaselineRecorded", "ChecklistCompleted", "DeviceStatus", "DeviceStatusChanged",
    "DischargeAssessed", "DriverOutput", "Event", "EventAdapter", "InfusionPaused",
    "InfusionRateChanged", "InfusionResumed", "InfusionStarted", "InfusionStopped",
    "InterventionGiven", "NoteAdded", "ObservationRecorded", "Param", "PhaseChanged", "Reading",
    "ReadingsRecorded", "MonitoringStopped", "SessionClosed", "SessionResumed", "SessionOpened", "TrainingEvent",
]
