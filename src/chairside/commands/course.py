"""``chairside course PATIENT_ID [--folder DIR] [--format table|json|html|csv] [--out FILE]``:
every session of one pseudonym, in time order, with the outcomes across the course.

Owns: the options and output of ``course``. The folder (default: the settings' session
folder) is read through its index (``chairside.reports.course_index``); a damaged or
unverifiable file is listed as such, never skipped. An unknown patient is exit 2 naming
the pseudonyms nearby (by edit distance); an unreadable folder is one line, exit 2.
``--verify-index`` checks the index against the files (exit 1 and a line per mismatch).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from chairside.commands._common import UsageError, load_settings
from chairside.reports.course import course_rows, render
from chairside.reports.course_index import CourseError, CourseIndex
from chairside.store.private import write_private_text

FORMATS = ("table", "json", "html", "csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("patient_id", metavar="PATIENT_ID", nargs="?", help="the patient's pseudonym")
    parser.add_argument("--folder", type=Path, help="session folder (default: the settings' session folder)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.add_argument("--out", type=Path, help="write to FILE (0600) instead of stdout")
    parser.add_argument("--verify-index", action="store_true", help="check the folder's index against its files")


def nearby(pid: str, known: list[str], n: int = 5) -> list[str]:
    return difflib.get_close_matches(pid, sorted(set(known)), n=n, cutoff=0.5)


def run(args: argparse.Namespace) -> int:
    folder = args.folder or load_settings(diagnostics=False).session_dir
    try:
        with CourseIndex(folder) as index:
            summaries = index.refresh()
            if args.patient_id:  # the rows shown are checked against their files' heads
                summaries = index.confirm([s for s in summaries if s.patient_id == args.patient_id]) + [
                    s for s in summaries if s.patient_id != args.patient_id]
            if args.verify_index:
                problems = index.verify()
                for p in problems:
                    print(p)
                if not problems:
                    print(f"{folder}: index ok ({len(summaries)} files)")
                return 1 if problems else 0
    except CourseError as exc:
        raise UsageError(str(exc)) from None
    if not args.patient_id:
        raise UsageError("give the patient's pseudonym: chairside course PATIENT_ID")
    rows = course_rows(summaries, args.patient_id)
    damaged = [s for s in summaries if s.status != "ok"]
    if not rows:
        known = [s.patient_id for s in summaries if s.patient_id]
        near = nearby(args.patient_id, known)
        hint = f"; nearby: {', '.join(near)}" if near else (
            f"; {len(set(known))} patients in the folder" if known else "; the folder has no readable sessions")
        raise UsageError(f"no sessions of patient {args.patient_id!r} in {folder}{hint}")
    text = render(args.patient_id, rows, damaged, args.format)
    if args.out:
        try:
            write_private_text(args.out, text)
        except OSError as exc:
            raise UsageError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
        print(f"course: {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
