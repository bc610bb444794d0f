"""Table-driven tests GENERATED from the limits data files (src/chairside/data/limits/*.toml).

Each case is built by reading the TOML directly (not through the engine), so a changed
number changes the tests: for every limit of every phase, a value just beyond it raises
the alarm at the tier's priority after the tier's delay (or confirmation count), and not
before; a value just inside it never reaches that priority. Hysteresis margins, latching,
combined conditions, technical timings, escalation, audio pause, reminders and the gate
are generated the same way.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from alarms_support import PROFILES, RANK, Harness, at, num, raw

from chairside.domain.protocol import load_template

PROTOCOLS_DIR = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data" / "protocols"


def _protocol_raw(name: str) -> dict:
    return tomllib.loads((PROTOCOLS_DIR / f"{name}.toml").read_text(encoding="utf-8"))

EPS = 0.1
OPS = {">=": lambda v, lim: v >= lim, ">": lambda v, lim: v > lim, "<": lambda v, lim: v < lim,
       "<=": lambda v, lim: v <= lim}
REL_BASE = {"nibp_sys": 100.0, "nibp_dia": 60.0, "hr": 70.0, "spo2": 98.0}
CONTINUOUS = {"spo2", "hr", "pr", "rr"}


def just_beyond(op: str, lim: float, eps: float = EPS) -> float:
    return {">=": lim, ">": lim + eps, "<": lim - eps, "<=": lim}[op]


def just_inside(op: str, lim: float, eps: float = EPS) -> float:
    return {">=": lim - eps, ">": lim, "<": lim, "<=": lim + eps}[op]


def delay(t: dict) -> float:
    return num(t["delay_s"]) if "delay_s" in t else 0.0


def tier_limit(ld: dict, t: dict) -> float:
    return float(t["limit"]) + (REL_BASE[ld["param"]] if ld.get("relative") else 0.0)


def expected_cont(ld: dict, tiers: list[dict], v: float, elapsed: float) -> int:
    return max((RANK[t["priority"]] for t in tiers
                if OPS[ld["op"]](v, tier_limit(ld, t)) and delay(t) <= elapsed + 1e-9), default=0)


def expected_disc(ld: dict, tiers: list[dict], v: float, n: int) -> int:
    best = 0
    for t in tiers:
        if OPS[ld["op"]](v, tier_limit(ld, t)) and n >= t.get("confirm", 1):
            r = RANK[t["priority"]]
            if t.get("escalate_after") and n >= t["escalate_after"]:
                r = RANK[t["escalate_to"]]
            best = max(best, r)
    return best


def rank_of(h: Harness, rule: str) -> int:
    p = h.priority(rule)
    return 0 if p is None else RANK[p]


def _ladder_cases(kind: str):
    for prof in PROFILES:
        for ld in raw(prof).get("ladder", []):
            if (kind == "reading") != ("param" in ld):
                continue
            phases = sorted({ph for t in ld["tiers"] for ph in t["phases"]})
            for ph in phases:
                tiers = [t for t in ld["tiers"] if ph in t["phases"]]
                for i, t in enumerate(tiers):
                    yield pytest.param(prof, ld, ph, i,
                                       id=f"{prof}-{ld['name']}-{ph}-{t['priority']}-{t['limit']:g}")


READING_CASES = list(_ladder_cases("reading"))
OBS_CASES = list(_ladder_cases("observation"))


def test_cases_were_generated():
    # the data files hold many limits; an empty parametrisation would test nothing
    assert len(READING_CASES) >= 40 and len(OBS_CASES) >= 10


def _harness(prof: str, ld: dict, phase: str) -> Harness:
    base = (REL_BASE["nibp_sys"], REL_BASE["nibp_dia"], REL_BASE["hr"], REL_BASE["spo2"]) if ld.get("relative") else None
    return Harness(prof, phase=phase, baseline=base)


def _feed(h: Harness, ld: dict, s: float, v: float) -> None:
    if ld["param"] in CONTINUOUS:
        h.reading(s, ld["param"], v)
    else:
        h.nibp(s, **{{"nibp_sys": "sys", "nibp_dia": "dia", "nibp_map": "mean"}[ld["param"]]: v})


@pytest.mark.parametrize("prof,ld,phase,i", READING_CASES)
def test_value_just_beyond_raises_at_its_priority_after_its_delay(prof, ld, phase, i):
    tiers = [t for t in ld["tiers"] if phase in t["phases"]]
    t = tiers[i]
    lim = tier_limit(ld, t)
    v = just_beyond(ld["op"], lim)
    h = _harness(prof, ld, phase)
    name = ld["name"]
    if ld["param"] in CONTINUOUS:
        d = delay(t)
        times = sorted({float(s) for s in range(0, int(d) + 3)} | ({d - EPS} if d > 0 else set()) | {d})
        for s in times:
            _feed(h, ld, s, v)
            assert rank_of(h, name) == expected_cont(ld, tiers, v, s), (name, phase, v, s)
            if s < d - 1e-9:
                assert rank_of(h, name) < RANK[t["priority"]], f"{name} reached {t['priority']} before its delay"
        assert h.priority(name) == t["priority"]
    else:
        n_max = max(t.get("confirm", 1), t.get("escalate_after", 0), 1) + 1
        for n in range(1, n_max + 1):
            _feed(h, ld, 30.0 * (n - 1), v)
            assert rank_of(h, name) == expected_disc(ld, tiers, v, n), (name, phase, v, n)
            if n < t.get("confirm", 1):
                assert rank_of(h, name) < RANK[t["priority"]]
            if n == t.get("confirm", 1):
                assert rank_of(h, name) >= RANK[t["priority"]]
    a = h.alarm(name)
    assert a is not None and a.alarm_class == "physiological" and a.param == ld["param"]
    ev = h.evidence(name)[0]  # raised by this rule, or escalated to it within its group's alarm
    assert ev.source_tag in ("[P]", "[P*]", "[S]", "[C]") and ev.value == pytest.approx(v)
    # the raise event names a limit of this ladder
    assert ev.limit in [pytest.approx(tier_limit(ld, x)) for x in tiers]


@pytest.mark.parametrize("prof,ld,phase,i", READING_CASES)
def test_value_just_inside_does_not_reach_its_priority(prof, ld, phase, i):
    tiers = [t for t in ld["tiers"] if phase in t["phases"]]
    t = tiers[i]
    v = just_inside(ld["op"], tier_limit(ld, t))
    h = _harness(prof, ld, phase)
    name = ld["name"]
    if ld["param"] in CONTINUOUS:
        end = int(max(delay(x) for x in tiers)) + 5
        for s in range(0, end):
            _feed(h, ld, float(s), v)
            assert rank_of(h, name) == expected_cont(ld, tiers, v, s), (name, v, s)
    else:
        # as many readings as the confirmations need; consecutive escalation is tested apart
        n_max = max(x.get("confirm", 1) for x in tiers)
        for n in range(1, n_max + 1):
            _feed(h, ld, 30.0 * (n - 1), v)
        assert rank_of(h, name) == expected_disc(ld, tiers, v, n_max)
    others = [x for j, x in enumerate(tiers) if j != i and RANK[x["priority"]] >= RANK[t["priority"]]
              and OPS[ld["op"]](v, tier_limit(ld, x))]
    if not others:  # (SpO2 has two high tiers: < 85 for 10 s and any < 80)
        assert rank_of(h, name) < RANK[t["priority"]]


@pytest.mark.parametrize("prof,ld,phase,i", [c for c in READING_CASES if c.values[3] == 0])
def test_clears_only_inside_by_the_margin(prof, ld, phase, i):
    """The least severe tier: back inside by less than clear_margin keeps the alarm;
    by more than the margin clears it (or leaves it latched, for a latching priority)."""
    tiers = [t for t in ld["tiers"] if phase in t["phases"]]
    op = ld["op"]
    above = op in (">=", ">")
    outer = min(tier_limit(ld, t) for t in tiers) if above else max(tier_limit(ld, t) for t in tiers)
    least = [t for t in tiers if tier_limit(ld, t) == outer][0]
    margin = num(ld["clear_margin"])
    latch = [RANK[p] for p in raw(prof).get("behaviour", {}).get("latch_priorities", ["high"])]
    h = _harness(prof, ld, phase)
    name = ld["name"]
    s = 0.0
    n_feed = int(delay(least)) + 2 if ld["param"] in CONTINUOUS else least.get("confirm", 1)
    for _ in range(n_feed):
        _feed(h, ld, s, just_beyond(op, outer))
        s += 1.0
    assert h.priority(name) == least["priority"]
    band = outer - margin / 2 if above else outer + margin / 2  # inside, but not by the margin
    band = just_inside(op, outer) if margin == 0 else band
    if margin > 0:
        _feed(h, ld, s, band)
        s += 1.0
        assert h.alarm(name) is not None, "cleared inside the hysteresis band"
    out = outer - margin - EPS if above else outer + margin + EPS
    _feed(h, ld, s, out)
    a = h.alarm(name)
    if RANK[least["priority"]] in latch:
        assert a is not None and a.latched and not a.acknowledged
        h.events += h.e.acknowledge(a.id, "RN", at(s + 1))
        assert h.alarm(name) is None
        assert h.kinds(name)[-2:] == ["alarm_acknowledged", "alarm_cleared"]
    else:
        assert a is None
        assert h.kinds(name)[-1] == "alarm_cleared"


def _obs_kw(ld: dict, v: float) -> dict:
    vf = ld.get("value_from", "score")
    if vf == "score":
        return {"score": v}
    if vf.startswith("item:"):
        return {"items": {vf[5:]: v}}
    if vf == "max_item":
        return {"items": {"a": 1, "b": v}}
    if vf == "count_items":
        n = int(v)
        return {"items": {f"symptom{k}": k < n for k in range(max(n, 1) + 1)}}
    raise AssertionError(vf)


@pytest.mark.parametrize("prof,ld,phase,i", OBS_CASES)
def test_observation_beyond_and_inside(prof, ld, phase, i):
    tiers = [t for t in ld["tiers"] if phase in t["phases"]]
    t = tiers[i]
    name = ld["name"]
    vb = just_beyond(ld["op"], float(t["limit"]), 1.0)
    vi = just_inside(ld["op"], float(t["limit"]), 1.0)
    h = Harness(prof, phase=phase)
    h.obs(0, ld["scale"], **_obs_kw(ld, vb))
    assert rank_of(h, name) == expected_disc(ld, tiers, vb, 1) == RANK[t["priority"]]
    h2 = Harness(prof, phase=phase)
    h2.obs(0, ld["scale"], **_obs_kw(ld, vi))
    assert rank_of(h2, name) == expected_disc(ld, tiers, vi, 1) < RANK[t["priority"]]


def test_observation_rules_do_not_apply_outside_their_phases():
    for prof in PROFILES:
        for ld in raw(prof).get("ladder", []):
            if "scale" not in ld:
                continue
            phases = {ph for t in ld["tiers"] for ph in t["phases"]}
            for ph in {"pre_infusion", "infusion", "recovery"} - phases:
                t = ld["tiers"][-1]
                h = Harness(prof, phase=ph)
                h.obs(0, ld["scale"], **_obs_kw(ld, just_beyond(ld["op"], float(t["limit"]), 1.0)))
                assert h.alarm(ld["name"]) is None, (prof, ld["name"], ph)


# ---------------------------------------------------------------- combined conditions
def _combined_cases():
    for prof in PROFILES:
        for c in raw(prof).get("combined", []):
            for ph in c["phases"]:
                yield pytest.param(prof, c, ph, id=f"{prof}-{c['name']}-{ph}")


def _apply_term(h: Harness, term: dict, s: float, v: float) -> None:
    p = term["param"]
    if "value_from" in term:
        kw = _obs_kw({"value_from": term["value_from"]}, v)
        h.obs(s, p, **kw)
    elif p in CONTINUOUS:
        h.reading(s, p, v)
    else:
        h.nibp(s, **{{"nibp_sys": "sys", "nibp_dia": "dia", "nibp_map": "mean"}[p]: v})


@pytest.mark.parametrize("prof,c,phase", list(_combined_cases()))
def test_combined_condition_all_terms_beyond(prof, c, phase):
    d = num(c["delay_s"])
    eps = {t["param"]: (1.0 if "value_from" in t else EPS) for t in c["when"]}
    vals = {t["param"]: just_beyond(t["op"], float(t["limit"]), eps[t["param"]]) for t in c["when"]}
    h = Harness(prof, phase=phase)
    s = 0.0
    for t in c["when"]:
        _apply_term(h, t, s, vals[t["param"]])
    while s < d + 2:
        s += 1.0
        for t in c["when"]:
            if t["param"] in CONTINUOUS:
                _apply_term(h, t, s, vals[t["param"]])
        h.tick(s)
        if s < d - 1e-9:
            assert h.alarm(c["name"]) is None, f"{c['name']} before its delay"
    a = h.alarm(c["name"])
    assert a is not None and a.priority == c["priority"] and a.source_tag == c["source"]
    assert a.param == c["primary"]


@pytest.mark.parametrize("prof,c,phase", list(_combined_cases()))
def test_combined_condition_one_term_inside(prof, c, phase):
    d = num(c["delay_s"])
    for k, inside in enumerate(c["when"]):
        h = Harness(prof, phase=phase)
        for s in range(0, int(d) + 4):
            for j, t in enumerate(c["when"]):
                e = 1.0 if "value_from" in t else EPS
                v = just_inside(t["op"], float(t["limit"]), e) if j == k else just_beyond(t["op"], float(t["limit"]), e)
                if s == 0 or t["param"] in CONTINUOUS:
                    _apply_term(h, t, float(s), v)
            h.tick(float(s))
        assert h.alarm(c["name"]) is None, (c["name"], inside["param"])


# ---------------------------------------------------------------- technical alarms
@pytest.mark.parametrize("prof", PROFILES)
@pytest.mark.parametrize("infusing", [True, False])
def test_no_data_timings(prof, infusing):
    st = raw(prof)["settings"]
    med, high = num(st["no_data_medium_s"]), num(st["no_data_high_s"])
    tech = raw(prof)["technical"]["no_data"]
    h = Harness(prof, phase="infusion", infusing=infusing)
    h.reading(0, "hr", 72)
    h.tick(med - EPS)
    assert h.alarm("no_data") is None
    h.tick(med)
    a = h.alarm("no_data")
    assert a is not None and a.priority == tech["priority"] and a.alarm_class == "technical"
    h.tick(high - EPS)
    assert h.priority("no_data") == tech["priority"]
    h.tick(high + 1)
    want = "high" if (infusing and tech.get("high_while_infusing")) else tech["priority"]
    assert h.priority("no_data") == want
    h.reading(high + 2, "hr", 72)
    assert h.alarm("no_data") is None and h.kinds("no_data")[-1] == "alarm_cleared"


@pytest.mark.parametrize("prof", PROFILES)
@pytest.mark.parametrize("how", ["flag_sensor_off", "value_none", "marker", "status_probe_off"])
def test_spo2_probe_off_is_technical_never_a_desaturation(prof, how):
    st = raw(prof)["settings"]
    med, high = num(st["spo2_lost_medium_s"]), num(st["spo2_lost_high_s"])
    h = Harness(prof, phase="infusion", infusing=True)
    for s in range(0, 5):
        h.reading(s, "spo2", 97)
    end = int(high) + 30
    for s in range(5, end):
        h.reading(s, "hr", 72, tick=False)
        if how == "flag_sensor_off":
            h.reading(s, "spo2", 0.0, valid=False, flags=("sensor_off",))
        elif how == "value_none":
            h.reading(s, "spo2", None, valid=False, flags=("no_data",))
        elif how == "marker":
            h.reading(s, "spo2", None, valid=False, flags=("marker:-32767",))
        elif s == 5:
            h.status(s, "probe_off")
            h.tick(s)
        else:
            h.tick(s)
        lost = s - 5
        a = h.alarm("spo2_lost")
        if lost < med - 1e-9:
            assert a is None
        elif lost >= high:
            assert a is not None and a.priority == "high" and a.alarm_class == "technical"
        else:
            assert a is not None and a.priority == raw(prof)["technical"]["spo2_lost"]["priority"]
    assert not [e for e in h.raised() if e.alarm_class == "physiological"], "probe off became a physiological alarm"
    h.reading(end, "spo2", 97)
    assert h.alarm("spo2_lost") is None


@pytest.mark.parametrize("prof", PROFILES)
def test_nibp_overdue_after_cadence_plus_grace(prof):
    d = raw(prof)
    grace = num(d["settings"]["nibp_overdue_grace_s"])
    cadence = num(d["nibp_cadence"]["infusion"])
    h = Harness(prof, phase="infusion")
    h.nibp(0, 120, 80, 93)
    t = 0.0
    while t < cadence + grace - 5:
        t += 5
        h.reading(t, "hr", 72)
    h.reading(cadence + grace, "hr", 72)
    assert h.alarm("nibp_overdue") is None
    h.reading(cadence + grace + 1, "hr", 72)
    a = h.alarm("nibp_overdue")
    assert a is not None and a.priority == d["technical"]["nibp_overdue"]["priority"] and a.alarm_class == "technical"
    h.nibp(cadence + grace + 2, 121, 80, 94)
    assert h.alarm("nibp_overdue") is None


@pytest.mark.parametrize("prof", PROFILES)
def test_nibp_overdue_uses_the_template_cadence(prof):
    grace = num(raw(prof)["settings"]["nibp_overdue_grace_s"])
    tpl = load_template("generic")
    every = num(_protocol_raw("generic")["bp_cadence"]["infusion"]["every_min"]) * 60
    h = Harness(prof, phase="infusion", template=tpl)
    h.nibp(0, 120, 80, 93)
    for s in range(5, int(every + grace) + 1, 5):
        h.reading(float(s), "hr", 72)
    assert h.alarm("nibp_overdue") is None
    h.reading(every + grace + 1, "hr", 72)
    assert h.alarm("nibp_overdue") is not None


def _implausible_cases():
    for prof in PROFILES:
        for imp in raw(prof).get("implausible", []):
            for side in ("below", "above"):
                if side in imp:
                    yield pytest.param(prof, imp["param"], side, num(imp[side]), id=f"{prof}-{imp['param']}-{side}")


@pytest.mark.parametrize("prof,param,side,bound", list(_implausible_cases()))
def test_implausible_values_are_technical(prof, param, side, bound):
    h = Harness(prof, phase="infusion")
    bad = bound + 1 if side == "above" else bound - 1
    for s in range(0, 40):
        h.reading(s, param, bad)
    a = h.alarm(f"{param}_implausible")
    assert a is not None and a.alarm_class == "technical"
    assert a.priority == raw(prof)["technical"]["implausible"]["priority"]
    assert not h.raised(klass="physiological"), "an implausible value fed a physiological rule"
    h.reading(41, param, bound)  # the bound itself is plausible
    assert h.alarm(f"{param}_implausible") is None


@pytest.mark.parametrize("prof", PROFILES)
def test_sbp_not_above_dbp_is_technical(prof):
    h = Harness(prof, phase="infusion")
    h.nibp(0, sys=70, dia=75, mean=72)  # would be SBP low and MAP... if believed
    a = h.alarm("nibp_implausible")
    assert a is not None and a.alarm_class == "technical"
    assert not h.raised(klass="physiological")
    h.nibp(300, sys=70, dia=70, mean=70)
    assert h.alarm("nibp_implausible") is not None and not h.raised(klass="physiological")
    h.nibp(600, sys=120, dia=80, mean=93)
    assert h.alarm("nibp_implausible") is None


# ---------------------------------------------------------------- escalation, audio, reminders
def _medium_cont_tier(prof: str):
    """A continuous ladder's medium tier in infusion, from the data (to raise a medium alarm)."""
    for ld in raw(prof)["ladder"]:
        if ld.get("param") in CONTINUOUS:
            for t in ld["tiers"]:
                if "infusion" in t["phases"] and t["priority"] == "medium":
                    return ld, t
    raise AssertionError("no medium continuous tier")


@pytest.mark.parametrize("prof", PROFILES)
def test_medium_unacknowledged_is_reannounced_then_becomes_high(prof):
    st = raw(prof)["settings"]
    re_s, hi_s = num(st["escalation_reannounce_s"]), num(st["escalation_high_s"])
    ld, t = _medium_cont_tier(prof)
    v = just_beyond(ld["op"], float(t["limit"]))
    h = Harness(prof, phase="infusion")
    s = 0.0
    while h.priority(ld["name"]) != "medium":
        h.reading(s, ld["param"], v)
        s += 1
    t_med = s - 1
    name = ld["name"]
    while s <= t_med + hi_s + 2:
        h.reading(s, ld["param"], v)
        esc = [e for e in h.events if e.kind == "alarm_escalated" and e.rule == name]
        if s < t_med + re_s - 1e-9:
            assert not esc
        s += 1
    esc = [e for e in h.events if e.kind == "alarm_escalated" and e.rule == name]
    assert esc[0].reannounce and esc[0].from_priority == esc[0].to_priority == "medium"
    assert esc[0].mono == pytest.approx(t_med + re_s)
    assert esc[1].to_priority == "high" and esc[1].mono == pytest.approx(t_med + hi_s)
    assert h.priority(name) == "high" and h.alarm(name).latching


@pytest.mark.parametrize("prof", PROFILES)
def test_acknowledged_medium_does_not_escalate(prof):
    hi_s = num(raw(prof)["settings"]["escalation_high_s"])
    ld, t = _medium_cont_tier(prof)
    v = just_beyond(ld["op"], float(t["limit"]))
    h = Harness(prof, phase="infusion")
    for s in range(0, 30):
        h.reading(s, ld["param"], v)
    h.events += h.e.acknowledge(None, "RN", at(30))
    for s in range(31, int(hi_s) + 60, 5):
        h.reading(s, ld["param"], v)
    assert h.priority(ld["name"]) == "medium"
    assert not [e for e in h.events if e.kind == "alarm_escalated"]


@pytest.mark.parametrize("prof", PROFILES)
def test_audio_pause_lasts_the_profile_default(prof):
    pause = num(raw(prof)["settings"]["audio_pause_s"])
    ld, t = _medium_cont_tier(prof)
    v = just_beyond(ld["op"], float(t["limit"]))
    h = Harness(prof, phase="infusion")
    for s in range(0, 20):
        h.reading(s, ld["param"], v)
    assert h.e.audio_priority() == "medium"
    ev = h.e.pause_audio("RN", at(20))
    assert ev and ev[0].kind == "alarm_silenced" and ev[0].mode == "audio_paused" and ev[0].duration_s == pause
    assert ev[0].by == "RN"
    h.events += ev
    assert h.e.audio_priority() is None
    h.reading(20 + pause - 1, ld["param"], v)
    assert h.e.audio_priority() is None
    h.reading(20 + pause, ld["param"], v)
    assert h.e.audio_priority() == "medium"
    assert [e.mode for e in h.events if e.kind == "alarm_silenced"][-1] == "resumed"


@pytest.mark.parametrize("prof", PROFILES)
def test_reminder_while_audio_off_and_while_alarm_off(prof):
    rem = num(raw(prof)["settings"]["reminder_interval_s"])
    h = Harness(prof, phase="pre_infusion", infusing=False)
    h.events += h.e.audio_off("RN", at(0))
    h.events += h.e.alarm_off("hr_high", "RN", at(0))
    for s in range(1, int(3 * rem) + 2):
        h.reading(s, "hr", 72)
    rems = [e for e in h.events if e.kind == "alarm_silenced" and e.mode == "reminder"]
    audio = [e.mono for e in rems if e.alarm_id == "audio"]
    off = [e.mono for e in rems if e.alarm_id == "off:hr_high"]
    assert audio == [pytest.approx(rem * k) for k in (1, 2, 3)]
    assert off == [pytest.approx(rem * k) for k in (1, 2, 3)]


# ---------------------------------------------------------------- gate
def _gate_cases():
    for prof in PROFILES:
        for g in raw(prof).get("gate", []):
            yield pytest.param(prof, g, id=f"{prof}-{g['param']}{g['op']}{g['limit']:g}")


NORMAL = {"sbp": 120.0, "dbp": 75.0, "spo2": 98.0, "hr": 72.0}


@pytest.mark.parametrize("prof,g", list(_gate_cases()))
def test_gate_rule(prof, g):
    h = Harness(prof, phase="pre_infusion")
    vals = dict(NORMAL)
    vals[g["param"]] = just_beyond(g["op"], float(g["limit"]))
    r = h.e.gate(vals["sbp"], vals["dbp"], vals["spo2"], vals["hr"])
    assert g["reason"] in r.reasons
    assert RANK[r.level] >= RANK[g["level"]]
    assert r.source_tags[r.reasons.index(g["reason"])] == g["source"]
    if g.get("blocks_start"):
        assert r.blocks_start and not r.may_start("") and r.may_start("prescriber: benefit outweighs risk")
    vals[g["param"]] = just_inside(g["op"], float(g["limit"]))
    r2 = h.e.gate(vals["sbp"], vals["dbp"], vals["spo2"], vals["hr"])
    assert g["reason"] not in r2.reasons


@pytest.mark.parametrize("prof", PROFILES)
def test_gate_normal_values_pass(prof):
    r = Harness(prof, phase="pre_infusion").e.gate(**NORMAL)
    assert r.level is None and not r.blocks_start and r.reasons == ()
