"""``chairside debrief FILE [--format md|jsonl|html] [--out PATH]``: the debrief of any session
file (a training run scored against its scenario; any other session: its timeline and the
time to acknowledge each alarm).

Owns: the options and output of ``debrief``. Prints to stdout unless ``--out``. Exit 0; 2
when FILE is not a readable session file (one line saying what and where).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chairside.commands._common import UsageError
from chairside.reports.debrief import load_debrief, render
from chairside.store.private import write_private_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", type=Path, help="session file")
    parser.add_argument("--format", choices=["md", "jsonl", "html"], default="md",
                        help="markdown (default), JSON lines, or a self-contained HTML page with the chart")
    parser.add_argument("--out", type=Path, help="write to this file instead of stdout")


def run(args: argparse.Namespace) -> int:
    if not args.file.exists():
        raise UsageError(f"{args.file}: no such file")
    try:
        d = load_debrief(args.file, with_chart=args.format == "html")
    except ValueError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    text = render(d, args.format)
    if args.out is None:
        print(text, end="")
        return 0
    try:
        write_private_text(args.out, text)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
    return 0
