"""The course view (key ``c``): every earlier session of the patient in a table, below the
alarm bar and the vital tiles (which stay in view); Escape returns to the monitor.

Owns: ``CourseScreen``. It renders the view the app hands down (``show``: a
``chairside.reports.course.CourseView`` — its line, headers and cells — read by attribute,
never imported) and reads no file itself. Must not import: chairside.store,
chairside.transport, chairside.reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label, Static

from chairside.ui.overlay import BelowAlarms


class CourseScreen(BelowAlarms):
    BINDINGS = [*BelowAlarms.BINDINGS, Binding("escape,c", "dismiss", "Close")]

    def __init__(self, view: Any, patient_id: str) -> None:
        super().__init__(id="course-screen")
        self.view = view
        self.patient_id = patient_id

    def compose_panel(self) -> ComposeResult:
        with Vertical(id="course", classes="dialog"):
            yield Label(f"Course of {self.patient_id} — earlier sessions in this folder  (Esc: back)",
                        id="dialog-title", markup=False)
            yield Static("", id="course-summary", markup=False)
            yield DataTable(id="course-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="course-damaged", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.show(self.view)

    def show_course(self, view: Any) -> None:
        """The app's course read finished while this screen is open."""
        self.show(view)

    def show(self, view: Any) -> None:
        """The view (None: still being read)."""
        self.view = view
        summary = self.query_one("#course-summary", Static)
        table = self.query_one("#course-table", DataTable)
        damaged = self.query_one("#course-damaged", Static)
        table.clear(columns=True)
        if view is None:
            summary.update("Reading the session folder…")
            damaged.update("")
            return
        summary.update(view.error or view.line or f"No earlier session of {self.patient_id} in this folder")
        if view.cells:
            table.add_columns(*view.headers)
            table.add_rows(view.cells)
        bad = [f"CANNOT BE READ  {Path(d.path).name}: {d.error}" for d in view.damaged]
        damaged.update("\n".join(bad))
        damaged.set_class(bool(bad), "-on")
