"""Pilot tests of the console against a fake ``ConsoleService`` that posts prepared snapshots
(``fake_service.py``): what the screen shows comes only from the snapshot, and a key press
becomes exactly one service command. The end-to-end flows on the real service are in
``test_ui_flows.py``."""

from __future__ import annotations

from dataclasses import replace

from fake_service import T0, FakeConsoleService, open_session_snapshot
from pilot_kit import set_field, settle
from chairside.domain.clock import ManualClock
from chairside.service.model import AlarmView, Tile
from chairside.ui import create_app

HR = Tile(key="hr", label="HR", unit="bpm", value=88.0, age_s=1.0, low=40.0, high=130.0)
NIBP = Tile(key="nibp", label="NIBP", unit="mmHg", value=None, missing_reason="no measurement yet")
SPO2 = Tile(key="spo2", label="SpO2", unit="%", value=97.0, age_s=1.0)
PR = Tile(key="pr", label="PR", unit="bpm", value=87.0, age_s=1.0)
HIGH = AlarmView(alarm_id="A1", priority="high", message="Systolic BP high: 201 >= 200", param="nibp_sys",
                 value=201.0, limit=200.0, source_tag="[P]", since=T0, rule="sbp_high")


def _app(fake):
    return create_app(fake, ManualClock(), None, show_start=False, flash=False, bell=False)


def _digits(app, key):
    return str(app.screen.query_one(f"#{key}-value").value)


async def test_a_posted_snapshot_is_what_the_tiles_show():
    fake = FakeConsoleService(open_session_snapshot(tiles=(NIBP, HR, SPO2, PR)))
    app = _app(fake)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert _digits(app, "hr") == "88"
        assert "no measurement yet" in str(app.screen.query_one("#nibp-sub").content)
        probe_off = replace(SPO2, value=None, age_s=None, missing_reason="probe off")
        fake.post(open_session_snapshot(version=2, tiles=(NIBP, replace(HR, value=61.0), probe_off, PR)))
        await settle(pilot)
        assert _digits(app, "hr") == "61"
        assert "0" not in _digits(app, "spo2")  # a missing value is never a zero
        assert "probe off" in str(app.screen.query_one("#spo2-sub").content)


async def test_an_older_snapshot_never_replaces_a_newer_one():
    fake = FakeConsoleService(open_session_snapshot(version=5, tiles=(NIBP, HR, SPO2, PR)))
    app = _app(fake)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        fake.post(open_session_snapshot(version=4, tiles=(NIBP, replace(HR, value=40.0), SPO2, PR)))
        await settle(pilot)
        assert _digits(app, "hr") == "88"


async def test_the_alarm_bar_shows_the_alarm_and_a_acknowledges_it_once():
    fake = FakeConsoleService(open_session_snapshot(tiles=(NIBP, HR, SPO2, PR), alarms=(HIGH,), audio="high"))
    app = _app(fake)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        bar = str(app.screen.query_one("#alarm-bar").render())
        assert "***" in bar and "Systolic BP high: 201 >= 200" in bar
        await pilot.press("a")
        await settle(pilot)
        assert fake.calls == [("acknowledge", {"alarm_id": None, "by": "AB"})]
        assert "ACK" in str(app.screen.query_one("#alarm-bar").render())


async def test_a_refused_command_keeps_the_form_open_with_the_reason():
    fake = FakeConsoleService(open_session_snapshot(tiles=(NIBP, HR, SPO2, PR)))
    fake.refuse["add_note"] = "the session is closed"
    app = _app(fake)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        dlg = app.screen
        set_field(dlg, "text", "patient comfortable")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dlg
        assert "the session is closed" in str(dlg.query_one("#dialog-error").content)
        assert fake.names() == ["add_note"]
        assert fake.calls[0][1] == {"author": "AB", "text": "patient comfortable"}


async def test_quit_with_a_session_open_asks_why_and_records_it_before_exiting():
    fake = FakeConsoleService(open_session_snapshot(tiles=(NIBP, HR, SPO2, PR)))
    app = _app(fake)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
        dlg = app.screen
        assert type(dlg).__name__ == "QuitDialog" and app.is_running  # not quit at once
        await pilot.press("escape")  # changed my mind: monitoring goes on, nothing recorded
        await pilot.pause()
        assert app.screen is not dlg and app.is_running and fake.calls == []
        await pilot.press("ctrl+q")
        await pilot.pause()
        set_field(app.screen, "reason", "patient transferred to ED")
        await pilot.press("ctrl+s")  # the summary first
        await settle(pilot)
        assert fake.calls == []
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert fake.calls == [("stop_monitoring", {"author": "AB", "reason": "patient transferred to ED"})]
    assert app.return_code == 0


async def test_quit_without_a_session_exits_at_once():
    closed = replace(open_session_snapshot(), session=replace(open_session_snapshot().session, open=False))
    fake = FakeConsoleService(closed)
    app = _app(fake)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert fake.calls == [] and app.return_code == 0
