"""The course in the console (issue 19): when a session opens for a pseudonym with earlier
sessions in the session folder, one line says infusion n of N, the last session's dose, peak
BP and CADSS, the latest outcome score and its change; ``c`` opens the course table, Escape
returns. The course is read off the UI thread (a slow or failing read never blocks or
crashes the console) and a file of the folder that cannot be read is named.

The earlier sessions are recorded here through the real service and store with known
inputs; the expected values come from those inputs, the template's planned count
(data/protocols) and the published response rule (>= 50 % drop), not from the code."""

from __future__ import annotations

import threading
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pilot_kit import settle
from readings_kit import cont, nibp
from chairside.domain.clock import ManualClock
from chairside.reports.course_index import lookup
from chairside.service import MonitorService
from chairside.ui import create_app
from chairside.ui.course_line import CourseLine
from chairside.ui.monitor_screen import MonitorScreen

DATA = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data"
PLANNED = tomllib.loads((DATA / "protocols" / "iv-ketamine-depression.toml").read_text())["course"]["planned_sessions"]
TODAY = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
WEIGHT = 70.0
DOSE_MG_KG = 0.5  # each earlier session's order: 0.5 mg/kg over 40 min, given in full


def earlier(folder: Path, name: str, pid: str, days_before: int, *, phq9: float, sbp: int, dbp: int,
            cadss: float) -> Path:
    """One whole earlier session: PHQ-9 before, baseline, the ordered dose given in full,
    one NIBP of ``sbp``/``dbp`` during the infusion (the highest), peak CADSS ``cadss``."""
    clock = ManualClock(TODAY - timedelta(days=days_before))
    svc = MonitorService(clock=clock, session_dir=folder)
    path = folder / name
    try:
        svc.open_session(patient_id=pid, weight_kg=WEIGHT, staff=["AB"], weight_confirmed_by="CD", path=path)
        svc.record_observation(author="AB", scale="phq9", score=phq9)
        svc.complete_checklist(author="AB", contraindications={i.key: False for i in svc.data.checklist},
                               hours_fasted=6, escort_confirmed=True, consent=True,
                               medications_reviewed=True, allergies="none known")
        svc.feed(nibp(clock, 120, 76) + cont(clock))
        svc.record_baseline(author="AB")
        clock.advance(300)
        svc.feed(nibp(clock, 122, 78) + cont(clock))
        svc.start_infusion(author="AB", concentration_mg_ml=0.35, dose_mg_kg=DOSE_MG_KG, duration_min=40,
                           advisory_reason="test session", gate_override_reason="test session")
        for minute in range(42):
            clock.advance(60)
            svc.feed(cont(clock) + (nibp(clock, sbp, dbp) if minute == 20 else nibp(clock, 124, 78)
                                    if minute % 10 == 0 else []))
            svc.tick()
        svc.record_observation(author="AB", scale="cadss", score=cadss)
        svc.stop_infusion(author="AB", reason="dose complete")
        clock.advance(60)
        svc.close_session(author="AB")
    finally:
        svc.shutdown()
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    f = tmp_path_factory.mktemp("sessions")
    # named as the console names its session files (<time>-<pseudonym>-<id>)
    earlier(f, "20260304-090000-P-001-a.chairside", "P-001", 6, phq9=20, sbp=150, dbp=92, cadss=14)
    earlier(f, "20260307-090000-P-001-b.chairside", "P-001", 3, phq9=12, sbp=162, dbp=96, cadss=20)
    earlier(f, "20260309-090000-P-002-c.chairside", "P-002", 1, phq9=25, sbp=181, dbp=101, cadss=30)
    return f


class Rig:
    def __init__(self, folder: Path, name: str = "20260310-090000-now.chairside") -> None:
        self.folder = folder
        self.clock = ManualClock(TODAY)
        self.svc = MonitorService(clock=self.clock, session_dir=folder)
        self.path = folder / name

    def open(self, pid: str = "P-001") -> None:
        self.svc.open_session(patient_id=pid, weight_kg=WEIGHT, staff=["AB"], weight_confirmed_by="CD",
                              path=self.path)
        self.svc.feed(nibp(self.clock, 124, 80) + cont(self.clock))

    def app(self, **kw):
        kw.setdefault("show_start", False)
        kw.setdefault("flash", False)
        kw.setdefault("bell", False)
        kw.setdefault("course", lookup)
        return create_app(self.svc, self.clock, None, **kw)


@pytest.fixture
def rig(folder, tmp_path):
    # a private copy of the folder: each test's current session file stays its own
    import shutil

    copy = tmp_path / "sessions"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".chairside-index*"))
    r = Rig(copy)
    yield r
    r.svc.shutdown()


def line_of(app) -> CourseLine:
    return app.monitor.query_one(CourseLine)


async def test_the_course_line_when_the_session_opens(rig):
    rig.open()
    app = rig.app()
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        line = line_of(app)
        text = line.text
        # two earlier dosed sessions of this protocol: this is the third of the template's count
        assert text.startswith(f"Course: infusion 3 of {PLANNED}")
        # the last session (3 days ago): the whole order, 0.5 mg/kg x 70 kg = 35 mg
        last_day = (TODAY - timedelta(days=3)).date().isoformat()
        assert f"last {last_day}: {DOSE_MG_KG:g} mg/kg ({DOSE_MG_KG * WEIGHT:g} mg)" in text
        assert "peak BP 162/96" in text and "CADSS 20" in text
        # PHQ-9 12 after 20: down 8; 12 > 20 x 50 %: no response yet
        assert "PHQ-9 12 (↓8 from the one before)" in text and "response" not in text
        # the other patient never mixes in
        assert "181" not in text and "25" not in text.replace("2026", "")
        assert line.display and line.region.height == 1  # visible on the monitor
        assert "Course: infusion 3" in str(line.render())
        # the session's own record says the same number (session_opened, issue 14)
        opened = next(i.text for i in app.snapshot.timeline if i.kind == "session_opened")
        assert f"infusion 3 of {PLANNED}" in opened, opened


async def test_at_80_columns_the_line_keeps_every_item_in_shorter_words(rig):
    rig.open()
    app = rig.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        shown = str(line_of(app).render())
        assert len(shown) <= 80
        assert f"3 of {PLANNED}" in shown or f"3/{PLANNED}" in shown
        for item in ("0.5 mg/kg", "162/96", "CADSS 20", "PHQ-9 12 ↓8"):
            assert item in shown, (item, shown)


async def test_c_opens_the_course_table_and_escape_returns(rig):
    rig.open()
    app = rig.app()
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        screen = app.screen
        assert type(screen).__name__ == "CourseScreen"
        from textual.widgets import DataTable

        table = screen.query_one("#course-table", DataTable)
        assert table.row_count == 2  # the two earlier sessions of P-001, not P-002's, not this one
        first = [str(c) for c in table.get_row_at(0)]
        second = [str(c) for c in table.get_row_at(1)]
        assert first[0] == f"1 of {PLANNED}" and second[0] == f"2 of {PLANNED}"
        assert first[4] == "150/92" and second[4] == "162/96"
        assert first[7] == "14" and second[7] == "20"
        assert "phq9 20" in first[10] and "phq9 12" in second[10]
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MonitorScreen)


async def test_a_damaged_file_in_the_folder_is_named_not_a_crash(rig):
    (rig.folder / "broken.chairside").write_bytes(b"SQLite format 3\x00" + b"\x00" * 300)
    rig.open()
    app = rig.app()
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        text = line_of(app).text
        assert text.startswith("Course: infusion 3") and "1 file cannot be read: broken.chairside" in text
        await pilot.press("c")
        await settle(pilot)
        damaged = str(app.screen.query_one("#course-damaged").render())
        assert "CANNOT BE READ" in damaged and "broken.chairside" in damaged


async def test_the_first_session_of_a_patient_shows_no_line(rig):
    rig.open("P-NEW")
    app = rig.app()
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        line = line_of(app)
        assert line.text == "" and not line.display


async def test_the_console_does_not_wait_for_the_course(rig):
    """The folder is read in a thread worker: while it is being read (here: held), keys
    work and snapshots are shown; the line appears when the read ends."""
    rig.open()
    release = threading.Event()
    started = threading.Event()

    def held(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return lookup(*args, **kwargs)

    app = rig.app(course=held)
    async with app.run_test(size=(160, 40)) as pilot:
        for _ in range(50):
            await pilot.pause()
            if started.is_set():
                break
        assert started.is_set()
        assert line_of(app).text == ""
        await pilot.press("c")  # the view opens at once, saying it is reading
        await pilot.pause()
        assert type(app.screen).__name__ == "CourseScreen"
        assert "Reading the session folder" in str(app.screen.query_one("#course-summary").render())
        version = app.snapshot.version
        rig.svc.feed(nibp(rig.clock, 131, 83))  # the monitor goes on meanwhile
        for _ in range(20):
            await pilot.pause()
            if app.snapshot.version > version:
                break
        assert app.snapshot.version > version
        release.set()
        await settle(pilot)
        assert "infusion 3" in str(app.screen.query_one("#course-summary").render())
        assert app.screen.query_one("#course-table").row_count == 2
        await pilot.press("escape")
        await settle(pilot)
        assert line_of(app).text.startswith("Course: infusion 3")


async def test_a_failing_read_says_so_on_the_line(rig):
    rig.open()

    def broken(*args, **kwargs):
        raise OSError("disk gone")

    app = rig.app(course=broken)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        text = line_of(app).text
        assert "could not be read" in text and "disk gone" in text
        assert isinstance(app.screen, MonitorScreen)


async def test_no_course_provider_no_line_and_c_says_so(rig):
    rig.open()
    app = rig.app(course=None)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        assert line_of(app).text == ""
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, MonitorScreen)


# ------------------------------------------------------------------ snapshots
def _settled(*keys):
    async def run_before(pilot):
        await settle(pilot)
        if keys:
            await pilot.press(*keys)
        await settle(pilot)
        await settle(pilot)
    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_course_line(rig, snap_compare, size):
    rig.open()
    assert snap_compare(rig.app(), terminal_size=size, run_before=_settled())


def test_snapshot_course_view(rig, snap_compare):
    rig.open()
    assert snap_compare(rig.app(), terminal_size=(160, 48), run_before=_settled("c"))
