"""The board on screen: the in-process ``--demo 4`` in Pilot (four simulated chairs, each
its own service and session file; Enter opens a chair, Escape returns) and a snapshot of
four prepared chairs at 80x24 (one tile each, the worst alarm on its tile)."""

from __future__ import annotations

import json
import time

import pytest

from chairside.board.local import LocalBoard, demo_chairs
from chairside.board.state import BoardModel
from chairside.ui.board_app import BoardApp, ChairDetail, ChairTile


async def test_demo_four_in_pilot(tmp_path):
    local = LocalBoard(demo_chairs(4), folder=tmp_path)
    local.start()
    try:
        app = BoardApp(local.model, local=local)
        async with app.run_test(size=(80, 24)) as pilot:
            end = time.monotonic() + 30
            while time.monotonic() < end and len(app.query(ChairTile)) < 4:
                await pilot.pause(0.3)
            tiles = list(app.query(ChairTile))
            assert [t.chair_name for t in tiles] == ["chair-1", "chair-2", "chair-3", "chair-4"]
            states = {c["chair"]: c["state"] for c in local.model.snapshot()}
            assert states["chair-1"]["phase"] == "pre_infusion"  # the demo's chair being checked in
            assert {states[c]["infusion_state"] for c in ("chair-2", "chair-3", "chair-4")} == {"running"}
            assert all(states[c]["pseudonym"].startswith("DEMO-") for c in states)
            tiles[1].focus()
            await pilot.press("enter")
            await pilot.pause(0.2)
            assert isinstance(app.screen, ChairDetail) and app.screen.chair_name == "chair-2"
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert not isinstance(app.screen, ChairDetail)
    finally:
        local.stop()
    assert len(list(tmp_path.glob("chair-*.chairside"))) == 4


def prepared_model() -> BoardModel:
    m = BoardModel(not_reporting_after_s=1e9)
    rows = [
        ("chair-1", "P-101", "pre_infusion", "not_started", 0.0, None, [], 72, 98, (128, 80)),
        ("chair-2", "P-102", "infusion", "running", 0.25, 0.5,
         [{"alarm_id": "sbp_high#1", "priority": "high", "message": "Systolic BP high: 186 >= 180"}], 96, 97, (186, 112)),
        ("chair-3", "P-103", "recovery", "stopped", 0.5, 0.5,
         [{"alarm_id": "spo2_low#1", "priority": "medium", "message": "SpO2 low: 89 < 90"}], 70, 89, (118, 70)),
        ("chair-4", "P-104", "infusion", "running", 0.1, 0.5, [], 80, None, (140, 88)),
    ]
    for chair, pid, phase, inf, given, ordered, alarms, hr, spo2, bp in rows:
        m.on_state(chair, json.dumps({
            "schema": "chairside-board/1", "chair": chair, "pseudonym": pid, "session_open": True, "phase": phase,
            "infusion_state": inf, "given_mg_kg": given, "ordered_mg_kg": ordered, "next_bp_due_s": 120.0,
            "alarms": alarms, "link_state": "up",
            "vitals": {"hr": {"value": hr, "valid": True}, "spo2": {"value": spo2, "valid": spo2 is not None},
                       "nibp": {"value": bp[0], "value2": bp[1], "age_s": 60, "valid": True}}}), 0.0)
    return m


def test_board_snapshot_80x24(snap_compare):
    class Frozen(BoardApp):
        def on_mount(self) -> None:
            self.refresh_board()  # once: no timer, no flashing

        def refresh_board(self) -> None:
            super().refresh_board()
            self._ticks = 0

    assert snap_compare(Frozen(prepared_model()), terminal_size=(80, 24))
