"""The patient's course: every session of one pseudonym, and the outcomes across them.

Owns: ``summarize(path)`` — one session file as one row of a course (date, protocol, dose,
peak BP with its time, lowest SpO2, alarms by the highest priority each reached, peak
CADSS and nausea, interventions, minutes from the infusion's end to discharge-ready, the
outcome scores, the REMS form's filing), read in one verified pass (``store.scan_session``) and
``domain.state.fold`` (a file that does not verify is a row marked damaged, never skipped);
``course_rows`` — a patient's rows in time order with infusion n of N and response and
remission flags (``data/outcomes.toml``: a drop of at least 50 % from the course's first
score on the same scale; PHQ-9 below 5, MADRS at most 10 [P]); ``rems_due`` — esketamine
sessions whose REMS form is not filed, with calendar days left of the window;
``course_view``/``course_line`` — what the console shows when a session opens (the one-line
summary and the table of ``table_cells``, the same cells as the HTML report); the
renderings (table, JSON lines, CSV, HTML with one chart of outcome scores and peak SBP).
Must not import: textual, chairside.ui, chairside.service, chairside.transport.
"""

from __future__ import annotations

import csv
import html
import io
import json
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from chairside.domain.course import course_position
from chairside.domain.dose import totals
from chairside.domain.protocol import load_template
from chairside.domain.scales import get_scale
from chairside.domain.state import fold
from chairside.store import DamagedSessionFile, SessionFileError, scan_session
from chairside.store.canonical import reading_time, reading_values

__all__ = ["CourseRow", "CourseView", "SessionSummary", "course_line", "course_parts", "course_rows", "course_view", "outcomes_data",
           "rems_due", "render", "summarize", "table_cells"]

PRIORITIES = ("high", "medium", "low")


@lru_cache(maxsize=1)
def outcomes_data() -> dict[str, Any]:
    text = resources.files("chairside").joinpath("data/outcomes.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@dataclass
class SessionSummary:
    """One session file, as the course and the REMS list need it (JSON-serialisable)."""

    path: str
    status: str = "ok"  # ok | damaged | unreadable
    error: str = ""
    session_id: str = ""
    patient_id: str = ""
    protocol: str = ""
    drug: str = ""
    opened: str = ""  # ISO 8601
    closed: str = ""
    training: bool = False
    weight_kg: float | None = None
    dose_mg: float | None = None
    dose_mg_kg: float | None = None
    peak_sbp: float | None = None
    peak_sbp_t: str = ""
    peak_dbp: float | None = None
    peak_dbp_t: str = ""
    lowest_spo2: float | None = None
    alarms: dict[str, int] = field(default_factory=dict)  # highest priority reached -> count
    peak_cadss: float | None = None
    peak_nausea: float | None = None
    interventions: list[str] = field(default_factory=list)
    end_to_ready_min: float | None = None
    outcomes: dict[str, float] = field(default_factory=dict)  # scale -> the session's last score
    rems_filed: bool = False
    rems_filed_by: str = ""
    last_hash: str = ""
    signing: str = ""  # which installation key(s) signed the file, or UNSIGNED (store.VerifyResult.signing_text)


def _iso(t: datetime | None) -> str:
    return "" if t is None else t.isoformat()


#: kinds the summary does not fold: the readings are scanned as bytes for their peaks, and a
#: training run's own events change nothing clinical (``domain.state``)
LIGHT_KINDS = frozenset({"readings_recorded", "training"})


def summarize(path: str | Path) -> SessionSummary:
    """One session file as a course row; a file that cannot be read or does not verify is
    a row with ``status`` damaged/unreadable and the reason, never an exception.

    One verified pass (``store.scan_session``: the chain, readings digests and head as
    ``verify`` checks them); the clinical events are folded (``domain.state.fold``), the
    readings batches scanned as bytes for the peaks."""
    path = Path(path)
    out = SessionSummary(path=str(path))
    try:
        record = scan_session(path, LIGHT_KINDS)
    except DamagedSessionFile as exc:
        out.status, out.error = "damaged", str(exc).splitlines()[0]
        return out
    except SessionFileError as exc:
        out.status, out.error = "unreadable", str(exc).splitlines()[0]
        return out
    except (OSError, ValueError) as exc:
        out.status, out.error = "unreadable", f"{path}: {exc}"
        return out
    try:
        state = fold(record.events)
    except ValueError as exc:
        out.status, out.error = "damaged", f"{path}: the record does not hold together: {exc}"
        return out
    s = state.session
    if s is None:
        out.status, out.error = "damaged", f"{path}: no session_opened"
        return out
    out.last_hash = record.last_hash
    if record.verified is not None:
        out.signing = record.verified.signing_text()
    out.session_id, out.patient_id, out.protocol = s.session_id, s.patient_id, s.protocol
    out.opened, out.training, out.weight_kg = _iso(s.opened_t), s.training, s.weight_kg
    inf = state.infusion
    out.drug = inf.drug or _template_drug(s.protocol)
    last_mono = max([state.last_mono or 0.0, *(float(b.get("mono") or 0.0) for b, _ in record.light)])
    dose_mg: float | None = None
    if inf.segments:  # the record's own rate/pause arithmetic, stopping at the order (domain.dose)
        given = totals(state, last_mono)
        dose_mg = given.mg
        out.dose_mg_kg = None if given.mg_kg is None else round(given.mg_kg, 3)
    dev = state.device_doses  # fixed-dose devices (esketamine): the dose is the devices given
    if dev is not None and dev.count:
        dose_mg = (dose_mg or 0.0) + dev.total_mg
    out.dose_mg = None if dose_mg is None else round(dose_mg, 1)
    sbp_t = dbp_t = None
    for body, raw in record.light:
        if raw is None:
            continue
        for param, value, valid, t in reading_values(raw):
            if not valid or value is None:
                continue
            if param == "nibp_sys" and (out.peak_sbp is None or value > out.peak_sbp):
                out.peak_sbp, sbp_t = value, (t, body.get("t"))
            elif param == "nibp_dia" and (out.peak_dbp is None or value > out.peak_dbp):
                out.peak_dbp, dbp_t = value, (t, body.get("t"))
            elif param == "spo2" and (out.lowest_spo2 is None or value < out.lowest_spo2):
                out.lowest_spo2 = value
    out.peak_sbp_t, out.peak_dbp_t = _reading_iso(sbp_t), _reading_iso(dbp_t)
    for ev in record.events:
        k = ev.kind
        if k == "session_closed":
            out.closed = _iso(ev.t)
        elif k == "rems_form_filed":
            out.rems_filed, out.rems_filed_by = True, ev.by
    for a in state.alarms.values():  # an alarm's priority never drops: it is the highest it reached
        out.alarms[a.priority] = out.alarms.get(a.priority, 0) + 1
    outcome_scales = set(outcomes_data()["response"]["scales"])
    for eff in state.effective_events():
        ev = eff.current
        if ev is None:
            continue
        if ev.kind == "observation_recorded" and ev.score is not None:
            if ev.scale == "cadss":
                out.peak_cadss = ev.score if out.peak_cadss is None else max(out.peak_cadss, ev.score)
            elif ev.scale == "nausea":
                out.peak_nausea = ev.score if out.peak_nausea is None else max(out.peak_nausea, ev.score)
            if ev.scale in outcome_scales:
                out.outcomes[ev.scale] = ev.score
        elif ev.kind == "intervention_given":
            out.interventions.append(ev.drug)
        elif ev.kind == "discharge_assessed" and ev.criteria_met and out.end_to_ready_min is None:
            end = inf.stopped_mono
            if end is not None:
                out.end_to_ready_min = round((ev.mono - end) / 60.0, 1)
    return out


def _reading_iso(found: tuple[int | str | None, str | None] | None) -> str:
    """The peak's time: the reading's own (device, else received), else its batch's event time."""
    if found is None:
        return ""
    t, event_t = found
    when = reading_time(t)
    if when is not None:
        return when.isoformat()
    return "" if not event_t else datetime.fromisoformat(event_t.replace("Z", "+00:00")).isoformat()


def _template_drug(protocol: str) -> str:
    try:
        return load_template(protocol).dosing.drug
    except (ValueError, OSError, KeyError):
        return ""


def _planned(protocol: str) -> int | None:
    try:
        tpl = load_template(protocol)
    except (ValueError, OSError, KeyError):
        return None
    course = tpl.course  # the template's planned count of sessions (data/protocols, with its source)
    return None if course is None else int(course.planned_sessions)


@dataclass
class CourseRow:
    summary: SessionSummary
    n: int | None = None  # infusion n of the course (among the readable sessions)
    planned: int | None = None
    response: dict[str, bool] = field(default_factory=dict)
    remission: dict[str, bool] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.summary), "n": self.n, "planned": self.planned, "response": self.response,
                "remission": self.remission}


def _remits(scale: str, score: float) -> bool | None:
    rule = outcomes_data()["remission"].get(scale)
    if rule is None:
        return None
    if "below" in rule:
        return score < rule["below"]
    return score <= rule["at_most"]


def _dosed(s: SessionSummary) -> dict[str, Any]:
    return {"protocol": s.protocol, "dosed": bool(s.dose_mg)}


def course_rows(summaries: list[SessionSummary], patient_id: str) -> list[CourseRow]:
    """The patient's readable sessions in time order, with response and remission per
    outcome scale. A session's infusion number is the course's rule (``domain.course.
    course_position``, as recorded in ``session_opened``): the n-th dosed session of its
    protocol; a session without a dose has none."""
    mine = [s for s in summaries if s.patient_id == patient_id and s.status == "ok"]
    mine.sort(key=lambda s: s.opened)
    drop = float(outcomes_data()["response"]["drop_fraction"])
    first: dict[str, float] = {}
    rows = []
    for i, s in enumerate(mine):
        n = course_position([_dosed(e) for e in mine[:i]], s.protocol, None)[0] if s.dose_mg else None
        row = CourseRow(s, n=n, planned=_planned(s.protocol))
        for scale, score in s.outcomes.items():
            first.setdefault(scale, score)
            base = first[scale]
            row.response[scale] = base > 0 and score <= base * (1.0 - drop)
            rem = _remits(scale, score)
            if rem is not None:
                row.remission[scale] = rem
        rows.append(row)
    return rows


@dataclass
class CourseView:
    """What the console shows of a patient's course when a session opens: the earlier
    sessions' rows, the files of the folder that could not be read, the one-line summary
    (``course_line``) and the table (``table_cells``); ``error``: the folder itself could
    not be read (one line)."""

    patient_id: str
    rows: list[CourseRow] = field(default_factory=list)
    damaged: list[SessionSummary] = field(default_factory=list)
    line: str = ""
    parts: list[tuple[str, ...]] = field(default_factory=list)  # the line's parts, longest wording first
    headers: list[str] = field(default_factory=list)
    cells: list[list[str]] = field(default_factory=list)
    error: str = ""


def course_view(summaries: list[SessionSummary], patient_id: str, *, session_id: str = "",
                before: datetime | None = None, protocol: str = "") -> CourseView:
    """The course as it stands when session ``session_id`` (protocol ``protocol``) opens:
    the patient's sessions opened before it (the session itself left out)."""
    earlier = [s for s in summaries if s.session_id != session_id or not session_id]
    if before is not None:
        earlier = [s for s in earlier if s.status != "ok" or datetime.fromisoformat(s.opened) < before]
    rows = course_rows(earlier, patient_id)
    damaged = [s for s in summaries if s.status != "ok"]
    headers, cells = table_cells(rows)
    parts = course_parts(rows, damaged, protocol=protocol, patient_id=patient_id)
    return CourseView(patient_id, rows, damaged, " · ".join(p[0] for p in parts), parts, headers, cells)


def _short(scale: str) -> str:
    try:
        return get_scale(scale).short or scale
    except (KeyError, ValueError):
        return scale


def course_parts(rows: list[CourseRow], damaged: list[SessionSummary], *, protocol: str = "",
                 patient_id: str = "") -> list[tuple[str, ...]]:
    """The course line's parts, each as wordings from the longest to the shortest (the console
    fits them to its width): this session's infusion n of N, the last session's dose, peak
    BP and peak CADSS, the latest score of each outcome scale with its change from the score
    before (and response/remission); the files that could not be read, named. [] when there
    is nothing earlier and nothing damaged."""
    parts: list[tuple[str, ...]] = []
    if rows:
        protocol = protocol or rows[-1].summary.protocol
        n, _ = course_position([_dosed(r.summary) for r in rows], protocol, None)
        planned = _planned(protocol)
        last = rows[-1].summary
        parts.append((f"Course: infusion {n}" + (f" of {planned}" if planned else ""),
                      f"Course: inf. {n}" + (f"/{planned}" if planned else "")))
        short_dose = _dose(last).split(" (")[0]
        parts.append((f"last {last.opened[:10]}: {_dose(last)}", f"last {last.opened[5:10]}: {short_dose}", short_dose))
        parts.append((f"peak BP {_n(last.peak_sbp)}/{_n(last.peak_dbp)}", f"BP {_n(last.peak_sbp)}/{_n(last.peak_dbp)}"))
        parts.append((f"CADSS {_n(last.peak_cadss)}",))
        for scale in outcomes_data()["response"]["scales"]:
            scored = [r for r in rows if scale in r.summary.outcomes]
            if not scored:
                continue
            now = scored[-1].summary.outcomes[scale]
            head = f"{_short(scale)} {now:g}"
            if len(scored) == 1:
                parts.append((head,))
                continue
            d = now - scored[-2].summary.outcomes[scale]
            trend = "=" if d == 0 else f"{'↓' if d < 0 else '↑'}{abs(d):g}"
            tags = [w for w, flags in (("response", scored[-1].response), ("remission", scored[-1].remission))
                    if flags.get(scale)]
            parts.append((f"{head} ({trend} from the one before" + "".join(f"; {t}" for t in tags) + ")",
                          f"{head} {trend}" + "".join(f" {t}" for t in tags), f"{head} {trend}"))
    elif damaged:
        parts.append((f"Course: no earlier readable session of {patient_id} in the folder", "Course: none readable"))
    if damaged:
        names = ", ".join(Path(d.path).name for d in damaged[:3]) + (" …" if len(damaged) > 3 else "")
        k = len(damaged)
        parts.append((f"{k} file{'s' if k != 1 else ''} cannot be read: {names}", f"{k} unreadable: {names}",
                      f"{k} unreadable"))
    return parts


def course_line(rows: list[CourseRow], damaged: list[SessionSummary], *, protocol: str = "",
                patient_id: str = "") -> str:
    """The course line in full (``course_parts``' longest wordings); "" when there is nothing."""
    return " · ".join(p[0] for p in course_parts(rows, damaged, protocol=protocol, patient_id=patient_id))


def rems_due(summaries: list[SessionSummary], today: date) -> list[dict[str, Any]]:
    """Esketamine sessions without a filed REMS form: days left of the window (negative:
    overdue), oldest first."""
    rems = outcomes_data()["rems"]
    window, drugs = int(rems["window_days"]), set(rems["drugs"])
    out = []
    for s in summaries:
        if s.status != "ok" or s.training or s.rems_filed or s.drug not in drugs:
            continue
        opened = datetime.fromisoformat(s.opened).date()
        left = window - (today - opened).days
        out.append({"path": s.path, "patient_id": s.patient_id, "session_id": s.session_id, "date": str(opened),
                    "days_left": left, "overdue": left < 0})
    out.sort(key=lambda r: r["days_left"])
    return out


# ------------------------------------------------------------------------------ renderings
def _n(v: float | None, unit: str = "") -> str:
    return "—" if v is None else f"{v:g}{unit}"


def _flags(row: CourseRow) -> str:
    out = []
    for scale, score in row.summary.outcomes.items():
        tags = [w for w, d in (("response", row.response), ("remission", row.remission)) if d.get(scale)]
        out.append(f"{scale} {score:g}" + (f" ({', '.join(tags)})" if tags else ""))
    return "; ".join(out) or "—"


def _dose(s: SessionSummary) -> str:
    if s.dose_mg is None:
        return "—"
    if s.drug == "esketamine":
        return f"{s.dose_mg:g} mg"
    return f"{s.dose_mg_kg:g} mg/kg ({s.dose_mg:g} mg)"


def _alarms(s: SessionSummary) -> str:
    return ", ".join(f"{s.alarms[p]} {p}" for p in PRIORITIES if s.alarms.get(p)) or "none"


def _table(rows: list[CourseRow], damaged: list[SessionSummary]) -> str:
    lines = []
    for r in rows:
        s = r.summary
        n = "—" if r.n is None else f"{r.n}" + (f" of {r.planned}" if r.planned else "")
        lines.append(f"#{n}  {s.opened[:16].replace('T', ' ')}  {s.protocol}  dose {_dose(s)}")
        lines.append(f"     peak BP {_n(s.peak_sbp)}/{_n(s.peak_dbp)} at {s.peak_sbp_t[11:16] or '—'}  "
                     f"lowest SpO2 {_n(s.lowest_spo2, ' %')}  alarms {_alarms(s)}")
        lines.append(f"     peak CADSS {_n(s.peak_cadss)}  peak nausea {_n(s.peak_nausea)}  "
                     f"end to discharge-ready {_n(s.end_to_ready_min, ' min')}  "
                     f"interventions {', '.join(s.interventions) or 'none'}")
        lines.append(f"     outcomes {_flags(r)}")
    lines += [f"{which}: {text}" for which, text in _signing(rows)]
    for d in damaged:
        lines.append(f"DAMAGED  {d.path}: {d.error}")
    return "\n".join(lines) + "\n"


def _signing(rows: list[CourseRow]) -> list[tuple[str, str]]:
    """The sessions grouped by what signed them: [("sessions #1-#6", "signed by installation key SHA256:..."), ...]
    (a session without a dose, which has no infusion number, is named by its date)."""
    groups: dict[str, list[CourseRow]] = {}
    for r in rows:
        groups.setdefault(r.summary.signing or "signing not known", []).append(r)
    out = []
    for text, group in groups.items():
        ns = sorted(r.n for r in group if r.n is not None)
        runs = []
        if ns:
            start = ns[0]
            for a, b in zip(ns, [*ns[1:], None]):
                if b != a + 1:
                    runs.append(f"#{start}" if start == a else f"#{start}-#{a}")
                    start = b
        runs += [f"of {r.summary.opened[:10]}" for r in group if r.n is None]
        out.append((("session " if len(group) == 1 else "sessions ") + ", ".join(runs), text))
    return out


CSV_FIELDS = ["n", "planned", "opened", "protocol", "drug", "dose_mg", "dose_mg_kg", "peak_sbp", "peak_sbp_t",
              "peak_dbp", "lowest_spo2", "alarms_high", "alarms_medium", "alarms_low", "peak_cadss", "peak_nausea",
              "interventions", "end_to_ready_min", "outcomes", "response", "remission", "status", "path",
              "last_hash", "signing"]


def _csv(rows: list[CourseRow], damaged: list[SessionSummary]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    for r in rows:
        s = r.summary
        w.writerow({"n": r.n, "planned": r.planned or "", "opened": s.opened, "protocol": s.protocol, "drug": s.drug,
                    "dose_mg": s.dose_mg, "dose_mg_kg": s.dose_mg_kg, "peak_sbp": s.peak_sbp,
                    "peak_sbp_t": s.peak_sbp_t, "peak_dbp": s.peak_dbp, "lowest_spo2": s.lowest_spo2,
                    "alarms_high": s.alarms.get("high", 0), "alarms_medium": s.alarms.get("medium", 0),
                    "alarms_low": s.alarms.get("low", 0), "peak_cadss": s.peak_cadss, "peak_nausea": s.peak_nausea,
                    "interventions": "; ".join(s.interventions), "end_to_ready_min": s.end_to_ready_min,
                    "outcomes": json.dumps(s.outcomes, sort_keys=True),
                    "response": json.dumps(r.response, sort_keys=True),
                    "remission": json.dumps(r.remission, sort_keys=True), "status": s.status, "path": s.path,
                    "last_hash": s.last_hash, "signing": s.signing})
    for d in damaged:
        w.writerow({"status": d.status, "path": d.path, "interventions": d.error})
    return buf.getvalue()


def _svg_chart(rows: list[CourseRow]) -> str:
    """One chart: each outcome scale's score and the peak SBP, session by session."""
    width, height, pad = 640, 260, 40
    n = max(1, len(rows))
    x = [pad + (width - 2 * pad) * (i / max(1, n - 1)) for i in range(n)]
    series: dict[str, list[float | None]] = {}
    for scale in sorted({k for r in rows for k in r.summary.outcomes}):
        series[scale] = [r.summary.outcomes.get(scale) for r in rows]
    sbp = [r.summary.peak_sbp for r in rows]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="Outcome scores and peak systolic BP by session">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white" stroke="#999"/>']

    def line(vals: list[float | None], lo: float, hi: float, colour: str, label: str, dash: str = "") -> None:
        pts = [(x[i], height - pad - (height - 2 * pad) * ((v - lo) / (hi - lo or 1)))
               for i, v in enumerate(vals) if v is not None]
        if not pts:
            return
        d = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        parts.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2" '
                     f'stroke-dasharray="{dash}"><title>{html.escape(label)}</title></polyline>')
        for px, py in pts:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')

    colours = ["#1f4e9c", "#2a7d2e", "#8a3ab9"]
    maxima = {"phq9": 27, "madrs": 60, "pain": 10}
    for i, (scale, vals) in enumerate(series.items()):
        line(vals, 0, maxima.get(scale, max(v for v in vals if v is not None)), colours[i % 3], scale)
    if any(v is not None for v in sbp):
        line(sbp, 80, 220, "#b3261e", "peak SBP (80-220 mmHg)", "6 3")
    legend = [*series, "peak SBP"]
    for i, name in enumerate(legend):
        colour = "#b3261e" if name == "peak SBP" else colours[i % 3]
        parts.append(f'<text x="{pad + i * 120}" y="18" font-size="12" fill="{colour}">{html.escape(name)}</text>')
    for i in range(n):
        parts.append(f'<text x="{x[i]:.1f}" y="{height - 12}" font-size="11" text-anchor="middle">#{i + 1}</text>')
    parts.append("</svg>")
    return "".join(parts)


TABLE_HEADERS = ["#", "date", "protocol", "dose", "peak BP", "lowest SpO2", "alarms", "peak CADSS",
                 "peak nausea", "end → ready", "outcomes"]


def table_cells(rows: list[CourseRow]) -> tuple[list[str], list[list[str]]]:
    """The course table's headers and cells (the HTML report and the console's course view)."""
    cells = []
    for r in rows:
        s = r.summary
        n = "—" if r.n is None else f"{r.n}" + (f" of {r.planned}" if r.planned else "")
        cells.append([n, s.opened[:16].replace("T", " "), s.protocol, _dose(s), f"{_n(s.peak_sbp)}/{_n(s.peak_dbp)}",
                      _n(s.lowest_spo2, " %"), _alarms(s), _n(s.peak_cadss), _n(s.peak_nausea),
                      _n(s.end_to_ready_min, " min"), _flags(r)])
    return list(TABLE_HEADERS), cells


def _html(patient_id: str, rows: list[CourseRow], damaged: list[SessionSummary]) -> str:
    esc = html.escape
    headers, cells = table_cells(rows)
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in cells]
    bad = "".join(f"<li>DAMAGED {esc(d.path)}: {esc(d.error)}</li>" for d in damaged)
    signing = "".join(f"<li>{esc(which)}: {esc(text)}</li>" for which, text in _signing(rows))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Course " + esc(patient_id) + "</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;"
            "padding:3px 6px;font-size:12px}</style></head><body>"
            f"<h1>Course of {esc(patient_id)}</h1>" + _svg_chart(rows) +
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            + (f"<h2>Signed by</h2><ul class='signing'>{signing}</ul>" if signing else "")
            + (f"<h2>Files that could not be read</h2><ul>{bad}</ul>" if bad else "") + "</body></html>\n")


def render(patient_id: str, rows: list[CourseRow], damaged: list[SessionSummary], fmt: str) -> str:
    if fmt == "table":
        return _table(rows, damaged)
    if fmt == "json":
        out = [json.dumps(r.as_dict(), sort_keys=True) for r in rows]
        out += [json.dumps({**asdict(d), "n": None}, sort_keys=True) for d in damaged]
        return "\n".join(out) + "\n"
    if fmt == "csv":
        return _csv(rows, damaged)
    if fmt == "html":
        return _html(patient_id, rows, damaged)
    raise ValueError(f"unknown format {fmt!r}; choose one of: table, json, csv, html")
