"""Free-text note form. Owns: ``NoteDialog``.
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.ui.form_dialog import Field, FormDialog


class NoteDialog(FormDialog):
    dialog_title = "Note"
    command_name = "note"

    def fields(self):
        return [Field("author", "Your initials", default=self.user, required=True),
                Field("text", "Note", required=True)]

    first_focus = "text"

    def command(self, v: dict[str, Any]) -> Any:
        return self.service.add_note(author=v["author"], text=v["text"])
