"""``chairside verify FILE``: check a session file's hash chain, readings digests and head.

Owns: the output and exit codes of ``verify``: exit 0 and ``ok: N events, last hash H``
when intact; exit 1 and a line naming the first bad event; exit 2 (one line on stderr)
when FILE is not a chairside session file. ``--json`` prints the result as one object.
"""

from __future__ import annotations

import argparse
import json
import sys

from chairside.commands._common import UsageError
from chairside.store import SessionFileError, verify


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="session file to check")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        result = verify(args.file)
    except SessionFileError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({
            "ok": result.ok, "count": result.count, "first_bad_seq": result.first_bad_seq,
            "reason": result.reason, "last_hash": result.last_hash, "closed": result.closed,
            "session_id": result.session_id,
        }, sort_keys=True))
    else:
        print(f"{args.file}: {result.line()}" if not result.ok else result.line())
        if result.ok and not result.closed:
            print("note: the session has no session_closed event (still recording, or recording was "
                  "interrupted); everything recorded so far verifies", file=sys.stderr)
    return 0 if result.ok else 1
