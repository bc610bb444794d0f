"""Fast key entry never merges form fields (issue 14 item 7).

A barcode scanner, a paste or a fast typist delivers "0.35", Tab, "500" in one burst: the
terminal hands the app all the keys at once. Before, the Tab was acted on only after the
keys behind it had gone into the old field (0.35500 mg/mL, or "1", Tab, "50" -> 150), a
paste with a Tab filled nothing, and keys typed right after "i" were lost. The bursts here go
in through the driver as a terminal delivers them (no pause between keys), through
``pilot.press`` and as a paste; the typed numbers must land in their own fields and in the
record."""

from __future__ import annotations

import pytest
from textual import events

from pilot_kit import settle
from readings_kit import cont, nibp
from chairside.domain.clock import ManualClock
from chairside.service import MonitorService
from chairside.store import read_session
from chairside.ui import create_app

CHAR_KEYS = {".": "full_stop", "\t": "tab", "-": "minus", " ": "space"}


def burst(app, text: str) -> None:
    """Every key of ``text`` handed to the app at once, as the terminal's reader does."""
    for ch in text:
        key = CHAR_KEYS.get(ch, ch)
        ev = events.Key(key, ch)
        ev.set_sender(app)
        app._driver.send_message(ev)


@pytest.fixture
def rig(tmp_path):
    clock = ManualClock()
    path = tmp_path / "s.chairside"
    svc = MonitorService(clock=clock, session_dir=tmp_path)
    svc.open_session(patient_id="P-001", weight_kg=70, staff=["AB"], weight_confirmed_by="CD", path=path)
    svc.complete_checklist(author="AB", contraindications={i.key: False for i in svc.data.checklist},
                           hours_fasted=6, escort_confirmed=True, consent=True, medications_reviewed=True,
                           allergies="none known")
    svc.feed(nibp(clock, 128, 80) + cont(clock))
    clock.advance(300)  # the template's second baseline BP, 5 min after the first
    svc.feed(nibp(clock, 126, 78) + cont(clock))
    yield svc, clock, path
    svc.shutdown()


def fields(app):
    s = app.screen
    assert type(s).__name__ == "StartInfusionDialog", type(s).__name__
    return s.query_one("#f-concentration").value, s.query_one("#f-bag_volume").value


# the start form opens with the focus on the concentration (its first empty field); the
# next field is the bag volume
@pytest.mark.parametrize("how", ["terminal", "terminal-with-i", "pilot", "paste", "paste-lines"])
async def test_burst_lands_in_its_fields(rig, how):
    svc, clock, _path = rig
    app = create_app(svc, clock, None, show_start=False, flash=False, bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        if how == "terminal-with-i":  # the key that opens the form, in the same burst
            burst(app, "i0.35\t500")
        else:
            await pilot.press("i")
            await pilot.pause()
            if how == "terminal":
                burst(app, "0.35\t500")
            elif how == "pilot":
                await pilot.press("0", "full_stop", "3", "5", "tab", "5", "0", "0")
            else:
                sep = "\t" if how == "paste" else "\n"
                ev = events.Paste(f"0.35{sep}500")
                ev.set_sender(app)
                app._driver.send_message(ev)
        await pilot.pause()
        await pilot.pause()
        assert fields(app) == ("0.35", "500")


async def test_the_issue_example_1_tab_50(rig):
    """The issue's own burst: "1", Tab, "50" is a concentration of 1 and a bag of 50."""
    svc, clock, _path = rig
    app = create_app(svc, clock, None, show_start=False, flash=False, bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("i")
        await pilot.pause()
        burst(app, "1\t50")
        await pilot.pause()
        await pilot.pause()
        assert fields(app) == ("1", "50")


async def test_a_scanned_order_is_recorded_as_typed(rig):
    """A burst then ctrl+s twice: the record holds the numbers of the burst."""
    svc, clock, path = rig
    app = create_app(svc, clock, None, show_start=False, flash=False, bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, "i0.35\t250\tK-77")
        await pilot.pause()
        await pilot.pause()
        dlg = app.screen
        assert fields(app) == ("0.35", "250") and dlg.query_one("#f-lot").value == "K-77"
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is not dlg, (dlg.query_one("#dialog-error").content, dlg.query_one("#dialog-summary").content)
        await settle(pilot)
        assert svc.snapshot().infusion.state == "running"
    started = next(e for e in read_session(path).events if e.kind == "infusion_started")
    assert started.concentration_mg_ml == pytest.approx(0.35)
    assert started.bag_volume_ml == pytest.approx(250)
    assert started.lot == "K-77"
