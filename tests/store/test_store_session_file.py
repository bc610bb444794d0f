"""SessionFile: creation, chain, group commit, resume, append-only, bad files, threads."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import threading
from datetime import timedelta

import pytest
from store_testkit import (
    T0,
    attacker,
    clock,
    opened,
    raw_readings,
    raw_rows,
    recompute_chain,
    six_readings,
)

from chairside.domain import events as ev
from chairside.domain.readings import Reading
from chairside.domain.state import StateError
from chairside.store import NotASessionFile, SessionFile, SessionFileBusy, SessionFileError, verify


def _session(tmp_path, name="s.chairside"):
    c = clock()
    sf = SessionFile.create(tmp_path / name, opened(c), c)
    return sf, c


def test_create_mode_0600_even_with_open_umask(tmp_path):
    old = os.umask(0)
    try:
        sf, c = _session(tmp_path)
        c.advance(1)
        sf.append(ev.NoteAdded(t=c.now(), text="x", author="AB"))
        wal = tmp_path / "s.chairside-wal"
        assert stat.S_IMODE(os.stat(tmp_path / "s.chairside").st_mode) == 0o600
        assert wal.exists() and stat.S_IMODE(os.stat(wal).st_mode) == 0o600
        sf.close()
    finally:
        os.umask(old)


def test_wal_mode_and_full_sync(tmp_path):
    sf, _ = _session(tmp_path)
    assert sf._con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sf._con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    sf.close()


def test_chain_follows_the_documented_formula(tmp_path):
    sf, c = _session(tmp_path)
    for k in range(5):
        c.advance(1)
        sf.append_readings(six_readings(c.now(), k))
    c.advance(0.2)
    note = sf.append(ev.NoteAdded(t=c.now(), text="patient calm — ça va", author="AB"))
    obs = sf.append(ev.ObservationRecorded(t=c.now(), scale="cadss", score=4, author="AB"))
    sf.close()
    hashes = recompute_chain(tmp_path / "s.chairside")
    rows = raw_rows(tmp_path / "s.chairside")
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0][1] == "session_opened"
    assert note.seq == len(rows) - 1 and obs.seq == len(rows)
    assert hashes[-1] == sf.last_hash
    # the readings digests chain the batch's canonical bytes
    blobs = raw_readings(tmp_path / "s.chairside")
    for seq, kind, _t, body, _p, _h in rows:
        if kind == "readings_recorded":
            b = json.loads(body)
            assert "readings" not in b
            assert hashlib.sha256(blobs[seq]).hexdigest() == b["digest"]
            assert len(json.loads(blobs[seq])) == b["count"]
    assert set(blobs) == {r[0] for r in rows if r[1] == "readings_recorded"}
    assert verify(tmp_path / "s.chairside").ok


def test_canonical_readings_layout(tmp_path):
    """The batch bytes follow the documented row layout, times in µs since the epoch."""
    sf, c = _session(tmp_path)
    t = T0 + timedelta(seconds=1, microseconds=250)
    sf.append_readings([Reading(param="spo2", value=None, unit="%", valid=False, flags=("sensor_off",),
                                device_time=t, receive_time=t, source="spo2")])
    stored = sf.flush()
    sf.close()
    rows = json.loads(raw_readings(tmp_path / "s.chairside")[stored.seq])
    us = ((1772442000 + 1) * 1_000_000) + 250  # 2026-03-02T09:00:01.000250Z
    assert rows == [["spo2", None, "%", False, ["sensor_off"], us, us, "spo2", "device"]]


def test_events_round_trip_with_readings(tmp_path):
    sf, c = _session(tmp_path)
    sent = []
    for k in range(4):
        c.advance(0.5)
        rs = six_readings(c.now(), k)
        sent.extend(rs)
        sf.append_readings(rs)
    c.advance(0.1)
    sf.append(ev.AlarmRaised(t=c.now(), alarm_id="spo2_low#1", priority="medium", param="spo2", value=88))
    evs = sf.events()
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
    got = [r for e in evs if e.kind == "readings_recorded" for r in e.readings]
    assert got == sent  # values, validity, flags, instants, sources all survive
    assert any(r.value is None and not r.valid and r.flags == ("no_data",) for r in got)
    assert sf.readings("spo2") == [r for r in sent if r.param == "spo2"]
    sf.close()
    sf2 = SessionFile.open(tmp_path / "s.chairside", c, readonly=True)
    assert sf2.events() == evs
    sf2.close()


def test_group_commit_at_most_one_second_after_first_buffered(tmp_path):
    sf, c = _session(tmp_path)
    n0 = len(raw_rows(tmp_path / "s.chairside"))
    assert sf.append_readings(six_readings(c.now())) is None  # first reading at 0 s
    c.advance(0.6)
    assert sf.append_readings(six_readings(c.now())) is None
    c.advance(0.39)
    assert sf.tick() is None
    assert len(raw_rows(tmp_path / "s.chairside")) == n0  # nothing committed yet
    assert sf.next_commit_due == pytest.approx(1.0)
    c.advance(0.01)  # 1.0 s after the first buffered reading
    stored = sf.tick()
    assert stored is not None and stored.kind == "readings_recorded" and stored.count == 12
    assert len(raw_rows(tmp_path / "s.chairside")) == n0 + 1
    assert sf.pending_readings == 0 and sf.next_commit_due is None
    sf.close()


def test_buffered_readings_committed_before_a_clinical_event(tmp_path):
    sf, c = _session(tmp_path)
    sf.append_readings(six_readings(c.now()))
    c.advance(0.2)
    stored = sf.append(ev.InfusionStarted(t=c.now(), concentration_mg_ml=1.0, rate_mg_kg_h=0.75,
                                          rate_ml_h=54.4, author="AB"))
    rows = raw_rows(tmp_path / "s.chairside")
    assert [r[1] for r in rows] == ["session_opened", "readings_recorded", "infusion_started"]
    assert stored.seq == 3
    sf.close()


def test_flush_commits_now(tmp_path):
    sf, c = _session(tmp_path)
    sf.append_readings(six_readings(c.now()))
    stored = sf.flush()
    assert stored.count == 6
    assert sf.flush() is None
    sf.close()


def test_append_is_durable_before_it_returns(tmp_path):
    """Another connection sees the event as soon as append returns."""
    sf, c = _session(tmp_path)
    e = sf.append(ev.NoteAdded(t=c.now(), text="durable", author="AB"))
    other = sqlite3.connect(str(tmp_path / "s.chairside"))
    assert other.execute("SELECT kind FROM events WHERE seq = ?", (e.seq,)).fetchone() == ("note",)
    other.close()
    sf.close()


def test_resume_continues_the_chain(tmp_path):
    sf, c = _session(tmp_path)
    sf.append(ev.NoteAdded(t=c.now(), text="one", author="AB"))
    h = sf.last_hash
    sf.close()
    c.advance(30)
    sf = SessionFile.open(tmp_path / "s.chairside", c)
    assert sf.head_seq == 2 and sf.last_hash == h
    assert sf.opened.session_id == "sess-1"
    e = sf.append(ev.NoteAdded(t=c.now(), text="two", author="AB"))
    assert e.seq == 3
    sf.close()
    recompute_chain(tmp_path / "s.chairside")
    assert verify(tmp_path / "s.chairside").count == 3


def test_store_made_events_have_mono_since_opening(tmp_path):
    sf, c = _session(tmp_path)
    c.advance(2.5)
    sf.append_readings(six_readings(c.now()))
    stored = sf.flush()
    assert stored.mono == pytest.approx(2.5) and stored.t == T0 + timedelta(seconds=2.5)
    sf.close()
    c.advance(10)
    sf = SessionFile.open(tmp_path / "s.chairside", c)
    sf.append_readings(six_readings(c.now()))
    assert sf.flush().mono == pytest.approx(12.5)
    sf.close()


def test_triggers_refuse_update_and_delete(tmp_path):
    sf, c = _session(tmp_path)
    sf.append_readings(six_readings(c.now()))
    sf.flush()
    sf.close()
    con = sqlite3.connect(str(tmp_path / "s.chairside"))
    for sql in ("UPDATE events SET body = 'x' WHERE seq = 1", "DELETE FROM events WHERE seq = 2",
                "UPDATE readings SET count = 0", "DELETE FROM readings",
                "DELETE FROM meta", "UPDATE meta SET value = 'x' WHERE key = 'session_id'",
                "INSERT INTO events(seq, kind, t, body, prev_hash, hash) VALUES (9, 'note', '', '', '', '')"):
        with pytest.raises(sqlite3.IntegrityError, match="chairside"):
            con.execute(sql)
    con.close()
    assert verify(tmp_path / "s.chairside").ok


def test_create_refuses_an_existing_file(tmp_path):
    p = tmp_path / "s.chairside"
    p.write_bytes(b"precious")
    c = clock()
    with pytest.raises(SessionFileError, match="already exists"):
        SessionFile.create(p, opened(c), c)
    assert p.read_bytes() == b"precious"


@pytest.mark.parametrize("content", [b"", b"hello, this is not a database\n" * 10, b"SQLite format 3\x00short"])
def test_open_garbage_raises_one_line_and_changes_nothing(tmp_path, content):
    p = tmp_path / "bad.chairside"
    p.write_bytes(content)
    with pytest.raises(NotASessionFile) as info:
        SessionFile.open(p, clock())
    assert "\n" not in str(info.value) and str(p) in str(info.value)
    assert p.read_bytes() == content
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.chairside"]


def test_open_foreign_sqlite_refused(tmp_path):
    p = tmp_path / "other.db"
    con = sqlite3.connect(str(p))
    con.execute("CREATE TABLE events (x)")
    con.commit()
    con.close()
    before = p.read_bytes()
    with pytest.raises(NotASessionFile, match="not a chairside session file"):
        SessionFile.open(p, clock())
    assert p.read_bytes() == before


def test_open_missing_file(tmp_path):
    with pytest.raises(NotASessionFile, match="no such file"):
        SessionFile.open(tmp_path / "nope.chairside")


def test_open_damaged_refused_and_unchanged(tmp_path):
    sf, c = _session(tmp_path)
    sf.append(ev.NoteAdded(t=c.now(), text="abc", author="AB"))
    sf.close()
    con = attacker(tmp_path / "s.chairside")
    con.execute("UPDATE events SET body = replace(body, 'abc', 'abd') WHERE seq = 2")
    con.close()
    before = (tmp_path / "s.chairside").read_bytes()
    with pytest.raises(SessionFileError, match="seq 2") as info:
        SessionFile.open(tmp_path / "s.chairside", c)
    assert "\n" not in str(info.value)
    assert (tmp_path / "s.chairside").read_bytes() == before


def test_one_writer_per_file(tmp_path):
    sf, c = _session(tmp_path)
    with pytest.raises(SessionFileBusy):
        SessionFile.open(tmp_path / "s.chairside", c)
    ro = SessionFile.open(tmp_path / "s.chairside", c, readonly=True)  # readers are fine
    assert len(ro.events()) == 1
    ro.close()
    sf.close()


def test_second_session_opened_refused(tmp_path):
    sf, c = _session(tmp_path)
    with pytest.raises(ValueError):
        sf.append(opened(c))
    sf.close()


def test_reads_from_another_thread_while_writing(tmp_path):
    sf, c = _session(tmp_path)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        try:
            last = 0
            while not stop.is_set():
                evs = sf.events()
                seqs = [e.seq for e in evs]
                assert seqs == list(range(1, len(seqs) + 1))
                assert len(seqs) >= last
                last = len(seqs)
                sf.readings("hr")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    th = threading.Thread(target=reader)
    th.start()
    try:
        for k in range(300):
            c.advance(0.25)
            sf.append_readings(six_readings(c.now(), k))
            if k % 20 == 0:
                sf.append(ev.NoteAdded(t=c.now(), text=f"n{k}", author="AB"))
    finally:
        stop.set()
        th.join()
    sf.close()
    assert errors == []
    assert verify(tmp_path / "s.chairside").ok


def test_explicit_readings_event_is_stored_compactly(tmp_path):
    """A readings_recorded event appended as such (replay) keeps its own t/author."""
    sf, c = _session(tmp_path)
    rs = tuple(six_readings(c.now()))
    stored = sf.append(ev.ReadingsRecorded(t=T0 + timedelta(seconds=3), author="DEV", readings=rs))
    assert stored.count == 6 and stored.readings == rs and stored.t == T0 + timedelta(seconds=3)
    sf.close()
    body = json.loads(raw_rows(tmp_path / "s.chairside")[1][3])
    assert "readings" not in body and body["count"] == 6


def test_state_is_folded(tmp_path):
    sf, c = _session(tmp_path)
    sf.append(ev.NoteAdded(t=c.now(), text="x", author="AB"))
    live = sf.state
    assert live is not None and live.notes[-1].text == "x"
    sf.close()
    sf = SessionFile.open(tmp_path / "s.chairside", c)
    assert sf.state == live
    sf.close()


def test_event_the_domain_refuses_is_not_written(tmp_path):

    sf, c = _session(tmp_path)
    sf.append_readings(six_readings(c.now()))
    head = (sf.head_seq, sf.last_hash)
    before = raw_rows(tmp_path / "s.chairside")
    with pytest.raises(StateError):  # the phase is pre_infusion, not recovery
        sf.append(ev.PhaseChanged(t=c.now(), from_phase="recovery", to_phase="discharged", author="AB"))
    assert (sf.head_seq, sf.last_hash) == head and raw_rows(tmp_path / "s.chairside") == before
    assert sf.pending_readings == 6  # the buffered readings are still waiting, not lost
    closed = sf.append(ev.SessionClosed(t=c.now(), author="AB"))
    kinds = [r[1] for r in raw_rows(tmp_path / "s.chairside")]
    assert kinds == ["session_opened", "readings_recorded", "session_closed"] and closed.seq == 3
    with pytest.raises(StateError):
        sf.append(ev.NoteAdded(t=c.now(), text="after close", author="AB"))
    with pytest.raises(SessionFileError, match="closed"):
        sf.append_readings(six_readings(c.now()))
    sf.append(ev.Amendment(t=c.now(), target_seq=3, reason="typo", replacement={"reason": "done"}, author="AB"))
    live = sf.state
    assert live.closed and live.last_seq == 4
    sf.close()
    sf = SessionFile.open(tmp_path / "s.chairside", c)
    assert sf.state == live
    sf.close()


def test_a_non_finite_reading_is_stored_as_missing_not_lost(tmp_path):
    sf, c = _session(tmp_path)
    sf.append_readings([Reading(param="hr", value=float("nan"), unit="bpm", device_time=c.now(), source="ecg"),
                        Reading(param="hr", value=72, unit="bpm", device_time=c.now(), source="ecg")])
    stored = sf.flush()
    assert stored is not None and stored.count == 2
    sf.close()
    sf = SessionFile.open(tmp_path / "s.chairside", c, readonly=True)
    bad, good = sf.readings("hr")
    assert bad.value is None and bad.valid is False and "not_finite" in bad.flags
    assert good.value == 72.0 and good.valid
    sf.close()


def _varied_session(tmp_path):
    """A file with events of many kinds, returned with the events as the writer stored them."""
    from datetime import datetime

    from chairside.domain.readings import DeviceStatus

    sf, c = _session(tmp_path)
    stored = [sf.opened]
    for k in range(3):
        c.advance(1.0)
        sf.append_readings(six_readings(c.now(), k))
    naive = Reading(param="spo2", value=96.0, unit="%", device_time=datetime(2026, 1, 1, 9, 0, 1),
                    receive_time=c.now(), source="spo2")
    sf.append_readings([naive])
    stored.append(sf.flush())
    c.advance(0.5)
    for e in (
        ev.AlarmRaised(t=c.now(), alarm_id="spo2_low#1", priority="medium", param="spo2", value=88.0,
                       limit=90.0, source_tag="[P]", message="SpO₂ 88 % ≤ 90 %"),
        ev.DeviceStatusChanged(t=c.now(), status=DeviceStatus(kind="probe_off", param="spo2", detail="---"),
                               port="/dev/ttyUSB0", driver="masimo"),
        ev.ObservationRecorded(t=c.now(), author="AB", scale="cadss", score=12.0, items={"a": 1, "b": [2, 3]}),
        ev.InterventionGiven(t=c.now(), author="AB", drug="ondansetron", dose=4.0, dose_unit="mg", route="IV"),
        ev.NoteAdded(t=c.now(), author="AB", text="Patientin ruhig — café, 日本語"),
    ):
        stored.append(sf.append(e))
    stored.append(sf.append(ev.Amendment(t=c.now(), author="AB", target_seq=stored[-1].seq, reason="wording",
                                         replacement={"text": "calm"})))
    stored.append(sf.append(ev.SessionClosed(t=c.now(), author="AB")))
    evs = sf.events()
    sf.close()
    return tmp_path / "s.chairside", evs, c


def test_keep_events_gives_the_events_as_written_and_reads_the_file_once(tmp_path):
    path, written, c = _varied_session(tmp_path)
    assert {e.kind for e in written} >= {"readings_recorded", "alarm_raised", "device_status", "note",
                                          "observation_recorded", "intervention_given", "amendment"}
    sf = SessionFile.open(path, c, readonly=True, keep_events=True)
    assert sf._kept is not None and len(sf._kept) == len(written)
    got = sf.events()
    assert got == written
    assert [type(e) for e in got] == [type(e) for e in written]
    naive = [r for e in got if e.kind == "readings_recorded" for r in e.readings if r.device_time.tzinfo is None]
    assert len(naive) == 1  # a device clock without a zone comes back as it was recorded
    assert sf._kept is None  # handed over once; a second call reads the file
    assert sf.events() == written
    sf.close()
    plain = SessionFile.open(path, c, readonly=True)
    assert plain._kept is None and plain.events() == written
    plain.close()


def test_keep_events_stops_at_the_head_seen_when_opening(tmp_path):
    sf, c = _session(tmp_path)
    sf.append(ev.NoteAdded(t=c.now(), author="AB", text="one"))
    ro = SessionFile.open(tmp_path / "s.chairside", c, readonly=True, keep_events=True)
    sf.append(ev.NoteAdded(t=c.now(), author="AB", text="two"))  # the writer goes on
    assert [e.kind for e in ro.events()] == ["session_opened", "note"]
    ro.close()
    sf.close()


def test_keep_events_on_a_damaged_file_is_refused_like_any_open(tmp_path):
    path, written, c = _varied_session(tmp_path)
    con = attacker(path)
    seq = next(e.seq for e in written if e.kind == "readings_recorded")
    con.execute("DELETE FROM readings WHERE batch_seq = ?", (seq,))
    con.commit()
    con.close()
    with pytest.raises(SessionFileError, match=f"seq {seq}: its readings are missing"):
        SessionFile.open(path, c, readonly=True, keep_events=True)
