"""Tamper tests: each kind of change makes verify fail and name the first bad event.

The attacker drops the append-only triggers first (they only stop accidents)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib

import pytest
from store_testkit import attacker, clock, opened, raw_rows, six_readings

from chairside.cli import main
from chairside.domain import events as ev
from chairside.store import NotASessionFile, SessionFile, verify


@pytest.fixture
def session(tmp_path):
    """A closed session: opened, 4 readings batches interleaved with 6 clinical events."""
    c = clock()
    p = tmp_path / "s.chairside"
    sf = SessionFile.create(p, opened(c), c)
    for k in range(40):
        c.advance(0.5)
        sf.append_readings(six_readings(c.now(), k))
        if k % 8 == 7:
            sf.append(ev.NoteAdded(t=c.now(), text=f"note {k}", author="AB"))
    sf.append(ev.SessionClosed(t=c.now(), author="AB"))
    sf.close()
    rows = raw_rows(p)
    assert len(rows) >= 12
    return p, rows


def _seq_of(rows, kind, nth=0):
    return [r[0] for r in rows if r[1] == kind][nth]


def test_intact_file_verifies(session, capsys):
    p, rows = session
    r = verify(p)
    assert r.ok and r.count == len(rows) and r.closed and r.last_hash == rows[-1][5]
    assert main(["verify", str(p)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"ok: {len(rows)} events, last hash {rows[-1][5]}"
    assert out[1].startswith("signed: by SHA256:") and len(out) == 2


def test_edit_one_body_byte(session, capsys):
    p, rows = session
    seq = _seq_of(rows, "note", 1)
    con = attacker(p)
    body = rows[seq - 1][3]
    i = body.index("note ") + 5
    con.execute("UPDATE events SET body = ? WHERE seq = ?", (body[:i] + "9" + body[i + 1:], seq))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == seq and r.count == seq - 1
    assert main(["verify", str(p)]) == 1
    assert f"seq {seq}" in capsys.readouterr().out


def test_edit_body_and_rehash_that_row_only(session):
    """Recomputing the edited row's hash is not enough: the next row's prev_hash breaks."""
    import hashlib

    p, rows = session
    seq = _seq_of(rows, "note", 0)
    _s, _k, _t, body, prev, _h = rows[seq - 1]
    body2 = body.replace('"note ', '"NOTE ')
    h2 = hashlib.sha256(bytes.fromhex(prev) + body2.encode()).hexdigest()
    con = attacker(p)
    con.execute("UPDATE events SET body = ?, hash = ? WHERE seq = ?", (body2, h2, seq))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == seq + 1


def test_edit_a_reading_value(session):
    p, rows = session
    seq = _seq_of(rows, "readings_recorded", 2)
    con = attacker(p)
    data = json.loads(zlib.decompress(con.execute("SELECT data FROM readings WHERE batch_seq = ?",
                                                  (seq,)).fetchone()[0]))
    data[0][1] = 140.0
    raw = json.dumps(data, separators=(",", ":")).encode()
    con.execute("UPDATE readings SET data = ? WHERE batch_seq = ?", (zlib.compress(raw), seq))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == seq and "readings" in r.reason


def test_delete_a_middle_row(session):
    p, rows = session
    seq = _seq_of(rows, "note", 1)
    con = attacker(p)
    con.execute("DELETE FROM events WHERE seq = ?", (seq,))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == seq and "missing" in r.reason


def test_delete_and_renumber(session):
    p, rows = session
    seq = _seq_of(rows, "note", 0)
    con = attacker(p)
    con.execute("DELETE FROM events WHERE seq = ?", (seq,))
    for s in range(seq + 1, len(rows) + 1):
        con.execute("UPDATE events SET seq = ? WHERE seq = ?", (s - 1, s))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == seq


def test_delete_readings_of_a_batch(session):
    p, rows = session
    seq = _seq_of(rows, "readings_recorded", 1)
    con = attacker(p)
    con.execute("DELETE FROM readings WHERE batch_seq = ?", (seq,))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == seq


def test_reorder_two_events(session):
    p, rows = session
    a = _seq_of(rows, "note", 1)
    b = a + 1
    con = attacker(p)
    con.execute("UPDATE events SET seq = -1 WHERE seq = ?", (a,))
    con.execute("UPDATE events SET seq = ? WHERE seq = ?", (a, b))
    con.execute("UPDATE events SET seq = ? WHERE seq = -1", (b,))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == a


def test_truncate_the_last_rows(session, capsys):
    p, rows = session
    n = len(rows)
    con = attacker(p)
    con.execute("DELETE FROM events WHERE seq > ?", (n - 3,))
    con.execute("DELETE FROM readings WHERE batch_seq > ?", (n - 3,))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == n - 2 and "truncated" in r.reason
    assert main(["verify", str(p)]) == 1
    assert f"seq {n - 2}" in capsys.readouterr().out


def test_truncate_last_row_and_fix_head_seq_only(session):
    """An attacker who also lowers head_seq still leaves head_hash naming the old tail."""
    p, rows = session
    n = len(rows)
    con = attacker(p)
    con.execute("DELETE FROM events WHERE seq = ?", (n,))
    con.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'", (str(n - 1),))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == n - 1


def test_appended_row_outside_the_store(session):
    import hashlib

    p, rows = session
    n = len(rows)
    body = {"author": "XX", "kind": "note", "mono": 0.0, "seq": n + 1, "t": rows[-1][2], "text": "forged"}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    h = hashlib.sha256(bytes.fromhex(rows[-1][5]) + raw).hexdigest()
    con = attacker(p)
    con.execute("INSERT INTO events VALUES (?,?,?,?,?,?)", (n + 1, "note", rows[-1][2], raw.decode(), rows[-1][5], h))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == n + 1


@pytest.mark.parametrize("keep", [0.5, 0.8])
def test_truncate_the_file_bytes(session, keep):
    p, rows = session
    size = p.stat().st_size
    assert not p.with_name(p.name + "-wal").exists()  # closed: everything is in the main file
    os.truncate(p, int(size * keep) // 4096 * 4096 + 1000)
    r = verify(p)
    assert not r.ok and r.first_bad_seq is not None and 1 <= r.first_bad_seq <= len(rows)
    assert "cut short" in r.reason


def test_not_a_session_file_exits_2(tmp_path, capsys):
    p = tmp_path / "junk.bin"
    p.write_bytes(os.urandom(5000))
    with pytest.raises(NotASessionFile):
        verify(p)
    assert main(["verify", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(p) in err and len(err.splitlines()) == 1
    assert main(["verify", str(tmp_path / "missing")]) == 2


def test_verify_command_in_a_subprocess(session):
    p, rows = session
    out = subprocess.run([sys.executable, "-m", "chairside.cli", "verify", str(p)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith(f"ok: {len(rows)} events, last hash ")
    con = attacker(p)
    con.execute("DELETE FROM events WHERE seq = 3")
    con.close()
    out = subprocess.run([sys.executable, "-m", "chairside.cli", "verify", str(p)], capture_output=True, text=True)
    assert out.returncode == 1 and "seq 3" in out.stdout


def test_verify_does_not_write(session):
    p, _ = session
    before = p.read_bytes()
    mtime = p.stat().st_mtime_ns
    listing = sorted(x.name for x in p.parent.iterdir())
    verify(p)
    assert p.read_bytes() == before and p.stat().st_mtime_ns == mtime
    # a closed session is one self-contained file: checking it leaves nothing beside it
    assert sorted(x.name for x in p.parent.iterdir()) == listing == [p.name]
