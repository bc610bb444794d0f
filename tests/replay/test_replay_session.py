"""Replay of a session file: the engine recomputes exactly the alarms recorded at the time
(same limits), shows the differences under other limits, and a seek lands on the state the
record holds at that moment.

The recording (``replay_kit.record``) runs the simulator's GE S/5 bytes through the driver
into the monitoring service on a clock that follows the simulated time; a scripted nurse
acknowledges, pauses the audio and the infusion, writes a note and stops. The expected values
below are read from that session file (what was recorded), never from the replay itself.
"""

from __future__ import annotations

import sys
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from replay_kit import record, surge_reactions  # noqa: E402

from chairside.replay import Replayer, load_recording  # noqa: E402
from chairside.store import SessionFile, read_session  # noqa: E402

LIMITS = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data" / "limits"
INFUSION_KINDS = {"infusion_started": "running", "infusion_paused": "paused", "infusion_resumed": "running",
                  "infusion_stopped": "stopped"}


@pytest.fixture(scope="module")
def surge_file(tmp_path_factory) -> Path:
    return record(tmp_path_factory.mktemp("replay") / "surge.chairside", reactions=surge_reactions())


@pytest.fixture(scope="module")
def recorded(surge_file):
    # the plain SQL read, not read_session's one pass that the replay itself loads with:
    # the comparisons below cross-check the two
    sf = SessionFile.open(surge_file, readonly=True)
    try:
        return sf.events()
    finally:
        sf.close()


def _alarm_key(e):
    return (e.kind, e.alarm_id, e.rule, e.t, getattr(e, "priority", None), getattr(e, "to_priority", None),
            getattr(e, "by", None), getattr(e, "value", None), getattr(e, "mode", None))


def test_the_recording_has_what_the_comparison_needs(recorded):
    kinds = [e.kind for e in recorded]
    # the scripted nurse reacted to a high alarm: the recording has raised, escalated (to high),
    # acknowledged and cleared alarm events, and clinical events between them
    assert "alarm_raised" in kinds and "alarm_acknowledged" in kinds and "alarm_cleared" in kinds
    assert any(e.kind == "alarm_escalated" and e.to_priority == "high" for e in recorded)
    assert kinds.count("infusion_paused") == 1 and kinds.count("infusion_stopped") == 1


def test_replay_recomputes_exactly_the_recorded_alarms(surge_file, recorded):
    r = Replayer(load_recording(surge_file), tolerance_s=0)
    r.run_to_end()
    want = [_alarm_key(e) for e in recorded if e.kind.startswith("alarm_")]
    got = [_alarm_key(e) for e in r.recomputed]
    assert got == want
    assert r.differences(until=r.end) == []
    assert r.problems == []
    # the clinical events were re-applied as recorded (author, time, content)
    clinical = {"checklist_completed", "baseline_recorded", "infusion_started", "phase_changed", "infusion_paused",
                "note", "infusion_stopped"}
    replayed = [e for e in r.service.store.events() if e.kind in clinical
                and not (e.kind == "note" and e.text.startswith("replay of"))]
    original = [e for e in recorded if e.kind in clinical]
    assert [(e.kind, e.t, e.author) for e in replayed] == [(e.kind, e.t, e.author) for e in original]
    assert r.readings == sum(len(e.readings) for e in recorded if e.kind == "readings_recorded")


def _sbp_tiers(profile: str, phase: str) -> dict[str, float]:
    doc = tomllib.loads((LIMITS / f"{profile}.toml").read_text())
    ladder = next(ld for ld in doc["ladder"] if ld["name"] == "sbp_high")
    return {t["priority"]: t["limit"] for t in ladder["tiers"] if phase in t["phases"]}


def test_replay_under_other_limits_shows_the_differences(surge_file):
    # the generic template's conservative profile raises the systolic alarm at other limits
    # during the infusion (the data files say so); the replay must report it
    assert _sbp_tiers("conservative", "infusion") != _sbp_tiers("standard", "infusion")
    r = Replayer(load_recording(surge_file), protocol="generic")
    r.run_to_end()
    diffs = r.differences(until=r.end)
    assert any(d.rule == "sbp_high" for d in diffs), [d.line() for d in diffs]
    assert r.summary()["differences"] == len(diffs) > 0


def _expected_at(recorded, t):
    """What the record says at ``t``: infusion state, last systolic, active alarm ids."""
    state = "not_started"
    sbp = None
    active: set[str] = set()
    for e in recorded:
        if e.kind in INFUSION_KINDS and e.t <= t:
            state = INFUSION_KINDS[e.kind]
        elif e.kind == "readings_recorded":
            for rd in e.readings:
                if rd.param == "nibp_sys" and rd.receive_time <= t and rd.value is not None:
                    sbp = rd.value
        elif e.kind == "alarm_raised" and e.t <= t:
            active.add(e.alarm_id)
        elif e.kind == "alarm_cleared" and e.t <= t:
            active.discard(e.alarm_id)
    return state, sbp, active


@pytest.mark.parametrize("order", [(26, 12, 45, 33, 5, 58), (58, 5, 45, 12, 33, 26)])
def test_seek_lands_on_the_recorded_state(surge_file, recorded, order):
    r = Replayer(load_recording(surge_file))
    for minute in order:
        t = r.start + timedelta(minutes=minute, seconds=10)
        r.seek(t)
        assert r.position == t
        snap = r.service.snapshot()
        state, sbp, active = _expected_at(recorded, t)
        assert snap.infusion.state == state, minute
        tile = snap.tile("nibp")
        assert tile.value == sbp, minute
        assert {a.alarm_id for a in snap.alarms} == active, minute


def test_seeking_back_and_forth_recomputes_the_same_alarms(surge_file):
    straight = Replayer(load_recording(surge_file))
    straight.run_to_end()
    r = Replayer(load_recording(surge_file))
    for m in (30, 10, 50, 20):
        r.seek(r.start + timedelta(minutes=m))
    r.seek(r.end)
    assert [_alarm_key(e) for e in r.recomputed] == [_alarm_key(e) for e in straight.recomputed]


def test_next_and_previous_alarm_and_event(surge_file, recorded):
    r = Replayer(load_recording(surge_file))
    onsets = sorted({e.t for e in recorded if e.kind == "alarm_raised"})
    clinical = sorted({e.t for e in recorded if e.kind in ("checklist_completed", "baseline_recorded",
                                                          "infusion_started", "phase_changed", "infusion_paused",
                                                          "note", "infusion_stopped")})
    seen = []
    while (t := r.next_alarm()) is not None:
        r.seek(t)
        seen.append(t)
    assert seen == onsets
    assert r.previous_alarm() == onsets[-2]
    r.seek(r.start)
    events = []
    while (t := r.next_event()) is not None:
        r.seek(t)
        events.append(t)
    assert events == [t for t in clinical if t > r.start]


def test_a_replay_recorded_into_a_session_file_verifies_and_says_what_it_is(surge_file, tmp_path):
    from chairside.store import verify

    out = tmp_path / "replayed.chairside"
    r = Replayer(load_recording(surge_file), session_out=out)
    r.run_to_end()
    r.close()
    assert verify(out).ok
    events = read_session(out).events
    notes = [e.text for e in events if e.kind == "note"]
    assert any("replay of the session file surge.chairside" in n for n in notes)
    src = SessionFile.open(surge_file, readonly=True)
    try:
        assert sum(1 for e in events if e.kind == "alarm_raised") == sum(
            1 for e in src.events() if e.kind == "alarm_raised")
    finally:
        src.close()
    # a session file is append-only: a replay recorded into one cannot seek back
    r2 = Replayer(load_recording(surge_file), session_out=tmp_path / "again.chairside")
    r2.seek(r2.start + timedelta(minutes=20))
    from chairside.service.model import CommandRefused

    with pytest.raises(CommandRefused, match="append-only"):
        r2.seek(r2.start + timedelta(minutes=10))
    r2.close()


def test_loading_pauses_the_collector_and_gives_it_back(surge_file, recorded, tmp_path):
    import gc

    from chairside.replay import ReplayError, collector_paused

    assert gc.isenabled()
    rec = load_recording(surge_file)
    assert gc.isenabled()
    # the one-pass read (open(keep_events=True)) gives the events the file holds
    assert rec.events_total == len(recorded) and rec.last_hash == recorded_hash(surge_file)
    assert [a for a in rec.recorded_alarms] == [e for e in recorded if e.kind.startswith("alarm_")]
    bad = tmp_path / "bad.chairside"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(ReplayError):
        load_recording(bad)
    assert gc.isenabled()  # given back after a refused file too
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # a caller who had it off keeps it off
    finally:
        gc.enable()


def recorded_hash(path):
    from chairside.store import verify

    return verify(path).last_hash
