"""A deterministic recording for the replay tests: the simulator's bytes go through the real
driver into a MonitorService on a ManualClock that follows the simulated time, with the
engine's one-second ticks on the grid from the session's start, and nurse actions taken
when conditions on the published state are met (like a nurse reacting to the screen).

``record(path, scenario, driver, seed, duration_s, reactions)`` writes the session file and
returns it; ``reactions`` is a list of ``(name, when(svc) -> bool, do(svc))``, each done once
(half a second after the condition first holds, so it never ties with a reading).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from chairside.domain.clock import ManualClock
from chairside.drivers import get_driver
from chairside.service import MonitorService
from simulators.api import DEFAULT_START, generate

Reaction = tuple[str, Callable[[MonitorService], bool], Callable[[MonitorService], Any]]


def latest(svc: MonitorService, param: str) -> float | None:
    r = svc._latest_valid.get(param)
    return None if r is None else r.value


def active(svc: MonitorService, *, priority: str | None = None, rule: str | None = None) -> list:
    return [a for a in svc.engine.active()
            if (priority is None or a.priority == priority) and (rule is None or a.rule == rule)]


def record(path: Path, scenario: str = "hypertensive-surge", driver: str = "ge-s5", seed: int = 7,
           duration_s: float = 3600, reactions: list[Reaction] = (), weight_kg: float = 80) -> Path:
    clock = ManualClock(DEFAULT_START)
    svc = MonitorService(clock=clock, driver=driver, protocol="iv-ketamine-depression")
    svc.open_session(patient_id="P-REPLAY", weight_kg=weight_kg, staff=["AB"], weight_confirmed_by="CD", path=path)
    svc.complete_checklist(author="AB", contraindications={i.key: False for i in svc.data.checklist},
                           hours_fasted=6, escort_confirmed=True, consent=True,
                           medications_reviewed=True, allergies="none known")
    drv = get_driver(driver)
    pending = list(reactions)
    started = False
    for sim_t, data in generate(scenario, driver, seed, duration_s):
        while clock.monotonic() + 1 <= sim_t + 1e-9:
            clock.advance(1)
            svc.tick()
        clock.set(sim_t)
        out = drv.feed(data)
        if out:
            svc.feed(out)
        if not started and latest(svc, "nibp_sys") is not None:
            clock.advance(0.5)
            svc.record_baseline(author="AB")
            svc.start_infusion(author="AB", concentration_mg_ml=0.4, gate_override_reason="scripted start",
                               confirmed_by="CD", lot="LOT-7")
            started = True
        for item in list(pending):
            name, when, do = item
            if when(svc):
                clock.advance(0.5)
                do(svc)
                pending.remove(item)
    svc.tick()
    svc.stop()
    svc.shutdown()
    return path


def surge_reactions() -> list[Reaction]:
    """Acknowledge the first high alarm, pause the infusion on it, resume 10 min later,
    note and stop; acknowledge whatever is active 5 min after the pause."""
    state: dict[str, float] = {}

    def high(svc: MonitorService) -> bool:
        return bool(active(svc, priority="high"))

    def ack_and_pause(svc: MonitorService) -> None:
        svc.acknowledge(None, by="AB")
        svc.pause_infusion(author="AB", reason="SBP >= 180")
        state["paused"] = svc.clock.monotonic()

    def after(seconds: float) -> Callable[[MonitorService], bool]:
        return lambda svc: "paused" in state and svc.clock.monotonic() - state["paused"] >= seconds

    return [
        ("ack+pause on high", high, ack_and_pause),
        ("audio pause", after(60), lambda svc: svc.pause_audio(by="AB")),
        ("ack all", after(300), lambda svc: svc.acknowledge(None, by="CD")),
        ("note", after(420), lambda svc: svc.add_note(author="AB", text="prescriber informed")),
        ("stop", after(600), lambda svc: svc.stop_infusion(author="AB", reason="stopped after the surge")),
    ]


def write_capture(path: Path, scenario: str, driver: str, seed: int, duration_s: float) -> Path:
    """A raw capture as a live link at 1x would have written it: each second's bytes with the
    simulated receive time (the device clock of the simulator)."""
    from datetime import timedelta

    from chairside.transport import CaptureWriter

    with CaptureWriter(path, driver=driver, start=DEFAULT_START, port=f"sim://{scenario}",
                       monotonic_origin=0.0) as w:
        for sim_t, data in generate(scenario, driver, seed, duration_s):
            w.write(DEFAULT_START + timedelta(seconds=sim_t), sim_t, data)
    return path
