"""Observation scales and discharge scores, as data: CADSS, MOAA/S, RASS, nausea, vomiting,
anxiety, hypertensive-crisis symptoms, BPRS positive subscale, modified Aldrete, PADSS.

Owns: the ``Scale`` model loaded from ``data/scales.toml`` (ranges, labels, items, flags,
source tags), score validation (``Scale.check``), totals, flag evaluation, and the registry
``SCALES`` (name -> Scale) the console renders its forms from.
Must not import: anything outside stdlib and pydantic (no other chairside package but
``chairside.domain``).

Numbers live in the TOML file with their source tag; nothing clinical is a literal here.
A score out of range raises :class:`ScaleError` with a message naming the scale and item.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "scales.toml"

Kind = Literal["numeric", "labelled", "count", "items", "checklist"]
Priority = Literal["low", "medium", "high"]


class ScaleError(ValueError):
    """A score or item outside its scale, or an unknown scale/item."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Flag(_Frozen):
    """A display flag: ``op`` compares the score (or, for ``item_ge``, any item) to ``value``."""

    op: Literal["ge", "gt", "le", "lt", "any", "item_ge"]
    value: float | None = None
    priority: Priority
    source: str
    ref: str = ""

    @model_validator(mode="after")
    def _needs_value(self) -> Flag:
        if self.op != "any" and self.value is None:
            raise ValueError(f"flag op {self.op!r} needs a value")
        return self

    def matches(self, score: float, items: Mapping[str, float] | None = None) -> bool:
        if self.op == "any":
            return score >= 1
        v = float(self.value)  # type: ignore[arg-type]
        if self.op == "item_ge":
            return any(float(x) >= v for x in (items or {}).values())
        return {"ge": score >= v, "gt": score > v, "le": score <= v, "lt": score < v}[self.op]


class Item(_Frozen):
    key: str
    text: str
    min: int = 0
    max: int = 1
    options: dict[int, str] = Field(default_factory=dict)
    default: int | None = None
    default_source: str = ""
    note: str = ""

    @model_validator(mode="after")
    def _range(self) -> Item:
        if self.min > self.max:
            raise ValueError(f"item {self.key!r}: min {self.min} > max {self.max}")
        for k in self.options:
            if not self.min <= k <= self.max:
                raise ValueError(f"item {self.key!r}: option {k} outside {self.min}..{self.max}")
        if self.default is not None and not self.default_source:
            raise ValueError(f"item {self.key!r}: default needs default_source")
        return self


class Scale(_Frozen):
    """One scale. ``min``/``max`` bound the score (for item scales: the total)."""

    name: str
    title: str
    short: str = ""
    kind: Kind
    min: float = 0
    max: float | None = None
    integer: bool = True
    labels: dict[int, str] = Field(default_factory=dict)
    items: tuple[Item, ...] = ()
    item_count: int | None = None
    item_min: int | None = None
    item_max: int | None = None
    categories: dict[str, int] = Field(default_factory=dict)
    categories_source: str = ""
    flags: tuple[Flag, ...] = ()
    source: str
    ref: str = ""
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _expand_items(cls, data: Any) -> Any:
        # item_count/item_min/item_max is shorthand for numbered items "1".."N" (CADSS).
        if isinstance(data, dict) and data.get("item_count") is not None and not data.get("items"):
            n, lo, hi = data.get("item_count"), data.get("item_min", 0), data.get("item_max")
            if not isinstance(n, int) or n < 1 or hi is None:
                raise ValueError("item_count needs a positive integer and item_max")
            data = {**data, "items": [{"key": str(i), "text": f"Item {i}", "min": lo, "max": hi}
                                      for i in range(1, n + 1)]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Scale:
        if self.kind in ("items", "checklist"):
            if not self.items:
                raise ValueError(f"a {self.kind} scale needs items")
            keys = [i.key for i in self.items]
            if len(set(keys)) != len(keys):
                raise ValueError("item keys must be unique")
            lo = sum(i.min for i in self.items)
            hi = sum(i.max for i in self.items)
            if self.kind == "checklist" and any((i.min, i.max) != (0, 1) for i in self.items):
                raise ValueError("checklist items are yes/no (0..1)")
            if (self.min, self.max) != (lo, hi):
                raise ValueError(f"total range {self.min:g}..{self.max:g} does not match the items' {lo}..{hi}")
        elif self.kind in ("numeric", "labelled"):
            if self.max is None or self.min > self.max:
                raise ValueError("min/max required, min <= max")
        if self.kind == "labelled":
            want = set(range(int(self.min), int(self.max) + 1))  # type: ignore[arg-type]
            if set(self.labels) != want:
                raise ValueError(f"labels must cover every score {int(self.min)}..{int(self.max)}")  # type: ignore[arg-type]
        if self.categories and not self.categories_source:
            raise ValueError("categories need categories_source")
        for v in self.categories.values():
            self._check_number(v)
        return self

    # ------------------------------------------------------------------ checks

    @property
    def range_text(self) -> str:
        hi = "" if self.max is None else f"{self.max:g}"
        return f"{self.min:g}–{hi}" if hi else f"≥{self.min:g}"

    def item(self, key: str) -> Item:
        for it in self.items:
            if it.key == key:
                return it
        raise ScaleError(f"{self.name}: unknown item {key!r} (items: {', '.join(i.key for i in self.items)})")

    def _check_number(self, score: Any, what: str = "score") -> float:
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ScaleError(f"{self.name}: {what} must be a number, got {score!r}")
        if not math.isfinite(score):
            raise ScaleError(f"{self.name}: {what} must be finite, got {score!r}")
        if self.integer and float(score) != int(score):
            raise ScaleError(f"{self.name}: {what} must be a whole number, got {score!r}")
        if score < self.min or (self.max is not None and score > self.max):
            raise ScaleError(f"{self.name}: {what} {score:g} out of range {self.range_text}")
        return float(score)

    def check_items(self, items: Mapping[str, Any], *, complete: bool = True) -> dict[str, int]:
        """Validate item scores; returns them as ints. Checklist items accept bools."""
        out: dict[str, int] = {}
        for key, raw in items.items():
            it = self.item(key)
            v = raw
            if self.kind == "checklist" and isinstance(raw, bool):
                v = int(raw)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
                raise ScaleError(f"{self.name}.{key}: item score must be a whole number, got {raw!r}")
            if not it.min <= v <= it.max:
                raise ScaleError(f"{self.name}.{key}: item score {v:g} out of range {it.min}–{it.max}")
            out[key] = int(v)
        if complete:
            missing = [i.key for i in self.items if i.key not in out and i.default is None]
            if missing:
                raise ScaleError(f"{self.name}: missing item(s) {', '.join(missing)}")
            for i in self.items:
                if i.key not in out and i.default is not None:
                    out[i.key] = i.default
        return out

    def total(self, items: Mapping[str, Any]) -> int:
        """Sum of the item scores (all items required, defaults filled in)."""
        if self.kind not in ("items", "checklist"):
            raise ScaleError(f"{self.name}: a {self.kind} scale has no items")
        return sum(self.check_items(items).values())

    def check(self, score: Any = None, items: Mapping[str, Any] | None = None) -> float:
        """The validated score: from ``items`` (item scales) and/or ``score``.

        When both are given for an item scale they must agree. Raises :class:`ScaleError`.
        """
        if items:
            if self.kind not in ("items", "checklist"):
                raise ScaleError(f"{self.name}: a {self.kind} scale has no items")
            t = float(self.total(items))
            if score is not None and self._check_number(score) != t:
                raise ScaleError(f"{self.name}: score {score:g} does not match the items' total {t:g}")
            return t
        if score is None:
            raise ScaleError(f"{self.name}: no score given (a missing score is not a zero)")
        return self._check_number(score)

    def label(self, score: float) -> str | None:
        """The text of a labelled score (MOAA/S, RASS), else None."""
        return self.labels.get(int(score)) if float(score) == int(score) else None

    def flags_for(self, score: float, items: Mapping[str, Any] | None = None) -> tuple[Flag, ...]:
        """The flags this score raises (display only; the alarm engine owns alarms)."""
        return tuple(f for f in self.flags if f.matches(score, items))


def _format_error(exc: ValidationError, name: str, path: Path) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in (name, *err["loc"]))
    return f"{path.name}: {loc}: {err['msg'].removeprefix('Value error, ')}"


def load_scales(path: str | Path | None = None) -> dict[str, Scale]:
    """Load a scales TOML file (default: the shipped one). Errors name the file and scale."""
    p = Path(path) if path is not None else DATA_FILE
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ScaleError(f"{p}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScaleError(f"{p.name}: not valid TOML: {exc}") from exc
    out: dict[str, Scale] = {}
    for name, body in doc.items():
        if not isinstance(body, dict):
            raise ScaleError(f"{p.name}: {name}: expected a table")
        try:
            out[name] = Scale.model_validate({"name": name, **body})
        except ValidationError as exc:
            raise ScaleError(_format_error(exc, name, p)) from None
    return out


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Scale]:
    return load_scales()


SCALES: Mapping[str, Scale] = _shipped()
"""The shipped scales by name (cadss, moaas, rass, nausea, vomiting, anxiety, htn_symptoms,
bprs, aldrete, padss)."""


def get_scale(name: str) -> Scale:
    try:
        return SCALES[name]
    except KeyError:
        raise ScaleError(f"unknown scale {name!r} (known: {', '.join(SCALES)})") from None


def check_observation(scale: str, score: Any = None, items: Mapping[str, Any] | None = None) -> float:
    """Validate an observation's score against its scale; returns the score (total)."""
    return get_scale(scale).check(score, items)


def aldrete_total(items: Mapping[str, Any]) -> int:
    return get_scale("aldrete").total(items)


def padss_total(items: Mapping[str, Any]) -> int:
    return get_scale("padss").total(items)
