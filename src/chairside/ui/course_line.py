"""The course line under the session header: the patient's course when the session opened
(infusion n of N, the last session's dose, peak BP and CADSS, the latest outcome score and
its change), as ``chairside.reports.course.course_line`` wrote it; files of the session
folder that could not be read are named there.

Owns: ``CourseLine``. Hidden while there is nothing to say. Must not import:
chairside.store, chairside.transport.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Static

from chairside.ui.format import fit_parts


class CourseLine(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", id="course-line", markup=False, **kwargs)
        self.text = ""  # the line in full (tests)
        self.parts: list[tuple[str, ...]] = []
        self._shown: str | None = None

    def show(self, parts: Sequence[tuple[str, ...]]) -> None:
        """The parts of the line, each as wordings from the longest ([]: hide the line)."""
        self.parts = [tuple(p) for p in parts]
        self.text = " · ".join(p[0] for p in self.parts)
        self.set_class(bool(self.parts), "-on")
        self._render_line()

    def on_resize(self) -> None:
        self._render_line()

    def _render_line(self) -> None:
        width = max(0, self.size.width - 2) or 200
        text = fit_parts(list(self.parts), width, keep=1)  # shorter wordings first, then the tail goes
        if text != self._shown:
            self._shown = text
            self.update(text)
