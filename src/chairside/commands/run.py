"""``chairside`` / ``chairside run``: the console.

Owns: the options of the console command and the wiring settings -> diagnostic log ->
MonitorService -> ``chairside.ui.create_app``. With no ``--port`` (and none in the
settings) the console reads the built-in simulated monitor through the same bytes and
driver as a real one: served on 127.0.0.1 and read through ``socket://`` and pyserial, on
the simulated clock (``--speed`` scales it alike for the patient, the monitor and the
alarm timers). A ``sim://SCENARIO?driver=...`` port is served the same way.
Imports textual (through chairside.ui) inside ``run`` only, and the simulator (numpy)
only when the monitor is simulated (``commands._common``): a real port never loads numpy.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from chairside.board.options import BrokerOptionError, add_publish_arguments, publisher_for
from chairside.commands._common import (
    DEFAULT_SCENARIO,
    DRIVERS,
    UsageError,
    load_replayer,
    load_settings,
    open_raw_capture,
    parse_speed_option,
    replay_console,
    run_console,
    sim_port_options,
    simulated_monitor,
)
from chairside.domain.clock import WallClock
from chairside.service import CommandRefused, MonitorService
from chairside.settings import Settings
from chairside.training import TrainingRun
from chairside.transport import port_warning

DEFAULT_DRIVER = "ge-s5"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_publish_arguments(parser)
    parser.add_argument("--port", help="monitor port URL (default: the built-in simulator)")
    parser.add_argument("--driver", choices=DRIVERS, help=f"monitor protocol (default {DEFAULT_DRIVER})")
    parser.add_argument("--protocol", help="protocol template for a new session")
    parser.add_argument("--limits", type=Path, metavar="FILE",
                        help="limits file (TOML) for the alarm engine (default: the setting `limits`, else the "
                             "protocol template's profile); a bad file is refused naming the file and the entry")
    parser.add_argument("--session", type=Path, help="session file: resumed if it exists, else created there")
    parser.add_argument("--scenario", default=None, help=f"simulator scenario (default {DEFAULT_SCENARIO})")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument("--speed", default="1", help="simulator speed factor (default 1)")
    parser.add_argument("--no-bell", action="store_true", help="no terminal bell for alarms")
    parser.add_argument("--initials", help="your initials, recorded as the author of your entries")
    parser.add_argument("--raw", type=Path, metavar="FILE",
                        help="also keep every received byte with its receive time (a raw capture, "
                             "for `chairside replay`)")


def _simulator(args: argparse.Namespace, port: str | None, settings: Settings) -> tuple[TrainingRun, dict[str, Any]]:
    """The simulated monitor of a ``sim://`` port or of no port, and the start screen's
    defaults for its patient."""
    if port:
        opts = sim_port_options(port)
        if args.driver and args.driver != opts["driver"]:
            raise UsageError(f"--driver {args.driver} but the port says driver={opts['driver']}")
        scenario, driver, seed, speed = opts["scenario"], opts["driver"], opts["seed"], opts["speed"]
        noise, start = opts["noise"], opts["start"]
    else:
        scenario, seed, noise, start = args.scenario or DEFAULT_SCENARIO, args.seed, True, None
        driver = args.driver or settings.driver or DEFAULT_DRIVER
        speed = parse_speed_option(args.speed)
    if speed is None or speed == float("inf"):
        raise UsageError("the console shows the simulator in real time or faster (e.g. --speed 60), "
                         "not 'max'; `chairside record` writes a session at full speed")
    sim_run = simulated_monitor(scenario, driver, seed, speed, noise=noise, start=start)
    staff = settings.staff_initials or args.initials or "RN"
    defaults = {"patient_id": f"SIM-{sim_run.seed:04d}", "weight_kg": sim_run.scenario.patient.weight_kg,
                "weight_source": "measured", "weight_confirmed_by": "SIM", "staff": staff,
                "hours_fasted": 6, "asked": True, "escort": True, "consent": True}
    return sim_run, defaults


def build_service(args: argparse.Namespace, settings: Settings) -> tuple[MonitorService, dict[str, Any],
                                                                          TrainingRun | None]:
    """(MonitorService, start-screen defaults, simulated monitor or None); UsageError on bad input.

    A real port runs on the wall clock. The built-in simulator (no ``--port``) and a
    ``sim://`` port run on the simulated clock, served as a monitor on 127.0.0.1 and read
    through ``socket://``, pyserial and the driver like a real one."""
    port = args.port or settings.port
    simulated = not port or port.startswith("sim://")
    defaults: dict[str, Any] = {}
    sim_run: TrainingRun | None = None
    if simulated:
        sim_run, defaults = _simulator(args, port, settings)
        port, clock, driver = sim_run.port_url, sim_run.clock, sim_run.driver
    else:
        clock, driver = WallClock(), args.driver or settings.driver or DEFAULT_DRIVER
    if args.protocol:
        defaults["protocol"] = args.protocol
    if settings.limits is not None:  # --limits FILE or the `limits` setting: shown on the start screen
        defaults["limits"] = str(settings.limits)
    if args.session:
        defaults["path"] = str(args.session)
    try:
        raw = open_raw_capture(args.raw, driver, port, clock)
    except UsageError:
        if sim_run is not None:
            sim_run.stop()
        raise
    try:
        svc = MonitorService(clock=clock, port=port, driver=driver, protocol=args.protocol, settings=settings,
                             simulated=simulated, scenario=sim_run.scenario.name if sim_run else None,
                             sim_seed=sim_run.seed if sim_run else None, raw_capture=raw)
    except (CommandRefused, ValueError) as exc:
        if raw is not None:
            raw.close()
        if sim_run is not None:
            sim_run.stop()
        raise UsageError(str(exc).splitlines()[0]) from None
    exposure = port_warning(port or "")
    if exposure:  # listen:// on a non-loopback address: say what it exposes before listening
        print(f"chairside run: {exposure}", file=sys.stderr, flush=True)
    if args.session and args.session.exists():
        try:
            svc.resume_session(args.session)
        except CommandRefused as exc:
            if sim_run is not None:
                sim_run.stop()
            raise UsageError(str(exc)) from None
    return svc, defaults, sim_run


def run(args: argparse.Namespace) -> int:
    signalled: list[str] = []
    console: list[Any] = []

    def on_signal(signum: int, _frame: Any) -> None:
        """SIGTERM / SIGHUP: leave the console; the session is closed with the signal as reason."""
        signalled.append(signal.Signals(signum).name)
        for app in console:
            app.exit()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return _run(args, signalled, console)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace, signalled: list[str], console: list[Any]) -> int:
    settings = load_settings(staff_initials=args.initials, limits=args.limits)
    svc, defaults, sim_run = build_service(args, settings)
    try:
        publisher = publisher_for(args, svc)  # --broker: this chair on the clinic board
    except BrokerOptionError as exc:
        svc.shutdown()
        if sim_run is not None:
            sim_run.stop()
        raise UsageError(str(exc)) from None
    from chairside.ui import create_app  # textual: only once the console opens

    bell = (not args.no_bell) and settings.bell
    replay: list[Path] = []

    def open_replay(path: str) -> None:
        """From the start screen (no session open): leave the live monitor for the replay."""
        replay.append(Path(path))
        app.exit()

    from chairside.reports.course_index import lookup as course  # the course line and view (issue 19)

    app = create_app(svc, svc.clock, settings, bell=bell, start_defaults=defaults, replay_hook=open_replay,
                     audio="auto", course=course)

    def close_if_signalled() -> None:
        if signalled and svc.session_open:
            who = (getattr(settings, "staff_initials", None) or "").strip() or "SYS"
            svc.close_session(author=who, reason=f"console stopped by {signalled[0]}")

    cleanup = [close_if_signalled, svc.shutdown]
    if publisher is not None:
        cleanup.append(publisher.stop)
    if svc.raw_capture is not None:
        cleanup.append(svc.raw_capture.close)
    if sim_run is not None:
        cleanup.append(sim_run.stop)
    console.append(app)
    if signalled:  # stopped while it was being set up: close, do not open the console
        _cleanup_all(cleanup)
        return 0
    run_console(app, "console", start=svc.start, cleanup=cleanup)
    if replay:
        ns = argparse.Namespace(file=replay[0], driver=None, session=None, protocol=None, phase=None)
        return replay_console(load_replayer(ns), settings, speed=1.0)
    return 0


def _cleanup_all(steps: list[Any]) -> None:
    for step in steps:
        step()
