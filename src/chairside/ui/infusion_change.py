"""Change-rate form: new rate in mg/kg/h (mL/h shown before confirming) with a reason.

Owns: ``ChangeRateDialog``. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.ui.form_dialog import Field, FormDialog


class ChangeRateDialog(FormDialog):
    dialog_title = "Change infusion rate"
    submit_label = "Change"
    confirm_first = True
    command_name = "change_rate"

    def fields(self):
        inf = self.snap.infusion
        return [
            Field("author", "Your initials", default=self.user, required=True),
            Field("rate", "New rate mg/kg/h", "number", required=True,
                  placeholder=f"now {inf.rate_mg_kg_h or 0:.3g}"),
            Field("reason", "Reason", required=True),
            Field("above_usual_reason", "Reason (above usual)", hidden=True, required=True),
        ]

    def summary(self, v: dict[str, Any]) -> str:
        inf = self.snap.infusion
        n = self.service.dose_preview(rate_mg_kg_h=v["rate"], concentration_mg_ml=inf.concentration_mg_ml or 0)
        return (f"{inf.rate_mg_kg_h or 0:.3g} → {n['rate_mg_kg_h']:.3g} mg/kg/h = {n['rate_ml_h']:.1f} mL/h "
                f"(was {inf.rate_ml_h or 0:.1f} mL/h)")

    def command(self, v: dict[str, Any]) -> Any:
        return self.service.change_rate(author=v["author"], rate_mg_kg_h=v["rate"], reason=v["reason"],
                                        above_usual_reason=v.get("above_usual_reason", ""))

    def done_message(self, result: Any) -> str:
        return f"Rate changed: {result.rate_ml_h:.1f} mL/h"
