"""The trend chart: the last 60 minutes of SBP, DBP and HR on one scale with their limits
drawn, and SpO2 as a bar row under it.

Owns: ``TrendChart`` (renders text cells sized to the widget; colours are component
classes styled in .tcss; symbols make it readable in monochrome: ``▲`` SBP, ``▼`` DBP,
``•`` HR, ``┈`` limit lines). Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from chairside.service.model import TrendSeries
from chairside.ui.format import fit_parts

SYMBOLS = {"nibp_sys": "▲", "nibp_dia": "▼", "hr": "•"}
BARS = " ▁▂▃▄▅▆▇█"
LABEL_W = 4


TITLE = "Trend 60 min  ▲ SBP  ▼ DBP  • HR  ┈ limits  ▆ SpO2"


class TrendChart(Widget):
    """Fed with ``show(series, window_s)``; draws itself at whatever size it is given."""

    COMPONENT_CLASSES = {"trend--nibp_sys", "trend--nibp_dia", "trend--hr", "trend--spo2",
                         "trend--spo2-low", "trend--limit", "trend--axis"}

    def __init__(self, **kwargs) -> None:
        super().__init__(id="trend", **kwargs)
        self.border_title = TITLE
        self._series: tuple[TrendSeries, ...] = ()
        self._window = 3600.0
        self._key: tuple | None = None

    def show(self, series: tuple[TrendSeries, ...], window_s: float) -> None:
        # redraw when a point arrives or the time moves by a column
        w = max(1, self.size.width - LABEL_W)
        col_s = window_s / w
        key = tuple((s.param, len(s.points), s.points[-1][1] if s.points else None,
                     int(s.points[-1][0] / col_s) if s.points else None, s.low, s.high) for s in series)
        self._series, self._window = series, window_s
        if key != self._key:
            self._key = key
            self.refresh()

    def on_resize(self) -> None:
        # the legend in the top border: whole entries, as many as fit (never "┈ l…")
        self.border_title = fit_parts(TITLE.split("  "), max(8, self.outer_size.width - 6), sep="  ")
        self._key = None
        self.refresh()

    def render(self) -> Text:
        w, h = self.size.width, self.size.height
        if w < LABEL_W + 10 or h < 3:
            return Text("trend: enlarge the terminal", style=self._st("trend--axis"))
        plot_w = w - LABEL_W
        by = {s.param: s for s in self._series}
        spo2_rows = 1 if h >= 6 else 0
        plot_h = h - 1 - spo2_rows
        values = [v for p in SYMBOLS if p in by for _, v in by[p].points]
        lims = [x for p in SYMBOLS if p in by for x in (by[p].low, by[p].high) if x is not None]
        lo = min(values + lims) if values else (min(lims) if lims else 40.0)
        hi = max(values + lims) if values else (max(lims) if lims else 200.0)
        pad = max(5.0, (hi - lo) * 0.05)
        lo, hi = lo - pad, hi + pad
        chars = [[" "] * plot_w for _ in range(plot_h)]
        styles: list[list[str]] = [[""] * plot_w for _ in range(plot_h)]

        def row(v: float) -> int:
            r = int(round((hi - v) / (hi - lo) * (plot_h - 1)))
            return min(max(r, 0), plot_h - 1)

        def col(ago: float) -> int | None:
            if ago < 0 or ago > self._window:
                return None
            return min(plot_w - 1, max(0, plot_w - 1 - int(ago / self._window * plot_w)))

        for p in SYMBOLS:
            s = by.get(p)
            if s is None:
                continue
            for lim in (s.low, s.high):
                if lim is None or not lo <= lim <= hi:
                    continue
                r = row(lim)
                for c in range(plot_w):
                    if chars[r][c] == " ":
                        chars[r][c] = "┈"
                        styles[r][c] = f"trend--{p}"
        for p in ("hr", "nibp_dia", "nibp_sys"):
            s = by.get(p)
            if s is None:
                continue
            for ago, v in s.points:
                c = col(ago)
                if c is None:
                    continue
                r = row(v)
                chars[r][c] = SYMBOLS[p]
                styles[r][c] = f"trend--{p}"
        text = Text(no_wrap=True, overflow="crop")
        # each label is the value its row stands for (with an even number of rows the middle
        # row is not the midpoint of the scale)
        labels = {r: hi - r * (hi - lo) / max(1, plot_h - 1) for r in (0, plot_h // 2, plot_h - 1)}
        for r in range(plot_h):
            lab = f"{labels[r]:>3.0f} " if r in labels else " " * LABEL_W
            text.append(lab[:LABEL_W], style=self._st("trend--axis"))
            run_style, run = None, []
            for c in range(plot_w):
                st = styles[r][c]
                if st != run_style and run:
                    text.append("".join(run), style=self._limit_or(run_style))
                    run = []
                run_style = st
                run.append(chars[r][c])
            if run:
                text.append("".join(run), style=self._limit_or(run_style))
            text.append("\n")
        if spo2_rows:
            s = by.get("spo2")
            text.append("SpO2"[:LABEL_W].ljust(LABEL_W), style=self._st("trend--axis"))
            cells = [None] * plot_w
            if s is not None:
                for ago, v in s.points:
                    c = col(ago)
                    if c is not None:
                        cells[c] = v if cells[c] is None else min(cells[c], v)
            floor, top = 80.0, 100.0
            low = s.low if s is not None else None
            for v in cells:
                if v is None:
                    text.append(" ")
                    continue
                i = int(round((min(max(v, floor), top) - floor) / (top - floor) * (len(BARS) - 1)))
                bad = low is not None and v < low
                text.append(BARS[max(i, 1)], style=self._st("trend--spo2-low" if bad else "trend--spo2"))
            text.append("\n")
        axis = [" "] * plot_w
        for pos, lab in ((0, f"-{self._window / 60:.0f}m"), (plot_w // 2 - 2, f"-{self._window / 120:.0f}m"),
                         (plot_w - 3, "now")):
            for i, ch in enumerate(lab):
                if 0 <= pos + i < plot_w:
                    axis[pos + i] = ch
        text.append(" " * LABEL_W + "".join(axis), style=self._st("trend--axis"))
        return text

    def _st(self, name: str):
        return self.get_component_rich_style(name, partial=True)

    def _limit_or(self, name: str | None):
        if not name:
            return ""
        return self._st(name)
