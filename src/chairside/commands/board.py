"""``chairside board``: every chair on one screen, in one process or across machines.

    chairside board --demo 4                        # four simulated chairs (the newcomer's demo)
    chairside board --chair chair-1=/dev/ttyUSB0,ge-s5 --chair chair-2=socket://h:4001,hl7
    chairside board --chairs chairs.toml            # [[chair]] name, port, driver, protocol
    chairside board --broker mqtt://HOST:PORT       # the chairs publish (run/record --broker)
    chairside board ... --headless --json           # each chair's state once a second

Owns: the options of ``board``. In one process every chair is a full monitoring service
recording its own session file (the settings' session folder); with ``--broker`` the board
only subscribes. An unreachable broker is a notice, not a crash; a bad chair list is exit
2 naming the chair or file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from chairside.board.local import BoardError, LocalBoard, demo_chairs, parse_chairs
from chairside.board.mqtt import BoardSubscriber, BrokerError, parse_broker
from chairside.board.state import BoardModel
from chairside.commands._common import UsageError, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", type=int, metavar="N", help="N simulated chairs running different scenarios")
    parser.add_argument("--chair", action="append", default=[], metavar="NAME=PORT[,DRIVER]", help="a chair (repeat)")
    parser.add_argument("--chairs", type=Path, metavar="FILE", help="the clinic file: [[chair]] name, port, driver")
    parser.add_argument("--broker", metavar="URL", help="subscribe to the chairs on an MQTT broker (mqtt://H:P)")
    parser.add_argument("--clinic", default="clinic", help="the clinic's name in the topics (default clinic)")
    parser.add_argument("--headless", action="store_true", help="no screen: print the board's state")
    parser.add_argument("--json", action="store_true", help="with --headless: one JSON line per chair each second")
    parser.add_argument("--duration", type=float, help="with --headless: stop after S seconds")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    local = None
    subscriber = None
    try:
        cfg = parse_broker(args.broker) if args.broker else None
        specs = demo_chairs(args.demo) if args.demo else parse_chairs(args.chair, args.chairs)
    except (BoardError, BrokerError) as exc:
        raise UsageError(str(exc)) from None
    if not specs and cfg is None:
        raise UsageError("give --demo N, --chair NAME=PORT[,DRIVER], --chairs FILE or --broker URL")
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be > 0 seconds")
    if specs:
        folder = Path(getattr(settings, "session_dir", Path.cwd()))
        local = LocalBoard(specs, folder=folder, settings=settings, broker=cfg, clinic=args.clinic)
        model = local.model
    else:
        model = BoardModel()
        subscriber = BoardSubscriber(cfg, model, clinic=args.clinic)
    try:
        if local is not None:
            local.start()
        if subscriber is not None:
            subscriber.start()
        if args.headless:
            return _headless(model, subscriber, json_lines=args.json, duration=args.duration)
        from chairside.ui.board_app import BoardApp  # textual: only once the board opens

        BoardApp(model, local=local, subscriber=subscriber).run()
        return 0
    finally:
        if subscriber is not None:
            subscriber.stop()
        if local is not None:
            local.stop()


def _headless(model, subscriber, *, json_lines: bool, duration: float | None) -> int:
    end = None if duration is None else time.monotonic() + duration
    said = ""
    try:
        while end is None or time.monotonic() < end:
            model.tick(time.monotonic())
            if subscriber is not None:
                notice = "" if subscriber.connected.is_set() else (subscriber.last_error or "connecting to the broker")
                if notice != said:
                    said = notice
                    print(f"chairside board: {notice or 'broker connected'}", file=sys.stderr, flush=True)
            for chair in model.snapshot():
                if json_lines:
                    print(json.dumps(chair, sort_keys=True, default=str), flush=True)
                else:
                    st = chair["state"] or {}
                    print(f"{chair['chair']:<10} {chair['status']:<14} {st.get('pseudonym', ''):<10} "
                          f"{st.get('phase', ''):<13} alarm {chair['worst_alarm'] or '-'}", flush=True)
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    return 0
