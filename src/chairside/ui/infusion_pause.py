"""Pause / resume / stop forms: each asks for confirmation and (pause, stop) a reason.

Owns: ``InfusionStateDialog`` (one screen, three modes: ``pause``, ``resume``, ``stop``).
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.ui.form_dialog import Field, FormDialog

_TITLES = {"pause": "Pause infusion", "resume": "Resume infusion", "stop": "Stop infusion"}


class InfusionStateDialog(FormDialog):
    confirm_first = True

    def __init__(self, mode: str, **kwargs: Any) -> None:
        if mode not in _TITLES:
            raise ValueError(mode)
        self.mode = mode
        self.dialog_title = _TITLES[mode]
        self.submit_label = mode.capitalize()
        self.command_name = f"{mode}_infusion"
        super().__init__(**kwargs)

    def fields(self):
        out = [
            Field("author", "Your initials", default=self.user, required=True),
            Field("reason", "Reason", required=self.mode != "resume",
                  placeholder="e.g. BP 188/112" if self.mode == "pause" else ""),
        ]
        if self.mode == "resume":  # above the gate on the BP after the pause: the prescriber agrees
            out.append(Field("prescriber", "Prescriber's initials", hidden=True, required=True))
        return out

    def intro(self) -> str:
        if self.mode != "resume":
            return super().intro()
        gate = self.service.resume_check()
        found = [f.text for f in (*gate.blocks, *gate.overrides)]
        return "Resume gate: " + ("; ".join(found) if found else "clear (BP after the pause below the gate)")

    def on_blocked(self, err: Any) -> None:
        super().on_blocked(err)
        if self.mode == "resume":
            self.reveal("prescriber")

    def summary(self, v: dict[str, Any]) -> str:
        inf = self.snap.infusion
        return f"{self.dialog_title} now (rate {inf.rate_ml_h or 0:.1f} mL/h, given {inf.delivered_mg:.1f} mg)"

    def command(self, v: dict[str, Any]) -> Any:
        fn = getattr(self.service, f"{self.mode}_infusion")
        if self.mode == "resume":
            return fn(author=v["author"], reason=v["reason"], prescriber=v.get("prescriber") or "")
        return fn(author=v["author"], reason=v["reason"])

    def done_message(self, result: Any) -> str:
        return {"pause": "Infusion paused", "resume": "Infusion resumed", "stop": "Infusion stopped"}[self.mode]
