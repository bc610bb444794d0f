"""Property tests (hypothesis) of the alarm engine, on random scripts of readings, NIBP
measurements, observations, phase changes, acknowledgements, audio pauses and ticks.

1. No alarm without a reading beyond the limit for its delay (checked against the limits
   data file, independently of the engine).
2. Acknowledgement never removes the record of a latched alarm: a latching alarm is cleared
   only after it was acknowledged, and every raised, uncleared alarm is in ``active()``.
3. The same inputs give the same events.
"""

from __future__ import annotations

from datetime import timedelta

from alarms_support import RANK, T0, num, raw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chairside.alarms import AlarmEngine, load_profile
from chairside.domain.events import ObservationRecorded
from chairside.domain.readings import Reading

PROFILE = "standard"
DATA = raw(PROFILE)
PROF = load_profile(PROFILE)
BASELINE = (120.0, 75.0, 70.0, 98.0)
BASE = {"nibp_sys": BASELINE[0], "nibp_dia": BASELINE[1]}
PLAUS = {imp["param"]: (num(imp["below"]) if "below" in imp else float("-inf"),
                        num(imp["above"]) if "above" in imp else float("inf")) for imp in DATA["implausible"]}
OPS = {">=": lambda v, lim: v >= lim, ">": lambda v, lim: v > lim, "<": lambda v, lim: v < lim,
       "<=": lambda v, lim: v <= lim}
CONT = ("spo2", "hr", "pr")

dt = st.integers(0, 60).map(lambda x: x / 10.0)
values = {
    "spo2": st.one_of(st.integers(70, 100).map(float), st.none(), st.just(101.0)),
    "hr": st.one_of(st.integers(30, 160).map(float), st.none(), st.just(260.0)),
    "pr": st.one_of(st.integers(30, 160).map(float), st.none()),
}
op = st.one_of(
    st.tuples(st.just("r"), dt, st.just("spo2"), values["spo2"]),
    st.tuples(st.just("r"), dt, st.just("hr"), values["hr"]),
    st.tuples(st.just("r"), dt, st.just("pr"), values["pr"]),
    st.tuples(st.just("tick"), st.integers(0, 400).map(lambda x: x / 10.0)),
    st.tuples(st.just("nibp"), dt, st.integers(60, 230).map(float), st.integers(40, 130).map(float)),
    st.tuples(st.just("ack"), dt, st.booleans()),
    st.tuples(st.just("pause"), dt),
    st.tuples(st.just("obs"), dt, st.sampled_from(["moaas", "htn_symptoms", "rass"]), st.integers(0, 5)),
    st.tuples(st.just("phase"), dt, st.sampled_from(["pre_infusion", "infusion", "recovery"])),
)
scripts = st.lists(op, min_size=1, max_size=80)
# bias towards runs of one parameter held beyond a limit (so that delays do elapse)
runs = st.lists(
    st.tuples(st.sampled_from(CONT), st.integers(70, 160).map(float), st.integers(1, 25), dt),
    min_size=1, max_size=6,
).map(lambda rs: [("r", d, p, (min(v, 100.0) if p == "spo2" else v)) for p, v, n, d in rs for _ in range(n)])


def run(script):
    """Returns (events, log, phases, active_snapshots, latching): log = per-param list of
    (mono, value or None, valid); phases = list of (mono, phase)."""
    e = AlarmEngine(PROF, t0=T0)
    e.set_baseline(*BASELINE)
    events: list = []
    events += e.set_phase("infusion", T0)
    events += e.set_infusing(True, T0)
    log: dict[str, list] = {}
    phases = [(0.0, "infusion")]
    t = 0.0
    checks = []
    for item in script:
        kind = item[0]
        t += item[1]
        now = T0 + timedelta(seconds=t)
        mono = (now - T0).total_seconds()
        if kind == "r":
            _, _, p, v = item
            r = Reading(param=p, value=v, unit="", valid=v is not None, flags=() if v is not None else ("no_data",))
            pos = len(events)
            events += e.on_reading(r, now)
            ok = v is not None and PLAUS.get(p, (float("-inf"), float("inf")))[0] <= v <= PLAUS.get(p, (0, float("inf")))[1]
            log.setdefault(p, []).append((mono, v, ok, pos))
        elif kind == "nibp":
            _, _, sys_, dia = item
            pos = len(events)
            for p, v in (("nibp_sys", sys_), ("nibp_dia", dia)):
                events += e.on_reading(Reading(param=p, value=v, unit="mmHg", device_time=now), now)
            events += e.tick(now)
            for p, v in (("nibp_sys", sys_), ("nibp_dia", dia)):
                log.setdefault(p, []).append((mono, v, sys_ > dia, pos))
        elif kind == "tick":
            events += e.tick(now)
        elif kind == "ack":
            act = e.active()
            target = None if item[2] or not act else act[-1].id
            events += e.acknowledge(target, "RN", now)
        elif kind == "pause":
            events += e.pause_audio("RN", now)
        elif kind == "obs":
            _, _, scale, score = item
            items = {"headache": bool(score % 2)} if scale == "htn_symptoms" else {}
            o = ObservationRecorded(t=now, scale=scale, score=score, items=items, author="RN")
            events += e.on_observation(o, now)
        elif kind == "phase":
            events += e.set_phase(item[2], now)
            events += e.set_infusing(item[2] == "infusion", now)
            phases.append((mono, item[2]))
        checks.append((list(events), {a.id for a in e.active()}))
    events += e.tick(T0 + timedelta(seconds=t + 1))
    return events, log, phases, checks


def phase_at(phases, mono):
    ph = phases[0][1]
    for m, p in phases:
        if m <= mono + 1e-9:
            ph = p
    return ph


def _ladder(name):
    return next((ld for ld in DATA["ladder"] if ld["name"] == name), None)


def _limit(ld, t):
    return float(t["limit"]) + (BASE.get(ld["param"], 0.0) if ld.get("relative") else 0.0)


def check_no_alarm_without_reason(events, log, phases):
    for i, ev in enumerate(events):
        if ev.kind == "alarm_raised":
            prio, mono = ev.priority, ev.mono
        elif ev.kind == "alarm_escalated" and ev.reason.startswith("beyond"):
            prio, mono = ev.to_priority, ev.mono
        else:
            continue
        ld = _ladder(ev.rule)
        if ld is None or "param" not in ld:
            continue
        p = ld["param"]
        phase = phase_at(phases, mono)
        tiers = [t for t in ld["tiers"] if phase in t["phases"] and RANK[t["priority"]] == RANK[prio]]
        hist = [x[:3] for x in log.get(p, []) if x[3] <= i]  # readings processed before this event
        assert hist, f"{ev.rule} raised at {mono} with no reading of {p}"
        if p in CONT:
            ok = False
            for t in tiers:
                lim = _limit(ld, t)
                start = None
                for m, v, valid in reversed(hist):
                    if valid and OPS[ld["op"]](v, lim):
                        start = m
                    else:
                        break
                d = num(t["delay_s"]) if "delay_s" in t else 0.0
                if start is not None and mono - start >= d - 1e-6:
                    ok = True
            assert ok, f"{ev.rule} {prio} at {mono}: no reading beyond a {prio} limit for its delay: {hist[-8:]}"
        else:
            m, v, valid = hist[-1]
            all_tiers = [t for t in ld["tiers"] if phase in t["phases"]]
            assert valid and any(OPS[ld["op"]](v, _limit(ld, t)) for t in all_tiers), (ev.rule, v, mono)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(scripts, runs, st.tuples(runs, scripts).map(lambda x: x[0] + x[1])))
def test_no_alarm_without_a_reading_beyond_the_limit_for_its_delay(script):
    events, log, phases, _ = run(script)
    check_no_alarm_without_reason(events, log, phases)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(scripts, st.tuples(runs, scripts).map(lambda x: x[0] + x[1])))
def test_acknowledgement_never_removes_a_latched_alarm(script):
    _events, _log, _phases, checks = run(script)
    for events, active_ids in checks:
        latching: set[str] = set()
        acked: set[str] = set()
        cleared: set[str] = set()
        raised: set[str] = set()
        for ev in events:
            if ev.kind == "alarm_raised":
                raised.add(ev.alarm_id)
                if ev.latching:
                    latching.add(ev.alarm_id)
            elif ev.kind == "alarm_escalated" and ev.to_priority in DATA["behaviour"]["latch_priorities"]:
                if ev.alarm_id not in {x.alarm_id for x in events if x.kind == "alarm_raised"
                                       and x.alarm_class == "technical"}:
                    latching.add(ev.alarm_id)
            elif ev.kind == "alarm_acknowledged":
                acked.add(ev.alarm_id)
            elif ev.kind == "alarm_cleared":
                assert ev.alarm_id not in latching or ev.alarm_id in acked, \
                    f"latched alarm {ev.alarm_id} cleared without acknowledgement"
                cleared.add(ev.alarm_id)
        assert raised - cleared == active_ids, "active() and the event record disagree"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(scripts, st.tuples(runs, scripts).map(lambda x: x[0] + x[1])))
def test_same_inputs_give_the_same_events(script):
    a = run(script)[0]
    b = run(script)[0]
    assert [x.model_dump() for x in a] == [x.model_dump() for x in b]
