"""Training: a simulated session that a trainee runs with the normal console, the
instructor's controls, and what joins the two.

Owns: ``TrainingRun`` — one scenario's ``Simulation`` held at rest until the trainee starts
the infusion at the console (then the scenario's own timeline begins); a loopback TCP
server (127.0.0.1) that serves its monitor bytes, so the console reads it through
``socket://`` -> pyserial -> driver like a real monitor; ``SimClock`` (the console runs on
simulated time: a pause of the run pauses the alarm timers too, a time scale speeds
everything alike); the mapping from what the trainee records (pause, rate change,
interventions, acknowledgements...) to the simulator's events (``data/training.toml``);
the instructor's controls (pause, resume, time scale, inject, jump to state, notes, end);
and the training log, recorded into the session file as ``training`` events (what the
scenario and the simulated devices did, what the instructor did, the expectations opened
and met, and the final debrief). ``record_headless`` runs the same with a scripted trainee
and no screen (tests, benchmarks, instructors preparing a replay).

Threads: the server thread steps the simulation (under ``lock``); the service's threads
call ``_on_event``; a log thread copies new simulator events into the session file. The
simulator is only touched under ``lock``, and the service is never called while holding it.
May import: chairside.service, chairside.domain, simulators (public API). Must not import:
textual, chairside.ui.
"""

from __future__ import annotations

import logging
import queue
import threading
import tomllib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from chairside.drivers import get_driver
from chairside.reports.debrief import build_debrief
from chairside.service import MonitorService
from chairside.service.data import console_data

log = logging.getLogger("chairside.training")

SIM = "SIM"  # author of the simulator's entries
INSTRUCTOR = "INS"  # author of the instructor's entries
LOG_POLL_S = 0.2  # wall seconds between copies of the simulator's log into the record
# the true physiology sampled into the record ("truth" training events): scenario seconds,
# then the simulator's true values (its names: sao2 is the arterial saturation)
TRUTH_FIELDS = ("t", "sbp", "dbp", "hr", "pr", "sao2")


@lru_cache(maxsize=1)
def training_data() -> dict[str, Any]:
    """``data/training.toml``: recorded event kinds and intervention keys -> simulator actions."""
    text = resources.files("chairside").joinpath("data/training.toml").read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"chairside/data/training.toml: {exc}") from None


class TrainingError(ValueError):
    """A training run cannot start or a control was refused (the message says why)."""


class SimClock:
    """Simulated time as a Clock: the simulator's device clock (``start + t``)."""

    def __init__(self, run: TrainingRun) -> None:
        self._run = run

    def now(self) -> datetime:
        sim = self._run.sim
        return sim.start + timedelta(seconds=sim.t)

    def monotonic(self) -> float:
        return self._run.sim.t

    @property
    def rate(self) -> float:
        """Simulated seconds per wall second (0 while paused)."""
        sim = self._run.sim
        return 0.0 if sim.paused else sim.speed


class _Served:
    """What the TCP server steps: the simulation under the run's lock. In ``manual`` mode
    the wall clock moves nothing; ``TrainingRun.advance`` queues the bytes instead."""

    def __init__(self, run: TrainingRun) -> None:
        self._run = run
        self._pending = bytearray()

    def tick_wall(self, dt: float) -> bytes:
        run = self._run
        with run.lock:
            out = bytes(self._pending)
            self._pending.clear()
            if not run.manual:
                out += run.sim.tick_wall(dt)
        return out

    def queue(self, data: bytes) -> None:
        self._pending += data

    def write(self, data: bytes) -> None:
        with self._run.lock:
            self._run.sim.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run.sim, name)


class TrainingRun:
    """One training run. ``serve()`` starts the monitor on loopback TCP and returns its port
    URL; ``attach(service)`` joins the console's service; the instructor's controls are
    ``pause``, ``resume``, ``set_speed``, ``inject``, ``jump``, ``note`` and ``end``;
    ``debrief()`` scores the run so far. ``manual=True``: nothing moves with the wall clock,
    ``advance(seconds)`` steps the simulation (tests). ``hold=False``: the scenario starts at
    once (the simulated monitor of ``chairside run`` / ``record``, not a training run)."""

    def __init__(self, scenario: str, *, driver: str = "ge-s5", seed: int | None = None, speed: float = 1.0,
                 start: datetime, manual: bool = False, hold: bool = True, noise: bool = True) -> None:
        from simulators import api as sim_api  # numpy: loaded only when a simulator is in use

        try:
            self.scenario = sim_api.load_scenario(scenario)
            self.sim = sim_api.simulation(self.scenario, driver, seed=seed, start=start, speed=speed, auto_request=False,
                                  hold=hold, noise=noise, record=True)
        except ValueError as exc:  # a ScenarioError is a ValueError
            raise TrainingError(str(exc).splitlines()[0]) from None
        self.driver = driver
        self.seed = self.sim.seed
        self.manual = manual
        self.lock = threading.RLock()
        self.clock = SimClock(self)
        self.service: Any = None
        self.port_url: str | None = None
        self.ended = False
        self.final: dict[str, Any] | None = None
        self._served = _Served(self)
        self._logged = 0
        self._last_request = ""
        self._unlogged: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._record_lock = threading.Lock()
        self._truth_every_s = float(training_data()["debrief"]["truth_every_s"])
        self._truth_next: float | None = None

    # ------------------------------------------------------------------ life cycle
    def serve(self, timeout: float = 10.0) -> str:
        """Start the simulated monitor on 127.0.0.1 (a free port); ``socket://`` URL."""
        from simulators.api import serve_tcp  # the run's simulator is loaded already (__init__)

        ready: queue.Queue[str] = queue.Queue()
        t = threading.Thread(target=serve_tcp, args=(self._served, 0),
                             kwargs={"on_ready": ready.put, "stop": self._stop}, daemon=True,
                             name="chairside-training-monitor")
        t.start()
        self._threads.append(t)
        try:
            where = ready.get(timeout=timeout)
        except queue.Empty:
            raise TrainingError("the simulated monitor did not start") from None
        self.port_url = f"socket://{where}"
        return self.port_url

    def attach(self, service: Any) -> None:
        """Join the console's service: the trainee's entries reach the simulator, and the
        training log goes into the session file once one is open."""
        self.service = service
        self._unsubscribe = service.subscribe_events(self._on_event)
        if not self.manual:
            t = threading.Thread(target=self._log_loop, daemon=True, name="chairside-training-log")
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(3.0)

    def _log_loop(self) -> None:
        while not self._stop.wait(LOG_POLL_S):
            try:
                self.pump_log()
            except Exception:  # noqa: BLE001 - the training log must not stop the console
                log.exception("training log failed")

    # ------------------------------------------------------------------ simulated time
    @property
    def began(self) -> bool:
        return self.sim.began

    @property
    def scenario_t(self) -> float | None:
        """Seconds since the scenario began (None before the trainee started the infusion)."""
        off = self.sim.offset
        return None if off is None else self.sim.t - off

    def advance(self, seconds: float) -> None:
        """Manual mode: step the simulation (not while paused); its bytes go out on the next
        server tick."""
        with self.lock:
            if self.sim.paused:
                return
            data = self.sim.advance(seconds)
            self._served.queue(data)

    # ------------------------------------------------------------------ the trainee's side
    def _on_event(self, ev: Any) -> None:
        """A stored event (from the service's threads): the trainee's entries move the model."""
        kind = ev.kind
        if kind in ("training", "readings_recorded"):
            return
        data = training_data()
        action: str | None = None
        args: dict[str, Any] = {}
        if kind == "session_opened":
            self.pump_log()
            return
        if kind in ("infusion_started", "device_given"):  # the first dose begins the scenario
            with self.lock:
                if not self.sim.began:
                    self.sim.begin()
            self.pump_log()
            return
        if kind == "alarm_acknowledged" and not ev.by:
            return
        if kind == "infusion_rate_changed":
            action, args = "set_rate", {"rate_mg_kg_h": ev.rate_mg_kg_h}
        elif kind == "intervention_given":
            key = _intervention_key(ev.drug)
            action = data["interventions"].get(key) if key else None
            if action == "labetalol" and ev.dose is not None and ev.dose_unit == "mg" and self._weight():
                args = {"dose_mg_kg": ev.dose / self._weight()}
        else:
            action = data["events"].get(kind)
        if action is None:
            return
        with self.lock:
            try:
                self.sim.inject(action, by="trainee", **args)
            except ValueError as exc:
                log.warning("training: %s not passed to the simulator: %s", action, exc)
        self.pump_log()

    def _weight(self) -> float | None:
        svc = self.service
        return getattr(svc, "weight", None) or None if svc is not None else None

    # ------------------------------------------------------------------ instructor's controls
    def pause(self, *, log: bool = True) -> None:
        """Pause the run (``log=False``: the caller copies the log into the record later, off
        a thread that must not wait on the session file)."""
        with self.lock:
            self.sim.pause()
        if log:
            self.pump_log()

    def resume(self, *, log: bool = True) -> None:
        with self.lock:
            self.sim.resume()
        if log:
            self.pump_log()

    @property
    def paused(self) -> bool:
        return self.sim.paused

    @property
    def speed(self) -> float:
        return self.sim.speed

    def set_speed(self, speed: float, *, log: bool = True) -> None:
        with self.lock:
            try:
                self.sim.set_speed(speed)
            except ValueError as exc:
                raise TrainingError(str(exc)) from None
        if log:
            self.pump_log()

    def speeds(self) -> list[float]:
        return [float(s) for s in training_data()["instructor"]["speeds"]]

    def inject(self, event: str, **args: Any) -> None:
        """An instructor's event: an artefact (``inject("artefact", kind="probe_off")``) or
        any simulator event (``inject("motion_stops")``)."""
        with self.lock:
            try:
                self.sim.inject(event, by="instructor", **args)
            except ValueError as exc:
                raise TrainingError(str(exc)) from None
        self.pump_log()

    def jump(self, state: str) -> None:
        with self.lock:
            if not self.sim.began:
                self.sim.begin()
            try:
                self.sim.jump_to_state(state)
            except ValueError as exc:
                raise TrainingError(str(exc)) from None
        self.pump_log()

    def note(self, text: str) -> None:
        """An instructor's note for the debrief (recorded with the training log)."""
        text = text.strip()
        if not text:
            raise TrainingError("the note is empty")
        self._record({"source": "instructor", "action": "note", "detail": text, "author": INSTRUCTOR,
                      "sim_t": self.scenario_t})

    def end(self) -> dict[str, Any]:
        """End the run: the final scoring goes into the record; returns the debrief."""
        if self.service is None or self.service.state.session is None:
            raise TrainingError("no session is open: there is nothing to debrief yet")
        with self.lock:
            results = self.sim.debrief()
            offset = self.sim.offset
        self.pump_log()
        if not self.ended:
            self.ended = True
            self._record({"source": "sim", "action": "debrief", "detail": _score_text(results),
                          "sim_t": self.scenario_t, "args": {"expectations": _relative(results, offset)}})
        self.final = self.debrief()
        return self.final

    def debrief(self) -> dict[str, Any]:
        """The debrief of the run so far (from the session record when there is one)."""
        events = self.service.recorded_events() if self.service is not None else []
        with self.lock:
            live = _relative(self.sim.debrief(), self.sim.offset)
        return build_debrief(events, live_expectations=None if self.ended else live)

    # -- what the panel shows
    def states(self) -> list[str]:
        return list(self.scenario.states)

    def artefact_kinds(self) -> list[str]:
        from simulators.api import ARTEFACT_KINDS  # loaded already (__init__)

        return list(ARTEFACT_KINDS)

    def device_events(self) -> list[str]:
        from simulators.api import device_events  # loaded already (__init__)

        return device_events()

    def recent(self, n: int = 8) -> list[str]:
        """The last ``n`` entries of the training log (for the instructor panel)."""
        svc = self.service
        if svc is None:
            return []
        out = []
        for e in reversed(svc.recorded_events()):
            if e.kind == "training" and e.action not in ("seed", "patient", "host_request"):
                when = "--:--" if e.sim_t is None else f"{int(e.sim_t) // 60:02d}:{int(e.sim_t) % 60:02d}"
                out.append(f"{when} {e.source}: {e.action.replace('_', ' ')}" + (f" — {e.detail}" if e.detail else ""))
                if len(out) >= n:
                    break
        return out[::-1]

    def status(self) -> dict[str, Any]:
        with self.lock:
            sim = self.sim
            return {"scenario": self.scenario.name, "title": self.scenario.title, "seed": self.seed,
                    "state": sim.state, "began": sim.began, "paused": sim.paused, "speed": sim.speed,
                    "sim_t": sim.t, "scenario_t": self.scenario_t, "ended": self.ended}

    # ------------------------------------------------------------------ the training log
    def pump_log(self) -> None:
        """Copy the simulator's new log entries into the session record (or hold them until
        a session is open)."""
        with self.lock:
            new = self.sim.events[self._logged:]
            self._logged += len(new)
            offset = self.sim.offset
            truth = self._truth_samples(offset)
        for e in new:
            if e.kind == "host_request":
                if e.detail == self._last_request:
                    continue  # the console asked again for the same stream: nothing new for the record
                self._last_request = e.detail
            source = e.source if e.source in ("scenario", "device", "instructor", "trainee") else "sim"
            author = INSTRUCTOR if source == "instructor" else SIM
            self._record({"source": source, "action": e.kind, "detail": e.detail, "author": author,
                          "sim_t": None if offset is None or e.t < offset else round(e.t - offset, 3)})
        if truth:
            self._record({"source": "sim", "action": "truth", "detail": f"{len(truth)} samples of the true physiology",
                          "author": SIM, "sim_t": truth[-1][0],
                          "args": {"fields": list(TRUTH_FIELDS), "samples": truth}})

    def _truth_samples(self, offset: float | None) -> list[list[float | None]]:
        """The patient's true physiology (what the monitor's readings are drawn from) since the
        last call, one sample every ``truth_every_s`` of scenario time, for the debrief's true
        vs displayed. Called under the run's lock; the simulator's history is consumed."""
        hist = self.sim.history
        out: list[list[float | None]] = []
        if offset is not None:
            for tv, _disp in hist:
                t = float(tv.t) - offset
                if t < 0 or (self._truth_next is not None and t < self._truth_next):
                    continue
                self._truth_next = t + self._truth_every_s
                out.append([round(t, 1), *(None if getattr(tv, f) is None else round(float(getattr(tv, f)), 1)
                                           for f in TRUTH_FIELDS[1:])])
        hist.clear()
        return out

    def _record(self, entry: dict[str, Any]) -> None:
        svc = self.service
        with self._record_lock:
            if svc is None or not svc.session_open:
                self._unlogged.append(entry)
                return
            held, self._unlogged = self._unlogged, []
            for item in [*held, entry]:
                try:
                    svc.record_training(**item)
                except Exception:  # noqa: BLE001 - keep the console going; the log says why
                    log.exception("training: recording %s failed", item.get("action"))


def _intervention_key(drug: str) -> str | None:
    for item in console_data().interventions:
        if drug in (item.text, item.key):
            return item.key
    return None


def _relative(results: list[dict[str, Any]], offset: float | None) -> list[dict[str, Any]]:
    """Simulator debrief entries with their times from the start of the scenario."""
    out = []
    for r in results:
        r = dict(r)
        for k in ("opened_at", "met_at"):
            if r.get(k) is not None and offset is not None:
                r[k] = round(r[k] - offset, 3)
        out.append(r)
    return out


def _score_text(results: list[dict[str, Any]]) -> str:
    pts = sum(r["points"] for r in results)
    best = sum(r["max_points"] for r in results)
    expected = [r for r in results if r["status"] != "harmful"]
    met = sum(1 for r in expected if r["status"] == "met")
    anticipated = sum(1 for r in expected if r["status"] == "met" and r.get("anticipated"))
    harmful = len(results) - len(expected)
    return (f"{pts} of {best} points; {met} of {len(expected)} expected actions met"
            + (f" ({anticipated} anticipated)" if anticipated else "")
            + (f"; {harmful} harmful action{'s' if harmful != 1 else ''}" if harmful else ""))


# ---------------------------------------------------------------------------- headless runs
class InProcessMonitor:
    """The run's monitor bytes fed straight through the driver into the service, second by
    second of simulated time, with the service's one-second tick (no socket: tests, headless
    runs). ``run(seconds)`` advances; readings are stored before anything sees them."""

    def __init__(self, training: TrainingRun, service: Any, *, raw: Any = None) -> None:
        self.training = training
        self.service = service
        self.raw = raw  # a CaptureWriter: the bytes with their (simulated) receive times
        self.driver = get_driver(training.driver)
        hello = self.driver.on_connect()
        if hello:
            with training.lock:
                training.sim.write(hello)

    def run(self, seconds: float) -> None:
        """Advance ``seconds`` of simulated time (nothing moves while the run is paused)."""
        tr, svc = self.training, self.service
        for _ in range(max(0, int(round(seconds)))):
            with tr.lock:
                if tr.sim.paused:
                    return
                data = tr.sim.advance(1.0)
            if data and self.raw is not None:
                self.raw.write(tr.clock.now(), tr.clock.monotonic(), data)
            out = self.driver.feed(data) if data else []
            if out:
                svc.feed(out)
            svc.tick()
            tr.pump_log()


Step = tuple[str, Callable[[Any, TrainingRun], bool], Callable[[Any, TrainingRun], Any]]


def record_headless(path: Any, scenario: str, *, driver: str = "ge-s5", seed: int | None = None,
                    duration_s: float | None = None, start: datetime, steps: Iterable[Step] = (),
                    weight_kg: float | None = None, staff: str = "TR") -> tuple[TrainingRun, Any]:
    """A training run with a scripted trainee and no screen or socket. ``steps``: ``(name,
    when(svc, run), do(svc, run))`` done once each, when ``when`` first holds (checked every
    simulated second). ``duration_s`` counts from the scenario's start (the trainee's start
    of the infusion). Returns (run, service) with the run ended and the session closed."""
    run = TrainingRun(scenario, driver=driver, seed=seed, start=start, manual=True)
    svc = MonitorService(clock=run.clock, driver=driver, protocol=None, simulated=True, scenario=run.scenario.name,
                         sim_seed=run.seed)
    run.attach(svc)
    mon = InProcessMonitor(run, svc)
    svc.open_session(patient_id=f"SIM-{run.seed:04d}", weight_kg=weight_kg or run.scenario.patient.weight_kg,
                     staff=[staff], weight_confirmed_by=SIM, path=path, training=True)
    pending = list(steps)
    total = float(duration_s if duration_s is not None else run.scenario.duration_s)
    while (run.scenario_t or 0.0) < total:
        mon.run(1)
        for item in list(pending):
            _name, when, do = item
            if when(svc, run):
                do(svc, run)
                pending.remove(item)
        if not run.began and run.sim.t > total:
            break  # the trainee never started the infusion
    run.end()
    svc.stop()
    svc.close_session(author=staff, reason="training run ended")
    return run, svc
