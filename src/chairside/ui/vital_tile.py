"""One vital-sign tile of the monitor screen: big digits, unit, limits and the value's age.

Owns: ``VitalTile``. NIBP shows SBP/DBP with MAP and how many minutes old the value is,
dimmed when stale; a missing value is "---" with its reason, never a zero. The tile's
border takes the colour of the highest alarm on it (classes set here, colours in .tcss).
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Digits, Label

from chairside.service_model import Tile
from chairside.ui.format import DASHES, age, limits, marker

_STATE_CLASSES = ("-stale", "-missing", "-alarm-high", "-alarm-medium", "-alarm-low")


def _n(v: float | None) -> str:
    return DASHES if v is None else f"{v:.0f}"


class VitalTile(Vertical):
    """A tile for ``nibp``, ``hr``, ``spo2`` or ``pr``; fed with ``show(tile)``."""

    def __init__(self, key: str, label: str, unit: str, **kwargs) -> None:
        super().__init__(id=f"tile-{key}", classes="tile", **kwargs)
        self.key = key
        self.label = label
        self.unit = unit
        self.title_text = f"{label} {unit}"
        self.border_title = self.title_text
        self._last: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Digits(DASHES, id=f"{self.key}-value", classes="tile-value")
        yield Label("", id=f"{self.key}-sub", classes="tile-sub", markup=False)
        # the one-line form of the tile (shown instead of the digits when a form is open on
        # a short terminal: the monitor's class -compact)
        yield Label("", id=f"{self.key}-line", classes="tile-line", markup=False)

    def one_line(self, tile: Tile) -> str:
        """The tile in one line: marker first (it survives a cut), name, value, unit, state."""
        mark = marker(tile.alarm)
        head = f"{mark} {self.label}" if mark else self.label
        if tile.value is None:
            return f"{head} {DASHES} {tile.missing_reason or 'no data'}"
        if self.key == "nibp":
            mp = "" if tile.value3 is None else f" ({tile.value3:.0f})"
            mins = "" if tile.age_s is None else f" {int(tile.age_s // 60)}m"
            return (f"{head} {_n(tile.value)}/{_n(tile.value2)}{mp} {self.unit}{mins}"
                    + (" STALE" if tile.stale else ""))
        return f"{head} {_n(tile.value)} {self.unit}" + (" STALE" if tile.stale else "")

    def show(self, tile: Tile) -> None:
        key = (tile.value, tile.value2, tile.value3, tile.missing_reason, tile.stale, tile.alarm,
               int(tile.age_s // 60) if self.key == "nibp" and tile.age_s is not None else
               (int(tile.age_s) if tile.age_s is not None and tile.stale else None),
               tile.low, tile.high, tile.low2, tile.high2)
        if key == self._last:
            return
        self._last = key
        digits = self.query_one(Digits)
        sub = self.query_one(f"#{self.key}-sub", Label)
        self.query_one(f"#{self.key}-line", Label).update(self.one_line(tile))
        if tile.value is None:
            digits.update(DASHES)
            text = tile.missing_reason or "no data"
            if self.key == "nibp" and tile.age_s is not None:
                text += f" · last {age(tile.age_s)}"
            sub.update(text)
        elif self.key == "nibp":
            dia = DASHES if tile.value2 is None else f"{tile.value2:.0f}"
            digits.update(f"{tile.value:.0f}/{dia}")
            mins = 0 if tile.age_s is None else int(tile.age_s // 60)
            mp = "" if tile.value3 is None else f"MAP {tile.value3:.0f} · "
            sub.update(f"{mp}{mins} min old" + (" · STALE" if tile.stale else ""))
        else:
            digits.update(f"{tile.value:.0f}")
            sub.update(f"STALE · {age(tile.age_s)}" if tile.stale else "")
        lim = limits(tile.low, tile.high)
        if self.key == "nibp" and (tile.low2 is not None or tile.high2 is not None):
            lim = f"{lim} / {limits(tile.low2, tile.high2)}"
        mark = marker(tile.alarm)
        # the marker goes with the name (the limits need the width of a narrow tile)
        self.border_title = self.title_text + (f" {mark}" if mark else "")
        self.border_subtitle = f"lim {lim}" if lim else ""
        self.remove_class(*_STATE_CLASSES)
        if tile.value is None:
            self.add_class("-missing")
        elif tile.stale:
            self.add_class("-stale")
        if tile.alarm:
            self.add_class(f"-alarm-{tile.alarm}")
