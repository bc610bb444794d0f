"""Observation scales and discharge scores: ranges and items as published in
../shared/clinical/limits-protocols-alarms.md (d), validation, totals, flags."""

from __future__ import annotations

import pytest

from chairside.domain.scales import (
    SCALES,
    ScaleError,
    aldrete_total,
    check_observation,
    get_scale,
    load_scales,
    padss_total,
)


def test_shipped_scales():
    assert set(SCALES) == {"cadss", "moaas", "rass", "nausea", "vomiting", "anxiety", "htn_symptoms", "bprs",
                           "aldrete", "padss", "phq9", "madrs", "pain"}


@pytest.mark.parametrize("name, lo, hi", [
    ("phq9", 0, 27),       # 9 items 0-3 (Kroenke 2001)
    ("madrs", 0, 60),      # 10 items 0-6 (Montgomery & Asberg 1979)
    ("pain", 0, 10),       # 11-point numeric rating scale
    ("cadss", 0, 92),      # 23 items 0-4, total 0-92 [P*]
    ("moaas", 0, 5),
    ("rass", -5, 4),
    ("nausea", 0, 10),
    ("anxiety", 0, 10),
    ("bprs", 4, 28),       # four items 1-7, subscale 4-28 [P*]
    ("aldrete", 0, 10),
    ("padss", 0, 10),
    ("htn_symptoms", 0, 7),
])
def test_ranges(name, lo, hi):
    s = get_scale(name)
    assert (s.min, s.max) == (lo, hi)
    assert s.check(lo) == lo and s.check(hi) == hi
    with pytest.raises(ScaleError, match=rf"{name}: score .* out of range"):
        s.check(hi + 1)
    with pytest.raises(ScaleError, match="out of range"):
        s.check(lo - 1)


def test_cadss_items():
    s = get_scale("cadss")
    assert len(s.items) == 23 and all((i.min, i.max) == (0, 4) for i in s.items)
    assert s.total({str(i): 4 for i in range(1, 24)}) == 92
    assert [f.priority for f in s.flags_for(5)] == ["low"]  # CADSS > 4 = dissociation [P]
    assert s.flags_for(4) == ()


def test_moaas_and_rass_labels():
    m = get_scale("moaas")
    assert m.label(5).startswith("Responds readily to name")
    assert "painful trapezius squeeze" in m.label(0)
    assert [f.priority for f in m.flags_for(3)] == ["medium"]
    assert {f.priority for f in m.flags_for(1)} == {"medium", "high"}
    r = get_scale("rass")
    assert r.label(4).startswith("Combative") and r.label(0) == "Alert and calm"
    assert r.label(-5).startswith("Unarousable")
    assert len(r.labels) == 10


def test_whole_numbers_and_types():
    with pytest.raises(ScaleError, match="whole number"):
        check_observation("moaas", 3.5)
    with pytest.raises(ScaleError, match="must be a number"):
        check_observation("nausea", "7")
    with pytest.raises(ScaleError, match="must be a number"):
        check_observation("nausea", True)
    with pytest.raises(ScaleError, match="a missing score is not a zero"):
        check_observation("anxiety", None)
    with pytest.raises(ScaleError, match="unknown scale"):
        check_observation("vas", 3)


def test_vomiting_is_an_open_count():
    v = get_scale("vomiting")
    assert v.check(0) == 0 and v.check(12) == 12
    with pytest.raises(ScaleError):
        v.check(-1)
    assert [f.priority for f in v.flags_for(1)] == ["medium"] and v.flags_for(0) == ()


def test_aldrete_items_and_total():
    s = get_scale("aldrete")
    assert [i.key for i in s.items] == ["activity", "respiration", "circulation", "consciousness", "spo2"]
    assert all((i.min, i.max) == (0, 2) and set(i.options) == {0, 1, 2} for i in s.items)
    assert "92%" in s.item("spo2").options[2]
    assert aldrete_total(dict(activity=2, respiration=2, circulation=2, consciousness=2, spo2=1)) == 9
    with pytest.raises(ScaleError, match=r"aldrete.activity: item score 3 out of range 0–2"):
        aldrete_total(dict(activity=3, respiration=2, circulation=2, consciousness=2, spo2=2))
    with pytest.raises(ScaleError, match="missing item.*spo2"):
        aldrete_total(dict(activity=2, respiration=2, circulation=2, consciousness=2))
    with pytest.raises(ScaleError, match="unknown item 'pain'"):
        aldrete_total(dict(pain=2))


def test_padss_bleeding_defaults_to_not_applicable():
    s = get_scale("padss")
    assert len(s.items) == 5
    assert s.item("bleeding").default == 2 and s.item("bleeding").default_source == "[S]"
    assert padss_total(dict(vital_signs=2, activity_mental_status=2, pain_nausea_vomiting=1, intake_output=2)) == 9
    assert s.check(score=9, items=dict(vital_signs=2, activity_mental_status=2, pain_nausea_vomiting=1,
                                       intake_output=2)) == 9
    with pytest.raises(ScaleError, match="does not match"):
        s.check(score=10, items=dict(vital_signs=2, activity_mental_status=2, pain_nausea_vomiting=1,
                                     intake_output=2))


def test_crisis_checklist_and_bprs():
    h = get_scale("htn_symptoms")
    assert h.check(items={"chest_pain": True, "seizure": False, "severe_headache": True, "shortness_of_breath": False,
                          "visual_disturbance": False, "reduced_consciousness": False, "focal_deficit": False}) == 2
    assert [f.priority for f in h.flags_for(1)] == ["high"]
    b = get_scale("bprs")
    items = dict(conceptual_disorganisation=1, hallucinatory_behaviour=4, suspiciousness=1, unusual_thought_content=1)
    assert b.check(items=items) == 7
    assert [f.priority for f in b.flags_for(7, items)] == ["medium"]  # any item >= 4
    with pytest.raises(ScaleError, match="bprs.suspiciousness: item score 0 out of range 1–7"):
        b.check(items={**items, "suspiciousness": 0})


def test_scale_file_errors_name_file_and_scale(tmp_path):
    p = tmp_path / "scales.toml"
    p.write_text('[bprs]\ntitle = "x"\nkind = "items"\nmin = 4\nmax = 30\nsource = "[P]"\n'
                 'items = [{ key = "a", text = "A", min = 1, max = 7 }]\n')
    with pytest.raises(ScaleError, match=r"^scales.toml: bprs: .*total range 4..30 does not match the items' 1..7"):
        load_scales(p)
    p.write_text('[moaas]\ntitle = "x"\nkind = "labelled"\nmin = 0\nmax = 2\nsource = "[P]"\nlabels = { "0" = "a" }\n')
    with pytest.raises(ScaleError, match=r"^scales.toml: moaas: .*labels must cover every score 0..2"):
        load_scales(p)
    p.write_text('[x]\ntitle = "x"\nkind = "numeric"\nmin = 0\nmax = 3\nsource = "[P]"\nspeed = 1\n')
    with pytest.raises(ScaleError, match=r"^scales.toml: x.speed: Extra inputs"):
        load_scales(p)
