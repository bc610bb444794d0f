"""``chairside rems [--folder DIR]``: esketamine sessions whose REMS Patient Monitoring Form
is not marked filed, with the calendar days left of its window (overdue in red);
``chairside rems --filed FILE --by INITIALS [--reference TEXT]``: record that the form of
that session was filed (a ``rems_form_filed`` event appended to its record, chained like
any event).

Owns: the options and output of ``rems``. The window comes from ``data/outcomes.toml``
([P] 7 days). ``--filed`` on a session that is not esketamine, on a training run, or on one
already filed is refused with the reason (exit 2); a damaged file is refused as ``verify``
would name it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from chairside.commands._common import UsageError, load_settings
from chairside.domain.clock import WallClock
from chairside.domain.events import RemsFormFiled
from chairside.reports.course import outcomes_data, rems_due, summarize
from chairside.reports.course_index import CourseError, CourseIndex
from chairside.store import SessionFile, SessionFileError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folder", type=Path, help="session folder (default: the settings' session folder)")
    parser.add_argument("--filed", type=Path, metavar="FILE", help="mark this session's REMS form as filed")
    parser.add_argument("--by", metavar="INITIALS", help="who filed it (with --filed)")
    parser.add_argument("--reference", default="", help="the submission's reference (with --filed)")
    parser.add_argument("--today", type=date.fromisoformat, help=argparse.SUPPRESS)  # tests: the calendar day


def run(args: argparse.Namespace) -> int:
    if args.filed is not None:
        return _file(args)
    if args.by or args.reference:
        raise UsageError("--by and --reference go with --filed FILE")
    return _list(args)


def _list(args: argparse.Namespace) -> int:
    folder = args.folder or load_settings(diagnostics=False).session_dir
    try:
        with CourseIndex(folder) as index:
            summaries = index.refresh()
            drugs = set(outcomes_data()["rems"]["drugs"])  # the rows that may be listed are checked against their heads
            due = [s for s in summaries if s.drug in drugs and not s.rems_filed]
            summaries = index.confirm(due) + [s for s in summaries if not (s.drug in drugs and not s.rems_filed)]
    except CourseError as exc:
        raise UsageError(str(exc)) from None
    today = args.today or WallClock().now().astimezone().date()  # the clinic's calendar day
    due = rems_due(summaries, today)
    red = sys.stdout.isatty()
    for d in due:
        left = d["days_left"]
        state = f"OVERDUE by {-left} day{'s' if -left != 1 else ''}" if left < 0 else f"{left} day{'s' if left != 1 else ''} left"
        if left < 0 and red:
            state = f"\x1b[1;31m{state}\x1b[0m"
        print(f"{d['date']}  {d['patient_id']:<14} {state:<22} {d['path']}")
    print(f"{len(due)} REMS form{'s' if len(due) != 1 else ''} due"
          + (f", {sum(1 for d in due if d['overdue'])} overdue" if due else ""), file=sys.stderr)
    return 0


def _file(args: argparse.Namespace) -> int:
    if not args.by or not args.by.strip():
        raise UsageError("--filed needs --by INITIALS (who filed the form)")
    s = summarize(args.filed)
    if s.status != "ok":
        raise UsageError(s.error or f"{args.filed}: cannot be read")
    drugs = outcomes_data()["rems"]["drugs"]
    if s.drug not in drugs:
        raise UsageError(f"{args.filed}: a {s.drug or 'non-esketamine'} session ({s.protocol}); the REMS form is "
                         f"for {', '.join(drugs)} sessions only")
    if s.training:
        raise UsageError(f"{args.filed}: a training run; no REMS form is filed for it")
    if s.rems_filed:
        raise UsageError(f"{args.filed}: the REMS form was already marked filed (by {s.rems_filed_by})")
    clock = WallClock()
    try:
        with SessionFile.open(args.filed, clock) as f:
            now = clock.now()
            opened = f.opened.t
            ev = f.append(RemsFormFiled(t=now, mono=max(0.0, (now - opened).total_seconds()),
                                        author=args.by.strip(), by=args.by.strip(), reference=args.reference))
    except SessionFileError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    print(f"{args.filed}: REMS form marked filed by {ev.by} (event #{ev.seq})")
    return 0
