"""The alarm engine: a thin coordinator over the rule families.

Owns: ``AlarmEngine`` (and re-exports ``ActiveAlarm``, ``GateResult``, ``LimitView``,
``AlarmOffRefused``). The rules live by family: ``ladders`` (limits by phase, delays,
confirmation, escalation by consecutive readings), ``combined`` (smart conditions),
``technical`` (no data, SpO2 lost, NIBP overdue, implausible values), ``silencing``
(acknowledgement, audio pause/off, alarm off, reminders, time escalation) and ``gate``
(the pre-infusion start gate); ``intake`` brings a reading, status or observation to them
and ``effects`` is the one table of domain event -> engine effects (``on_event``).
Every number comes from a ``LimitsProfile`` or the protocol template; none is written here.
Pure and deterministic: the caller passes ``now`` (timezone-aware UTC) into every call;
there is no clock read, no callback, no I/O and no randomness. State changes come out as
domain events (``AlarmRaised``/``Escalated``/``Acknowledged``/``Silenced``/``Cleared``, ``seq=-1``).
May import: chairside.domain, chairside.alarms.*, stdlib. Must not import: textual,
serial, sqlite3, chairside.store, chairside.transport, chairside.service, chairside.ui.

Semantics worth knowing (the tests check them): one alarm per rule; high physiological
alarms latch until acknowledged; ``set_phase`` / ``set_infusing`` return events too (alarms
cleared because their rule does not apply in the new phase; alarm off cancelled when an
infusion starts). See the family modules for the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chairside.alarms.combined import Combined
from chairside.alarms.core import PHASES, ActiveAlarm, AlarmOffRefused, Core, LimitView
from chairside.alarms.effects import EFFECTS
from chairside.alarms.gate import GateResult, evaluate_gate
from chairside.alarms.intake import Intake
from chairside.alarms.ladders import Ladders
from chairside.alarms.profile import LimitsProfile
from chairside.alarms.silencing import Silencing
from chairside.alarms.technical import Technical
from chairside.domain.events import ObservationRecorded
from chairside.domain.protocol import ProtocolTemplate
from chairside.domain.readings import DeviceStatus, Reading
from chairside.domain.state import SessionState

__all__ = ["ActiveAlarm", "AlarmEngine", "AlarmOffRefused", "GateResult", "LimitView"]


class AlarmEngine:
    """Evaluates readings, device status and events against a limits profile.

    ``template`` (the session's protocol) gives the NIBP schedule per phase, tightened
    after an infusion start or rate increase (both learnt from events); without one the
    profile's ``nibp_cadence`` applies. All methods take ``now`` (aware UTC datetime) and
    return the events they cause, in order.
    """

    def __init__(self, profile: LimitsProfile, *, t0: datetime, template: ProtocolTemplate | None = None,
                 phase: str = "pre_infusion") -> None:
        self.profile = profile
        self.core = core = Core(profile, t0, template, phase)
        self.ladders = Ladders(core)
        self.combined = Combined(core)
        self.technical = Technical(core)
        self.intake = Intake(core, self.ladders, self.combined, self.technical)
        self.silencing = Silencing(core, self.ladders, self.combined, self.technical, self._compile)
        self._compile()

    def _compile(self) -> None:
        self.ladders.compile()
        self.combined.compile()
        self.intake.compile()

    # ------------------------------------------------------------------ the shadow
    @property
    def phase(self) -> str:
        return self.core.phase

    @property
    def infusing(self) -> bool:
        return self.core.infusing

    @property
    def baseline(self) -> dict[str, float | None]:
        return dict(self.core.baseline)

    @property
    def rate(self) -> tuple[float, float]:
        """The running infusion rate (mg/kg/h, mL/h) as the events told it."""
        return self.core.rate

    # ------------------------------------------------------------------ inputs
    def on_event(self, ev: Any, now: datetime) -> list:
        """What a domain event does to the engine (the ``effects`` table); returns the
        engine's events it causes. Kinds without an entry do nothing."""
        out: list = []
        for effect in EFFECTS.get(ev.kind, ()):
            out.extend(effect(self, ev, now))
        return out

    def on_reading(self, reading: Reading, now: datetime) -> list:
        """Evaluate one reading. Returns the events it causes (often none)."""
        return self.intake.on_reading(reading, now)

    def on_device_status(self, status: DeviceStatus, now: datetime) -> list:
        """A condition reported by the device or the data path."""
        return self.intake.on_device_status(status, now)

    def on_observation(self, obs: ObservationRecorded, now: datetime) -> list:
        """A scale recorded by staff (MOAA/S, RASS, CADSS, BPRS, anxiety, vomiting, htn symptoms)."""
        return self.intake.on_observation(obs, now)

    # ------------------------------------------------------------------ context (the effects use these)
    def set_phase(self, phase: str, now: datetime) -> list:
        """Change the phase (limits change). Returns events for alarms whose rule no longer applies."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        core = self.core
        out: list = []
        mono = core.mono(now)
        self.intake.flush_pending(now, mono, out)
        if phase == core.phase:
            return out
        core.phase = phase
        core.phase_mono = mono
        self._compile()
        self.ladders.phase_changed(phase, now, mono, out)
        self.combined.phase_changed(phase, now, mono, out)
        if phase == "discharged":
            self.technical.discharged(now, mono, out)
        return out

    def set_baseline(self, sbp: float | None, dbp: float | None, hr: float | None = None,
                     spo2: float | None = None) -> None:
        """The recorded baseline; the relative limits (rise from baseline) follow it."""
        self.core.baseline = {"nibp_sys": sbp, "nibp_dia": dbp, "hr": hr, "spo2": spo2}
        self._compile()

    def set_infusing(self, infusing: bool, now: datetime) -> list:
        """Whether the drug is running. Starting cancels alarm-off of SpO2/BP and audio off."""
        out: list = []
        self.core.infusing = bool(infusing)
        if infusing:
            self.silencing.infusion_started(now, self.core.mono(now), out)
        return out

    def rate_changed(self, rate: tuple[float, float], start_or_increase: bool, now: datetime) -> None:
        """The running rate; a start or an increase restarts the tightened NIBP schedule."""
        self.core.rate = rate
        if start_or_increase:
            self.core.increase_mono = self.core.mono(now)

    def restore(self, state: SessionState, now: datetime) -> list:
        """A resumed session: the shadow from its folded state (phase, baseline, infusing,
        running rate, time since the last start or increase)."""
        out = self.set_phase(state.phase, now)
        b = state.baseline
        if b is not None:
            self.set_baseline(b.sbp, b.dbp, b.hr, b.spo2)
        inf = state.infusion
        self.core.rate = (inf.rate_mg_kg_h or 0.0, inf.rate_ml_h or 0.0)
        if inf.last_start_or_increase_mono is not None:
            session_mono = max(state.last_mono or 0.0, 0.0)
            if state.session is not None:
                session_mono = max(session_mono, (now - state.session.opened_t).total_seconds())
            self.core.increase_mono = self.core.mono(now) - (session_mono - inf.last_start_or_increase_mono)
        out += self.set_infusing(inf.status == "running", now)
        return out

    # ------------------------------------------------------------------ time
    def tick(self, now: datetime) -> list:
        """Time passing: delays elapsing, escalation, no data, NIBP overdue, audio pause expiry,
        reminders. Call it regularly (e.g. every second) and after each batch of readings."""
        out: list = []
        core = self.core
        mono = core.mono(now)
        self.intake.flush_pending(now, mono, out)
        if core.phase != "discharged":
            self.technical.tick(now, mono, out)
        if self.ladders.pending:
            self.ladders.tick(now, mono, out)
        self.combined.tick(now, mono, out)
        self.silencing.tick(now, mono, out)
        return out

    # ------------------------------------------------------------------ staff actions
    def acknowledge(self, alarm_id: str | None, by: str, now: datetime) -> list:
        """Acknowledge one alarm (by id) or all active ones (None)."""
        return self.silencing.acknowledge(alarm_id, by, now)

    def pause_audio(self, by: str, now: datetime, seconds: float | None = None) -> list:
        """Pause the audio of the active unacknowledged alarms (default: audio_pause_s)."""
        return self.silencing.pause_audio(by, now, seconds)

    def audio_off(self, by: str, now: datetime) -> list:
        """Audio off indefinitely (a reminder every reminder_interval_s); refused while infusing."""
        return self.silencing.audio_off(by, now)

    def alarm_off(self, rule_or_param: str, by: str, now: datetime) -> list:
        """Turn a rule (or every rule of a parameter) off until ``alarm_on``. Refused for
        SpO2 and BP while infusing. Active alarms of those rules are cleared (their events stay)."""
        return self.silencing.alarm_off(rule_or_param, by, now)

    def alarm_on(self, rule_or_param: str, by: str, now: datetime) -> list:
        return self.silencing.resume(f"off:{rule_or_param}", by, now)

    # ------------------------------------------------------------------ queries
    def gate(self, sbp: float | None, dbp: float | None, spo2: float | None, hr: float | None) -> GateResult:
        """The pre-infusion gate on baseline values (profile ``gate`` rules)."""
        return evaluate_gate(self.profile, sbp, dbp, spo2, hr)

    def active(self, alarm_class: str | None = None) -> list[ActiveAlarm]:
        """Active alarms, highest priority first, then oldest; optionally only one class
        (``"physiological"`` or ``"technical"``)."""
        return self.core.sorted_active(alarm_class)

    def audio_priority(self) -> str | None:
        """The priority that should sound now: the highest unacknowledged, not audio-paused alarm."""
        return self.silencing.audio_priority()

    def limits(self, param: str | None = None) -> list[LimitView]:
        """The limits in force in this phase (to show beside each value)."""
        return self.ladders.limits(param)

    def nibp_cadence_s(self, now: datetime) -> float:
        """Seconds between scheduled NIBP checks now (0: none scheduled in this phase)."""
        return self.core.scheduled_cadence(self.core.mono(now))
