"""The instructor panel on a second terminal (issue 16): a training run's controls over a
local Unix socket (0600, no network port), the same panel on the other side, and what the
instructor does landing in the trainee's session record."""

from __future__ import annotations

import stat

import pytest

from chairside.service import MonitorService
from chairside.store import read_session
from chairside.training import SIM, InProcessMonitor, TrainingError, TrainingRun
from chairside.training_remote import InstructorServer, RemoteRun, RemoteRunError
from simulators.api import DEFAULT_START


@pytest.fixture
def served(tmp_path):
    run = TrainingRun("probe-off", driver="ge-s5", seed=3, start=DEFAULT_START, manual=True)
    svc = MonitorService(clock=run.clock, driver="ge-s5", protocol=None, simulated=True, scenario="probe-off",
                         sim_seed=run.seed)
    run.attach(svc)
    mon = InProcessMonitor(run, svc)
    path = tmp_path / "run.chairside"
    svc.open_session(patient_id="SIM-0003", weight_kg=70, staff=["TR"], weight_confirmed_by=SIM, path=path,
                     training=True)
    mon.run(5)
    server = InstructorServer(run, tmp_path / "i.sock")
    yield run, svc, mon, server, path
    server.close()
    svc.stop()


def test_the_socket_is_private_and_one_run_owns_it(served, tmp_path):
    run, _svc, _mon, server, _ = served
    mode = server.path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    with pytest.raises(TrainingError, match="already serving"):
        InstructorServer(run, server.path)


def test_the_remote_controls_act_on_the_run_and_land_in_the_record(served):
    run, svc, mon, server, path = served
    remote = RemoteRun(server.path)
    try:
        assert remote.scenario.name == "probe-off" and remote.seed == 3
        assert set(remote.states()) == set(run.scenario.states)
        remote.pause()
        assert run.paused and remote.paused
        remote.resume()
        assert not run.paused
        remote.set_speed(4)
        assert run.speed == 4.0
        remote.inject("artefact", kind="probe_off")
        remote.note("watch the probe")
        with pytest.raises(RemoteRunError, match="no state"):
            remote.jump("no-such-state")
        mon.run(3)
        run.pump_log()
        assert any("probe_off" in line or "probe off" in line for line in remote.recent(20))
    finally:
        remote.close()
    events = read_session(path).events
    notes = [e for e in events if e.kind == "training" and e.action == "note"]
    assert [n.detail for n in notes] == ["watch the probe"]
    assert any(e.kind == "training" and e.source == "instructor" and e.action == "paused" for e in events)


def test_attaching_without_a_run_says_so(tmp_path):
    with pytest.raises(RemoteRunError, match="no training run"):
        RemoteRun(tmp_path / "nothing.sock")


async def test_the_instructor_app_drives_the_run_with_the_same_panel(served):
    from chairside.ui.instructor_app import InstructorApp

    run, _svc, _mon, server, _ = served
    remote = RemoteRun(server.path)
    app = InstructorApp(remote)
    try:
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            assert "probe-off" in run.scenario.name
            await pilot.press("space")
            await pilot.pause(0.3)
            assert run.paused
            await pilot.press("space")
            await pilot.pause(0.3)
            assert not run.paused
    finally:
        remote.close()
