"""Public API of the simulator (for the alarms tests, the service, training, benches).

Owns: ``generate(scenario, driver, seed, duration_s, **opts)`` -> iterator of
``(sim_seconds, bytes)`` (what the device sent, second by second), ``simulation(...)`` (a
``Simulation`` to drive step by step), ``load_scenario(name_or_path)``,
``list_scenarios()``, ``without_random_artefacts(scenario)`` (the explicit clean variant of
a scenario, for a test that needs a signal without random artefact episodes),
``check_scenario(path)`` (the problems that make a scenario file
unfit for scoring); the pieces chairside starts a simulated monitor with:
``port_options(url)`` (a ``sim://`` port URL's options), ``register()`` (the ``sim://``
scheme for pyserial), ``serve_tcp`` / ``serve_pty`` (the loopback and pseudo-terminal
servers); and what the instructor panel lists (``ARTEFACT_KINDS``, ``device_events()``).
Everything here is deterministic for a given seed (same numpy build): the device clock
starts at ``DEFAULT_START`` unless ``start=`` is given.

This is the only module of ``simulators`` that chairside imports (an import-linter
contract in pyproject.toml checks it); it imports numpy, so chairside imports it only
when a simulator is in use.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from serial import SerialException

from simulators import register
from simulators.devices import ARTEFACT_KINDS, CLEARED_BY
from simulators.check import check_scenario
from simulators.engine import DEFAULT_START, DT_S, SimEvent, Simulation
from simulators.engine import load_scenario as _load
from simulators.protocol_sim import Serial as _SimPort
from simulators.scenario import Scenario, ScenarioError, find, names
from simulators.servers import serve_pty, serve_tcp

__all__ = ["ARTEFACT_KINDS", "DEFAULT_START", "Scenario", "ScenarioError", "SimEvent", "Simulation", "check_scenario",
           "device_events", "generate", "list_scenarios", "load_scenario", "port_options", "register",
           "serve_pty", "serve_tcp", "simulation", "without_random_artefacts"]


def port_options(url: str) -> dict[str, Any]:
    """The options of a ``sim://SCENARIO?driver=...`` port URL: scenario, driver, seed, speed
    (``inf`` for ``max``), duration, autostart, noise, start. ValueError saying what is wrong."""
    try:
        return _SimPort().from_url(url)
    except SerialException as exc:
        raise ValueError(str(exc)) from None


def device_events() -> list[str]:
    """The device events an instructor can inject (what clears an artefact, and a STAT NIBP)."""
    return sorted({*CLEARED_BY.values(), "nibp_stat"})


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A validated scenario by name (shipped) or by path; ScenarioError naming file, field
    and reason otherwise."""
    return _load(name_or_path)


def without_random_artefacts(scenario: str | Path | Scenario) -> Scenario:
    """The scenario with its random artefact episodes (motion, probe-off, low perfusion) off:
    the explicit clean variant, for a test that compares with a model of a clean device or
    needs a quiet signal (say why where it is used). Its scripted artefacts, the cuff's
    random failure probability and the measurement noise stay as they are."""
    sc = scenario if isinstance(scenario, Scenario) else _load(scenario)
    rates = sc.devices.artefacts.model_copy(update={"motion_per_h": 0.0, "probe_off_per_h": 0.0,
                                                    "low_perfusion_per_h": 0.0})
    return sc.model_copy(update={"devices": sc.devices.model_copy(update={"artefacts": rates})})


def list_scenarios() -> list[dict[str, Any]]:
    """The shipped scenarios: name, title, duration_s, trains, path, states, and
    expected_actions (the trainee action names its [[expected]] entries score)."""
    out = []
    for name in names():
        path = find(name)
        sc = _load(path)
        out.append({"name": sc.name, "title": sc.title, "duration_s": sc.duration_s, "trains": sc.trains,
                    "path": str(path), "states": list(sc.states),
                    "expected_actions": list(dict.fromkeys(e.action for e in sc.expected))})
    return out


def simulation(scenario: str | Path | Scenario, driver: str | Sequence[str] | None = "ge-s5", seed: int | None = None,
               **opts: Any) -> Simulation:
    """A ``Simulation`` (options: start, speed, noise, auto_request, record)."""
    return Simulation(scenario, seed, driver, **opts)


def generate(scenario: str | Path | Scenario, driver: str, seed: int | None = None, duration_s: float | None = None,
             *, start: datetime | None = None, noise: bool = True, auto_request: bool = True,
             events: Iterable[dict[str, Any]] = (), chunk_s: float = DT_S,
             sim: list[Simulation] | None = None) -> Iterator[tuple[float, bytes]]:
    """The bytes ``driver`` sends during ``duration_s`` simulated seconds (default: the
    scenario's duration), as ``(sim_seconds, bytes)`` chunks of ``chunk_s`` seconds
    (empty chunks are skipped).

    ``events``: timed trainee/instructor actions, e.g. ``[{"t": 1500, "event":
    "pause_infusion"}, {"t": 1600, "event": "labetalol", "dose_mg_kg": 0.25}]``.
    ``sim``: pass a list to receive the ``Simulation`` (for its event log or debrief).
    """
    s = Simulation(scenario, seed, driver, start=start, noise=noise, auto_request=auto_request)
    if sim is not None:
        sim.append(s)
    total = float(duration_s if duration_s is not None else s.scenario.duration_s)
    pending = sorted(({**e} for e in events), key=lambda e: float(e["t"]))
    chunk = max(DT_S, float(chunk_s))
    while s.t < total - 1e-9:
        while pending and float(pending[0]["t"]) <= s.t + 1e-9:
            e = pending.pop(0)
            e.pop("t")
            s.inject(e.pop("event"), **e)
        step = min(chunk, total - s.t)
        if pending:
            step = min(step, max(DT_S, float(pending[0]["t"]) - s.t))
        data = s.advance(step)
        if data:
            yield s.t, data
