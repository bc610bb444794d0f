"""A checkbox that reads in monochrome: ``[X]`` when ticked, ``[ ]`` when not.

Owns: ``TickBox`` (Textual's Checkbox shows a dim "X" when off, which a monochrome
terminal or a colour-blind user cannot tell from on). Must not import: chairside.store,
chairside.transport.
"""

from __future__ import annotations

from textual.widgets import Checkbox


class TickBox(Checkbox):
    @property
    def _button(self):  # type: ignore[override]
        self.BUTTON_INNER = "X" if self.value else " "
        return super()._button
