"""The start screen: a new session (patient, weight, protocol, staff, the contraindication
checklist, hours fasted, escort, consent, the limits file), resume an open session file, or
open a replay. A limits file that is not a valid one is refused with the file and the bad
entry named (the session is not opened).

Owns: ``StartScreen`` (a form over the live monitor: monitoring goes on behind it).
A ticked checklist item means the contraindication IS present (the start of the infusion
then needs an override reason); the "asked" box confirms every item was asked. Replay is
another part of Chairside: the app's ``replay_hook`` is called when one is installed.
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from textual.containers import Horizontal
from textual.widgets import Button, Input, Label

from chairside.service.data import console_data
from chairside.ui.form_dialog import Field, FieldInput, FormDialog, FormError


class StartScreen(FormDialog):
    dialog_title = "New session"
    submit_label = "Open session"
    command_name = "open_session"

    def fields(self):
        from chairside.domain.protocol import list_templates

        d = getattr(self.app, "start_defaults", {}) or {}
        protos = [(t.title, t.name) for t in list_templates()]
        out = [
            Field("patient_id", "Patient ID (pseudonym)", default=d.get("patient_id"), required=True),
            Field("weight", "Weight kg", "number", default=d.get("weight_kg"), required=True),
            Field("weight_source", "Weight source", "select",
                  options=[("measured", "measured"), ("stated", "stated"), ("chart", "chart")],
                  default=d.get("weight_source", "measured")),
            Field("weight_confirmed_by", "Weight checked by", default=d.get("weight_confirmed_by"),
                  placeholder="second person's initials"),
            Field("protocol", "Protocol", "select", options=protos,
                  default=d.get("protocol") or self.service.protocol_name),
            Field("staff", "Staff initials", default=d.get("staff") or self.user, required=True,
                  placeholder="AB, CD"),
        ]
        for item in console_data().checklist:
            out.append(Field(f"ci_{item.key}", f"PRESENT: {item.text}", "checkbox",
                             default=d.get("contraindications", {}).get(item.key, False)))
        out += [
            Field("asked", "Every contraindication above was asked and answered", "checkbox",
                  default=d.get("asked", False)),
            Field("hours_fasted", "Hours fasted", "number", default=d.get("hours_fasted")),
            Field("escort", "Escort home confirmed", "checkbox", default=d.get("escort", False)),
            Field("consent", "Consent obtained", "checkbox", default=d.get("consent", False)),
            Field("medications", "Current medicines reviewed", "checkbox", default=d.get("medications", False)),
            Field("allergies", "Allergies (or 'none known')", default=d.get("allergies")),
            Field("limits", "Limits file", default=d.get("limits"),
                  placeholder="empty: the protocol's own limits profile"),
        ]
        return out

    def on_mount(self) -> None:
        super().on_mount()
        buttons = self.query_one("#dialog-buttons", Horizontal)
        buttons.mount(Button("Resume file (F3)", id="resume"))
        buttons.mount(Button("Replay (F4)", id="replay"))
        fields = self.query_one("#dialog-fields")
        row = Horizontal(classes="field-row", id="row-resume_path")
        fields.mount(row)
        row.mount(Label("Resume/replay file", classes="field-label"))
        row.mount(FieldInput(placeholder="path to a .chairside session file", id="f-resume_path"))

    BINDINGS = [*FormDialog.BINDINGS, ("f3", "resume", "Resume"), ("f4", "replay", "Replay")]

    def intro(self) -> str:
        return ("Fill in and press ctrl+s. Escape keeps monitoring without recording. "
                "Tick a box only when the contraindication is PRESENT.")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "resume":
            event.stop()
            self.action_resume()
        elif event.button.id == "replay":
            event.stop()
            self.action_replay()
        else:
            super().on_button_pressed(event)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "f-resume_path":
            event.stop()
            self.action_resume()
        else:
            super().on_input_submitted(event)

    def action_resume(self) -> None:
        path = self.query_one("#f-resume_path", Input).value.strip()
        if not path:
            self.show_error("Type the path of the session file to resume (field at the bottom).")
            self.query_one("#f-resume_path", Input).focus()
            return
        self._busy = True
        self.command_name = "resume_session"
        self.run_worker(lambda: self.service.resume_session(path), thread=True, name="resume_session",
                        group="form-command", exit_on_error=False)

    def action_replay(self) -> None:
        path = self.query_one("#f-resume_path", Input).value.strip()
        hook = getattr(self.app, "replay_hook", None)
        if hook is None:
            self.show_error("Replay is not available in this console (use `chairside replay FILE`).")
            return
        if not path:
            self.show_error("Type the path of the session file or raw capture to replay.")
            return
        from pathlib import Path

        if not Path(path).is_file():
            self.show_error(f"{path}: no such file")
            return
        self.dismiss(None)
        hook(path)

    def values(self) -> dict[str, Any]:
        v = super().values()
        v["resume_path"] = self.query_one("#f-resume_path", Input).value.strip()
        return v

    def command(self, v: dict[str, Any]) -> Any:
        if not v["asked"]:
            raise FormError("Confirm that every contraindication was asked (tick the 'asked' box)")
        staff = [s.strip() for s in v["staff"].replace(";", ",").replace(" ", ",").split(",") if s.strip()]
        svc = self.service
        path = svc.open_session(patient_id=v["patient_id"], weight_kg=v["weight"],
                                weight_source=v["weight_source"] or "measured",
                                weight_confirmed_by=v.get("weight_confirmed_by") or None,
                                protocol=v.get("protocol"), staff=staff,
                                path=(getattr(self.app, "start_defaults", {}) or {}).get("path"),
                                training=bool((getattr(self.app, "start_defaults", {}) or {}).get("training")),
                                limits=(v.get("limits") or "").strip() or None)
        svc.complete_checklist(
            author=staff[0], contraindications={i.key: v[f"ci_{i.key}"] for i in console_data().checklist},
            hours_fasted=v.get("hours_fasted"), escort_confirmed=v["escort"], consent=v["consent"],
            medications_reviewed=bool(v.get("medications")), allergies=v.get("allergies") or None)
        if not getattr(self.app, "user", ""):
            self.app.user = staff[0]  # type: ignore[attr-defined]
        return path

    def done_message(self, result: Any) -> str:
        if self.command_name == "resume_session":
            return "Session resumed"
        return f"Session opened: {result}"
