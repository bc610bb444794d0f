"""Intervention form: a pick-list (pause/slow, reassurance, ondansetron, labetalol,
clonidine, midazolam, lorazepam, oxygen, airway, EMS, other) with dose, unit, route, lot,
who ordered and gave it, reason and response. The app recommends no doses.

Owns: ``InterventionDialog``. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.service.data import console_data
from chairside.ui.form_dialog import Field, FormDialog, FormError


class InterventionDialog(FormDialog):
    dialog_title = "Intervention"
    command_name = "intervention"

    def fields(self):
        data = console_data()
        opts = [(i.text, i.key) for i in data.interventions]
        routes = [(r, r) for r in data.routes]
        return [
            Field("author", "Your initials", default=self.user, required=True),
            Field("what", "Intervention", "select", options=opts, required=True),
            Field("other", "If other: what"),
            Field("dose", "Dose", "number"),
            Field("unit", "Unit", placeholder="mg, L/min…"),
            Field("route", "Route", "select", options=routes),
            Field("lot", "Lot number"),
            Field("ordered_by", "Ordered by"),
            Field("given_by", "Given by", default=self.user),
            Field("reason", "Reason"),
            Field("response", "Response"),
        ]

    def command(self, v: dict[str, Any]) -> Any:
        items = {i.key: i for i in console_data().interventions}
        item = items[v["what"]]
        name = v["other"] if v["what"] == "other" else item.text
        if not name:
            raise FormError("If other: what — describe the intervention")
        unit = v.get("unit") or item.unit
        route = v.get("route") or item.route
        return self.service.record_intervention(
            author=v["author"], drug=name, dose=v.get("dose"), dose_unit=unit if v.get("dose") is not None else "",
            route=route or "", lot=v.get("lot", ""), given_by=v.get("given_by", ""),
            ordered_by=v.get("ordered_by", ""), reason=v.get("reason", ""), response=v.get("response", ""))

    def done_message(self, result: Any) -> str:
        return f"Intervention recorded: {result.drug}"
