"""FHIR export: the Bundle validates (fhir.resources, R4B models) and round-trips the vitals.

fhir.resources 8.x ships R5 at its top level and FHIR 4.3.0 (R4B) under
``fhir.resources.R4B``; there is no 4.0.1 (R4) package in 8.x. R4B's Patient, Encounter,
Observation, MedicationAdministration, Procedure and DetectedIssue have the R4 shapes, so the
R4B models are the R4 validators used here.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

import report_scenario as rs
from report_scenario import iv_file  # noqa: F401 (fixture)
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from chairside.domain.events import ReadingsRecorded
from chairside.reports import fhir as report_fhir

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
# from the issue text / brief (LOINC) and ISO/IEEE 11073-10101 (MDC)
EXPECTED = {
    ("nibp_sys", "nibp"): ("8480-6", "150021", "mm[Hg]"),
    ("nibp_dia", "nibp"): ("8462-4", "150022", "mm[Hg]"),
    ("nibp_map", "nibp"): ("8478-0", "150023", "mm[Hg]"),
    ("hr", "ecg"): ("8867-4", "147842", "/min"),
    ("spo2", "spo2"): ("59408-5", "150456", "%"),
    ("pr", "spo2"): ("8889-8", "149530", "/min"),
}


@pytest.fixture(scope="module")
def session(tmp_path_factory, iv_file):
    """(events as read back from the file, the default bundle as exported, script inputs)."""
    from chairside.store import read_session

    events, inputs = rs.iv_session()
    out = report_fhir.export(iv_file, tmp_path_factory.mktemp("fhir") / "iv.fhir.json")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["meta"]["tag"][0]["code"]  # the last event's hash travels with the bundle
    stored = read_session(iv_file).events
    return stored, doc, inputs


@pytest.fixture(scope="module")
def session_all(tmp_path_factory, iv_file, session):
    """The same with ``--all``: an Observation for every reading."""
    out = report_fhir.export(iv_file, tmp_path_factory.mktemp("fhir-all") / "iv.fhir.json", all_readings=True)
    return session[0], json.loads(out.read_text(encoding="utf-8")), session[2]


def _resources(doc, rtype):
    return [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == rtype]


@pytest.mark.parametrize("which", ["session", "session_all"])
def test_bundle_validates_with_r4b_models(which, request):
    _, doc, _ = request.getfixturevalue(which)
    b = Bundle.model_validate(doc)
    assert b.type == "collection"
    # each resource also validates on its own model (the bundle entry is typed loosely)
    seen = set()
    for e in doc["entry"]:
        rtype = e["resource"]["resourceType"]
        if rtype in seen and rtype == "Observation":
            continue  # one of each kind of observation below is enough for speed
        seen.add(rtype)
        get_fhir_model_class(rtype).model_validate(e["resource"])
    for res in _resources(doc, "Observation")[:: max(1, len(_resources(doc, "Observation")) // 200)]:
        get_fhir_model_class("Observation").model_validate(res)
    assert {"Patient", "Encounter", "Observation", "MedicationAdministration", "DetectedIssue"} <= seen
    # fullUrls are unique and every subject reference resolves inside the bundle
    urls = [e["fullUrl"] for e in doc["entry"]]
    assert len(urls) == len(set(urls))
    for res in _resources(doc, "Observation"):
        assert res["subject"]["reference"] in urls


def test_patient_is_pseudonymous_only(session):
    _, doc, inp = session
    (pat,) = _resources(doc, "Patient")
    assert set(pat) <= {"resourceType", "id", "meta", "identifier"}
    assert pat["identifier"][0]["value"] == inp["patient"]


def test_vitals_round_trip_values_times_and_codes(session_all):
    events, doc, _ = session_all
    readings = [(r, e) for e in events if isinstance(e, ReadingsRecorded) for r in e.readings]
    assert len(readings) > 1000
    by_key: dict[tuple, list] = {}
    for res in _resources(doc, "Observation"):
        codes = [(c["system"], c["code"]) for c in res["code"].get("coding", [])]
        if ((LOINC, "85354-9") in codes or res["category"][0]["coding"][0]["code"] != "vital-signs"
                or "effectivePeriod" in res):  # panels, scales and the per-minute summaries
            continue
        t = datetime.fromisoformat(res["effectiveDateTime"])
        value = res.get("valueQuantity", {}).get("value")
        by_key.setdefault((codes[0][1], t), []).append((value, res))
    n = 0
    for r, e in readings:
        loinc, mdc, ucum = EXPECTED[(r.param, r.source)]
        t = r.time or e.t
        cands = by_key.get((loinc, t), [])
        vals = [v for v, _ in cands]
        if r.valid and r.value is not None:
            assert r.value in vals, (r, vals)
            res = next(res for v, res in cands if v == r.value)
            assert res["valueQuantity"]["code"] == ucum and res["valueQuantity"]["system"] == "http://unitsofmeasure.org"
            assert res["code"]["coding"][1] == {"system": MDC, "code": mdc, "display": res["code"]["coding"][1]["display"]}
        else:
            # a missing value is exported as absent with a reason, never as a number
            assert None in vals, (r, vals)
            res = next(res for v, res in cands if v is None)
            assert "dataAbsentReason" in res and "valueQuantity" not in res
        n += 1
    single = sum(len(v) for v in by_key.values())
    assert single == n == len(readings)


def test_bp_panel_components(session):
    _, doc, inp = session
    panels = [r for r in _resources(doc, "Observation")
              if any(c["code"] == "85354-9" for c in r["code"]["coding"])]
    assert len(panels) == len(inp["nibps"])
    got = sorted((datetime.fromisoformat(p["effectiveDateTime"]),
                  {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in p["component"]}) for p in panels)
    for (m, sys_, dia), (t, comps) in zip(inp["nibps"], got):
        assert t == rs.at(m)
        assert comps["8480-6"] == sys_ and comps["8462-4"] == dia


def test_medication_administrations(session):
    _, doc, inp = session
    mas = _resources(doc, "MedicationAdministration")
    inf = sorted([m for m in mas if "effectivePeriod" in m], key=lambda m: m["effectivePeriod"]["start"])
    # script: 150 mL/h 10'->46', 100 mL/h 46'->50', paused, 100 mL/h 53'->54'
    want = [(10, 46, 150.0, 0.75), (46, 50, 100.0, 0.5), (53, 54, 100.0, 0.5)]
    assert len(inf) == len(want)
    for m, (a, b, mlh, mgkgh) in zip(inf, want):
        assert datetime.fromisoformat(m["effectivePeriod"]["start"]) == rs.at(a)
        assert datetime.fromisoformat(m["effectivePeriod"]["end"]) == rs.at(b)
        assert m["dosage"]["rateQuantity"]["value"] == mlh and m["dosage"]["rateQuantity"]["code"] == "mL/h"
        assert m["dosage"]["extension"][0]["valueQuantity"]["value"] == mgkgh
        assert m["dosage"]["dose"]["value"] == pytest.approx(mlh * (b - a) / 60 * inp["conc"], abs=1e-3)
        assert m["contained"][0]["batch"]["lotNumber"] == inp["lot"]
    rescue = [m for m in mas if "effectiveDateTime" in m]
    assert len(rescue) == 1
    assert rescue[0]["medicationReference"]["display"] == "ondansetron"
    assert rescue[0]["dosage"]["dose"] == {"value": 4.0, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    assert rescue[0]["contained"][0]["batch"]["lotNumber"] == "OND-77"


def test_scales_and_alarms(session):
    _, doc, inp = session
    surveys = [r for r in _resources(doc, "Observation") if r["category"][0]["coding"][0]["code"] == "survey"]
    cadss = [r for r in surveys if r["code"]["coding"][0]["code"] == "cadss" and r["identifier"][0]["value"] == str(inp["cadss_seq"])]
    assert len(cadss) == 1
    # amended: the corrected score, status amended, the original quoted in a note
    assert cadss[0]["status"] == "amended" and cadss[0]["valueQuantity"]["value"] == 8
    assert any("was 12" in n["text"] for n in cadss[0]["note"])
    assert {r["code"]["coding"][0]["code"] for r in surveys} >= {"moaas", "cadss", "nausea", "aldrete", "padss"}
    issues = sorted(_resources(doc, "DetectedIssue"), key=lambda d: d["identifier"][0]["value"])
    assert [d["identifier"][0]["value"] for d in issues] == ["bp_sys_high#1", "spo2_low#2"]
    assert [d["severity"] for d in issues] == ["high", "moderate"]
    ack = [m for m in issues[0]["mitigation"] if m["action"]["coding"][0]["code"] == "acknowledged"]
    assert ack and ack[0]["author"]["display"] == "KB"
    assert datetime.fromisoformat(ack[0]["date"]) == rs.at(45 + 40 / 60)


def test_export_default_name(tmp_path):
    events, _ = rs.iv_session()
    db = tmp_path / "s.chairside"
    assert rs.write_session(db, events[:40])
    out = report_fhir.export(db, None)
    assert out == tmp_path / "s.fhir.json" and out.exists()
    Bundle.model_validate(json.loads(out.read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------- the default bundle
def _singles(doc):
    """(LOINC code, time, value) of every single vital-sign observation."""
    out = []
    for res in _resources(doc, "Observation"):
        codes = [(c["system"], c["code"]) for c in res["code"].get("coding", [])]
        if ((LOINC, "85354-9") in codes or res["category"][0]["coding"][0]["code"] != "vital-signs"
                or "effectivePeriod" in res):
            continue
        out.append((codes[0][1], datetime.fromisoformat(res["effectiveDateTime"]),
                    res.get("valueQuantity", {}).get("value")))
    return out


def test_default_bundle_keeps_every_nibp_and_the_alarm_readings_only(session):
    events, doc, inp = session
    readings = [(r, r.time or e.t) for e in events if isinstance(e, ReadingsRecorded) for r in e.readings]
    singles = set(_singles(doc))
    loinc = {k[0]: v[0] for k, v in EXPECTED.items()}
    # every NIBP reading of the script is there, with its value
    nibp = [(r, t) for r, t in readings if r.param.startswith("nibp_")]
    assert len(nibp) == 3 * len(inp["nibps"])
    for r, t in nibp:
        assert (loinc[r.param], t, r.value) in singles
    # the SpO2 alarm of the script (raised 51:00, cleared 54:00): each SpO2 reading in it is kept
    raised = next(e for e in events if e.kind == "alarm_raised" and e.param == "spo2")
    cleared = next(e for e in events if e.kind == "alarm_cleared" and e.alarm_id == raised.alarm_id)
    in_alarm = [(r, t) for r, t in readings if r.param == "spo2" and raised.t <= t <= cleared.t]
    assert len(in_alarm) >= 30  # every 5 s for 3 minutes
    for r, t in in_alarm:
        assert (loinc["spo2"], t, r.value) in singles
    # and the continuous readings far from any alarm are not single observations
    far = [(r, t) for r, t in readings if r.param == "hr" and t < rs.at(30)]
    assert far and not any((loinc["hr"], t, r.value) in singles for r, t in far)
    assert len(singles) < len(readings) / 3


def _minute(t):
    return t.replace(second=0, microsecond=0)


def test_per_minute_summaries_match_the_readings(session):
    """Median, minimum and maximum of each minute, computed here from the readings of the
    file with the statistics module, against the components of the summary observations."""
    import statistics

    events, doc, _ = session
    expected: dict[tuple, list] = {}
    missing: dict[tuple, int] = {}
    for e in events:
        if not isinstance(e, ReadingsRecorded):
            continue
        for r in e.readings:
            if r.param.startswith("nibp_"):
                continue
            key = (EXPECTED[(r.param, r.source)][0], _minute(r.time or e.t))
            if r.valid and r.value is not None:
                expected.setdefault(key, []).append(r.value)
            else:
                missing[key] = missing.get(key, 0) + 1
    got = {}
    for res in _resources(doc, "Observation"):
        if "effectivePeriod" not in res or res["category"][0]["coding"][0]["code"] != "vital-signs":
            continue
        start = datetime.fromisoformat(res["effectivePeriod"]["start"])
        end = datetime.fromisoformat(res["effectivePeriod"]["end"])
        assert (end - start).total_seconds() == 60
        key = (res["code"]["coding"][0]["code"], start)
        assert key not in got, f"two summaries for {key}"
        got[key] = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in res.get("component", [])}
        if not got[key]:
            assert "dataAbsentReason" in res  # a minute with no valid value: absent, never zero
    assert set(got) == set(expected) | set(missing)
    for key, values in expected.items():
        assert got[key] == {"median": statistics.median(values), "minimum": min(values),
                            "maximum": max(values)}, key
    # the script's gap (70-72 min) has no SpO2 value: those minutes are absent, not zero
    gap = [k for k in missing if k not in expected]
    assert all(got[k] == {} for k in gap)
