"""``chairside export FILE --format csv|jsonl|html|fhir|rems-json [--out PATH] [--all]``.

Owns: the csv and jsonl exports (csv: a first line ``# Chairside session <id>; last event
hash <hash>; signed by installation key <fingerprint>`` (or ``UNSIGNED ...``) naming where
the rows come from, then one row per reading with columns ``t, param, value, unit, valid,
flags, source, device_time, receive_time`` -- read it with ``comment="#"`` in pandas, or skip
one line; jsonl: one event per line in
canonical JSON, readings included) and dispatch of the report formats to
``chairside.reports.html`` / ``fhir`` / ``rems`` (their ``export(path,
out)``), which exit 2 "format not available" when the module is absent.
The file is opened read-only and its chain verified first; a damaged or foreign file
exits 2 with one line. ``--out`` is refused (exit 2, nothing written) when it names the
session file itself, its ``-wal``/``-shm``/``-journal`` companions, or any other chairside
session file: an export never overwrites a record. A csv/jsonl ``--out`` is written to a
temporary file beside it and renamed into place, so a failed export (a full disk) leaves
any earlier file of that name as it was. ``--out`` is never replaced by something else:
a device or FIFO is written in place, a symbolic link, a folder or a socket is refused
(exit 2, nothing written; ``chairside.store.private`` says why links are refused), and a
path that cannot be created is bad input (exit 2). A write that fails on the way (a full
disk, ``/dev/full``) exits 1 with one line.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Callable
from typing import IO, Any, Iterator

from chairside.commands._common import UsageError
from chairside.reports import fhir, html, rems
from chairside.store import NotASessionFile, SessionFileError, read_session
from chairside.store.canonical import canonical_json
from chairside.store.private import OutputRefused, open_private_text, output_kind
from chairside.store.schema import sniff

CSV_COLUMNS = ["t", "param", "value", "unit", "valid", "flags", "source", "device_time", "receive_time"]
# format -> the report module's export(path, out) -> the path written
REPORTS: dict[str, Callable[..., Path]] = {"html": html.export, "fhir": fhir.export,
                                                           "rems-json": rems.export}
REPORT_SUFFIX = {"html": ".html", "fhir": ".fhir.json", "rems-json": ".rems.json"}  # the exporters' defaults
FORMATS = ["csv", "jsonl", *REPORTS]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="session file")
    parser.add_argument("--format", required=True, choices=FORMATS, help="output format")
    parser.add_argument("--out", metavar="PATH", help="output file (csv/jsonl default: stdout)")
    parser.add_argument("--all", action="store_true",
                        help="fhir: an Observation for every reading (default: every NIBP, every reading that "
                             "took part in an alarm, and per-minute summaries of the continuous parameters)")


def _iso(dt: Any) -> str:
    if dt is None:
        return ""
    s = dt.isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def _num(v: float | None) -> str:
    if v is None:
        return ""
    return repr(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def write_csv(events: list[Any], out: IO[str], provenance: str | None = None) -> int:
    if provenance:
        out.write("# " + " ".join(provenance.split()) + "\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    n = 0
    for e in events:
        if e.kind != "readings_recorded":
            continue
        for r in e.readings:
            w.writerow([_iso(r.time), r.param, _num(r.value), r.unit, "true" if r.valid else "false",
                        ";".join(r.flags), r.source, _iso(r.device_time), _iso(r.receive_time)])
            n += 1
    return n


def write_jsonl(events: list[Any], out: IO[str]) -> int:
    for e in events:
        out.write(canonical_json(e.model_dump(mode="json")).decode("utf-8") + "\n")
    return len(events)


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    with open_private_text(path) as f:  # 0600, like the session file; appears only when complete
        yield f


def refuse_overwriting_a_record(session: Path, out: Path) -> None:
    """UsageError when ``out`` is the session file, one of its SQLite companions, or any
    other chairside session file (an export must never destroy a record)."""
    own = [session] + [session.with_name(session.name + s) for s in ("-wal", "-shm", "-journal")]
    for p in own:
        same = os.path.abspath(p) == os.path.abspath(out)
        if not same and out.exists() and p.exists():
            try:
                same = os.path.samefile(p, out)
            except OSError:
                same = False
        if same:
            what = "the session file being exported" if p == session else \
                f"the {p.name[len(session.name):]} file of the session file being exported ({session})"
            raise UsageError(f"--out {out} is {what}; refusing to overwrite it")
    if out.is_file():
        try:
            sniff(out)
        except NotASessionFile:
            return
        raise UsageError(f"--out {out} is a chairside session file; refusing to overwrite it")


def _write_failed(out: Any, exc: OSError) -> int:
    """A write that failed on the way: exit 1, one line (the check of the output failed)."""
    regular = out is not None and os.path.isfile(out) and not os.path.islink(out)
    print(f"chairside export: {out}: write failed ({exc.strerror or exc})"
          + ("; the earlier file of that name is as it was" if regular else ""), file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    out_path = Path(args.out) if args.out else None
    if args.format in REPORTS and out_path is None:
        # the report's own default beside the file, never the file itself (a session named *.html)
        suffix = REPORT_SUFFIX[args.format]
        out_path = path.with_suffix(suffix)
        if os.path.abspath(out_path) == os.path.abspath(path):
            out_path = path.with_name(path.name + suffix)
    if out_path is not None:
        refuse_overwriting_a_record(path, out_path)
        try:
            output_kind(out_path)
        except OutputRefused as exc:
            raise UsageError(f"--out {exc}") from None
    if args.format in REPORTS:
        if args.all and args.format != "fhir":
            raise UsageError(f"--all is for --format fhir ({args.format} keeps every reading as it is)")
        try:
            written = REPORTS[args.format](path, out_path, **({"all_readings": True} if args.all else {}))
        except (SessionFileError, FileNotFoundError, ValueError) as exc:
            # the exporters raise ValueError for bad input (e.g. REMS form of an IV session)
            raise UsageError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        except OSError as exc:
            return _write_failed(out_path, exc)
        print(f"wrote {written}", file=sys.stderr)
        return 0
    try:
        record = read_session(path)
    except SessionFileError as exc:
        raise UsageError(str(exc)) from None
    events = record.events
    sid = getattr(events[0], "session_id", "?") if events else "?"
    provenance = f"Chairside session {sid}; last event hash {record.last_hash}" + (
        f"; {record.verified.signing_text()}" if record.verified is not None else "")
    try:
        with _output(args.out) as out:
            n = write_csv(events, out, provenance) if args.format == "csv" else write_jsonl(events, out)
    except BrokenPipeError:
        raise
    except ValueError as exc:  # OutputRefused: changed between the check and the write
        raise UsageError(f"--out {exc}") from None
    except OSError as exc:
        return _write_failed(args.out, exc)
    what = "readings" if args.format == "csv" else "events"
    print(f"exported {n} {what} from {path}" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return 0
