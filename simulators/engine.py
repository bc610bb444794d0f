"""The simulation engine: one scenario, one seeded patient, a simulated clock, controls.

Owns: ``Simulation`` (fixed 1 s steps of true physiology -> device layer -> emulators'
bytes; the scenario's timeline, states, trends, triggers, artefacts and expected actions;
pause/resume/speed; ``inject`` of trainee and instructor actions; ``jump_to_state``;
``advance(dt) -> bytes``; the event log for the debrief), ``rng_streams`` (one
``numpy.random.SeedSequence`` per run, an independent child Generator per subsystem, so
adding an artefact does not shift the physiology stream), and ``SimEvent``.

Time here is simulated seconds only; wall time belongs to the callers (servers, the
pyserial handler) that pace ``advance`` by ``tick_wall``.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from simulators import params
from simulators.devices import Display, Monitor
from simulators.physiology import N_NOISE, NoiseBlocks, Physiology, TrueValues, sample_individual
from simulators.scenario import (
    _ACTION_TAGS,
    Action,
    ArtefactAction,
    Bolus,
    Condition,
    DeviceEvent,
    Expected,
    Goto,
    Harmful,
    Labetalol,
    Log,
    Mark,
    PumpAction,
    Scenario,
    ScenarioError,
    SetNibpInterval,
    SetRate,
    SetRhythm,
    SetVar,
    StartInfusion,
    State,
    Treatment,
    Trend,
    TrendAction,
    Trigger,
    canonical,
    find,
    load_file,
)

# Subsystem streams, spawned in this order from the run's SeedSequence. Append new
# subsystems at the end: existing streams then stay the same.
STREAMS = ("patient", "physiology", "nibp", "spo2", "artefacts")
DEFAULT_START = datetime(2026, 1, 1, 9, 0, 0, tzinfo=UTC)
DT_S = 1.0
_ACTION_ADAPTER: TypeAdapter = TypeAdapter(Action)


def rng_streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators per subsystem from one root ``SeedSequence(seed)``."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.Generator(np.random.PCG64(ss)) for name, ss in zip(STREAMS, children, strict=True)}


@dataclass(frozen=True)
class SimEvent:
    """One entry of the run's log: simulated seconds, kind, detail, who caused it."""

    t: float
    kind: str
    detail: str = ""
    source: str = "sim"  # sim, scenario, trainee, instructor, device, host

    def as_dict(self) -> dict[str, Any]:
        return {"t": self.t, "kind": self.kind, "detail": self.detail, "source": self.source}


def _shape(shape: str, p: float) -> float:
    if p >= 1.0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if shape == "linear":
        return p
    if shape == "sigmoid":
        lo, hi = 1 / (1 + math.exp(5)), 1 / (1 + math.exp(-5))
        return (1 / (1 + math.exp(-10 * (p - 0.5))) - lo) / (hi - lo)
    if shape == "exp":
        return (1 - math.exp(-4 * p)) / (1 - math.exp(-4))
    return 0.0  # step: jumps at the end


class _TrendRun:
    __slots__ = ("param", "start_value", "to", "t0", "over", "shape")

    def __init__(self, param: str, start_value: float, to: float, t0: float, over: float, shape: str) -> None:
        self.param, self.start_value, self.to, self.t0, self.over, self.shape = param, start_value, to, t0, over, shape

    def value(self, t: float) -> tuple[float, bool]:
        if self.over <= 0:
            return self.to, True
        p = (t - self.t0) / self.over
        if p < 0:
            return self.start_value, False
        f = _shape(self.shape, p)
        return self.start_value + (self.to - self.start_value) * f, p >= 1.0


class _TriggerRun:
    __slots__ = ("trigger", "where", "cond", "since", "fired", "gen")

    def __init__(self, trigger: Trigger, where: str, gen: int = -1) -> None:
        self.trigger = trigger
        self.where = where
        self.gen = gen  # the state entry it belongs to (-1: global)
        self.cond = Condition(trigger.when) if trigger.when else None
        self.since: float | None = None
        self.fired = False


class _ExpectedRun:
    __slots__ = ("exp", "cond", "anticipate", "opened_at", "anticipated_from", "met_at", "met_by", "anticipated")

    def __init__(self, exp: Expected) -> None:
        self.exp = exp
        self.cond = None if exp.after == "start" else Condition(exp.after)
        self.anticipate = None if exp.anticipate is None else Condition(exp.anticipate)
        self.opened_at: float | None = None  # set when the scenario begins ("start") or the condition holds
        self.anticipated_from: float | None = None  # the anticipation window opened (trend began)
        self.met_at: float | None = None
        self.met_by: str | None = None  # the action that met it (the expected one or an equivalent)
        self.anticipated = False


class _HarmRun:
    __slots__ = ("harm", "cond", "done_at")

    def __init__(self, harm: Harmful) -> None:
        self.harm = harm
        self.cond = None if harm.when == "start" else Condition(harm.when)
        self.done_at: list[float] = []


def load_scenario(name_or_path: str | Path | Scenario) -> Scenario:
    if isinstance(name_or_path, Scenario):
        return name_or_path
    return load_file(find(name_or_path))


class Simulation:
    """A simulated patient and monitor driven by a scenario.

    ``driver`` names the protocol(s) to emit (``"ge-s5"``, ``"masimo"``, ``"hl7"``, a
    sequence of them, or None for physiology and display only). ``advance(dt)`` returns
    the first driver's bytes; ``advance_all(dt)`` returns every driver's.
    ``noise=False`` gives the deterministic mean trajectory (no variability, no random
    failures). ``auto_request``: the GE emulator streams without waiting for the host's
    request record (default: True, for files and in-process use; servers pass False).
    """

    def __init__(self, scenario: str | Path | Scenario, seed: int | None = None,
                 driver: str | Sequence[str] | None = "ge-s5", *, start: datetime | None = None,
                 speed: float = 1.0, noise: bool = True, auto_request: bool = True,
                 record: bool = False, hold: bool = False) -> None:
        self.scenario = load_scenario(scenario)
        sc = self.scenario
        self.seed = int(seed if seed is not None else (sc.seed if sc.seed is not None else 0))
        self.start = start or DEFAULT_START
        self.speed = float(speed)
        self.paused = False
        self.noise = noise
        self.t = 0.0
        self._carry = 0.0
        self.events: list[SimEvent] = []
        self.record = record
        self.history: list[tuple[TrueValues, Display]] = []
        self.rngs = rng_streams(self.seed)
        self.model = params.load_model()
        dev = sc.devices.model_dump(exclude_none=True)
        self.device_cfg = params.merged(params.load_devices(), dev)
        spec = sc.patient_spec
        self.individual = sample_individual(spec, self.model, self.rngs["patient"],
                                            variation=noise and sc.pkpd.variation,
                                            emax_factor=sc.pkpd.emax_factor)
        self.phys = Physiology(spec, self.individual, self.model, sc.pkpd.model_dump(), DT_S, batch=False,
                               noise=noise)
        self._noise = NoiseBlocks(self.rngs["physiology"], N_NOISE)
        self._zero = [0.0] * N_NOISE
        self.monitor = Monitor(self.device_cfg, self.rngs["nibp"], self.rngs["spo2"], self.rngs["artefacts"],
                               epoch_s=self.start.timestamp(), noise=noise)
        self.true: TrueValues | None = None
        self.display: Display | None = None
        self._trends: dict[str, _TrendRun] = {}
        # (time, seq, action, source, state entry it belongs to or None): what a state
        # schedules (its auto-advance, its artefacts, its delayed ``do``) is dropped once
        # that state is left, so a jump or an early treatment is not undone later
        self._queue: list[tuple[float, int, Any, str, int | None]] = []
        self._seq = 0
        self.state: str | None = None
        self._state_t = 0.0
        self._state_gen = 0
        self._state_triggers: list[_TriggerRun] = []
        self._global_triggers = [_TriggerRun(tr, f"triggers[{i}]") for i, tr in enumerate(sc.triggers)]
        self._expected = [_ExpectedRun(e) for e in sc.expected]
        self._harms = [_HarmRun(h) for h in sc.harmful]
        self._equivalents = sc.equivalents()
        self._infusion_started: float | None = None
        self._emit("seed", f"seed={self.seed} streams={','.join(STREAMS)} numpy={np.__version__}")
        self._emit("patient", ", ".join(f"{k}={v:.3g}" for k, v in self.individual.items()))
        self.offset: float | None = None  # simulated second at which the scenario began
        drivers = [] if driver is None else ([driver] if isinstance(driver, str) else list(driver))
        from simulators.emulators import make_emulator

        self.emulators = {d: make_emulator(d, self, auto_request=auto_request) for d in drivers}
        self.primary = drivers[0] if drivers else None
        if not hold:
            self._begin()
        self._run_due()

    # --- the scenario's start ------------------------------------------------------------
    @property
    def began(self) -> bool:
        return self.offset is not None

    def begin(self) -> None:
        """Start the scenario now (``hold=True``: the patient rests, monitored, until the
        trainee starts the infusion). Its timeline, artefacts, initial state and the
        expectations "after start" count from this moment. Idempotent."""
        if self.offset is None:
            self._begin()
            self._run_due()

    def _begin(self) -> None:
        sc = self.scenario
        self.offset = self.t
        self._emit("begin", f"scenario {sc.name} begins at simulated second {self.t:g}", "scenario")
        for a in sc.timeline:
            self._schedule(self.t + float(a.t), a, "scenario")
        for art in sc.artefacts:
            self._schedule(self.t + art.t, ArtefactAction(action="artefact", kind=art.kind, dur_s=art.dur_s,
                                                          count=art.count, level=art.level), "scenario")
        for ex in self._expected:
            if ex.exp.after == "start":
                ex.opened_at = self.t
        if sc.initial_state is not None:
            self._enter_state(sc.initial_state, "scenario")

    # --- the log ----------------------------------------------------------------------
    def _emit(self, kind: str, detail: str = "", source: str = "sim") -> None:
        self.events.append(SimEvent(self.t, kind, detail, source))

    # --- controls (training mode) -----------------------------------------------------
    def pause(self) -> None:
        """Stop the simulated clock for wall-paced callers (``tick_wall``: the servers, the
        ``sim://`` port). ``advance``/``step_to`` step regardless: their caller owns time."""
        if not self.paused:
            self.paused = True
            self._emit("paused", "", "instructor")

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._emit("resumed", "", "instructor")

    def set_speed(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.speed = float(speed)
        self._emit("speed", f"x{speed:g}", "instructor")

    def jump_to_state(self, name: str) -> None:
        if name not in self.scenario.states:
            raise ValueError(f"no state {name!r} in scenario {self.scenario.name!r}; "
                             f"states: {', '.join(self.scenario.states) or '(none)'}")
        self._enter_state(name, "instructor")

    def inject(self, event: str, /, by: str = "trainee", **args: Any) -> None:
        """A trainee or instructor action by name, e.g. ``inject("pause_infusion")``,
        ``inject("labetalol", dose_mg_kg=0.25)``, ``inject("artefact", kind="probe_off",
        by="instructor")``. Console names are accepted (``scenario.ALIASES``:
        ``change_rate`` -> ``set_rate``, ``airway_manoeuvre`` -> ``jaw_thrust``...). Names
        without a model effect are logged as marks (``call_prescriber``, ``reassure``...);
        ``scenario.TRAINEE_ACTIONS`` lists what a trainee can do. A trainee action that an
        open ``[[expected]]`` entry names is scored as met."""
        event = canonical(event)
        if event in _ACTION_TAGS:
            try:
                action = _ACTION_ADAPTER.validate_python({"action": event, **args})
            except ValidationError as exc:
                err = exc.errors()[0]
                raise ValueError(f"{event}: {'.'.join(map(str, err['loc'][1:]))}: {err['msg']}") from None
        else:
            action = Mark(action="mark", name=event)
        self._apply(action, by)
        self._on_event(event, by)

    def write(self, data: bytes) -> None:
        """Bytes from the host (GE request records)."""
        for emu in self.emulators.values():
            emu.receive(data)

    # --- stepping ---------------------------------------------------------------------
    def tick_wall(self, wall_dt: float) -> bytes:
        """Advance by ``wall_dt`` wall seconds times the speed (nothing while paused)."""
        if self.paused:
            return b""
        return self.advance(wall_dt * self.speed)

    def advance(self, dt: float) -> bytes:
        """Advance the simulated clock by ``dt`` seconds; the first driver's bytes."""
        out = self.advance_all(dt)
        return out.get(self.primary, b"") if self.primary else b""

    def advance_all(self, dt: float) -> dict[str, bytes]:
        if dt < 0:
            raise ValueError("time does not go backwards")
        self._carry += dt
        chunks: dict[str, list[bytes]] = {name: [] for name in self.emulators}
        while self._carry >= DT_S - 1e-9:
            self._carry -= DT_S
            self._step()
            disp = self.display
            for name, emu in self.emulators.items():
                b = emu.tick(self.t, disp)
                if b:
                    chunks[name].append(b)
        return {name: b"".join(c) for name, c in chunks.items()}

    def step_to(self, t: float) -> None:
        """Advance (discarding bytes) until the simulated clock reaches ``t``."""
        if t > self.t:
            self.advance_all(t - self.t)

    def _step(self) -> None:
        t = self.t + DT_S
        if self._trends:
            done = []
            v = self.phys.vars
            for name, tr in self._trends.items():
                v[name], finished = tr.value(t)
                if finished:
                    done.append(name)
            for name in done:
                del self._trends[name]
        z = self._noise.next() if self.noise else self._zero
        tv = self.phys.step(t, z)
        disp = self.monitor.update(tv)
        self.t = t
        self.true, self.display = tv, disp
        if self.monitor.log:
            for (tt, kind, detail) in self.monitor.log:
                self.events.append(SimEvent(tt, kind, detail, "device"))
            self.monitor.log.clear()
        if self.record:
            self.history.append((tv, disp))
        self._run_due()
        self._check_triggers()

    # --- scenario machinery -------------------------------------------------------------
    def _schedule(self, when: float, action: Any, source: str, gen: int | None = None) -> None:
        self._queue.append((when, self._seq, action, source, gen))
        self._seq += 1
        self._queue.sort(key=lambda e: (e[0], e[1]))

    def _run_due(self) -> None:
        while self._queue and self._queue[0][0] <= self.t + 1e-9:
            _, _, action, source, gen = self._queue.pop(0)
            if gen is not None and gen != self._state_gen:
                continue  # scheduled by a state that has been left since
            self._apply(action, source, scheduled=True)

    def _enter_state(self, name: str, source: str) -> None:
        st: State = self.scenario.states[name]
        self.state = name
        self._state_t = self.t
        self._state_gen += 1
        self._emit("state", name, source)
        self._state_triggers = [_TriggerRun(tr, f"states.{name}.triggers[{i}]", self._state_gen)
                                for i, tr in enumerate(st.triggers)]
        for tr in st.trends:
            self._start_trend(tr.param, tr.to, tr.over_s, tr.shape, tr.delay_s)
        gen = self._state_gen
        for art in st.artefacts:
            self._schedule(self.t + art.at_s, ArtefactAction(action="artefact", kind=art.kind, dur_s=art.dur_s,
                                                            count=art.count, level=art.level), "scenario", gen)
        for a in st.do:
            self._apply(a, "scenario", gen=gen)
        if st.duration_s is not None and st.next is not None and self._state_gen == gen:
            self._schedule(self.t + st.duration_s, Goto(action="goto", state=st.next), "scenario", gen)

    def _start_trend(self, param: str, to: float, over_s: float, shape: str, delay_s: float = 0.0) -> None:
        start = self.phys.vars[param]
        run = _TrendRun(param, start, float(to), self.t + delay_s, float(over_s), shape)
        if over_s <= 0 and delay_s <= 0:
            self.phys.vars[param] = float(to)
            self._trends.pop(param, None)
        else:
            self._trends[param] = run

    def _lookup(self, layer: str, name: str):
        if layer == "true":
            tv = self.true
            if tv is None:
                return None
            if name in TrueValues.__slots__:
                return getattr(tv, name)
            return self.phys.vars.get(name)
        if layer == "displayed":
            d = self.display
            if d is None:
                return None
            if name == "nibp_age_s":
                return None if d.nibp_time is None else self.t - d.nibp_time
            return getattr(d, name)
        if name == "t":
            return self.t - (self.offset or 0.0)  # scenario time
        if name == "state_s":
            return self.t - self._state_t
        if name == "infusion_min":
            return None if self._infusion_started is None else (self.t - self._infusion_started) / 60.0
        return None

    def _check_triggers(self) -> None:
        for run in (*self._global_triggers, *self._state_triggers):
            tr = run.trigger
            if run.fired and tr.once or run.gen not in (-1, self._state_gen):
                continue  # fired already, or its state was left by an earlier trigger this step
            if run.cond is not None:
                if run.cond.evaluate(self._lookup):
                    if run.since is None:
                        run.since = self.t
                    if run.since is not None and run.since >= 0 and self.t - run.since >= tr.for_s:
                        self._fire(run, f"when {tr.when}")
                        run.since = -1.0  # disarmed until the condition goes false again
                else:
                    run.since = None
            elif tr.after_s is not None:
                if self.t - self._state_t >= tr.after_s and not run.fired:
                    self._fire(run, f"after {tr.after_s:g} s")
        for ex in self._expected:
            if ex.met_at is not None:
                continue
            if ex.opened_at is None and ex.cond is not None and ex.cond.evaluate(self._lookup):
                ex.opened_at = self.t
                self._emit("expected_open", f"{ex.exp.id}: {ex.exp.action} within {ex.exp.within_s:g} s")
            if ex.anticipated_from is None and ex.opened_at is None and (
                    (ex.anticipate is not None and ex.anticipate.evaluate(self._lookup))
                    or (self.state is not None and self.state in ex.exp.anticipate_in)):
                ex.anticipated_from = self.t
                self._emit("expected_anticipation", f"{ex.exp.id}: {ex.exp.action} now counts as anticipated")

    def _fire(self, run: _TriggerRun, why: str) -> None:
        run.fired = True
        tr = run.trigger
        self._emit("trigger", f"{run.where} ({why})" + (f": {tr.log}" if tr.log else ""), "scenario")
        state_before = self.state
        for a in tr.do:
            self._apply(a, "scenario")
        if tr.goto is not None and self.state == state_before:
            self._enter_state(tr.goto, "scenario")

    def _on_event(self, name: str, by: str) -> None:
        # the triggers first see the state the action was taken in: a harm is judged there
        if by == "trainee":
            self._judge_harm(name)
        for run in list((*self._global_triggers, *self._state_triggers)):
            tr = run.trigger
            if run.gen not in (-1, self._state_gen):
                continue
            if tr.on_event is None or (run.fired and tr.once):
                continue
            if tr.on_event == name or name in self._equivalents.get(tr.on_event, ()):
                self._fire(run, f"on {name}")
        if by == "trainee":
            for ex in self._expected:
                if ex.met_at is not None or not ex.exp.counts(name):
                    continue
                if ex.opened_at is not None:
                    if self.t - ex.opened_at <= ex.exp.within_s:
                        ex.met_at, ex.met_by = self.t, name
                        self._emit("expected_met", f"{ex.exp.id} after {self.t - ex.opened_at:.0f} s"
                                   + ("" if name == ex.exp.action else f" ({name})"), "trainee")
                elif ex.anticipated_from is not None:
                    ex.met_at, ex.met_by, ex.anticipated = self.t, name, True
                    self._emit("expected_met", f"{ex.exp.id} anticipated, before its condition"
                               + ("" if name == ex.exp.action else f" ({name})"), "trainee")

    def _judge_harm(self, name: str) -> None:
        for h in self._harms:
            if h.harm.action != name:
                continue
            holds = (self.state in h.harm.in_states) if h.harm.in_states else (
                h.cond is None or h.cond.evaluate(self._lookup))
            if h.harm.in_states and h.cond is not None:
                holds = holds and h.cond.evaluate(self._lookup)
            if holds:
                h.done_at.append(self.t)
                self._emit("harmful", f"{h.harm.id}: {h.harm.description}", "trainee")

    def _apply(self, a: Any, source: str, scheduled: bool = False, gen: int | None = None) -> None:
        if a.delay_s > 0 and not scheduled:
            self._schedule(self.t + a.delay_s, a, source, gen)
            return
        t = self.t
        pump = self.phys.pump
        kind = a.action
        detail = ""
        if isinstance(a, StartInfusion):
            pump.start(a.rate(), a.dose_mg_kg if a.over_min is not None else None)
            self._infusion_started = t if self._infusion_started is None else self._infusion_started
            detail = f"{a.drug} {a.rate():.3g} mg/kg/h" + (f", {a.dose_mg_kg:g} mg/kg" if a.dose_mg_kg else "")
        elif isinstance(a, SetRate):
            pump.set_rate(a.rate_mg_kg_h)
            detail = f"{a.rate_mg_kg_h:g} mg/kg/h"
        elif isinstance(a, PumpAction):
            {"pause_infusion": pump.pause, "resume_infusion": pump.resume, "stop_infusion": pump.stop}[kind]()
            detail = f"delivered {pump.delivered_mg:.1f} mg"
        elif isinstance(a, Bolus):
            self.phys.bolus(a.dose_mg_kg)
            detail = f"{a.dose_mg_kg:g} mg/kg"
        elif isinstance(a, Labetalol):
            self.phys.labetalol(t, a.dose_mg_kg)
            detail = f"{a.dose_mg_kg or self.model['labetalol']['reference_dose_mg_kg']:g} mg/kg"
        elif isinstance(a, Treatment):
            for tr in self.model["treatments"][kind]["trends"]:
                tr = Trend.model_validate(tr)
                self._start_trend(tr.param, tr.to, tr.over_s, tr.shape, tr.delay_s)
        elif isinstance(a, DeviceEvent):
            if kind == "nibp_stat":
                self.monitor.nibp_stat(t)
            elif kind == "nibp_measure":
                self.monitor.nibp_measure(t)
            else:
                self.monitor.clear(t, kind)
        elif isinstance(a, SetNibpInterval):
            self.monitor.set_nibp_interval(t, a.interval_s)
            detail = f"{a.interval_s:g} s"
        elif isinstance(a, SetVar):
            self._trends.pop(a.param, None)
            self.phys.vars[a.param] = a.to
            detail = f"{a.param} = {a.to:g}"
        elif isinstance(a, TrendAction):
            self._start_trend(a.param, a.to, a.over_s, a.shape)
            detail = f"{a.param} -> {a.to:g} over {a.over_s:g} s ({a.shape})"
        elif isinstance(a, SetRhythm):
            self.phys.rhythm = a.rhythm
            if a.rate_bpm is not None:
                self._trends.pop("rhythm_rate", None)
                self.phys.vars["rhythm_rate"] = a.rate_bpm
            deficit = a.pulse_deficit
            if deficit is None:
                deficit = self.model["arrhythmia"]["default_af_pulse_deficit"] if a.rhythm == "af" else 0.0
            self.phys.vars["pulse_deficit"] = deficit
            detail = f"{a.rhythm}" + (f" {a.rate_bpm:g} bpm" if a.rate_bpm else "")
        elif isinstance(a, ArtefactAction):
            self.monitor.start_artefact(t, a.kind, a.dur_s, a.count, a.level)
            self._flush_monitor_log(source)
            return
        elif isinstance(a, Goto):
            self._enter_state(a.state, source)
            return
        elif isinstance(a, Log):
            self._emit("note", a.text, source)
            return
        elif isinstance(a, Mark):
            self._emit("action", a.name, source)
            return
        self._emit("action", f"{kind}" + (f" ({detail})" if detail else "") + (f": {a.reason}" if a.reason else ""),
                   source)

    def _flush_monitor_log(self, source: str) -> None:
        for (tt, kind, detail) in self.monitor.log:
            self.events.append(SimEvent(tt, kind, detail, source))
        self.monitor.log.clear()

    # --- results ----------------------------------------------------------------------
    def debrief(self) -> list[dict[str, Any]]:
        """The expected trainee actions and whether they happened in time."""
        out = []
        for ex in self._expected:
            e = ex.exp
            if ex.met_at is not None:
                status, pts = "met", e.points
            elif ex.opened_at is None:
                status, pts = "not_triggered", 0
            elif self.t - ex.opened_at <= e.within_s:
                status, pts = "pending", 0
            else:
                status, pts = "missed", 0
            out.append({"id": e.id, "action": e.action, "description": e.description, "status": status,
                        "opened_at": ex.opened_at, "met_at": ex.met_at,
                        "latency_s": None if ex.met_at is None or ex.opened_at is None else ex.met_at - ex.opened_at,
                        "points": pts, "max_points": e.points, "anticipated": ex.anticipated,
                        "met_by": ex.met_by})
        for h in self._harms:
            for when in h.done_at:
                out.append({"id": h.harm.id, "action": h.harm.action, "description": h.harm.description,
                            "status": "harmful", "opened_at": None, "met_at": when, "latency_s": None,
                            "points": -h.harm.points, "max_points": 0, "anticipated": False,
                            "met_by": h.harm.action})
        return out

    def wall_time(self, t: float | None = None) -> datetime:
        """The device clock at simulated second ``t`` (default: now)."""
        return self.start + timedelta(seconds=self.t if t is None else t)


__all__ = ["DEFAULT_START", "STREAMS", "ScenarioError", "SimEvent", "Simulation", "load_scenario", "rng_streams"]
