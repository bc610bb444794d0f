"""The course index cannot be forged into the view, and the cheap summary still verifies
(issue 19): a row edited in the index, a row sealed under another key, a file changed in
place behind a restored mtime, are read again from the file; an edited readings batch or
event body makes the file damaged for the course exactly as ``chairside verify`` says.

The sessions are recorded through the real service and store with known inputs (one NIBP
of 150/92 is the peak); expected values come from those inputs."""

from __future__ import annotations

import os
import sqlite3
import zlib
from pathlib import Path

import pytest

from readings_kit import cont, nibp
from chairside.domain.clock import ManualClock
from chairside.reports.course import summarize
from chairside.reports.course_index import INDEX_NAME, CourseIndex, index_key
from chairside.service import MonitorService
from chairside.store import verify

KEY_A, KEY_B = b"a" * 32, b"b" * 32


def record(path: Path, pid: str, sbp: int, dbp: int) -> Path:
    clock = ManualClock()
    svc = MonitorService(clock=clock, session_dir=path.parent)
    try:
        svc.open_session(patient_id=pid, weight_kg=70, staff=["AB"], weight_confirmed_by="CD", path=path)
        for i in range(5):
            clock.advance(60)
            svc.feed(cont(clock) + nibp(clock, sbp if i == 2 else 120, dbp if i == 2 else 75))
        svc.close_session(author="AB")
    finally:
        svc.shutdown()
    return path


@pytest.fixture
def folder(tmp_path):
    record(tmp_path / "a.chairside", "P-A", 150, 92)
    record(tmp_path / "b.chairside", "P-B", 171, 99)
    return tmp_path


def peaks(summaries):
    return {Path(s.path).name: (s.status, s.peak_sbp, s.peak_dbp) for s in summaries}


def test_the_summary_reads_the_recorded_peak(folder):
    s = summarize(folder / "a.chairside")
    assert (s.status, s.patient_id, s.peak_sbp, s.peak_dbp, s.lowest_spo2) == ("ok", "P-A", 150, 92, 98)


def test_warm_refresh_reads_nothing_and_an_edited_row_is_read_again(folder):
    with CourseIndex(folder, key=KEY_A) as ix:
        assert peaks(ix.refresh())["a.chairside"] == ("ok", 150, 92)
        assert ix.recomputed == 2
        ix.refresh()
        assert ix.recomputed == 0  # warm: every row trusted
    con = sqlite3.connect(folder / INDEX_NAME)
    text = con.execute("SELECT summary FROM files WHERE name = 'a.chairside'").fetchone()[0]
    assert '"peak_sbp": 150.0' in text
    con.execute("UPDATE files SET summary = ? WHERE name = 'a.chairside'",
                (text.replace('"peak_sbp": 150.0', '"peak_sbp": 110.0'),))
    con.commit()
    con.close()
    with CourseIndex(folder, key=KEY_A) as ix:
        assert all(s.peak_sbp != 110 for s in ix.summaries())  # an unsealed row is never shown
        assert peaks(ix.refresh())["a.chairside"] == ("ok", 150, 92)
        assert ix.recomputed == 1
        assert ix.verify() == []


def test_rows_sealed_under_another_key_are_not_trusted(folder):
    with CourseIndex(folder, key=KEY_A) as ix:
        ix.refresh()
    with CourseIndex(folder, key=KEY_B) as ix:
        assert ix.summaries() == []
        ix.refresh()
        assert ix.recomputed == 2
    with CourseIndex(folder, key=None) as ix:  # no key at all: nothing stored is trusted
        ix.refresh()
        assert ix.recomputed == 2


def test_a_file_changed_in_place_behind_its_old_mtime_is_read_again(folder):
    path = folder / "a.chairside"
    with CourseIndex(folder, key=KEY_A) as ix:
        ix.refresh()
    st = path.stat()
    # edit one readings batch without changing the file's size, then put the mtime back
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER readings_append_only_update")
    seq, blob = con.execute("SELECT batch_seq, data FROM readings ORDER BY batch_seq LIMIT 1").fetchone()
    raw = zlib.decompress(blob).replace(b"98.0", b"88.0")
    con.execute("UPDATE readings SET data = ? WHERE batch_seq = ?", (zlib.compress(raw), seq))
    con.commit()
    con.close()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns
    with CourseIndex(folder, key=KEY_A) as ix:
        got = peaks(ix.refresh())
        assert ix.recomputed >= 1
    assert got["a.chairside"][0] == "damaged"
    assert not verify(path).ok  # the course says what verify says


def test_an_edited_event_body_of_a_light_kind_is_damaged(folder):
    """The summary does not re-validate readings events as models, but their chain is checked."""
    path = folder / "b.chairside"
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER events_append_only_update")
    seq, body = con.execute("SELECT seq, body FROM events WHERE kind = 'readings_recorded' LIMIT 1").fetchone()
    con.execute("UPDATE events SET body = ? WHERE seq = ?", (body.replace('"count":', '"count": '), seq))
    con.commit()
    con.close()
    s = summarize(path)
    assert s.status == "damaged" and f"seq {seq}" in s.error
    assert verify(path).first_bad_seq == seq


def test_the_key_is_private_and_stable(tmp_path):
    k1 = index_key(tmp_path / "keys")
    k2 = index_key(tmp_path / "keys")
    assert k1 == k2 and len(k1) == 32
    assert oct((tmp_path / "keys" / "index.key").stat().st_mode & 0o777) == oct(0o600)


def test_rems_lookup_never_raises_and_lists_no_iv_session(folder, tmp_path):
    from datetime import date

    from chairside.reports.course_index import rems_lookup

    due, err = rems_lookup(folder, date(2026, 1, 5), key=KEY_A)
    assert (due, err) == ([], "")  # the two sessions are IV ketamine: no REMS form
    due, err = rems_lookup(tmp_path / "nope", date(2026, 1, 5), key=KEY_A)
    assert due == [] and "nope" in err and "\n" not in err
