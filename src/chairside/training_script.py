"""Scripted sessions: a scenario run on the simulated clock at full speed with a scripted
nurse (``chairside train --scenario NAME --script STEPS.toml --headless``), the clinical
acceptance tool and an instructor's way to prepare a run.

Owns: the script format (``[[step]]`` tables: ``at`` = simulated ``m:ss`` or seconds since
the run began, ``do`` = the action, then its fields), ``load_script`` (every error names the
file, the step number and the field: ``ScriptError``), the defaults of
``data/training_script.toml``, and ``run_script`` — the run itself: the simulated monitor's
bytes go through the driver into the service second by second (``InProcessMonitor``), and
each step, when its time comes, is given to the service as the console's command. A step
the service refuses is recorded as a ``training`` event (source ``trainee``, action
``refused``, the reason), printed, and the run goes on.

A step may carry ``when`` (``chairside.script_conditions``): from its ``at`` on, it is done at
the first simulated second at which the condition holds on the console's snapshot.

Actions (the console's commands, named as in the scenario files' expected actions):
``open_session`` ``checklist`` ``baseline`` ``start_infusion`` ``give_device``
``change_rate`` (alias ``set_rate``) ``pause_infusion`` ``resume_infusion`` ``stop_infusion``
``observe`` ``intervene`` ``acknowledge`` ``nibp_stat`` ``call_prescriber`` ``note``
``discharge`` ``close``, and the simulator's treatment names (``labetalol``, ``oxygen``,
``jaw_thrust``, ``midazolam``, ``ondansetron``, ``reassure``, ``probe_reattach``...), which
record that intervention. Every step may carry ``reason`` (recorded wherever the console
asks for one) and ``by`` (initials; default the first of ``staff``).

May import: chairside.service, chairside.training, chairside.domain. Must not import:
textual, chairside.ui.
"""

from __future__ import annotations

import math
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TextIO


class ScriptError(ValueError):
    """A script that cannot be run; the message names the file, the step and the field."""


# field types: "str", "num", "int", "bool", "strs" (list of str), "aldrete" (int total or table)
_COMMON = {"at": "at", "do": "str", "reason": "str", "by": "str", "when": "when"}
ACTIONS: dict[str, dict[str, str]] = {
    "open_session": {"patient_id": "str", "weight_kg": "num", "protocol": "str", "staff": "strs",
                     "consent": "bool", "escort": "bool", "fasted_h": "num", "medications": "bool",
                     "allergies": "str", "concomitant": "strs", "present": "strs", "weight_confirmed_by": "str"},
    "checklist": {"present": "strs", "consent": "bool", "escort": "bool", "fasted_h": "num",
                  "medications": "bool", "allergies": "str", "concomitant": "strs"},
    "baseline": {"moaas": "int", "cadss": "int"},
    "start_infusion": {"dose_mg_kg": "num", "dose_mg": "num", "rate_mg_kg_h": "num", "over_min": "num",
                       "concentration_mg_ml": "num", "bag_ml": "num", "lot": "str", "confirmed_by": "str"},
    "give_device": {"lot": "str", "dose_mg": "num"},
    "change_rate": {"rate_mg_kg_h": "num"},
    "pause_infusion": {},
    "resume_infusion": {"prescriber": "str"},
    "stop_infusion": {},
    "observe": {"scale": "str", "score": "num", "text": "str"},
    "intervene": {"drug": "str", "dose": "num", "unit": "str", "route": "str"},
    "acknowledge": {},
    "nibp_stat": {},
    "call_prescriber": {},
    "note": {"text": "str"},
    "discharge": {"aldrete": "aldrete", "padss": "aldrete", "escort": "bool", "instructions": "bool",
                  "prescriber": "str"},
    "close": {},
}
ALIASES = {"set_rate": "change_rate", "stat_nibp": "nibp_stat"}
REQUIRED = {"change_rate": ("rate_mg_kg_h",), "observe": ("scale",), "intervene": ("drug",), "note": ("text",)}


@lru_cache(maxsize=1)
def script_defaults() -> dict[str, Any]:
    text = resources.files("chairside").joinpath("data/training_script.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@lru_cache(maxsize=1)
def _treatments() -> dict[str, str]:
    """Simulator treatment name (the scenario files' expected actions) -> console intervention key."""
    from chairside.training import training_data

    return {sim: key for key, sim in training_data()["interventions"].items()}


@dataclass(frozen=True)
class Step:
    n: int  # 1-based, as in the file
    at_s: float
    do: str
    fields: dict[str, Any] = field(default_factory=dict)
    when: Any = None  # chairside.script_conditions.Condition: done once it holds on the console's snapshot

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    @property
    def clock(self) -> str:
        """The step's time as m:ss."""
        return f"{int(self.at_s) // 60}:{int(self.at_s) % 60:02d}"


_AT = re.compile(r"^(\d+):([0-5]\d)(\.\d+)?$")


def _parse_at(v: Any, where: str) -> float:
    if isinstance(v, bool):
        raise ScriptError(f"{where}: at: give m:ss or seconds, got {v!r}")
    if isinstance(v, (int, float)):
        if not math.isfinite(v) or v < 0:
            raise ScriptError(f"{where}: at: must be >= 0 seconds, got {v!r}")
        return float(v)
    if isinstance(v, str):
        m = _AT.match(v.strip())
        if m:
            return int(m.group(1)) * 60 + int(m.group(2)) + float(m.group(3) or 0)
        try:
            f = float(v)
        except ValueError:
            f = -1.0
        if math.isfinite(f) and f >= 0:
            return f
    raise ScriptError(f"{where}: at: give simulated m:ss (e.g. \"7:00\") or seconds, got {v!r}")


def _check_type(kind: str, v: Any, where: str, name: str) -> Any:
    bad = None
    if kind == "str":
        if not isinstance(v, str):
            bad = "text"
    elif kind == "num":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            bad = "a number"
        else:
            v = float(v)
    elif kind == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            bad = "a whole number"
    elif kind == "bool":
        if not isinstance(v, bool):
            bad = "true or false"
    elif kind == "strs":
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            bad = "a list of texts"
    elif kind == "aldrete":
        if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, dict) and all(
                isinstance(x, int) and not isinstance(x, bool) for x in v.values()))):
            bad = "a whole-number total or a table of item scores"
    if bad:
        raise ScriptError(f"{where}: {name}: must be {bad}, got {v!r}")
    return v


def parse_script(doc: dict[str, Any], origin: str) -> list[Step]:
    """Validate a parsed script; errors name ``origin``, the step and the field."""
    extra = set(doc) - {"step", "title", "description"}
    if extra:
        raise ScriptError(f"{origin}: unknown top-level key(s) {', '.join(sorted(extra))} (steps are [[step]] tables)")
    raw = doc.get("step")
    if not isinstance(raw, list) or not raw:
        raise ScriptError(f"{origin}: no [[step]] tables")
    steps: list[Step] = []
    last = 0.0
    treatments = _treatments()
    for i, item in enumerate(raw, start=1):
        where = f"{origin}: step {i}"
        if not isinstance(item, dict):
            raise ScriptError(f"{where}: must be a table")
        if "at" not in item:
            raise ScriptError(f"{where}: at: required")
        if "do" not in item:
            raise ScriptError(f"{where}: do: required")
        at_s = _parse_at(item["at"], where)
        if at_s < last:
            raise ScriptError(f"{where}: at: {item['at']!r} is before the step above it (steps run in time order)")
        last = at_s
        do = item["do"]
        if not isinstance(do, str):
            raise ScriptError(f"{where}: do: must be an action name, got {do!r}")
        do = ALIASES.get(do, do)
        fields: dict[str, Any] = {}
        if do in treatments and do not in ACTIONS:
            spec = {"dose": "num", "unit": "str", "route": "str"}
            fields["drug"] = treatments[do]
        elif do in ACTIONS:
            spec = ACTIONS[do]
        else:
            known = sorted({*ACTIONS, *ALIASES, *treatments})
            raise ScriptError(f"{where}: do: unknown action {do!r} (known: {', '.join(known)})")
        when = None
        if "when" in item:
            from chairside.script_conditions import parse_when

            try:
                when = parse_when(item["when"])
            except ValueError as exc:
                raise ScriptError(f"{where}: when: {exc}") from None
        for name, v in item.items():
            if name in ("at", "do", "when"):
                continue
            kind = spec.get(name) or _COMMON.get(name)
            if kind is None:
                raise ScriptError(f"{where}: {name}: not a field of {do!r} (fields: "
                                  f"{', '.join([*spec, 'reason', 'by']) or 'reason, by'})")
            fields[name] = _check_type(kind, v, where, name)
        for name in REQUIRED.get(do, ()):
            if name not in fields:
                raise ScriptError(f"{where}: {name}: required by {do!r}")
        if do == "start_infusion":
            given = [k for k in ("dose_mg_kg", "dose_mg", "rate_mg_kg_h") if k in fields]
            if len(given) > 1:
                raise ScriptError(f"{where}: {given[1]}: give one of dose_mg_kg, dose_mg or rate_mg_kg_h")
        steps.append(Step(n=i, at_s=at_s, do=do, fields=fields, when=when))
    if steps[0].do != "open_session":
        raise ScriptError(f"{origin}: step 1: do: the first step must be open_session")
    return steps


def load_script(path: str | Path) -> list[Step]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"{p}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScriptError(f"{p.name}: not valid TOML: {exc}") from None
    return parse_script(doc, p.name)


# ---------------------------------------------------------------------------- the run


def _aldrete_items(total_or_items: Any, scale: str) -> dict[str, int]:
    """A total (e.g. 9) as item scores: every item at its maximum, the shortfall taken from
    the last items; a table is passed as it is."""
    if isinstance(total_or_items, dict):
        return {k: int(v) for k, v in total_or_items.items()}
    from chairside.domain.scales import get_scale

    sc = get_scale(scale)
    items = {it.key: int(it.max) for it in sc.items}
    short = sum(items.values()) - int(total_or_items)
    for it in reversed(sc.items):
        if short <= 0:
            break
        take = min(short, int(it.max) - int(it.min))
        items[it.key] -= take
        short -= take
    return items


class ScriptRun:
    """One scripted run: the service, the simulated monitor and the steps."""

    def __init__(self, training: Any, service: Any, steps: list[Step], *, session_path: Path | None,
                 protocol: str, out: TextIO) -> None:
        self.training = training
        self.service = service
        self.steps = steps
        self.session_path = session_path
        self.protocol = protocol
        self.out = out
        self.staff: list[str] = []
        self.opened: dict[str, Any] = {}
        self.planned_mg: float | None = None
        self.refusals: list[tuple[Step, str]] = []
        self.closed = False

    # -- helpers
    def by(self, step: Step) -> str:
        return str(step.get("by") or (self.staff[0] if self.staff else script_defaults()["open_session"]["staff"][0]))

    def reason(self, step: Step) -> str:
        """The step's reason, else the default the script data gives for the action."""
        return str(step.get("reason") or script_defaults()["reasons"].get(step.do, ""))

    def _say(self, text: str) -> None:
        print(text, file=self.out)

    def refuse(self, step: Step, why: str) -> None:
        self.refusals.append((step, why))
        self._say(f"step {step.n} at {step.clock} {step.do}: REFUSED — {why}")
        if self.service.session_open:
            self.service.record_training(source="trainee", action="refused", detail=f"{step.do}: {why}",
                                         sim_t=self.training.scenario_t, author=self.by(step),
                                         args={"step": step.n, "do": step.do, "at_s": step.at_s})

    # -- the steps
    def do(self, step: Step) -> None:
        from chairside.domain.esketamine import DeviceRefused
        from chairside.service import CommandRefused

        handler: Callable[[Step], Any] = getattr(self, f"_do_{step.do}", self._do_treatment)
        try:
            handler(step)
        except (CommandRefused, DeviceRefused) as exc:
            self.refuse(step, str(exc))

    def _checklist_kwargs(self, step: Step, base: dict[str, Any]) -> dict[str, Any]:
        from chairside.service.data import console_data

        d = {**script_defaults()["open_session"], **base, **step.fields}
        present = set(d.get("present") or ())
        known = {i.key for i in console_data().checklist}
        unknown = present - known
        if unknown:
            from chairside.service import CommandRefused

            raise CommandRefused(f"unknown checklist item(s): {', '.join(sorted(unknown))} "
                                 f"(known: {', '.join(sorted(known))})")
        tpl = self.service.template
        classes = tuple(getattr(tpl.gate, "concomitant_classes", ()) or ())
        taking = set(d.get("concomitant") or ())
        return dict(author=self.by(step), contraindications={k: k in present for k in known},
                    hours_fasted=d.get("fasted_h"), escort_confirmed=bool(d.get("escort")),
                    consent=bool(d.get("consent")), medications_reviewed=bool(d.get("medications")),
                    allergies=d.get("allergies"),
                    concomitant={c: c in taking for c in classes} if classes else None)

    def _do_open_session(self, step: Step) -> None:
        dflt = script_defaults()["open_session"]
        tr = self.training
        self.staff = list(step.get("staff") or dflt["staff"])
        protocol = step.get("protocol") or self.protocol
        self.service.open_session(
            patient_id=step.get("patient_id") or f"SIM-{tr.seed:04d}",
            weight_kg=step.get("weight_kg") or tr.scenario.patient.weight_kg, staff=self.staff,
            weight_confirmed_by=step.get("weight_confirmed_by") or (self.staff[1] if len(self.staff) > 1 else "SIM"),
            # a scripted session is a simulated clinical record (``simulated`` in session_opened),
            # the acceptance tool's, not a trainee's run: the course and the REMS clock count it
            protocol=protocol, path=self.session_path, training=False)
        self.opened = {k: v for k, v in step.fields.items() if k in ACTIONS["checklist"]}
        self.service.complete_checklist(**self._checklist_kwargs(step, {}))

    def _do_checklist(self, step: Step) -> None:
        self.service.complete_checklist(**self._checklist_kwargs(step, self.opened))

    def _do_baseline(self, step: Step) -> None:
        self.service.record_baseline(author=self.by(step), moaas=step.get("moaas"), cadss=step.get("cadss"))

    def _device_template(self) -> bool:
        from chairside.domain.esketamine import is_device_template

        return is_device_template(self.service.template)

    def _do_start_infusion(self, step: Step) -> None:
        svc = self.service
        tpl = svc.template
        r = str(step.get("reason") or "")
        if self._device_template():
            from chairside.domain.esketamine import check_plan

            if step.get("dose_mg_kg") is not None or step.get("rate_mg_kg_h") is not None:
                from chairside.service import CommandRefused

                raise CommandRefused(f"{tpl.dosing.drug} is given as {tpl.dosing.device_mg:g} mg devices: "
                                     "give dose_mg (no mg/kg or mL/h)")
            self.planned_mg = check_plan(tpl, step.get("dose_mg"), reason=r)
            self._say(f"step {step.n} at {step.clock} start_infusion: planned {self.planned_mg:g} mg "
                      f"= {self.planned_mg / tpl.dosing.device_mg:g} devices (give_device for each)")
            return
        d = tpl.dosing
        dose_mg_kg, dose_mg, rate = step.get("dose_mg_kg"), step.get("dose_mg"), step.get("rate_mg_kg_h")
        if dose_mg_kg is None and dose_mg is None and rate is None:
            if d.basis == "mg_per_kg_h":
                rate = d.dose
            elif d.basis == "mg_per_kg":
                dose_mg_kg = d.dose
        if dose_mg is not None:
            dose_mg_kg = dose_mg / svc.weight
        over = step.get("over_min", d.duration_min)
        conc = step.get("concentration_mg_ml")
        bag = step.get("bag_ml")
        if conc is None:
            bag = bag if bag is not None else float(script_defaults()["start_infusion"]["bag_ml"])
            mg = (dose_mg_kg * svc.weight) if dose_mg_kg is not None else (
                rate * svc.weight * (over or 0) / 60.0 if rate is not None else None)
            if not mg:
                from chairside.service import CommandRefused

                raise CommandRefused("give concentration_mg_ml (no total dose to make the bag from)")
            conc = mg / bag
        svc.start_infusion(author=self.by(step), concentration_mg_ml=conc, dose_mg_kg=dose_mg_kg,
                           rate_mg_kg_h=rate, duration_min=over, bag_volume_ml=bag, lot=step.get("lot") or "",
                           confirmed_by=step.get("confirmed_by"), gate_override_reason=r,
                           above_usual_reason=r, advisory_reason=r, bag_reason=r)

    def _do_give_device(self, step: Step) -> None:
        planned = step.get("dose_mg", self.planned_mg)
        self.service.give_device(author=self.by(step), lot=step.get("lot") or "", planned_mg=planned,
                                 reason=str(step.get("reason") or ""))

    def _do_change_rate(self, step: Step) -> None:
        r = self.reason(step)
        self.service.change_rate(author=self.by(step), rate_mg_kg_h=step.get("rate_mg_kg_h"), reason=r,
                                 above_usual_reason=str(step.get("reason") or ""))

    def _do_pause_infusion(self, step: Step) -> None:
        self.service.pause_infusion(author=self.by(step), reason=self.reason(step))

    def _do_resume_infusion(self, step: Step) -> None:
        self.service.resume_infusion(author=self.by(step), reason=str(step.get("reason") or ""),
                                     prescriber=str(step.get("prescriber") or ""))

    def _do_stop_infusion(self, step: Step) -> None:
        self.service.stop_infusion(author=self.by(step), reason=self.reason(step))

    def _do_observe(self, step: Step) -> None:
        self.service.record_observation(author=self.by(step), scale=step.get("scale"), score=step.get("score"),
                                        text=step.get("text") or "")

    def _intervene(self, step: Step, drug: str) -> None:
        from chairside.service.data import console_data

        text = drug
        for item in console_data().interventions:
            if drug in (item.key, item.text):
                text = item.text
                unit, route = item.unit, item.route
                break
        else:
            sim = _treatments()
            if drug in sim:
                return self._intervene(step, sim[drug])
            unit = route = ""
        self.service.record_intervention(author=self.by(step), drug=text, dose=step.get("dose"),
                                         dose_unit=step.get("unit") or unit, route=step.get("route") or route,
                                         reason=str(step.get("reason") or ""))

    def _do_intervene(self, step: Step) -> None:
        self._intervene(step, step.get("drug"))

    def _do_treatment(self, step: Step) -> None:
        self._intervene(step, step.get("drug"))

    def _do_nibp_stat(self, step: Step) -> None:
        self._intervene(step, _treatments()["nibp_stat"])

    def _do_call_prescriber(self, step: Step) -> None:
        self._intervene(step, _treatments()["call_prescriber"])

    def _do_acknowledge(self, step: Step) -> None:
        self.service.acknowledge(None, by=self.by(step))

    def _do_note(self, step: Step) -> None:
        self.service.add_note(author=self.by(step), text=step.get("text"))

    def _do_discharge(self, step: Step) -> None:
        d = {**script_defaults()["discharge"], **step.fields}
        padss = _aldrete_items(d["padss"], "padss") if d.get("padss") is not None else None
        self.service.assess_discharge(
            author=self.by(step), aldrete=_aldrete_items(d["aldrete"], "aldrete"), padss=padss,
            escort_present=bool(d.get("escort")), instructions_given=bool(d.get("instructions")),
            override_reason=str(step.get("reason") or ""), override_by=str(step.get("prescriber") or ""))

    def _do_close(self, step: Step) -> None:
        self.finish(reason=self.reason(step), by=self.by(step))

    # -- the clock
    def finish(self, *, reason: str, by: str | None = None) -> None:
        if self.closed:
            return
        svc, tr = self.service, self.training
        if svc.session_open:
            if not tr.ended:
                tr.end()
            svc.stop()
            svc.close_session(author=by or (self.staff[0] if self.staff else "SIM"), reason=reason)
        self.closed = True

    def run(self) -> None:
        from chairside.training import InProcessMonitor

        tr, svc = self.training, self.service
        mon = InProcessMonitor(tr, svc)
        pending = list(self.steps)
        # a step with ``when`` waits, from its ``at`` on, for its condition on the console's screen;
        # the run gives up on it after the scenario's length past the last step's time
        limit = max(s.at_s for s in self.steps) + float(tr.scenario.duration_s)
        while pending and not self.closed:
            now = tr.clock.monotonic() + 1e-9
            if not any(s.when is None for s in pending) and now > limit:
                break
            snap = None
            for step in list(pending):
                if step.at_s > now:
                    continue
                if step.when is not None:
                    if not svc.session_open:
                        continue
                    snap = snap or svc.snapshot()
                    if not step.when.holds(snap):
                        continue
                pending.remove(step)
                snap = None
                if step.do != "open_session" and not svc.session_open:
                    self.refuse(step, "no session is open")
                    continue
                self.do(step)
                if self.closed:
                    break
            if pending and not self.closed:
                mon.run(1)
        for step in pending:
            if step.when is not None:
                self.refuse(step, f"its condition never held: {step.when.text}")
        if not self.closed:
            self.finish(reason=str(script_defaults()["reasons"]["close"]))


def run_script(*, scenario: str, script: str | Path, seed: int | None = None, session: Path | None = None,
               driver: str = "ge-s5", settings: Any = None, start: datetime | None = None,
               out: TextIO | None = None) -> ScriptRun:
    """Run ``script`` on ``scenario``; returns the finished run (session closed). Raises
    ``ScriptError`` (bad script) or ``chairside.training.TrainingError`` (bad scenario)."""
    from chairside.commands.train import protocol_for
    from chairside.domain.clock import WallClock
    from chairside.service import MonitorService
    from chairside.training import TrainingRun

    steps = load_script(script)
    tr = TrainingRun(scenario, driver=driver, seed=seed, start=start or WallClock().now(), manual=True)
    protocol = steps[0].get("protocol") or protocol_for(tr.scenario)
    svc = MonitorService(clock=tr.clock, driver=driver, protocol=protocol, settings=settings, simulated=True,
                         scenario=tr.scenario.name, sim_seed=tr.seed)
    tr.attach(svc)
    run = ScriptRun(tr, svc, steps, session_path=session, protocol=protocol, out=out or sys.stdout)
    try:
        run.run()
    finally:
        if not run.closed:  # a step failed unexpectedly: keep what was recorded
            try:
                svc.stop()
            except Exception:  # noqa: BLE001 - stopping the threads is tidy-up
                pass
        tr.stop()
    return run


def cli(args: Any) -> int:
    """``chairside train --script``: exit 0 when the run completes (refusals included), 2 on a
    bad script, scenario or options (one line naming what and where)."""
    from chairside.commands._common import UsageError, load_settings
    from chairside.training import TrainingError

    if not getattr(args, "headless", False):
        raise UsageError("--script runs headless: add --headless")
    settings = load_settings(staff_initials=getattr(args, "initials", None))
    try:
        run = run_script(scenario=args.scenario, script=args.script, seed=args.seed, session=args.session,
                         driver=args.driver, settings=settings)
    except ScriptError as exc:
        raise UsageError(str(exc)) from None
    except TrainingError as exc:
        raise UsageError(str(exc)) from None
    from chairside.commands.train import write_debrief

    written = write_debrief(run.training)
    path = getattr(run.service.store, "path", None)
    print(f"session: {path}" if path else "session: (in memory)")
    for p in written:
        print(f"debrief: {p}")
    print(f"steps: {len(run.steps)}, refused: {len(run.refusals)}")
    return 0
