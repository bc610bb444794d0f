"""Console defaults as data: ``data/console.toml`` (staleness, trend window, flash rates,
bell bursts, checklist items, intervention pick-list), with source tags.

Owns: ``ConsoleData`` and ``console_data()`` (loaded once). A number without its
``<key>_source`` tag is refused, naming the file and key.
Must not import: textual, serial, sqlite3, chairside.ui.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "console.toml"
TAGS = ("[P]", "[P*]", "[S]", "[C]")


class ConsoleDataError(ValueError):
    pass


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    text: str


@dataclass(frozen=True)
class InterventionItem:
    key: str
    text: str
    unit: str = ""
    route: str = ""


@dataclass(frozen=True)
class ConsoleData:
    stale_factor: float
    continuous_cadence_s: float
    nibp_cadence_s: float
    trend_window_s: float
    flash_high_hz: float
    flash_medium_hz: float
    bell_repeat_s: dict[str, float]
    bell_pulses: dict[str, int]
    bell_pulse_gap_s: float
    checklist: tuple[ChecklistItem, ...]
    interventions: tuple[InterventionItem, ...]
    routes: tuple[str, ...]
    other_observations: tuple[str, ...] = ()


def _num(doc: dict[str, Any], section: str, key: str, path: Path) -> float:
    try:
        table = doc[section]
        value = table[key]
    except KeyError:
        raise ConsoleDataError(f"{path.name}: [{section}] {key}: missing") from None
    tag = table.get(f"{key}_source")
    if tag not in TAGS:
        raise ConsoleDataError(f"{path.name}: [{section}] {key}_source: a source tag {TAGS} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConsoleDataError(f"{path.name}: [{section}] {key}: must be a number, got {value!r}")
    return float(value)


def load_console_data(path: Path | None = None) -> ConsoleData:
    p = path or DATA_FILE
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConsoleDataError(f"{p}: {exc}") from exc
    for section in ("checklist", "interventions"):
        if doc.get(section, {}).get("source") not in TAGS:
            raise ConsoleDataError(f"{p.name}: [{section}] source: a source tag is required")
    return ConsoleData(
        stale_factor=_num(doc, "staleness", "factor", p),
        continuous_cadence_s=_num(doc, "staleness", "continuous_cadence_s", p),
        nibp_cadence_s=_num(doc, "staleness", "nibp_cadence_s", p),
        trend_window_s=_num(doc, "trend", "window_s", p),
        flash_high_hz=_num(doc, "flash", "high_hz", p),
        flash_medium_hz=_num(doc, "flash", "medium_hz", p),
        bell_repeat_s={k: _num(doc, "bell", f"{k}_repeat_s", p) for k in ("high", "medium", "low")},
        bell_pulses={k: int(_num(doc, "bell", f"{k}_pulses", p)) for k in ("high", "medium", "low")},
        bell_pulse_gap_s=_num(doc, "bell", "pulse_gap_s", p),
        checklist=tuple(ChecklistItem(**i) for i in doc["checklist"]["items"]),
        interventions=tuple(InterventionItem(**i) for i in doc["interventions"]["items"]),
        routes=tuple(doc["interventions"].get("routes", ())),
        other_observations=tuple(doc.get("other_observations", {}).get("items", ())),
    )


@lru_cache(maxsize=1)
def console_data() -> ConsoleData:
    return load_console_data()
