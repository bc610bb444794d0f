"""``chairside replay FILE [--driver D] [--speed X|max] [--headless] [--session OUT]``.

Owns: the options and output of ``replay``. FILE is a session file or a raw capture
(``--raw`` of ``run``/``record``); a capture's bytes go through its driver exactly as they
were received. The engine recomputes the alarms from the recorded readings and compares
them with the alarms recorded at the time. ``--session OUT`` records what the replay reads
and the alarms it raises into a new session file.

Without ``--headless`` the console opens read-only on the replay (banner, session clock,
speed, seek and jump keys). With ``--headless`` a summary is printed (``--json``: one JSON
object) and the command exits; a progress bar (rich) shows on a terminal. Exit 0; 1 with
``--check`` when recomputed and recorded alarms differ; 2 on bad usage or a file that
cannot be replayed (one line saying what and where).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from chairside.commands._common import (
    DRIVERS,
    load_replayer,
    load_settings,
    parse_speed_option,
    replay_console,
)
from chairside.replay import Replayer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", type=Path, help="session file or raw capture")
    parser.add_argument("--driver", choices=DRIVERS,
                        help="driver of a raw capture (default: the one named in the capture)")
    parser.add_argument("--speed", default=None,
                        help="1, 2, 4, 8, 16, 60 ... x real time, or max (default: max headless, 1 on screen)")
    parser.add_argument("--headless", action="store_true", help="no console: print a summary and exit")
    parser.add_argument("--session", type=Path, metavar="OUT",
                        help="record the replayed readings and the recomputed alarms into a new session file")
    parser.add_argument("--protocol", help="protocol template (limits) to replay with (default: the recorded one)")
    parser.add_argument("--phase", choices=["pre_infusion", "infusion", "recovery"], default=None,
                        help="phase to assume for a raw capture, which has no infusion record "
                             "(default: infusion)")
    parser.add_argument("--json", action="store_true", help="headless: print the summary as one JSON object")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the recomputed alarms differ from the recorded ones")
    parser.add_argument("--differences", action="store_true", help="headless: list every difference")


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parse_speed_option(args.speed)  # a bad --speed is refused before anything is read
    started = time.perf_counter()
    settings = load_settings()
    replayer = load_replayer(args)
    if args.headless:
        return _headless(args, replayer, out, err, started)
    return replay_console(replayer, settings, parse_speed_option(args.speed, 1.0))


def _headless(args: argparse.Namespace, replayer: Replayer, out: TextIO, err: TextIO, t0: float) -> int:
    speed = parse_speed_option(args.speed)
    try:
        if speed is None:
            _with_progress(replayer, err)
        else:
            step = 0.1
            while not replayer.finished:
                replayer.advance_to(replayer.position + timedelta(seconds=step * speed))
                time.sleep(step)
    except KeyboardInterrupt:
        print("chairside replay: interrupted", file=err)
    finally:
        replayer.close()
    wall = time.perf_counter() - t0
    summary = replayer.summary()
    import resource  # POSIX only: the replay itself runs anywhere

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    summary["wall_s"] = round(wall, 3)
    summary["peak_rss_mib"] = round(peak_kib / 1024, 1)
    diffs = replayer.differences(until=replayer.end)
    if args.json:
        summary["difference_list"] = [d.line(replayer.start) for d in diffs]
        print(json.dumps(summary, sort_keys=True), file=out)
    else:
        for line in summary_lines(summary):
            print(line, file=out)
        shown = diffs if args.differences else diffs[:20]
        for d in shown:
            print("  " + d.line(replayer.start), file=out)
        if len(diffs) > len(shown):
            print(f"  ... {len(diffs) - len(shown)} more (--differences lists them all)", file=out)
    return 1 if (args.check and diffs) else 0


def summary_lines(s: dict[str, Any]) -> list[str]:
    dur = s["duration_s"]
    h, rem = divmod(int(round(dur)), 3600)
    alarms = s["alarms_recomputed"]
    lines = [
        f"replay of {s['file']} ({s['source']}{', ' + s['driver'] if s['driver'] else ''}; "
        f"protocol {s['protocol']})",
        f"duration   {h:d} h {rem // 60:02d} min {rem % 60:02d} s ({s['start']} to {s['end']})",
        f"readings   {s['readings']}",
        "alarms     recomputed: " + ", ".join(f"{alarms[p]} {p}" for p in ("high", "medium", "low")),
    ]
    if s["alarms_recorded"] is not None:
        rec = s["alarms_recorded"]
        lines.append("           recorded:   " + ", ".join(f"{rec[p]} {p}" for p in ("high", "medium", "low")))
        lines.append(f"           differences between recomputed and recorded alarm events: {s['differences']}")
    events = s["events"]
    lines.append("events     " + (", ".join(f"{n} {k.replace('_', ' ')}" for k, n in events.items()) or "none"))
    for p in s["problems"]:
        lines.append(f"problem    {p}")
    if s.get("session_out"):
        lines.append(f"recorded   {s['session_out']}")
    if "wall_s" in s:
        lines.append(f"took       {s['wall_s']:.2f} s, peak memory {s['peak_rss_mib']:.0f} MiB")
    return lines


def _with_progress(replayer: Replayer, err: TextIO) -> None:
    if not (hasattr(err, "isatty") and err.isatty()):
        replayer.run_to_end()
        return
    with Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=Console(file=err), transient=True) as bar:
        task = bar.add_task("replay", total=1.0)
        replayer.run_to_end(step_s=300.0, progress=lambda f: bar.update(task, completed=f))
