"""Protocol templates: what a session follows (dosing, phases, BP cadence, recovery,
discharge criteria, limits profile), loaded from TOML files in ``data/protocols/``.

Owns: the ``ProtocolTemplate`` model and its sections, ``load_template(name_or_path)``,
``list_templates()``, ``template_names()``, and ``bp_cadence_s`` (the NIBP cadence the alarm
engine uses for "NIBP overdue").
Must not import: anything outside stdlib and pydantic, except ``chairside.domain.scales``.

Source tags. Every number in a template carries its tag in a sibling key:
``min_minutes = 30`` + ``min_minutes_source = "[C]"`` (+ optional ``min_minutes_ref``).
On the model they are in each section's ``sources`` / ``refs`` maps, and
``template.source("recovery.min_minutes") -> "[C]"``. A number without a tag, a tag
without its number, or an unknown key is refused; every error names the file and field:
``iv-ketamine-depression.toml: dosing.duration_min: must be > 0``.
"""

from __future__ import annotations

import math
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator

from chairside.domain.scales import SCALES

PROTOCOLS_DIR = Path(__file__).resolve().parents[1] / "data" / "protocols"
LIMITS_DIR = Path(__file__).resolve().parents[1] / "data" / "limits"

# Strict: a number written as a string ("10") or a bool is an error in a template, not coerced.
Num = Annotated[float, Strict()]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]

PhaseName = Literal["pre_infusion", "infusion", "recovery", "discharged"]
PHASE_ORDER: tuple[str, ...] = ("pre_infusion", "infusion", "recovery", "discharged")
_REQUIRED_PHASES = ("pre_infusion", "infusion", "recovery")

_TAG = r"\[(?:P\*?|S|C)(?:\+(?:P\*?|S|C))*\]"
TAG_RE = re.compile(rf"^(?:{_TAG})+$")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class TemplateError(ValueError):
    """A template file that cannot be used; the message names the file and the field."""


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    return isinstance(v, (tuple, list)) and len(v) > 0 and all(_is_number(x) for x in v)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Tagged(_Frozen):
    """A section whose numbers carry source tags in sibling ``<field>_source`` keys."""

    sources: dict[str, str] = Field(default_factory=dict)
    refs: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_tags(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        sources = dict(data.pop("sources", None) or {})
        refs = dict(data.pop("refs", None) or {})
        for key in list(data):
            for suffix, into in (("_source", sources), ("_ref", refs)):
                if key.endswith(suffix):
                    base = key[: -len(suffix)]
                    if base not in cls.model_fields or base in ("sources", "refs"):
                        raise ValueError(f"{key}: tags a field {base!r} that this section does not have")
                    into[base] = data.pop(key)
        data["sources"], data["refs"] = sources, refs
        return data

    @model_validator(mode="after")
    def _every_number_tagged(self) -> _Tagged:
        for name, tag in self.sources.items():
            if not isinstance(tag, str) or not TAG_RE.match(tag):
                raise ValueError(f"{name}_source: {tag!r} is not a source tag ([P], [P*], [S], [C] or a combination like [P+S])")
        for name in self.model_fields_set:
            if name in ("sources", "refs"):
                continue
            value = getattr(self, name)
            if value is not None and _is_number(value) and name not in self.sources:
                raise ValueError(f"{name}: no source tag (add {name}_source = \"[P]\", \"[P*]\", \"[S]\" or \"[C]\")")
        for name in self.sources:
            if getattr(self, name, None) is None:
                raise ValueError(f"{name}_source: tags a value that is not set")
        return self

    def source(self, field: str) -> str:
        """The source tag of one of this section's numbers ("" when it has none)."""
        return self.sources.get(field, "")

    def tagged(self, field: str) -> str:
        """``"30 [C]"``: a number with its tag, for display."""
        v = getattr(self, field)
        if isinstance(v, (tuple, list)):
            txt = "/".join(f"{x:g}" for x in v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            txt = f"{v:g}"
        else:
            txt = str(v)
        tag = self.source(field)
        return f"{txt} {tag}" if tag else txt


class PhaseSpec(_Frozen):
    name: PhaseName
    label: str
    description: str = ""


class Dosing(_Tagged):
    """The order: ``dose`` in the unit of ``basis``.

    ``mg_per_kg``: mg/kg given over ``duration_min`` (IV depression). ``mg_per_kg_h``: a rate
    order (chronic pain); ``duration_min`` is the usual infusion length. ``mg_fixed``: a fixed
    dose in mg (esketamine devices). ``usual_min``..``usual_max`` is the usual range (above it
    needs a recorded reason); above ``hard_max`` is refused.
    """

    drug: str
    route: str
    basis: Literal["mg_per_kg", "mg_per_kg_h", "mg_fixed"]
    dose: Num = Field(gt=0)
    duration_min: Num | None = Field(default=None, gt=0)
    usual_min: Num = Field(gt=0)
    usual_max: Num = Field(gt=0)
    hard_max: Num = Field(gt=0)
    allowed_doses: tuple[Num, ...] = ()
    device_mg: Num | None = Field(default=None, gt=0)
    device_wait_min: Num | None = Field(default=None, ge=0)
    confirm_weight: Bool = True
    # plausible bag concentration: outside it the order is refused (a typo, an undiluted vial)
    concentration_min_mg_ml: Num | None = Field(default=None, gt=0)
    concentration_max_mg_ml: Num | None = Field(default=None, gt=0)
    notes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _ranges(self) -> Dosing:
        lo, hi = self.concentration_min_mg_ml, self.concentration_max_mg_ml
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"concentration_max_mg_ml: must be > concentration_min_mg_ml ({lo:g})")
        if self.basis == "mg_per_kg" and self.duration_min is None:
            raise ValueError("duration_min: required when basis is mg_per_kg")
        if not self.usual_min <= self.usual_max:
            raise ValueError(f"usual_max: must be >= usual_min ({self.usual_min:g})")
        if not self.usual_max <= self.hard_max:
            raise ValueError(f"hard_max: must be >= usual_max ({self.usual_max:g})")
        if self.dose > self.hard_max:
            raise ValueError(f"dose: {self.dose:g} is above hard_max ({self.hard_max:g})")
        for d in self.allowed_doses:
            if not 0 < d <= self.hard_max:
                raise ValueError(f"allowed_doses: {d:g} is not in (0, hard_max]")
        return self

    @property
    def unit(self) -> str:
        return {"mg_per_kg": "mg/kg", "mg_per_kg_h": "mg/kg/h", "mg_fixed": "mg"}[self.basis]

    def describe(self) -> str:
        if self.basis == "mg_per_kg":
            return f"{self.dose:g} mg/kg {self.route} over {self.duration_min:g} min"
        if self.basis == "mg_per_kg_h":
            dur = f" for {self.duration_min / 60:g} h" if self.duration_min else ""
            return f"{self.dose:g} mg/kg/h {self.route}{dur}"
        doses = "/".join(f"{d:g}" for d in self.allowed_doses) or f"{self.dose:g}"
        return f"{doses} mg {self.route}"


class Gate(_Tagged):
    """The pre-infusion gate; its BP/HR/SpO2 thresholds are the ``limits_phase`` section of
    the template's limits profile (``data/limits/<profile>.toml``)."""

    limits_phase: Literal["pre_infusion"] = "pre_infusion"
    baseline_bp_count: Int = Field(ge=1)
    baseline_interval_min: Num | None = Field(default=None, gt=0)
    fasting_food_h: Num | None = Field(default=None, ge=0)
    fasting_fluids_h: Num | None = Field(default=None, ge=0)
    override_requires_reason: Bool = True
    checklist: tuple[str, ...] = ()
    # the template's own start checks (chairside.domain.start_checks): hard blocks refuse the
    # start, advisories need a recorded reason; a check in neither list is not made
    hard_blocks: tuple[str, ...] = ()
    advisories: tuple[str, ...] = ()
    concomitant_classes: tuple[str, ...] = ()  # drug classes asked before dosing (esketamine)

    @model_validator(mode="after")
    def _checks(self) -> Gate:
        known = ("consent", "escort", "fasting", "baseline_bp", "medications", "allergies", "concomitant")
        for name in ("hard_blocks", "advisories"):
            for k in getattr(self, name):
                if k not in known:
                    raise ValueError(f"{name}: unknown check {k!r} (known: {', '.join(known)})")
        both = set(self.hard_blocks) & set(self.advisories)
        if both:
            raise ValueError(f"advisories: {', '.join(sorted(both))} is also a hard block")
        if "concomitant" in (*self.hard_blocks, *self.advisories) and not self.concomitant_classes:
            raise ValueError("concomitant_classes: required when the concomitant check is made")
        return self


Trigger = Literal["start", "rate_increase"]


class Cadence(_Tagged):
    """BP check cadence in one phase: every ``every_min``; for ``tightened_for_min`` after each
    of ``tightened_after`` (infusion start, rate increase), every ``tightened_every_min``.
    ``checkpoints_min``: extra scheduled checks, minutes from the start / first dose."""

    every_min: Num | None = Field(default=None, gt=0)
    tightened_every_min: Num | None = Field(default=None, gt=0)
    tightened_for_min: Num | None = Field(default=None, gt=0)
    tightened_after: tuple[Trigger, ...] = ()
    checkpoints_min: tuple[Num, ...] = ()
    note: str = ""

    @model_validator(mode="after")
    def _tightening(self) -> Cadence:
        parts = (self.tightened_every_min, self.tightened_for_min, self.tightened_after or None)
        if any(p is not None for p in parts) and not all(p is not None for p in parts):
            raise ValueError("tightened_every_min: tightened_every_min, tightened_for_min and tightened_after go together")
        if self.tightened_every_min is not None and self.every_min is not None and self.tightened_every_min > self.every_min:
            raise ValueError("tightened_every_min: must be <= every_min")
        if any(c < 0 for c in self.checkpoints_min):
            raise ValueError("checkpoints_min: must be >= 0")
        return self

    @property
    def tightened(self) -> bool:
        return self.tightened_every_min is not None


class Recovery(_Tagged):
    min_minutes: Num = Field(gt=0)
    counted_from: Literal["infusion_end", "start"]
    extend_until_criteria_met: Bool = True
    note: str = ""


class Discharge(_Tagged):
    score_rule: Literal["aldrete_or_padss", "aldrete_and_padss", "aldrete", "padss"]
    aldrete_min: Int | None = Field(default=None, ge=0)
    padss_min: Int | None = Field(default=None, ge=0)
    vitals_within_pct: Num = Field(gt=0)
    moaas_required: Int | None = None
    cadss_max: Int | None = Field(default=None, ge=0)
    cadss_or_baseline: Bool = False
    escort_required: Bool = True
    resolved: tuple[str, ...] = ()
    rass_min: Int | None = None  # "resolved" agitation/sedation on RASS, when RASS is recorded
    rass_max: Int | None = None
    spo2_min: Num | None = Field(default=None, gt=0, le=100)  # "respiratory depression resolved"
    no_driving: str = ""

    @model_validator(mode="after")
    def _rule(self) -> Discharge:
        need = {"aldrete": ("aldrete_min",), "padss": ("padss_min",)}
        needed = need.get(self.score_rule, ("aldrete_min", "padss_min"))
        for f in needed:
            if getattr(self, f) is None:
                raise ValueError(f"{f}: required by score_rule {self.score_rule!r}")
        known = ("sedation", "dissociation", "respiratory_depression")
        for r in self.resolved:
            if r not in known:
                raise ValueError(f"resolved: unknown criterion {r!r} (known: {', '.join(known)})")
        if "respiratory_depression" in self.resolved and self.spo2_min is None:
            raise ValueError("spo2_min: required when respiratory_depression must be resolved")
        for f, scale in (("aldrete_min", "aldrete"), ("padss_min", "padss"), ("moaas_required", "moaas"),
                         ("cadss_max", "cadss"), ("rass_min", "rass"), ("rass_max", "rass")):
            v = getattr(self, f)
            s = SCALES.get(scale)
            if v is not None and s is not None and not (s.min <= v <= (s.max if s.max is not None else v)):
                raise ValueError(f"{f}: {v} is outside the {scale} scale ({s.range_text})")
        return self


When = Literal["baseline", "end_of_infusion", "end_of_recovery", "discharge", "on_event",
               "with_vitals", "bp_above_advisory"]


class ObsSchedule(_Tagged):
    """When a scale is due: named moments, ``at_min`` (minutes from start) and/or ``every_min``."""

    scale: str
    when: tuple[When, ...] = ()
    at_min: tuple[Num, ...] = ()
    every_min: Num | None = Field(default=None, gt=0)

    @field_validator("scale")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SCALES:
            raise ValueError(f"unknown scale {v!r} (known: {', '.join(SCALES)})")
        return v


class Rems(_Tagged):
    """Spravato REMS Patient Monitoring Form (outpatient) fields and numbers."""

    form_version: str
    mg_per_device: Num = Field(gt=0)
    bp_at_min: Num = Field(gt=0)
    bp_guide_sys: Num = Field(gt=0)
    bp_guide_dia: Num = Field(gt=0)
    min_minutes: Num = Field(gt=0)
    bp_at_min_window: Num | None = Field(default=None, gt=0)  # +/- minutes around bp_at_min
    bp_before_completion_min: Num | None = Field(default=None, gt=0)  # a BP this recent at discharge
    fields: tuple[str, ...]
    concomitant_classes: tuple[str, ...] = ()
    note: str = ""


class Course(_Tagged):
    """The course of treatment: how many sessions the template plans."""

    planned_sessions: Int = Field(ge=1)
    note: str = ""


class ProtocolTemplate(_Tagged):
    name: str
    title: str
    description: str = ""
    indication: str = ""
    limits_profile: str
    phases: tuple[PhaseSpec, ...]
    dosing: Dosing
    gate: Gate
    bp_cadence: dict[PhaseName, Cadence]
    recovery: Recovery
    discharge: Discharge
    observations: tuple[ObsSchedule, ...] = ()
    rems: Rems | None = None
    course: Course | None = None
    notes: tuple[str, ...] = ()

    @field_validator("name", "limits_profile")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG_RE.match(v):
            raise ValueError(f"{v!r} must be lowercase letters, digits, '-' or '_'")
        return v

    @model_validator(mode="after")
    def _phases(self) -> ProtocolTemplate:
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError("phases: a phase is listed twice")
        for req in _REQUIRED_PHASES:
            if req not in names:
                raise ValueError(f"phases: {req!r} is missing")
        if names != sorted(names, key=PHASE_ORDER.index):
            raise ValueError(f"phases: must be in the order {', '.join(PHASE_ORDER)}")
        for ph in self.bp_cadence:
            if ph not in names:
                raise ValueError(f"bp_cadence: phase {ph!r} is not in phases")
        for ph in ("infusion", "recovery"):
            c = self.bp_cadence.get(ph)  # type: ignore[call-overload]
            if c is None or c.every_min is None:
                raise ValueError(f"bp_cadence: {ph}.every_min is required")
        return self

    # ---------------------------------------------------------------- conveniences

    @property
    def drug(self) -> str:
        return self.dosing.drug

    @property
    def min_recovery_min(self) -> float:
        return self.recovery.min_minutes

    @property
    def limits_path(self) -> Path:
        return LIMITS_DIR / f"{self.limits_profile}.toml"

    def phase_label(self, phase: str) -> str:
        for p in self.phases:
            if p.name == phase:
                return p.label
        return phase

    def source(self, path: str) -> str:  # type: ignore[override]
        """The source tag of a number by dotted path: ``"recovery.min_minutes"`` -> ``"[C]"``;
        ``"bp_cadence.infusion.every_min"`` and ``"observations.0.every_min"`` work too."""
        parts = path.split(".")
        obj: Any = self
        for part in parts[:-1]:
            if isinstance(obj, dict):
                obj = obj[part]
            elif isinstance(obj, tuple):
                obj = obj[int(part)]
            else:
                obj = getattr(obj, part)
        if not isinstance(obj, _Tagged):
            raise KeyError(path)
        return obj.sources.get(parts[-1], "")


# ---------------------------------------------------------------------------- loading

_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "extra_forbidden": "unknown key",
    "missing": "required",
    "literal_error": "must be one of {expected}",
}


def _format(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err["loc"]]
    msg = err["msg"]
    template = _MESSAGES.get(err["type"])
    if template:
        try:
            ctx = {k: (f"{v:g}" if isinstance(v, float) else v) for k, v in (err.get("ctx") or {}).items()}
            msg = template.format(**ctx)
        except (KeyError, IndexError):
            pass
    elif err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_.]*): (.*)$", msg, re.S)
        if m:
            loc.append(m.group(1))
            msg = m.group(2)
    # pydantic puts the tagged-union/function markers in loc; keep only real field names
    loc = [p for p in loc if not p.startswith("function-") and p != "[key]"]
    return f"{'.'.join(loc) or '(top level)'}: {msg}"


def parse_template(doc: dict[str, Any], origin: str = "<template>") -> ProtocolTemplate:
    """Validate a template document (already parsed TOML); errors name ``origin`` and the field."""
    try:
        return ProtocolTemplate.model_validate(doc)
    except ValidationError as exc:
        raise TemplateError(f"{origin}: {_format(exc.errors()[0])}") from None


def _resolve(name_or_path: str | Path) -> Path:
    s = str(name_or_path)
    p = Path(s)
    if s.endswith(".toml") or "/" in s or "\\" in s or p.is_file():
        return p
    candidate = PROTOCOLS_DIR / f"{s}.toml"
    if not candidate.is_file():
        known = ", ".join(template_names()) or "none"
        raise TemplateError(f"unknown protocol template {s!r} (known: {known})")
    return candidate


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int) -> ProtocolTemplate:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{p}: cannot read: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{p.name}: not valid TOML: {exc}") from None
    doc.setdefault("name", p.stem)
    tpl = parse_template(doc, p.name)
    if tpl.name != p.stem:
        raise TemplateError(f"{p.name}: name: {tpl.name!r} does not match the file name {p.stem!r}")
    return tpl


def load_template(name_or_path: str | Path) -> ProtocolTemplate:
    """A shipped template by name (``"iv-ketamine-depression"``) or a TOML file by path."""
    p = _resolve(name_or_path)
    try:
        st = p.stat()
    except OSError as exc:
        raise TemplateError(f"{p}: cannot read: {exc.strerror or exc}") from None
    return _load_cached(str(p.resolve()), st.st_mtime_ns)


def template_names() -> list[str]:
    return sorted(p.stem for p in PROTOCOLS_DIR.glob("*.toml"))


def list_templates() -> list[ProtocolTemplate]:
    """Every shipped template, by name."""
    return [load_template(n) for n in template_names()]


def bp_cadence_s(template: ProtocolTemplate, phase: str, seconds_since_start_or_last_increase: float | None = None) -> float:
    """Seconds between scheduled NIBP checks in ``phase`` (``math.inf`` when none are scheduled).

    Where the phase's cadence is tightened after the infusion start or a rate increase
    (chronic pain: every 5 min for 15 min, else every 15 min), pass the seconds since the
    later of the two; ``None`` means no start/increase to count from.
    """
    c = template.bp_cadence.get(phase)  # type: ignore[call-overload]
    if c is None or c.every_min is None:
        return math.inf
    s = seconds_since_start_or_last_increase
    if c.tightened and s is not None and 0 <= s < c.tightened_for_min * 60:  # type: ignore[operator]
        return c.tightened_every_min * 60  # type: ignore[operator]
    return c.every_min * 60
