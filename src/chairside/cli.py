"""The ``chairside`` command: argument parsing and dispatch to ``chairside.commands.*``.

Owns: the command-line contract of ../shared/DESIGN.md (names, exit codes).
May import everything. Exit codes: 0 success, 1 a check failed, 2 bad usage or bad
input (one line saying what and where: ``chairside.commands._common.UsageError``).
A command's module is imported only when that command is parsed (``_module``); inside it,
the heavy parts (textual, the simulator with numpy) load only where they are used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from chairside import __version__
from chairside.commands._common import UsageError

# sub-command -> one-line help. Its module, chairside.commands.<name>, is imported only when
# the command is parsed (see _module): the console does not load the exporters, the replay
# or the decoder at start-up.
COMMANDS: dict[str, str] = {
    "run": "open the console on a monitor port (default: the built-in simulator)",
    "record": "headless monitor: record a session file, alarms on stderr",
    "decode": "decode raw device bytes to JSON lines",
    "simulate": "serve or write a simulated monitor's byte stream",
    "replay": "replay a session file or a raw capture",
    "train": "a simulated training session with instructor controls",
    "debrief": "debrief of a session file (training or real)",
    "verify": "check a session file's hash chain and signatures",
    "keys": "the installation's signing key: fingerprint, export, trust another's",
    "export": "export a session file (csv, jsonl, html, fhir, rems-json)",
    "scenarios": "list the simulator's scenarios",
    "protocols": "list the protocol templates",
    "ports": "list serial ports",
    "config": "print the effective settings and where each came from",
    "course": "every session of one patient: the course and its outcomes",
    "rems": "esketamine REMS forms due, and marking one filed",
    "board": "every chair on one screen (in one process, or through an MQTT broker)",
}

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]


def _module(name: str) -> ModuleType:  # noqa: PLR0911 - one plain import per command
    """The module of sub-command ``name``, imported now. Deliberately lazy (start-up time of
    the console), and spelled out so the import graph (import-linter) sees each command."""
    if name == "run":
        from chairside.commands import run
        return run
    if name == "record":
        from chairside.commands import record
        return record
    if name == "decode":
        from chairside.commands import decode
        return decode
    if name == "simulate":
        from chairside.commands import simulate
        return simulate
    if name == "replay":
        from chairside.commands import replay
        return replay
    if name == "train":
        from chairside.commands import train
        return train
    if name == "debrief":
        from chairside.commands import debrief
        return debrief
    if name == "verify":
        from chairside.commands import verify
        return verify
    if name == "keys":
        from chairside.commands import keys
        return keys
    if name == "export":
        from chairside.commands import export
        return export
    if name == "scenarios":
        from chairside.commands import scenarios
        return scenarios
    if name == "protocols":
        from chairside.commands import protocols
        return protocols
    if name == "ports":
        from chairside.commands import ports
        return ports
    if name == "course":
        from chairside.commands import course
        return course
    if name == "rems":
        from chairside.commands import rems
        return rems
    if name == "board":
        from chairside.commands import board
        return board
    if name == "config":
        from chairside.commands import config
        return config
    raise KeyError(name)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chairside",
        description="Chairside: the ketamine infusion chairside console. "
        "With no command, opens the console on the built-in simulated monitor.",
    )
    parser.add_argument("--version", action="version", version=f"chairside {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            mod = _module(name)
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
