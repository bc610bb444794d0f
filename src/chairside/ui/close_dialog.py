"""Close-session form: records ``session_closed`` with a reason and closes the file
(monitoring goes on, unrecorded, until a new session is opened).

Owns: ``CloseSessionDialog``. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.ui.form_dialog import Field, FormDialog


class CloseSessionDialog(FormDialog):
    dialog_title = "Close the session"
    submit_label = "Close"
    command_name = "close_session"
    confirm_first = True

    def fields(self):
        return [Field("author", "Your initials", default=self.user, required=True),
                Field("reason", "Reason", default="session complete")]

    def summary(self, v: dict[str, Any]) -> str:
        s = self.snap.session
        warn = "" if s.discharged else " — the patient has NOT been discharged"
        return f"Close session of {s.patient_id}{warn}"

    def command(self, v: dict[str, Any]) -> Any:
        return self.service.close_session(author=v["author"], reason=v["reason"])

    def done_message(self, result: Any) -> str:
        return "Session closed; the file is complete (chairside verify FILE)"
