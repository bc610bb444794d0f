"""FHIR R4 export of a session: one Bundle (type ``collection``) as plain JSON, written as a
stream.

Owns: ``bundle(events, *, all_readings=False) -> dict`` (pure, for a list of events),
``write_bundle`` (the same entries streamed to a text file) and ``export(path, out,
all_readings=False) -> Path`` for ``chairside export FILE --format fhir [--all]``. Builds
dicts only; it does not need the ``fhir.resources`` package (the tests validate the output
with its R4B models).
Must not import: textual, serial, chairside.transport, chairside.service, chairside.ui.

What a bundle holds:
- ``Patient``: the pseudonymous identifier only (security label PSEUDED), no name/DOB.
- ``Encounter``: ambulatory, period = session open .. discharge/close, staff as participants.
- ``Observation`` (vital-signs), one per reading, for: every NIBP reading (with a
  blood-pressure panel, LOINC 85354-9, ``derivedFrom`` its single observations), every
  reading entered by staff, and every reading that took part in an alarm (a reading of
  the alarm's parameter from the alarm's delay before it was raised until it cleared, or
  the end of the record). With ``all_readings`` (``--all``) every reading is kept.
  Codes: LOINC + the device's MDC code as a second coding, UCUM units,
  ``effectiveDateTime`` = the reading's time (device time, else receive time). A missing
  value carries ``dataAbsentReason`` (never a zero). Pulse rate (``pr``): from the
  oximeter LOINC 8889-8 with MDC 149530; from the cuff LOINC 8867-4 with MDC 149546; ECG
  heart rate (``hr``) is 8867-4 with MDC 147842.
- ``Observation`` per minute and continuous parameter (HR, PR, SpO2 ... everything but
  NIBP): the parameter's codes, ``effectivePeriod`` = the minute, components median,
  minimum and maximum of the valid readings (statistic codes of
  http://hl7.org/fhir/observation-statistics) and their count; a minute with readings but
  no valid value has ``dataAbsentReason`` instead.
- ``MedicationAdministration``, ``Procedure``, survey ``Observation``s and ``DetectedIssue``s
  as in :mod:`chairside.reports.fhir_resources`.

Memory: the record is read twice from the session file, first without readings (the
clinical events, folded; the alarm windows), then readings batch by batch; each entry is
written as soon as it is built. What is held is the clinical record, the NIBP panels and
the open minutes, not the readings.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from chairside.alarms.profile import LimitsError, LimitsProfile, load_profile
from chairside.domain.events import AlarmRaised, DischargeAssessed, ReadingsRecorded
from chairside.domain.readings import Reading
from chairside.domain.state import EMPTY_STATE, SessionState, apply
from chairside.reports.common import load_template, opened, reading_time, session_end
from chairside.reports.fhir_resources import (
    ABSENT,
    BP_PANEL,
    LOINC,
    OBS_CAT,
    _entry,
    _id,
    _iso,
    _qty,
    _vital_key,
    clinical_entries,
    vital_coding,
)
from chairside.store.private import open_private_text
from chairside.store.session_file import SessionFile

NIBP = ("nibp_sys", "nibp_dia", "nibp_map")
STATS = "http://hl7.org/fhir/observation-statistics"
MINUTE = timedelta(minutes=1)
_VITAL_CAT = [{"coding": [{"system": OBS_CAT, "code": "vital-signs", "display": "Vital Signs"}]}]


# ---------------------------------------------------------------------------- pass 1: the record
@dataclass
class _Window:
    params: frozenset[str]
    start: datetime
    end: datetime | None  # None: not cleared in the record


@dataclass
class Skeleton:
    """What the first pass keeps: every event but the readings, the folded state, the alarm
    windows, and the times of the record."""

    events: list[Any] = field(default_factory=list)
    state: SessionState = EMPTY_STATE
    windows: dict[str, _Window] = field(default_factory=dict)
    first_t: datetime | None = None
    last_t: datetime | None = None


def _alarm_params(ev: AlarmRaised, profile: LimitsProfile | None) -> tuple[frozenset[str], float]:
    """The parameters an alarm is about and the longest delay of its rule (seconds)."""
    if profile is not None and ev.rule:
        for lad in profile.ladder:
            if lad.name == ev.rule and lad.param is not None:
                return frozenset({lad.param}), max((t.delay for t in lad.tiers), default=0.0)
        for comb in profile.combined:
            if comb.name == ev.rule:
                params = {t.param for t in comb.when if t.value_from is None}
                return frozenset(params | ({ev.param} if ev.param else set())), comb.delay_s.value
    return (frozenset({ev.param}) if ev.param else frozenset()), 0.0


def skeleton(events: Iterable[Any]) -> Skeleton:
    """The first pass over a record whose ``readings_recorded`` events may come without
    their readings."""
    sk = Skeleton()
    profile: LimitsProfile | None = None
    state = EMPTY_STATE
    for ev in events:
        state = apply(state, ev)
        if sk.first_t is None:
            sk.first_t = ev.t
        sk.last_t = ev.t if sk.last_t is None or ev.t > sk.last_t else sk.last_t
        if isinstance(ev, ReadingsRecorded):
            sk.events.append(ev.model_copy(update={"readings": ()}) if ev.readings else ev)
            continue
        sk.events.append(ev)
        if ev.kind == "session_opened":
            template = load_template(ev.protocol)
            try:
                profile = load_profile(template.limits_profile if template is not None else "standard")
            except LimitsError:
                profile = None
        elif isinstance(ev, AlarmRaised):
            params, delay = _alarm_params(ev, profile)
            sk.windows[ev.alarm_id] = _Window(params, ev.t - timedelta(seconds=delay), None)
        elif ev.kind == "alarm_cleared" and ev.alarm_id in sk.windows:
            sk.windows[ev.alarm_id].end = ev.t
    sk.state = state
    return sk


def _in_alarm(windows: Sequence[_Window], param: str, t: datetime) -> bool:
    return any(param in w.params and w.start <= t and (w.end is None or t <= w.end) for w in windows)


# ---------------------------------------------------------------------------- pass 2: the readings
@dataclass
class _Minute:
    key: str
    param: str
    source: str
    unit: str
    start: datetime
    values: list[float] = field(default_factory=list)
    missing: int = 0
    flags: set[str] = field(default_factory=set)


class _Readings:
    """Builds the reading entries batch by batch: single observations for the readings that
    are kept, NIBP panels, and one summary a minute and continuous parameter."""

    def __init__(self, sid: str, subj: dict[str, str], enc: dict[str, str], windows: Sequence[_Window],
                 all_readings: bool) -> None:
        self.sid, self.subj, self.enc = sid, subj, enc
        self.windows = list(windows)
        self.all = all_readings
        self.minutes: dict[tuple[str, datetime], _Minute] = {}
        self.nibp: dict[datetime, dict[str, tuple[str, Reading]]] = {}

    def batch(self, ev: ReadingsRecorded, seq: int) -> Iterator[dict[str, Any]]:
        for j, r in enumerate(ev.readings):
            t = reading_time(r, ev)
            nibp = r.param in NIBP
            if nibp or r.origin == "manual" or self.all or _in_alarm(self.windows, r.param, t):
                oid = _id(self.sid, "reading", seq, j)
                yield _entry(self._single(r, t, oid, f"{seq}.{j}"))
                if nibp and r.valid and r.value is not None:
                    self.nibp.setdefault(t, {})[r.param] = (oid, r)
            if not nibp and r.origin != "manual":
                yield from self._count(r, t)

    def _single(self, r: Reading, t: datetime, oid: str, ident: str) -> dict[str, Any]:
        coding, text, ucum = vital_coding(r.param, r.source)
        obs: dict[str, Any] = {
            "resourceType": "Observation", "id": oid,
            "identifier": [{"system": "urn:chairside:reading", "value": ident}],
            "status": "final", "category": _VITAL_CAT, "code": {"coding": coding, "text": text},
            "subject": self.subj, "encounter": self.enc, "effectiveDateTime": t.isoformat(),
            "device": {"display": f"{r.source} ({r.origin})"},
        }
        if r.origin == "manual":
            obs["method"] = {"text": "entered by staff"}
        if r.valid and r.value is not None:
            obs["valueQuantity"] = _qty(r.value, r.unit or ucum, ucum or None)
        else:
            obs["dataAbsentReason"] = {"coding": [{"system": ABSENT, "code": "error", "display": "Error"}],
                                       "text": ", ".join(r.flags) or "no value"}
        if r.flags and r.valid:
            obs["note"] = [{"text": "flags: " + ", ".join(r.flags)}]
        return obs

    def _count(self, r: Reading, t: datetime) -> Iterator[dict[str, Any]]:
        start = t.replace(second=0, microsecond=0)
        key = _vital_key(r.param, r.source)
        m = self.minutes.get((key, start))
        if m is None:
            # readings come in time order: a minute two behind this one is complete
            yield from self._flush(lambda k, s: s < start - MINUTE)
            m = self.minutes[(key, start)] = _Minute(key, r.param, r.source, r.unit, start)
        if r.valid and r.value is not None:
            m.values.append(r.value)
        else:
            m.missing += 1
            m.flags.update(r.flags)

    def _flush(self, due: Callable[[str, datetime], bool]) -> Iterator[dict[str, Any]]:
        for k in [k for k in self.minutes if due(*k)]:
            yield _entry(self._summary(self.minutes.pop(k)))

    def _summary(self, m: _Minute) -> dict[str, Any]:
        coding, text, ucum = vital_coding(m.param, m.source)
        unit = m.unit or ucum
        obs: dict[str, Any] = {
            "resourceType": "Observation", "id": _id(self.sid, "minute", m.key, m.start.isoformat()),
            "identifier": [{"system": "urn:chairside:minute", "value": f"{m.key}@{m.start.isoformat()}"}],
            "status": "final", "category": _VITAL_CAT,
            "code": {"coding": coding, "text": f"{text}, 1-minute summary"},
            "subject": self.subj, "encounter": self.enc,
            "effectivePeriod": {"start": m.start.isoformat(), "end": (m.start + MINUTE).isoformat()},
        }
        n = len(m.values) + m.missing
        if m.values:
            stats = (("median", "Median", statistics.median(m.values)), ("minimum", "Minimum", min(m.values)),
                     ("maximum", "Maximum", max(m.values)))
            obs["component"] = [{"code": {"coding": [{"system": STATS, "code": code, "display": disp}],
                                          "text": f"{text} {code}"},
                                 "valueQuantity": _qty(v, unit, ucum or None)} for code, disp, v in stats]
        else:
            obs["dataAbsentReason"] = {"coding": [{"system": ABSENT, "code": "error", "display": "Error"}],
                                       "text": ", ".join(sorted(m.flags)) or "no value"}
        note = f"{n} readings in the minute, {len(m.values)} with a value"
        if m.missing:
            note += f"; {m.missing} without" + (f" ({', '.join(sorted(m.flags))})" if m.flags else "")
        obs["note"] = [{"text": note}]
        return obs

    def finish(self) -> Iterator[dict[str, Any]]:
        yield from self._flush(lambda k, s: True)
        for t, parts in sorted(self.nibp.items(), key=lambda kv: kv[0]):
            comps = []
            for p in NIBP:
                if p in parts:
                    coding, text, ucum = vital_coding(p)
                    comps.append({"code": {"coding": coding, "text": text},
                                  "valueQuantity": _qty(parts[p][1].value, parts[p][1].unit or ucum, ucum)})
            yield _entry({
                "resourceType": "Observation", "id": _id(self.sid, "bp-panel", t.isoformat()),
                "status": "final", "category": _VITAL_CAT,
                "code": {"coding": [{"system": LOINC, "code": BP_PANEL[0], "display": BP_PANEL[1]}],
                         "text": "Blood pressure (NIBP)"},
                "subject": self.subj, "encounter": self.enc, "effectiveDateTime": t.isoformat(),
                "component": comps,
                "derivedFrom": [{"reference": f"urn:uuid:{parts[p][0]}"} for p in NIBP if p in parts],
            })


# ---------------------------------------------------------------------------- the bundle
def _head(sk: Skeleton) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(session id, bundle header without entries, the Patient and Encounter entries)."""
    op = opened(sk.state)
    sid = op.session_id if op else "unknown-session"
    pid = op.patient_id if op else "unknown"
    patient_id, enc_id = _id(sid, "patient"), _id(sid, "encounter")
    patient = {
        "resourceType": "Patient", "id": patient_id,
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                               "code": "PSEUDED", "display": "pseudonymized"}]},
        "identifier": [{"system": "urn:chairside:patient-pseudonym", "value": pid}],
    }
    closed = sk.state.closed or any(isinstance(e, DischargeAssessed) and e.discharged for e in sk.events)
    t_end = session_end(sk.events)
    encounter: dict[str, Any] = {
        "resourceType": "Encounter", "id": enc_id,
        "identifier": [{"system": "urn:chairside:session", "value": sid}],
        "status": "finished" if closed else "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB",
                  "display": "ambulatory"},
        "type": [{"text": f"ketamine session, protocol {op.protocol if op else '?'}"}],
        "subject": {"reference": f"urn:uuid:{patient_id}"},
        "period": {k: v for k, v in (("start", _iso(sk.first_t)), ("end", _iso(t_end) if closed else None)) if v},
    }
    if op and op.staff:
        encounter["participant"] = [{"individual": {"display": s}} for s in op.staff]
    if op and (op.simulated or op.training):
        encounter["meta"] = {"tag": [{"system": "urn:chairside:tag",
                                      "code": "simulated" if op.simulated else "training"}]}
    head: dict[str, Any] = {"resourceType": "Bundle", "id": _id(sid, "bundle"),
                            "identifier": {"system": "urn:chairside:session", "value": sid}, "type": "collection"}
    if sk.last_t is not None:
        head["timestamp"] = sk.last_t.isoformat()
    return sid, head, [_entry(patient), _entry(encounter)]


def entries(sk: Skeleton, reading_batches: Iterable[tuple[int, ReadingsRecorded]], *,
            all_readings: bool = False) -> Iterator[dict[str, Any]]:
    """Every entry of the bundle after the Patient and the Encounter: the clinical record,
    then the readings (``reading_batches``: (seq, event) with readings filled in)."""
    op = opened(sk.state)
    sid = op.session_id if op else "unknown-session"
    subj = {"reference": f"urn:uuid:{_id(sid, 'patient')}"}
    enc = {"reference": f"urn:uuid:{_id(sid, 'encounter')}"}
    yield from clinical_entries(sk.events, sk.state, sid, subj, enc)
    rd = _Readings(sid, subj, enc, list(sk.windows.values()), all_readings)
    for seq, ev in reading_batches:
        yield from rd.batch(ev, seq)
    yield from rd.finish()


def bundle(events: Sequence[Any], template: Any = None, *, all_readings: bool = False) -> dict[str, Any]:
    """The FHIR R4 Bundle of a list of events (pure; ``template`` is not needed and kept for
    callers that pass one)."""
    evs = list(events)
    sk = skeleton(evs)
    _sid, head, first = _head(sk)
    batches = ((e.seq if e.seq >= 0 else i + 1, e) for i, e in enumerate(evs) if isinstance(e, ReadingsRecorded))
    return {**head, "entry": first + list(entries(sk, batches, all_readings=all_readings))}


def write_bundle(out: IO[str], head: dict[str, Any], items: Iterable[dict[str, Any]]) -> int:
    """Stream a Bundle: the header's fields, then each entry as it comes. Returns the count."""
    text = json.dumps(head, ensure_ascii=False)
    out.write(text[:-1] + ', "entry": [\n')
    n = 0
    for item in items:
        if n:
            out.write(",\n")
        out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
        n += 1
    out.write("\n]}\n")
    return n


def export(path: Path, out: Path | None = None, *, all_readings: bool = False) -> Path:
    """Write the FHIR R4 Bundle of a session file as JSON; default ``<file>.fhir.json``.
    The file is verified when it is opened, then read twice as a stream (see the module)."""
    path = Path(path)
    out = Path(out) if out else path.with_suffix(".fhir.json")
    sf = SessionFile.open(path, readonly=True)
    stream = sf.iter_events()
    try:
        sk = skeleton(sf.iter_events(readings=False))
        _sid, head, first = _head(sk)
        tags = []
        if sf.last_hash:
            tags.append({"system": "urn:chairside:last-event-hash", "code": sf.last_hash})
        v = sf.verified  # the installation key(s) that signed the file (store/signing.py)
        if v is not None:
            tags += [{"system": "urn:chairside:signing-key", "code": fp, "display": "Ed25519 key fingerprint"}
                     for fp in (v.keys if v.signed else ())] or \
                    [{"system": "urn:chairside:signing-key", "code": "unsigned", "display": v.signing_text()}]
        if tags:
            head["meta"] = {"tag": tags}
        batches = ((e.seq, e) for e in stream if isinstance(e, ReadingsRecorded))
        with open_private_text(out) as f:
            write_bundle(f, head, _chain(first, entries(sk, batches, all_readings=all_readings)))
    finally:
        stream.close()  # a write that failed half-way leaves the stream open: its cursor goes before the file
        sf.close()
    return out


def _chain(first: list[dict[str, Any]], rest: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from first
    yield from rest


__all__ = ["bundle", "entries", "export", "skeleton", "vital_coding", "write_bundle"]
