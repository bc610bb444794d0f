"""``chairside record``: the headless monitor — same service, no UI; writes the session
file; alarms printed as lines on stderr.

Owns: the options of ``record`` and the alarm line format on stderr::

    2026-01-01T09:25:00Z *** HIGH sbp_high#1 Systolic BP high: 188 >= 180 [S]
    2026-01-01T09:25:40Z ACK sbp_high#1 by AB
    2026-01-01T09:27:00Z CLEARED sbp_high#1

A new file is opened with the given patient ID and weight (without ``--weight`` the
weight is recorded as not given: 70 kg, source "stated", and a note says so); an existing
file is resumed. At the end (``--duration`` reached, or Ctrl-C) the session is closed.
Exit 0; 2 on bad usage (unknown driver or protocol, unusable session file).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

PLACEHOLDER_WEIGHT_KG = 70.0  # recorded with source "stated" and a note when --weight is not given


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="monitor port URL (sim://..., socket://..., /dev/tty...)")
    parser.add_argument("--driver", required=True, choices=["ge-s5", "masimo", "hl7"])
    parser.add_argument("--session", required=True, type=Path, help="session file (resumed if it exists)")
    parser.add_argument("--protocol", help="protocol template (default from the settings)")
    parser.add_argument("--duration", type=float, help="seconds to record (default: until Ctrl-C)")
    parser.add_argument("--patient", default="HEADLESS", help="pseudonymous patient ID for a new file")
    parser.add_argument("--weight", type=float, help="patient weight in kg for a new file")
    parser.add_argument("--staff", default="SYS", help="initials recorded as the author")
    parser.add_argument("--quiet", action="store_true", help="no summary line at the end")


def alarm_line(ev: Any) -> str | None:
    """One stderr line for an alarm event, None for other events."""
    t = ev.t.strftime("%Y-%m-%dT%H:%M:%SZ")
    k = ev.kind
    if k == "alarm_raised":
        mark = {"high": "***", "medium": "**", "low": "*"}.get(ev.priority, "*")
        cls = " TECH" if ev.alarm_class == "technical" else ""
        return f"{t} {mark} {ev.priority.upper()}{cls} {ev.alarm_id} {ev.message} {ev.source_tag}".rstrip()
    if k == "alarm_escalated":
        return f"{t} ESCALATED {ev.alarm_id} {ev.from_priority} -> {ev.to_priority}: {ev.reason}"
    if k == "alarm_acknowledged":
        return f"{t} ACK {ev.alarm_id} by {ev.by}"
    if k == "alarm_cleared":
        return f"{t} CLEARED {ev.alarm_id}" + (f" ({ev.reason})" if ev.reason else "")
    if k == "alarm_silenced" and ev.mode in ("audio_paused", "audio_off", "alarm_off", "reminder"):
        return f"{t} {ev.mode.upper()} {ev.alarm_id}" + (f" by {ev.by}" if ev.by else "")
    return None


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    from chairside.cli import UsageError
    from chairside.commands.run import load_settings_or_usage
    from chairside.diagnostics import setup_diagnostics
    from chairside.domain.clock import WallClock
    from chairside.service import CommandRefused, MonitorService

    err = out or sys.stderr
    settings = load_settings_or_usage()
    setup_diagnostics(getattr(settings, "log_dir", None))
    if args.port.startswith("sim://"):
        import simulators

        simulators.register()
    clock = WallClock()
    try:
        svc = MonitorService(clock=clock, port=args.port, driver=args.driver, protocol=args.protocol,
                             settings=settings, simulated=args.port.startswith("sim://"))
    except (CommandRefused, ValueError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None

    def on_event(ev: Any) -> None:
        line = alarm_line(ev)
        if line:
            print(line, file=err, flush=True)

    svc.subscribe_events(on_event)
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
        raise UsageError(str(exc)) from None
    svc.start()
    reason = "recording ended"
    try:
        end = None if args.duration is None else time.monotonic() + args.duration
        while end is None or time.monotonic() < end:
            time.sleep(0.2 if end is None else max(0.0, min(0.2, end - time.monotonic())))
        reason = f"record: {args.duration:g} s reached"
    except KeyboardInterrupt:
        reason = "record: interrupted"
    finally:
        svc.stop()
        snap = svc.snapshot()
        try:
            svc.close_session(author=args.staff, reason=reason)
        except CommandRefused as exc:
            print(f"chairside record: {exc}", file=err)
        if not args.quiet:
            print(f"chairside record: {snap.device.store.readings} readings, {snap.device.store.events} events, "
                  f"{len(snap.alarms)} alarm(s) active at the end; link {snap.device.link_state}; "
                  f"file {args.session}", file=err)
    return 0
