"""``chairside scenarios``: list the simulator's scenarios.

Owns: the output of the ``scenarios`` command: one block per scenario (name, title,
duration, what it trains, the trainee actions its debrief expects) on stdout; ``--json``
prints one JSON object per scenario (also its states and expected_actions).
Imports the simulator (``simulators.api``: numpy) inside ``run``.
"""

from __future__ import annotations

import argparse
import json
import textwrap

from chairside.commands._common import UsageError, simulator_api


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per scenario on stdout")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def run(args: argparse.Namespace) -> int:
    sim_api = simulator_api()  # numpy: only the commands that simulate load it
    try:
        items = sim_api.list_scenarios()
    except sim_api.ScenarioError as exc:
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
