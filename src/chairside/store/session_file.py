"""``SessionFile``: one append-only, hash-chained SQLite file per session.

Owns: creating (mode 0600), resuming and writing a session file; group commit of
readings; durability of events; the in-memory fallback when the disk fails.
Must not import: textual, serial, chairside.transport, chairside.alarms, chairside.service.
Time comes only from the injected clock (``chairside.domain.clock``).

Durability. The file is in WAL mode with ``synchronous=FULL``: every commit appends its
pages to the ``-wal`` file and fsyncs it before ``COMMIT`` returns, so an event is on disk
(power loss included, given honest disks) when :meth:`SessionFile.append` returns. WAL
keeps readers from blocking the writer, and SQLite checkpoints the log into the main file
on its own (every ~1000 pages). :meth:`close` checkpoints and returns the file to rollback
journal mode, so a closed session is a single self-contained file (readers need no
``-wal``/``-shm`` beside it); resuming switches it back to WAL.

Group commit. :meth:`append_readings` only buffers. The buffer is committed, as one
``readings_recorded`` event whose ``digest`` chains the batch, when the clock shows that
``max_delay_s`` (1 s) has passed since the first buffered reading (checked on every
``append_readings`` and :meth:`tick` call — the service calls ``tick()`` from its loop),
when ``max_batch`` readings are waiting, on :meth:`flush`, and before any other event is
appended (in the same transaction, ahead of it), so a clinical event never precedes the
readings that arrived before it.

Disk failure (full disk, read-only file system, I/O error). The failed transaction is
rolled back (what was committed before stays), the events of that transaction and every
later one are kept in memory with their seq and hash already chained, :attr:`degraded`
becomes a loud message saying recording continues IN MEMORY, and appends keep working.
:meth:`retry` (also tried by itself every ``retry_interval_s`` on append/tick, on
:meth:`flush` and on :meth:`close`) writes the in-memory tail in one transaction, chain
intact. A process that dies while degraded loses that tail: the message says so.

Signing. Every commit group is signed in its own transaction: the installation's Ed25519
key (:mod:`chairside.keys`, created on first use) signs the head ``(seq, hash)`` after the
commit, and the signature row goes in with the events (``signing.py`` says what is
signed; ``schema.py`` where). A file therefore never has an unsigned head, crash or not.
``signer=None`` writes an unsigned file (as older versions did); when the installation key
cannot be created or read the session is recorded unsigned all the same (monitoring goes
on), :attr:`signing_problem` says why and it is logged as an error.

Threads. One writer thread calls append/append_readings/flush/tick; any thread may call
:meth:`events`, :meth:`readings`, :attr:`state`, :attr:`last_hash`. One connection is
shared under a lock (``check_same_thread=False``); reads copy rows out under the lock
and decode outside it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chairside.domain.clock import Clock, WallClock
from chairside.domain.events import DEVICE, ReadingsRecorded, SessionOpened
from chairside.domain.readings import Reading
from chairside.store.canonical import (
    GENESIS,
    canonical_json,
    chain_hash,
    compress,
    decode_event,
    decode_readings,
    decompress,
    encode_readings,
    event_body,
)
from chairside.store.schema import (
    APP_ID,
    FORMAT,
    FORMAT_VERSION,
    SCHEMA,
    SIGNING_SCHEMA,
    DamagedSessionFile,
    NotASessionFile,
    SessionFileBusy,
    SessionFileError,
    sniff,
)
from chairside.store.signing import ALGORITHM, Signer
from chairside.store.verify import VerifyResult, connect_readonly, walk

try:  # POSIX: one writer per file across processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("chairside.store")

_UNSET: Any = object()
_STALE: Any = object()
INSTALLATION_KEY: Any = object()  # the default signer: this installation's key (chairside.keys)


def _installation_signer() -> tuple[Signer | None, str | None]:
    """(the installation's signer, None) or (None, why not): never raises, never stops a recording."""
    try:
        from chairside.keys import KeysError, installation_signer
    except ImportError as exc:  # pragma: no cover - cryptography missing from the install
        return None, f"signing not available ({exc})"
    try:
        return installation_signer(), None
    except KeysError as exc:
        return None, str(exc)
    except Exception as exc:  # pragma: no cover - a broken crypto backend
        return None, f"signing key not usable ({type(exc).__name__}: {exc})"


def _resolve_signer(signer: Any, path: Path) -> tuple[Signer | None, str | None]:
    if signer is INSTALLATION_KEY:
        signer, problem = _installation_signer()
        if problem is not None:
            log.error("%s: recorded UNSIGNED: %s", path, problem)
        return signer, problem
    return signer, None


def _is_disk_error(exc: BaseException) -> bool:
    """Failures of the medium (full, read-only, I/O, locked), as opposed to our own bugs."""
    if isinstance(exc, sqlite3.OperationalError):
        return True
    if type(exc) is sqlite3.DatabaseError:  # "database disk image is malformed", ...
        return True
    return isinstance(exc, OSError)


@dataclass(slots=True)
class _Entry:
    """One event ready to be written: seq and hash already chained."""

    seq: int
    kind: str
    t: str
    body: str
    prev_hash: str
    hash: str
    blob: bytes | None
    count: int
    event: Any


def _state_api() -> tuple[Any, Any, type[Exception]] | None:
    """(fold, apply, StateError) from chairside.domain.state, or None if it is absent."""
    try:
        from chairside.domain import state as state_mod
    except ImportError:
        return None
    fold = getattr(state_mod, "fold", None)
    apply = getattr(state_mod, "apply", None)
    error = getattr(state_mod, "StateError", None)
    if fold is None or apply is None or error is None:
        return None
    return fold, apply, error


class SessionFile:
    """An open session file. Create with :meth:`create`, resume with :meth:`open`."""

    max_delay_s: float = 1.0
    max_batch: int = 20_000
    retry_interval_s: float = 5.0

    def __init__(self, path: Path, con: sqlite3.Connection, clock: Clock, *, readonly: bool,
                 lock_fd: int | None, head_seq: int, head_hash: str, opened: SessionOpened,
                 last_mono: float, signer: Signer | None = None, key_id: int | None = None,
                 signing_problem: str | None = None, verified: VerifyResult | None = None) -> None:
        self.path = path
        self._signer = signer if key_id is not None else None
        self._key_id = key_id
        self.signing_problem = signing_problem
        self.verified = verified  # what the open-time verification found (None for a new file)
        self._con = con
        self._clock = clock
        self.readonly = readonly
        self._lock_fd = lock_fd
        self._lock = threading.RLock()
        self._seq = head_seq
        self._head_hash = head_hash
        self._durable_seq = head_seq  # last seq known to be committed to disk
        self._opened = opened
        elapsed = (clock.now() - opened.t).total_seconds()
        self._mono_origin = clock.monotonic() - max(elapsed, last_mono, 0.0)
        self._buffer: list[Reading] = []
        self._first_buffered: float | None = None
        self._unsaved: list[_Entry] = []
        self._fault: str | None = None
        self._fault_at: float = 0.0
        self._state: Any = _UNSET
        self._closed = False
        self._kept: list[tuple[Any, bytes | None]] | None = None  # open(keep_events=True)

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(cls, path: str | Path, opened: SessionOpened, clock: Clock | None = None, *,
               connection_factory: type[sqlite3.Connection] | None = None,
               signer: Signer | None | Any = INSTALLATION_KEY) -> SessionFile:
        """Create a new session file at ``path`` (it must not exist) starting with ``opened``.

        The file is created with mode 0600 before SQLite writes to it; the SessionOpened
        event is seq 1, durable (and signed, see the module docstring) when this returns.
        """
        path = Path(path)
        clock = clock or WallClock()
        if not isinstance(opened, SessionOpened):
            raise TypeError("a session file starts with a SessionOpened event")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise SessionFileError(f"{path}: already exists (open it to resume; a new session needs a new file)") from None
        except OSError as exc:
            raise SessionFileError(f"{path}: cannot create the session file ({exc.strerror})") from None
        try:
            os.fchmod(fd, 0o600)  # whatever the umask was
        finally:
            os.close(fd)
        signer, problem = _resolve_signer(signer, path)
        lock_fd = _lock(path)
        try:
            con = _connect(path, connection_factory)
            stored, entry = _first_entry(opened)
            created = clock.now().isoformat()
            try:
                con.execute("BEGIN IMMEDIATE")
                con.execute(f"PRAGMA application_id = {APP_ID}")
                con.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
                for stmt in _statements(SCHEMA):
                    con.execute(stmt)
                con.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [
                    ("format", FORMAT), ("format_version", str(FORMAT_VERSION)),
                    ("session_id", opened.session_id), ("created", created),
                    ("head_seq", "1"), ("head_hash", entry.hash),
                ])
                con.execute("INSERT INTO events(seq, kind, t, body, prev_hash, hash) VALUES (?,?,?,?,?,?)",
                            (1, entry.kind, entry.t, entry.body, entry.prev_hash, entry.hash))
                key_id = None
                if signer is not None:
                    for stmt in _statements(SIGNING_SCHEMA):
                        con.execute(stmt)
                    key_id = _add_key(con, signer, 1)
                    _sign(con, signer, key_id, 1, entry.hash)
                con.execute("COMMIT")
                mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    con.close()
                    raise SessionFileError(f"{path}: the file system does not support SQLite WAL mode ({mode})")
                con.execute("PRAGMA synchronous = FULL")
            except sqlite3.Error as exc:
                con.close()
                raise SessionFileError(f"{path}: cannot write the new session file ({exc})") from None
        except BaseException:
            _unlock(lock_fd)
            _remove_new(path)
            raise
        sf = cls(path, con, clock, readonly=False, lock_fd=lock_fd, head_seq=1, head_hash=entry.hash,
                 opened=stored, last_mono=stored.mono, signer=signer, key_id=key_id, signing_problem=problem)
        return sf

    @classmethod
    def open(cls, path: str | Path, clock: Clock | None = None, *, readonly: bool = False,
             connection_factory: type[sqlite3.Connection] | None = None,
             keep_events: bool = False, signer: Signer | None | Any = INSTALLATION_KEY) -> SessionFile:
        """Open an existing session file; unless ``readonly``, resume recording into it.

        The whole chain is verified first; a missing, garbage, foreign or damaged file
        raises :class:`SessionFileError` (one line) and nothing is written to it.
        ``keep_events`` (read-only): the events the verification just read and validated
        are kept for the first :meth:`events` call, which then does not read the file again
        (a reader who wants every event, such as a replay).
        The head's signature is checked too (a re-chained file is damaged); :attr:`verified`
        keeps what was found (signed or not, by which keys). Resuming signs from then on
        with ``signer`` (the installation's key by default), an unsigned older file included.
        """
        path = Path(path)
        clock = clock or WallClock()
        sniff(path)
        problem = None
        key_id = None
        if readonly:
            signer = None
        else:
            signer, problem = _resolve_signer(signer, path)
        lock_fd = None if readonly else _lock(path)
        try:
            try:
                ro = connect_readonly(path)
            except sqlite3.Error as exc:
                raise NotASessionFile(f"{path}: cannot open as a session file ({exc})") from None
            try:
                kept: list[tuple[Any, bytes | None]] | None = [] if (readonly and keep_events) else None
                result, info = walk(ro, path, keep=kept)
            except BaseException:
                ro.close()
                raise
            if not result.ok:
                ro.close()
                raise DamagedSessionFile(
                    f"{path}: damaged at event seq {result.first_bad_seq}: {result.reason}; "
                    "nothing was changed (see `chairside verify`)",
                    result,
                )
            opened = decode_event(canonical_json(info.opened))
            last_mono = float((info.last_body or {}).get("mono", 0.0) or 0.0)
            if readonly:
                con = ro
            else:
                ro.close()
                con = _connect(path, connection_factory)
                try:
                    mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        con.close()
                        raise SessionFileError(f"{path}: cannot switch the file to WAL mode ({mode})")
                    con.execute("PRAGMA synchronous = FULL")
                    row = con.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
                    _probe_writable(con)
                    if signer is not None and row is not None and row[0] == result.count \
                            and row[1] == result.last_hash:
                        key_id = _resume_signing(con, signer, info.signing_tables, info.key_ids,
                                                 info.head_signed, row[0], row[1])
                except sqlite3.Error as exc:
                    con.close()
                    hint = "; the file or its folder is read-only" if "readonly" in str(exc) else ""
                    raise SessionFileError(f"{path}: cannot open for recording ({exc}){hint}") from None
                if row is None or row[0] != result.count or row[1] != result.last_hash:
                    con.close()
                    raise SessionFileError(f"{path}: changed while it was being opened")
        except BaseException:
            _unlock(lock_fd)
            raise
        sf = cls(path, con, clock, readonly=readonly, lock_fd=lock_fd, head_seq=result.count,
                 head_hash=result.last_hash, opened=opened, last_mono=last_mono, signer=signer,
                 key_id=key_id, signing_problem=problem, verified=result)
        if not readonly:
            with sf._lock:
                sf._ensure_state()  # resume: the state is rebuilt before recording continues
        sf._kept = kept
        return sf

    # ------------------------------------------------------------------ properties

    @property
    def opened(self) -> SessionOpened:
        return self._opened

    @property
    def last_hash(self) -> str:
        """Hash of the last event (in memory when degraded)."""
        return self._head_hash

    @property
    def head_seq(self) -> int:
        """Seq of the last event appended (written or, when degraded, held in memory)."""
        return self._seq

    @property
    def next_seq(self) -> int:
        """The seq the next appended event will get."""
        return self._seq + 1

    @property
    def degraded_reason(self) -> str | None:
        """The disk error behind :attr:`degraded` (None when everything is on disk)."""
        return self._fault

    @property
    def durable_seq(self) -> int:
        """Seq of the last event known to be on disk."""
        return self._durable_seq

    @property
    def pending_readings(self) -> int:
        return len(self._buffer)

    @property
    def next_commit_due(self) -> float | None:
        """Clock monotonic time by which the buffered readings will be committed (or None)."""
        if self._first_buffered is None:
            return None
        return self._first_buffered + self.max_delay_s

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (whether or not everything reached the disk)."""
        return self._closed

    @property
    def unsaved(self) -> int:
        """Events held only in memory because the disk failed."""
        return len(self._unsaved)

    @property
    def degraded(self) -> str | None:
        """None when everything is on disk; otherwise the message to show, loudly."""
        if self._fault is None:
            return None
        return (
            f"SESSION FILE NOT WRITABLE ({self._fault}): recording continues IN MEMORY — "
            f"{len(self._unsaved)} event(s) not yet saved to {self.path}; everything before seq "
            f"{self._durable_seq + 1} is safe on disk. Free space or fix the disk; the store retries "
            "every few seconds. If Chairside stops now, the in-memory part is lost."
        )

    @property
    def state(self) -> Any:
        """The session state (``chairside.domain.state.fold`` of the events, kept up to date
        by every append); None when the domain state module is not available. Raises the
        domain's StateError if the events on file do not fold."""
        with self._lock:
            if self._state is _UNSET:
                api = _state_api()
                if api is None:
                    return None
                self._state = api[0](self.events())
            return self._state

    # ------------------------------------------------------------------ writing

    def append(self, event: Any) -> Any:
        """Append one event; returns it as stored (seq assigned, round-tripped through its
        canonical JSON). Buffered readings are committed first, in the same transaction.
        Durable on return unless :attr:`degraded` says otherwise."""
        with self._lock:
            self._check_writable()
            if getattr(event, "kind", None) == "session_opened":
                raise ValueError("a session has one session_opened event (it is seq 1)")
            self._ensure_state()
            buffered, first = self._buffer, self._first_buffered
            entries: list[_Entry] = []
            try:
                if self._buffer:
                    entries.append(self._readings_entry(self._take_buffer(), None))
                if event.kind == "readings_recorded":
                    entry = self._readings_entry(list(event.readings), event)
                else:
                    entry = self._entry(event, None, 0)
                entries.append(entry)
                new_state = self._next_state(entries)
            except BaseException:
                # refused (the domain says it contradicts the record, or it cannot be
                # encoded): nothing is written, the chain and the buffer are as before
                if entries:
                    self._rewind(entries)
                self._buffer, self._first_buffered = buffered, first
                raise
            self._store(entries, new_state)
            return entry.event

    def append_readings(self, readings: Iterable[Reading] | Reading) -> Any:
        """Buffer readings; commit them when due. Returns the stored readings_recorded
        event when this call committed, else None."""
        if isinstance(readings, Reading):
            readings = (readings,)
        with self._lock:
            self._check_writable()
            if self._state is not _UNSET and self._state is not None and getattr(self._state, "closed", False):
                raise SessionFileError(
                    f"{self.path}: the session was closed (seq {self._state.closed_seq}); readings after "
                    "the close are not recorded"
                )
            now = self._clock.monotonic()
            before = len(self._buffer)
            self._buffer.extend(readings)
            if before == 0 and self._buffer:
                self._first_buffered = now
            return self._commit_if_due(now)

    def tick(self) -> Any:
        """Commit the buffered readings if they are due; retry a failed disk if it is time."""
        with self._lock:
            if self._closed or self.readonly:
                return None
            return self._commit_if_due(self._clock.monotonic())

    def flush(self) -> Any:
        """Commit the buffered readings now (and retry the disk if degraded)."""
        with self._lock:
            self._check_writable()
            stored = None
            if self._buffer:
                entry = self._readings_entry(self._take_buffer(), None)
                self._store([entry])
                stored = entry.event
            if self._unsaved:
                self._write_tail()
            return stored

    def retry(self) -> bool:
        """Try now to write what is held in memory; True when everything is on disk."""
        with self._lock:
            if not self._unsaved:
                self._fault = None
                return True
            return self._write_tail()

    def close(self) -> None:
        """Flush, checkpoint and close. Raises SessionFileError if events could not be saved."""
        with self._lock:
            if self._closed:
                return
            self._kept = None
            lost = 0
            try:
                if not self.readonly:
                    if self._buffer:
                        self._store([self._readings_entry(self._take_buffer(), None)])
                    if self._unsaved:
                        self._write_tail()
                    lost = len(self._unsaved)
                    if not lost:
                        try:
                            # a closed session is one self-contained file: fold the log into
                            # it and leave WAL mode, so readers need no -wal/-shm beside it
                            self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                            self._con.execute("PRAGMA journal_mode = DELETE")
                        except sqlite3.Error:
                            pass  # the log stays; SQLite replays it on the next open
            finally:
                self._closed = True
                try:
                    self._con.close()
                finally:
                    _unlock(self._lock_fd)
                    self._lock_fd = None
            if lost:
                raise SessionFileError(
                    f"{self.path}: {lost} event(s) after seq {self._durable_seq} could not be written "
                    f"({self._fault}) and are lost"
                )

    def __enter__(self) -> SessionFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def events(self) -> list[Any]:
        """Every event in seq order, readings filled back in (including any in-memory tail)."""
        with self._lock:
            self._check_open()
            kept, self._kept = self._kept, None
            if kept is not None and len(kept) == self._durable_seq and not self._unsaved:
                # read and verified by open(keep_events=True): the same rows, once
                return [ev if raw is None else ev.model_copy(update={"readings": tuple(decode_readings(raw))})
                        for ev, raw in kept]
            rows = self._con.execute(
                "SELECT e.seq, e.body, r.data FROM events e LEFT JOIN readings r ON r.batch_seq = e.seq "
                "WHERE e.seq <= ? ORDER BY e.seq", (self._durable_seq,)
            ).fetchall()
            tail = [e.event for e in self._unsaved]
        out = []
        for _seq, body, data in rows:
            out.append(decode_event(body, decode_readings(decompress(data)) if data is not None else None))
        out.extend(tail)
        return out

    def iter_events(self, *, readings: bool = True, batch: int = 512) -> Iterator[Any]:
        """Every committed event in seq order, one at a time (bounded memory for a reader of a
        long session). With ``readings=False`` a ``readings_recorded`` event comes without its
        readings (its ``count`` still says how many there are), and no reading is decoded."""
        with self._lock:
            self._check_open()
            durable = self._durable_seq
        sql = ("SELECT e.seq, e.body, r.data FROM events e LEFT JOIN readings r ON r.batch_seq = e.seq "
               "WHERE e.seq <= ? ORDER BY e.seq") if readings else (
               "SELECT seq, body, NULL FROM events WHERE seq <= ? ORDER BY seq")
        cur = self._con.execute(sql, (durable,))
        try:
            while rows := cur.fetchmany(batch):
                for _seq, body, data in rows:
                    yield decode_event(body, decode_readings(decompress(data)) if data is not None else None)
        finally:
            cur.close()

    def readings(self, param: str | None = None) -> list[Reading]:
        """Committed readings in order (and any held in memory), optionally of one param.
        Readings still waiting in the group-commit buffer are not included."""
        with self._lock:
            self._check_open()
            blobs = [r[0] for r in self._con.execute(
                "SELECT data FROM readings WHERE batch_seq <= ? ORDER BY batch_seq", (self._durable_seq,)
            )]
            tail = [e.event.readings for e in self._unsaved if e.blob is not None]
        out: list[Reading] = []
        for blob in blobs:
            out.extend(decode_readings(decompress(blob)))
        for rs in tail:
            out.extend(rs)
        if param is not None:
            out = [r for r in out if r.param == param]
        return out

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise SessionFileError(f"{self.path}: the session file is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.readonly:
            raise SessionFileError(f"{self.path}: opened read-only")

    def _mono(self) -> float:
        return round(self._clock.monotonic() - self._mono_origin, 6)

    def _take_buffer(self) -> list[Reading]:
        buf, self._buffer, self._first_buffered = self._buffer, [], None
        return buf

    def _commit_if_due(self, now: float) -> Any:
        stored = None
        first = self._first_buffered
        if self._buffer and ((first is not None and now - first >= self.max_delay_s - 1e-9)
                             or len(self._buffer) >= self.max_batch):
            entry = self._readings_entry(self._take_buffer(), None)
            self._store([entry])
            stored = entry.event
        elif self._unsaved and now - self._fault_at >= self.retry_interval_s:
            self._write_tail()
        return stored

    def _entry(self, event: Any, blob: bytes | None, count: int) -> _Entry:
        seq = self._seq + 1
        body_obj = event_body(event.model_copy(update={"seq": seq}))
        body = canonical_json(body_obj)
        h = chain_hash(self._head_hash, body)
        stored = decode_event(body, event.readings if blob is not None else None)
        entry = _Entry(seq, body_obj["kind"], body_obj["t"], body.decode("utf-8"), self._head_hash, h,
                       blob, count, stored)
        self._seq, self._head_hash = seq, h
        return entry

    def _readings_entry(self, readings: list[Reading], event: Any) -> _Entry:
        data, digest, count = encode_readings(readings)
        if event is None:
            event = ReadingsRecorded(t=self._clock.now(), mono=self._mono(), author=DEVICE)
        event = event.model_copy(update={"readings": tuple(readings), "count": count, "digest": digest})
        return self._entry(event, compress(data), count)

    def _store(self, entries: list[_Entry], new_state: Any = _UNSET) -> None:
        """Write entries durably, or keep them in memory when the disk fails."""
        if self._unsaved:
            self._unsaved.extend(entries)
            if self._clock.monotonic() - self._fault_at >= self.retry_interval_s:
                self._write_tail()
        else:
            try:
                self._write(entries)
            except Exception as exc:
                if not _is_disk_error(exc):
                    self._rewind(entries)
                    raise
                self._unsaved.extend(entries)
                self._failed(exc)
        if new_state is _UNSET and self._state is not _UNSET and self._state is not None:
            try:
                new_state = self._next_state(entries)
            except Exception:  # readings the domain refuses: recorded anyway, state refolded later
                log.exception("session state refused stored readings; it will be refolded on demand")
                new_state = _STALE
        if new_state is _STALE:
            self._state = _UNSET
        elif new_state is not _UNSET:
            self._state = new_state

    def _rewind(self, entries: list[_Entry]) -> None:
        # a bug (not the disk): the entries were not written; undo their chaining
        first = entries[0]
        self._seq, self._head_hash = first.seq - 1, first.prev_hash

    def _write(self, entries: list[_Entry]) -> None:
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(
                "INSERT INTO events(seq, kind, t, body, prev_hash, hash) VALUES (?,?,?,?,?,?)",
                [(e.seq, e.kind, e.t, e.body, e.prev_hash, e.hash) for e in entries],
            )
            blobs = [(e.seq, e.count, "zlib", e.blob) for e in entries if e.blob is not None]
            if blobs:
                con.executemany("INSERT INTO readings(batch_seq, count, codec, data) VALUES (?,?,?,?)", blobs)
            last = entries[-1]
            con.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'", (str(last.seq),))
            con.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (last.hash,))
            if self._signer is not None and self._key_id is not None:
                _sign(con, self._signer, self._key_id, last.seq, last.hash)
            con.execute("COMMIT")
        except BaseException:
            try:
                if con.in_transaction:
                    con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        self._durable_seq = entries[-1].seq

    def _write_tail(self) -> bool:
        """Write the in-memory tail (one transaction); False if the disk still fails."""
        try:
            row = self._con.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            on_disk = row[0] if row else 0
            tail = [e for e in self._unsaved if e.seq > on_disk]
            if len(tail) < len(self._unsaved):
                # a commit reported as failed had in fact landed: it must be ours
                landed = next(e for e in self._unsaved if e.seq == on_disk)
                if landed.hash != row[1]:
                    raise SessionFileError(f"{self.path}: the file changed under us at seq {on_disk}")
                self._durable_seq = on_disk
            if tail:
                self._write(tail)
        except Exception as exc:
            if not _is_disk_error(exc):
                raise
            self._failed(exc)
            return False
        log.warning("session file %s writable again: %d in-memory event(s) saved", self.path, len(self._unsaved))
        self._unsaved.clear()
        self._fault = None
        return True

    def _failed(self, exc: BaseException) -> None:
        first = self._fault is None
        self._fault = f"{type(exc).__name__}: {exc}"
        self._fault_at = self._clock.monotonic()
        if first:
            log.error("%s", self.degraded)

    def _ensure_state(self) -> None:
        """Fold the file once (lazily) so appends can be checked against the state."""
        if self._state is _UNSET and _state_api() is not None:
            try:
                self._state = _state_api()[0](self.events())
            except Exception as exc:  # an old/foreign record that does not fold: record anyway
                log.warning("%s: the recorded events do not fold (%s); appends are not checked", self.path, exc)
                self._state = None

    def _next_state(self, entries: list[_Entry]) -> Any:
        """The state after the entries; raises the domain's StateError if one is refused."""
        if self._state is _UNSET or self._state is None:
            return _UNSET
        api = _state_api()
        if api is None:
            return _UNSET
        state = self._state
        try:
            for e in entries:
                state = api[1](state, e.event)
        except api[2]:
            raise  # the domain refuses it: the caller learns, nothing is written
        except Exception:  # a bug in the derived state must not stop the record
            log.exception("session state could not apply an event; it will be refolded on demand")
            return _STALE
        return state


# ---------------------------------------------------------------------- helpers



@dataclass(frozen=True)
class SessionRecord:
    """A whole session file as a reader wants it: every event and the hash of the last."""

    path: Path
    events: list[Any]
    last_hash: str
    verified: VerifyResult | None = None  # signed or not, and by which keys (``VerifyResult.keys``)


def read_session(path: str | Path) -> SessionRecord:
    """Every event of a session file, readings filled in, read once: the chain is verified
    on the way, as :meth:`SessionFile.open` does, and a missing, foreign or damaged file
    raises the same one-line :class:`SessionFileError`. For replay, debrief, reports and
    export."""
    sf = SessionFile.open(path, readonly=True, keep_events=True)
    try:
        return SessionRecord(path=Path(path), events=sf.events(), last_hash=sf.last_hash, verified=sf.verified)
    finally:
        sf.close()

def _add_key(con: sqlite3.Connection, signer: Signer, first_seq: int) -> int:
    cur = con.execute("INSERT INTO signing_keys(fingerprint, algorithm, public_key, first_seq) VALUES (?,?,?,?)",
                      (signer.fingerprint, ALGORITHM, signer.public_raw, first_seq))
    return int(cur.lastrowid)


def _sign(con: sqlite3.Connection, signer: Signer, key_id: int, seq: int, head_hash: str) -> None:
    con.execute("INSERT INTO signatures(seq, key_id, sig) VALUES (?,?,?)",
                (seq, key_id, signer.sign_head(seq, head_hash)))


def _resume_signing(con: sqlite3.Connection, signer: Signer, has_tables: bool, key_ids: dict[str, int],
                    head_signed: bool, head_seq: int, head_hash: str) -> int:
    """Make the file ready to be signed by ``signer`` (tables, key row) and sign its head if
    nothing signs it yet (an older unsigned file: this installation vouches for the chain as
    it found it). One transaction; returns the key's id."""
    con.execute("BEGIN IMMEDIATE")
    try:
        if not has_tables:
            for stmt in _statements(SIGNING_SCHEMA):
                con.execute(stmt)
        key_id = key_ids.get(signer.fingerprint)
        if key_id is None:
            key_id = _add_key(con, signer, head_seq + (1 if head_signed else 0))
        if not head_signed:
            _sign(con, signer, key_id, head_seq, head_hash)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    return key_id


def _first_entry(opened: SessionOpened) -> tuple[SessionOpened, _Entry]:
    body_obj = event_body(opened.model_copy(update={"seq": 1}))
    body = canonical_json(body_obj)
    h = chain_hash(GENESIS, body)
    stored = decode_event(body)
    return stored, _Entry(1, "session_opened", body_obj["t"], body.decode("utf-8"), GENESIS, h, None, 0, stored)


def _probe_writable(con: sqlite3.Connection) -> None:
    """Raise sqlite3.Error unless this connection can write the file.

    On a read-only file or file system SQLite opens the file read-only without a word, and
    a file already in WAL mode needs no write to be "switched" to it: without this probe a
    resumed recording would only learn at its first append that nothing can be saved. The
    probe rewrites the head with its own value inside a transaction and rolls it back.
    """
    con.execute("BEGIN IMMEDIATE")
    try:
        con.execute("UPDATE meta SET value = value WHERE key = 'head_seq'")
    finally:
        con.execute("ROLLBACK")


def _remove_new(path: Path) -> None:
    """Remove a session file this process has just created and failed to initialise."""
    for p in (path, path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal"),
              path.with_name(path.name + "-shm")):
        try:
            p.unlink()
        except OSError:
            pass


def _statements(script: str) -> list[str]:
    out, cur = [], []
    for line in script.strip().splitlines():
        cur.append(line)
        joined = "\n".join(cur)
        if sqlite3.complete_statement(joined):
            out.append(joined)
            cur = []
    return out


def _connect(path: Path, factory: type[sqlite3.Connection] | None) -> sqlite3.Connection:
    kwargs: dict[str, Any] = {"isolation_level": None, "check_same_thread": False}
    if factory is not None:
        kwargs["factory"] = factory
    try:
        con = sqlite3.connect(str(path), **kwargs)
        con.execute("PRAGMA busy_timeout = 5000")
    except sqlite3.Error as exc:
        raise SessionFileError(f"{path}: cannot open ({exc})") from None
    return con


def _lock(path: Path) -> int | None:
    """An exclusive flock on the file: one recording process per session file."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise SessionFileError(f"{path}: cannot open ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SessionFileBusy(f"{path}: another process is recording into this session file") from None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


@dataclass(frozen=True)
class SessionScan:
    """A session file as a summary reader wants it (``scan_session``): the events it folds,
    validated; the light kinds' bodies and readings bytes; and the hash of the last event."""

    path: Path
    events: list[Any]  # validated events of every kind not in ``light``, in seq order
    light: list[tuple[dict[str, Any], bytes | None]]  # (body, canonical readings bytes or None)
    last_hash: str
    verified: VerifyResult | None = None  # signed or not, and by which keys (as ``SessionRecord``)


def scan_session(path: str | Path, light: frozenset[str]) -> SessionScan:
    """One verified pass over a session file for a summary (the course index): the hash
    chain, seq order, readings digests and head are checked for every event as
    ``verify`` does; events of the ``light`` kinds (readings batches, training events) are
    not re-encoded nor validated as models (``walk``'s light mode) and come back as bodies
    with their readings still as canonical bytes (``canonical.reading_values``). A missing,
    foreign or damaged file raises the one-line :class:`SessionFileError` of ``open``."""
    path = Path(path)
    sniff(path)
    try:
        con = connect_readonly(path)
    except sqlite3.Error as exc:
        raise NotASessionFile(f"{path}: cannot open as a session file ({exc})") from None
    kept: list[tuple[Any, bytes | None]] = []
    try:
        result, _info = walk(con, path, keep=kept, light=light)
    finally:
        con.close()
    if not result.ok:
        raise DamagedSessionFile(
            f"{path}: damaged at event seq {result.first_bad_seq}: {result.reason}; "
            "nothing was changed (see `chairside verify`)", result)
    events: list[Any] = []
    bodies: list[tuple[dict[str, Any], bytes | None]] = []
    for ev, raw in kept:
        if ev.__class__ is dict:
            bodies.append((ev, raw))
        else:
            events.append(ev)
    return SessionScan(path=path, events=events, light=bodies, last_hash=result.last_hash, verified=result)
