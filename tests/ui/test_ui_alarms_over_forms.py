"""Forms never hide or swallow alarms (issue 15 item 8).

With each form (and the help) open, at 80x24 and at a larger size: the alarm bar and the
vital tiles are not covered by anything of the form's screen (regions), they are drawn in
their own colours (the composed screen's rows equal the monitor's own rendering of them:
nothing dims them), and F9 acknowledges and F10 pauses the audio (the service receives
both, the form stays open and no field took the key)."""

from __future__ import annotations

import pytest

from pilot_kit import settle
from readings_kit import cont, nibp
from chairside.domain.clock import ManualClock
from chairside.service import MonitorService
from chairside.store import read_session
from chairside.ui import create_app
from chairside.ui.alarm_bar import AlarmBar
from chairside.ui.overlay import BelowAlarms

SIZES = [(80, 24), (120, 40)]

# (action that opens it, stage of the session it needs)
FORMS = [
    ("new_session", "none"),
    ("start_infusion", "open"),
    ("baseline", "open"),
    ("change_rate", "running"),
    ("pause_resume", "running"),
    ("stop_infusion", "running"),
    ("observe('cadss')", "running"),
    ("observe('moaas')", "running"),
    ("observe('rass')", "running"),
    ("observe('nausea')", "running"),
    ("observe('anxiety')", "running"),
    ("observe('htn_symptoms')", "running"),
    ("observe('other')", "running"),
    ("intervention", "running"),
    ("note", "running"),
    ("amend", "running"),
    ("manual_vitals", "running"),
    ("phase", "running"),
    ("discharge", "running"),
    ("close_session", "running"),
    ("help", "running"),
]


def world(tmp_path, stage):
    clock = ManualClock()
    path = tmp_path / "s.chairside"
    svc = MonitorService(clock=clock, session_dir=tmp_path)
    if stage != "none":
        svc.open_session(patient_id="P-001", weight_kg=70, staff=["AB"], weight_confirmed_by="CD", path=path)
        svc.complete_checklist(author="AB", contraindications={i.key: False for i in svc.data.checklist},
                               hours_fasted=6, escort_confirmed=True, consent=True, medications_reviewed=True,
                           allergies="none known")
        svc.feed(nibp(clock, 128, 80) + cont(clock))
        svc.record_baseline(author="AB")
    if stage == "running":
        clock.advance(300)
        svc.feed(nibp(clock, 130, 82) + cont(clock))
        svc.start_infusion(author="AB", concentration_mg_ml=0.35, lot="K-1", advisory_reason="one baseline BP in this test")
    # an active alarm to see and to acknowledge: SBP 210 is high in every phase (limits file)
    clock.advance(600)
    svc.feed(nibp(clock, 210, 118) + cont(clock))
    for _ in range(3):
        clock.advance(5)
        svc.feed(cont(clock))
        svc.tick()
    assert svc.snapshot().alarms, "the world has no active alarm to show"
    return svc, clock, path


def rows(app, screen_stack) -> list[list[tuple]]:
    """The composed screen as a terminal gets it: per row, per cell (character, foreground
    colour unless the cell is blank, background colour, bold, dim)."""
    top = screen_stack[-1]
    update = top._compositor.render_update(full=True, screen_stack=screen_stack[:-1])
    out = []
    for line in update.strips:
        cells = []
        for strip in line:
            for seg in strip:
                if seg.control:
                    continue
                st = seg.style
                for ch in seg.text:
                    cells.append((ch, None if ch.isspace() or st is None else st.color,
                                  None if st is None else st.bgcolor,
                                  bool(st and st.bold), bool(st and st.dim)))
        out.append(cells)
    return out


def text(row) -> str:
    return "".join(c[0] for c in row)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("action,stage", FORMS, ids=[f[0] for f in FORMS])
async def test_alarm_bar_and_tiles_stay_visible_and_f9_f10_work(tmp_path, action, stage, size):
    svc, clock, path = world(tmp_path, stage)
    app = create_app(svc, clock, None, show_start=False, flash=False, bell=False)
    try:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            monitor = app.monitor
            alone = rows(app, [monitor])  # the monitor before any form: its own colours
            await app.run_action(action)
            await settle(pilot)
            form = app.screen
            assert isinstance(form, BelowAlarms), f"{action} opened {type(form).__name__}"
            await pilot.pause()

            bar = monitor.query_one(AlarmBar)
            tiles = monitor.query_one("#tiles")
            header = monitor.query_one("#session-header")
            assert bar.region.height >= len(svc.snapshot().alarms[:4])
            assert tiles.region.height >= 1 and bar.region.bottom <= tiles.region.y
            # nothing of the form's screen lies over the header, the alarm bar or the tiles
            top_block = header.region.union(bar.region).union(tiles.region)
            for widget in form.query("*"):
                if widget.display and widget.region.area:
                    assert not widget.region.overlaps(top_block), (
                        f"{type(widget).__name__}#{widget.id} at {widget.region} covers {top_block}")
            panel = form.query_one(".dialog")
            assert panel.region.y >= tiles.region.bottom and panel.region.height >= 3
            # and nothing dims them: the form's screen is transparent and the rows of the alarm
            # bar are drawn exactly as the monitor draws them
            assert form.styles.background.a == 0
            assert monitor in app._background_screens
            under = rows(app, [monitor, form])
            compact = rows(app, [monitor])  # the monitor as it is now (tiles may be one line)
            for y in range(bar.region.y, bar.region.bottom):
                assert under[y] == compact[y]
            assert under[bar.region.y] == alone[bar.region.y]  # the top alarm line unchanged
            for y in range(tiles.region.y, tiles.region.bottom):
                assert under[y] == compact[y]
            tile_text = "".join(text(r) for r in under[tiles.region.y:tiles.region.bottom])
            if tiles.region.height == 1:  # one line per tile
                assert "210/118" in tile_text  # the NIBP value in view
            else:
                assert monitor.query_one("#nibp-value").value == "210/118"
            assert "210/118" in text(under[bar.region.y]) or "BP" in text(under[bar.region.y])
            # the footer of the form shows the keys
            footer_text = text(under[-1])
            assert "F9" in footer_text and "F10" in footer_text

            values = {w.id: getattr(w, "value", None) for w in form.query("Input")}
            assert svc.snapshot().audio_priority is not None  # sounding before F10
            await pilot.press("f10")
            await settle(pilot)
            assert app.screen is form, "F10 closed or replaced the form"
            assert svc.snapshot().audio_paused_s is not None
            await pilot.press("f9")
            await settle(pilot)
            assert app.screen is form, "F9 closed or replaced the form"
            assert all(a.acknowledged for a in svc.snapshot().alarms)
            assert {w.id: getattr(w, "value", None) for w in form.query("Input")} == values
    finally:
        svc.shutdown()
    if stage != "none":
        kinds = [e.kind for e in read_session(path).events]
        assert "alarm_acknowledged" in kinds


async def test_a_and_s_still_work_on_the_monitor(tmp_path):
    svc, clock, _path = world(tmp_path, "running")
    app = create_app(svc, clock, None, show_start=False, flash=False, bell=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("s")
            await settle(pilot)
            assert svc.snapshot().audio_paused_s is not None
            await pilot.press("a")
            await settle(pilot)
            assert all(a.acknowledged for a in svc.snapshot().alarms)
            footer = text(rows(app, [app.monitor])[-1])
            assert "F9" in footer and "F10" in footer
    finally:
        svc.shutdown()


async def test_the_form_follows_a_growing_alarm_bar(tmp_path):
    """An alarm raised while a form is open: the bar grows and the form moves down."""
    svc, clock, _path = world(tmp_path, "running")
    app = create_app(svc, clock, None, show_start=False, flash=False, bell=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await app.run_action("note")
            await settle(pilot)
            form = app.screen
            bar = app.monitor.query_one(AlarmBar)
            before = bar.region.height
            clock.advance(5)
            svc.feed(cont(clock, hr=30, spo2=80))  # HR and SpO2 far below their limits
            for _ in range(12):
                clock.advance(5)
                svc.feed(cont(clock, hr=30, spo2=80))
                svc.tick()
            await settle(pilot)
            await pilot.pause()
            assert bar.region.height > before
            tiles = app.monitor.query_one("#tiles")
            assert form.query_one(".dialog").region.y >= tiles.region.bottom
    finally:
        svc.shutdown()
