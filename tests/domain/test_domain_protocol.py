"""Protocol templates: every shipped template loads with the numbers and tags of
../shared/clinical/limits-protocols-alarms.md (b); bad files are refused naming file and field."""

from __future__ import annotations

import json
import math
import shutil
import tomllib

import pytest

from chairside.cli import main
from chairside.domain.protocol import (
    PROTOCOLS_DIR,
    TAG_RE,
    ProtocolTemplate,
    TemplateError,
    bp_cadence_s,
    list_templates,
    load_template,
    template_names,
)

NAMES = {"iv-ketamine-depression", "iv-ketamine-chronic-pain", "esketamine", "generic"}
MIN = 60.0


def test_the_four_templates_ship_and_load():
    assert set(template_names()) == NAMES
    loaded = {t.name: t for t in list_templates()}
    assert set(loaded) == NAMES
    for t in loaded.values():
        assert isinstance(t, ProtocolTemplate)
        assert [p.name for p in t.phases][:3] == ["pre_infusion", "infusion", "recovery"]


def _numbers(node, path=""):
    """Every number in a raw TOML document, with its dotted path and its containing table."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, bool) or k.endswith(("_source", "_ref")):
                continue
            if isinstance(v, (int, float)) or (isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v)):
                yield f"{path}{k}", k, node
            else:
                yield from _numbers(v, f"{path}{k}.")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _numbers(v, f"{path}{i}.")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_number_has_a_source_tag(name):
    doc = tomllib.loads((PROTOCOLS_DIR / f"{name}.toml").read_text(encoding="utf-8"))
    seen = 0
    for path, key, table in _numbers(doc):
        tag = table.get(f"{key}_source")
        assert isinstance(tag, str) and TAG_RE.match(tag), f"{name}: {path} has no valid source tag"
        seen += 1
    assert seen >= 10
    t = load_template(name)
    assert t.source("recovery.min_minutes") and t.source("dosing.dose")


def test_depression_template():
    t = load_template("iv-ketamine-depression")
    d = t.dosing
    assert (d.basis, d.dose, d.duration_min, d.route) == ("mg_per_kg", 0.5, 40, "IV")
    assert d.sources["dose"] == "[P]" and d.sources["duration_min"] == "[P]"
    assert d.usual_min <= d.dose <= d.usual_max < d.hard_max
    assert t.limits_profile == "standard"
    assert bp_cadence_s(t, "infusion", 0) == 10 * MIN  # BP every 10 min [P]
    assert t.source("bp_cadence.infusion.every_min") == "[P]"
    assert bp_cadence_s(t, "recovery", 0) == 15 * MIN  # every 15 min in recovery [P]
    assert (t.recovery.min_minutes, t.recovery.counted_from, t.recovery.sources["min_minutes"]) == (30, "infusion_end", "[C]")
    x = t.discharge
    assert (x.score_rule, x.aldrete_min, x.padss_min, x.vitals_within_pct, x.moaas_required, x.cadss_max) == (
        "aldrete_or_padss", 9, 9, 20, 5, 4)
    assert x.escort_required
    assert (t.gate.baseline_bp_count, t.gate.baseline_interval_min) == (2, 5)


def test_chronic_pain_cadence_tightens_after_start_and_increase():
    t = load_template("iv-ketamine-chronic-pain")
    assert (t.dosing.basis, t.dosing.dose, t.dosing.unit) == ("mg_per_kg_h", 0.35, "mg/kg/h")
    c = t.bp_cadence["infusion"]
    assert set(c.tightened_after) == {"start", "rate_increase"}
    assert c.sources["tightened_every_min"] == "[S]"
    # every 5 min for 15 min after start/increase, otherwise every 15 min [S]
    assert bp_cadence_s(t, "infusion", 0) == 5 * MIN
    assert bp_cadence_s(t, "infusion", 14.9 * MIN) == 5 * MIN
    assert bp_cadence_s(t, "infusion", 15 * MIN) == 15 * MIN
    assert bp_cadence_s(t, "infusion", 3 * 3600) == 15 * MIN
    assert bp_cadence_s(t, "infusion", None) == 15 * MIN
    assert t.recovery.min_minutes >= 30 and t.recovery.counted_from == "infusion_end"


def test_esketamine_template():
    t = load_template("esketamine")
    d = t.dosing
    assert (d.basis, d.route, d.drug) == ("mg_fixed", "IN", "esketamine")
    assert d.allowed_doses == (56, 84) and d.device_mg == 28 and d.device_wait_min == 5
    assert (t.recovery.min_minutes, t.recovery.counted_from, t.recovery.sources["min_minutes"]) == (120, "start", "[P]")
    assert 40 in t.bp_cadence["recovery"].checkpoints_min
    assert t.rems is not None
    assert (t.rems.bp_at_min, t.rems.bp_guide_sys, t.rems.bp_guide_dia, t.rems.min_minutes) == (40, 140, 90, 120)
    for f in ("lot_number", "dose_mg", "bp_before_dosing", "bp_at_40_min", "bp_before_completion",
              "minutes_first_device_to_end_of_monitoring", "concomitant_benzodiazepines"):
        assert f in t.rems.fields
    assert set(t.discharge.resolved) >= {"sedation", "dissociation", "respiratory_depression"}
    assert t.drug == "esketamine" and t.min_recovery_min == 120  # report-friendly accessors


def test_generic_template_is_the_most_conservative():
    g = load_template("generic")
    others = [load_template(n) for n in NAMES - {"generic"}]
    assert g.limits_profile == "conservative"
    assert (g.recovery.min_minutes, g.recovery.counted_from) == (120, "infusion_end")
    assert all(g.recovery.min_minutes >= o.recovery.min_minutes for o in others)
    for phase in ("infusion", "recovery"):
        assert all(bp_cadence_s(g, phase, 1e6) <= bp_cadence_s(o, phase, 1e6) for o in others)
    assert all(o.limits_profile == "standard" for o in others)


def test_cadence_outside_scheduled_phases_is_infinite():
    assert math.isinf(bp_cadence_s(load_template("iv-ketamine-depression"), "discharged", 0))


def test_load_by_path(tmp_path):
    p = tmp_path / "iv-ketamine-depression.toml"
    shutil.copy(PROTOCOLS_DIR / p.name, p)
    assert load_template(p).name == "iv-ketamine-depression"
    assert load_template(str(p)).dosing.dose == 0.5


# ------------------------------------------------------------------ bad files


def _bad(tmp_path, old: str, new: str, name: str = "iv-ketamine-depression") -> str:
    text = (PROTOCOLS_DIR / f"{name}.toml").read_text(encoding="utf-8")
    assert old in text
    p = tmp_path / f"{name}.toml"
    p.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(TemplateError) as exc:
        load_template(p)
    return str(exc.value)


def test_error_names_file_and_field(tmp_path):
    msg = _bad(tmp_path, "duration_min = 40\n", "duration_min = 0\n")
    assert msg == "iv-ketamine-depression.toml: dosing.duration_min: must be > 0"


@pytest.mark.parametrize("old, new, expect", [
    ("[dosing]\n", "[dosing]\nspeed = 3\nspeed_source = \"[S]\"\n", "dosing.speed_source: tags a field 'speed'"),
    ("[dosing]\n", "[dosing]\nspeed = \"fast\"\n", "dosing.speed: unknown key"),
    ("dose_source = \"[P]\"\n", "", "dosing.dose: no source tag"),
    ("dose_source = \"[P]\"\n", "dose_source = \"published\"\n", "dosing.dose_source: 'published' is not a source tag"),
    ("[recovery]\nmin_minutes = 30", "[recovery]\nmin_minutes = -30", "recovery.min_minutes: must be > 0"),
    ("counted_from = \"infusion_end\"", "counted_from = \"lunch\"", "recovery.counted_from: must be one of"),
    ("[bp_cadence.infusion]\nevery_min = 10", "[bp_cadence.infusion]\nevery_min = \"10\"", "bp_cadence.infusion.every_min"),
    ("hard_max = 1.5\n", "hard_max = 0.9\n", "dosing.hard_max: must be >= usual_max"),
    ("aldrete_min = 9\n", "aldrete_min = 12\n", "discharge.aldrete_min: 12 is outside the aldrete scale"),
    ("scale = \"cadss\"", "scale = \"cads\"", "observations.0.scale: unknown scale 'cads'"),
    ("limits_profile = \"standard\"", "limits_profile = \"../etc\"", "limits_profile:"),
    ("name = \"iv-ketamine-depression\"", "name = \"other\"", "name: 'other' does not match the file name"),
    ("title = ", "title = [", "not valid TOML"),
])
def test_bad_templates_are_refused(tmp_path, old, new, expect):
    msg = _bad(tmp_path, old, new)
    assert msg.startswith("iv-ketamine-depression.toml: "), msg
    assert expect in msg, msg


def test_missing_section_is_named(tmp_path):
    text = (PROTOCOLS_DIR / "generic.toml").read_text(encoding="utf-8")
    head, _, tail = text.partition("[recovery]")
    tail = tail[tail.index("\n[discharge]"):]
    p = tmp_path / "generic.toml"
    p.write_text(head + tail, encoding="utf-8")
    with pytest.raises(TemplateError, match=r"^generic.toml: recovery: required$"):
        load_template(p)


def test_unknown_name():
    with pytest.raises(TemplateError, match="unknown protocol template 'nope'.*esketamine"):
        load_template("nope")


# ------------------------------------------------------------------ command


def test_protocols_command_lists(capsys):
    assert main(["protocols"]) == 0
    out = capsys.readouterr().out
    for n in NAMES:
        assert n in out
    assert "0.5 mg/kg IV over 40 min" in out and "conservative" in out and "120 min [P]" in out


def test_protocols_show_json(capsys):
    assert main(["protocols", "--show", "iv-ketamine-depression"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["name"] == "iv-ketamine-depression"
    assert doc["dosing"]["dose"] == 0.5 and doc["dosing"]["sources"]["dose"] == "[P]"
    assert doc["limits_profile"] == "standard"


def test_protocols_show_unknown_exits_2(capsys):
    assert main(["protocols", "--show", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown protocol template" in err
