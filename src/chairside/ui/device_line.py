"""The device line: port, driver, link state, readings per minute, errors, session file.

Owns: ``DeviceLineView``. Turns loud (class ``-warn``) when the link is down or the
session file is degraded to memory. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.widgets import Static

from chairside.service_model import DeviceLine

STORE_TEXT = {"none": "NOT RECORDING (no session)", "ok": "recording", "degraded": "DEGRADED",
              "memory": "IN MEMORY ONLY", "closed": "closed", "replay": "replay (read-only)"}


class DeviceLineView(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", id="device-line", markup=False, **kwargs)
        self._key: tuple | None = None

    def show(self, d: DeviceLine, bell: bool) -> None:
        port = d.port if len(d.port) <= 40 else d.port[:37] + "…"
        store = STORE_TEXT.get(d.store.state, d.store.state)
        text = (f"{port} · {d.driver} · link {d.link_state.upper()} · {d.readings_per_min:.0f}/min"
                f" · errors {d.errors} · {store}" + ("" if bell else " · bell off"))
        key = (text,)
        if key == self._key:
            return
        self._key = key
        self.set_class(d.link_state in ("down", "connecting") or d.store.warning, "-warn")
        self.update(text)
