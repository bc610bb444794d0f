"""Amendment form: pick an earlier entry, say what is wrong (reason) and give the
corrected text or value. The original stays in the record; the amendment points at it.

Owns: ``AmendDialog``. The correction is recorded as a replacement of one field of the
entry (the text of a note or observation, a score, a dose, a lot...), chosen from the
fields that entry has. Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Select

from chairside.ui.form_dialog import Field, FormDialog, FormError

AMENDABLE_FIELDS = {
    "note": ("text",),
    "observation_recorded": ("score", "text"),
    "intervention_given": ("dose", "dose_unit", "route", "lot", "given_by", "ordered_by", "reason", "response"),
    "checklist_completed": ("hours_fasted", "escort_confirmed", "consent", "notes"),
    "baseline_recorded": ("sbp", "dbp", "hr", "spo2", "moaas", "cadss"),
    "infusion_started": ("lot", "diluent", "bag_volume_ml", "reason"),
    "infusion_rate_changed": ("reason",),
    "infusion_paused": ("reason",),
    "infusion_stopped": ("reason",),
    "session_opened": ("weight_kg", "weight_source", "weight_confirmed_by"),
    "discharge_assessed": ("override_reason",),
}


class AmendDialog(FormDialog):
    dialog_title = "Amend an earlier entry"
    command_name = "amend"
    confirm_first = True

    def fields(self):
        entries = [e for e in self.service.amendable_events() if e.kind in AMENDABLE_FIELDS][:40]
        opts = [(f"#{e.seq} {e.t:%H:%M} {e.text[:60]}", e.seq) for e in entries]
        self._kinds = {e.seq: e.kind for e in entries}
        fields = sorted({f for fs in AMENDABLE_FIELDS.values() for f in fs})
        return [
            Field("author", "Your initials", default=self.user, required=True),
            Field("target", "Entry", "select", options=opts, required=True),
            Field("field", "Field to correct", "select", options=[(f, f) for f in fields], required=True),
            Field("value", "Correct value", required=True),
            Field("reason", "Reason", required=True),
        ]

    def on_select_changed(self, event: Select.Changed) -> None:
        """Offer only the fields the chosen entry has (a note has a text, a baseline its values)."""
        if event.select.id != "f-target":
            return
        kind = getattr(self, "_kinds", {}).get(event.value)
        names = AMENDABLE_FIELDS.get(kind or "", ())
        if not names:
            return
        field = self.query_one("#f-field", Select)
        field.set_options([(n, n) for n in names])
        if len(names) == 1:
            field.value = names[0]

    def _replacement(self, v: dict[str, Any]) -> dict[str, Any]:
        ev = self.service.event(v["target"])
        allowed = AMENDABLE_FIELDS.get(ev.kind, ())
        name = v["field"]
        if name not in allowed:
            raise FormError(f"a {ev.kind.replace('_', ' ')} entry has no field {name!r} to correct "
                            f"(choose one of: {', '.join(allowed)})")
        current = getattr(ev, name, None)
        raw = v["value"]
        value: Any = raw
        if isinstance(current, bool):
            value = raw.lower() in ("yes", "y", "true", "1")
        elif isinstance(current, (int, float)) or name in ("score", "dose", "weight_kg", "hours_fasted",
                                                          "bag_volume_ml", "sbp", "dbp", "hr", "spo2"):
            try:
                value = float(raw.replace(",", "."))
            except ValueError:
                raise FormError(f"{name}: {raw!r} is not a number") from None
        return {name: value}

    def summary(self, v: dict[str, Any]) -> str:
        ev = self.service.event(v["target"])
        rep = self._replacement(v)
        (name, value), = rep.items()
        return f"#{v['target']} {ev.kind}: {name} {getattr(ev, name, None)!r} → {value!r} (the original stays)"

    def command(self, v: dict[str, Any]) -> Any:
        return self.service.amend(author=v["author"], target_seq=v["target"], reason=v["reason"],
                                  replacement=self._replacement(v))

    def done_message(self, result: Any) -> str:
        return f"Amendment of #{result.target_seq} recorded"
