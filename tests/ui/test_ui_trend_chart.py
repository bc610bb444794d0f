"""The trend chart's axis labels say what value their row stands for (at 80x24 the plot has
an even number of rows, where the old middle label claimed the midpoint of the scale)."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from chairside.service.model import TrendSeries
from chairside.ui.trend_chart import LABEL_W, TrendChart


class ChartApp(App[None]):
    def __init__(self, series):
        super().__init__()
        self.series = series

    def compose(self) -> ComposeResult:
        yield TrendChart()

    def on_mount(self) -> None:
        self.query_one(TrendChart).show(self.series, 3600.0)


def rows_of(chart: TrendChart) -> list[str]:
    return chart.render().plain.split("\n")


@pytest.mark.parametrize("height", [6, 7, 8, 11])  # plot rows: 4, 5, 6, 9
async def test_a_point_at_a_rows_label_is_drawn_on_that_row(height):
    # SBP points at 100 and 200 mmHg: the scale runs 95..205 (5 mmHg padding each side)
    base = (TrendSeries("nibp_sys", "SBP", ((600.0, 100.0), (300.0, 200.0))),)
    app = ChartApp(base)
    async with app.run_test(size=(60, height)) as pilot:
        chart = app.query_one(TrendChart)
        await pilot.pause()
        labelled = [(i, float(r[:LABEL_W])) for i, r in enumerate(rows_of(chart)[:-2]) if r[:LABEL_W].strip()]
        assert len(labelled) == 3
        assert labelled[0][1] == pytest.approx(205, abs=0.5) and labelled[-1][1] == pytest.approx(95, abs=0.5)
        for row_index, value in labelled:
            chart.show(base + (TrendSeries("hr", "HR", ((60.0, value),)),), 3600.0)
            await pilot.pause()
            rows = rows_of(chart)
            hr_rows = [i for i, r in enumerate(rows) if "•" in r[LABEL_W:]]
            assert hr_rows == [row_index], (value, rows)
