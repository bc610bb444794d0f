"""Baseline form: BP (taken from the latest NIBP unless typed in), HR, SpO2, MOAA/S, CADSS.

Owns: ``BaselineDialog``. The alarm engine's rise-from-baseline limits follow it; the
discharge check compares the vitals with it. Must not import: chairside.store,
chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.domain.scales import get_scale
from chairside.ui.form_dialog import Field, FormDialog


class BaselineDialog(FormDialog):
    dialog_title = "Record baseline"
    command_name = "baseline"
    confirm_first = True

    def fields(self):
        snap = self.snap
        nibp, hr, spo2 = snap.tile("nibp"), snap.tile("hr"), snap.tile("spo2")
        moaas = get_scale("moaas")

        def v(x):
            return None if x is None else f"{x:.0f}"
        return [
            Field("author", "Your initials", default=self.user, required=True),
            Field("sbp", "SBP mmHg", "number", default=v(nibp.value if nibp else None), required=True),
            Field("dbp", "DBP mmHg", "number", default=v(nibp.value2 if nibp else None), required=True),
            Field("hr", "HR bpm", "number", default=v(hr.value if hr else None)),
            Field("spo2", "SpO2 %", "number", default=v(spo2.value if spo2 else None)),
            Field("moaas", "MOAA/S", "select", options=[(f"{k}  {moaas.labels[k]}", k)
                                                        for k in sorted(moaas.labels, reverse=True)]),
            Field("cadss", "CADSS total", "int"),
        ]

    def intro(self) -> str:
        snap = self.snap
        nibp = snap.tile("nibp")
        age = "" if nibp is None or nibp.age_s is None else f" (last NIBP {nibp.age_s / 60:.0f} min old)"
        return "Values prefilled from the monitor" + age + "; correct them if needed."

    def summary(self, v: dict[str, Any]) -> str:
        return f"Baseline {v['sbp']:.0f}/{v['dbp']:.0f} mmHg, HR {v.get('hr')}, SpO2 {v.get('spo2')}"

    def command(self, v: dict[str, Any]) -> Any:
        return self.service.record_baseline(author=v["author"], sbp=v["sbp"], dbp=v["dbp"], hr=v.get("hr"),
                                            spo2=v.get("spo2"), moaas=v.get("moaas"), cadss=v.get("cadss"))
