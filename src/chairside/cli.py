"""The ``chairside`` command: argument parsing and dispatch to ``chairside.commands.*``.

Owns: the command-line contract of ../shared/DESIGN.md (names, exit codes).
May import everything. Exit codes: 0 success, 1 a check failed, 2 bad usage or bad
input (one line saying what and where: ``chairside.commands._common.UsageError``).
Each command module imports only what its ``add_arguments`` needs at module level; the
heavy parts (textual, the simulator with numpy) load inside its ``run``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from chairside import __version__
from chairside.commands import (
    config,
    debrief,
    decode,
    export,
    ports,
    protocols,
    record,
    replay,
    run,
    scenarios,
    simulate,
    train,
    verify,
)
from chairside.commands._common import UsageError

# sub-command -> (its module, one-line help)
COMMANDS: dict[str, tuple[ModuleType, str]] = {
    "run": (run, "open the console on a monitor port (default: the built-in simulator)"),
    "record": (record, "headless monitor: record a session file, alarms on stderr"),
    "decode": (decode, "decode raw device bytes to JSON lines"),
    "simulate": (simulate, "serve or write a simulated monitor's byte stream"),
    "replay": (replay, "replay a session file or a raw capture"),
    "train": (train, "a simulated training session with instructor controls"),
    "debrief": (debrief, "debrief of a session file (training or real)"),
    "verify": (verify, "check a session file's hash chain"),
    "export": (export, "export a session file (csv, jsonl, html, fhir, rems-json)"),
    "scenarios": (scenarios, "list the simulator's scenarios"),
    "protocols": (protocols, "list the protocol templates"),
    "ports": (ports, "list serial ports"),
    "config": (config, "print the effective settings and where each came from"),
}

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chairside",
        description="Chairside: the ketamine infusion chairside console. "
        "With no command, opens the console on the built-in simulated monitor.",
    )
    parser.add_argument("--version", action="version", version=f"chairside {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (mod, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]
    only = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"chairside {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
