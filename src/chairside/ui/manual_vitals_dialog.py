"""Manual vitals form: a BP taken by hand (or by another device), pulse, SpO2, and how they
were measured. Stored and alarmed like the monitor's readings (origin "manual"), with a
note saying who took them. Owns: ``ManualVitalsDialog``.
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.ui.form_dialog import Field, FormDialog


class ManualVitalsDialog(FormDialog):
    dialog_title = "Manual vitals"
    command_name = "manual_vitals"
    confirm_first = True

    def fields(self):
        return [
            Field("author", "Your initials", default=self.user, required=True),
            Field("sbp", "SBP mmHg", "number"),
            Field("dbp", "DBP mmHg", "number"),
            Field("hr", "Pulse /min", "number"),
            Field("spo2", "SpO2 %", "number"),
            Field("how", "How measured", placeholder="manual cuff, left arm"),
        ]

    def intro(self) -> str:
        return ("For a BP taken by hand or by another device (and when the monitor's cuff fails). "
                "The values go into the record as manual readings and count as the scheduled BP check.")

    def summary(self, v: dict[str, Any]) -> str:
        bp = f"BP {v['sbp']:g}/{v['dbp']:g} mmHg" if v.get("sbp") is not None and v.get("dbp") is not None else ""
        rest = [f"pulse {v['hr']:g}" if v.get("hr") is not None else "",
                f"SpO2 {v['spo2']:g} %" if v.get("spo2") is not None else ""]
        return "Record manual vitals: " + (", ".join(x for x in [bp, *rest] if x) or "(none)")

    def command(self, v: dict[str, Any]) -> Any:
        return self.service.record_manual_vitals(author=v["author"], sbp=v.get("sbp"), dbp=v.get("dbp"),
                                                 hr=v.get("hr"), spo2=v.get("spo2"), how=v.get("how", ""))

    def done_message(self, result: Any) -> str:
        return "Manual vitals recorded"
