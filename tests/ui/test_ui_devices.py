"""Pilot tests of the esketamine device form and the gated resume (issue 14 items 3 and 5):
a real MonitorService fed as the link would, a frozen ManualClock, the app from ``create_app``.
Expected numbers come from the protocol template (data), not from the code under test."""

from __future__ import annotations

from pilot_kit import set_field, settle, submit
from readings_kit import cont, nibp

from chairside.domain.clock import ManualClock
from chairside.domain.protocol import load_template
from chairside.service import MonitorService
from chairside.store import read_session
from chairside.ui import create_app


def _app(svc, clock):
    return create_app(svc, clock, None, show_start=False, flash=False, bell=False)


async def test_esketamine_devices_through_the_console(tmp_path):
    tpl = load_template("esketamine")
    clock = ManualClock()
    path = tmp_path / "esk.chairside"
    svc = MonitorService(clock=clock, session_dir=tmp_path, protocol="esketamine")
    try:
        svc.open_session(patient_id="P-9", weight_kg=70, staff=["AB"], path=path, protocol="esketamine")
        svc.complete_checklist(author="AB", contraindications={i.key: False for i in svc.data.checklist},
                               hours_fasted=3, escort_confirmed=True, consent=True,
                               concomitant={c: False for c in tpl.gate.concomitant_classes})
        svc.feed(nibp(clock, 128, 80) + cont(clock))
        app = _app(svc, clock)
        async with app.run_test(size=(110, 40)) as pilot:
            for n in range(1, 3):
                await pilot.press("i")
                await pilot.pause()
                assert type(app.screen).__name__ == "GiveDeviceDialog"
                set_field(app.screen, "lot", f"L{n}")
                await submit(pilot)
                await settle(pilot)
                assert svc.device_doses.count == n, app.screen
                clock.advance(tpl.dosing.device_wait_min * 60)
                svc.feed(cont(clock))
            await settle(pilot)
            assert app.snapshot.infusion.devices_mg == 2 * tpl.dosing.device_mg
    finally:
        svc.shutdown()
    events = read_session(path).events
    devices = [e for e in events if e.kind == "device_given"]
    assert [d.lot for d in devices] == ["L1", "L2"] and devices[-1].total_mg == tpl.dosing.dose
    assert not any(e.kind == "infusion_started" for e in events)


async def test_resume_above_the_gate_needs_the_prescriber(tmp_path):
    clock = ManualClock()
    path = tmp_path / "res.chairside"
    gap = load_template("iv-ketamine-depression").gate.baseline_interval_min
    svc = MonitorService(clock=clock, session_dir=tmp_path, protocol="iv-ketamine-depression")
    try:
        svc.open_session(patient_id="P-8", weight_kg=70, staff=["AB"], weight_confirmed_by="CD", path=path)
        svc.complete_checklist(author="AB", contraindications={i.key: False for i in svc.data.checklist},
                               hours_fasted=6, escort_confirmed=True, consent=True, medications_reviewed=True,
                               allergies="none known")
        svc.feed(nibp(clock, 128, 80) + cont(clock))
        clock.advance(gap * 60)
        svc.feed(nibp(clock, 126, 78) + cont(clock))
        svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason="one baseline BP in this test")
        clock.advance(600)
        svc.pause_infusion(author="AB", reason="BP 188/123")
        clock.advance(120)
        svc.feed(nibp(clock, 188, 123) + cont(clock))  # the BP after the pause, above every gate tier
        app = _app(svc, clock)
        async with app.run_test(size=(110, 40)) as pilot:
            await pilot.press("p")
            await pilot.pause()
            dlg = app.screen
            assert "188/123" in str(dlg.query_one("#dialog-intro").content)
            set_field(dlg, "reason", "BP falling")
            await submit(pilot)
            assert app.screen is dlg and svc.state.infusion.status == "paused"
            assert not dlg.query_one("#row-prescriber").has_class("-hidden")
            set_field(dlg, "prescriber", "MD")
            await submit(pilot)
            await settle(pilot)
            assert svc.state.infusion.status == "running"
    finally:
        svc.shutdown()
    resumed = next(e for e in read_session(path).events if e.kind == "infusion_resumed")
    assert resumed.prescriber == "MD" and any("188/123" in f for f in resumed.gate_findings)
