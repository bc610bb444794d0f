"""The infusion panel: drug, rate in mg/kg/h and mL/h, elapsed time, delivered mg and
mg/kg, next BP due and minutes to the minimum recovery.

Owns: ``InfusionPanel``. Numbers come from the snapshot (the service does the dose
arithmetic); nothing is computed here but formatting.
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.widgets import Static

from chairside.service.model import Snapshot
from chairside.ui.format import duration

STATE_TEXT = {"not_started": "not started", "running": "RUNNING", "paused": "PAUSED", "stopped": "stopped"}


class InfusionPanel(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", id="infusion", markup=False, **kwargs)
        self.border_title = "Infusion"
        self._key: tuple | None = None

    def show(self, snap: Snapshot) -> None:
        inf = snap.infusion
        bp = snap.next_bp_due_s
        rec = snap.min_recovery_left_min
        conc = f" {inf.concentration_mg_ml:g} mg/mL" if inf.concentration_mg_ml else ""
        lines = [f"{inf.drug} {STATE_TEXT.get(inf.state, inf.state)}{conc}"]
        if inf.devices_n:  # fixed-dose devices (esketamine): mg, no rate
            lines = [f"{inf.drug} {inf.devices_n} device(s) = {inf.devices_mg or 0:g} mg"]
        elif inf.state == "not_started":
            if snap.session.weight_kg:
                lines.append(f"weight {snap.session.weight_kg:g} kg")
            lines.append("i: start infusion")
        else:
            rate = f"{inf.rate_mg_kg_h:.3g} mg/kg/h" if inf.rate_mg_kg_h is not None else "--"
            mlh = f"{inf.rate_ml_h:.1f} mL/h" if inf.rate_ml_h is not None else "--"
            lines.append(f"{rate} = {mlh}")
            lines.append(f"given {inf.delivered_mg:.1f} mg = {inf.delivered_mg_kg:.3f} mg/kg")
            if inf.state == "paused":
                lines.append("p: resume infusion")
            if inf.completed and not inf.pump_stop_confirmed:
                lines.append("DOSE IN: confirm the pump stopped (x)")
        if bp is None:
            lines.append("next BP: not scheduled")
        elif bp <= 0:
            lines.append(f"next BP: DUE ({duration(-bp)} late)" if bp < -1 else "next BP: DUE now")
        else:
            lines.append(f"next BP in {duration(bp)}")
        if rec is not None:
            lines.append(f"min recovery: {rec:.0f} min left" if rec > 0 else "min recovery reached")
        if inf.state != "not_started":
            lines.append(f"elapsed {duration(inf.elapsed_s)}")
            if inf.target_dose_mg_kg:
                lines.append(f"order {inf.target_dose_mg_kg:g} mg/kg ({inf.delivered_ml:.0f} mL given)")
        key = tuple(lines)
        if key == self._key:
            return
        self._key = key
        self.set_class(inf.state == "paused", "-paused")
        self.set_class(inf.state == "running", "-running")
        self.set_class(bp is not None and bp <= 0, "-bp-due")
        self.update("\n".join(lines))
