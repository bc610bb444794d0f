"""The top line of the monitor: patient (pseudonymous ID), protocol, phase, clock.

Owns: ``SessionHeader``. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.widgets import Static

from chairside.service.model import Snapshot
from chairside.ui.format import PHASE_TEXT, duration, fit_parts


class SessionHeader(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", id="session-header", markup=False, **kwargs)
        self._key: tuple | None = None

    def show(self, snap: Snapshot) -> None:
        self._snap = snap
        self._render_header()

    _snap: Snapshot | None = None

    def on_resize(self) -> None:
        self._render_header()

    def _render_header(self) -> None:
        snap = self._snap
        if snap is None:
            return
        s = snap.session
        parts: list[str | tuple[str, ...]] = [f"{snap.now:%H:%M:%S}Z"]
        if s.simulated:
            parts.append("SIM")
        if s.open or s.closed:
            elapsed = (snap.now - s.opened_at).total_seconds() if s.opened_at else None
            who = f"{s.patient_id} {s.weight_kg:g} kg" if s.weight_kg else s.patient_id
            # the clock is the session's (since opened), not the phase's: say so
            parts += [PHASE_TEXT.get(s.phase, s.phase) + (" · CLOSED" if s.closed else ""),
                      (f"session {duration(elapsed)}", duration(elapsed)), who, s.protocol]
        else:
            parts += [("No session open — F2: new session", "No session — F2: new session"),
                      ("readings are shown, not recorded", "not recorded")]
        # the whole line in the width there is (never cut mid-word: whole parts go first)
        width = max(0, self.size.width - 2) or 200
        text = fit_parts(parts, width, keep=3)
        if text == self._key:
            return
        self._key = text
        self.set_class(not s.open, "-no-session")
        self.update(text)
