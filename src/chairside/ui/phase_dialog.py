"""Phase-change form (for what the infusion commands do not change by themselves).

Owns: ``PhaseDialog``. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.ui.form_dialog import Field, FormDialog
from chairside.ui.format import PHASE_TEXT


class PhaseDialog(FormDialog):
    dialog_title = "Change phase"
    command_name = "phase"
    confirm_first = True

    def fields(self):
        return [Field("author", "Your initials", default=self.user, required=True),
                Field("phase", "New phase", "select", options=[(t, k) for k, t in PHASE_TEXT.items()],
                      required=True),
                Field("reason", "Reason", required=True)]

    def summary(self, v: dict[str, Any]) -> str:
        return f"{PHASE_TEXT.get(self.service.phase)} → {PHASE_TEXT.get(v['phase'])}"

    def command(self, v: dict[str, Any]) -> Any:
        return self.service.change_phase(author=v["author"], to_phase=v["phase"], reason=v["reason"])
