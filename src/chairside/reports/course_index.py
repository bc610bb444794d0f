"""The index of a session folder: one row per session file, so the course and the REMS list
do not read every file each time.

Owns: ``CourseIndex`` — a small SQLite file beside the sessions (``.chairside-index.sqlite``,
created 0600) holding each file's identity (device, inode, size, modification and change
times), the head hash of its verified chain, and its course summary
(``chairside.reports.course.summarize``), each row sealed with an HMAC-SHA256 under this
installation's index key (``index_key``: 32 random bytes in the user's data folder, 0600,
never in the session folder). ``refresh()`` trusts a row only when its seal verifies and
the file's identity is unchanged; any other row (a file added, changed, replaced, a row
edited or copied from another folder, a key that changed) is recomputed from the file.
``confirm()`` re-reads the head hash of the rows a view is about to show and recomputes
those that differ. ``verify()`` checks every row against its file (seal, identity, the
whole chain re-verified, same head hash). ``CourseError`` for a folder that cannot be read
(one line naming it). ``lookup`` — the console's course view of one patient, ``rems_lookup`` — the forms due
(both never raise and use no process pool).
A folder the index cannot be written to is still served, from an index in memory.
Must not import: textual, chairside.ui, chairside.service, chairside.transport.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

import platformdirs

from chairside.reports.course import CourseView, SessionSummary, course_view, outcomes_data, rems_due, summarize
from chairside.store import SessionFile
from chairside.store.schema import SessionFileError

__all__ = ["INDEX_NAME", "CourseError", "CourseIndex", "SUFFIX", "index_key", "lookup", "rems_lookup"]

log = logging.getLogger(__name__)

INDEX_NAME = ".chairside-index.sqlite"
KEY_NAME = "index.key"
PARALLEL_FROM = 32  # files to (re)read before the index uses every core
SUFFIX = ".chairside"
_VERSION = "3"  # 2: summaries carry the signing key(s); 3: rows keyed by file identity, head hash, sealed
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    name TEXT PRIMARY KEY, identity TEXT NOT NULL, head TEXT NOT NULL, summary TEXT NOT NULL, seal TEXT NOT NULL
);
"""


class CourseError(Exception):
    """The session folder cannot be used (the message names it and why)."""


def index_key(folder: Path | None = None) -> bytes | None:
    """This installation's key for sealing index rows: ``<user data folder>/chairside/index.key``
    (or ``folder``), created on first use (32 random bytes, hex, 0600). None when it can be
    neither read nor made: then no stored row is trusted (every file is read)."""
    if folder is None:
        folder = platformdirs.user_data_path("chairside")
    path = folder / KEY_NAME
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("course index: the key %s cannot be read (%s): no index row is trusted", path, exc)
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(os.urandom(32).hex() + "\n")
    except FileExistsError:  # another process made it first: use theirs
        pass
    except OSError as exc:
        log.warning("course index: cannot make the key %s (%s): no index row is trusted", path, exc)
        return None
    return index_key(folder)


def _identity(st: os.stat_result) -> str:
    """What says the file is the one that was read: a rewrite, a copy over it, a rename onto
    it or a restored mtime all change the inode or the change time."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


class CourseIndex:
    def __init__(self, folder: str | Path, *, key: bytes | None | str = "default") -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise CourseError(f"{self.folder}: no such folder")
        if not os.access(self.folder, os.R_OK | os.X_OK):
            raise CourseError(f"{self.folder}: cannot read the folder (permission denied)")
        self.key: bytes | None = index_key() if key == "default" else key  # type: ignore[assignment]
        self.path = self.folder / INDEX_NAME
        self.in_memory = False
        self.recomputed = 0  # files read by the last refresh/confirm (tests, bench)
        self.con = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
                os.close(fd)
            con = sqlite3.connect(self.path)
            con.executescript(_SCHEMA)
            row = con.execute("SELECT value FROM meta WHERE key='version'").fetchone()
            if row is None or row[0] != _VERSION:
                con.execute("DROP TABLE IF EXISTS files")
                con.executescript(_SCHEMA)
                con.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (_VERSION,))
            con.commit()
            return con
        except (OSError, sqlite3.Error):
            self.in_memory = True  # a read-only folder: still serve, from memory
            con = sqlite3.connect(":memory:")
            con.executescript(_SCHEMA)
            return con

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> CourseIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ seals
    def _seal(self, name: str, identity: str, head: str, summary: str) -> str:
        if self.key is None:
            return ""
        msg = "\x00".join((_VERSION, name, identity, head, summary)).encode("utf-8")
        return hmac.new(self.key, msg, hashlib.sha256).hexdigest()

    def _sealed(self, name: str, identity: str, head: str, summary: str, seal: str) -> bool:
        return self.key is not None and hmac.compare_digest(self._seal(name, identity, head, summary), seal)

    def _store(self, name: str, st: os.stat_result, summary: SessionSummary) -> None:
        ident, text = _identity(st), json.dumps(asdict(summary), sort_keys=True)
        self.con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                         (name, ident, summary.last_hash, text, self._seal(name, ident, summary.last_hash, text)))

    # ------------------------------------------------------------------ the folder
    def _files(self) -> dict[str, os.stat_result]:
        try:
            names = sorted(p.name for p in self.folder.iterdir() if p.name.endswith(SUFFIX))
        except OSError as exc:
            raise CourseError(f"{self.folder}: cannot read the folder ({exc.strerror or exc})") from None
        out = {}
        for name in names:
            try:
                st = (self.folder / name).stat()
            except OSError:
                continue
            if not os.path.isdir(self.folder / name):
                out[name] = st
        return out

    def _summarize(self, names: list[str], parallel: bool) -> list[SessionSummary]:
        paths = [self.folder / name for name in names]
        if parallel and len(paths) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1 and hasattr(os, "fork"):
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=ctx) as pool:
                return list(pool.map(summarize, paths, chunksize=16))
        return [summarize(p) for p in paths]

    def refresh(self, *, parallel: bool = True) -> list[SessionSummary]:
        """Bring the index up to date with the folder; every file's summary, by name.

        A row is reused only when its seal verifies and the file's identity is the one it
        was read with; every other file is read again. ``parallel``: use every core for a
        large first index (a forked process pool: not from a process with threads, such as
        the console)."""
        files = self._files()
        rows = {name: (ident, head, text, seal) for name, ident, head, text, seal in
                self.con.execute("SELECT name, identity, head, summary, seal FROM files")}
        for gone in set(rows) - set(files):
            self.con.execute("DELETE FROM files WHERE name = ?", (gone,))
        todo = []
        found: dict[str, SessionSummary] = {}
        for name, st in files.items():
            row = rows.get(name)
            if row is None or row[0] != _identity(st) or not self._sealed(name, *row):
                todo.append(name)
            else:
                found[name] = SessionSummary(**json.loads(row[2]))
        self.recomputed = len(todo)
        for name, summary in zip(todo, self._summarize(todo, parallel)):
            self._store(name, files[name], summary)
            found[name] = summary
        self.con.commit()
        return [found[name] for name in sorted(found)]

    def summaries(self) -> list[SessionSummary]:
        """Every row whose seal verifies (a row that does not is never shown)."""
        out = []
        for name, ident, head, text, seal in self.con.execute(
                "SELECT name, identity, head, summary, seal FROM files ORDER BY name"):
            if self._sealed(name, ident, head, text, seal):
                out.append(SessionSummary(**json.loads(text)))
        return out

    def confirm(self, summaries: list[SessionSummary]) -> list[SessionSummary]:
        """The rows a view shows, each checked against its file's head hash (one small read
        per file): a file whose head differs from the row's is read again."""
        out = []
        self.recomputed = 0
        for s in summaries:
            name = Path(s.path).name
            if s.status == "ok" and _head(self.folder / name) != s.last_hash:
                try:
                    st = (self.folder / name).stat()
                except OSError:
                    st = None
                s = summarize(self.folder / name)
                self.recomputed += 1
                if st is not None:
                    self._store(name, st, s)
            out.append(s)
        self.con.commit()
        return out

    def verify(self) -> list[str]:
        """Rows that no longer match their files (each a line naming the file and why)."""
        problems = []
        files = self._files()
        for name, ident, head, text, seal in self.con.execute(
                "SELECT name, identity, head, summary, seal FROM files"):
            st = files.get(name)
            if st is None:
                problems.append(f"{self.folder / name}: indexed but no longer in the folder")
                continue
            if not self._sealed(name, ident, head, text, seal):
                problems.append(f"{self.folder / name}: the index row's seal does not verify (edited, or another key)")
                continue
            if ident != _identity(st):
                problems.append(f"{self.folder / name}: changed since it was indexed")
                continue
            summary = json.loads(text)
            if summary["status"] != "ok":
                continue
            try:
                with SessionFile.open(self.folder / name, readonly=True) as f:
                    last = f.last_hash
            except SessionFileError as exc:
                problems.append(f"{self.folder / name}: indexed as intact but {exc}")
                continue
            if last != head or last != summary["last_hash"]:
                problems.append(f"{self.folder / name}: head hash differs from the index")
        for name in set(files) - {n for (n,) in self.con.execute("SELECT name FROM files")}:
            problems.append(f"{self.folder / name}: in the folder but not indexed")
        return problems


def lookup(folder: str | Path, patient_id: str, *, session_id: str = "", before: datetime | None = None,
           protocol: str = "", key: bytes | None | str = "default") -> CourseView:
    """The console's course (``chairside.reports.course.course_view``) of ``patient_id`` from
    the folder's index, the patient's rows confirmed against their files; never raises for
    a file or a folder (a folder that cannot be read gives a view with ``error``). Runs in
    the caller's thread (no process pool: the console calls it from a thread worker)."""
    try:
        with CourseIndex(folder, key=key) as index:
            summaries = index.refresh(parallel=False)
            mine = index.confirm([s for s in summaries if s.patient_id == patient_id])
            summaries = mine + [s for s in summaries if s.patient_id != patient_id]
    except CourseError as exc:
        return CourseView(patient_id, error=f"Course: {exc}")
    except (OSError, sqlite3.Error) as exc:
        return CourseView(patient_id, error=f"Course: {folder}: the index cannot be used ({exc})")
    return course_view(summaries, patient_id, session_id=session_id, before=before, protocol=protocol)


def rems_lookup(folder: str | Path, today: date, *, key: bytes | None | str = "default") -> tuple[list[dict], str]:
    """The REMS forms due in the folder (``chairside.reports.course.rems_due``: the rows that may
    be listed confirmed against their files) and "" — or ([], one line) when the folder cannot
    be read. Never raises; no process pool (for a caller with threads: the console, the board)."""
    try:
        with CourseIndex(folder, key=key) as index:
            summaries = index.refresh(parallel=False)
            drugs = set(outcomes_data()["rems"]["drugs"])
            due = [s for s in summaries if s.drug in drugs and not s.rems_filed]
            summaries = index.confirm(due) + [s for s in summaries if not (s.drug in drugs and not s.rems_filed)]
    except CourseError as exc:
        return [], f"REMS: {exc}"
    except (OSError, sqlite3.Error) as exc:
        return [], f"REMS: {folder}: the index cannot be used ({exc})"
    return rems_due(summaries, today), ""


def _head(path: Path) -> str | None:
    """The head hash a session file records (meta), without walking it; None if unreadable."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'head_hash'").fetchone()
        return None if row is None else str(row[0])
    except sqlite3.Error:
        return None
    finally:
        con.close()
