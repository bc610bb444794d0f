"""What the monitoring service publishes: the immutable ``Snapshot`` and its parts.

Owns: ``Snapshot``, ``Tile``, ``AlarmView``, ``InfusionView``, ``DeviceLine``,
``StoreStatus``, ``TimelineItem``, ``TrendSeries``, ``SessionInfo`` (and re-exports
``DischargeCheck`` from ``chairside.domain.discharge``) and the
command errors ``CommandRefused`` / ``GateBlocked`` / ``DischargeBlocked``.
Plain frozen dataclasses, so any thread can read a snapshot while the service builds the
next one. The UI renders these; it owns no clinical state.
Must not import: textual, serial, sqlite3, chairside.ui, chairside.transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from chairside.domain.describe import MARKERS, PRIORITY_RANK
from chairside.domain.discharge import DischargeCheck

__all__ = [
    "PRIORITY_RANK", "MARKERS", "CommandRefused", "GateBlocked", "DischargeBlocked", "Tile", "AlarmView",
    "InfusionView", "StoreStatus", "DeviceLine", "TimelineItem", "TrendSeries", "SessionInfo",
    "DischargeCheck", "Snapshot",
]

# the one map of each (chairside.domain.describe), named here for the console's use


class CommandRefused(ValueError):
    """A command the service will not carry out; the message says why (shown to the user)."""


class GateBlocked(CommandRefused):
    """The pre-infusion gate blocks the start; an override reason is required."""

    def __init__(self, reasons: tuple[str, ...], action: str = "start") -> None:
        self.reasons = tuple(reasons)
        self.action = action
        gate = "the pre-infusion gate" if action == "start" else "the gate"
        super().__init__(f"{action} blocked by {gate}: " + "; ".join(self.reasons)
                         + f" (give a reason to {action} anyway)")


class DischargeBlocked(CommandRefused):
    """Discharge criteria are not met; an override reason is required."""

    def __init__(self, reasons: tuple[str, ...]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("discharge blocked: " + "; ".join(self.reasons)
                         + " (give an override reason to discharge anyway)")


@dataclass(frozen=True)
class Tile:
    """One vital-sign tile.

    ``key`` is ``nibp``, ``hr``, ``spo2`` or ``pr``. ``value`` is None when missing (then
    ``missing_reason`` says why: "no data yet", "probe off", "no data from monitor"...);
    for ``nibp`` ``value`` is the systolic, ``value2`` the diastolic, ``value3`` the MAP.
    ``age_s`` is the age of the value (None when there never was one); ``stale`` is True
    once it is older than twice its cadence. ``low``/``high`` are the limits drawn beside
    it (``low2``/``high2`` for the diastolic), with ``limit_source`` tags.
    """

    key: str
    label: str
    unit: str
    value: float | None = None
    value2: float | None = None
    value3: float | None = None
    age_s: float | None = None
    stale: bool = False
    missing_reason: str | None = None
    low: float | None = None
    high: float | None = None
    low2: float | None = None
    high2: float | None = None
    limit_source: str = ""
    alarm: str | None = None  # highest priority of the active alarms on this tile
    source: str = ""  # "ecg", "spo2", "nibp", "manual"

    @property
    def missing(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class AlarmView:
    alarm_id: str
    priority: str
    message: str
    alarm_class: str = "physiological"
    param: str | None = None
    value: float | None = None
    limit: float | None = None
    source_tag: str = ""
    since: datetime | None = None
    acknowledged: bool = False
    latched: bool = False  # condition gone, kept until acknowledged
    condition_active: bool = True
    audio_paused: bool = False
    rule: str = ""

    @property
    def marker(self) -> str:
        return MARKERS.get(self.priority, "*")


@dataclass(frozen=True)
class InfusionView:
    state: str = "not_started"  # not_started, running, paused, stopped
    drug: str = "ketamine"
    concentration_mg_ml: float | None = None
    rate_mg_kg_h: float | None = None
    rate_ml_h: float | None = None
    rate_mg_h: float | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    elapsed_s: float | None = None  # since the start (to the stop, once stopped)
    running_s: float | None = None  # time actually infusing
    delivered_mg: float = 0.0
    delivered_mg_kg: float = 0.0
    delivered_ml: float = 0.0
    target_dose_mg_kg: float | None = None
    weight_kg: float | None = None
    order_mg: float | None = None  # the ordered dose in mg (what completes the infusion)
    expected_end_at: datetime | None = None  # projected completion while the pump runs
    completed: bool = False  # the ordered dose is in (infusion_completed)
    pump_stop_confirmed: bool = False  # the nurse's Stop after completion
    devices_mg: float | None = None  # fixed-dose devices given (esketamine), total mg
    devices_n: int = 0


@dataclass(frozen=True)
class StoreStatus:
    state: str = "none"  # none (no session file), ok, degraded, memory, closed
    path: str = ""
    message: str = ""
    events: int = 0
    readings: int = 0

    @property
    def warning(self) -> bool:
        return self.state in ("degraded", "memory")


@dataclass(frozen=True)
class DeviceLine:
    port: str = ""
    driver: str = ""
    link_state: str = "idle"
    readings_per_min: float = 0.0
    errors: int = 0
    last_error: str = ""
    store: StoreStatus = field(default_factory=StoreStatus)


@dataclass(frozen=True)
class TimelineItem:
    """One entry of the event timeline; ``seq`` is the record's own event number. In a
    replay an entry the record does not have (the replay's own note, an alarm only the
    replay raised) has ``replay_only`` set and no number is shown for it."""

    seq: int
    t: datetime
    kind: str
    author: str
    text: str
    priority: str | None = None
    replay_only: bool = False


@dataclass(frozen=True)
class TrendSeries:
    """Points of one parameter over the trend window: ``(seconds before now, value)``."""

    param: str
    label: str
    points: tuple[tuple[float, float], ...] = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class SessionInfo:
    open: bool = False
    session_id: str = ""
    patient_id: str = ""
    protocol: str = ""
    protocol_title: str = ""
    weight_kg: float | None = None
    phase: str = "pre_infusion"
    opened_at: datetime | None = None
    checklist_done: bool = False
    escort_confirmed: bool = False
    baseline: dict[str, float | None] = field(default_factory=dict)
    staff: tuple[str, ...] = ()
    closed: bool = False
    simulated: bool = False
    discharged: bool = False


@dataclass(frozen=True)
class Snapshot:
    """Everything the screen shows, at one moment (``now``)."""

    now: datetime
    version: int = 0
    session: SessionInfo = field(default_factory=SessionInfo)
    tiles: tuple[Tile, ...] = ()
    alarms: tuple[AlarmView, ...] = ()  # highest priority first
    audio_priority: str | None = None  # what should sound now (None: silence)
    audio_paused_s: float | None = None  # remaining audio pause
    infusion: InfusionView = field(default_factory=InfusionView)
    next_bp_due_s: float | None = None  # negative = overdue
    min_recovery_left_min: float | None = None
    device: DeviceLine = field(default_factory=DeviceLine)
    trends: tuple[TrendSeries, ...] = ()
    trend_window_s: float = 3600.0
    timeline: tuple[TimelineItem, ...] = ()
    notices: tuple[str, ...] = ()  # loud warnings (store degraded, link down...)
    last_reading_seq: int = 0  # counts readings published (for latency measurement)
    readings_stored_mono: float | None = None  # clock monotonic when they were stored

    def tile(self, key: str) -> Tile | None:
        for t in self.tiles:
            if t.key == key:
                return t
        return None
