"""The printable session report: one self-contained HTML file (inline CSS and SVG, no JS).

Owns: ``render(events, template=None, *, last_hash=None, source_name=None) -> str`` (pure)
and ``export(path, out) -> Path`` for ``chairside export FILE --format html``.
Must not import: textual, serial, chairside.transport, chairside.service, chairside.ui.

Layout: header (patient pseudonym, weight and its source, protocol, staff), checklist and
baseline, trend chart, blood-pressure table, infusion record, REMS form fields (esketamine),
observations, interventions, alarms, notes, discharge, and the full event log (one row per
event, ``data-seq`` on each row). Amendments are shown beside what they correct; the
original is never hidden. The hash of the last event is printed on every page so a printout
can be matched to its file. Every piece of text from the record is HTML-escaped.
Prints on A4 and Letter (``@page { size: auto }``, content sized to the narrower page).
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from chairside.domain.events import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmEscalated,
    AlarmRaised,
    AlarmSilenced,
    Amendment,
    BaselineRecorded,
    ChecklistCompleted,
    DischargeAssessed,
    InterventionGiven,
    NoteAdded,
    ObservationRecorded,
    SessionClosed,
)
from chairside.domain.describe import describe, marker, param_label
from chairside.domain.protocol import ProtocolTemplate
from chairside.reports import rems as report_rems
from chairside.store.private import write_private_text
from chairside.store.session_file import read_session
from chairside.reports.common import (
    all_readings,
    bp_readings,
    fmt_num,
    fmt_time,
    infusion_record,
    last_time,
    load_limits,
    load_template,
    minutes_between,
    opened,
    phase_at,
    phase_spans,
    scale_label,
    scale_range,
    session_end,
    vital_series,
)
from chairside.reports.html_parts import (
    CSS,
    Ctx,
    _css_str,
    _e,
    _limits_table,
    _of_max,
    _rems_section,
    _vitals_summary,
    _yn,
)
from chairside.reports.svg import _PHASE_LABEL, Mark, render_chart


def _tpl_name(template: ProtocolTemplate | None, fallback: str) -> str:
    return template.title if template is not None else fallback


def render(events: Sequence[Any], template: ProtocolTemplate | None = None, *, last_hash: str | None = None,
           source_name: str | None = None, signing: str | None = None) -> str:
    """The whole report as one HTML string (pure function of the events and the template)."""
    ctx = Ctx(events)
    evs = ctx.events
    op_raw = next(((s, e) for s, e in ctx.numbered if e.kind == "session_opened"), None)
    op = opened(ctx.state)
    if template is None and op is not None:
        template = load_template(op.protocol)
    profile = template.limits_profile if template is not None else None
    limits, limits_file = load_limits(profile)
    t0 = evs[0].t if evs else None
    t_end = session_end(evs)
    t_last = last_time(evs)
    spans = phase_spans(evs)
    esk = report_rems.is_esketamine(evs, template, ctx.state)
    h: list[str] = []
    w = h.append

    title = "Session record"
    pid = op.patient_id if op else "—"
    w("<!DOCTYPE html>")
    w('<html lang="en"><head><meta charset="utf-8">')
    w('<meta name="viewport" content="width=device-width, initial-scale=1">')
    w(f"<title>{_e(title)} — {_e(pid)} — {_e(t0.date().isoformat() if t0 else '')}</title>")
    footer = (f"Chairside session record · patient {pid} · session {op.session_id if op else '—'} · "
              f"last event hash {last_hash or 'not available'}"
              + (f" · {signing}" if signing else ""))
    page_css = ("@page { @bottom-left { content: " + _css_str(footer) + "; font-size: 6.5pt; "
                "font-family: 'DejaVu Sans Mono', monospace; vertical-align: top; padding-top: 2mm; } "
                "@bottom-right { content: 'page ' counter(page) ' of ' counter(pages); font-size: 7pt; "
                "vertical-align: top; padding-top: 2mm; } }")
    w(f"<style>{CSS}\n{page_css}</style></head><body>")

    # ---------------------------------------------------------------- header
    w(f"<header><h1>Chairside session record{' — esketamine' if esk else ''}</h1>")
    if op and (op.simulated or op.training):
        what = "TRAINING / SIMULATED SESSION — NOT A PATIENT RECORD" if op.training else "SIMULATED SESSION — NOT A PATIENT RECORD"
        w(f'<div class="banner">{what}</div>')
    w('<div class="kv">')
    if op_raw:
        s, raw = op_raw
        w(f'<span class="k">Patient (pseudonym)</span><span>{ctx.val(s, raw, "patient_id")}</span>')
        w(f'<span class="k">Session</span><span>{_e(raw.session_id)}</span>')
        w(f'<span class="k">Weight</span><span>{ctx.val(s, raw, "weight_kg", lambda v: _e(fmt_num(v)) + " kg")} '
          f'({ctx.val(s, raw, "weight_source")}'
          + (f", confirmed by {ctx.val(s, raw, 'weight_confirmed_by')}" if raw.weight_confirmed_by or ctx.amended(s, "weight_confirmed_by") else ", <b>not second-checked</b>")
          + ")</span>")
        w(f'<span class="k">Protocol</span><span>{_e(_tpl_name(template, raw.protocol))} '
          f'<span class="muted small">({ctx.val(s, raw, "protocol")})</span></span>')
        w(f'<span class="k">Staff</span><span>{ctx.val(s, raw, "staff", lambda v: _e(", ".join(v or ())) or "—")}</span>')
        w(f'<span class="k">Date (UTC)</span><span>{_e(t0.strftime("%Y-%m-%d") if t0 else "—")}, '
          f'{fmt_time(t0)}–{fmt_time(t_end)}</span>')
        extra = []
        if raw.app_version:
            extra.append(f"Chairside {raw.app_version}")
        if raw.scenario:
            extra.append(f"scenario {raw.scenario}")
        if raw.sim_seed is not None:
            extra.append(f"seed {raw.sim_seed}")
        w(f'<span class="k">Recorded with</span><span>{_e(", ".join(extra) or "—")}</span>')
        w(f'<span class="k">Source file</span><span>{_e(source_name or "—")}</span>')
    else:
        w('<span class="k">Session</span><span><b>no session_opened event in this file</b></span>')
    w("</div>")
    w(f'<p class="small">Last event hash (match a printout to its file with <code>chairside verify</code>): '
      f'<span class="hash">{_e(last_hash or "not available")}</span> · {len(evs)} events · times in UTC'
      + (f' · <span class="signing">{_e(signing)}</span>' if signing else "") + '</p>')
    if op_raw:
        n = ctx.note(op_raw[0], ('patient_id', 'weight_kg', 'weight_source', 'weight_confirmed_by', 'protocol', 'staff'))
        if n:
            w(f"<p>{n}</p>")
    w("</header>")

    # ---------------------------------------------------------------- chart
    alarms_raised = [(s, e) for s, e in ctx.numbered if isinstance(e, AlarmRaised)]
    alarm_label = {e.alarm_id: f"A{i + 1}" for i, (s, e) in enumerate(alarms_raised)}
    interventions = [(s, e) for s, e in ctx.numbered if isinstance(e, InterventionGiven)]
    iv_label = {s: f"I{i + 1}" for i, (s, e) in enumerate(interventions)}
    readings = all_readings(evs)
    series = vital_series(evs, readings) if t0 is not None else {}
    w("<section><h2>Trend</h2>")
    if t0 is not None:
        marks = [Mark(e.t, alarm_label[e.alarm_id], "alarm", e.param, e.priority) for s, e in alarms_raised]
        marks += [Mark(e.t, iv_label[s], "intervention") for s, e in interventions]
        chart = render_chart(t0=t0, t1=max(x for x in (t_end, t_last, t0) if x is not None), series=series,
                             phases=spans, limits=limits, marks=marks, limits_source=limits_file)
        lim_note = (f"Medium (**) and high (***) limits from the limits profile <b>{_e(limits_file)}</b>, drawn over "
                    f"the phases they apply to, source tags beside each line."
                    if limits_file else f"No limits profile file was found ({_e(profile or 'standard')}): no limits drawn.")
        w(f'<figure class="chart">{chart}<figcaption>Whole session. Phases shaded (pre-dose plain, dosing hatched, '
          f"recovery dotted). {lim_note} Alarms (A#) and interventions (I#) refer to the tables below. "
          f"NIBP values are drawn as markers (SBP ▼, DBP ▲, MAP ○); missing values are gaps, never zero.</figcaption></figure>")
        if limits:
            w(_limits_table(limits, limits_file))
    w("</section>")

    # ---------------------------------------------------------------- checklist & baseline
    w("<section><h2>Checklist and baseline</h2>")
    cls = [(s, e) for s, e in ctx.numbered if isinstance(e, ChecklistCompleted)]
    if not cls:
        w('<p class="muted">No checklist recorded.</p>')
    for s, e in cls:
        w(f"<p>#{s} at {fmt_time(e.t)} by {_e(e.author)}: consent {ctx.val(s, e, 'consent', lambda v: _yn(v))}, "
          f"escort confirmed {ctx.val(s, e, 'escort_confirmed', lambda v: _yn(v))}, fasted "
          f"{ctx.val(s, e, 'hours_fasted', lambda v: _e(fmt_num(v)) + ' h')}</p>")
        if e.contraindications:
            w('<table><thead><tr><th>Contraindication / check</th><th>Present</th></tr></thead><tbody>')
            for name, present in e.contraindications.items():
                w(f"<tr><td>{_e(name.replace('_', ' '))}</td><td>{_yn(present)}</td></tr>")
            w("</tbody></table>")
        if e.notes:
            w(f"<p>Notes: {ctx.val(s, e, 'notes')}</p>")
        if ctx.note(s, ('consent', 'escort_confirmed', 'hours_fasted', 'notes')):
            w(f"<p>{ctx.note(s, ('consent', 'escort_confirmed', 'hours_fasted', 'notes'))}</p>")
    bls = [(s, e) for s, e in ctx.numbered if isinstance(e, BaselineRecorded)]
    if bls:
        w('<table><thead><tr><th>#</th><th>Time</th><th>By</th><th class="num">SBP</th><th class="num">DBP</th>'
          '<th class="num">MAP</th><th class="num">HR</th><th class="num">SpO₂</th><th class="num">MOAA/S</th>'
          '<th class="num">CADSS</th><th>Amendments</th></tr></thead><tbody>')
        for s, e in bls:
            f = lambda v: _e(fmt_num(v))  # noqa: E731
            w(f"<tr><td>{s}</td><td class='t'>{fmt_time(e.t, True)}</td><td>{_e(e.author)}</td>"
              + "".join(f'<td class="num">{ctx.val(s, e, k, f)}</td>' for k in ("sbp", "dbp", "map", "hr", "spo2", "moaas", "cadss"))
              + f"<td>{ctx.note(s, ('sbp', 'dbp', 'map', 'hr', 'spo2', 'moaas', 'cadss'))}</td></tr>")
        w("</tbody></table>")
    else:
        w('<p class="muted">No baseline recorded.</p>')
    w("</section>")

    # ---------------------------------------------------------------- BP table
    bps = bp_readings(evs, readings)

    valid = {k: [p for p in v if p.value is not None] for k, v in series.items()}
    times = {k: [p.t for p in v] for k, v in valid.items()}

    def near(param: str, t: datetime) -> str:
        """The valid value of ``param`` nearest ``t``, within 30 s."""
        pts, ts = valid.get(param, []), times.get(param, [])
        i = bisect_left(ts, t)
        cands = [p for p in pts[max(0, i - 1):i + 1] if abs((p.t - t).total_seconds()) <= 30]
        if not cands:
            return "—"
        p = min(cands, key=lambda p: abs((p.t - t).total_seconds()))
        return _e(fmt_num(p.value))

    w("<section><h2>Blood pressure readings</h2>")
    if bps:
        w('<table><thead><tr><th>Time</th><th class="num">+min</th><th>Phase</th><th class="num">SBP/DBP (MAP)</th>'
          '<th class="num">HR</th><th class="num">PR</th><th class="num">SpO₂</th><th>Source</th><th>Event #</th></tr></thead><tbody>')
        for b in bps:
            w(f"<tr><td>{fmt_time(b.t, True)}</td><td class='num'>{_e(fmt_num(minutes_between(t0, b.t)))}</td>"
              f"<td>{_e(_PHASE_LABEL.get(phase_at(spans, b.t) or '', phase_at(spans, b.t) or ''))}</td>"
              f"<td class='num'>{_e(fmt_num(b.sys))}/{_e(fmt_num(b.dia))} ({_e(fmt_num(b.map))})</td>"
              f"<td class='num'>{near('hr', b.t)}</td><td class='num'>{near('pr', b.t)}</td><td class='num'>{near('spo2', b.t)}</td>"
              f"<td>{_e(b.origin)}</td><td>{b.seq}</td></tr>")
        w("</tbody></table>")
    else:
        w('<p class="muted">No blood pressure readings.</p>')
    w("</section>")

    w(_vitals_summary(series, spans))

    # ---------------------------------------------------------------- infusion
    rec = infusion_record(evs, ctx.state)
    w("<section><h2>Dosing record</h2>" if esk else "<section><h2>Infusion record</h2>")
    starts = [(s, e) for s, e in ctx.numbered if e.kind == "infusion_started"]
    esk_doses = [(s, e) for s, e in interventions if report_rems._is_esk_drug(e.drug)]
    if esk_doses:
        w('<table><thead><tr><th>Device</th><th>#</th><th>Time</th><th class="num">+min from first</th><th>Drug</th>'
          '<th class="num">Dose</th><th>Route</th><th>Lot</th><th>Given by</th></tr></thead><tbody>')
        for k, (s, e) in enumerate(esk_doses):
            w(f"<tr><td>{k + 1}</td><td>{s}</td><td class='t'>{fmt_time(e.t, True)}</td>"
              f"<td class='num'>{_e(fmt_num(minutes_between(esk_doses[0][1].t, e.t)))}</td><td>{ctx.val(s, e, 'drug')}</td>"
              f"<td class='num'>{ctx.val(s, e, 'dose', lambda v: _e(fmt_num(v, 2)))} {_e(e.dose_unit)}</td>"
              f"<td>{ctx.val(s, e, 'route')}</td><td>{ctx.val(s, e, 'lot')}</td>"
              f"<td>{ctx.val(s, e, 'given_by', lambda v: _e(v or e.author))} {ctx.note(s, ('drug', 'dose', 'route', 'lot', 'given_by'))}</td></tr>")
        w("</tbody></table>")
        mg = sum(ctx.eff(s, e).dose or 0 for s, e in esk_doses if ctx.eff(s, e).dose_unit.lower() == "mg")
        w(f"<p><b>Total:</b> {_e(fmt_num(mg, 2))} mg"
          + (f", {_e(fmt_num(mg / op.weight_kg, 3))} mg/kg (weight {_e(fmt_num(op.weight_kg))} kg)" if op and op.weight_kg else "")
          + f" in {len(esk_doses)} administration(s).</p>")
    if not starts and not rec.segments and not esk_doses:
        w('<p class="muted">No infusion recorded.</p>')
    for s, e in starts:
        w('<div class="kv">')
        w(f'<span class="k">Drug</span><span>{ctx.val(s, e, "drug")} ({ctx.val(s, e, "route")})</span>')
        w(f'<span class="k">Lot</span><span>{ctx.val(s, e, "lot", lambda v: _e(v) or "<b>not recorded</b>")}</span>')
        w(f'<span class="k">Concentration</span><span>{ctx.val(s, e, "concentration_mg_ml", lambda v: _e(fmt_num(v, 3)) + " mg/mL")}</span>')
        w(f'<span class="k">Diluent / bag</span><span>{ctx.val(s, e, "diluent", lambda v: _e(v) or "—")} / '
          f'{ctx.val(s, e, "bag_volume_ml", lambda v: (_e(fmt_num(v)) + " mL") if v else "—")}</span>')
        w(f'<span class="k">Target dose</span><span>{ctx.val(s, e, "dose_mg_kg", lambda v: (_e(fmt_num(v, 3)) + " mg/kg") if v is not None else "—")}'
          f' over {ctx.val(s, e, "duration_min", lambda v: (_e(fmt_num(v)) + " min") if v is not None else "—")}</span>')
        w(f'<span class="k">Started</span><span>{fmt_time(e.t, True)} by {_e(e.author)}'
          f'{", confirmed by " + ctx.val(s, e, "confirmed_by") if e.confirmed_by else ""}</span>')
        if e.gate_override_reason:
            w(f'<span class="k">Gate override</span><span class="flag">{ctx.val(s, e, "gate_override_reason")}</span>')
        if e.above_usual_reason:
            w(f'<span class="k">Above usual dose</span><span class="flag">{ctx.val(s, e, "above_usual_reason")}</span>')
        w("</div>")
        if ctx.note(s, ('drug', 'route', 'lot', 'concentration_mg_ml', 'diluent', 'bag_volume_ml', 'dose_mg_kg', 'duration_min', 'confirmed_by', 'gate_override_reason', 'above_usual_reason')):
            w(f"<p>{ctx.note(s, ('drug', 'route', 'lot', 'concentration_mg_ml', 'diluent', 'bag_volume_ml', 'dose_mg_kg', 'duration_min', 'confirmed_by', 'gate_override_reason', 'above_usual_reason'))}</p>")
    if rec.segments:
        w('<table><thead><tr><th>#</th><th>From</th><th>To</th><th class="num">min</th><th class="num">mg/kg/h</th>'
          '<th class="num">mg/h</th><th class="num">mL/h</th><th class="num">mL</th><th class="num">mg</th><th>Began with</th><th>Reason</th></tr></thead><tbody>')
        for seg in rec.segments:
            mgh = seg.rate_mg_kg_h * rec.weight_kg if rec.weight_kg else None
            raw = ctx.by_seq.get(seg.seq)
            w(f"<tr><td>{seg.seq}</td><td>{fmt_time(seg.start, True)}</td><td>{fmt_time(seg.end, True)}</td>"
              f"<td class='num'>{_e(fmt_num(seg.hours * 60))}</td>"
              f"<td class='num'>{ctx.val(seg.seq, raw, 'rate_mg_kg_h', lambda v: _e(fmt_num(v, 3)))}</td>"
              f"<td class='num'>{_e(fmt_num(mgh, 2))}</td>"
              f"<td class='num'>{ctx.val(seg.seq, raw, 'rate_ml_h', lambda v: _e(fmt_num(v, 1)))}</td>"
              f"<td class='num'>{_e(fmt_num(seg.ml(), 1))}</td><td class='num'>{_e(fmt_num(seg.mg(rec.weight_kg), 2))}</td>"
              f"<td>{_e(seg.kind.replace('infusion_', '').replace('_', ' '))}</td><td>{_e(seg.reason)} {ctx.note(seg.seq, ('rate_mg_kg_h', 'rate_ml_h'))}</td></tr>")
        w("</tbody></table>")
    if rec.pauses:
        w('<h3>Pauses</h3><table><thead><tr><th>#</th><th>Paused</th><th>Resumed / stopped</th><th class="num">min</th>'
          '<th>Reason</th></tr></thead><tbody>')
        for a, b, reason, s in rec.pauses:
            w(f"<tr><td>{s}</td><td>{fmt_time(a, True)}</td><td>{fmt_time(b, True)}</td>"
              f"<td class='num'>{_e(fmt_num(minutes_between(a, b)))}</td><td>{_e(reason)} {ctx.note(s)}</td></tr>")
        w("</tbody></table>")
    if rec.segments:
        w(f"<p><b>Totals:</b> {_e(fmt_num(rec.total_mg, 2))} mg, "
          f"{_e(fmt_num(rec.total_mg_kg, 3))} mg/kg (weight {_e(fmt_num(rec.weight_kg))} kg), "
          f"{_e(fmt_num(rec.total_ml, 1))} mL, running {_e(fmt_num(rec.running_minutes))} min"
          + (f"; stopped {fmt_time(rec.stop.t, True)} ({_e(rec.stop.reason)})" if rec.stop else "; <b>no stop recorded</b>")
          + '. <span class="small muted">mg = pump volume × bag concentration (mg/kg/h × weight × time when no concentration).</span></p>')
    w("</section>")

    # ---------------------------------------------------------------- REMS
    if esk:
        w(_rems_section(report_rems.fields(evs, template)))

    # ---------------------------------------------------------------- observations
    obs = [(s, e) for s, e in ctx.numbered if isinstance(e, ObservationRecorded)]
    w("<section><h2>Observations</h2>")
    if obs:
        w('<table><thead><tr><th>#</th><th>Time</th><th class="num">+min</th><th>Scale</th><th class="num">Score</th>'
          '<th>Range</th><th>Items / text</th><th>By</th></tr></thead><tbody>')
        for s, e in obs:
            items = ", ".join(f"{k}: {v}" for k, v in e.items.items())
            w(f"<tr><td>{s}</td><td class='t'>{fmt_time(e.t, True)}</td><td class='num'>{_e(fmt_num(minutes_between(t0, e.t)))}</td>"
              f"<td>{ctx.val(s, e, 'scale', lambda v: _e(scale_label(v)))}</td>"
              f"<td class='num'>{ctx.val(s, e, 'score', lambda v: _e(fmt_num(v)))}</td>"
              f"<td>{_e(scale_range(e.scale))}</td>"
              f"<td>{_e(items)}{' — ' if items and e.text else ''}{ctx.val(s, e, 'text') if e.text else ''}</td>"
              f"<td>{_e(e.author)}{ctx.note(s, ('scale', 'score', 'text'))}</td></tr>")
        w("</tbody></table>")
    else:
        w('<p class="muted">No observations recorded.</p>')
    w("</section>")

    # ---------------------------------------------------------------- interventions
    w("<section><h2>Interventions</h2>")
    if interventions:
        w('<table><thead><tr><th>Mark</th><th>#</th><th>Time</th><th>Drug / action</th><th class="num">Dose</th><th>Route</th>'
          '<th>Lot</th><th>Given / ordered by</th><th>Reason</th><th>Response</th></tr></thead><tbody>')
        for s, e in interventions:
            w(f"<tr><td><b>{iv_label[s]}</b></td><td>{s}</td><td class='t'>{fmt_time(e.t, True)}</td><td>{ctx.val(s, e, 'drug')}</td>"
              f"<td class='num'>{ctx.val(s, e, 'dose', lambda v: _e(fmt_num(v, 2)))} {_e(e.dose_unit)}</td>"
              f"<td>{ctx.val(s, e, 'route')}</td><td>{ctx.val(s, e, 'lot')}</td>"
              f"<td>{ctx.val(s, e, 'given_by', lambda v: _e(v or e.author))} / {ctx.val(s, e, 'ordered_by', lambda v: _e(v or '—'))}</td>"
              f"<td>{ctx.val(s, e, 'reason')}</td><td>{ctx.val(s, e, 'response')} {ctx.note(s, ('drug', 'dose', 'route', 'lot', 'given_by', 'ordered_by', 'reason', 'response'))}</td></tr>")
        w("</tbody></table>")
    else:
        w('<p class="muted">No interventions recorded.</p>')
    w("</section>")

    # ---------------------------------------------------------------- alarms
    w("<section><h2>Alarms</h2>")
    if alarms_raised:
        w('<table><thead><tr><th>Mark</th><th>Raised</th><th>Priority</th><th>Condition</th>'
          '<th>Rule / message</th><th>Response (escalation, acknowledgement, silencing, clearing)</th></tr></thead><tbody>')
        for s, e in alarms_raised:
            related = [x for _, x in ctx.numbered if getattr(x, "alarm_id", None) == e.alarm_id and x is not e]
            lines = []
            for x in related:
                if isinstance(x, AlarmEscalated):
                    lines.append(f"{fmt_time(x.t, True)} escalated {_e(x.from_priority)}→{_e(x.to_priority)}"
                                 + (" (re-announced)" if x.reannounce else "") + (f": {_e(x.reason)}" if x.reason else ""))
                elif isinstance(x, AlarmAcknowledged):
                    lines.append(f"{fmt_time(x.t, True)} <b>acknowledged by {_e(x.by or x.author)}</b> "
                                 f"(+{_e(fmt_num(minutes_between(e.t, x.t), 1))} min)")
                elif isinstance(x, AlarmSilenced):
                    lines.append(f"{fmt_time(x.t, True)} {_e(x.mode.replace('_', ' '))}"
                                 + (f" {_e(fmt_num(x.duration_s))} s" if x.duration_s else "") + f" by {_e(x.by or x.author)}")
                elif isinstance(x, AlarmCleared):
                    lines.append(f"{fmt_time(x.t, True)} cleared" + (f" ({_e(fmt_num(x.value))})" if x.value is not None else "")
                                 + (f": {_e(x.reason)}" if x.reason else ""))
            if not any(isinstance(x, AlarmAcknowledged) for x in related):
                lines.append("<b>not acknowledged</b>")
            cond = f"{_e(param_label(e.param))} {_e(fmt_num(e.value))}" if e.param else ""
            if e.limit is not None:
                cond += f" (limit {_e(fmt_num(e.limit))} {_e(e.source_tag)})"
            w(f"<tr><td><b>{alarm_label[e.alarm_id]}</b></td><td class='t'>{fmt_time(e.t, True)}</td>"
              f"<td class='pri-{_e(e.priority)}'>{_e(marker(e.priority))} {_e(e.priority)}"
              f"{' latching' if e.latching else ''}<br><span class='small'>{_e(e.alarm_class)}</span></td>"
              f"<td>{cond}</td><td>{_e(e.rule)}{'<br>' if e.rule and e.message else ''}{_e(e.message)}</td>"
              f"<td>{'<br>'.join(lines)}</td></tr>")
        w("</tbody></table>")
    else:
        w('<p class="muted">No alarms raised.</p>')
    w("</section>")

    # ---------------------------------------------------------------- notes
    notes = [(s, e) for s, e in ctx.numbered if isinstance(e, NoteAdded)]
    w("<section><h2>Notes</h2>")
    if notes:
        w('<table><thead><tr><th>#</th><th>Time</th><th>By</th><th>Note</th></tr></thead><tbody>')
        for s, e in notes:
            w(f"<tr><td>{s}</td><td class='t'>{fmt_time(e.t, True)}</td><td>{_e(e.author)}</td><td>{ctx.val(s, e, 'text')} {ctx.note(s, ('text',))}</td></tr>")
        w("</tbody></table>")
    else:
        w('<p class="muted">No notes.</p>')
    w("</section>")

    # ---------------------------------------------------------------- amendments
    amends = [(s, e) for s, e in ctx.numbered if isinstance(e, Amendment)]
    if amends:
        w("<section><h2>Amendments</h2><p class='small'>Each correction is a new event; the original stays "
          "in the record and is printed unchanged beside the correction.</p>")
        w('<table><thead><tr><th>#</th><th>Time</th><th>By</th><th>Corrects</th><th>Original</th><th>Correction</th>'
          '<th>Reason</th></tr></thead><tbody>')
        for s, a in amends:
            orig = ctx.by_seq.get(a.target_seq)
            old = ", ".join(f"{k}: {getattr(orig, k, '?')}" for k in a.replacement) if orig is not None else "event not found"
            w(f"<tr><td>{s}</td><td>{fmt_time(a.t, True)}</td><td>{_e(a.author)}</td>"
              f"<td>#{a.target_seq} {_e(orig.kind if orig is not None else '?')}</td><td>{_e(old)}</td>"
              f"<td>{_e(', '.join(f'{k}: {v}' for k, v in a.replacement.items()))}</td><td>{_e(a.reason)}</td></tr>")
        w("</tbody></table></section>")

    # ---------------------------------------------------------------- discharge
    w("<section><h2>Discharge</h2>")
    dis = [(s, e) for s, e in ctx.numbered if isinstance(e, DischargeAssessed)]
    if dis:
        # 12 columns: smaller type and short headers, so the table fits the A4/Letter text width
        w('<table class="dense"><thead><tr><th>#</th><th>Time</th><th>By</th><th>Aldrete</th><th>PADSS</th>'
          '<th>Vitals ±20%</th><th class="num">min since end</th><th>Min. recov.</th><th>Escort</th>'
          '<th>Instruc&shy;tions</th><th>Criteria</th><th>Dis&shy;charged</th></tr></thead><tbody>')
        for s, e in dis:
            ald = ", ".join(f"{k} {v}" for k, v in e.aldrete.items())
            pad = ", ".join(f"{k} {v}" for k, v in e.padss.items())
            crit = "met" if e.criteria_met else "<b>not met</b>"
            if e.blocked_reasons:
                crit += ": " + _e("; ".join(e.blocked_reasons))
            if e.override_reason:
                crit += f"; <b>override</b>: {ctx.val(s, e, 'override_reason')}"
            w(f"<tr><td>{s}</td><td class='t'>{fmt_time(e.t, True)}</td><td>{_e(e.author)}</td>"
              f"<td><b>{ctx.val(s, e, 'aldrete_total', lambda v: _e(fmt_num(v)))}</b>{_e(_of_max('aldrete'))}<br><span class='small'>{_e(ald)}</span></td>"
              f"<td><b>{ctx.val(s, e, 'padss_total', lambda v: _e(fmt_num(v)))}</b>{_e(_of_max('padss'))}<br><span class='small'>{_e(pad)}</span></td>"
              f"<td>{_yn(e.vitals_within_20pct)}</td><td class='num'>{_e(fmt_num(e.minutes_since_end))}</td>"
              f"<td>{_yn(e.min_recovery_met)}</td><td>{ctx.val(s, e, 'escort_present', _yn)}</td>"
              f"<td>{_yn(e.instructions_given)}</td><td>{crit}</td><td>{ctx.val(s, e, 'discharged', _yn)} {ctx.note(s, ('aldrete_total', 'padss_total', 'escort_present', 'discharged', 'override_reason'))}</td></tr>")
        w("</tbody></table>")
        done = [e for _, e in dis if e.discharged]
        if done:
            w(f"<p><b>Discharged at {fmt_time(done[0].t, True)} UTC</b> by {_e(done[0].author)}"
              f" ({_e(fmt_num(minutes_between(t0, done[0].t)))} min after the session opened).</p>")
        else:
            w("<p><b>No discharge recorded.</b></p>")
    else:
        w('<p class="muted">No discharge assessment recorded.</p>')
    closed = [e for _, e in ctx.numbered if isinstance(e, SessionClosed)]
    if closed:
        w(f"<p>Session closed at {fmt_time(closed[-1].t, True)} UTC" + (f": {_e(closed[-1].reason)}" if closed[-1].reason else "") + ".</p>")
    # a filed printout is signed by hand: printed name, date and time, and what the signature means
    w('<table class="sign" id="signatures"><thead><tr><th>Signature</th><th>Printed name</th><th>Role</th>'
      '<th>Date and time</th><th>Meaning (e.g. reviewed, administered, discharged)</th></tr></thead><tbody>'
      + '<tr><td>&nbsp;</td><td></td><td></td><td></td><td></td></tr>' * 2 + "</tbody></table>")
    w("</section>")

    # ---------------------------------------------------------------- full event log
    batches = [e for _, e in ctx.numbered if e.kind == "readings_recorded"]
    n_readings = sum(len(e.readings) for e in batches)
    w('<section class="pagebreak"><h2>Event log</h2>')
    w(f'<p class="small">Every event of the file but the readings, in order ({len(evs) - len(batches)} of '
      f"{len(evs)} events). The {n_readings} readings of the {len(batches)} reading batches are in the chart, "
      f"the blood-pressure table and the vital-sign summary above; every value is in "
      f"<code>chairside export FILE --format csv</code>. Amended events are marked; the amendment follows as its "
      f"own event.</p>")
    w('<table class="eventlog"><thead><tr><th>#</th><th>Time (UTC)</th><th class="num">+min</th><th>By</th>'
      '<th>Event</th><th>Details</th></tr></thead><tbody id="eventlog">')
    for s, e in ctx.numbered:
        if e.kind == "readings_recorded":
            continue
        extra = ""
        if ctx.amended(s):
            extra = " " + " ".join(f'<span class="amend">by #{a.seq if a.seq >= 0 else "?"}</span>' for a in ctx.amended(s))
        w(f'<tr class="{_e(e.kind)}" data-seq="{s}" data-kind="{_e(e.kind)}" id="ev-{s}"><td class="seq">{s}</td>'
          f"<td>{_e(e.t.strftime('%H:%M:%S'))}</td><td class='num'>{_e(fmt_num(minutes_between(t0, e.t), 1))}</td>"
          f"<td>{_e(e.author)}</td><td>{_e(e.kind.replace('_', ' '))}</td><td>{_e(describe(e, full=True))}{extra}</td></tr>")
    w("</tbody></table></section>")

    w(f'<div class="endnote small">End of record. {len(evs)} events; last event hash '
      f'<span class="hash">{_e(last_hash or "not available")}</span>'
      + (f'; {_e(signing)}' if signing else "") + '. Generated by Chairside from '
      f"{_e(source_name or 'the session events')}. Chairside is a documentation and decision-support console, "
      f"not a diagnostic device.</div>")
    w("</body></html>")
    return "\n".join(h)

def export(path: Path, out: Path | None = None) -> Path:
    """Write the HTML report of a session file; default ``<file>.html`` beside it."""
    path = Path(path)
    loaded = read_session(path)
    signing = loaded.verified.signing_text() if loaded.verified is not None else None
    html = render(loaded.events, last_hash=loaded.last_hash, source_name=path.name, signing=signing)
    out = Path(out) if out else path.with_suffix(".html")
    write_private_text(out, html)
    return out
