"""Disk faults while recording: full disk, read-only file system, I/O errors.

We run as root, so chmod cannot make a directory read-only for us; the failures are
injected through the store's seam (``connection_factory``: a Connection whose writes raise
what SQLite raises), and one test makes a real write fail with RLIMIT_FSIZE in a child.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from store_testkit import clock, opened, raw_rows, recompute_chain, six_readings

from chairside.domain import events as ev
from chairside.store import SessionFile, SessionFileError, verify

WRITES = ("INSERT", "UPDATE", "COMMIT")


class FlakyDisk(sqlite3.Connection):
    """Raises ``fail`` (as sqlite3.OperationalError) on writes while it is set."""

    fail: str | None = None
    at: str = "INSERT"

    def _check(self, sql: str) -> None:
        if self.fail and sql.lstrip().upper().startswith(self.at):
            raise sqlite3.OperationalError(self.fail)

    def execute(self, sql, *args):  # type: ignore[override]
        self._check(sql)
        return super().execute(sql, *args)

    def executemany(self, sql, *args):  # type: ignore[override]
        self._check(sql)
        return super().executemany(sql, *args)


FULL = "database or disk is full"
READONLY = "attempt to write a readonly database"


def _start(tmp_path):
    c = clock()
    p = tmp_path / "s.chairside"
    sf = SessionFile.create(p, opened(c), c, connection_factory=FlakyDisk)
    for k in range(3):
        c.advance(0.5)
        sf.append_readings(six_readings(c.now(), k))
    sf.append(ev.NoteAdded(t=c.now(), text="before the fault", author="AB"))
    return sf, c, p


@pytest.mark.parametrize("message,at", [(FULL, "INSERT"), (READONLY, "INSERT"), ("disk I/O error", "COMMIT")])
def test_fault_degrades_to_memory_then_retry_writes_the_tail(tmp_path, message, at):
    sf, c, p = _start(tmp_path)
    committed = len(raw_rows(p))
    assert sf.degraded is None
    sf._con.fail, sf._con.at = message, at

    e1 = sf.append(ev.InfusionStarted(t=c.now(), concentration_mg_ml=1.0, rate_mg_kg_h=0.75,
                                      rate_ml_h=54.4, author="AB"))
    msg = sf.degraded
    assert msg is not None and "IN MEMORY" in msg and message in msg and "\n" not in msg
    assert message in sf.degraded_reason and sf.next_seq == e1.seq + 1 and sf.durable_seq == committed
    for k in range(5):
        c.advance(0.5)
        sf.append_readings(six_readings(c.now(), k))
    e2 = sf.append(ev.ObservationRecorded(t=c.now(), scale="cadss", score=3, author="AB"))
    assert e2.seq > e1.seq > committed
    assert sf.unsaved >= 3 and str(sf.unsaved) in sf.degraded
    # nothing already committed is lost, and the file on disk still verifies
    assert len(raw_rows(p)) == committed
    r = verify(p)
    assert r.ok and r.count == committed
    # the in-memory tail is readable
    kinds = [x.kind for x in sf.events()]
    assert kinds[committed:].count("readings_recorded") >= 1 and kinds[-1] == "observation_recorded"
    assert sf.retry() is False and sf.degraded is not None  # disk still failing

    sf._con.fail = None  # the disk comes back
    assert sf.retry() is True
    assert sf.degraded is None and sf.degraded_reason is None and sf.unsaved == 0
    assert sf.durable_seq == e2.seq
    rows = raw_rows(p)
    assert rows[-1][0] == e2.seq
    recompute_chain(p)  # chain intact across the outage
    sf.append(ev.NoteAdded(t=c.now(), text="after", author="AB"))
    sf.close()
    r = verify(p)
    assert r.ok and r.count == e2.seq + 1


def test_store_retries_by_itself(tmp_path):
    sf, c, p = _start(tmp_path)
    sf._con.fail = FULL
    e = sf.append(ev.NoteAdded(t=c.now(), text="during", author="AB"))
    assert sf.degraded
    sf._con.fail = None
    c.advance(1.0)
    sf.tick()
    assert sf.degraded is not None  # not yet: retries every retry_interval_s
    c.advance(sf.retry_interval_s)
    sf.tick()
    assert sf.degraded is None
    assert raw_rows(p)[-1][0] == e.seq
    sf.close()


def test_close_while_the_disk_is_still_failing_says_what_is_lost(tmp_path):
    sf, c, p = _start(tmp_path)
    committed = len(raw_rows(p))
    sf._con.fail = FULL
    sf.append(ev.NoteAdded(t=c.now(), text="lost", author="AB"))
    with pytest.raises(SessionFileError, match=r"1 event\(s\) after seq %d" % committed):
        sf.close()
    r = verify(p)
    assert r.ok and r.count == committed


def test_a_bug_is_not_mistaken_for_a_disk_fault(tmp_path):
    sf, c, p = _start(tmp_path)
    with pytest.raises(ValueError):
        sf.append(ev.ObservationRecorded(t=c.now(), scale="x", score=float("nan"), author="AB"))
    assert sf.degraded is None
    e = sf.append(ev.NoteAdded(t=c.now(), text="fine", author="AB"))
    sf.close()
    assert verify(p).count == e.seq


def test_create_in_an_unusable_place_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    c = clock()
    with pytest.raises(SessionFileError, match="not-a-folder"):
        SessionFile.create(blocker / "s.chairside", opened(c), c)


REAL_FULL_DISK = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    sys.path.insert(0, {kit!r})
    from store_testkit import clock, opened, six_readings
    from chairside.domain import events as ev
    from chairside.store import SessionFile, verify
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    p = {path!r}
    c = clock()
    sf = SessionFile.create(p, opened(c), c)
    for k in range(20):
        c.advance(1)
        sf.append_readings(six_readings(c.now(), k))
    sf.append(ev.NoteAdded(t=c.now(), text="safe", author="AB"))
    safe = sf.head_seq
    limit = max(os.path.getsize(p), os.path.getsize(p + "-wal")) + 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    k = 0
    while sf.degraded is None and k < 2000:
        k += 1
        c.advance(1)
        sf.append_readings(six_readings(c.now(), k))
        sf.append(ev.NoteAdded(t=c.now(), text="x" * 500, author="AB"))
    msg = sf.degraded
    for j in range(5):
        sf.append(ev.NoteAdded(t=c.now(), text="in memory %d" % j, author="AB"))
    last = sf.head_seq
    mid = verify(p)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    back = sf.retry()
    sf.close()
    end = verify(p)
    print(json.dumps(dict(safe=safe, msg=msg, last=last, mid_ok=mid.ok, mid_count=mid.count,
                          back=back, end_ok=end.ok, end_count=end.count)))
    """
)


def test_real_write_failure_via_file_size_limit(tmp_path):
    kit = str(Path(__file__).resolve().parent)
    code = REAL_FULL_DISK.format(kit=kit, path=str(tmp_path / "s.chairside"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["msg"] and "IN MEMORY" in res["msg"]
    assert res["mid_ok"] and res["mid_count"] >= res["safe"]  # committed part intact during the fault
    assert res["back"] is True
    assert res["end_ok"] and res["end_count"] == res["last"]  # the in-memory tail made it, chained


# --- a file that can only be read ----------------------------------------------------------
class ReadOnlyFileSystem(sqlite3.Connection):
    """What SQLite does on a read-only file or file system: it opens the file read-only,
    silently (here asked for explicitly with ``mode=ro``); every write then fails with
    'attempt to write a readonly database'."""

    def __init__(self, database, *args, **kwargs):
        kwargs["uri"] = True
        super().__init__(Path(database).resolve().as_uri() + "?mode=ro", *args, **kwargs)


def _recorded(tmp_path, wal: bool) -> Path:
    c = clock()
    p = tmp_path / "s.chairside"
    sf = SessionFile.create(p, opened(c), c)
    for k in range(3):
        c.advance(1)
        sf.append_readings(six_readings(c.now(), k))
    sf.append(ev.NoteAdded(t=c.now(), text="before", author="AB"))
    sf.close()
    if wal:  # as a recording that was interrupted leaves it: still in WAL mode
        con = sqlite3.connect(str(p))
        assert con.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        con.close()
    return p


@pytest.mark.parametrize("wal", [False, True], ids=["closed-file", "interrupted-file-in-wal-mode"])
def test_resume_of_a_file_that_cannot_be_written_is_refused_at_once(tmp_path, wal):
    p = _recorded(tmp_path, wal)
    before, n = p.read_bytes(), len(raw_rows(p))
    with pytest.raises(SessionFileError) as exc:
        SessionFile.open(p, clock(), connection_factory=ReadOnlyFileSystem)
    msg = str(exc.value)
    assert "\n" not in msg and str(p) in msg and "cannot open for recording" in msg and "read-only" in msg
    assert p.read_bytes() == before
    r = verify(p)
    assert r.ok and r.count == n
    sf = SessionFile.open(p, clock())  # writable again: the record resumes where it was
    assert sf.head_seq == n
    sf.close()


UNPRIVILEGED = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {kit!r})
    import chairside.domain.state  # imported before the privileges go (lazy import in the store)
    from chairside.store import SessionFile, SessionFileError, verify
    from store_testkit import clock, opened
    if os.geteuid() == 0:  # root ignores file modes: become nobody, whom they bind
        os.setgid({gid}); os.setuid({uid})
    out = {{}}
    for name in ("new", "closed", "readonly", "readonly-wal"):
        p = os.path.join({folder!r}, name + ".chairside")
        try:
            if name == "new":
                SessionFile.create(p, opened(clock()), clock()).close()
            else:
                SessionFile.open(p, clock()).close()
            out[name] = "opened"
        except SessionFileError as exc:
            out[name] = str(exc)
    out["verify"] = verify(os.path.join({folder!r}, "closed.chairside")).ok
    print(json.dumps(out))
    """
)


def test_real_read_only_folder_and_file(tmp_path):
    """Real permissions: a folder nobody may write into, and a read-only file in it."""
    import shutil
    import tempfile

    nobody = 65534
    root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="chairside-ro-"))  # /tmp: reachable by nobody
    try:
        closed = _recorded(tmp_path, wal=False)
        for name in ("closed", "readonly", "readonly-wal"):
            shutil.copyfile(closed, folder / f"{name}.chairside")
        # an interrupted recording: WAL mode, its -wal and -shm left beside it by a process
        # that died with the file open
        crash = ("import os, sqlite3; c = sqlite3.connect(%r); c.execute('PRAGMA journal_mode = WAL'); "
                 "c.execute('SELECT count(*) FROM events').fetchone(); os._exit(0)") % str(folder / "readonly-wal.chairside")
        subprocess.run([sys.executable, "-c", crash], check=True, timeout=30)
        assert (folder / "readonly-wal.chairside-wal").exists() and (folder / "readonly-wal.chairside-shm").exists()
        for p in folder.iterdir():
            os.chmod(p, 0o644 if p.name == "closed.chairside" else 0o444)
            if root:
                os.chown(p, nobody, nobody)
        if root:
            os.chown(folder, nobody, nobody)
        os.chmod(folder, 0o555)
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        kit = str(Path(__file__).resolve().parent)
        code = UNPRIVILEGED.format(kit=kit, folder=str(folder), uid=nobody, gid=nobody)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert "cannot create the session file" in res["new"] and "new.chairside" in res["new"]
        # resuming needs a -wal beside the file (the folder refuses it) or a writable file
        assert "cannot open for recording" in res["closed"] and "closed.chairside" in res["closed"]
        for name in ("readonly", "readonly-wal"):
            assert "cannot open for recording" in res[name] and "read-only" in res[name], res[name]
        assert res["verify"] is True  # checking needs no write
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written, nothing added
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder, ignore_errors=True)
