"""Start-infusion form: the order, the bag, the lot, the second person's check, the gate.

Owns: ``StartInfusionDialog``. Shows the pump numbers (mg/kg/h, mg/h, mL/h) before the
nurse confirms; a blocking pre-infusion gate (e.g. BP 185/112) is shown with its reasons
and needs an override reason. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.ui.form_dialog import Field, FormDialog


class StartInfusionDialog(FormDialog):
    dialog_title = "Start infusion"
    submit_label = "Start"
    confirm_first = True
    command_name = "start_infusion"

    def fields(self):
        d = self.service.template.dosing
        by_rate = d.basis == "mg_per_kg_h"
        out = [Field("author", "Your initials", default=self.user, required=True)]
        if by_rate:
            out.append(Field("rate", "Rate mg/kg/h", "number", default=d.dose, required=True))
        else:
            out.append(Field("dose", f"Dose {d.unit}", "number", default=d.dose, required=True))
        out += [
            Field("duration", "Duration min", "number", default=d.duration_min),
            Field("concentration", "Bag mg/mL", "number", required=True, placeholder="e.g. 0.35"),
            Field("bag_volume", "Bag volume mL", "number"),
            Field("lot", "Lot number"),
            Field("diluent", "Diluent", default="0.9% NaCl"),
            Field("confirmed_by", "Weight checked by", placeholder="second person's initials"),
            Field("above_usual_reason", "Reason (above usual)", hidden=True, required=True),
            Field("gate_override_reason", "Gate override reason", hidden=True, required=True),
        ]
        return out

    def intro(self) -> str:
        d = self.service.template.dosing
        snap = self.snap
        gate = self.service.start_check()
        if gate.blocks or gate.overrides:
            head = "Gate: BLOCKS START — " + "; ".join(f.text for f in (*gate.blocks, *gate.overrides))
        else:
            head = "Gate: clear"
        adv = "".join(f"\nAdvisory: {f.text}" for f in gate.advisories)
        return (f"{d.describe()} · weight {snap.session.weight_kg or 0:g} kg · usual "
                f"{d.usual_min:g}–{d.usual_max:g} {d.unit}\n{head}{adv}")

    def _order(self, v: dict[str, Any]) -> dict[str, Any]:
        return {"dose_mg_kg": v.get("dose"), "rate_mg_kg_h": v.get("rate"),
                "duration_min": v.get("duration"), "concentration_mg_ml": v.get("concentration")}

    def summary(self, v: dict[str, Any]) -> str:
        n = self.service.dose_preview(**self._order(v))
        d = self.service.template.dosing
        order = v.get("dose") if v.get("dose") is not None else v.get("rate")
        if order is not None and order > d.usual_max and "above_usual_reason" not in self._revealed:
            self.reveal("above_usual_reason")
            raise_text = f"{order:g} {d.unit} is above the usual range: give a reason"
            from chairside.ui.form_dialog import FormError

            raise FormError(raise_text)
        total = f" · total {n['total_mg']:.1f} mg" if n.get("total_mg") else ""
        gate = "Gate now: " + self.service.start_check().line()  # agrees with the advisories above it
        return (f"Pump: {n['rate_mg_kg_h']:.3g} mg/kg/h = {n['rate_mg_h']:.1f} mg/h = "
                f"{n['rate_ml_h']:.1f} mL/h{total}\n{gate}")

    def command(self, v: dict[str, Any]) -> Any:
        return self.service.start_infusion(
            author=v["author"], lot=v.get("lot", ""), diluent=v.get("diluent", ""),
            bag_volume_ml=v.get("bag_volume"), confirmed_by=v.get("confirmed_by") or None,
            gate_override_reason=v.get("gate_override_reason", ""),
            above_usual_reason=v.get("above_usual_reason", ""), **self._order(v))

    def done_message(self, result: Any) -> str:
        ov = " (gate overridden)" if getattr(result, "gate_override_reason", "") else ""
        return f"Infusion started: {result.rate_ml_h:.1f} mL/h{ov}"
