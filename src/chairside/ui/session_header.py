"""The top line of the monitor: patient (pseudonymous ID), protocol, phase, clock.

Owns: ``SessionHeader``. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.widgets import Static

from chairside.service_model import Snapshot
from chairside.ui.format import PHASE_TEXT, duration


class SessionHeader(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", id="session-header", markup=False, **kwargs)
        self._key: tuple | None = None

    def show(self, snap: Snapshot) -> None:
        s = snap.session
        if s.open or s.closed:
            elapsed = (snap.now - s.opened_at).total_seconds() if s.opened_at else None
            who = f"{s.patient_id} {s.weight_kg:g} kg" if s.weight_kg else s.patient_id
            # the clock is the session's (since opened), not the phase's: say so
            text = (f"{PHASE_TEXT.get(s.phase, s.phase)} · session {duration(elapsed)} · {who} · {s.protocol}"
                    + (" · CLOSED" if s.closed else ""))
        else:
            text = "No session open — F2: new session · readings are shown, not recorded"
        if s.simulated:
            text = "SIM · " + text
        text = f"{snap.now:%H:%M:%S}Z · {text}"
        if text == self._key:
            return
        self._key = text
        self.set_class(not s.open, "-no-session")
        self.update(text)
