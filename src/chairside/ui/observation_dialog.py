"""Observation forms, one per key: CADSS, MOAA/S, RASS, nausea and vomiting, anxiety,
hypertensive-crisis symptoms, other.

Owns: ``ObservationDialog`` (the form is built from the scale's data in
``chairside.domain.scales``: labelled scales are pick-lists with their texts, numeric
scales a number with the range, checklists one checkbox per item; nausea and vomiting
are recorded together). Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from typing import Any

from chairside.domain.scales import get_scale
from chairside.ui.form_dialog import Field, FormDialog, FormError

FORMS = ("cadss", "moaas", "rass", "nausea", "anxiety", "htn_symptoms", "other")
TITLES = {"cadss": "Dissociation (CADSS)", "moaas": "Sedation (MOAA/S)", "rass": "Agitation (RASS)",
          "nausea": "Nausea and vomiting", "anxiety": "Anxiety (0–10)",
          "htn_symptoms": "Hypertensive-crisis symptoms", "other": "Other observation"}


class ObservationDialog(FormDialog):
    def __init__(self, form: str, **kwargs: Any) -> None:
        if form not in FORMS:
            raise ValueError(f"unknown observation form {form!r}")
        self.form = form
        self.dialog_title = TITLES[form]
        self.command_name = f"observation_{form}"
        super().__init__(**kwargs)

    def intro(self) -> str:
        if self.form == "other":
            return "Describe the effect; the clinician sets its importance in the text."
        sc = get_scale(self.form)
        extra = f" {sc.note}" if sc.note else ""
        return f"{sc.title} {sc.source} — range {sc.range_text}.{extra}"

    def fields(self):
        author = Field("author", "Your initials", default=self.user, required=True)
        f = self.form
        if f == "other":
            from chairside.service.data import console_data

            opts = [(x, x) for x in console_data().other_observations]
            return [author, Field("what", "What", "select", options=opts, required=True),
                    Field("text", "Description", required=True)]
        if f == "nausea":
            n = get_scale("nausea")
            return [author, Field("score", f"Nausea {n.range_text}", "int", required=True),
                    Field("vomiting", "Vomiting episodes", "int", default=0, required=True),
                    Field("text", "Comment")]
        sc = get_scale(f)
        if sc.kind == "labelled":
            opts = [(f"{k:+d}  {sc.labels[k]}" if sc.min < 0 else f"{k}  {sc.labels[k]}", k)
                    for k in sorted(sc.labels, reverse=True)]
            return [author, Field("score", sc.short or sc.title, "select", options=opts, required=True),
                    Field("text", "Comment")]
        if sc.kind == "checklist":
            return [author, *[Field(f"item_{it.key}", it.text, "checkbox") for it in sc.items],
                    Field("text", "Comment")]
        # numeric, count, items (entered as a total)
        return [author, Field("score", f"{sc.short or sc.title} {sc.range_text}", "int" if sc.integer else "number",
                              required=True), Field("text", "Comment")]

    def summary(self, v: dict[str, Any]) -> str:
        return ""

    def command(self, v: dict[str, Any]) -> Any:
        svc, a, f = self.service, v["author"], self.form
        if f == "other":
            return svc.record_observation(author=a, scale="other", text=f"{v['what']}: {v['text']}")
        if f == "nausea":
            first = svc.record_observation(author=a, scale="nausea", score=v["score"], text=v.get("text", ""))
            svc.record_observation(author=a, scale="vomiting", score=v["vomiting"])
            return first
        sc = get_scale(f)
        if sc.kind == "checklist":
            items = {it.key: bool(v[f"item_{it.key}"]) for it in sc.items}
            return svc.record_observation(author=a, scale=f, items=items, text=v.get("text", ""))
        if v.get("score") is None:
            raise FormError("score: required")
        return svc.record_observation(author=a, scale=f, score=v["score"], text=v.get("text", ""))

    def done_message(self, result: Any) -> str:
        score = "" if result.score is None else f" {result.score:g}"
        return f"{self.dialog_title}{score}: recorded"
