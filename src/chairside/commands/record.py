"""``chairside record``: the headless monitor — same service, no UI; writes the session
file; alarms printed as lines on stderr.

Owns: the options of ``record``. Alarm events are printed on stderr as they are recorded,
worded by ``chairside.domain.describe.alarm_log_line``::

    2026-01-01T09:25:00Z *** Systolic BP high: 188 >= 180; HIGH physiological alarm sbp_high#1, SBP 188 (limit 180 [S])
    2026-01-01T09:25:30Z *** Alarm dbp_high#2 low → high: beyond the high limit 110 [S]
    2026-01-01T09:25:40Z Alarm sbp_high#1 acknowledged by AB
    2026-01-01T09:27:00Z Alarm sbp_high#1 cleared

A new file is opened with the given patient ID and weight (without ``--weight`` the
weight is recorded as not given: 70 kg, source "stated", and a note says so); an existing
file is resumed (a ``session_resumed`` event records the gap; a simulated monitor continues
from the record's last time). At the end (``--duration`` reached, Ctrl-C, SIGTERM or SIGHUP) the
session is closed with the reason.
Exit 0; 1 when the session file could not keep everything (a full disk that did not
recover: what is lost is said on stderr, as is every change of the file's state while
recording); 2 on bad usage (unknown driver or protocol, a port that can never open, an
unusable session file).

With a ``sim://`` port the session runs on the simulator's clock (its times match the
simulated physiology at any ``speed``), served on 127.0.0.1 and read through pyserial;
``speed=max`` steps it in process as fast as it goes (``--duration`` then counts simulated
seconds, and is required).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from chairside.commands._common import (
    DRIVERS,
    UsageError,
    check_duration,
    load_settings,
    open_raw_capture,
    sim_port_options,
    simulated_monitor,
)
from chairside.domain.clock import Clock, WallClock
from chairside.board.options import BrokerOptionError, add_publish_arguments, publisher_for
from chairside.domain.describe import alarm_log_line
from chairside.service import CommandRefused, MonitorService
from chairside.store import SessionFileError, read_session
from chairside.training import InProcessMonitor
from chairside.transport import port_warning

PLACEHOLDER_WEIGHT_KG = 70.0  # recorded with source "stated" and a note when --weight is not given


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="monitor port URL (sim://..., socket://..., /dev/tty...)")
    parser.add_argument("--driver", required=True, choices=DRIVERS)
    parser.add_argument("--session", required=True, type=Path, help="session file (resumed if it exists)")
    parser.add_argument("--protocol", help="protocol template (default from the settings)")
    parser.add_argument("--limits", type=Path, metavar="FILE",
                        help="limits file (TOML) for the alarm engine (default: the setting `limits`, else the "
                             "protocol template's profile); a bad file is refused naming the file and the entry")
    parser.add_argument("--duration", type=float, help="seconds to record (default: until Ctrl-C)")
    parser.add_argument("--patient", default="HEADLESS", help="pseudonymous patient ID for a new file")
    parser.add_argument("--weight", type=float, help="patient weight in kg for a new file")
    parser.add_argument("--staff", default="SYS", help="initials recorded as the author")
    parser.add_argument("--raw", type=Path, metavar="FILE",
                        help="also keep every received byte with its receive time (a raw capture, "
                             "for `chairside replay`); an existing capture gets a new segment")
    parser.add_argument("--quiet", action="store_true", help="no summary line at the end")
    add_publish_arguments(parser)


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    err = out or sys.stderr
    settings = load_settings(limits=args.limits)
    check_duration(args.duration)
    clock: Clock = WallClock()
    port = args.port
    sim_run = None
    in_process = False
    duration = args.duration
    scenario = seed = None
    if port.startswith("sim://"):
        # the simulated monitor runs on its own clock: every time stamp matches the physiology
        opts = sim_port_options(port)
        if opts["driver"] != args.driver:
            raise UsageError(f"--driver {args.driver} but the port says driver={opts['driver']}")
        in_process = opts["speed"] == float("inf")
        if opts["duration"] is not None:
            duration = opts["duration"] if duration is None else min(duration, opts["duration"])
        if in_process and duration is None:
            raise UsageError("speed=max needs a duration (--duration S or duration= in the port URL)")
        start = opts["start"]
        last = _last_recorded_time(args.session)
        if last is not None:  # a resumed simulated session continues its clock: time never runs backwards
            start = max(start or WallClock().now(), last)
        sim_run = simulated_monitor(opts["scenario"], args.driver, opts["seed"], opts["speed"], noise=opts["noise"],
                                    start=start, served=not in_process)
        clock, scenario, seed = sim_run.clock, sim_run.scenario.name, sim_run.seed
        port = "" if in_process else sim_run.port_url
    try:
        raw = open_raw_capture(args.raw, args.driver, port or args.port, clock)
    except UsageError:
        if sim_run is not None:
            sim_run.stop()
        raise
    try:
        svc = MonitorService(clock=clock, port=port, driver=args.driver, protocol=args.protocol,
                             settings=settings, simulated=sim_run is not None, scenario=scenario, sim_seed=seed,
                             raw_capture=raw)
    except (CommandRefused, ValueError) as exc:
        if raw is not None:
            raw.close()
        if sim_run is not None:
            sim_run.stop()
        raise UsageError(str(exc).splitlines()[0]) from None
    exposure = port_warning(port or "")
    if exposure:  # listen:// on a non-loopback address: say what it exposes before listening
        print(f"chairside record: {exposure}", file=err, flush=True)

    def on_event(ev: Any) -> None:
        line = alarm_log_line(ev)
        if line:
            print(line, file=err, flush=True)

    svc.subscribe_events(on_event)
    store_state = {"warned": ""}

    def on_snapshot(snap: Any) -> None:
        st = snap.device.store
        text = st.message if st.warning else ""
        if text != store_state["warned"]:
            store_state["warned"] = text
            print(f"chairside record: SESSION FILE PROBLEM: {text}" if text
                  else "chairside record: the session file is recording again", file=err, flush=True)

    svc.subscribe(on_snapshot)
    try:
        publisher = publisher_for(args, svc)
    except BrokerOptionError as exc:
        if sim_run is not None:
            sim_run.stop()
        raise UsageError(str(exc)) from None
    try:
        if args.session.exists():
            svc.resume_session(args.session)
        else:
            weight = args.weight if args.weight is not None else PLACEHOLDER_WEIGHT_KG
            svc.open_session(patient_id=args.patient, weight_kg=weight, staff=[args.staff],
                             weight_source="measured" if args.weight is not None else "stated",
                             path=args.session)
            if args.weight is None:
                svc.add_note(author=args.staff, text=f"headless recording: weight not given "
                                                     f"({PLACEHOLDER_WEIGHT_KG:g} kg recorded as a placeholder)")
    except CommandRefused as exc:
        if sim_run is not None:
            sim_run.stop()
        raise UsageError(str(exc)) from None
    svc.start()
    reason = "recording ended"
    previous = {sig: signal.signal(sig, _stop_on_signal) for sig in STOP_SIGNALS}
    try:
        if in_process:
            InProcessMonitor(sim_run, svc, raw=raw).run(duration)
        else:
            # the session clock: wall time for a monitor, simulated time for the simulator
            end = None if duration is None else clock.monotonic() + duration
            while end is None or clock.monotonic() < end:
                time.sleep(0.2 if end is None else max(0.01, min(0.2, (end - clock.monotonic()) /
                                                                  (sim_run.speed if sim_run else 1.0))))
        reason = f"record: {duration:g} s reached" if duration is not None else reason
    except KeyboardInterrupt:
        reason = "record: interrupted"
    except StopSignal as sig:
        reason = f"record: stopped by {sig.name}"
    finally:
        for sig in STOP_SIGNALS:  # a second signal must not cut the close short
            signal.signal(sig, signal.SIG_IGN)
        if sim_run is not None:
            sim_run.stop()  # the simulated monitor first: its clock stops with it
        svc.stop()
        if raw is not None:
            raw.close()
        snap = svc.snapshot()
        try:
            svc.close_session(author=args.staff, reason=reason)
        except CommandRefused as exc:
            print(f"chairside record: {exc}", file=err)
        if publisher is not None:
            publisher.stop()  # the closed session's state went out with the last snapshot
        end = svc.snapshot().device.store
        lost = end.state in ("memory", "degraded")
        if not args.quiet:
            print(f"chairside record: {snap.device.store.readings} readings, {snap.device.store.events} events, "
                  f"{len(snap.alarms)} alarm(s) active at the end; link {snap.device.link_state}; "
                  f"file {args.session}", file=err)
        if lost:
            print(f"chairside record: NOT EVERYTHING IS IN {args.session}: {end.message or end.state}", file=err)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if lost else 0


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class StopSignal(Exception):
    """SIGTERM or SIGHUP while recording: the session is closed with the signal as its reason."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _stop_on_signal(signum: int, _frame: Any) -> None:
    raise StopSignal(signal.Signals(signum).name)


def _last_recorded_time(path: Path) -> datetime | None:
    """The time of the last event of an existing session file (None: no file, or unreadable;
    the resume then says what is wrong)."""
    if not path.exists():
        return None
    try:
        return read_session(path).events[-1].t
    except (SessionFileError, OSError, IndexError):
        return None
