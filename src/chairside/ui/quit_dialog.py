"""Quit confirmation while a session is open: who quits and why is recorded
(``monitoring_stopped``) before the console exits; the session file stays open and can be
resumed (the resume records the gap). Escape goes back to monitoring.

Owns: ``QuitDialog``. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.ui.form_dialog import Field, FormDialog


class QuitDialog(FormDialog):
    dialog_title = "Quit — monitoring stops"
    submit_label = "Quit"
    command_name = "stop_monitoring"
    confirm_first = True
    first_focus = "reason"

    def fields(self):
        return [Field("author", "Your initials", default=self.user, required=True),
                Field("reason", "Why does monitoring stop?", required=True)]

    def summary(self, v: dict[str, Any]) -> str:
        s = self.snap.session
        return (f"Stop monitoring {s.patient_id}: no readings and no alarms until the session is resumed "
                "(the session file stays open)")

    def command(self, v: dict[str, Any]) -> Any:
        return self.service.stop_monitoring(author=v["author"], reason=v["reason"])

    def done_message(self, result: Any) -> str:
        return "Monitoring stopped; the session can be resumed"
