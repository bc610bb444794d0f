"""Inline SVG trend chart for the printed session report.

Owns: drawing the whole-session trend of SBP/DBP/MAP, HR/PR and SpO2 as one self-contained
``<svg>`` string: phases shaded (with hatching so they read in black and white), limits drawn
per phase with their source tags, alarms and interventions marked and numbered.
Must not import: textual, serial, chairside.transport, chairside.alarms, chairside.service.

The chart's axis ranges are display choices (where the plot starts and ends), not clinical
limits; the limits drawn come from the limits profile data file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any, Sequence

from chairside.domain.describe import marker as priority_marker, param_label
from chairside.reports.common import LimitLine, PhaseSpan, Point

W = 1000  # viewBox width
LEFT, RIGHT = 56, 118  # margins: y labels / limit labels
PLOT_W = W - LEFT - RIGHT

# Display ranges (axis extents, widened to the data when needed). Not clinical limits.
_PANELS = [
    # key, title, params, y range, height
    ("bp", "Blood pressure (mmHg)", ("nibp_sys", "nibp_dia", "nibp_map"), (40.0, 220.0), 215),
    ("hr", "Heart rate / pulse rate (/min)", ("hr", "pr"), (30.0, 160.0), 125),
    ("spo2", "SpO\u2082 (%)", ("spo2",), (80.0, 100.0), 100),
]
_STYLE = {
    # param: (stroke, dash, width, marker)
    "nibp_sys": ("#b00020", "", 1.4, "v"),
    "nibp_dia": ("#0d47a1", "", 1.4, "^"),
    "nibp_map": ("#333333", "4 3", 1.0, "o"),
    "hr": ("#1b5e20", "", 1.2, ""),
    "pr": ("#6a1b9a", "2 2", 1.2, ""),
    "spo2": ("#004d61", "", 1.2, ""),
}
_PHASE_FILL = {
    "pre_infusion": "url(#ph-pre)",
    "infusion": "url(#ph-inf)",
    "recovery": "url(#ph-rec)",
    "discharged": "#ffffff",
}
_PHASE_LABEL = {"pre_infusion": "pre-dose", "infusion": "dosing", "recovery": "recovery", "discharged": "discharged"}
_GAP_S = 30.0
DRAWN_PRIORITIES = ("medium", "high")  # low (advisory) limits are listed in the report's table, not drawn  # a continuous trace breaks when consecutive samples are further apart


@dataclass(frozen=True)
class Mark:
    t: datetime
    label: str  # e.g. "A3" or "I1"
    kind: str  # "alarm" | "intervention"
    param: str | None = None
    priority: str = ""


def _nice_step(span_min: float) -> int:
    for step in (5, 10, 15, 20, 30, 60, 120, 240):
        if span_min / step <= 12:
            return step
    return 480


def _runs(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Split a trace into runs, breaking on missing values (never drawn as zero) and on gaps."""
    runs: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    last_x = None
    for x, v in points:
        if v is None or (last_x is not None and x - last_x > _GAP_S):
            if cur:
                runs.append(cur)
            cur = []
        if v is not None:
            cur.append((x, v))
        last_x = x
    if cur:
        runs.append(cur)
    return runs


def render_chart(
    *,
    t0: datetime,
    t1: datetime,
    series: dict[str, list[Point]],
    phases: Sequence[PhaseSpan],
    limits: Sequence[LimitLine],
    marks: Sequence[Mark],
    limits_source: str | None = None,
) -> str:
    if t1 <= t0:
        t1 = t0 + timedelta(minutes=1)
    span_s = (t1 - t0).total_seconds()

    def X(t: datetime) -> float:
        return LEFT + PLOT_W * min(max((t - t0).total_seconds() / span_s, 0.0), 1.0)

    px_per_s = PLOT_W / span_s
    top = 44
    panel_geo: dict[str, tuple[float, float, float, float]] = {}  # key -> (y0, h, lo, hi)
    for key, title, params, (lo, hi), h in _PANELS:
        vals = [p.value for prm in params for p in series.get(prm, []) if p.value is not None]
        if vals:
            lo = min(lo, 10 * ((min(vals) - 5) // 10))
            hi = max(hi, 10 * ((max(vals) + 14) // 10))
        if key == "spo2":
            hi = 100.0  # a saturation never reads above 100 %
        panel_geo[key] = (top, h, lo, hi)
        top += h + 30
    total_h = top + 26

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {total_h}" class="trend" role="img" '
        f'aria-label="Trend of blood pressure, heart rate and SpO2 over the session" '
        f'font-family="DejaVu Sans, Arial, Helvetica, sans-serif" font-size="11">',
        "<defs>",
        '<pattern id="ph-pre" width="8" height="8" patternUnits="userSpaceOnUse">'
        '<rect width="8" height="8" fill="#f4f4f4"/></pattern>',
        '<pattern id="ph-inf" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="8" height="8" fill="#e8e8e8"/><line x1="0" y1="0" x2="0" y2="8" stroke="#bdbdbd" stroke-width="2"/></pattern>',
        '<pattern id="ph-rec" width="8" height="8" patternUnits="userSpaceOnUse">'
        '<rect width="8" height="8" fill="#f7f7f7"/><circle cx="4" cy="4" r="0.9" fill="#b0b0b0"/></pattern>',
        "</defs>",
    ]

    # phase shading across all panels + phase labels at top
    first_y = panel_geo["bp"][0]
    last_geo = panel_geo["spo2"]
    last_y = last_geo[0] + last_geo[1]
    for ph in phases:
        x0 = X(ph.start)
        x1 = X(ph.end) if ph.end else X(t1)
        if x1 - x0 < 0.5:
            continue
        for key, (y0, h, lo, hi) in panel_geo.items():
            out.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{h:.1f}" '
                       f'fill="{_PHASE_FILL.get(ph.phase, "#fff")}" class="phase phase-{escape(ph.phase)}"/>')
        out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{first_y - 8:.1f}" text-anchor="middle" font-size="11" '
                   f'font-weight="bold">{escape(_PHASE_LABEL.get(ph.phase, ph.phase))}</text>')
        out.append(f'<line x1="{x0:.1f}" y1="{first_y - 4:.1f}" x2="{x0:.1f}" y2="{last_y:.1f}" stroke="#555" '
                   f'stroke-width="0.8" stroke-dasharray="1 2"/>')

    # time grid and axis
    step = _nice_step(span_s / 60.0)
    ticks = []
    m = 0
    while m * 60 <= span_s + 1e-6:
        ticks.append(m)
        m += step
    for key, (y0, h, lo, hi) in panel_geo.items():
        for mm in ticks:
            x = X(t0 + timedelta(minutes=mm))
            out.append(f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y0 + h:.1f}" stroke="#ccc" stroke-width="0.5"/>')
    for mm in ticks:
        x = X(t0 + timedelta(minutes=mm))
        tt = t0 + timedelta(minutes=mm)
        out.append(f'<text x="{x:.1f}" y="{last_y + 13:.1f}" text-anchor="middle" font-size="10">{tt:%H:%M}</text>')
        out.append(f'<text x="{x:.1f}" y="{last_y + 24:.1f}" text-anchor="middle" font-size="9" fill="#444">+{mm}</text>')
    out.append(f'<text x="{LEFT - 16}" y="{last_y + 13:.1f}" text-anchor="end" font-size="9" fill="#444">UTC</text>')
    out.append(f'<text x="{LEFT - 16}" y="{last_y + 24:.1f}" text-anchor="end" font-size="9" fill="#444">min</text>')

    # panels: frame, y ticks, limits, series
    for key, title, params, _, _ in _PANELS:
        y0, h, lo, hi = panel_geo[key]

        def Y(v: float, y0=y0, h=h, lo=lo, hi=hi) -> float:
            return y0 + h - (min(max(v, lo), hi) - lo) / (hi - lo) * h

        ystep = 20 if hi - lo > 100 else (10 if hi - lo > 30 else 5)
        v = lo - (lo % ystep) + (ystep if lo % ystep else 0)
        while v <= hi + 1e-9:
            y = Y(v)
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}" stroke="#ddd" stroke-width="0.5"/>')
            out.append(f'<text x="{LEFT - 4}" y="{y + 3.5:.1f}" text-anchor="end" font-size="10">{v:g}</text>')
            v += ystep
        out.append(f'<text x="{LEFT + 4}" y="{y0 + 12:.1f}" font-size="11" font-weight="bold">{escape(title)}</text>')

        # limits: medium and high tiers, drawn over the phases they apply to; one label per
        # value in the right margin (nudged apart), with priority marks and source tags
        groups: dict[tuple[str, float], list[LimitLine]] = {}
        for lim in limits:
            if lim.param not in params or lim.relative or lim.priority not in DRAWN_PRIORITIES:
                continue
            if lim.value < lo or lim.value > hi:
                continue
            y = Y(lim.value)
            dash = "6 3" if lim.priority == "high" else "2 2"
            width = 1.1 if lim.priority == "high" else 0.8
            for ph in phases:
                if lim.phases and ph.phase not in lim.phases:
                    continue
                xa, xb = X(ph.start), (X(ph.end) if ph.end else X(t1))
                if xb - xa < 0.5:
                    continue
                out.append(f'<line x1="{xa:.1f}" y1="{y:.1f}" x2="{xb:.1f}" y2="{y:.1f}" stroke="#444" '
                           f'stroke-width="{width}" stroke-dasharray="{dash}" class="limit" '
                           f'data-param="{escape(lim.param)}" data-value="{lim.value:g}" '
                           f'data-priority="{escape(lim.priority)}" data-source="{escape(lim.source_tag)}"/>')
            groups.setdefault((key if key != "hr" else "hr", lim.value), []).append(lim)
        labels = []
        for (_, value), lims in groups.items():
            names = "/".join(dict.fromkeys(param_label(x.param) for x in lims))
            sym = lims[0].symbol or ("≥" if lims[0].op == "high" else "≤")
            sym = sym.replace(">=", "≥").replace("<=", "≤")
            pri = "/".join(dict.fromkeys(priority_marker(x.priority) for x in lims))
            tags = "".join(dict.fromkeys(x.source_tag for x in lims))
            labels.append([Y(value), f"{names} {sym}{value:g} {pri} {tags}".strip()])
        labels.sort()
        for i in range(1, len(labels)):  # push down to keep 9 units apart
            labels[i][0] = max(labels[i][0], labels[i - 1][0] + 9)
        if labels and labels[-1][0] > y0 + h:  # then pull back inside the panel's bottom
            labels[-1][0] = y0 + h
        for i in range(len(labels) - 2, -1, -1):
            labels[i][0] = min(labels[i][0], labels[i + 1][0] - 9)
        for y, txt in labels:
            out.append(f'<text x="{LEFT + PLOT_W + 4}" y="{y + 3.5:.1f}" font-size="8.5">{escape(txt)}</text>')

        # series
        for prm in params:
            pts = series.get(prm, [])
            if not pts:
                continue
            stroke, dash, width, marker = _STYLE.get(prm, ("#000", "", 1.0, ""))
            xy = [((p.t - t0).total_seconds(), p.value) for p in pts]
            discrete = prm.startswith("nibp")
            if discrete:
                valid = [(x, v) for x, v in xy if v is not None]
                if len(valid) > 1:
                    d = " ".join(f"{LEFT + x * px_per_s:.1f},{Y(v):.1f}" for x, v in valid)
                    out.append(f'<polyline points="{d}" fill="none" stroke="{stroke}" stroke-width="0.8" '
                               f'stroke-dasharray="{dash or "none"}" opacity="0.8"/>')
                for x, v in valid:
                    cx, cy = LEFT + x * px_per_s, Y(v)
                    out.append(_marker(marker, cx, cy, stroke, prm))
            else:
                for run in _runs(xy):
                    # min/max per pixel column keeps spikes visible with at most ~2 points/px
                    cols: dict[int, list[float]] = {}
                    for x, v in run:
                        cols.setdefault(int(x * px_per_s), []).append(v)
                    pl = []
                    for c in sorted(cols):
                        vs = cols[c]
                        lo_v, hi_v = min(vs), max(vs)
                        pl.append(f"{LEFT + c:.1f},{Y(lo_v):.1f}")
                        if hi_v != lo_v:
                            pl.append(f"{LEFT + c:.1f},{Y(hi_v):.1f}")
                    if len(pl) == 1:
                        cx, cy = pl[0].split(",")
                        out.append(f'<circle cx="{cx}" cy="{cy}" r="1.2" fill="{stroke}"/>')
                    else:
                        out.append(f'<polyline points="{" ".join(pl)}" fill="none" stroke="{stroke}" '
                                   f'stroke-width="{width}" stroke-dasharray="{dash or "none"}" '
                                   f'stroke-linejoin="round" class="series-{escape(prm)}"/>')
        out.append(f'<rect x="{LEFT}" y="{y0:.1f}" width="{PLOT_W}" height="{h:.1f}" fill="none" stroke="#000" stroke-width="0.8"/>')

    # marks: alarms on their parameter's panel (top edge), interventions along the bottom panel
    panel_of = {p: key for key, _, params, _, _ in _PANELS for p in params}
    stack: dict[tuple[str, int], int] = {}
    for mk in marks:
        x = X(mk.t)
        if mk.kind == "alarm":
            key = panel_of.get(mk.param or "", "bp")
            y0, h, _, _ = panel_geo[key]
            col = int(x // 22)
            n = stack.get((key, col), 0)
            stack[(key, col)] = n + 1
            ty = y0 + 4 + 11 * n
            fill = "#000" if mk.priority == "high" else ("#666" if mk.priority == "medium" else "#fff")
            out.append(f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y0 + h:.1f}" stroke="#000" '
                       f'stroke-width="0.6" stroke-dasharray="2 2" class="alarm-mark"/>')
            out.append(f'<path d="M{x - 4:.1f},{ty:.1f} L{x + 4:.1f},{ty:.1f} L{x:.1f},{ty + 7:.1f} Z" fill="{fill}" stroke="#000" stroke-width="0.7"/>')
            out.append(f'<text x="{x + 5:.1f}" y="{ty + 7:.1f}" font-size="9" font-weight="bold">'
                       f'{escape(mk.label)}{priority_marker(mk.priority)}</text>')
        else:
            col = int(x // 22)
            n = stack.get(("iv", col), 0)
            stack[("iv", col)] = n + 1
            ty = last_y - 8 - 11 * n
            out.append(f'<line x1="{x:.1f}" y1="{first_y:.1f}" x2="{x:.1f}" y2="{last_y:.1f}" stroke="#000" '
                       f'stroke-width="0.6" stroke-dasharray="6 2 1 2" class="intervention-mark"/>')
            out.append(f'<path d="M{x:.1f},{ty - 5:.1f} L{x + 5:.1f},{ty:.1f} L{x:.1f},{ty + 5:.1f} L{x - 5:.1f},{ty:.1f} Z" '
                       f'fill="#fff" stroke="#000" stroke-width="0.9"/>')
            out.append(f'<text x="{x + 6:.1f}" y="{ty + 3.5:.1f}" font-size="9" font-weight="bold">{escape(mk.label)}</text>')

    # legend
    ly = 12
    lx = LEFT
    for prm, name in (("nibp_sys", "SBP"), ("nibp_dia", "DBP"), ("nibp_map", "MAP"), ("hr", "HR (ECG)"),
                      ("pr", "PR (pulse)"), ("spo2", "SpO\u2082")):
        stroke, dash, width, marker = _STYLE[prm]
        out.append(f'<line x1="{lx}" y1="{ly - 3}" x2="{lx + 18}" y2="{ly - 3}" stroke="{stroke}" stroke-width="{width + 0.4}" stroke-dasharray="{dash or "none"}"/>')
        if marker:
            out.append(_marker(marker, lx + 9, ly - 3, stroke, prm))
        out.append(f'<text x="{lx + 22}" y="{ly}" font-size="10">{escape(name)}</text>')
        lx += 30 + 7 * len(name)
    out.append(f'<path d="M{lx:.1f},{ly - 7} L{lx + 8:.1f},{ly - 7} L{lx + 4:.1f},{ly} Z" fill="#000"/>'
               f'<text x="{lx + 11:.1f}" y="{ly}" font-size="10">alarm (A#)</text>')
    lx += 80
    out.append(f'<path d="M{lx:.1f},{ly - 8} L{lx + 5:.1f},{ly - 3} L{lx:.1f},{ly + 2} L{lx - 5:.1f},{ly - 3} Z" fill="#fff" stroke="#000"/>'
               f'<text x="{lx + 8:.1f}" y="{ly}" font-size="10">intervention (I#)</text>')
    lx += 110
    out.append(f'<line x1="{lx}" y1="{ly - 3}" x2="{lx + 18}" y2="{ly - 3}" stroke="#000" stroke-dasharray="6 3"/>'
               f'<text x="{lx + 22}" y="{ly}" font-size="10">limit ({escape(limits_source or "none")})</text>')
    out.append("</svg>")
    return "".join(out)


def _marker(kind: str, x: float, y: float, stroke: str, prm: str) -> str:
    cls = f'class="pt-{escape(prm)}"'
    if kind == "v":
        return f'<path {cls} d="M{x - 4:.1f},{y - 4:.1f} L{x + 4:.1f},{y - 4:.1f} L{x:.1f},{y + 1:.1f} Z" fill="{stroke}"/>'
    if kind == "^":
        return f'<path {cls} d="M{x - 4:.1f},{y + 4:.1f} L{x + 4:.1f},{y + 4:.1f} L{x:.1f},{y - 1:.1f} Z" fill="{stroke}"/>'
    if kind == "o":
        return f'<circle {cls} cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="#fff" stroke="{stroke}" stroke-width="1"/>'
    return ""


def marks_from(alarms: Sequence[tuple[str, Any]], interventions: Sequence[tuple[str, Any]]) -> list[Mark]:
    out = [Mark(ev.t, label, "alarm", ev.param, ev.priority) for label, ev in alarms]
    out += [Mark(ev.t, label, "intervention") for label, ev in interventions]
    return out
