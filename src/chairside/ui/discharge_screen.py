"""The discharge screen: minimum recovery from the template, modified Aldrete and PADSS
scored on screen, vitals within the template's % of baseline computed from the record,
escort, discharge instructions; blocked with the reasons shown until the criteria are met
or overridden with a recorded reason and the prescriber's initials.

Owns: ``DischargeScreen`` (the criteria are re-checked by the service on every change and
every snapshot; nothing is decided here). Must not import: chairside.store,
chairside.transport.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Checkbox, Select, Static

from chairside.domain.scales import get_scale
from chairside.service.model import DischargeCheck
from chairside.ui.form_dialog import Field, FormDialog


class DischargeScreen(FormDialog):
    dialog_title = "Discharge"
    submit_label = "Discharge"
    command_name = "discharge"
    confirm_first = True

    def fields(self):
        out = [Field("author", "Your initials", default=self.user, required=True)]
        for scale in ("aldrete", "padss"):
            sc = get_scale(scale)
            for it in sc.items:
                if it.default is not None and not it.options:
                    continue
                opts = [(f"{k}  {txt}", k) for k, txt in sorted(it.options.items(), reverse=True)] or [
                    (str(k), k) for k in range(it.max, it.min - 1, -1)]
                out.append(Field(f"{scale}_{it.key}", f"{sc.short or scale} {it.text.split(' (')[0]}", "select", options=opts,
                                 default=it.default))
        out += [
            Field("escort", "Escort present", "checkbox"),
            Field("instructions", "Discharge instructions given (no driving until tomorrow)", "checkbox"),
            Field("override_reason", "Override reason", hidden=True, required=True),
            Field("override_by", "Prescriber's initials (override)", hidden=True, required=True),
        ]
        return out

    def intro(self) -> str:
        t = self.service.template
        d = t.discharge
        rule = d.score_rule
        parts = ([f"Aldrete ≥ {d.aldrete_min}"] if "aldrete" in rule else []) + (
            [f"PADSS ≥ {d.padss_min}"] if "padss" in rule else [])
        scores = (" or " if "_or_" in rule else " and ").join(parts) or rule.replace("_", " ")
        sed = ([f"MOAA/S {d.tagged('moaas_required')}"] if d.moaas_required is not None else []) + (
            [f"CADSS ≤ {d.tagged('cadss_max')}"] if d.cadss_max is not None else [])
        after = f"; after dosing: {' and '.join(sed)}" if sed else ""
        return (f"{t.title}: minimum recovery {t.recovery.tagged('min_minutes')} min from "
                f"{t.recovery.counted_from.replace('_', ' ')}; {scores}; vitals within "
                f"{d.tagged('vitals_within_pct')} % of baseline{after}; escort.")

    def on_mount(self) -> None:
        super().on_mount()
        self.refresh_check()

    def _scores(self) -> tuple[dict[str, int], dict[str, int], bool, bool]:
        al: dict[str, int] = {}
        pa: dict[str, int] = {}
        for f in self.fields():
            if f.kind != "select":
                continue
            v = self.query_one(f"#f-{f.name}", Select).value
            if v is Select.NULL:
                continue
            scale, key = f.name.split("_", 1)
            (al if scale == "aldrete" else pa)[key] = int(v)  # type: ignore[arg-type]
        esc = self.query_one("#f-escort", Checkbox).value
        ins = self.query_one("#f-instructions", Checkbox).value
        return al, pa, esc, ins

    def check(self) -> DischargeCheck:
        al, pa, esc, ins = self._scores()
        complete_a = len(al) == len([i for i in get_scale("aldrete").items])
        complete_p = len(pa) == len([i for i in get_scale("padss").items])
        return self.service.discharge_check(aldrete=al if complete_a else None,
                                            padss=pa if complete_p else None,
                                            escort_present=esc, instructions_given=ins)

    def refresh_check(self) -> None:
        try:
            chk = self.check()
        except Exception as exc:  # noqa: BLE001 - a half-filled form is not an error
            self.query_one("#dialog-summary", Static).update(str(exc))
            return
        lines = []
        rec = "—" if chk.minutes_since_end is None else f"{chk.minutes_since_end:.0f}"
        lines.append(f"Recovery {rec}/{chk.min_recovery_min:g} min {'met' if chk.min_recovery_met else 'NOT MET'}"
                     f" · Aldrete {chk.aldrete_total if chk.aldrete_total is not None else '—'}"
                     f" PADSS {chk.padss_total if chk.padss_total is not None else '—'}"
                     f" {'met' if chk.scores_met else 'NOT MET'}"
                     f" · escort {'yes' if chk.escort_present else 'NO'}")
        lines.append(f"Vitals: {chk.vitals_detail}")
        if chk.blocked_reasons:
            lines.append(f"BLOCKED ({len(chk.blocked_reasons)}): " + "; ".join(chk.blocked_reasons))
        else:
            lines.append("All discharge criteria met.")
        box = self.query_one("#dialog-summary", Static)
        box.set_class(bool(chk.blocked_reasons), "-blocked")
        box.set_class(not chk.blocked_reasons, "-met")
        box.update("\n".join(lines))

    def on_select_changed(self, event: Select.Changed) -> None:
        self.refresh_check()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.refresh_check()

    def on_snapshot(self, snap: Any) -> None:
        if not self._busy and not self._confirming:
            self.refresh_check()

    def summary(self, v: dict[str, Any]) -> str:
        chk = self.check()
        if chk.blocked_reasons and not v.get("override_reason"):
            from chairside.ui.form_dialog import FormError

            if "override_reason" not in self._revealed:
                self.reveal("override_reason")
                self.reveal("override_by")
            raise FormError("BLOCKED:\n" + "\n".join(f"• {r}" for r in chk.blocked_reasons)
                            + "\nTo discharge anyway, give the override reason and submit again.")
        return "Discharge now" + (" WITH OVERRIDE" if chk.blocked_reasons else " (criteria met)")

    def command(self, v: dict[str, Any]) -> Any:
        al, pa, esc, ins = self._values_scores(v)
        return self.service.assess_discharge(author=v["author"], aldrete=al or None, padss=pa or None,
                                             escort_present=esc, instructions_given=ins,
                                             override_reason=v.get("override_reason", ""),
                                             override_by=v.get("override_by", ""))

    def _values_scores(self, v: dict[str, Any]) -> tuple[dict[str, int], dict[str, int], bool, bool]:
        al = {k.split("_", 1)[1]: int(x) for k, x in v.items() if k.startswith("aldrete_") and x is not None}
        pa = {k.split("_", 1)[1]: int(x) for k, x in v.items() if k.startswith("padss_") and x is not None}
        if len(al) != len(get_scale("aldrete").items):
            al = {}
        if len(pa) != len(get_scale("padss").items):
            pa = {}
        return al, pa, bool(v.get("escort")), bool(v.get("instructions"))

    def on_blocked(self, err: Any) -> None:
        reasons = getattr(err, "reasons", ())
        self.show_error("BLOCKED:\n" + "\n".join(f"• {r}" for r in reasons)
                        + "\nTo discharge anyway, give the override reason and submit again.")
        if "override_reason" not in self._revealed:
            self.reveal("override_reason")
            self.reveal("override_by")

    def done_message(self, result: Any) -> str:
        return "Patient discharged" + (" (override recorded)" if result.override_reason else "")
