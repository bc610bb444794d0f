"""The device line: port, driver, link state, readings per minute, errors, session file.

Owns: ``DeviceLineView``. Turns loud (class ``-warn``) when the link is down or the
session file is degraded to memory. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.widgets import Static

from chairside.service.model import DeviceLine
from chairside.ui.format import fit_parts

STORE_TEXT = {"none": "NOT RECORDING (no session)", "ok": "recording", "degraded": "DEGRADED",
              "memory": "IN MEMORY ONLY", "closed": "closed", "replay": "replay (read-only)"}


class DeviceLineView(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", id="device-line", markup=False, **kwargs)
        self._key: tuple | None = None

    _last: tuple | None = None

    def show(self, d: DeviceLine, bell: bool) -> None:
        self._last = (d, bell)
        self._render_line()

    def on_resize(self) -> None:
        self._render_line()

    def _render_line(self) -> None:
        if self._last is None:
            return
        d, bell = self._last
        port = d.port
        if len(port) > 40:  # a long path: its file name (a cut name reads as another file)
            port = port.rsplit("/", 1)[-1]
        store = STORE_TEXT.get(d.store.state, d.store.state)
        short = store.split(" (")[0]
        # link state and recording state matter most: they come first and stay
        parts: list[str | tuple[str, ...]] = [
            f"link {d.link_state.upper()}", (store, short) if short != store else store, port, d.driver,
            f"{d.readings_per_min:.0f}/min", f"errors {d.errors}"] + ([] if bell else ["bell off"])
        width = max(0, self.size.width - 2) or 200
        text = fit_parts(parts, width, keep=2)
        key = (text, d.link_state, d.store.warning)
        if key == self._key:
            return
        self._key = key
        self.set_class(d.link_state in ("down", "connecting") or d.store.warning, "-warn")
        self.update(text)
