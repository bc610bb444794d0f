"""Pilot tests of the replay console: the monitor screen read-only under a replay banner,
the session clock, play/pause, speed steps, seeks and jumps from the keys, the differences
list. The player is stepped by the test (its thread is not started), so the screen shows
exactly the recorded moment the test asks for."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pilot_kit import settle  # noqa: E402
from replay_kit import record, surge_reactions  # noqa: E402

from chairside.replay import SPEEDS, ReplayPlayer, Replayer, load_recording  # noqa: E402
from chairside.service.model import CommandRefused  # noqa: E402
from chairside.store import SessionFile  # noqa: E402
from chairside.ui import create_app  # noqa: E402


@pytest.fixture(scope="module")
def surge_file(tmp_path_factory) -> Path:
    return record(tmp_path_factory.mktemp("replay-ui") / "surge.chairside", reactions=surge_reactions(),
                  duration_s=2700)


@pytest.fixture
def player(surge_file):
    p = ReplayPlayer(Replayer(load_recording(surge_file)), speed=1.0, playing=False)
    yield p
    p.replayer.close()


def app_for(player):
    return create_app(player.service, player.clock, None, replay=player, flash=False, bell=False)




def banner(app) -> str:
    return str(app.monitor.query_one("#replay-banner").content)


async def test_replay_screen_is_read_only_with_banner_and_session_clock(player, surge_file):
    app = app_for(player)
    async with app.run_test(size=(100, 30)) as pilot:
        player.seek(player.replayer.start + timedelta(minutes=10))
        await settle(pilot)
        app.refresh_replay()
        await pilot.pause()
        text = banner(app)
        assert "PAUSED" in text and "09:10:00Z" in text and "+10:00/45:00" in text and "read-only" in text
        assert app.snapshot.now == player.replayer.start + timedelta(minutes=10)
        assert "09:10:00Z" in str(app.monitor.query_one("#session-header").content)
        assert not any(s.__class__.__name__ == "StartScreen" for s in app.screen_stack)
        # the clinical keys do nothing here, and the service refuses every command
        await pilot.press("a", "i", "x", "n")
        await settle(pilot)
        with pytest.raises(CommandRefused):
            app.service.acknowledge(None, by="AB")
        with pytest.raises(CommandRefused):
            app.service.add_note(author="AB", text="x")
        await app.action_note()  # the action itself refuses in a replay
        await pilot.pause()
        assert app.screen is app.monitor
    sf = SessionFile.open(surge_file, readonly=True)
    try:
        assert not any(e.kind == "note" and e.text == "x" for e in sf.events())
    finally:
        sf.close()


async def test_keys_play_pause_speed_seek_and_jump(player, surge_file):
    sf = SessionFile.open(surge_file, readonly=True)
    try:
        onsets = sorted({e.t for e in sf.events() if e.kind == "alarm_raised"})
    finally:
        sf.close()
    app = app_for(player)
    start = player.replayer.start
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("right")
        await settle(pilot)
        assert player.replayer.position == start + timedelta(minutes=1)
        await pilot.press("pagedown")
        await settle(pilot)
        assert player.replayer.position == start + timedelta(minutes=11)
        await pilot.press("left")
        await settle(pilot)
        assert player.replayer.position == start + timedelta(minutes=10)
        await pilot.press("pageup", "pageup")
        await settle(pilot)
        assert player.replayer.position == start  # clamped at the start
        await pilot.press("n")
        await settle(pilot)
        assert player.replayer.position == onsets[0]
        await pilot.press("n")
        await settle(pilot)
        assert player.replayer.position == onsets[1]
        await pilot.press("p")
        await settle(pilot)
        assert player.replayer.position == onsets[0]
        assert not player.playing
        await pilot.press("space")
        await pilot.pause()
        assert player.playing
        await pilot.press("space")
        assert not player.playing
        for _ in range(len(SPEEDS) + 2):
            await pilot.press("plus")
        assert player.speed is None and player.speed_label == "max"
        await pilot.press("minus")
        assert player.speed == SPEEDS[-2]
        # stepping at x60 for one wall second moves the session clock one minute
        before = player.replayer.position
        player.step(1.0)
        assert player.replayer.position == before + timedelta(seconds=60)
        await pilot.press("end")
        await settle(pilot)
        assert player.replayer.finished
        await pilot.press("d")
        await pilot.pause()
        assert "No differences" in str(app.screen.query_one("#differences-text").content)
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause()
        assert "Next alarm" in str(app.screen.query_one("#help-text").content)


async def test_timeline_shows_the_records_own_event_numbers(player, surge_file):
    """Issue 15 item 10: the replay console's timeline numbers each entry with the record's
    own event number (seq from the file), never the replay's renumbering; the replay's own
    note (not in the record) shows no number."""
    sf = SessionFile.open(surge_file, readonly=True)
    try:
        recorded = {e.seq: e for e in sf.events()}
    finally:
        sf.close()
    app = app_for(player)
    async with app.run_test(size=(120, 60)) as pilot:
        player.seek(player.replayer.end)
        await settle(pilot)
        items = app.snapshot.timeline
        numbered = [it for it in items if not it.replay_only]
        own = [it for it in items if it.replay_only]
        assert [it.kind for it in own] == ["note"] and "replay of the session file" in own[0].text
        for it in numbered:  # each number is the recorded event of that kind at that time
            assert it.seq in recorded, it
            assert (recorded[it.seq].kind, recorded[it.seq].t) == (it.kind, it.t), it
        # the record's numbers run far beyond the replay's own count (readings groups between)
        assert max(it.seq for it in numbered) > len(items)
        alarms = [it for it in numbered if it.kind.startswith("alarm_")]
        assert alarms and all(recorded[it.seq].kind.startswith("alarm_") for it in alarms)
        shown = str(app.monitor.query_one("#timeline").render())
        last = numbered[-1]
        assert f"#{last.seq}" in shown
        assert "#-" in shown or own[0] not in items[-app.monitor.query_one("#timeline").size.height:]
