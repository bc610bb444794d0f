"""``chairside simulate``: write or serve a simulated monitor's byte stream.

Owns: the options and output of the ``simulate`` command:
``--scenario NAME --driver D [--seed N] [--duration S] [--speed X] (--out FILE | --pty | --tcp PORT)``.
``--out`` writes the bytes at once (not paced; ``-`` = stdout), as the device's plain bytes
or, with ``--format csraw``, as a CSRAW1 raw capture (each one-second chunk with its
simulated receive time, what ``record --raw`` would have kept); ``--pty`` prints the
device path on stdout (``chairside run --port <path>`` reads it like a real monitor);
``--tcp`` serves 127.0.0.1:PORT (prints ``127.0.0.1:PORT``). A summary goes to stderr.
``--speed`` takes a number or ``max`` like ``record``/``replay`` (bounds in data/commands.toml);
``--out`` is written unpaced whatever the speed, and a served monitor is paced, so ``max``
there is refused with one line (give a number). ``--duration`` is at most the maximum in
data/commands.toml. ``--out`` follows ``export``'s rules (``chairside.store.private``):
a device or FIFO is written in place, a folder, symbolic link or a path that cannot be
created exits 2, a write that fails on the way exits 1.
Imports the simulator (``simulators.api``, heavy: numpy) inside ``run`` so the other
commands, and the console on a real port, never load numpy.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from chairside.commands._common import DRIVERS, UsageError, check_duration, parse_speed_option, simulator_api
from chairside.domain.clock import WallClock
from chairside.store.private import OutputRefused, open_private_bytes, open_private_text, output_kind
from chairside.transport import CaptureError, CaptureWriter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", required=True, help="scenario name (see `chairside scenarios`) or a .toml path")
    parser.add_argument("--driver", required=True, choices=DRIVERS, help="protocol the simulated device speaks")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="simulated seconds (default: the scenario's duration)")
    parser.add_argument("--speed", default="1", metavar="X|max",
                        help="time scale for --pty/--tcp (2 = twice real time); --out is unpaced (max)")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", metavar="FILE", help="write the byte stream to FILE ('-' = stdout), unpaced")
    out.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal; prints its path")
    out.add_argument("--tcp", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT (0 = any free port)")
    parser.add_argument("--format", choices=["raw", "csraw"], default="raw",
                        help="--out as the device's plain bytes (raw, default) or as a CSRAW1 raw capture "
                             "(every chunk with its simulated receive time, as `record --raw` writes)")
    parser.add_argument("--start", metavar="ISO",
                        help="device clock at simulated time 0 (default: fixed for --out, wall clock when serving)")
    parser.add_argument("--no-noise", action="store_true", help="no variability: the mean trajectory")
    parser.add_argument("--autostart", action="store_true",
                        help="ge-s5 when serving: stream without waiting for the host's request record")
    parser.add_argument("--events-out", metavar="FILE", help="write the run's event log (JSON lines) to FILE")


def run(args: argparse.Namespace) -> int:
    check_duration(args.duration)
    speed = parse_speed_option(args.speed)
    if speed is None and args.out is None:
        raise UsageError("--speed max: a served monitor is paced; give a number (e.g. --speed 60), "
                         "or write the stream unpaced with --out")
    if args.tcp is not None and not 0 <= args.tcp <= 65535:
        raise UsageError(f"--tcp: {args.tcp} is not a port number")
    start = None
    if args.start:
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError:
            raise UsageError(f"--start: not an ISO 8601 time: {args.start!r}") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)

    sim_api = simulator_api()  # numpy: only the commands that simulate load it
    serving = args.out is None
    try:
        sim = sim_api.simulation(args.scenario, args.driver, args.seed,
                                 start=start or (WallClock().now() if serving else None),
                                 speed=1.0 if speed is None else speed,
                                 noise=not args.no_noise, auto_request=not serving or args.autostart)
    except sim_api.ScenarioError as exc:
        raise UsageError(str(exc)) from None
    duration = float(args.duration if args.duration is not None else sim.scenario.duration_s)
    if serving:
        _stop_on_sigterm()
    if args.format == "csraw" and args.out is None:
        raise UsageError("--format csraw is for --out FILE")
    if args.out is not None:
        try:
            if args.out != "-":
                output_kind(args.out)  # a folder, a link, a missing folder: refused before any work
            if args.format == "csraw":
                stats = _write_csraw(sim, duration, args.out, args.driver)
            else:
                stats = _write(sim, duration, args.out)
        except OutputRefused as exc:
            raise UsageError(f"--out {exc}") from None
        except BrokenPipeError:
            raise
        except OSError as exc:
            print(f"chairside simulate: --out {args.out}: write failed ({exc.strerror or exc})", file=sys.stderr)
            return 1
    elif args.pty:
        stats = sim_api.serve_pty(sim, duration_s=duration, on_ready=_ready)
    else:
        try:
            stats = sim_api.serve_tcp(sim, args.tcp, duration_s=duration, on_ready=_ready)
        except OSError as exc:
            raise UsageError(f"--tcp {args.tcp}: cannot listen on 127.0.0.1: {exc.strerror or exc}") from None
    if args.events_out:
        try:
            with open_private_text(args.events_out) as fh:
                for e in sim.events:
                    fh.write(json.dumps(e.as_dict()) + "\n")
        except OutputRefused as exc:
            raise UsageError(f"--events-out {exc}") from None
        except OSError as exc:
            print(f"chairside simulate: --events-out {args.events_out}: write failed ({exc.strerror or exc})",
                  file=sys.stderr)
            return 1
    print(f"chairside simulate: scenario {sim.scenario.name}, driver {args.driver}, seed {sim.seed}, "
          f"{sim.t:.0f} s simulated, {stats.get('sent', 0)} bytes sent"
          + (f", {stats['dropped']} dropped" if stats.get("dropped") else ""), file=sys.stderr)
    return 0


def _stop_on_sigterm() -> None:
    """SIGTERM ends a server like Ctrl-C: the pty / socket is closed and the summary printed."""

    def _interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _ready(where: str) -> None:
    print(where, flush=True)


def _write(sim: Any, duration: float, out: str) -> dict[str, int]:
    sent = 0
    target = nullcontext(sys.stdout.buffer) if out == "-" else open_private_bytes(out)
    with target as fh:
        while sim.t < duration - 1e-9:
            data = sim.advance(min(60.0, duration - sim.t))
            if data:
                fh.write(data)
                sent += len(data)
        fh.flush()
    return {"sent": sent}


CSRAW_STEP_S = 1.0  # simulated seconds per chunk of a CSRAW1 capture (a serial read burst a second)


def _write_csraw(sim: Any, duration: float, out: str, driver: str) -> dict[str, int]:
    """The simulated stream as a CSRAW1 capture: one chunk per simulated second, stamped with
    the simulated time at its end (the device clock the simulator runs on)."""
    if out == "-":
        raise UsageError("--format csraw needs a file for --out, not standard output")
    sent = 0
    try:
        writer = CaptureWriter(out, driver=driver, start=sim.wall_time(0.0),
                               port=f"simulate://{sim.scenario.name}?seed={sim.seed}", monotonic_origin=0.0)
    except (CaptureError, OSError) as exc:
        raise UsageError(f"--out {out}: {exc}".splitlines()[0]) from None
    try:
        while sim.t < duration - 1e-9:
            data = sim.advance(min(CSRAW_STEP_S, duration - sim.t))
            if data:
                writer.write(sim.wall_time(), sim.t, data)
                sent += len(data)
    finally:
        writer.close()
    return {"sent": sent}
