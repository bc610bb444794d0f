"""The index of a session folder: one row per session file, so the course and the REMS list
do not read every file each time.

Owns: ``CourseIndex`` — a small SQLite file beside the sessions (``.chairside-index.sqlite``,
created 0600) holding each file's size, modification time and its course summary
(``chairside.reports.course.summarize``); ``refresh()`` re-reads only files whose size or
mtime changed, adds new ones and forgets removed ones; ``verify()`` checks every row
against its file (present, same size and time, same head hash of the verified chain);
``CourseError`` for a folder that cannot be read (one line naming it). A folder the index
cannot be written to is still served, from an index in memory.
Must not import: textual, chairside.ui, chairside.service, chairside.transport.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from chairside.reports.course import SessionSummary, summarize
from chairside.store import SessionFile
from chairside.store.schema import SessionFileError

__all__ = ["INDEX_NAME", "CourseError", "CourseIndex", "SUFFIX"]

INDEX_NAME = ".chairside-index.sqlite"
PARALLEL_FROM = 32  # files to (re)read before the index uses every core
SUFFIX = ".chairside"
_VERSION = "2"  # 2: summaries carry the signing key(s)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    name TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, summary TEXT NOT NULL
);
"""


class CourseError(Exception):
    """The session folder cannot be used (the message names it and why)."""


class CourseIndex:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise CourseError(f"{self.folder}: no such folder")
        if not os.access(self.folder, os.R_OK | os.X_OK):
            raise CourseError(f"{self.folder}: cannot read the folder (permission denied)")
        self.path = self.folder / INDEX_NAME
        self.in_memory = False
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
                con.execute("DELETE FROM files")
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

    def refresh(self) -> list[SessionSummary]:
        """Bring the index up to date with the folder; every file's summary, by name."""
        files = self._files()
        known = {name: (size, mtime) for name, size, mtime in
                 self.con.execute("SELECT name, size, mtime_ns FROM files")}
        for gone in set(known) - set(files):
            self.con.execute("DELETE FROM files WHERE name = ?", (gone,))
        todo = [name for name, st in files.items() if known.get(name) != (st.st_size, st.st_mtime_ns)]
        paths = [self.folder / name for name in todo]
        if len(paths) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1:
            ctx = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
            with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=ctx) as pool:
                results = list(pool.map(summarize, paths, chunksize=16))
        else:
            results = [summarize(p) for p in paths]
        for name, summary in zip(todo, results):
            st = files[name]
            self.con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                             (name, st.st_size, st.st_mtime_ns, json.dumps(asdict(summary))))
        self.con.commit()
        return self.summaries()

    def summaries(self) -> list[SessionSummary]:
        return [SessionSummary(**json.loads(text)) for (text,) in
                self.con.execute("SELECT summary FROM files ORDER BY name")]

    def verify(self) -> list[str]:
        """Rows that no longer match their files (each a line naming the file and why)."""
        problems = []
        files = self._files()
        for name, size, mtime, text in self.con.execute("SELECT name, size, mtime_ns, summary FROM files"):
            st = files.get(name)
            if st is None:
                problems.append(f"{self.folder / name}: indexed but no longer in the folder")
                continue
            if (st.st_size, st.st_mtime_ns) != (size, mtime):
                problems.append(f"{self.folder / name}: changed since it was indexed")
                continue
            summary = json.loads(text)
            if summary["status"] != "ok":
                continue
            try:
                with SessionFile.open(self.folder / name, readonly=True) as f:
                    head = f.last_hash
            except SessionFileError as exc:
                problems.append(f"{self.folder / name}: indexed as intact but {exc}")
                continue
            if head != summary["last_hash"]:
                problems.append(f"{self.folder / name}: head hash differs from the index")
        for name in set(files) - {n for (n,) in self.con.execute("SELECT name FROM files")}:
            problems.append(f"{self.folder / name}: in the folder but not indexed")
        return problems
