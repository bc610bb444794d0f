"""``check_scenario``: is a scenario file one a trainee can be scored on?

Owns: the checks of ``chairside scenarios --check FILE`` beyond the schema's own
validation (which already refuses an unknown action, a trigger on an unknown value, an
equivalent naming an unknown action, a state that does not exist): every expectation must
be able to open. A scenario's ``[[expected]]`` entries open on the deterioration the
scenario scripts, so each one's ``after`` condition must hold at some moment of a run in
which the trainee does nothing -- on the mean trajectory (noise off) or on the scenario's
own seed. One that holds in neither can never be scored: the file is refused with the
entry named.
Must not import: textual, chairside.
"""

from __future__ import annotations

from pathlib import Path

from simulators.engine import Simulation
from simulators.scenario import Scenario, ScenarioError, find, load_file

__all__ = ["check_scenario"]


def _opened_ids(sc: Scenario, *, noise: bool) -> set[str]:
    sim = Simulation(sc, None, None, noise=noise)
    sim.step_to(sc.duration_s)
    return {r["id"] for r in sim.debrief() if r["opened_at"] is not None}


def check_scenario(name_or_path: str | Path) -> list[str]:
    """The problems of a scenario file, each ``<file>: <table>[i].<key>: <reason>``; an
    empty list when it is sound. A file that does not load gives its one load error."""
    try:
        path = find(name_or_path)
        sc = load_file(path)
    except ScenarioError as exc:
        return [str(exc)]
    if not sc.expected:
        return []
    opened = _opened_ids(sc, noise=False) | _opened_ids(sc, noise=True)
    problems = []
    for i, e in enumerate(sc.expected):
        if e.id not in opened:
            problems.append(f"{path}: expected[{i}].after: expectation {e.id!r} can never open: {e.after!r} never "
                            f"held in a {sc.duration_s:g}-s run without trainee actions (noise off, and seed "
                            f"{sc.seed if sc.seed is not None else 0})")
    return problems
