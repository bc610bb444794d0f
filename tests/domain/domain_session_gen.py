"""Hypothesis strategies for the domain tests: plausible sessions as event lists.

The generator keeps its own small model of the session (infusion status, open alarms,
the pump schedule) so the tests can compare the fold against values computed here,
independently of chairside.domain.state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from chairside.domain.events import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmEscalated,
    AlarmRaised,
    AlarmSilenced,
    Amendment,
    BaselineRecorded,
    DeviceStatusChanged,
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
    SessionClosed,
    SessionOpened,
)
from chairside.domain.readings import DeviceStatus, Reading

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PHASES = ["pre_infusion", "infusion", "recovery", "discharged"]


def at(mono: float) -> dict:
    return {"t": T0 + timedelta(seconds=mono), "mono": mono}


@dataclass
class Model:
    """What the generator knows about the session it made."""

    weight: float = 70.0
    status: str = "not_started"
    conc: float = 0.0
    ml_h: float = 0.0
    # (start mono, end mono or None, mL/h, mg/mL): the pump schedule as the generator ran it
    runs: list[list] = field(default_factory=list)
    alarms: dict[str, str] = field(default_factory=dict)  # id -> active/acknowledged/latched/cleared
    latching: dict[str, bool] = field(default_factory=dict)
    prio: dict[str, str] = field(default_factory=dict)
    amendable: list[int] = field(default_factory=list)  # seqs of notes/observations
    end: float = 0.0
    closed: bool = False

    def expected_ml(self, t: float) -> float:
        total = 0.0
        for start, end, ml_h, _ in self.runs:
            stop = t if end is None else min(end, t)
            if stop > start:
                total += ml_h * (stop - start) / 3600.0
        return total

    def expected_mg(self, t: float) -> float:
        total = 0.0
        for start, end, ml_h, conc in self.runs:
            stop = t if end is None else min(end, t)
            if stop > start:
                total += ml_h * (stop - start) / 3600.0 * conc
        return total


rates = st.floats(min_value=1.0, max_value=400.0, allow_nan=False, allow_infinity=False)
concs = st.sampled_from([0.2, 0.35, 0.5, 1.0, 2.0, 10.0])
values = st.one_of(st.none(), st.floats(min_value=0, max_value=300, allow_nan=False, allow_infinity=False))


@st.composite
def readings(draw, mono: float) -> ReadingsRecorded:
    n = draw(st.integers(1, 5))
    out = []
    for _ in range(n):
        param = draw(st.sampled_from(["hr", "spo2", "nibp_sys", "nibp_dia", "nibp_map", "pr"]))
        v = draw(values)
        out.append(Reading(param=param, value=v, unit="x", valid=v is not None,
                           flags=() if v is not None else ("no_data",),
                           device_time=T0 + timedelta(seconds=mono)))
    return ReadingsRecorded(readings=tuple(out), count=len(out), **at(mono))


@st.composite
def sessions(draw, max_events: int = 40, close: bool | None = None, first_seq: int = 0) -> tuple[list, Model]:
    """(events numbered from ``first_seq``, model). ``close``: end with session_closed (None = maybe)."""
    m = Model(weight=draw(st.floats(min_value=20, max_value=300, allow_nan=False)))
    mono = 0.0
    events: list = [SessionOpened(session_id="S1", patient_id="P-0001", weight_kg=m.weight,
                                  protocol="iv-ketamine-depression", staff=("AB", "CD"), **at(mono))]
    phase = "pre_infusion"
    alarm_n = 0
    n = draw(st.integers(0, max_events))
    for _ in range(n):
        mono += draw(st.one_of(st.just(0.0), st.floats(min_value=0.001, max_value=900, allow_nan=False)))
        seq = len(events)
        options = ["note", "obs", "readings", "readings", "device", "raise", "intervention", "baseline"]
        if phase != "discharged":
            options.append("phase")
        if m.status in ("not_started", "stopped"):
            options.append("start")
        if m.status == "running":
            options += ["pause", "rate", "stop", "rate"]
        if m.status == "paused":
            options += ["resume", "rate", "stop"]
        open_ids = [a for a, s in m.alarms.items() if s != "cleared"]
        present_ids = [a for a, s in m.alarms.items() if s in ("active", "acknowledged")]
        if open_ids:
            options += ["ack", "escalate", "silence"]
        if present_ids:
            options.append("clear")
        if m.amendable:
            options.append("amend")
        options.append("amend_weight")
        what = draw(st.sampled_from(options))
        a = at(mono)
        if what == "note":
            ev = NoteAdded(text=draw(st.text(min_size=1, max_size=20)), author="AB", **a)
            m.amendable.append(seq)
        elif what == "obs":
            ev = ObservationRecorded(scale="moaas", score=float(draw(st.integers(0, 5))), author="AB", **a)
            m.amendable.append(seq)
        elif what == "readings":
            ev = draw(readings(mono))
        elif what == "device":
            ev = DeviceStatusChanged(status=DeviceStatus(kind=draw(st.sampled_from(["probe_off", "link_lost"])),
                                                         active=draw(st.booleans()), param="spo2"), **a)
        elif what == "intervention":
            ev = InterventionGiven(drug="ondansetron", dose=4.0, dose_unit="mg", route="IV", given_by="AB", **a)
        elif what == "baseline":
            ev = BaselineRecorded(sbp=draw(values), dbp=draw(values), hr=draw(values), **a)
        elif what == "phase":
            to = PHASES[PHASES.index(phase) + 1]
            ev = PhaseChanged(from_phase=phase, to_phase=to, **a)
            phase = to
        elif what == "start":
            m.conc = draw(concs)
            m.ml_h = draw(rates)
            ev = InfusionStarted(concentration_mg_ml=m.conc, rate_ml_h=m.ml_h,
                                 rate_mg_kg_h=m.ml_h * m.conc / m.weight, author="AB", **a)
            m.status = "running"
            m.runs.append([mono, None, m.ml_h, m.conc])
        elif what == "rate":
            new = draw(rates)
            new_conc = draw(st.one_of(st.just(0.0), concs))  # 0.0 = same bag
            ev = InfusionRateChanged(rate_ml_h=new, concentration_mg_ml=new_conc, old_rate_ml_h=m.ml_h,
                                     rate_mg_kg_h=0.0, reason="order", author="AB", **a)
            m.ml_h = new
            if new_conc > 0:
                m.conc = new_conc
            if m.status == "running":
                m.runs[-1][1] = mono
                m.runs.append([mono, None, m.ml_h, m.conc])
        elif what == "pause":
            ev = InfusionPaused(reason="BP", author="AB", **a)
            m.status = "paused"
            m.runs[-1][1] = mono
        elif what == "resume":
            ev = InfusionResumed(author="AB", **a)  # resumes at the pending rate
            m.status = "running"
            m.runs.append([mono, None, m.ml_h, m.conc])
        elif what == "stop":
            ev = InfusionStopped(author="AB", **a)
            if m.status == "running":
                m.runs[-1][1] = mono
            m.status = "stopped"
        elif what == "raise":
            alarm_n += 1
            aid = f"rule{alarm_n}#1"
            latching = draw(st.booleans())
            m.prio[aid] = draw(st.sampled_from(["low", "medium", "high"]))
            ev = AlarmRaised(alarm_id=aid, priority=m.prio[aid],
                             param="nibp_sys", value=190.0, limit=180.0, latching=latching, **a)
            m.alarms[aid] = "active"
            m.latching[aid] = latching
        elif what == "ack":
            aid = draw(st.sampled_from(open_ids))
            ev = AlarmAcknowledged(alarm_id=aid, by="AB", **a)
            m.alarms[aid] = {"active": "acknowledged", "latched": "cleared"}.get(m.alarms[aid], m.alarms[aid])
        elif what == "escalate":
            aid = draw(st.sampled_from(open_ids))
            to = draw(st.sampled_from(["low", "medium", "high"]))
            ev = AlarmEscalated(alarm_id=aid, from_priority=m.prio[aid], to_priority=to,
                                reannounce=to == m.prio[aid], **a)
            if to != m.prio[aid] and m.alarms[aid] == "acknowledged":
                m.alarms[aid] = "active"  # a new priority needs a new acknowledgement
            m.prio[aid] = to
        elif what == "silence":
            aid = draw(st.sampled_from(open_ids))
            ev = AlarmSilenced(alarm_id=aid, mode="audio_paused", duration_s=120.0, by="AB", **a)
        elif what == "clear":
            aid = draw(st.sampled_from(present_ids))
            ev = AlarmCleared(alarm_id=aid, **a)
            m.alarms[aid] = "latched" if (m.alarms[aid] == "active" and m.latching[aid]) else "cleared"
        elif what == "amend":
            target = draw(st.sampled_from(m.amendable))
            field_name = "text" if isinstance(events[target], NoteAdded) else "score"
            value = "corrected" if field_name == "text" else float(draw(st.integers(0, 5)))
            ev = Amendment(target_seq=target, reason="typo", replacement={field_name: value}, author="CD", **a)
        else:  # amend_weight: weight corrections change mg/kg, not what the pump delivered in mL
            m.weight = draw(st.floats(min_value=20, max_value=300, allow_nan=False))
            ev = Amendment(target_seq=0, reason="re-weighed", replacement={"weight_kg": m.weight}, author="CD", **a)
        events.append(ev)
    do_close = draw(st.booleans()) if close is None else close
    if do_close:
        mono += 1.0
        events.append(SessionClosed(reason="done", **at(mono)))
        m.closed = True
    m.end = mono
    out = []
    for i, e in enumerate(events):
        upd: dict = {"seq": first_seq + i}
        if isinstance(e, Amendment):
            upd["target_seq"] = e.target_seq + first_seq
        out.append(e.model_copy(update=upd))
    return out, m
