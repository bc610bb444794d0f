"""``chairside`` / ``chairside run``: the console.

Owns: the options of the console command and the wiring settings -> diagnostic log ->
MonitorService -> ``chairside.ui.create_app``. With no ``--port`` (and none in the
settings) the console reads the built-in simulated monitor through the same bytes and
driver as a real one (``sim://SCENARIO?driver=...``).
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


def build_service(args: argparse.Namespace, settings: Any, clock: Any) -> tuple[Any, dict[str, Any]]:
    """(MonitorService, start-screen defaults) from the options; UsageError on bad input."""
    from chairside.cli import UsageError
    from chairside.service import CommandRefused, MonitorService

    driver = args.driver or getattr(settings, "driver", None) or "ge-s5"
    port = args.port or getattr(settings, "port", None)
    simulated = not port
    scenario = None
    defaults: dict[str, Any] = {}
    if simulated:
        import simulators

        simulators.register()
        scenario = args.scenario or DEFAULT_SCENARIO
        try:
            from simulators.api import load_scenario

            sc = load_scenario(scenario)
        except Exception as exc:  # noqa: BLE001 - ScenarioError names file and field
            raise UsageError(str(exc).splitlines()[0]) from None
        port = sim_url(scenario, driver, args.seed, str(args.speed))
        staff = getattr(settings, "staff_initials", None) or args.initials or "RN"
        defaults = {"patient_id": f"SIM-{args.seed:04d}", "weight_kg": sc.patient.weight_kg,
                    "weight_source": "measured", "weight_confirmed_by": "SIM", "staff": staff,
                    "hours_fasted": 6, "asked": True, "escort": True, "consent": True}
    if args.protocol:
        defaults["protocol"] = args.protocol
    if args.session:
        defaults["path"] = str(args.session)
    try:
        svc = MonitorService(clock=clock, port=port, driver=driver, protocol=args.protocol, settings=settings,
                             simulated=simulated, scenario=scenario, sim_seed=args.seed if simulated else None)
    except (CommandRefused, ValueError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    if args.session and args.session.exists():
        try:
            svc.resume_session(args.session)
        except CommandRefused as exc:
            raise UsageError(str(exc)) from None
    return svc, defaults


def run(args: argparse.Namespace) -> int:
    from chairside.diagnostics import log_exception, setup_diagnostics
    from chairside.domain.clock import WallClock

    settings = load_settings_or_usage(staff_initials=getattr(args, "initials", None))
    setup_diagnostics(getattr(settings, "log_dir", None))
    clock = WallClock()
    svc, defaults = build_service(args, settings, clock)
    from chairside.ui import create_app

    bell = (not args.no_bell) and bool(getattr(settings, "bell", True))
    app = create_app(svc, clock, settings, bell=bell, start_defaults=defaults)
    svc.start()
    try:
        app.run()
    except Exception as exc:  # noqa: BLE001 - keep the record safe, then report
        log_exception("console crashed", exc)
        raise
    finally:
        svc.shutdown()
    return 0
