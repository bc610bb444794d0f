"""``chairside scenarios``: list the simulator's scenarios.

Owns: the output of the ``scenarios`` command: one block per scenario (name, title,
duration, what it trains, the trainee actions its debrief expects) on stdout; ``--json``
prints one JSON object per scenario (also its states and expected_actions).
Imports the simulator inside ``run``.
"""

from __future__ import annotations

import argparse
import json
import textwrap


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per scenario on stdout")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def run(args: argparse.Namespace) -> int:
    from chairside.cli import UsageError
    from simulators.api import list_scenarios
    from simulators.scenario import ScenarioError

    try:
        items = list_scenarios()
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        for item in items:
            print(json.dumps({k: item[k] for k in ("name", "title", "duration_s", "trains", "states",
                                                   "expected_actions")}))
        return 0
    width = max(len(i["name"]) for i in items)
    for item in items:
        print(f"{item['name']:<{width}}  {_duration(item['duration_s']):>10}  {item['title']}")
        if item["trains"]:
            for line in textwrap.wrap("trains: " + item["trains"], 100 - width - 14):
                print(" " * (width + 14) + line)
        if item["expected_actions"]:
            for line in textwrap.wrap("expects: " + ", ".join(item["expected_actions"]), 100 - width - 14):
                print(" " * (width + 14) + line)
    return 0
