"""``chairside scenarios``: list the simulator's scenarios.

Owns: the output of the ``scenarios`` command: one block per scenario (name, title,
duration, what it trains, the trainee actions its debrief expects) on stdout; ``--json``
prints one JSON object per scenario (also its states and expected_actions); ``--check
FILE`` validates a scenario file (exit 0 and "ok", or exit 2 with each problem on a line
naming the file, table and key).
Imports the simulator (``simulators.api``: numpy) inside ``run``.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from chairside.commands._common import UsageError, simulator_api


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per scenario on stdout")
    parser.add_argument("--check", metavar="FILE", nargs="+", action="extend", default=[],
                        help="check a scenario file (schema, actions, values, equivalents, expectations that can "
                             "never open); repeatable")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def run(args: argparse.Namespace) -> int:
    sim_api = simulator_api()  # numpy: only the commands that simulate load it
    if args.check:
        return _check(args.check, sim_api)
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


def _check(files: list[str], sim_api) -> int:
    bad = 0
    for f in files:
        problems = sim_api.check_scenario(f)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            bad += 1
        else:
            print(f"{f}: ok")
    return 2 if bad else 0
