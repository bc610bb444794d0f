"""Scenario files: the versioned schema (``chairside-scenario/1``), loading and validation.

Owns: the pydantic models of a scenario (patient, pkpd overrides, devices, timeline of
actions, states with trends/artefacts/triggers, global triggers and artefacts, expected
trainee actions for the debrief), the action vocabulary shared by timelines, triggers
and ``Simulation.inject``, the condition mini-language (``true.sbp >= 180 and
displayed.spo2 < 90``), and ``load_file`` which refuses a bad file with
``ScenarioError("<file>: <field>: <reason>")``. The schema is documented in
``simulators/SCENARIOS.md``.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

import operator
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from simulators.devices import ARTEFACT_KINDS, CLEARED_BY
from simulators.physiology import RHYTHMS, VARIABLES

SCHEMA = "chairside-scenario/1"
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

TREATMENTS = ("oxygen", "jaw_thrust", "legs_raised", "midazolam", "ondansetron", "reassure", "stimulate")
DEVICE_EVENTS = tuple(sorted(set(CLEARED_BY.values()) | {"nibp_stat", "nibp_measure"}))
PUMP_EVENTS = ("pause_infusion", "resume_infusion", "stop_infusion")
_IDENT = r"^[a-z][a-z0-9_]*$"

# Trainee actions with no model effect: ``inject`` logs them as marks and the debrief
# scores them (an unknown name given to ``inject`` is logged as a mark too, but a scenario
# file may only expect or trigger on names of this vocabulary: a typo is refused).
MARKS = {
    "call_prescriber": "notify the prescriber (on site: REMS) / call for help",
    "call_ems": "call emergency medical services",
    "acknowledge": "acknowledge an alarm at the console",
}
# What a trainee can do, by the name the simulator knows it (``inject(name, **args)``,
# ``[[expected]].action``): the pump, rescue drugs and manoeuvres, NIBP, fixing the
# equipment, and the marks above. ``motion_stops`` (the patient keeps still) is an
# instructor event, not a trainee action.
TRAINEE_ACTIONS = (
    *PUMP_EVENTS, "set_rate", "labetalol", *TREATMENTS, "nibp_stat", "nibp_measure",
    "probe_reattach", "cuff_reapply", "reconnect_cable", "leads_reattach", "warm_hand", *MARKS,
)
# Console names of the same actions (``chairside.service`` commands, the intervention
# pick-list of ``chairside/data/console.toml``) -> the simulator's name. ``inject`` and the
# scenario loader accept both; the debrief and the event log use the simulator's name.
ALIASES = {
    "change_rate": "set_rate",
    "airway_manoeuvre": "jaw_thrust",
    "airway": "jaw_thrust",
    "reassurance": "reassure",
    "stimulation": "stimulate",
    "check_probe": "probe_reattach",
    "check_cuff": "cuff_reapply",
    "ems": "call_ems",
    "stat_nibp": "nibp_stat",
}


def canonical(name: str) -> str:
    """The simulator's name of a trainee or instructor action (console aliases resolved)."""
    return ALIASES.get(name, name)

TRUE_NAMES = ("sbp", "dbp", "map", "hr", "pr", "sao2", "pi", "cp", "ce", "rate", "sbp_smooth",
              "dbp_smooth", "hr_smooth", *VARIABLES)
DISPLAYED_NAMES = ("hr", "pr", "spo2", "pi", "nibp_sys", "nibp_dia", "nibp_map", "nibp_age_s",
                   # flags, 1 when the condition is shown, else 0
                   "probe_off", "pulse_search", "motion", "low_perfusion", "nibp_failed", "nibp_measuring",
                   "disconnected", "ecg_off")
SIM_NAMES = ("t", "state_s", "infusion_min")
LAYERS = {"true": TRUE_NAMES, "displayed": DISPLAYED_NAMES, "sim": SIM_NAMES}
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
        "==": operator.eq, "!=": operator.ne}
_TERM = re.compile(r"^\s*(true|displayed|sim)\.([a-z_0-9]+)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


class ScenarioError(ValueError):
    """A scenario file is refused: the message names the file, the field and the reason."""


class Condition:
    """A parsed condition: terms ``layer.name op number`` joined by ``and`` / ``or``
    (``and`` binds tighter). A term on a missing value (dashes) is false."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.groups: list[list[tuple[str, str, Any, float]]] = []
        for alt in re.split(r"\s+or\s+", text.strip()):
            group = []
            for part in re.split(r"\s+and\s+", alt):
                m = _TERM.match(part)
                if not m:
                    raise ValueError(f"cannot read {part.strip()!r}: expected e.g. 'displayed.nibp_sys >= 180'")
                layer, name, op, num = m.groups()
                if name not in LAYERS[layer]:
                    raise ValueError(f"unknown value {layer}.{name}; {layer} values: {', '.join(LAYERS[layer])}")
                group.append((layer, name, _OPS[op], float(num)))
            self.groups.append(group)

    @property
    def layers(self) -> set[str]:
        return {term[0] for g in self.groups for term in g}

    def evaluate(self, lookup) -> bool:
        """``lookup(layer, name)`` returns the value or None."""
        for group in self.groups:
            ok = True
            for layer, name, op, num in group:
                value = lookup(layer, name)
                if value is None or not op(value, num):
                    ok = False
                    break
            if ok:
                return True
        return False

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def _check_condition(text: str) -> str:
    Condition(text)  # raises ValueError with the reason
    return text


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Shape = Literal["linear", "sigmoid", "exp", "step"]
ParamName = Literal[tuple(VARIABLES)]  # type: ignore[valid-type]


class Trend(_M):
    """Move a model state variable to ``to`` over ``over_s`` seconds."""

    param: ParamName
    to: float
    over_s: float = Field(default=0.0, ge=0)
    shape: Shape = "linear"
    delay_s: float = Field(default=0.0, ge=0)


# --- actions ------------------------------------------------------------------------
class _Act(_M):
    t: float | None = Field(default=None, ge=0)  # timeline only: absolute sim seconds
    delay_s: float = Field(default=0.0, ge=0)  # in triggers/states: after the trigger fires
    reason: str = ""


class StartInfusion(_Act):
    action: Literal["start_infusion"]
    drug: Literal["ketamine"] = "ketamine"
    dose_mg_kg: float | None = Field(default=None, gt=0, le=10)
    over_min: float | None = Field(default=None, gt=0, le=1440)
    rate_mg_kg_h: float | None = Field(default=None, ge=0, le=10)

    @model_validator(mode="after")
    def _dose_or_rate(self):
        if self.rate_mg_kg_h is None and (self.dose_mg_kg is None or self.over_min is None):
            raise ValueError("give rate_mg_kg_h, or dose_mg_kg with over_min")
        return self

    def rate(self) -> float:
        if self.rate_mg_kg_h is not None:
            return self.rate_mg_kg_h
        return self.dose_mg_kg / self.over_min * 60.0  # type: ignore[operator]


class SetRate(_Act):
    action: Literal["set_rate"]
    rate_mg_kg_h: float = Field(ge=0, le=10)


class PumpAction(_Act):
    action: Literal["pause_infusion", "resume_infusion", "stop_infusion"]


class Bolus(_Act):
    action: Literal["bolus"]
    dose_mg_kg: float = Field(gt=0, le=5)


class Labetalol(_Act):
    action: Literal["labetalol"]
    dose_mg_kg: float | None = Field(default=None, gt=0, le=2)


class Treatment(_Act):
    action: Literal[TREATMENTS]  # type: ignore[valid-type]


class DeviceEvent(_Act):
    action: Literal[DEVICE_EVENTS]  # type: ignore[valid-type]


class SetNibpInterval(_Act):
    action: Literal["set_nibp_interval"]
    interval_s: float = Field(ge=0, le=7200)


class SetVar(_Act):
    action: Literal["set"]
    param: ParamName
    to: float


class TrendAction(_Act):
    action: Literal["trend"]
    param: ParamName
    to: float
    over_s: float = Field(ge=0)
    shape: Shape = "linear"


class SetRhythm(_Act):
    action: Literal["set_rhythm"]
    rhythm: Literal[RHYTHMS]  # type: ignore[valid-type]
    rate_bpm: float | None = Field(default=None, ge=20, le=300)
    pulse_deficit: float | None = Field(default=None, ge=0, le=0.9)


class ArtefactAction(_Act):
    action: Literal["artefact"]
    kind: Literal[ARTEFACT_KINDS]  # type: ignore[valid-type]
    dur_s: float | None = Field(default=None, gt=0)
    count: int = Field(default=1, ge=1)
    level: float = Field(default=1.0, gt=0, le=1)


class Goto(_Act):
    action: Literal["goto"]
    state: str


class Log(_Act):
    action: Literal["log"]
    text: str


class Mark(_Act):
    """A trainee action with no model effect (``call_prescriber``...), logged and scored."""

    action: Literal["mark"]
    name: str = Field(pattern=_IDENT)


Action = Annotated[
    Union[StartInfusion, SetRate, PumpAction, Bolus, Labetalol, Treatment, DeviceEvent, SetNibpInterval,
          SetVar, TrendAction, SetRhythm, ArtefactAction, Goto, Log, Mark],
    Field(discriminator="action"),
]


class Trigger(_M):
    """Fires when a condition holds (for ``for_s``), on a trainee event, or ``after_s``
    seconds into the state; then runs ``do``, logs and optionally goes to a state."""

    when: str | None = None
    on_event: str | None = Field(default=None, pattern=_IDENT)  # an action or mark name (aliases accepted)
    after_s: float | None = Field(default=None, ge=0)
    for_s: float = Field(default=0.0, ge=0)
    once: bool = True
    do: list[Action] = []
    goto: str | None = None
    log: str = ""

    @field_validator("when")
    @classmethod
    def _when(cls, v: str | None) -> str | None:
        return v if v is None else _check_condition(v)

    @field_validator("on_event")
    @classmethod
    def _event(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = canonical(v)
        if v not in _ACTION_TAGS and v not in MARKS:
            raise ValueError(f"unknown event {v!r}; an action ({', '.join(sorted(_ACTION_TAGS - {'mark'}))}) "
                             f"or a mark ({', '.join(MARKS)})")
        return v

    @model_validator(mode="after")
    def _one_cause(self):
        causes = [c for c in (self.when, self.on_event, self.after_s) if c is not None]
        if len(causes) != 1:
            raise ValueError("a trigger needs exactly one of when, on_event, after_s")
        return self


class StateArtefact(_M):
    kind: Literal[ARTEFACT_KINDS]  # type: ignore[valid-type]
    at_s: float = Field(default=0.0, ge=0)
    dur_s: float | None = Field(default=None, gt=0)
    count: int = Field(default=1, ge=1)
    level: float = Field(default=1.0, gt=0, le=1)


class ScenarioArtefact(StateArtefact):
    t: float = Field(ge=0)
    at_s: float = 0.0


class State(_M):
    description: str = ""
    debrief: list[str] = []  # teaching points the debrief shows where the run entered this state
    trends: list[Trend] = []
    artefacts: list[StateArtefact] = []
    do: list[Action] = []
    triggers: list[Trigger] = []
    duration_s: float | None = Field(default=None, gt=0)  # auto-advance to ``next``
    next: str | None = None

    @model_validator(mode="after")
    def _next_needs_duration(self):
        if (self.duration_s is None) != (self.next is None):
            raise ValueError("duration_s and next go together")
        return self


def _trainee(v: str) -> str:
    v = canonical(v)
    if v not in TRAINEE_ACTIONS:
        raise ValueError(f"unknown trainee action {v!r}; choose one of: {', '.join(TRAINEE_ACTIONS)}")
    return v


class Expected(_M):
    """A trainee action the debrief looks for: ``action`` (or one of its ``equivalent``
    actions: stopping satisfies a pause) within ``within_s`` after the condition ``after``
    first holds (``"start"``: from the start of the run). An action taken in anticipation
    -- once ``anticipate`` has held, or while the scenario is in one of ``anticipate_in``
    (the trend that leads to the condition has begun), before ``after`` holds -- earns the
    expectation too, marked "anticipated" in the debrief."""

    id: str = Field(pattern=_IDENT)
    action: str = Field(pattern=_IDENT)
    equivalent: list[str] = []
    within_s: float = Field(gt=0)
    after: str = "start"
    anticipate: str | None = None
    anticipate_in: list[str] = []
    points: int = Field(default=1, ge=0)
    description: str = ""

    @field_validator("after")
    @classmethod
    def _after(cls, v: str) -> str:
        return v if v == "start" else _check_condition(v)

    @field_validator("anticipate")
    @classmethod
    def _anticipate(cls, v: str | None) -> str | None:
        return v if v is None else _check_condition(v)

    @field_validator("action")
    @classmethod
    def _trainee_action(cls, v: str) -> str:
        return _trainee(v)

    @field_validator("equivalent")
    @classmethod
    def _equivalents(cls, v: list[str]) -> list[str]:
        return [_trainee(x) for x in v]

    def counts(self, name: str) -> bool:
        """Whether the trainee action ``name`` (simulator name) satisfies this expectation."""
        return name == self.action or name in self.equivalent


class Harmful(_M):
    """A trainee action that harms the patient in this scenario: ``action`` while the
    condition ``when`` holds (``"start"``: at any time) or while the scenario is in one of
    ``in_states``. It costs ``points`` and the debrief says ``description``."""

    id: str = Field(pattern=_IDENT)
    action: str = Field(pattern=_IDENT)
    when: str = "start"
    in_states: list[str] = []
    points: int = Field(default=1, ge=0)
    description: str

    @field_validator("when")
    @classmethod
    def _when(cls, v: str) -> str:
        return v if v == "start" else _check_condition(v)

    @field_validator("action")
    @classmethod
    def _trainee_action(cls, v: str) -> str:
        return _trainee(v)


class Patient(_M):
    """Baseline values at rest (required: the scenario states its patient; the model
    document's default patient is 70 kg, 128/78 mmHg, HR 72, SpO2 98 %). The bounds are
    sanity checks of the file, not clinical limits."""

    weight_kg: float = Field(ge=30, le=250)
    age: float = Field(ge=18, le=100)
    sbp: float = Field(ge=60, le=260)
    dbp: float = Field(ge=30, le=160)
    hr: float = Field(ge=30, le=200)
    spo2: float = Field(ge=70, le=100)
    hypertension: bool = False

    @model_validator(mode="after")
    def _sbp_above_dbp(self):
        if self.sbp <= self.dbp + 10:
            raise ValueError("sbp must exceed dbp by more than 10 mmHg")
        return self


class PkPd(_M):
    pk: Literal["domino", "clements"] = "domino"
    ke0_per_min: float | None = Field(default=None, gt=0, le=10)
    ec50_ug_ml: float | None = Field(default=None, gt=0)
    gamma: float | None = Field(default=None, gt=0, le=10)
    emax_sbp: float | None = Field(default=None, ge=0, le=3)
    emax_dbp: float | None = Field(default=None, ge=0, le=3)
    emax_hr: float | None = Field(default=None, ge=0, le=3)
    emax_factor: float | None = Field(default=None, gt=0, le=10)  # fixed individual factor
    variation: bool = True  # lognormal inter-individual variation


class NibpCfg(_M):
    interval_s: float | None = Field(default=None, ge=0, le=7200)
    first_at_s: float | None = Field(default=None, ge=0)
    align_to_clock: bool = False
    measure_s: float | None = Field(default=None, ge=5, le=180)
    retry_delay_s: float | None = Field(default=None, ge=0)
    retries: int | None = Field(default=None, ge=0, le=5)
    fail_prob: float | None = Field(default=None, ge=0, le=1)
    motion_fail_prob: float | None = Field(default=None, ge=0, le=1)
    arrhythmia_fail_prob: float | None = Field(default=None, ge=0, le=1)
    read_noise_sd_mmhg: float | None = Field(default=None, ge=0, le=20)


class Spo2Cfg(_M):
    averaging_s: Literal[2, 4, 8, 10, 12, 14, 16] | None = None
    display_lag_s: int | None = Field(default=None, ge=0, le=20)
    alarm_delay_s: int | None = Field(default=None, ge=0, le=60)
    low_limit_pct: int | None = Field(default=None, ge=50, le=100)


class EcgCfg(_M):
    averaging_s: int | None = Field(default=None, ge=1, le=30)


class IntervalCfg(_M):
    interval_s: float | None = Field(default=None, gt=0, le=3600)


class MasimoCfg(_M):
    serial_number: str | None = Field(default=None, pattern=r"^[0-9]{1,10}$")


class ArtefactRates(_M):
    motion_per_h: float | None = Field(default=None, ge=0, le=120)
    probe_off_per_h: float | None = Field(default=None, ge=0, le=120)
    low_perfusion_per_h: float | None = Field(default=None, ge=0, le=120)


class Devices(_M):
    nibp: NibpCfg = NibpCfg()
    spo2: Spo2Cfg = Spo2Cfg()
    ecg: EcgCfg = EcgCfg()
    ge_s5: IntervalCfg = IntervalCfg()
    hl7: IntervalCfg = IntervalCfg()
    masimo: MasimoCfg = MasimoCfg()
    artefacts: ArtefactRates = ArtefactRates()


class Scenario(_M):
    schema_: Literal["chairside-scenario/1"] = Field(alias="schema")
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    trains: str = ""
    description: str = ""
    duration_s: float = Field(gt=0, le=24 * 3600)
    seed: int | None = Field(default=None, ge=0)
    source: str = ""
    patient: Patient
    pkpd: PkPd = PkPd()
    devices: Devices = Devices()
    timeline: list[Action] = []
    artefacts: list[ScenarioArtefact] = []
    initial_state: str | None = None
    states: dict[str, State] = {}
    triggers: list[Trigger] = []
    expected: list[Expected] = []
    harmful: list[Harmful] = []

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _cross_refs(self):
        for i, a in enumerate(self.timeline):
            if a.t is None:
                raise ValueError(f"timeline[{i}]: a timeline action needs t (seconds)")
        names = set(self.states)
        if self.initial_state is not None and self.initial_state not in names:
            raise ValueError(f"initial_state: no state named {self.initial_state!r}")
        for where, trig in self._all_triggers():
            if trig.goto is not None and trig.goto not in names:
                raise ValueError(f"{where}.goto: no state named {trig.goto!r}")
        for sname, st in self.states.items():
            if st.next is not None and st.next not in names:
                raise ValueError(f"states.{sname}.next: no state named {st.next!r}")
        for where, act in self._all_actions():
            if isinstance(act, Goto) and act.state not in names:
                raise ValueError(f"{where}.state: no state named {act.state!r}")
        ids = [e.id for e in self.expected]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"expected: duplicate id {sorted(dup)[0]!r}")
        for i, e in enumerate(self.expected):
            for s in e.anticipate_in:
                if s not in names:
                    raise ValueError(f"expected[{i}].anticipate_in: no state named {s!r}")
        for i, h in enumerate(self.harmful):
            for s in h.in_states:
                if s not in names:
                    raise ValueError(f"harmful[{i}].in_states: no state named {s!r}")
        return self

    def equivalents(self) -> dict[str, set[str]]:
        """action -> the other trainee actions that count as it (from the expectations):
        the scenario's own ``on_event`` triggers accept them too."""
        out: dict[str, set[str]] = {}
        for e in self.expected:
            out.setdefault(e.action, set()).update(e.equivalent)
        return out

    def _all_triggers(self):
        for i, tr in enumerate(self.triggers):
            yield f"triggers[{i}]", tr
        for sname, st in self.states.items():
            for i, tr in enumerate(st.triggers):
                yield f"states.{sname}.triggers[{i}]", tr

    def _all_actions(self):
        for i, a in enumerate(self.timeline):
            yield f"timeline[{i}]", a
        for where, tr in self._all_triggers():
            for j, a in enumerate(tr.do):
                yield f"{where}.do[{j}]", a
        for sname, st in self.states.items():
            for j, a in enumerate(st.do):
                yield f"states.{sname}.do[{j}]", a

    @property
    def patient_spec(self):
        from simulators.physiology import PatientSpec

        p = self.patient
        return PatientSpec(p.weight_kg, p.age, p.sbp, p.dbp, p.hr, p.spo2, p.hypertension)


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse(data: dict[str, Any], where: str = "<scenario>") -> Scenario:
    """Validate a scenario mapping; ScenarioError naming ``where``, the field and the reason."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a scenario is a table of fields")
    if data.get("schema") != SCHEMA:
        got = data.get("schema")
        raise ScenarioError(f"{where}: schema: expected {SCHEMA!r}, got {got!r}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        # a typo gives "unknown field" and "field required": name the typo first
        err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        raw = err["loc"]
        # drop the union tag pydantic puts after a list index of actions
        loc = _loc(tuple(p for i, p in enumerate(raw)
                         if not (i >= 2 and isinstance(raw[i - 1], int) and raw[i - 2] in ("timeline", "do")
                                 and isinstance(p, str) and p in _UNION_TAGS)))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "union_tag_invalid":
            ctx = err.get("ctx", {})
            loc += ".action"
            msg = f"unknown action {ctx.get('tag')!r}; choose one of: {ctx.get('expected_tags', '')}"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        prefix = "" if not raw else f"{loc}: "
        raise ScenarioError(f"{where}: {prefix}{msg}{more}") from None


_ACTION_TAGS = {
    "start_infusion", "set_rate", "pause_infusion", "resume_infusion", "stop_infusion", "bolus", "labetalol",
    *TREATMENTS, *DEVICE_EVENTS, "set_nibp_interval", "set", "trend", "set_rhythm", "artefact", "goto", "log", "mark",
}
# pydantic names a model with an "after" validator this way in the error location of a
# tagged union; ``parse`` drops it from the field path like the action tags
_UNION_TAGS = {*_ACTION_TAGS, "function-after[_dose_or_rate(), StartInfusion]"}


def load_file(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return parse(data, str(path))


def find(name_or_path: str | Path) -> Path:
    """A scenario by name (``simulators/scenarios/<name>.toml``) or by path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists() or "/" in str(name_or_path):
        if not p.exists():
            raise ScenarioError(f"{p}: no such scenario file")
        return p
    candidate = SCENARIO_DIR / f"{name_or_path}.toml"
    if not candidate.exists():
        raise ScenarioError(f"unknown scenario {str(name_or_path)!r}; choose one of: {', '.join(names())}")
    return candidate


def names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))
