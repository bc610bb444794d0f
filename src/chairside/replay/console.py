"""The console's side of a replay: the player that paces a ``Replayer`` and the read-only
service the console holds.

Owns: ``ReplayPlayer`` (paces a ``Replayer`` in a thread at a speed factor; pause, speed
steps, seeks and jumps), ``ReplayService`` (an explicit read-only implementation of the
console's service: snapshots and queries of the current pipeline, every command refused)
and the player's clock. Only the player reads the wall clock, to pace itself.
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from chairside.replay.replayer import Replayer
from chairside.domain.discharge import DischargeCheck
from chairside.domain.events import Event
from chairside.domain.protocol import ProtocolTemplate
from chairside.service import MonitorService
from chairside.service.model import CommandRefused, Snapshot, TimelineItem
from chairside.service.ports import ConsoleService

log = logging.getLogger("chairside.replay")

SPEEDS: tuple[float | None, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 60.0, None)  # None: as fast as possible


class ReplayService(ConsoleService):
    """What the console holds during a replay: an explicit, read-only implementation of the
    console's service (``chairside.service.ports.ConsoleService``, every member written out
    here). Queries and snapshots come from the current pipeline (snapshots with
    ever-increasing versions across rebuilds); every command is refused (a replay never
    changes a record)."""

    REFUSAL = "this is a replay: the record cannot be changed"

    def __init__(self, player: ReplayPlayer) -> None:
        self._player = player
        self._subs: list[Callable[[Snapshot], None]] = []
        self._version = 0
        self._vlock = threading.Lock()

    @property
    def _pipeline(self) -> MonitorService:
        return self._player.replayer.service

    # ------------------------------------------------------------------ queries
    @property
    def template(self) -> ProtocolTemplate:
        return self._pipeline.template

    @property
    def protocol_name(self) -> str:
        return self._pipeline.protocol_name

    @property
    def phase(self) -> str:
        return self._pipeline.phase

    @property
    def audio_pause_s(self) -> float | None:
        return self._pipeline.audio_pause_s

    def gate_check(self) -> tuple[bool, tuple[str, ...]]:
        return self._pipeline.gate_check()

    def start_check(self) -> Any:
        return self._pipeline.start_check()

    def resume_check(self) -> Any:
        return self._pipeline.resume_check()

    @property
    def device_doses(self) -> Any:
        return self._pipeline.device_doses

    def dose_preview(self, *, concentration_mg_ml: float, dose_mg_kg: float | None = None,
                     rate_mg_kg_h: float | None = None, duration_min: float | None = None) -> dict[str, float]:
        return self._pipeline.dose_preview(concentration_mg_ml=concentration_mg_ml, dose_mg_kg=dose_mg_kg,
                                           rate_mg_kg_h=rate_mg_kg_h, duration_min=duration_min)

    def discharge_check(self, **criteria: Any) -> DischargeCheck:
        return self._pipeline.discharge_check(**criteria)

    def amendable_events(self) -> list[TimelineItem]:
        return self._pipeline.amendable_events()

    def event(self, seq: int) -> Event | None:
        """The replayed event the record numbers ``seq`` (the record's own number)."""
        with self._player.lock:
            own = self._player.replayer.replay_seq(seq)
            return None if own is None else self._pipeline.event(own)

    # ------------------------------------------------------------------ commands: all refused
    def _refuse(self) -> NoReturn:
        raise CommandRefused(self.REFUSAL)

    def open_session(self, *, patient_id: str, weight_kg: float, staff: Iterable[str],
                     weight_source: str = "measured", weight_confirmed_by: str | None = None,
                     protocol: str | None = None, path: Path | str | None = None,
                     training: bool = False, limits: Path | str | None = None) -> Path:
        self._refuse()

    def resume_session(self, path: Path | str, *, author: str = "SYS", reason: str = "") -> Any:
        return self._refuse()

    def stop_monitoring(self, *, author: str, reason: str) -> Any:
        return self._refuse()

    def acknowledge(self, alarm_id: str | None = None, *, by: str) -> list[Event]:
        self._refuse()

    def pause_audio(self, *, by: str) -> list[Event]:
        self._refuse()

    def record_baseline(self, **values: Any) -> Event:
        self._refuse()

    def start_infusion(self, **order: Any) -> Event:
        self._refuse()

    def change_rate(self, **change: Any) -> Event:
        self._refuse()

    def pause_infusion(self, *, author: str, reason: str) -> Event:
        self._refuse()

    def resume_infusion(self, *, author: str, reason: str = "", prescriber: str = "") -> Event:
        self._refuse()

    def give_device(self, **device: Any) -> Event:
        self._refuse()

    def stop_infusion(self, *, author: str, reason: str) -> Event:
        self._refuse()

    def change_phase(self, *, author: str, to_phase: str, reason: str) -> Event:
        self._refuse()

    def record_observation(self, **obs: Any) -> Event:
        self._refuse()

    def record_intervention(self, **given: Any) -> Event:
        self._refuse()

    def record_manual_vitals(self, **vitals: Any) -> Event:
        self._refuse()

    def add_note(self, *, author: str, text: str) -> Event:
        self._refuse()

    def amend(self, **amendment: Any) -> Event:
        self._refuse()

    def assess_discharge(self, **assessment: Any) -> Event:
        self._refuse()

    def close_session(self, *, author: str, reason: str = "") -> Event:
        self._refuse()

    # ------------------------------------------------------------------ beyond the console's port
    def complete_checklist(self, **checks: Any) -> Event:
        self._refuse()

    # ------------------------------------------------------------------ snapshots
    def _stamp(self, snap: Snapshot) -> Snapshot:
        with self._vlock:
            self._version += 1
            return replace(snap, version=self._version)

    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        self._subs.append(callback)

        def unsubscribe() -> None:
            if callback in self._subs:
                self._subs.remove(callback)
        return unsubscribe

    def publish(self) -> None:
        snap = self.snapshot()
        for cb in list(self._subs):
            try:
                cb(snap)
            except Exception:  # noqa: BLE001
                log.exception("replay snapshot subscriber failed")

    def snapshot(self) -> Snapshot:
        with self._player.lock:
            r = self._player.replayer
            snap = r.service.snapshot()
            rec = r.recording
        store = replace(snap.device.store, state="replay",
                        message=f"recording the replay to {r.session_out}" if r.session_out else "replay")
        device = replace(snap.device, port=rec.path.name, driver=rec.driver or "session file", link_state="replay",
                         store=store)
        notices = tuple(n for n in snap.notices if "in memory only" not in n and "NOT RECORDING" not in n)
        timeline = tuple(_numbered(it, r.record_seq(it.seq)) for it in snap.timeline)
        return self._stamp(replace(snap, device=device, notices=notices, timeline=timeline))

    def start(self) -> None:
        self._player.start()

    def stop(self) -> None:
        self._player.stop()

    def shutdown(self) -> None:
        self._player.stop()
        self._player.replayer.close()


def _numbered(item: TimelineItem, record_seq: int | None) -> TimelineItem:
    """A timeline entry under the record's own event number (never the replay's)."""
    if record_seq is None:
        return replace(item, replay_only=True)
    return item if record_seq == item.seq else replace(item, seq=record_seq)


class _PlayerClock:
    """The console's clock during a replay: the recorded time of the current pipeline;
    ``monotonic`` is the wall's (it paces only the screen, and a seek back must not turn
    it backwards)."""

    def __init__(self, player: ReplayPlayer) -> None:
        self._player = player

    def now(self) -> datetime:
        return self._player.replayer.position

    def monotonic(self) -> float:
        return self._player.timer()


class ReplayPlayer:
    """Paces a ``Replayer`` at ``speed`` x real time in its own thread (None: as fast as it
    goes); pause, speed steps, seeks and jumps are called from any thread. After each step
    one snapshot is published (so the screen follows at any speed)."""

    STEP_WALL_S = 0.1
    MAX_STEP_SIM_S = 120.0

    def __init__(self, replayer: Replayer, *, speed: float | None = 1.0, playing: bool = True,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.replayer = replayer
        self.speed = speed
        self.playing = playing
        self.lock = threading.RLock()
        self.timer = timer
        self.service = ReplayService(self)
        self.clock = _PlayerClock(self)
        self.message = ""
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- controls
    def status(self) -> dict[str, Any]:
        """What the console's replay banner shows (see ``chairside.ui.replay_banner``)."""
        with self.lock:
            r = self.replayer
            pos = r.position
            recomputed = sum(1 for e in r.recomputed if e.kind == "alarm_raised")
            recorded = None
            diffs = None
            if r.recording.source == "session":
                recorded = sum(1 for e in r.recording.recorded_alarms if e.kind == "alarm_raised" and e.t <= pos)
                diffs = len(r.differences())
            return {"playing": self.playing, "speed": self.speed_label, "clock": f"{pos:%H:%M:%S}",
                    "elapsed_s": r.elapsed_s, "total_s": r.recording.duration_s, "file": r.recording.path.name,
                    "recomputed": recomputed, "recorded": recorded, "differences": diffs,
                    "message": self.message}

    @property
    def speed_label(self) -> str:
        return "max" if self.speed is None else f"x{self.speed:g}"

    def toggle(self) -> None:
        with self.lock:
            if not self.playing and self.replayer.finished:
                self.message = "at the end of the recording"
                return
            self.playing = not self.playing
        self._wake.set()

    def faster(self) -> None:
        self._step_speed(+1)

    def slower(self) -> None:
        self._step_speed(-1)

    def _step_speed(self, d: int) -> None:
        with self.lock:
            i = SPEEDS.index(self.speed) if self.speed in SPEEDS else 0
            self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, i + d))]
        self._wake.set()

    def set_speed(self, speed: float | None) -> None:
        with self.lock:
            self.speed = speed
        self._wake.set()

    def _go(self, what: Callable[[], None]) -> None:
        with self.lock:
            try:
                what()
                self.message = ""
            except CommandRefused as exc:
                self.message = str(exc)
        self.service.publish()

    def seek_by(self, seconds: float) -> None:
        self._go(lambda: self.replayer.seek_by(seconds))

    def seek(self, t: datetime) -> None:
        self._go(lambda: self.replayer.seek(t))

    def jump(self, which: str) -> None:
        """``which``: next_alarm, previous_alarm, next_event, previous_event."""
        def go() -> None:
            t = getattr(self.replayer, which)()
            if t is None:
                raise CommandRefused("no " + which.replace("_", " "))
            self.replayer.seek(t)
        self._go(go)

    # -- thread
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="chairside-replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def step(self, wall_dt: float) -> bool:
        """Advance by ``wall_dt`` wall seconds at the current speed; False when at the end."""
        with self.lock:
            r = self.replayer
            if r.finished:
                self.playing = False
                return False
            sim_dt = self.MAX_STEP_SIM_S if self.speed is None else wall_dt * self.speed
            r.advance_to(r.position + timedelta(seconds=sim_dt))
            if r.finished:
                self.playing = False
                self.message = "end of the recording"
        self.service.publish()
        return True

    def _run(self) -> None:
        last = self.timer()
        while not self._stop.is_set():
            self._wake.wait(self.STEP_WALL_S)
            self._wake.clear()
            now = self.timer()
            dt, last = now - last, now
            if self.playing:
                try:
                    self.step(min(dt, 1.0))
                except Exception:  # noqa: BLE001 - a replay bug must not kill the console
                    log.exception("replay step failed")
                    self.playing = False
                    self.message = "replay stopped by an error (see the diagnostic log)"
