"""A fake ``ConsoleService`` for the UI's Pilot tests: it posts prepared snapshots and notes
the commands the console gives, like Memray's TUI tests drive the screen with a MockReader.

The console is built by ``create_app`` with this fake instead of ``MonitorService``; a test
prepares a ``Snapshot`` (the service's own frozen dataclasses), ``post``s it as the service's
thread would, and asserts on what the screen shows and on ``calls``. No store, no engine, no
clock of its own: only what ``chairside.service.ports.ConsoleService`` names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from chairside.domain.protocol import load_template
from chairside.service.model import (
    AlarmView,
    CommandRefused,
    DeviceLine,
    DischargeCheck,
    SessionInfo,
    Snapshot,
    StoreStatus,
    Tile,
    TimelineItem,
)
from chairside.service.ports import ConsoleService

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def open_session_snapshot(*, version: int = 1, tiles: tuple[Tile, ...] = (),
                          alarms: tuple[AlarmView, ...] = (), audio: str | None = None,
                          timeline: tuple[TimelineItem, ...] = ()) -> Snapshot:
    """A snapshot of an open session in pre-infusion (what a fresh MonitorService would show)."""
    return Snapshot(
        now=T0, version=version,
        session=SessionInfo(open=True, session_id="fake", patient_id="P-FAKE", protocol="iv-ketamine-depression",
                            protocol_title="IV ketamine (fake)", weight_kg=70.0, opened_at=T0,
                            checklist_done=True, escort_confirmed=True, staff=("AB",)),
        tiles=tiles, alarms=alarms, audio_priority=audio, timeline=timeline,
        device=DeviceLine(port="fake://", driver="ge-s5", link_state="up",
                          store=StoreStatus(state="ok", path="fake.chairside")))


class FakeConsoleService:
    """Snapshots in (``post``), commands out (``calls``)."""

    def __init__(self, first: Snapshot, *, protocol: str = "iv-ketamine-depression") -> None:
        self._snap = first
        self._subs: list[Callable[[Snapshot], None]] = []
        self._lock = threading.Lock()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.refuse: dict[str, str] = {}  # command name -> the CommandRefused message to raise
        self.protocol_name = protocol
        self.template = load_template(protocol)
        self.audio_pause_s: float | None = 120.0

    # -- what the fake's test does
    def post(self, snap: Snapshot) -> None:
        """Publish a snapshot as the service's thread would."""
        with self._lock:
            self._snap = snap
            subs = list(self._subs)
        for cb in subs:
            cb(snap)

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    # -- ConsoleService: views
    @property
    def phase(self) -> str:
        return self._snap.session.phase

    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        with self._lock:
            self._subs.append(callback)
        return lambda: self._subs.remove(callback) if callback in self._subs else None

    def snapshot(self) -> Snapshot:
        return self._snap

    def gate_check(self) -> tuple[bool, tuple[str, ...]]:
        return False, ()

    def start_check(self) -> Any:
        from chairside.domain.start_checks import verdict

        return verdict(())

    def resume_check(self) -> Any:
        from chairside.domain.start_checks import verdict

        return verdict(())

    @property
    def device_doses(self) -> Any:
        from chairside.domain.state import DevicesState

        return DevicesState()

    def dose_preview(self, **order: Any) -> dict[str, float]:
        return {"rate_mg_kg_h": 0.0, "rate_ml_h": 0.0, "rate_mg_h": 0.0, "total_mg": 0.0}

    def discharge_check(self, **criteria: Any) -> DischargeCheck:
        return DischargeCheck(blocked_reasons=("fake: not assessed",))

    def amendable_events(self) -> list[TimelineItem]:
        return []

    def event(self, seq: int) -> Any:
        return None

    # -- ConsoleService: commands (noted; refused when the test says so)
    def _command(self, name: str, kwargs: dict[str, Any]) -> Any:
        self.calls.append((name, kwargs))
        if name in self.refuse:
            raise CommandRefused(self.refuse[name])
        return []

    def open_session(self, **kw: Any) -> Path:
        self._command("open_session", kw)
        return Path("fake.chairside")

    def resume_session(self, path: Path | str, **kw: Any) -> Any:
        return self._command("resume_session", {"path": path, **kw})

    def stop_monitoring(self, **kw: Any) -> Any:
        return self._command("stop_monitoring", kw)

    def acknowledge(self, alarm_id: str | None = None, *, by: str) -> list[Any]:
        out = self._command("acknowledge", {"alarm_id": alarm_id, "by": by})
        snap = self._snap
        self.post(replace(snap, version=snap.version + 1, audio_priority=None,
                          alarms=tuple(replace(a, acknowledged=True) for a in snap.alarms)))
        return out

    def pause_audio(self, *, by: str) -> list[Any]:
        return self._command("pause_audio", {"by": by})

    def record_baseline(self, **kw: Any) -> Any:
        return self._command("record_baseline", kw)

    def start_infusion(self, **kw: Any) -> Any:
        return self._command("start_infusion", kw)

    def change_rate(self, **kw: Any) -> Any:
        return self._command("change_rate", kw)

    def pause_infusion(self, **kw: Any) -> Any:
        return self._command("pause_infusion", kw)

    def resume_infusion(self, **kw: Any) -> Any:
        return self._command("resume_infusion", kw)

    def give_device(self, **kw: Any) -> Any:
        return self._command("give_device", kw)

    def stop_infusion(self, **kw: Any) -> Any:
        return self._command("stop_infusion", kw)

    def change_phase(self, **kw: Any) -> Any:
        return self._command("change_phase", kw)

    def record_observation(self, **kw: Any) -> Any:
        return self._command("record_observation", kw)

    def record_intervention(self, **kw: Any) -> Any:
        return self._command("record_intervention", kw)

    def record_manual_vitals(self, **kw: Any) -> Any:
        return self._command("record_manual_vitals", kw)

    def add_note(self, **kw: Any) -> Any:
        return self._command("add_note", kw)

    def amend(self, **kw: Any) -> Any:
        return self._command("amend", kw)

    def assess_discharge(self, **kw: Any) -> Any:
        return self._command("assess_discharge", kw)

    def close_session(self, **kw: Any) -> Any:
        return self._command("close_session", kw)


def _conforms(svc: FakeConsoleService) -> ConsoleService:
    return svc  # a type checker proves the fake offers what the console uses
