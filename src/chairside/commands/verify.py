"""``chairside verify FILE [--key PEM]... [--allow-unsigned] [--json]``: check a session file.

Owns: the output and exit codes of ``verify``. It checks the hash chain, the readings
digests, the head, every commit's signature, and that the keys that signed are trusted
here (this installation's own key, the PEM files in the trusted keys folder, or ``--key``).

- exit 0: intact and signed by trusted keys; stdout ``ok: N events, last hash H`` then
  ``signed: by <fingerprint> (<why trusted>); S commit signatures checked``;
- exit 1: a check failed; one line ``FILE: FAILED: first bad event: event seq N: why`` names
  the first bad event (for a re-chained file: the first event after the last commit whose
  signature still matches) -- or, with an intact chain: ``FILE: UNTRUSTED: ...`` (signed, but
  by a key this installation does not know: anyone can sign with a key of their own) or
  ``FILE: UNSIGNED: ...``;
- exit 2 (one line on stderr): FILE is not a chairside session file, or a ``--key`` file
  cannot be read.

Unsigned files exit 1 unless ``--allow-unsigned``: a file written by this version is
always signed, so a missing signature means an older version wrote it or someone removed
the signature tables -- and removing them is exactly what a forger would do after
re-chaining. ``--allow-unsigned`` accepts files known to predate signing (it still prints
UNSIGNED, on stderr, and still fails a broken chain).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chairside.commands._common import UsageError
from chairside.keys import KeysError, trusted_keys
from chairside.store import SessionFileError, verify


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="session file to check")
    parser.add_argument("--key", metavar="PEM", action="append", default=[], type=Path,
                        help="also trust this public key (from `chairside keys --export`); repeatable")
    parser.add_argument("--allow-unsigned", action="store_true",
                        help="exit 0 for an intact file that carries no signature (written before signing)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        trusted = trusted_keys(list(args.key))
    except KeysError as exc:
        raise UsageError(str(exc)) from None
    try:
        result = verify(args.file)
    except SessionFileError as exc:
        raise UsageError(str(exc)) from None

    status = "ok"
    message = ""
    untrusted = [fp for fp in result.keys if fp not in trusted]
    if not result.ok:
        status = "failed"
        message = f"{args.file}: {result.line()}"
    elif not result.signed:
        status = "unsigned"
        message = (f"{args.file}: UNSIGNED: the chain is intact ({result.count} events, last hash "
                   f"{result.last_hash}) but the file carries no signature, so nothing shows which "
                   "installation wrote it or that it was not re-chained (an older chairside wrote it, or "
                   "its signatures were removed; --allow-unsigned accepts it)")
    elif untrusted:
        status = "untrusted"
        message = (f"{args.file}: UNTRUSTED: the chain and its {result.signatures} signatures are intact, "
                   f"but signed by key {', '.join(untrusted)}, which this installation does not trust "
                   "(get that installation's `chairside keys --export` file and pass --key FILE, or add it "
                   "with `chairside keys --trust FILE`)")
    code = 0 if status == "ok" or (status == "unsigned" and args.allow_unsigned) else 1
    if args.json:
        print(json.dumps({
            "ok": code == 0, "status": status, "count": result.count,
            "first_bad_seq": result.first_bad_seq, "reason": result.reason, "last_hash": result.last_hash,
            "closed": result.closed, "session_id": result.session_id, "signed": result.signed,
            "keys": [{"fingerprint": fp, "trusted": fp in trusted,
                      "source": trusted[fp].source if fp in trusted else ""} for fp in result.keys],
            "head_key": result.head_key, "signatures_checked": result.signatures,
        }, sort_keys=True))
        return code
    if status == "ok":
        print(result.line())
        print("signed: " + "; ".join(f"by {fp} ({trusted[fp].source})" for fp in result.keys)
              + f"; {result.signatures} commit signatures checked")
    elif status == "unsigned" and args.allow_unsigned:
        print(result.line())
        print(message, file=sys.stderr)
    else:
        print(message)
    if result.ok and not result.closed:
        print("note: the session has no session_closed event (still recording, or recording was "
              "interrupted); everything recorded so far verifies", file=sys.stderr)
    return code
