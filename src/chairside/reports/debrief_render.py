"""The debrief's exports: markdown, JSON lines and a self-contained HTML page with the chart.

Owns: ``to_markdown``, ``to_jsonl``, ``to_html`` and ``render(d, fmt)`` over the plain data
``chairside.reports.debrief.build_debrief`` returns. Times are shown as m:ss from the
debrief's time zero. Every piece of recorded text is escaped in the HTML.
Must not import: textual, chairside.ui, chairside.service.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from chairside.domain.clock import elapsed_text

FORMATS = ("md", "jsonl", "html")


def _mmss(s: float | None) -> str:
    return elapsed_text(s, missing="—")


def _dur(s: float | None) -> str:
    if s is None:
        return "—"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s" if m else f"{sec} s"


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:g}"


def _beyond(b: dict[str, Any], unit: str) -> str:
    op = {"<": "below", "<=": "at or below", ">": "above", ">=": "at or above"}[b["op"]]
    return f"{_dur(b['seconds'])} {op} {b['limit']:g} {unit}"


def vital_lines(d: dict[str, Any]) -> list[str]:
    """One sentence a parameter: nadir, peak and the time beyond each limit that was crossed."""
    out = []
    for v in d.get("vitals", []):
        if v["nadir"] is None:
            out.append(f"{v['label']}: no value recorded" + (f" ({v['readings']} readings without one)"
                                                              if v["readings"] else ""))
            continue
        s = (f"{v['label']} nadir {v['nadir']['value']:g} {v['unit']} at {_mmss(v['nadir']['t_s'])}, "
             f"peak {v['peak']['value']:g} {v['unit']} at {_mmss(v['peak']['t_s'])}")
        crossed = [_beyond(b, v["unit"]) for b in v["beyond"] if b["seconds"] > 0]
        if crossed:
            s += "; " + "; ".join(crossed)
        out.append(s)
    return out


def _truth_lines(d: dict[str, Any]) -> list[str]:
    out = []
    for x in d.get("truth", []):
        s = (f"{x['label']}: the patient {_num(x['true_min'])}–{_num(x['true_max'])} {x['unit']}, the monitor showed "
             f"{_num(x['shown_min'])}–{_num(x['shown_max'])} {x['unit']}")
        if x["no_value_s"]:
            s += f", no value for {_dur(x['no_value_s'])}"
        w = x.get("largest_difference")
        if w and w["difference"]:
            s += (f"; largest difference at {_mmss(w['t_s'])}: shown {w['shown']:g}, true {w['true']:g} "
                  f"({w['difference']:+g})")
        out.append(s)
    return out


def _ack(a: dict[str, Any]) -> tuple[str, str]:
    tta = "NOT ACKNOWLEDGED" if a["time_to_ack_s"] is None else f"{a['time_to_ack_s']:.0f} s"
    if a["highest"] == a["priority"]:
        at_high = tta
    elif a["time_to_ack_at_highest_s"] is None:
        at_high = "not acknowledged at " + a["highest"]
    else:
        at_high = f"{a['time_to_ack_at_highest_s']:.0f} s after it became {a['highest']}"
    return tta, at_high


def status_text(x: dict[str, Any]) -> str:
    """An expectation's status as the debrief says it: anticipated, met by an equivalent
    action, or HARMFUL (a harmful action, its points deducted)."""
    if x["status"] == "harmful":
        return "HARMFUL"
    text = x["status"].replace("_", " ")
    if x["status"] == "met" and x.get("anticipated"):
        text = "met (anticipated)"
    if x["status"] == "met" and x.get("met_by") and x["met_by"] != x["action"]:
        text += f" by {x['met_by'].replace('_', ' ')}"
    return text


def to_markdown(d: dict[str, Any]) -> str:
    h = d["header"]
    seed = f"(seed {h['seed']})" if h["seed"] is not None else ""
    lines = [f"# Debrief — {h['scenario'] or 'session'} {seed}".rstrip(), ""]
    lines += [f"- Session {h['session_id']}, patient {h['patient_id']}, protocol {h['protocol']}",
              f"- Opened {h['opened']}; staff {', '.join(h['staff'])}; entries by {', '.join(h['trainees'])}",
              f"- Times are from {h['time_zero_is']} ({h['time_zero']}); run length {_mmss(h['duration_s'])}"]
    if h.get("file"):
        lines.append(f"- File {h['file']}" + (f"; last event hash {h['last_hash']}" if h.get("last_hash") else "")
                     + (f"; {h['signing']}" if h.get("signing") else ""))
    lines.append("")
    s = d["score"]
    lines.append("## Score")
    lines.append("")
    if s is None:
        lines.append("Not a training run: no expected actions to score.")
    else:
        pct = "n/a" if s["percent"] is None else f"{s['percent']:g} %"
        lines.append(f"**{s['points']} of {s['possible']} points** ({pct}) for the expected actions whose moment came; "
                     f"{s['met']} met ({s.get('anticipated', 0)} anticipated), {s['missed']} missed, "
                     f"{s['pending']} pending, {s['not_triggered']} not triggered (the scenario's "
                     f"{s['all_points']} points in all). Expectations from {h['expectations_from']}.")
        if s.get("harmful"):
            lines.append("")
            lines.append(f"**{s['harmful']} harmful action{'s' if s['harmful'] != 1 else ''}** "
                         "(points deducted; see the expected actions).")
    lines += ["", "## Expected actions", ""]
    if d["expectations"]:
        lines += ["| action | expected | status | condition at | done at | after | points |",
                  "|---|---|---|---|---|---|---|"]
        for x in d["expectations"]:
            lat = "—" if x.get("latency_s") is None else f"{x['latency_s']:.0f} s"
            lines.append(f"| {x['action']} | {x.get('description') or x['id']} | {status_text(x)} | "
                         f"{_mmss(x.get('opened_at'))} | {_mmss(x.get('met_at'))} | {lat} | "
                         f"{x['points']}/{x['max_points']} |")
    else:
        lines.append("None.")
    lines += ["", "## Vital signs", ""]
    vl = vital_lines(d)
    lines += [f"- {x}" for x in vl] if vl else ["No vital signs recorded."]
    if h.get("limits_profile"):
        lines += ["", f"Limits from the profile {h['limits_profile']}."]
    if d.get("truth"):
        lines += ["", "## What the patient did, what the monitor showed", ""]
        lines += [f"- {x}" for x in _truth_lines(d)]
    lines += ["", "## Alarms and time to acknowledge", ""]
    if d["alarms"]:
        lines += ["| raised | alarm | priority (highest) | acknowledged | by | time to ack | at the highest priority "
                  "| cleared |", "|---|---|---|---|---|---|---|---|"]
        for a in d["alarms"]:
            tta, at_high = _ack(a)
            lines.append(f"| {_mmss(a['raised_s'])} | {a['message'] or a['rule']} ({a['class']}) | "
                         f"{a['priority']} ({a['highest']}) | {_mmss(a['acknowledged_s'])} | "
                         f"{a['acknowledged_by'] or '—'} | {tta} | {at_high} | {_mmss(a['cleared_s'])} |")
    else:
        lines.append("No alarms.")
    if d["instructor_notes"]:
        lines += ["", "## Instructor's notes", ""]
        lines += [f"- {_mmss(n['t_s'])} {n['text']}" for n in d["instructor_notes"]]
    lines += ["", "## Timeline", "", "| time | who | what |", "|---|---|---|"]
    for r in d["timeline"]:
        text = r["text"].replace("|", "\\|")
        for p in r.get("points", ()):
            text += "<br>▸ " + p.replace("|", "\\|")
        lines.append(f"| {_mmss(r['t_s'])} | {r['who']} | {text} |")
    return "\n".join(lines) + "\n"


def to_jsonl(d: dict[str, Any]) -> str:
    rows = [{"type": "header", **d["header"]}, {"type": "score", **(d["score"] or {"points": None})}]
    rows += [{"type": "expectation", **x} for x in d["expectations"]]
    rows += [{"type": "vital", **v} for v in d.get("vitals", [])]
    rows += [{"type": "truth", **x} for x in d.get("truth", [])]
    rows += [{"type": "alarm", **a} for a in d["alarms"]]
    rows += [{"type": "note", **n} for n in d["instructor_notes"]]
    rows += [{"type": "timeline", **r} for r in d["timeline"]]
    return "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)


_CSS = """
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: 10pt; color: #000; background: #fff;
       margin: 0 auto; max-width: 200mm; padding: 6mm; line-height: 1.35; }
h1 { font-size: 15pt; } h2 { font-size: 12pt; border-bottom: 1pt solid #000; margin-top: 6mm; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm 0; }
th, td { border: 0.5pt solid #888; padding: 0.8mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #e8e8e8; } td.t { white-space: nowrap; font-variant-numeric: tabular-nums; }
figure { margin: 0; } figure svg { width: 100%; height: auto; }
.points { margin: 0.5mm 0 0 0; padding-left: 5mm; font-style: italic; }
.score { font-size: 12pt; font-weight: bold; }
@media print { body { max-width: none; padding: 0; } tr { break-inside: avoid; } }
"""


def _e(v: Any) -> str:
    return escape("" if v is None else str(v), quote=True)


def to_html(d: dict[str, Any], chart_svg: str | None = None) -> str:
    """One self-contained page (inline CSS and SVG, no script) for the debrief room."""
    h = d["header"]
    svg = chart_svg if chart_svg is not None else d.get("chart_svg", "")
    w: list[str] = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                    f"<title>Debrief — {_e(h['scenario'] or 'session')}</title><style>{_CSS}</style></head><body>"]
    seed = f" (seed {_e(h['seed'])})" if h["seed"] is not None else ""
    w.append(f"<h1>Debrief — {_e(h['scenario'] or 'session')}{seed}</h1>")
    w.append(f"<p>Session {_e(h['session_id'])}, patient {_e(h['patient_id'])}, protocol {_e(h['protocol'])}; "
             f"entries by {_e(', '.join(h['trainees']))}. Times (m:ss) are from {_e(h['time_zero_is'])}; run length "
             f"{_e(_mmss(h['duration_s']))}.</p>")
    if h.get("file"):
        w.append(f"<p class=\"file\">File {_e(h['file'])}"
                 + (f"; last event hash {_e(h['last_hash'])}" if h.get("last_hash") else "")
                 + (f"; {_e(h['signing'])}" if h.get("signing") else "") + ".</p>")
    s = d["score"]
    if s is None:
        w.append("<p>Not a training run: no expected actions to score.</p>")
    else:
        pct = "n/a" if s["percent"] is None else f"{s['percent']:g} %"
        w.append(f'<p class="score">{s["points"]} of {s["possible"]} points ({_e(pct)})</p>'
                 f"<p>{s['met']} met ({s.get('anticipated', 0)} anticipated), {s['missed']} missed, {s['pending']} "
                 f"pending, {s['not_triggered']} not triggered"
                 + (f"; <strong>{s['harmful']} harmful action(s)</strong>, points deducted" if s.get("harmful") else "")
                 + ".</p>")
    w.append("<h2>Vital signs</h2>")
    if svg:
        w.append(f"<figure>{svg}<figcaption>Displayed readings"
                 + (" and, dashed grey, the patient's true physiology" if d.get("truth") else "")
                 + f"; limits from {_e(h.get('limits_profile') or 'no profile')}; A# alarms, I# interventions."
                 + "</figcaption></figure>")
    w.append("<ul>" + "".join(f"<li>{_e(x)}</li>" for x in vital_lines(d)) + "</ul>")
    if d.get("truth"):
        w.append("<h2>What the patient did, what the monitor showed</h2><ul>"
                 + "".join(f"<li>{_e(x)}</li>" for x in _truth_lines(d)) + "</ul>")
    w.append("<h2>Expected actions</h2>")
    if d["expectations"]:
        w.append("<table><tr><th>action</th><th>expected</th><th>status</th><th>condition at</th><th>done at</th>"
                 "<th>points</th></tr>")
        for x in d["expectations"]:
            w.append(f"<tr><td>{_e(x['action'])}</td><td>{_e(x.get('description') or x['id'])}</td>"
                     f"<td>{_e(status_text(x))}</td><td class='t'>{_e(_mmss(x.get('opened_at')))}</td>"
                     f"<td class='t'>{_e(_mmss(x.get('met_at')))}</td><td>{x['points']}/{x['max_points']}</td></tr>")
        w.append("</table>")
    else:
        w.append("<p>None.</p>")
    w.append("<h2>Alarms and time to acknowledge</h2>")
    if d["alarms"]:
        w.append("<table><tr><th>raised</th><th>alarm</th><th>priority (highest)</th><th>acknowledged</th><th>by</th>"
                 "<th>time to ack</th><th>at the highest priority</th><th>cleared</th></tr>")
        for a in d["alarms"]:
            tta, at_high = _ack(a)
            w.append(f"<tr><td class='t'>{_e(_mmss(a['raised_s']))}</td><td>{_e(a['message'] or a['rule'])}</td>"
                     f"<td>{_e(a['priority'])} ({_e(a['highest'])})</td><td class='t'>{_e(_mmss(a['acknowledged_s']))}</td>"
                     f"<td>{_e(a['acknowledged_by'] or '—')}</td><td>{_e(tta)}</td><td>{_e(at_high)}</td>"
                     f"<td class='t'>{_e(_mmss(a['cleared_s']))}</td></tr>")
        w.append("</table>")
    else:
        w.append("<p>No alarms.</p>")
    if d["instructor_notes"]:
        w.append("<h2>Instructor's notes</h2><ul>" + "".join(
            f"<li>{_e(_mmss(n['t_s']))} {_e(n['text'])}</li>" for n in d["instructor_notes"]) + "</ul>")
    w.append("<h2>Timeline</h2><table id='timeline'><tr><th>time</th><th>who</th><th>what</th></tr>")
    for r in d["timeline"]:
        pts = "".join(f"<li>{_e(p)}</li>" for p in r.get("points", ()))
        w.append(f"<tr><td class='t'>{_e(_mmss(r['t_s']))}</td><td>{_e(r['who'])}</td><td>{_e(r['text'])}"
                 + (f"<ul class='points'>{pts}</ul>" if pts else "") + "</td></tr>")
    w.append("</table></body></html>")
    return "\n".join(w)


def render(d: dict[str, Any], fmt: str) -> str:
    if fmt == "md":
        return to_markdown(d)
    if fmt == "jsonl":
        return to_jsonl(d)
    if fmt == "html":
        return to_html(d)
    raise ValueError(f"unknown debrief format {fmt!r}; choose one of: {', '.join(FORMATS)}")
