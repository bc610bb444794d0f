"""Give one fixed-dose device (esketamine nasal spray, 28 mg): the lot, the planned dose on the
first device, the start gate's findings before it.

Owns: ``GiveDeviceDialog``. The rules (maximum in mg, the wait between devices, the gate) are
the service's (``chairside.domain.esketamine``); nothing is decided here. No mg/kg or mL/h.
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.ui.form_dialog import Field, FormDialog


class GiveDeviceDialog(FormDialog):
    dialog_title = "Give device"
    submit_label = "Given"
    confirm_first = True
    command_name = "give_device"

    def fields(self):
        d = self.service.template.dosing
        out = [Field("author", "Your initials", default=self.user, required=True),
               Field("lot", "Lot number", required=True)]
        if self.service.device_doses.count == 0:
            doses = list(d.allowed_doses) or [d.dose]
            out.append(Field("planned_mg", "Planned dose mg", "select",
                             options=[(f"{x:g} mg ({x / d.device_mg:g} devices)", x) for x in doses], default=d.dose))
        out.append(Field("gate_override_reason", "Reason (gate / above plan)", hidden=True, required=True))
        return out

    def intro(self) -> str:
        d = self.service.template.dosing
        dev = self.service.device_doses
        lines = [f"{d.drug}: {d.device_mg:g} mg per device, wait {d.device_wait_min:g} min between devices, "
                 f"at most {d.hard_max:g} mg {d.source('hard_max')}".rstrip(),
                 f"Given so far: {dev.count} device(s), {dev.total_mg:g} mg"]
        if dev.count == 0:
            gate = self.service.start_check()
            lines += [f"Gate: {f.text}" for f in (*gate.blocks, *gate.overrides, *gate.advisories)] or ["Gate: clear"]
        return "\n".join(lines)

    def summary(self, v: dict[str, Any]) -> str:
        dev = self.service.device_doses
        d = self.service.template.dosing
        return f"Device {dev.count + 1}: {d.device_mg:g} mg IN, lot {v.get('lot', '')} (total {dev.total_mg + d.device_mg:g} mg)"

    def command(self, v: dict[str, Any]) -> Any:
        return self.service.give_device(author=v["author"], lot=v.get("lot") or "", planned_mg=v.get("planned_mg"),
                                        reason=v.get("gate_override_reason") or "")

    def done_message(self, result: Any) -> str:
        return f"Device {result.n} recorded: total {result.total_mg:g} mg"
