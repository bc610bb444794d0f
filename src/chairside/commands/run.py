"""``chairside`` / ``chairside run``: the console.

Owns: the options of the console command and the wiring settings -> diagnostic log ->
MonitorService -> ``chairside.ui.create_app``. With no ``--port`` (and none in the
settings) the console reads the built-in simulated monitor through the same bytes and
driver as a real one: served on 127.0.0.1 and read through ``socket://`` and pyserial, on
the simulated clock (``--speed`` scales it alike for the patient, the monitor and the
alarm timers). A ``sim://SCENARIO?driver=...`` port is served the same way.
Imports textual (through chairside.ui) and the simulator inside ``run`` only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_SCENARIO = "uneventful"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", help="monitor port URL (default: the built-in simulator)")
    parser.add_argument("--driver", choices=["ge-s5", "masimo", "hl7"], help="monitor protocol (default ge-s5)")
    parser.add_argument("--protocol", help="protocol template for a new session")
    parser.add_argument("--session", type=Path, help="session file: resumed if it exists, else created there")
    parser.add_argument("--scenario", default=None, help=f"simulator scenario (default {DEFAULT_SCENARIO})")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument("--speed", default="1", help="simulator speed factor (default 1)")
    parser.add_argument("--no-bell", action="store_true", help="no terminal bell for alarms")
    parser.add_argument("--initials", help="your initials, recorded as the author of your entries")
    parser.add_argument("--raw", type=Path, metavar="FILE",
                        help="also keep every received byte with its receive time (a raw capture, "
                             "for `chairside replay`)")


def load_settings_or_usage(**overrides: Any) -> Any:
    from chairside.cli import UsageError

    try:
        from chairside.settings import load_settings
    except ImportError:  # pragma: no cover - settings are part of the foundation
        return None
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None


def sim_url(scenario: str, driver: str, seed: int, speed: str) -> str:
    return f"sim://{scenario}?driver={driver}&seed={seed}&speed={speed}"


def sim_port_options(url: str) -> dict[str, Any]:
    """The options of a ``sim://`` port URL (scenario, driver, seed, speed, duration, noise,
    start); UsageError naming the URL when they are bad."""
    from chairside.cli import UsageError

    import simulators

    simulators.register()
    from simulators.protocol_sim import Serial

    try:
        return Serial().from_url(url)
    except Exception as exc:  # noqa: BLE001 - SerialException says what is wrong
        raise UsageError(f"--port {url}: {exc}".splitlines()[0]) from None


def simulated_monitor(scenario: str, driver: str, seed: int | None, speed: float, *, noise: bool = True,
                      start: Any = None, served: bool = True) -> Any:
    """The built-in simulated monitor: a ``TrainingRun`` whose scenario starts at once, served
    on 127.0.0.1 (``served``) or stepped in process. Its ``clock`` is the simulated time, which
    the console and the record use, so every time stamp matches the physiology at any speed."""
    from chairside.cli import UsageError
    from chairside.domain.clock import WallClock
    from chairside.training import TrainingError, TrainingRun

    try:
        run = TrainingRun(scenario, driver=driver, seed=seed, speed=1.0 if speed == float("inf") else speed,
                          start=start or WallClock().now(), hold=False, noise=noise, manual=not served)
    except TrainingError as exc:
        raise UsageError(str(exc)) from None
    if served:
        run.serve()
    return run


def _speed(text: Any) -> float:
    from chairside.cli import UsageError

    t = str(text).strip().lower()
    try:
        v = float("inf") if t == "max" else float(t)
    except ValueError:
        raise UsageError(f"--speed must be a number > 0, got {text!r}") from None
    if not v > 0:
        raise UsageError(f"--speed must be a number > 0, got {text!r}")
    return v


def build_service(args: argparse.Namespace, settings: Any) -> tuple[Any, dict[str, Any], Any]:
    """(MonitorService, start-screen defaults, simulated monitor or None); UsageError on bad input.

    A real port runs on the wall clock. The built-in simulator (no ``--port``) and a
    ``sim://`` port run on the simulated clock, served as a monitor on 127.0.0.1 and read
    through ``socket://``, pyserial and the driver like a real one."""
    from chairside.cli import UsageError
    from chairside.domain.clock import WallClock
    from chairside.service import CommandRefused, MonitorService

    driver = args.driver or getattr(settings, "driver", None) or "ge-s5"
    port = args.port or getattr(settings, "port", None)
    simulated = not port or port.startswith("sim://")
    scenario = None
    defaults: dict[str, Any] = {}
    sim_run = None
    clock: Any = WallClock()
    seed = args.seed
    if simulated:
        if port:
            opts = sim_port_options(port)
            scenario, seed, speed = opts["scenario"], opts["seed"], opts["speed"]
            if args.driver and args.driver != opts["driver"]:
                raise UsageError(f"--driver {args.driver} but the port says driver={opts['driver']}")
            driver = opts["driver"]
            noise, start = opts["noise"], opts["start"]
        else:
            scenario, speed, noise, start = args.scenario or DEFAULT_SCENARIO, _speed(args.speed), True, None
        if speed == float("inf"):
            raise UsageError("the console shows the simulator in real time or faster (e.g. --speed 60), "
                             "not 'max'; `chairside record` writes a session at full speed")
        sim_run = simulated_monitor(scenario, driver, seed, speed, noise=noise, start=start)
        port, clock, seed = sim_run.port_url, sim_run.clock, sim_run.seed
        sc = sim_run.scenario
        staff = getattr(settings, "staff_initials", None) or args.initials or "RN"
        defaults = {"patient_id": f"SIM-{seed:04d}", "weight_kg": sc.patient.weight_kg,
                    "weight_source": "measured", "weight_confirmed_by": "SIM", "staff": staff,
                    "hours_fasted": 6, "asked": True, "escort": True, "consent": True}
        scenario = sc.name
    if args.protocol:
        defaults["protocol"] = args.protocol
    if args.session:
        defaults["path"] = str(args.session)
    from chairside.commands.record import open_raw_capture

    raw = open_raw_capture(getattr(args, "raw", None), driver, port, clock)
    try:
        svc = MonitorService(clock=clock, port=port, driver=driver, protocol=args.protocol, settings=settings,
                             simulated=simulated, scenario=scenario, sim_seed=seed if simulated else None,
                             raw_capture=raw)
    except (CommandRefused, ValueError) as exc:
        if raw is not None:
            raw.close()
        if sim_run is not None:
            sim_run.stop()
        raise UsageError(str(exc).splitlines()[0]) from None
    from chairside.transport import port_warning

    exposure = port_warning(port or "")
    if exposure:  # listen:// on a non-loopback address: say what it exposes before listening
        import sys

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
    from chairside.diagnostics import log_exception, setup_diagnostics

    settings = load_settings_or_usage(staff_initials=getattr(args, "initials", None))
    setup_diagnostics(getattr(settings, "log_dir", None))
    svc, defaults, sim_run = build_service(args, settings)
    from chairside.ui import create_app

    bell = (not args.no_bell) and bool(getattr(settings, "bell", True))
    replay: list[str] = []

    def open_replay(path: str) -> None:
        """From the start screen (no session open): leave the live monitor for the replay."""
        replay.append(path)
        app.exit()

    app = create_app(svc, svc.clock, settings, bell=bell, start_defaults=defaults, replay_hook=open_replay,
                     audio="auto")
    svc.start()
    try:
        app.run()
    except Exception as exc:  # noqa: BLE001 - keep the record safe, then report
        log_exception("console crashed", exc)
        raise
    finally:
        svc.shutdown()
        if svc.raw_capture is not None:
            svc.raw_capture.close()
        if sim_run is not None:
            sim_run.stop()
    if replay:
        from chairside.commands import replay as replay_cmd

        ns = argparse.Namespace(file=Path(replay[0]), driver=None, speed=None, headless=False, session=None,
                                protocol=None, phase=None, json=False, check=False, differences=False)
        return replay_cmd.run(ns)
    return 0
