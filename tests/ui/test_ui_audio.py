"""The console's sound (issue 15 item 9): bursts go to the machine's audio when a player
works, the terminal bell is the fallback, "AUDIO: NONE" is shown when no audible path works,
and a countdown while the audio is paused. The audio path is injected (no sound in tests)."""

from __future__ import annotations

import math

from pilot_kit import settle
from readings_kit import cont, nibp
from chairside.audio import AlarmSound
from chairside.domain.clock import ManualClock
from chairside.service import MonitorService
from chairside.ui import create_app
from chairside.ui.alarm_bar import AlarmBar


class FakePlayer:
    def __init__(self, name, works):
        self.name, self.works, self.played = name, works, []

    def play(self, path, *, wait=False, timeout=None):
        self.played.append(path)
        return self.works


def world(tmp_path):
    clock = ManualClock()
    svc = MonitorService(clock=clock, session_dir=tmp_path)
    svc.open_session(patient_id="P-001", weight_kg=70, staff=["AB"], weight_confirmed_by="CD",
                     path=tmp_path / "s.chairside")
    svc.complete_checklist(author="AB", contraindications={i.key: False for i in svc.data.checklist},
                           hours_fasted=6, escort_confirmed=True, consent=True, medications_reviewed=True,
                           allergies="none known")
    svc.feed(nibp(clock, 128, 80) + cont(clock))
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason="one baseline BP in this test")
    return svc, clock


def bar_text(app) -> str:
    return str(app.monitor.query_one(AlarmBar).content)


async def test_audio_none_is_shown_and_the_bell_takes_over(tmp_path):
    svc, clock = world(tmp_path)
    sound = AlarmSound([FakePlayer("aplay", works=False)], folder=tmp_path)
    app = create_app(svc, clock, None, show_start=False, flash=False, bell=True, audio=sound)
    rung = []
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            app.bell = lambda: rung.append(1)
            await settle(pilot)
            assert app.audio_status == "none"
            assert "AUDIO: NONE" in bar_text(app)
            clock.advance(600)
            svc.feed(nibp(clock, 210, 118))  # high
            await settle(pilot)
            assert rung, "the terminal bell is the fallback"
    finally:
        svc.shutdown()


async def test_a_working_player_sounds_the_burst_of_the_priority(tmp_path):
    svc, clock = world(tmp_path)
    player = FakePlayer("pw-play", works=True)
    sound = AlarmSound([player], folder=tmp_path)
    app = create_app(svc, clock, None, show_start=False, flash=False, bell=True, audio=sound)
    rung = []
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            app.bell = lambda: rung.append(1)
            await settle(pilot)
            assert app.audio_status == "pw-play" and "AUDIO: NONE" not in bar_text(app)
            assert player.played and player.played[0].endswith("alarm-low.wav")  # the self-test
            clock.advance(600)
            svc.feed(nibp(clock, 210, 118))
            await settle(pilot)
            assert sound.played == ["high"] and player.played[-1].endswith("alarm-high.wav")
            assert not rung  # no bell when the audio works
    finally:
        svc.shutdown()


async def test_the_audio_pause_counts_down_on_screen(tmp_path):
    svc, clock = world(tmp_path)
    app = create_app(svc, clock, None, show_start=False, flash=False, bell=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            clock.advance(600)
            svc.feed(nibp(clock, 210, 118))
            await settle(pilot)
            await pilot.press("f10")
            await settle(pilot)
            left = svc.snapshot().audio_paused_s
            assert left is not None and left > 30

            def shown(seconds):
                m, s = divmod(int(math.ceil(seconds)), 60)
                return f"AUDIO PAUSED {m}:{s:02d}"

            assert shown(left) in bar_text(app)
            clock.advance(30)
            app._on_timer()
            await pilot.pause()
            assert shown(left - 30) in bar_text(app)
    finally:
        svc.shutdown()
