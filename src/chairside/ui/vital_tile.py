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

from chairside.service.model import Tile
from chairside.ui.format import DASHES, age, fit_parts, limits, marker

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

    def one_line(self, tile: Tile, width: int = 200) -> str:
        """The tile in one line of ``width``: marker first, name, value, unit, then its state
        (shortened or dropped as whole words when the line is narrow)."""
        mark = marker(tile.alarm)
        head = f"{mark} {self.label}" if mark else self.label
        if tile.value is None:
            reason = tile.missing_reason or "no data"
            return fit_parts([f"{head} {DASHES}", reason], width, sep=" ")
        if self.key == "nibp":
            mp = "" if tile.value3 is None else f" ({tile.value3:.0f})"
            mins = None if tile.age_s is None else f"{int(tile.age_s // 60)}m"
            return fit_parts([f"{head} {_n(tile.value)}/{_n(tile.value2)}", (mp.strip() + " " + self.unit, self.unit)
                              if mp else self.unit, "STALE" if tile.stale else "", mins or ""], width, sep=" ")
        return fit_parts([f"{head} {_n(tile.value)}", self.unit, "STALE" if tile.stale else ""], width, sep=" ")

    _tile: Tile | None = None

    def on_resize(self) -> None:
        if self._tile is not None:
            self._last = None
            self.show(self._tile)

    def show(self, tile: Tile) -> None:
        self._tile = tile
        width = self.outer_size.width
        key = (tile.value, tile.value2, tile.value3, tile.missing_reason, tile.stale, tile.alarm,
               int(tile.age_s // 60) if self.key == "nibp" and tile.age_s is not None else
               (int(tile.age_s) if tile.age_s is not None and tile.stale else None),
               tile.low, tile.high, tile.low2, tile.high2, width)
        if key == self._last:
            return
        self._last = key
        digits = self.query_one(Digits)
        sub = self.query_one(f"#{self.key}-sub", Label)
        line_w = self.outer_size.width - 1 if self.outer_size.width else 200  # (compact: no border)
        self.query_one(f"#{self.key}-line", Label).update(self.one_line(tile, line_w))
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
        # the limits in the bottom border, in words that fit (never "lim 50–1…")
        outer = self.outer_size.width
        room = (outer - 6) if outer else 200  # corners, a dash and a space each side
        self.border_subtitle = next((t for t in (f"lim {lim}", lim) if len(t) <= room), "") if lim else ""
        self.remove_class(*_STATE_CLASSES)
        if tile.value is None:
            self.add_class("-missing")
        elif tile.stale:
            self.add_class("-stale")
        if tile.alarm:
            self.add_class(f"-alarm-{tile.alarm}")
