"""Limits profiles: the TOML data files under ``chairside/data/limits/`` and their validation.

Owns: ``LimitsProfile`` (and its parts: ``Tier``, ``Ladder``, ``Combined``, ``GateRule``,
``Number``), ``load_profile(name_or_path)``, ``list_profiles()``, ``LimitsError``.
Every clinical number of the alarm engine lives in a profile with its source tag; the
engine holds no clinical literal. A bad file is refused with ``LimitsError`` naming the
file, the field and the reason.
Must not import: textual, serial, sqlite3, chairside.store, chairside.transport,
chairside.service, chairside.ui.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chairside.domain.describe import PRIORITY_RANK as _RANKS

PHASES = ("pre_infusion", "infusion", "recovery", "discharged")
PRIORITIES = ("low", "medium", "high")
PRIORITY_RANK = _RANKS  # the one map of priority ranks (chairside.domain.describe)
SOURCE_TAGS = ("[P]", "[P*]", "[S]", "[C]")
OPS = (">=", ">", "<", "<=")
SCHEMA = "chairside-limits/1"

Op = Literal[">=", ">", "<", "<="]
PriorityName = Literal["low", "medium", "high"]
PhaseName = Literal["pre_infusion", "infusion", "recovery", "discharged"]
SourceTag = Literal["[P]", "[P*]", "[S]", "[C]"]


class LimitsError(ValueError):
    """A limits profile is refused: ``<file>: <field>: <reason>``."""


class _M(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Number(_M):
    """A number with its source tag (and where it comes from); never NaN or infinite."""

    value: float
    source: SourceTag
    basis: str = ""

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class Tier(_M):
    phases: tuple[PhaseName, ...] = Field(min_length=1)
    priority: PriorityName
    limit: float
    source: SourceTag
    basis: str = ""
    delay_s: Number | None = None
    confirm: int = Field(default=1, ge=1)  # consecutive discrete readings before it is met
    escalate_after: int = Field(default=0, ge=0)  # consecutive readings that escalate it
    escalate_to: PriorityName | None = None

    @field_validator("delay_s")
    @classmethod
    def _delay(cls, v: Number | None) -> Number | None:
        if v is not None and v.value < 0:
            raise ValueError("a delay is not negative")
        return v

    @model_validator(mode="after")
    def _esc(self) -> Tier:
        if self.escalate_after and self.escalate_to is None:
            raise ValueError("escalate_after needs escalate_to")
        if self.escalate_to and PRIORITY_RANK[self.escalate_to] <= PRIORITY_RANK[self.priority]:
            raise ValueError("escalate_to must be above the tier's priority")
        if self.escalate_to and self.escalate_after < 2:
            raise ValueError("escalate_after must be >= 2 when escalate_to is set")
        return self

    @property
    def delay(self) -> float:
        return self.delay_s.value if self.delay_s is not None else 0.0


class Ladder(_M):
    """One alarm rule on one parameter (a device reading) or one scale (an observation),
    with tiers giving its low/medium/high levels by phase."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    group: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")  # one alarm per group
    param: str | None = None  # a reading param (Param) ...
    scale: str | None = None  # ... or an observation scale
    value_from: str = "score"  # observations: score | item:<name> | max_item | count_items
    op: Op
    relative: bool = False  # limit is a rise over the recorded baseline
    message: str
    clear_margin: Number | None = None
    tiers: tuple[Tier, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Ladder:
        if (self.param is None) == (self.scale is None):
            raise ValueError("give exactly one of param (a reading) or scale (an observation)")
        if self.param is not None and self.clear_margin is None:
            raise ValueError("a reading ladder needs clear_margin (hysteresis)")
        if self.clear_margin is not None and self.clear_margin.value < 0:
            raise ValueError("clear_margin is not negative")
        discrete = self.scale is not None or (self.param or "").startswith("nibp")
        if discrete and any(t.delay > 0 for t in self.tiers):
            raise ValueError("delay_s applies to continuous signals only (NIBP and scales are discrete: "
                             "use confirm)")
        if self.relative and self.param not in ("nibp_sys", "nibp_dia", "hr", "spo2"):
            raise ValueError("relative limits exist for nibp_sys, nibp_dia, hr, spo2 (the baseline)")
        vf = self.value_from
        if not (vf in ("score", "max_item", "count_items") or (vf.startswith("item:") and len(vf) > 5)):
            raise ValueError(f"value_from {vf!r}: use score, item:<name>, max_item or count_items")
        above = self.op in (">=", ">")
        for phase in PHASES:
            tiers = [t for t in self.tiers if phase in t.phases]
            # tiers of a higher priority must be at least as extreme as lower ones
            for a in tiers:
                for b in tiers:
                    if PRIORITY_RANK[a.priority] < PRIORITY_RANK[b.priority]:
                        worse = b.limit >= a.limit if above else b.limit <= a.limit
                        if not worse:
                            raise ValueError(
                                f"phase {phase}: {b.priority} limit {b.limit:g} is less extreme "
                                f"than {a.priority} limit {a.limit:g}"
                            )
        return self

    @property
    def key(self) -> str:
        return self.param if self.param is not None else self.scale  # type: ignore[return-value]

    def tiers_for(self, phase: str) -> tuple[Tier, ...]:
        return tuple(t for t in self.tiers if phase in t.phases)


class Term(_M):
    param: str  # a reading param, or an observation scale when value_from is given
    value_from: str | None = None  # observations: score | item:<name> | max_item | count_items
    op: Op
    limit: float
    clear_margin: float = Field(default=0.0, ge=0)
    source: SourceTag
    basis: str = ""


class Combined(_M):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    message: str
    priority: PriorityName
    phases: tuple[PhaseName, ...] = Field(min_length=1)
    primary: str
    delay_s: Number
    source: SourceTag
    basis: str = ""
    when: tuple[Term, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _primary(self) -> Combined:
        if self.primary not in {t.param for t in self.when}:
            raise ValueError(f"primary {self.primary!r} is not one of the terms")
        if self.delay_s.value < 0:
            raise ValueError("a delay is not negative")
        return self


class GateRule(_M):
    param: Literal["sbp", "dbp", "spo2", "hr"]
    op: Op
    limit: float
    level: PriorityName
    blocks_start: bool = False
    source: SourceTag
    basis: str = ""
    reason: str


class Implausible(_M):
    param: str
    below: Number | None = None
    above: Number | None = None


class CrossCheck(_M):
    """A value checked against another parameter's fresh value (PR against the ECG HR): when
    they differ by more than ``max_difference`` the value feeds no physiological rule of its
    parameter; if it is beyond one of that parameter's limits, the technical condition
    ``rule`` holds (raised once it has lasted ``delay_s``)."""

    param: str
    against: str
    max_difference: Number
    rule: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    message: str
    priority: PriorityName
    delay_s: Number
    source: SourceTag
    basis: str = ""
    # parameters of the same sensor whose values are of low quality (as if flagged so) for
    # ``hold_s`` after a disagreement of more than ``quality_difference``
    suspends: tuple[str, ...] = ()
    quality_difference: Number | None = None
    hold_s: Number | None = None

    @model_validator(mode="after")
    def _check(self) -> CrossCheck:
        if self.suspends and (self.quality_difference is None or self.hold_s is None):
            raise ValueError("suspends needs quality_difference and hold_s")
        if self.param == self.against:
            raise ValueError("a value is not checked against itself")
        if self.max_difference.value < 0 or self.delay_s.value < 0:
            raise ValueError("max_difference and delay_s are not negative")
        return self


class ImplausiblePair(_M):
    high: str
    low: str
    source: SourceTag
    basis: str = ""


class TechnicalRule(_M):
    """A technical condition. ``high_after_s``: it becomes high once it has lasted that long
    (only while infusing when ``high_while_infusing``); ``medium_after_intervals`` (NIBP
    overdue): medium while infusing once that many scheduled intervals have passed."""

    message: str
    priority: PriorityName
    high_while_infusing: bool = False
    high_after_s: Number | None = None
    medium_after_intervals: Number | None = None
    source: SourceTag
    basis: str = ""

    @model_validator(mode="after")
    def _times(self) -> TechnicalRule:
        if self.high_after_s is not None and self.high_after_s.value < 0:
            raise ValueError("high_after_s is not negative")
        if self.medium_after_intervals is not None and self.medium_after_intervals.value < 1:
            raise ValueError("medium_after_intervals is at least 1")
        return self


class Technical(_M):
    no_data: TechnicalRule
    spo2_lost: TechnicalRule
    nibp_overdue: TechnicalRule
    implausible: TechnicalRule
    link_lost: TechnicalRule
    nibp_failed: TechnicalRule


class Settings(_M):
    audio_pause_s: Number
    reminder_interval_s: Number
    escalation_reannounce_s: Number
    escalation_high_s: Number
    no_data_medium_s: Number
    no_data_high_s: Number
    spo2_lost_medium_s: Number
    spo2_lost_high_s: Number
    nibp_overdue_grace_s: Number
    stale_factor: Number
    continuous_cadence_s: Number
    observation_cadence_s: Number

    @model_validator(mode="after")
    def _positive(self) -> Settings:
        for name in type(self).model_fields:
            if getattr(self, name).value < 0:
                raise ValueError(f"{name} is not negative")
        return self


class NibpCadence(_M):
    pre_infusion: Number
    infusion: Number
    recovery: Number


class Behaviour(_M):
    latch_priorities: tuple[PriorityName, ...] = ("high",)
    escalation_classes: tuple[Literal["physiological", "technical"], ...] = ("physiological",)
    protected_params_while_infusing: tuple[str, ...] = ()


class InputRules(_M):
    invalid_flags: tuple[str, ...] = ()
    # flags of a value the device calls questionable (HL7 OBX-11 X, OBX-8 QUES): evaluated like
    # any valid value, and an alarm it raises says so (chairside.drivers.hl7.observations explains why)
    questionable_flags: tuple[str, ...] = ("questionable",)
    spo2_lost_status: tuple[str, ...] = ()
    # flags of an NIBP observation the monitor sent without a value: a failed measurement
    nibp_failed_flags: tuple[str, ...] = ()
    # flags of a value of low signal quality (Masimo low signal IQ): it feeds the tiers above
    # ``low_quality_up_to`` only (the delays of the others restart), never silently nothing
    low_quality_flags: tuple[str, ...] = ()
    low_quality_up_to: PriorityName | None = None
    not_data_status: tuple[str, ...] = ()


class LimitsProfile(_M):
    """A validated limits profile (see ``data/limits/standard.toml`` for the layout)."""

    schema_: Literal["chairside-limits/1"] = Field(alias="schema")
    name: str
    title: str = ""
    description: str = ""
    settings: Settings
    nibp_cadence: NibpCadence
    behaviour: Behaviour = Behaviour()
    input: InputRules = InputRules()
    technical: Technical
    implausible: tuple[Implausible, ...] = ()
    implausible_pair: ImplausiblePair | None = None
    cross_check: tuple[CrossCheck, ...] = ()
    ladder: tuple[Ladder, ...] = ()
    combined: tuple[Combined, ...] = ()
    gate: tuple[GateRule, ...] = ()
    path: str = ""  # where it was loaded from (set by load_profile)
    sha256: str = ""  # SHA-256 of the file's bytes as loaded (set by load_profile)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _unique(self) -> LimitsProfile:
        names = [x.name for x in self.ladder] + [x.name for x in self.combined]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule names must be unique: {', '.join(dup)}")
        return self

    def setting(self, name: str) -> float:
        return getattr(self.settings, name).value

    def ladder_by_name(self, name: str) -> Ladder:
        for ld in self.ladder:
            if ld.name == name:
                return ld
        raise KeyError(name)


def _profiles_dir() -> Path:
    return Path(str(resources.files("chairside") / "data" / "limits"))


def list_profiles() -> list[str]:
    return sorted(p.stem for p in _profiles_dir().glob("*.toml"))


def _loc(loc: tuple[object, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def load_profile(name_or_path: str | Path) -> LimitsProfile:
    """Load a profile by name (``standard``, ``conservative``) or from a TOML path.

    Raises ``LimitsError("<file>: <field>: <reason>")`` on a missing or invalid file.
    """
    p = Path(name_or_path)
    if p.suffix != ".toml" and not p.exists():
        p = _profiles_dir() / f"{name_or_path}.toml"
        if not p.is_file():
            raise LimitsError(
                f"{name_or_path}: no such limits profile; choose one of: {', '.join(list_profiles())}"
            )
    if p.is_dir():
        raise LimitsError(f"{p}: is a folder, not a limits file")
    try:
        data = p.read_bytes()
        raw = tomllib.loads(data.decode("utf-8"))
    except OSError as exc:
        raise LimitsError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise LimitsError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise LimitsError(f"{p}: not valid TOML: {exc}") from None
    if raw.get("schema") != SCHEMA:
        raise LimitsError(f"{p}: schema: expected {SCHEMA!r}, found {raw.get('schema')!r}")
    try:
        prof = LimitsProfile.model_validate({**raw, "path": str(p.resolve()), "sha256": hashlib.sha256(data).hexdigest()})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _loc(err["loc"])
        # name the rule when the error is inside one
        loc = err["loc"]
        if len(loc) >= 2 and loc[0] in ("ladder", "combined", "gate") and isinstance(loc[1], int):
            items = raw.get(loc[0], [])
            if loc[1] < len(items) and isinstance(items[loc[1]], dict):
                nm = items[loc[1]].get("name") or items[loc[1]].get("param")
                if nm:
                    field += f" ({nm})"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        found = err.get("input")
        if isinstance(found, (str, int, float, bool)) and err.get("type") in ("literal_error", "enum"):
            msg += f" (found {found!r})"
        raise LimitsError(f"{p}: {field}: {msg}{more}") from None
    return prof
