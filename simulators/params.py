"""Model and device parameters: load ``simulators/data/*.toml`` with their source tags.

Owns: reading the parameter files, refusing a parameter without a tagged source, and
returning plain nested dicts of values (``load_model()``, ``load_devices()``) plus the
source of every value (``sources()``). No clinical number lives in code: physiology,
device and emulator modules read them from here.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

import copy
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
TAGS = ("[P]", "[P*]", "[C]", "[S]", "[calibration]", "[assumption]")


class ParameterError(ValueError):
    """A parameter file is malformed (names file and key)."""


def _walk(node: dict[str, Any], path: str, where: Path, values: dict, sources: dict) -> None:
    for key, item in node.items():
        dotted = f"{path}.{key}" if path else key
        if isinstance(item, dict) and "value" in item:
            src = item.get("source", "")
            if not isinstance(src, str) or not src.startswith(TAGS):
                raise ParameterError(f"{where.name}: {dotted}: source must start with one of {', '.join(TAGS)}")
            extra = set(item) - {"value", "source"}
            if extra:
                raise ParameterError(f"{where.name}: {dotted}: unknown keys {sorted(extra)}")
            values[key] = item["value"]
            sources[dotted] = src
        elif isinstance(item, dict):
            if "trends" in item:  # a treatment: a list of trends with one source
                src = item.get("source", "")
                if not isinstance(src, str) or not src.startswith(TAGS):
                    raise ParameterError(f"{where.name}: {dotted}: source must start with one of {', '.join(TAGS)}")
                values[key] = {"trends": item["trends"]}
                sources[dotted] = src
                continue
            values[key] = {}
            _walk(item, dotted, where, values[key], sources)
        else:
            raise ParameterError(
                f"{where.name}: {dotted}: a parameter must be {{ value = ..., source = \"[tag] ...\" }}"
            )


@lru_cache(maxsize=None)
def _load(name: str) -> tuple[dict, dict]:
    where = DATA / name
    try:
        raw = tomllib.loads(where.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{where.name}: {exc}") from None
    values: dict = {}
    sources: dict = {}
    _walk(raw, "", where, values, sources)
    return values, sources


def load_model() -> dict[str, Any]:
    """Physiology parameters (a fresh deep copy: callers may modify it)."""
    return copy.deepcopy(_load("model.toml")[0])


def load_devices() -> dict[str, Any]:
    """Device-model defaults (a fresh deep copy)."""
    return copy.deepcopy(_load("devices.toml")[0])


def sources() -> dict[str, str]:
    """``"model.pd.ke0_per_min" -> "[calibration] ..."`` for every parameter."""
    out = {}
    for name in ("model.toml", "devices.toml"):
        stem = name.removesuffix(".toml")
        out.update({f"{stem}.{k}": v for k, v in _load(name)[1].items()})
    return out


def merged(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``override``'s leaves laid over it (nested dicts merged)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
