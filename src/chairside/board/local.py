"""The in-process board: several chairs in one process, each a full monitoring service with
its own port, driver, protocol and session file (what ``chairside run`` records).

Owns: ``ChairSpec`` and ``parse_chairs`` (``--chair NAME=PORT[,DRIVER]`` and the clinic
file ``chairs.toml``; two chairs with one name are refused), ``LocalBoard`` — starts each
chair's service, feeds a ``BoardModel`` from their snapshots and alarm events (no broker
in between), and optionally publishes each chair to a broker too; ``demo_chairs(n)`` — the
newcomer's demo: simulated chairs running different scenarios, staggered in phase (one
still being checked in, the others at different points of their infusion).
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chairside.board.state import BoardModel, alarm_message, chair_state
from chairside.domain.clock import WallClock
from chairside.domain.events import ALARM_EVENT_KINDS
from chairside.service import CommandRefused, MonitorService
from chairside.training import TrainingRun

__all__ = ["BoardError", "ChairSpec", "LocalBoard", "demo_chairs", "parse_chairs"]

DRIVERS = ("ge-s5", "masimo", "hl7")
# the demo: (scenario, minutes into its infusion when the board opens; None = checking in)
DEMO = [("uneventful", None), ("hypertensive-surge", 14.0), ("over-sedation", 12.0), ("vasovagal", 2.0),
        ("emergence-agitation", 17.0), ("nausea-vomiting", 30.0), ("probe-off", 13.0), ("tachyarrhythmia", 19.0),
        ("nibp-failures", 8.0), ("chronic-pain-4h", 50.0), ("uneventful", 35.0), ("hypertensive-surge", 5.0)]


class BoardError(ValueError):
    """A chair list that cannot be used (the message names the chair or the file and why)."""


@dataclass(frozen=True)
class ChairSpec:
    name: str
    port: str = ""
    driver: str = "ge-s5"
    protocol: str | None = None
    scenario: str | None = None  # demo chairs: a simulated monitor
    minutes_in: float | None = None  # demo chairs: how far into the infusion (None: checking in)
    seed: int | None = None


def _check_name(name: str, where: str) -> str:
    name = name.strip()
    if not name or "/" in name or "+" in name or "#" in name:
        raise BoardError(f"{where}: a chair name is a word without '/', '+' or '#', got {name!r}")
    return name


def parse_chairs(items: list[str] = (), file: Path | None = None) -> list[ChairSpec]:
    specs: list[ChairSpec] = []
    if file is not None:
        try:
            doc = tomllib.loads(Path(file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise BoardError(f"{file}: cannot read ({exc.strerror or exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise BoardError(f"{file}: {exc}") from None
        for i, c in enumerate(doc.get("chair", [])):
            where = f"{file}: chair[{i}]"
            if not isinstance(c, dict) or "name" not in c or "port" not in c:
                raise BoardError(f"{where}: needs name and port")
            unknown = set(c) - {"name", "port", "driver", "protocol"}
            if unknown:
                raise BoardError(f"{where}.{sorted(unknown)[0]}: unknown field")
            driver = c.get("driver", "ge-s5")
            if driver not in DRIVERS:
                raise BoardError(f"{where}.driver: unknown driver {driver!r}; choose one of: {', '.join(DRIVERS)}")
            specs.append(ChairSpec(_check_name(str(c["name"]), where), str(c["port"]), driver, c.get("protocol")))
    for item in items:
        name, sep, rest = item.partition("=")
        if not sep or not rest:
            raise BoardError(f"--chair {item}: give NAME=PORT[,DRIVER]")
        port, _, driver = rest.partition(",")
        driver = driver or "ge-s5"
        if driver not in DRIVERS:
            raise BoardError(f"--chair {item}: unknown driver {driver!r}; choose one of: {', '.join(DRIVERS)}")
        specs.append(ChairSpec(_check_name(name, f"--chair {item}"), port, driver))
    seen: set[str] = set()
    for s in specs:
        if s.name in seen:
            raise BoardError(f"two chairs are named {s.name!r}: each chair needs its own name")
        seen.add(s.name)
    return specs


def demo_chairs(n: int) -> list[ChairSpec]:
    if not 1 <= n <= len(DEMO):
        raise BoardError(f"--demo takes 1 to {len(DEMO)} chairs, got {n}")
    return [ChairSpec(f"chair-{i + 1}", scenario=sc, minutes_in=m, seed=100 + i) for i, (sc, m) in
            enumerate(DEMO[:n])]


@dataclass
class _Chair:
    spec: ChairSpec
    service: Any
    sim: Any = None
    publisher: Any = None
    unsubs: list[Any] = field(default_factory=list)


class LocalBoard:
    """Run ``specs`` in this process; ``model`` is what the board shows."""

    def __init__(self, specs: list[ChairSpec], *, folder: Path, settings: Any = None, broker: Any = None,
                 clinic: str = "clinic") -> None:
        self.specs, self.folder, self.settings = specs, Path(folder), settings
        self.broker, self.clinic = broker, clinic
        self.model = BoardModel()
        self.chairs: dict[str, _Chair] = {}

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            sim = None
            clock: Any = None
            port = spec.port
            if spec.scenario is not None:
                sim, clock = self._demo_monitor(spec)
                port = sim.port_url
            if clock is None:
                clock = WallClock()
            svc = MonitorService(clock=clock, port=port, driver=spec.driver, protocol=spec.protocol,
                                 settings=self.settings, simulated=sim is not None, scenario=spec.scenario,
                                 sim_seed=None if sim is None else sim.seed)
            chair = _Chair(spec, svc, sim)
            chair.unsubs.append(svc.subscribe(lambda snap, name=spec.name, c=chair: self._on_snapshot(name, c, snap)))
            chair.unsubs.append(svc.subscribe_events(lambda ev, name=spec.name: self._on_event(name, ev)))
            if self.broker is not None:
                from chairside.board.mqtt import ChairPublisher  # paho-mqtt: loaded only with a broker

                chair.publisher = ChairPublisher(svc, self.broker, clinic=self.clinic, chair=spec.name)
            self.chairs[spec.name] = chair
            svc.start()
            if chair.publisher is not None:
                chair.publisher.start()
            if spec.scenario is not None:
                self._demo_session(chair)

    def _demo_monitor(self, spec: ChairSpec) -> tuple[Any, Any]:
        run = TrainingRun(spec.scenario, driver=spec.driver, seed=spec.seed, start=WallClock().now(), hold=True)
        run.serve()
        return run, run.clock

    def _demo_session(self, chair: _Chair) -> None:
        svc, spec, run = chair.service, chair.spec, chair.sim
        path = self.folder / f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}.chairside"
        p = run.scenario.patient
        svc.open_session(patient_id=f"DEMO-{spec.name.removeprefix('chair-')}", weight_kg=p.weight_kg,
                         staff=["RN"], weight_confirmed_by="RN", path=path, training=True)
        if spec.minutes_in is None:
            return  # checking in: the nurse has not started yet
        svc.complete_checklist(author="RN", contraindications={i.key: False for i in svc.data.checklist},
                               hours_fasted=6, escort_confirmed=True, consent=True)
        svc.start_infusion(author="RN", concentration_mg_ml=0.4, confirmed_by="RN",
                           gate_override_reason="demo chair")
        # the demo's stagger: this chair's patient is already minutes_in into the infusion
        with run.lock:
            run.sim.step_to(run.sim.t + spec.minutes_in * 60.0)

    def _on_snapshot(self, name: str, chair: _Chair, snap: Any) -> None:
        st = chair_state(snap, name, last_seq=int(getattr(snap.device.store, "events", 0) or 0))
        self.model.on_state(name, st.model_dump(by_alias=True), time.monotonic())
        view = self.model.chairs.get(name)
        if view is not None and view.online is None:
            view.online = True

    def _on_event(self, name: str, ev: Any) -> None:
        if ev.kind in ALARM_EVENT_KINDS:
            self.model.on_alarm(name, alarm_message(name, ev).model_dump_json(), time.monotonic())

    def service(self, name: str) -> Any:
        return self.chairs[name].service

    def stop(self, reason: str = "board closed") -> None:
        for chair in self.chairs.values():
            for u in chair.unsubs:
                u()
            if chair.publisher is not None:
                chair.publisher.stop()
            if chair.sim is not None:
                chair.sim.stop()
            chair.service.stop()
            try:
                if chair.service.session_open:
                    chair.service.close_session(author="RN", reason=reason)
            except CommandRefused as exc:  # every chair is closed; say which one refused
                print(f"chairside board: {chair.spec.name}: {exc}")
            chair.service.shutdown()
