"""Pieces of the printable session report (``chairside.reports.html``): the print CSS,
escaping, the amendment-beside-the-original context, the limits table and the REMS
section. Must not import: textual, serial, chairside.transport, chairside.service, chairside.ui.
"""

from __future__ import annotations

import statistics
from html import escape
from typing import Any, Sequence

from chairside.domain.describe import marker, param_label
from chairside.domain.events import Amendment
from chairside.reports.common import current, fmt_num, fmt_time, numbered, record_state, scale_label, scale_of

CSS = """
@page { size: auto; margin: 12mm 11mm 16mm 11mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: 9.5pt; color: #000;
       background: #fff; margin: 0 auto; max-width: 186mm; line-height: 1.3; }
h1 { font-size: 15pt; margin: 0 0 2mm 0; }
h2 { font-size: 11.5pt; margin: 5mm 0 1.5mm 0; border-bottom: 1.2pt solid #000; padding-bottom: 0.5mm;
     break-after: avoid; page-break-after: avoid; }
h3 { font-size: 10pt; margin: 3mm 0 1mm 0; break-after: avoid; page-break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 2mm 0; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
th, td { border: 0.5pt solid #777; padding: 0.6mm 1.2mm; vertical-align: top; text-align: left; overflow-wrap: break-word; }
th { background: #e6e6e6; font-weight: bold; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.t { white-space: nowrap; }
.kv { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 0.6mm 3mm; }
.kv .k { font-weight: bold; }
.banner { border: 2pt solid #000; padding: 1.5mm 3mm; font-weight: bold; font-size: 11pt; margin: 2mm 0;
          text-align: center; letter-spacing: 0.05em; }
.muted { color: #444; }
.small { font-size: 8pt; }
.amend { display: inline-block; border: 0.8pt dashed #000; padding: 0 1mm; margin-left: 1mm; background: #f3f3f3; }
.amend::before { content: "AMENDED "; font-weight: bold; font-size: 7pt; }
.orig { }
.flag { font-weight: bold; }
.pri-high { font-weight: bold; }
.pri-medium { font-weight: bold; }
figure.chart { margin: 1mm 0 2mm 0; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 8pt; color: #333; }
section { break-inside: auto; }
table.dense th, table.dense td { font-size: 8pt; padding: 0.4mm 0.8mm; }
table.sign { margin-top: 4mm; }
table.sign td { height: 10mm; }
.eventlog td { font-size: 7.5pt; padding: 0.3mm 1mm; }
.eventlog tr.readings td { font-size: 6.8pt; color: #222; }
.eventlog td.seq { text-align: right; white-space: nowrap; }
.hash { font-family: "DejaVu Sans Mono", "Courier New", monospace; font-size: 8pt; word-break: break-all; }
.endnote { margin-top: 4mm; border-top: 1pt solid #000; padding-top: 1mm; }
.yn-yes { font-weight: bold; }
@media print {
  body { max-width: none; }
  .pagebreak { break-before: page; page-break-before: always; }
}
@media screen { body { padding: 6mm; } }
"""



def _e(v: Any) -> str:
    return escape("" if v is None else str(v), quote=True)


def _of_max(scale: str) -> str:
    """"/max" of a score from data/scales.toml ("" when the file does not say)."""
    s = scale_of(scale)
    return f"/{s.max:g}" if s is not None and s.max is not None else ""


def _css_str(text: str) -> str:
    """A CSS string literal that cannot end the string, the rule or the <style> element."""
    out = []
    for ch in text:
        if ch.isalnum() or ch in " .,:;·—-_#/()[]+=@!?*'":
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):x} ")
    return '"' + "".join(out) + '"'


def _yn(v: bool | None) -> str:
    if v is None:
        return '<span class="muted">not recorded</span>'
    return '<span class="yn-yes">YES</span>' if v else "no"


class Ctx:
    def __init__(self, events: Sequence[Any]) -> None:
        self.events = list(events)
        self.numbered = numbered(self.events)
        self.by_seq = {s: e for s, e in self.numbered}
        self.state = record_state(self.events)

    def amended(self, seq: int, field: str | None = None) -> list[Amendment]:
        out = list(self.state.amendments.get(seq, ()))
        if field is None:
            return out
        return [a for a in out if field in a.replacement]

    def eff(self, seq: int, ev: Any) -> Any:
        return current(self.state, seq, ev)

    def val(self, seq: int, ev: Any, field: str, fmt=lambda v: _e(v)) -> str:
        """Original value, followed by each amendment's new value beside it."""
        html = f'<span class="orig">{fmt(getattr(ev, field, None))}</span>'
        for a in self.amended(seq, field):
            html += (f'<span class="amend">→ {fmt(a.replacement[field])} <span class="small">'
                     f'(#{a.seq if a.seq >= 0 else "?"} {fmt_time(a.t)} by {_e(a.author)}: {_e(a.reason)})</span></span>')
        return html

    def note(self, seq: int, shown: tuple[str, ...] = ()) -> str:
        """Amendments of an event not already shown beside a displayed field (``shown``)."""
        parts = []
        for a in self.amended(seq):
            orig = self.by_seq.get(seq)
            ch = []
            if a.replacement and all(k in shown for k in a.replacement):
                continue
            for k, v in a.replacement.items():
                if k in shown:
                    continue
                old = getattr(orig, k, None) if orig is not None else None
                ch.append(f"{_e(k)}: {_e(old)} → {_e(v)}")
            parts.append(f'<span class="amend">#{a.seq if a.seq >= 0 else "?"} {fmt_time(a.t)} by {_e(a.author)}: '
                         f'{"; ".join(ch) or "(no field change)"} — {_e(a.reason)}</span>')
        return " ".join(parts)


def _limits_table(limits: Sequence[Any], source: str | None) -> str:
    """Every tier of the limits profile, by rule and phase, with priority marks and source tags."""
    phases = ("pre_infusion", "infusion", "recovery")
    rows: dict[tuple[str, str], dict[str, list[str]]] = {}
    for lim in limits:
        sym = (lim.symbol or (">=" if lim.op == "high" else "<=")).replace(">=", "≥").replace("<=", "≤")
        if lim.relative:
            sym = "rise " + sym
        cell = f"{sym}{lim.value:g} {marker(lim.priority)} {lim.source_tag}".strip()
        row = rows.setdefault((lim.rule.replace(" (relative)", ""), lim.param), {p: [] for p in phases})
        for p in (lim.phases or phases):
            if p in row:
                row[p].append(cell)
    out = [f'<h3>Limits in force (profile {_e(source)})</h3>',
           '<table class="limits small"><thead><tr><th>Rule</th><th>Parameter</th><th>Pre-dose</th><th>Dosing</th>'
           '<th>Recovery</th></tr></thead><tbody>']
    for (rule, param), cells in rows.items():
        name = scale_label(param.split(":", 1)[1]) if param.startswith("scale:") else param_label(param)
        out.append(f"<tr><td>{_e(rule)}</td><td>{_e(name)}</td>"
                   + "".join(f"<td>{_e('; '.join(cells[p])) or '—'}</td>" for p in phases) + "</tr>")
    out.append("</tbody></table><p class='small'>*** high, ** medium, * low (advisory) priority; medium and high "
               "limits are drawn on the chart. Source tags: [P] published, [P*] to be checked, [S] our suggestion, "
               "[C] clinic practice.</p>")
    return "".join(out)


def _rems_section(f: dict[str, Any]) -> str:
    def bp(d: dict | None) -> str:
        if not d:
            return "<b>not recorded</b>"
        at = f" at {_e(d['time'][11:19])}" if d.get("time") else ""
        m = d.get("minutes_after_first_device")
        rel = "" if m is None else (f" ({_e(fmt_num(-m, 1))} min before the first device)" if m < 0
                                    else f" (+{_e(fmt_num(m, 1))} min)")
        return f"{_e(fmt_num(d.get('sys')))}/{_e(fmt_num(d.get('dia')))} mmHg{at}{rel}"

    dose = f["dose"]
    rows = [
        ("Treatment date", _e(f.get("treatment_date"))),
        ("Patient (pseudonym)", _e(f.get("patient_id")) + ' <span class="small muted">(name, DOB, sex: fill in on the form)</span>'),
        ("Dose", f"{_e(dose.get('category') or 'not recorded')} ({_e(fmt_num(dose.get('mg')))} mg, "
                 f"{_e(fmt_num(dose.get('devices')))} device(s) at "
                 f"{_e(', '.join(t[11:19] for t in dose.get('device_times', [])) or '—')})"),
        ("Lot number", _e(f.get("lot") or "not recorded")),
        ("Concomitant medications", "; ".join(f"{_e(k)}: {_yn(v)}" for k, v in (f.get("concomitant") or {}).items())),
        ("BP before dosing", bp(f.get("bp_before_dosing"))),
        ("BP at about 40 min", bp(f.get("bp_at_40_min"))),
        ("BP before completion", bp(f.get("bp_before_completion"))),
        ("Total minutes monitored (first device → end of monitoring)",
         f"{_e(fmt_num(f.get('total_minutes_monitored')))} min"
         + ("" if f.get("minimum_met") in (None, True) else f" — <b>below the {_e(fmt_num(f.get('minimum_minutes')))} min minimum</b>")),
        ("Ready to leave (minutes after first device)", _e(fmt_num(f.get("ready_to_leave_minutes"))) if f.get("ready_to_leave_minutes") is not None else "not recorded"),
        ("Vitals acceptable before administration", _yn(f.get("vitals_acceptable_before_administration"))),
        ("Vitals acceptable before completion", _yn(f.get("vitals_acceptable_before_completion"))),
        ("Sedation", _yn(f.get("sedation")) + _ev(f, "sedation")),
        ("Dissociation", _yn(f.get("dissociation")) + _ev(f, "dissociation")),
        ("Respiratory depression", _yn(f.get("respiratory_depression")) + _ev(f, "respiratory_depression")),
    ]
    out = ['<section><h2>SPRAVATO REMS patient monitoring form fields</h2>',
           '<p class="small">Derived from the record by the rules listed; check against the current form before signing.</p>',
           '<table><thead><tr><th>Field</th><th>From the record</th><th>Rule</th></tr></thead><tbody>']
    rule_key = {"BP before dosing": "bp_before_dosing", "BP at about 40 min": "bp_at_40_min",
                "BP before completion": "bp_before_completion", "Dose": "dose",
                "Total minutes monitored (first device → end of monitoring)": "total_minutes_monitored",
                "Ready to leave (minutes after first device)": "ready_to_leave",
                "Vitals acceptable before administration": "vitals_acceptable_before_administration",
                "Vitals acceptable before completion": "vitals_acceptable_before_completion",
                "Sedation": "sedation", "Dissociation": "dissociation", "Respiratory depression": "respiratory_depression",
                "Concomitant medications": "concomitant"}
    for k, v in rows:
        rule = f["rules"].get(rule_key.get(k, ""), "")
        out.append(f'<tr data-rems="{_e(rule_key.get(k, k))}"><td><b>{_e(k)}</b></td><td>{v}</td><td class="small">{_e(rule)}</td></tr>')
    out.append("</tbody></table></section>")
    return "".join(out)


def _ev(f: dict[str, Any], key: str) -> str:
    seqs = f.get("evidence", {}).get(key) or []
    return f' <span class="small">(events {", ".join(f"#{s}" for s in seqs)})</span>' if seqs else ""


_SUMMARY_PARAMS = (("hr", "HR", "bpm"), ("pr", "PR", "bpm"), ("spo2", "SpO₂", "%"))
_PHASE_WORD = {"pre_infusion": "pre-dose", "infusion": "dosing", "recovery": "recovery", "discharged": "discharged"}


def _vitals_summary(series: dict[str, list[Any]], spans: Sequence[Any]) -> str:
    """The continuous vital signs by phase: how many readings, how many without a value,
    minimum, median and maximum (the readings themselves are not listed)."""
    rows = []
    for sp in spans:
        for prm, label, unit in _SUMMARY_PARAMS:
            pts = [p for p in series.get(prm, []) if p.t >= sp.start and (sp.end is None or p.t < sp.end)]
            if not pts:
                continue
            vals = [p.value for p in pts if p.value is not None]
            stat = (f"<td class='num'>{_e(fmt_num(min(vals)))}</td><td class='num'>{_e(fmt_num(statistics.median(vals)))}</td>"
                    f"<td class='num'>{_e(fmt_num(max(vals)))}</td>") if vals else "<td colspan='3'>no value</td>"
            rows.append(f"<tr><td>{_e(_PHASE_WORD.get(sp.phase, sp.phase))}</td><td>{fmt_time(sp.start)}–{fmt_time(sp.end)}</td>"
                        f"<td>{_e(label)} ({_e(unit)})</td><td class='num'>{len(pts)}</td>"
                        f"<td class='num'>{len(pts) - len(vals)}</td>{stat}</tr>")
    if not rows:
        return '<section><h2>Vital signs by phase</h2><p class="muted">No continuous readings.</p></section>'
    return ('<section><h2>Vital signs by phase</h2><table id="vitals-summary"><thead><tr><th>Phase</th><th>Time</th>'
            '<th>Parameter</th><th class="num">Readings</th><th class="num">No value</th><th class="num">Min</th>'
            '<th class="num">Median</th><th class="num">Max</th></tr></thead><tbody>' + "".join(rows)
            + "</tbody></table></section>")
