"""Behaviour of the alarm engine: latching, acknowledgement, states, phases, combined
conditions, events, NIBP grouping, profile loading errors. Numbers come from the profile
data (``raw``), not from the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from alarms_support import LIMITS_DIR, Harness, at, num, raw

from chairside.alarms import AlarmEngine, AlarmOffRefused, LimitsError, load_profile
from chairside.domain.events import EventAdapter
from chairside.domain.readings import Reading

STD = raw("standard")


def ladder(name: str, prof: dict = STD) -> dict:
    return next(ld for ld in prof["ladder"] if ld["name"] == name)


def tier(name: str, phase: str, priority: str, prof: dict = STD) -> dict:
    return next(t for t in ladder(name, prof)["tiers"] if phase in t["phases"] and t["priority"] == priority)


SBP_HIGH_INF = float(tier("sbp_high", "infusion", "high")["limit"])  # 200 in table (a)
SBP_MED_INF = float(tier("sbp_high", "infusion", "medium")["limit"])  # 180
SBP_LOW_INF = float(tier("sbp_high", "infusion", "low")["limit"])  # 160
SBP_MARGIN = num(ladder("sbp_high")["clear_margin"])


def test_brief_severe_reading_latches_until_acknowledged():
    h = Harness(phase="infusion")
    h.nibp(0, sys=SBP_HIGH_INF + 10, dia=80, mean=110)
    a = h.alarm("sbp_high")
    assert a.priority == "high" and a.latching and not a.latched
    h.nibp(300, sys=SBP_LOW_INF - SBP_MARGIN - 10, dia=80, mean=95)  # back to normal
    a = h.alarm("sbp_high")
    assert a is not None and a.latched, "a high alarm must stay until acknowledged"
    assert h.e.audio_priority() == "high"
    ev = h.e.acknowledge(a.id, "RN", at(310))
    assert [e.kind for e in ev] == ["alarm_acknowledged", "alarm_cleared"]
    assert ev[0].by == "RN" and ev[0].author == "RN"
    assert h.alarm("sbp_high") is None


def test_acknowledged_high_stays_while_condition_persists():
    h = Harness(phase="infusion")
    h.nibp(0, sys=SBP_HIGH_INF + 5, dia=80, mean=110)
    a = h.alarm("sbp_high")
    h.events += h.e.acknowledge(None, "RN", at(5))
    a = h.alarm("sbp_high")
    assert a is not None and a.acknowledged and a.acknowledged_by == "RN"
    assert h.e.audio_priority() is None
    h.nibp(300, sys=SBP_HIGH_INF + 8, dia=80, mean=110)
    assert h.alarm("sbp_high").acknowledged
    h.nibp(600, sys=SBP_LOW_INF - SBP_MARGIN - 1, dia=80, mean=95)
    assert h.alarm("sbp_high") is None and h.kinds("sbp_high")[-1] == "alarm_cleared"


def test_medium_and_low_do_not_latch():
    h = Harness(phase="infusion")
    h.nibp(0, sys=SBP_MED_INF + 1, dia=80, mean=110)
    assert h.priority("sbp_high") == "medium" and not h.alarm("sbp_high").latching
    h.nibp(300, sys=SBP_LOW_INF - SBP_MARGIN - 1, dia=80, mean=95)
    assert h.alarm("sbp_high") is None
    # ...but they stay in the event list
    assert h.kinds("sbp_high") == ["alarm_raised", "alarm_cleared"]


def test_two_consecutive_severe_readings_escalate():
    t = tier("sbp_high", "infusion", "medium")
    n = t["escalate_after"]
    h = Harness(phase="infusion")
    for k in range(n):
        h.nibp(300 * k, sys=float(t["limit"]) + 2, dia=80, mean=110)
        if k < n - 1:
            assert h.priority("sbp_high") == "medium"
    assert h.priority("sbp_high") == t["escalate_to"]
    esc = [e for e in h.events if e.kind == "alarm_escalated"]
    assert esc and "consecutive" in esc[-1].reason and esc[-1].to_priority == t["escalate_to"]


def test_non_consecutive_severe_readings_do_not_escalate():
    t = tier("sbp_high", "infusion", "medium")
    h = Harness(phase="infusion")
    h.nibp(0, sys=float(t["limit"]) + 2, dia=80, mean=110)
    h.nibp(60, sys=float(t["limit"]) - 1, dia=80, mean=110)  # in the hysteresis band, not severe
    h.nibp(120, sys=float(t["limit"]) + 2, dia=80, mean=110)  # (well before the 5-min time escalation)
    assert h.priority("sbp_high") == "medium"


def test_nibp_set_is_evaluated_together_and_on_tick():
    h = Harness(phase="infusion")
    got = h.e.on_reading(Reading(param="nibp_sys", value=SBP_MED_INF + 1, unit="mmHg", device_time=at(0)), at(0))
    assert got == []  # waits for the rest of the measurement
    got = h.e.tick(at(1))
    assert [e.kind for e in got if e.rule == "sbp_high"] == ["alarm_raised"]


def test_resent_nibp_measurement_is_not_a_second_reading():
    t = tier("sbp_high", "infusion", "medium")
    h = Harness(phase="infusion")
    h.nibp(0, sys=float(t["limit"]) + 2, dia=80, mean=110)
    h.nibp(0, sys=float(t["limit"]) + 2, dia=80, mean=110)  # same measurement time: a resend
    assert h.priority("sbp_high") == "medium"


def test_alarm_off_refused_for_spo2_and_bp_while_infusing():
    h = Harness(phase="infusion", infusing=True)
    for target in ["spo2", "spo2_low", "nibp_sys", "sbp_high", "dbp_rise", "map_low", "spo2_lost",
                   "sedation_desaturation", "no_data"]:
        with pytest.raises(AlarmOffRefused):
            h.e.alarm_off(target, "RN", at(1))
    with pytest.raises(AlarmOffRefused):
        h.e.audio_off("RN", at(1))
    ev = h.e.alarm_off("hr_high", "RN", at(1))  # not SpO2/BP: allowed
    assert ev[0].mode == "alarm_off" and ev[0].by == "RN"
    with pytest.raises(ValueError):
        h.e.alarm_off("no_such_rule", "RN", at(1))


def test_alarm_off_for_spo2_allowed_before_dosing_and_cancelled_at_start():
    h = Harness(phase="pre_infusion", infusing=False)
    h.events += h.e.alarm_off("spo2", "RN", at(0))
    for s in range(0, 30):
        h.reading(s, "spo2", 80)
    assert h.alarm("spo2_low") is None
    h.events += h.e.set_phase("infusion", at(30))
    ev = h.e.set_infusing(True, at(30))
    assert any(e.kind == "alarm_silenced" and e.mode == "resumed" for e in ev)
    h.events += ev
    h.reading(31, "spo2", 79)
    assert h.priority("spo2_low") == "high"


def test_active_order_highest_first_then_oldest():
    h = Harness(phase="infusion")
    hr_low = tier("hr_high", "infusion", "low")
    for s in range(0, 12):
        h.reading(s, "hr", float(hr_low["limit"]) + 1)  # low after its delay
    h.nibp(20, sys=SBP_MED_INF + 1, dia=80, mean=100)  # medium
    h.obs(30, "anxiety", score=9)  # low, newer
    pr = [(a.priority, a.rule) for a in h.e.active()]
    assert pr[0] == ("medium", "sbp_high")
    lows = [r for p, r in pr if p == "low"]
    assert lows.index("hr_high") < lows.index("anxiety")
    assert h.e.audio_priority() == "medium"


def test_new_alarm_sounds_through_an_audio_pause():
    h = Harness(phase="infusion")
    h.nibp(0, sys=SBP_MED_INF + 1, dia=80, mean=100)
    h.events += h.e.pause_audio("RN", at(1))
    assert h.e.audio_priority() is None
    h.reading(2, "spo2", 70)  # any < 80: high at once
    assert h.e.audio_priority() == "high"
    assert h.alarm("sbp_high").audio_paused_until is not None


def test_phase_change_clears_rules_that_do_not_apply():
    h = Harness(phase="infusion", baseline=(110, 70, 70, 98))
    low = tier("sbp_rise", "infusion", "low")
    rise = float(low["limit"])
    for k in range(low.get("confirm", 1)):  # the advisory may wait for a repeat reading
        h.nibp(300 * k, sys=110 + rise + 1, dia=75, mean=95)
    assert h.priority("sbp_rise") == "low"
    ev = h.e.set_phase("recovery", at(10))
    assert [e.kind for e in ev if e.rule == "sbp_rise"] == ["alarm_cleared"]
    assert h.alarm("sbp_rise") is None


def test_no_relative_alarm_without_baseline():
    h = Harness(phase="infusion")
    h.nibp(0, sys=SBP_LOW_INF - 1, dia=95, mean=110)
    assert h.alarm("sbp_rise") is None and h.alarm("dbp_rise") is None


def test_htn_crisis_combined_alarm_and_symptom_flag():
    c = next(x for x in STD["combined"] if x["name"] == "htn_crisis")
    sbp_term = next(t for t in c["when"] if t["param"] == "nibp_sys")
    h = Harness(phase="infusion")
    h.nibp(0, sys=float(sbp_term["limit"]), dia=85, mean=110)
    assert h.alarm("htn_crisis") is None
    h.obs(60, "htn_symptoms", items={"severe_headache": True, "chest_pain": False})
    a = h.alarm("htn_crisis")
    assert a is not None and a.priority == "high" and a.value == float(sbp_term["limit"])
    assert h.priority("htn_symptoms") == "high"
    h.obs(120, "htn_symptoms", items={"severe_headache": False})
    assert h.alarm("htn_crisis").latched  # gone, but high latches
    h.events += h.e.acknowledge(None, "RN", at(130))
    assert h.alarm("htn_crisis") is None and h.alarm("htn_symptoms") is None


def test_sedation_with_desaturation_is_high():
    c = next(x for x in STD["combined"] if x["name"] == "sedation_desaturation")
    d = num(c["delay_s"])
    h = Harness(phase="infusion")
    h.obs(0, "moaas", score=3)
    for s in range(0, int(d) + 2):
        h.reading(s, "spo2", 91)
    assert h.priority("sedation_desaturation") == "high"
    assert h.priority("sedation") == "medium"  # MOAA/S <= 3 alone is medium


def test_events_name_rule_value_limit_source_and_times():
    h = Harness(phase="infusion")
    h.nibp(42, sys=SBP_MED_INF + 3, dia=80, mean=100)
    ev = h.raised("sbp_high")[0]
    assert ev.seq == -1 and ev.t == at(42) and ev.mono == pytest.approx(42.0)
    assert ev.rule == "sbp_high" and ev.value == SBP_MED_INF + 3 and ev.limit == SBP_MED_INF
    assert ev.source_tag == tier("sbp_high", "infusion", "medium")["source"]
    assert ev.author == "ALM" and ev.alarm_id == h.alarm("sbp_high").id
    # every event round-trips through the session's event union
    for e in h.events:
        assert EventAdapter.validate_json(EventAdapter.dump_json(e)) == e


def test_invalid_hr_never_feeds_the_hr_rules():
    h = Harness(phase="infusion")
    for s in range(0, 40):
        h.reading(s, "hr", None, valid=False, flags=("marker:-32767",))
        h.reading(s, "hr", 300.0, valid=False, flags=("questionable",))
    assert not h.raised(klass="physiological")


def test_continuous_delay_restarts_after_a_dropout():
    t = tier("spo2_low", "infusion", "medium")
    d = num(t["delay_s"])
    h = Harness(phase="infusion")
    v = float(t["limit"]) - 0.5
    for s in range(0, int(d) - 2):
        h.reading(s, "spo2", v)
    h.reading(d - 2, "spo2", None, valid=False, flags=("sensor_off",))
    for s in range(int(d) - 1, int(d) + 5):
        h.reading(s, "spo2", v)
    assert h.priority("spo2_low") != "medium"


def test_stale_reading_does_not_complete_a_delay():
    t = tier("spo2_low", "infusion", "medium")
    d = num(t["delay_s"])
    fresh = num(STD["settings"]["stale_factor"]) * num(STD["settings"]["continuous_cadence_s"])
    h = Harness(phase="infusion")
    h.reading(0, "spo2", float(t["limit"]) - 0.5)
    for s in range(1, int(d + fresh) + 5):
        h.reading(s, "hr", 72)  # other data flows, SpO2 stops
    # the SpO2 delay ran out long after the only low reading went stale: only if fresh covers it
    if fresh < d:
        assert h.alarm("spo2_low") is None


def test_gate_override():
    h = Harness(phase="pre_infusion")
    r = h.e.gate(185, 112, 97, 80)
    assert r.blocks_start and r.level == "high" and not r.may_start() and r.may_start("discussed with Dr X")
    assert "[S]" in r.source_tags


def test_limits_view_shows_phase_limits_with_source():
    h = Harness(phase="infusion")
    lims = {(x.rule, x.priority): x for x in h.e.limits("nibp_sys")}
    assert lims[("sbp_high", "medium")].limit == SBP_MED_INF
    assert lims[("sbp_high", "medium")].source_tag == tier("sbp_high", "infusion", "medium")["source"]


def test_engine_requires_aware_t0():
    from datetime import datetime
    with pytest.raises(ValueError):
        AlarmEngine(load_profile("standard"), t0=datetime(2026, 1, 1))


# ---------------------------------------------------------------- profile loading
def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_profile_errors_name_file_and_field(tmp_path):
    base = (LIMITS_DIR / "standard.toml").read_text(encoding="utf-8")
    p = _write(tmp_path, base.replace('audio_pause_s = { value = 120, source = "[S]"',
                                      'audio_pause_s = { value = 120, source = "[X]"'))
    with pytest.raises(LimitsError) as ei:
        load_profile(p)
    assert str(p) in str(ei.value) and "settings.audio_pause_s.source" in str(ei.value)

    p = _write(tmp_path, base.replace('priority = "high", limit = 200,', 'priority = "high", limit = 170,'))
    with pytest.raises(LimitsError) as ei:
        load_profile(p)
    assert "ladder[0]" in str(ei.value) and "sbp_high" in str(ei.value) and "less extreme" in str(ei.value)

    p = _write(tmp_path, base.replace("[settings]", "[settings]\nbogus = 1", 1))
    with pytest.raises(LimitsError) as ei:
        load_profile(p)
    assert "settings.bogus" in str(ei.value)

    p = _write(tmp_path, "schema = [")
    with pytest.raises(LimitsError, match="not valid TOML"):
        load_profile(p)
    with pytest.raises(LimitsError, match="no such limits profile"):
        load_profile("nonexistent")


def test_every_shipped_profile_loads_and_every_number_has_a_source():
    for p in LIMITS_DIR.glob("*.toml"):
        prof = load_profile(p.stem)
        assert prof.name == p.stem

        def walk(x, path=""):
            if isinstance(x, dict):
                if "value" in x:
                    assert x.get("source") in ("[P]", "[P*]", "[S]", "[C]"), f"{p.name}: {path}"
                if "limit" in x:
                    assert x.get("source") in ("[P]", "[P*]", "[S]", "[C]"), f"{p.name}: {path}"
                for k, v in x.items():
                    walk(v, f"{path}.{k}")
            elif isinstance(x, list):
                for i, v in enumerate(x):
                    walk(v, f"{path}[{i}]")
        walk(raw(p.stem))


def test_no_clinical_number_is_a_literal_in_the_engine():
    src = Path(__file__).resolve().parents[2] / "src" / "chairside" / "alarms"
    allowed = {0, 1, 0.0, 1.0, 1e-9, 60}  # identities, float tolerance, seconds per minute
    offenders = []
    files = sorted(f for f in src.glob("*.py") if f.name != "profile.py")  # profile.py: the schema only
    assert len(files) >= 7, files  # the engine and its rule families
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"))
        subscripts = {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
                    and not isinstance(node.value, bool) and node.value not in allowed
                    and id(node) not in subscripts):
                offenders.append(f"{f.name}:{node.lineno}: {node.value}")
    assert offenders == []


def test_conservative_is_at_least_as_tight_as_standard():
    """(b) D: the conservative profile's thresholds are never looser than table (a)'s."""
    cons = raw("conservative")
    for ld in STD["ladder"]:
        other = next((x for x in cons["ladder"] if x["name"] == ld["name"]), None)
        assert other is not None, ld["name"]
        above = ld["op"] in (">=", ">")
        for ph in ("infusion", "recovery"):
            for prio in ("low", "medium", "high"):
                a = [float(t["limit"]) for t in ld["tiers"] if ph in t["phases"] and t["priority"] == prio]
                b = [float(t["limit"]) for t in other["tiers"] if ph in t["phases"] and t["priority"] == prio]
                if a:
                    assert b, (ld["name"], ph, prio)
                    assert (min(b) <= min(a)) if above else (max(b) >= max(a)), (ld["name"], ph, prio)


def test_spo2_module_absent_is_signal_loss_and_classes_are_kept_apart():
    med = num(STD["settings"]["spo2_lost_medium_s"])
    h = Harness(phase="infusion")
    h.status(0, "module_absent", active=True, param="spo2")
    h.status(0, "module_absent", active=True, param="nibp")  # another group: not SpO2 loss
    for s in range(1, int(med) + 2):
        h.reading(s, "hr", 72)
    h.nibp(int(med) + 2, sys=SBP_MED_INF + 1, dia=80, mean=100)
    assert [a.rule for a in h.e.active("technical")] == ["spo2_lost"]
    assert [a.rule for a in h.e.active("physiological")] == ["sbp_high"]
    h.status(int(med) + 3, "module_absent", active=False, param="spo2")
    assert h.alarm("spo2_lost") is None


def test_spo2_loss_counts_through_a_pulse_search_after_the_probe_is_back():
    """Masimo: sensor off (status + dashes), then the probe is back but the oximeter searches
    (status ends, dashes go on). 'No SpO2 > spo2_lost_high_s while infusing' counts the
    whole time without a value; the alarm ends with the first valid SpO2."""
    st = STD["settings"]
    med, high = num(st["spo2_lost_medium_s"]), num(st["spo2_lost_high_s"])
    h = Harness(phase="infusion", infusing=True)
    h.reading(0, "spo2", 97)
    h.status(1, "probe_off", active=True)
    off_until = high - 5  # the probe is back before the high threshold...
    for s in range(1, int(off_until)):
        h.reading(s, "spo2", None, valid=False, flags=("sensor_off",))
    h.status(off_until, "probe_off", active=False)
    assert h.alarm("spo2_lost") is not None, "still no SpO2 value: the alarm stays"
    for s in range(int(off_until), int(high) + 5):  # ...but the search lasts past it
        h.reading(s, "spo2", None, valid=False, flags=("pulse_search",))
    assert h.priority("spo2_lost") == "high"
    assert [e.to_priority for e in h.events if e.kind == "alarm_escalated" and e.rule == "spo2_lost"] == ["high"]
    h.reading(high + 5, "spo2", 96)
    assert h.alarm("spo2_lost") is None
    assert h.kinds("spo2_lost") == ["alarm_raised", "alarm_escalated", "alarm_cleared"]
    assert med < off_until


def test_escalation_events_name_the_new_limit_and_its_source_tag():
    h = Harness(phase="infusion")
    med = tier("spo2_low", "infusion", "medium")
    hi = next(t for t in ladder("spo2_low")["tiers"] if "infusion" in t["phases"] and t["priority"] == "high"
              and "delay_s" not in t)  # "any < 80": no delay
    for s in range(0, int(num(med["delay_s"])) + 1):
        h.reading(s, "spo2", float(med["limit"]) - 1)
    assert h.priority("spo2_low") == "medium"
    h.reading(30, "spo2", float(hi["limit"]) - 1)
    esc = [e for e in h.events if e.kind == "alarm_escalated" and e.rule == "spo2_low"]
    assert esc[-1].to_priority == "high"
    assert f"{float(hi['limit']):g}" in esc[-1].reason and hi["source"] in esc[-1].reason
    t = tier("sbp_high", "infusion", "medium")
    h2 = Harness(phase="infusion")
    for k in range(t["escalate_after"]):
        h2.nibp(300 * k, sys=float(t["limit"]) + 2, dia=80, mean=110)
    esc = [e for e in h2.events if e.kind == "alarm_escalated" and e.rule == "sbp_high"]
    assert "consecutive" in esc[-1].reason and t["source"] in esc[-1].reason


def test_an_escalation_by_a_worse_reading_names_its_new_limit_and_source():
    """Item 9: every state change names the rule, the value, the limit and its source tag."""
    import tomllib
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from chairside.alarms import AlarmEngine, load_profile
    from chairside.domain.readings import Reading

    doc = tomllib.loads((Path(__file__).resolve().parents[2] / "src/chairside/data/limits/standard.toml").read_text())
    ladder = next(ld for ld in doc["ladder"] if ld["name"] == "sbp_high")
    tiers = sorted((t for t in ladder["tiers"] if "infusion" in t["phases"]), key=lambda t: t["limit"])
    low, high = tiers[0], tiers[-1]
    t0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
    e = AlarmEngine(load_profile("standard"), t0=t0, phase="infusion")
    e.set_infusing(True, t0)
    e.set_baseline(high["limit"] - 1, 80, 70, 98)  # no rise alarm of its own

    def bp(s, k):
        t = t0 + timedelta(minutes=5 * k)
        return [Reading(param="nibp_sys", value=s, unit="mmHg", device_time=t, source="nibp"),
                Reading(param="nibp_dia", value=80, unit="mmHg", device_time=t, source="nibp"),
                Reading(param="nibp_map", value=round((s + 160) / 3), unit="mmHg", device_time=t, source="nibp")], t

    events = []
    for k, value in enumerate((low["limit"] + 1, high["limit"] + 1), 1):
        rs, t = bp(value, k)
        for r in rs:
            events.extend(e.on_reading(r, t))
        events.extend(e.tick(t))
    esc = [x for x in events if x.kind == "alarm_escalated" and x.rule == "sbp_high"]
    assert esc, [x.kind for x in events]
    last = esc[-1]
    assert last.to_priority == high["priority"]
    assert last.limit == high["limit"] and last.source_tag == high["source"]
    assert last.value == high["limit"] + 1
