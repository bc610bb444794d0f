"""What the ``chairside`` sub-commands share: bad usage, settings, the simulated monitor,
raw captures, and running a console until it ends.

Owns: ``UsageError`` (exit 2 with one line; ``chairside.cli`` catches it), ``DRIVERS``
(the driver registry's names, for every ``--driver`` option), ``load_settings`` (settings
or a UsageError naming the file/variable and key), ``parse_speed_option`` and
``check_duration`` (bounds in data/commands.toml), the built-in
simulated monitor (``sim_port_options`` for a ``sim://`` port, ``simulated_monitor``),
``open_raw_capture`` (the ``--raw FILE`` tee), ``run_console`` (start, run the app, keep
the record safe on a crash, clean up) and ``replay_console`` (the read-only console on a
replay, used by ``replay`` and by ``run`` when the start screen asks for a replay).

May import: any chairside package. The simulator (``simulators.api``: numpy) and the UI
(``chairside.ui``: textual) are imported inside the functions that need them, so a
console on a real port never loads numpy and the headless commands never load textual.
Must not import: a sibling command module (the commands share through this module only).
"""

from __future__ import annotations

import argparse
import gc
import math
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from chairside.domain.clock import Clock, WallClock
from chairside.drivers import available

if TYPE_CHECKING:
    from chairside.settings import Settings
    from chairside.replay import Replayer
    from chairside.training import TrainingRun
    from chairside.transport import CaptureWriter

# the replay, the service, the training run and the transport are imported by the functions
# that use them: the headless reading commands (course, rems, verify, export) start without
# them (the course's warm view is mostly the interpreter's start-up)

DRIVERS: list[str] = available()  # the driver registry's names: every --driver option offers these
COMMANDS_DATA = Path(__file__).resolve().parent.parent / "data" / "commands.toml"  # option bounds
DEFAULT_SCENARIO = "uneventful"  # the built-in simulated monitor's scenario (DESIGN.md)


class UsageError(Exception):
    """Bad usage or bad input: exit 2 with a one-line message."""


def load_settings(*, diagnostics: bool = True, **overrides: Any) -> Settings:
    """The effective settings (``overrides`` that are not None win); with ``diagnostics`` the
    diagnostic log is set up in the settings' log folder. UsageError on a bad config file or
    environment value (its first line names the file or variable and the key)."""
    # lazy: the settings (pydantic-settings) and the diagnostic log only for a command that asks
    from chairside.diagnostics import setup_diagnostics
    from chairside.settings import SettingsError
    from chairside.settings import load_settings as _load_settings

    try:
        settings = _load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    if diagnostics:
        setup_diagnostics(settings.log_dir)
    return settings


@dataclass(frozen=True)
class OptionLimits:
    """Bounds of ``--duration`` and ``--speed`` (``data/commands.toml``, each with its reason)."""

    max_duration_s: float
    min_speed: float
    max_speed: float


@cache
def option_limits() -> OptionLimits:
    with open(COMMANDS_DATA, "rb") as f:
        data = tomllib.load(f)
    return OptionLimits(float(data["duration"]["max_s"]), float(data["speed"]["min"]), float(data["speed"]["max"]))


def parse_speed_option(text: str | float | None, default: float | None = None) -> float | None:
    """``--speed``: ``max`` (None: as fast as it goes) or a number within the bounds of
    data/commands.toml; ``default`` when not given. UsageError (one line naming the value and
    the bounds) otherwise: 1e308, inf, nan, 0 and negatives included."""
    if text is None:
        return default
    lim = option_limits()
    bounds = f"give a number from {lim.min_speed:g} to {lim.max_speed:g} or 'max'"
    if isinstance(text, str) and text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"--speed {text}: not a speed; {bounds}") from None
    if not math.isfinite(speed) or not lim.min_speed <= speed <= lim.max_speed:
        raise UsageError(f"--speed {text}: out of range; {bounds}")
    return speed


def check_duration(value: float | None, option: str = "--duration") -> float | None:
    """None, or seconds > 0 and at most data/commands.toml's maximum; else UsageError."""
    if value is None:
        return None
    lim = option_limits()
    if not math.isfinite(value) or not 0 < value <= lim.max_duration_s:
        raise UsageError(f"{option} {value:g}: give seconds > 0 and at most {lim.max_duration_s:g} "
                         f"({lim.max_duration_s / 3600:g} h; see data/commands.toml)")
    return value


def simulator_api() -> ModuleType:
    """``simulators.api``, imported now (with numpy). UsageError saying what to install when
    numpy is missing (it comes with the ``sim`` extra, which the quick start installs)."""
    try:
        from simulators import api  # numpy: loaded only when a simulator is asked for
    except ModuleNotFoundError as exc:
        if exc.name != "numpy":
            raise
        raise UsageError("the simulated monitor needs numpy, which is not installed: "
                         "pip install 'chairside[sim]' (python3 dev.py demo installs it)") from None
    return api


def sim_port_options(url: str) -> dict[str, Any]:
    """The options of a ``sim://`` port URL (scenario, driver, seed, speed, duration, noise,
    start, autostart); UsageError naming the URL when they are bad."""
    sim_api = simulator_api()
    try:
        return sim_api.port_options(url)
    except ValueError as exc:
        raise UsageError(f"--port {url}: {exc}".splitlines()[0]) from None


def simulated_monitor(scenario: str, driver: str, seed: int | None, speed: float, *, noise: bool = True,
                      start: Any = None, served: bool = True) -> TrainingRun:
    """The built-in simulated monitor: a ``TrainingRun`` whose scenario starts at once, served
    on 127.0.0.1 (``served``) or stepped in process. Its ``clock`` is the simulated time, which
    the console and the record use, so every time stamp matches the physiology at any speed."""
    from chairside.training import TrainingError, TrainingRun  # lazy: only the simulated monitor needs it

    simulator_api()
    try:
        run = TrainingRun(scenario, driver=driver, seed=seed, speed=1.0 if speed == float("inf") else speed,
                          start=start or WallClock().now(), hold=False, noise=noise, manual=not served)
    except TrainingError as exc:
        raise UsageError(str(exc)) from None
    if served:
        run.serve()
    return run


def open_raw_capture(path: Path | None, driver: str, port: str, clock: Clock) -> CaptureWriter | None:
    """The ``--raw FILE`` tee (a ``CaptureWriter``), or None; UsageError if it cannot be written."""
    if path is None:
        return None
    from chairside.transport import CaptureError, CaptureWriter, check_port  # lazy: only --raw needs it

    if port and not port.startswith("sim://"):
        try:
            check_port(port)  # a port that can never open (or a busy listen://) leaves no capture file
        except ValueError as exc:
            raise UsageError(str(exc).splitlines()[0]) from None
    try:
        return CaptureWriter(path, driver=driver, start=clock.now(), port=port,
                             monotonic_origin=clock.monotonic())
    except (CaptureError, OSError) as exc:
        raise UsageError(f"--raw {path}: {exc}".splitlines()[0]) from None


def run_console(app: Any, what: str, *, start: Callable[[], None],
                cleanup: Iterable[Callable[[], None]] = ()) -> None:
    """``start()``, run the Textual ``app`` until it exits, then every ``cleanup`` in order
    (each runs even if an earlier one fails). A crash of the console is written to the
    diagnostic log (``what`` names it) before it propagates."""
    start()
    try:
        app.run()
    except Exception as exc:  # noqa: BLE001 - any crash: logged with its traceback, then re-raised
        from chairside.diagnostics import log_exception  # lazy: see load_settings

        log_exception(f"{what} crashed", exc)
        raise
    finally:
        _cleanup(list(cleanup))


def _cleanup(steps: list[Callable[[], None]]) -> None:
    if not steps:
        return
    try:
        steps[0]()
    finally:
        _cleanup(steps[1:])


def build_replayer(file: Path, *, driver: str | None = None, session_out: Path | None = None,
                   protocol: str | None = None, phase: str | None = None) -> Replayer:
    """The ``Replayer`` of a session file or raw capture; UsageError on bad input. A raw
    capture has no infusion record: its phase is ``phase`` or else ``infusion``."""
    # lazy: the replay (and the service under it) only for the commands that replay
    from chairside.replay import Replayer, ReplayError, load_recording
    from chairside.service.model import CommandRefused

    if session_out is not None and session_out.exists():
        raise UsageError(f"--session {session_out}: the file exists; a replay is recorded into a new file")
    try:
        rec = load_recording(file, driver, protocol=protocol)
        if phase is not None and rec.source == "session":
            raise UsageError("--phase is for raw captures; a session file replays its own phases")
        phase = phase if phase is not None else ("infusion" if rec.source == "capture" else None)
        return Replayer(rec, session_out=session_out, protocol=protocol, phase=phase)
    except (ReplayError, CommandRefused) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None


def load_replayer(args: argparse.Namespace) -> Replayer:
    """``build_replayer`` with the collector paused while the recording is built, then the
    recording frozen out of the collector's scans (it stays for the whole replay)."""
    from chairside.replay import collector_paused  # lazy: see build_replayer

    with collector_paused():  # the recording and the pipeline built on it (see collector_paused)
        replayer = build_replayer(args.file, driver=args.driver, session_out=args.session, protocol=args.protocol,
                                  phase=args.phase)
        # frozen before the collector is back on, or its first pass would scan it all once
        gc.freeze()
    return replayer


def replay_console(replayer: Replayer, settings: Settings, speed: float | None) -> int:
    """The read-only console on a replay (banner, session clock, speed, seek and jump keys)."""
    from chairside.replay import ReplayPlayer  # lazy: see build_replayer
    from chairside.ui import create_app  # textual: only when a console opens

    player = ReplayPlayer(replayer, speed=speed)
    app = create_app(player.service, player.clock, settings, bell=False, show_start=False, replay=player)
    run_console(app, "replay console", start=player.start, cleanup=[player.service.shutdown])
    return 0
