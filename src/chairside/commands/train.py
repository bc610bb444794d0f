"""``chairside train --scenario NAME [--seed N]``: a simulated session with instructor
controls, ending with a debrief. With ``--script STEPS.toml --headless``: a scripted nurse
on the simulated clock at full speed (``chairside.training_script``).

Owns: the options of ``train`` and its wiring: a ``TrainingRun`` (the simulated patient,
held at rest until the trainee starts the infusion, served as a monitor on 127.0.0.1) ->
the normal console reading it through ``socket://`` and the driver, on simulated time ->
the instructor panel (ctrl+t: the key the trainee is told not to press) -> the debrief
(shown at the end, written beside the session file as ``.debrief.md`` and
``.debrief.jsonl``, and printed as paths on exit). The run also serves its instructor
controls on a private local socket, so ``chairside train --instructor`` on a second
terminal opens the same panel there. Exit 0; 2 on a bad scenario or options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chairside.commands._common import DRIVERS, UsageError, load_settings, run_console, simulator_api
from chairside.reports.debrief import chart, to_html, to_jsonl, to_markdown
from chairside.domain.clock import WallClock
from chairside.service import CommandRefused, MonitorService
from chairside.settings import Settings
from chairside.store.private import write_private_text
from chairside.training import TrainingError, TrainingRun
from chairside.training_remote import InstructorServer, RemoteRun, RemoteRunError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", help="scenario name (`chairside scenarios`) or a scenario file")
    parser.add_argument("--instructor", action="store_true",
                        help="open the instructor panel of a running training run (a second terminal)")
    parser.add_argument("--control", type=Path, default=None,
                        help="the run's instructor socket (default: in the user's runtime folder); with "
                             "--instructor, the socket to attach to")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the scenario's)")
    parser.add_argument("--driver", choices=DRIVERS, default="ge-s5",
                        help="the simulated monitor's protocol (default ge-s5)")
    parser.add_argument("--speed", type=float, default=1.0, help="initial time scale (default 1)")
    parser.add_argument("--session", type=Path, help="session file of the run (default: the session folder)")
    parser.add_argument("--protocol", help="protocol template (default: from the scenario)")
    parser.add_argument("--initials", help="the trainee's initials")
    parser.add_argument("--no-bell", action="store_true", help="no terminal bell for alarms")
    parser.add_argument("--script", type=Path, help="a scripted nurse (STEPS.toml; chairside.training_script)")
    parser.add_argument("--headless", action="store_true", help="no screen (with --script)")


def protocol_for(scenario: Any) -> str:
    """The protocol template a scenario is run under (chronic-pain dosing by rate)."""
    rate = any(getattr(a, "action", "") == "start_infusion" and getattr(a, "rate_mg_kg_h", None)
               and not getattr(a, "over_min", None) for a in scenario.timeline)
    return "iv-ketamine-chronic-pain" if rate else "iv-ketamine-depression"


def build(args: argparse.Namespace, settings: Settings) -> tuple[TrainingRun, MonitorService, dict[str, Any]]:
    """(TrainingRun, MonitorService, start-screen defaults); UsageError on bad input."""
    if not args.speed > 0:
        raise UsageError("--speed must be > 0")
    simulator_api()  # numpy: a clear message when the sim extra is not installed
    try:
        run = TrainingRun(args.scenario, driver=args.driver, seed=args.seed, speed=args.speed,
                          start=WallClock().now())
    except TrainingError as exc:
        raise UsageError(str(exc)) from None
    url = run.serve()
    protocol = args.protocol or protocol_for(run.scenario)
    try:
        svc = MonitorService(clock=run.clock, port=url, driver=args.driver, protocol=protocol, settings=settings,
                             simulated=True, scenario=run.scenario.name, sim_seed=run.seed)
    except (CommandRefused, ValueError) as exc:
        run.stop()
        raise UsageError(str(exc).splitlines()[0]) from None
    run.attach(svc)
    p = run.scenario.patient
    staff = args.initials or settings.staff_initials or "TR"
    defaults: dict[str, Any] = {
        "patient_id": f"SIM-{run.seed:04d}", "weight_kg": p.weight_kg, "weight_source": "measured",
        "weight_confirmed_by": "SIM", "staff": staff, "protocol": protocol, "training": True}
    if args.session:
        defaults["path"] = str(args.session)
    return run, svc, defaults


def write_debrief(run: TrainingRun, out_dir: Path | None = None) -> list[Path]:
    """Write the run's debrief beside its session file (markdown, JSON lines, HTML page)."""
    d = run.final or run.debrief()
    store = getattr(run.service, "store", None)
    path = Path(getattr(store, "path", "") or "")
    if not str(path) or str(path) == ".":
        base = (out_dir or Path.cwd()) / f"training-{run.scenario.name}-{run.seed}"
    else:
        base = path.with_suffix("")
    written = []
    page = to_html(d, chart(run.service.recorded_events()))
    for suffix, text in ((".debrief.md", to_markdown(d)), (".debrief.jsonl", to_jsonl(d)), (".debrief.html", page)):
        target = base.with_name(base.name + suffix)
        write_private_text(target, text)
        written.append(target)
    return written


def _instructor(args: argparse.Namespace) -> int:
    """``chairside train --instructor``: the panel of a run started on another terminal."""
    from chairside.ui.instructor_app import InstructorApp  # textual: only once the panel opens

    try:
        remote = RemoteRun(args.control)
    except RemoteRunError as exc:
        raise UsageError(str(exc)) from None
    try:
        InstructorApp(remote).run()
    finally:
        remote.close()
    return 0


def run(args: argparse.Namespace) -> int:
    if args.instructor:
        return _instructor(args)
    if not args.scenario:
        raise UsageError("train: --scenario NAME is required (or --instructor to attach to a running run)")
    if args.script is not None or args.headless:
        from chairside.training_script import cli

        if args.script is None:
            raise UsageError("--headless needs --script STEPS.toml")
        return cli(args)
    return _console(args)


def _console(args: argparse.Namespace) -> int:
    settings = load_settings(staff_initials=args.initials)
    training, svc, defaults = build(args, settings)
    from chairside.ui import create_app  # textual: only once the console opens

    bell = (not args.no_bell) and settings.bell
    app = create_app(svc, training.clock, settings, bell=bell, start_defaults=defaults, training=training,
                     audio="auto")
    try:
        control = InstructorServer(training, args.control)
    except (TrainingError, OSError) as exc:
        control = None  # the pop-up panel (ctrl+t) still works; say why the second terminal cannot
        print(f"chairside train: no instructor socket: {exc}", file=sys.stderr)
    written: list[Path] = []

    def debrief() -> None:
        """The session file is safe whatever happens here; say what failed."""
        try:
            if svc.session_open:
                if not training.ended:
                    training.end()
                written.extend(write_debrief(training))
        except Exception as exc:  # noqa: BLE001 - any failure of the debrief is reported, not raised
            print(f"chairside train: the debrief could not be written: {exc}", file=sys.stderr)

    def close_control() -> None:
        if control is not None:
            control.close()

    run_console(app, "training console", start=svc.start,
                cleanup=[debrief, svc.shutdown, training.stop, close_control])
    for p in written:
        print(f"debrief: {p}")
    return 0
