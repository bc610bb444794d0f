"""Snapshot tests of the console at 80x24 and 160x48 with frozen time (ManualClock) and
frozen flashing: normal, medium alarm, latched high alarm, probe off, stale NIBP, and the
discharge screen. Baselines: tests/ui/__snapshots__/ (``pytest --snapshot-update``)."""

from __future__ import annotations

import pytest

from readings_kit import cont, nibp
from chairside.domain.clock import ManualClock
from chairside.domain.readings import DeviceStatus, Reading
from chairside.service import MonitorService
from chairside.ui import create_app

SIZES = [(80, 24), (160, 48)]




def minutes(svc, clock, n, *, hr=72, spo2=98, every=5):
    """n minutes of continuous readings every ``every`` seconds (deterministic values)."""
    for i in range(int(n * 60 / every)):
        clock.advance(every)
        svc.feed(cont(clock, hr=hr + (i % 3) - 1, spo2=spo2))
        if (i + 1) % int(60 / every) == 0:
            svc.tick()  # the service's 1-s alarm tick, once a simulated minute here


@pytest.fixture
def world(tmp_path):
    clock = ManualClock()
    svc = MonitorService(clock=clock, session_dir=tmp_path)
    svc.open_session(patient_id="P-001", weight_kg=70, staff=["AB"], weight_confirmed_by="CD",
                     path=tmp_path / "snap.chairside")
    svc.complete_checklist(author="AB", contraindications={i.key: False for i in svc.data.checklist},
                           hours_fasted=6, escort_confirmed=True, consent=True,
                           medications_reviewed=True, allergies="none known")
    svc.feed(nibp(clock, 128, 80) + cont(clock))
    svc.record_baseline(author="AB")
    minutes(svc, clock, 5)
    svc.feed(nibp(clock, 130, 82))
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, lot="K-2231", advisory_reason="one baseline BP in this test")
    minutes(svc, clock, 10)
    svc.feed(nibp(clock, 142, 88))
    minutes(svc, clock, 2)
    yield svc, clock
    svc.shutdown()


def app_for(svc, clock, flash_phase=(True, True)):
    return create_app(svc, clock, None, show_start=False, flash=False, bell=False, flash_phase=flash_phase)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_normal(world, snap_compare, size):
    svc, clock = world
    assert snap_compare(app_for(svc, clock), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_medium_alarm(world, snap_compare, size):
    svc, clock = world
    svc.feed(nibp(clock, 184, 96))  # >= 180 while infusing: medium (limits file)
    minutes(svc, clock, 1)
    assert svc.snapshot().alarms[0].priority == "medium"
    assert snap_compare(app_for(svc, clock), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_latched_high_alarm(world, snap_compare, size):
    svc, clock = world
    svc.feed(nibp(clock, 208, 104))  # >= 200: high, latches
    minutes(svc, clock, 3)
    svc.feed(nibp(clock, 150, 90))  # back inside: the high alarm stays latched
    minutes(svc, clock, 1)
    top = svc.snapshot().alarms[0]
    assert top.priority == "high" and top.latched
    assert snap_compare(app_for(svc, clock, flash_phase=(False, True)), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_probe_off(world, snap_compare, size):
    svc, clock = world
    t = clock.now()
    svc.feed([Reading(param="spo2", value=None, unit="%", valid=False, flags=("sensor_off",), receive_time=t,
                      source="spo2"),
              Reading(param="pr", value=None, unit="bpm", valid=False, flags=("sensor_off",), receive_time=t,
                      source="spo2"),
              DeviceStatus(kind="probe_off", param="spo2", receive_time=t)])
    for _ in range(6):
        clock.advance(5)
        t = clock.now()
        svc.feed([Reading(param="hr", value=74, unit="bpm", receive_time=t, source="ecg"),
                  Reading(param="spo2", value=None, unit="%", valid=False, flags=("sensor_off",), receive_time=t,
                          source="spo2")])
        svc.tick()
    assert svc.snapshot().tile("spo2").missing_reason == "probe off"
    assert snap_compare(app_for(svc, clock), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_stale_nibp(world, snap_compare, size):
    svc, clock = world
    minutes(svc, clock, 21)  # no NIBP for > 2 x the 10-min infusion cadence
    assert svc.snapshot().tile("nibp").stale
    assert snap_compare(app_for(svc, clock), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_discharge_screen(world, snap_compare, size):
    svc, clock = world
    minutes(svc, clock, 28)
    svc.feed(nibp(clock, 134, 84))
    svc.stop_infusion(author="AB", reason="dose complete")
    minutes(svc, clock, 20)
    svc.feed(nibp(clock, 126, 80))
    minutes(svc, clock, 1)
    assert snap_compare(app_for(svc, clock), terminal_size=size, run_before=settled("d"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_new_session_form_over_the_first_screen(tmp_path, snap_compare, size):
    """The very first screen: the new-session form below the alarm bar and the tiles."""
    clock = ManualClock()
    svc = MonitorService(clock=clock, session_dir=tmp_path)
    try:
        svc.feed(nibp(clock, 126, 78))
        minutes(svc, clock, 2)
        app = create_app(svc, clock, None, show_start=True, flash=False, bell=False,
                         start_defaults={"patient_id": "P-001", "weight_kg": 70})
        assert snap_compare(app, terminal_size=size, run_before=settled())
    finally:
        svc.shutdown()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_note_form_under_a_high_alarm(world, snap_compare, size):
    """A form open while a high alarm is active: the bar keeps its colours above the form."""
    svc, clock = world
    svc.feed(nibp(clock, 208, 104))
    minutes(svc, clock, 1)
    assert svc.snapshot().alarms[0].priority == "high"
    assert snap_compare(app_for(svc, clock), terminal_size=size, run_before=settled("n", *"BP repeated"))


def settled(*keys):
    """Press ``keys``, then wait until the form is mounted and placed below the tiles (the
    monitor lays itself out again first: a loaded machine must not catch it half-way)."""
    async def run_before(pilot):
        for _ in range(3):
            await pilot.pause()
        if keys:
            await pilot.press(*keys)
        for _ in range(3):
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
        screen = pilot.app.screen
        for field in screen.query("Input"):  # a steady cursor: its blink made the SVG flaky
            field.cursor_blink = False
        fit = getattr(screen, "fit_below_monitor", None)
        if fit is not None:
            fit()
            await pilot.pause()
    return run_before
