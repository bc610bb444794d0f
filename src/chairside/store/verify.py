"""Verify a session file: recompute the hash chain, the readings digests and the head.

Owns: ``verify(path) -> VerifyResult`` and the chain walk that ``SessionFile.open`` also
uses before it resumes a file. Opens the file read-only; never writes.
Must not import: textual, serial, chairside.transport, chairside.alarms, chairside.service.

What is detected, and how (the first bad event is always named):

- an edited event body or hash: the recomputed ``sha256(prev_hash + body)`` differs, or
  the stored ``prev_hash`` is not the previous row's hash;
- edited readings: the batch's sha256 differs from the ``digest`` its event chained;
- a deleted event: a gap in ``seq`` (the missing seq is named); deleted readings: the
  readings_recorded event has no batch;
- reordering: every body carries its own ``seq``, so a row moved to another seq (or
  renumbered after a deletion) no longer matches, and the chain breaks there;
- truncation: ``meta.head_seq``/``head_hash`` are written in the same transaction as
  every append, so deleting the last rows leaves events missing below the head; a file
  cut short in bytes makes SQLite fail while reading a page, and the walk names the
  first event it could not read.

- a re-chained file (an event edited, every later hash and the head recomputed): the
  chain alone cannot see it (it has no secret), but every commit group's head is signed
  with the writing installation's Ed25519 key (``signing.py``): the first signature that
  no longer matches names the commit, and the first event after the last good
  signature is the first bad event; signatures removed off the tail leave the head
  unsigned; signatures of events deleted off the tail are left over beyond the head.

Signatures are checked after the chain. ``signatures="all"`` (``verify``) checks every
commit's signature; ``"head"`` (``SessionFile.open``: replay, reports, resume) checks the
head's, which covers the whole chain through the hashes, and walks the others only to
name the first bad commit when the head's fails. Whether a key is *trusted* is not decided
here: the result names the keys and the caller compares them with the installation's own
and its trusted keys (``chairside.keys``). A file without the signing tables is intact
but *unsigned* (``signed`` False): an older chairside wrote it, or its signatures were
removed.

What cannot be detected from inside the file: someone holding the installation's private
key who re-chains and re-signs (a signature proves which installation wrote the file, not
who sat at it), someone who re-signs with a key of their own (the key is named, and not
trusted), or who rolls the file back to an earlier complete state (e.g. deletes an
uncheckpointed ``-wal`` file, which SQLite treats as "those commits never happened").
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chairside.domain.events import EventAdapter
from chairside.store.canonical import GENESIS, canonical_json, chain_hash
from chairside.store.schema import FORMAT, FORMAT_VERSION, NotASessionFile, sniff
from chairside.store.signing import check as check_signature
from chairside.store.signing import fingerprint


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int  # events that verified (the intact prefix when not ok)
    first_bad_seq: int | None = None
    reason: str = ""
    last_hash: str = GENESIS  # hash of the last good event
    closed: bool = False  # the last event is session_closed
    session_id: str = ""
    signed: bool = False  # the head is signed and every checked signature matched
    keys: tuple[str, ...] = ()  # fingerprints of the keys that signed the file, in order of use
    head_key: str = ""  # fingerprint of the key that signed the head
    signatures: int = 0  # signatures checked

    def signing_text(self) -> str:
        """One phrase for reports: which keys signed the file, or that nothing did."""
        if self.signed and self.keys:
            return ("signed by installation key " if len(self.keys) == 1 else "signed by installation keys ") \
                + ", ".join(self.keys)
        return "UNSIGNED (written before signing existed, or its signatures were removed)"

    def line(self) -> str:
        if self.ok:
            return f"ok: {self.count} events, last hash {self.last_hash}"
        where = f"event seq {self.first_bad_seq}" if self.first_bad_seq is not None else "the file"
        return f"FAILED: first bad event: {where}: {self.reason} ({self.count} events before it verify)"


@dataclass
class WalkInfo:
    """What the walk learned besides ok/bad (used by SessionFile.open)."""

    meta: dict[str, str] = field(default_factory=dict)
    opened: dict[str, Any] | None = None
    last_body: dict[str, Any] | None = None
    signing_tables: bool = False  # the file has the signing tables (it may still hold no signature)
    key_ids: dict[str, int] = field(default_factory=dict)  # fingerprint -> signing_keys.id
    head_signed: bool = False  # a signature row exists at the head seq


@dataclass
class _Signing:
    keys: dict[int, tuple[str, bytes]]  # id -> (fingerprint, raw public key)
    order: list[int]  # key ids in order of first use
    sigs: dict[int, tuple[int, bytes]]  # seq -> (key id, signature)


def _read_signing(con: sqlite3.Connection) -> _Signing | None:
    """The signing tables, or None when the file has none (an unsigned file)."""
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"signing_keys", "signatures"} <= names:
        return None
    keys: dict[int, tuple[str, bytes]] = {}
    order: list[int] = []
    for kid, fp, algo, pub, _first in con.execute(
            "SELECT id, fingerprint, algorithm, public_key, first_seq FROM signing_keys ORDER BY first_seq, id"):
        keys[kid] = (fp, pub if isinstance(pub, bytes) else b"") if algo == "ed25519" else ("", b"")
        order.append(kid)
    sigs = {seq: (kid, sig) for seq, kid, sig in con.execute("SELECT seq, key_id, sig FROM signatures")}
    return _Signing(keys, order, sigs)


def _connect_ro(path: Path) -> sqlite3.Connection:
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    con = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA busy_timeout = 5000")
    return con


def _needs_recovery(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_READONLY") or "readonly" in str(exc).lower()


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection. A writer killed at the wrong moment (during the WAL recovery
    of an earlier crash) can leave the WAL index needing a recovery that a read-only
    connection may not run ("attempt to write a readonly database"): then a normal connection
    runs it first. Recovery rebuilds the index from the WAL; no committed byte changes, and
    the normal connection is closed while the read-only one is open, so it checkpoints
    nothing either."""
    con = _connect_ro(path)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if not _needs_recovery(exc):
            return con  # the caller's first read reports it, saying where
        con.close()
        rec = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            rec.execute("PRAGMA busy_timeout = 5000")
            rec.execute("PRAGMA query_only = 1")
            rec.execute("SELECT count(*) FROM sqlite_master").fetchone()
            con = _connect_ro(path)
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            rec.close()
    except sqlite3.DatabaseError:
        pass  # not a database, damaged: the caller's first read reports it
    return con


def read_meta(con: sqlite3.Connection, path: Path) -> dict[str, str]:
    """The meta table; raises NotASessionFile when it is not a chairside layout."""
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise _Damaged(1, f"cannot read the file's schema ({exc})") from None
    if not {"meta", "events", "readings"} <= tables:
        if not tables:
            raise NotASessionFile(f"{path}: a chairside file with no tables (its creation was interrupted)")
        raise NotASessionFile(f"{path}: not a chairside session file (tables: {', '.join(sorted(tables))})")
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise _Damaged(1, f"cannot read the meta table ({exc})") from None
    if meta.get("format") != FORMAT:
        raise NotASessionFile(f"{path}: not a chairside session file (meta format {meta.get('format')!r})")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise _Damaged(1, f"meta format_version {meta.get('format_version')!r} is not a number") from None
    if version > FORMAT_VERSION:
        raise NotASessionFile(
            f"{path}: session file format {version} is newer than this chairside reads ({FORMAT_VERSION})"
        )
    return meta


_DECODER = json.JSONDecoder()


def _loads_exact(text: str) -> Any:
    """``json.loads`` for a body that is not re-encoded (``walk``'s light kinds): the decoder
    without its whitespace scans, and nothing may follow the value."""
    obj, end = _DECODER.raw_decode(text)
    if end != len(text):
        raise ValueError(f"extra data at character {end}")
    return obj


class _Damaged(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


def walk(con: sqlite3.Connection, path: Path,
         keep: list[tuple[Any, bytes | None]] | None = None,
         signatures: str = "head", light: frozenset[str] = frozenset()) -> tuple[VerifyResult, WalkInfo]:
    """Walk every event in seq order, checking chain, bodies, readings, head and signatures
    (``signatures``: ``"all"`` or ``"head"``, see the module docstring).

    ``keep``: a list that gets ``(event, readings bytes or None)`` for each event as it
    verifies (the event as validated, its readings still to decode), so that a reader who
    wants them all (a replay) does not read and validate the file a second time. On a
    damaged file it holds the intact prefix; callers use it only when the walk is ok.

    ``light``: kinds a summary reader does not fold (readings batches, training events):
    their chain hash, seq, kind/t columns, readings digest and count are checked as for any
    event, but the body is not re-encoded to prove it canonical nor validated as an event
    model, and ``keep`` gets the body as a dict. ``verify`` never passes it.
    """
    info = WalkInfo()
    try:
        meta = read_meta(con, path)
    except _Damaged as d:
        return VerifyResult(False, 0, d.seq, d.reason), info
    info.meta = meta
    expected = 1
    prev = GENESIS
    body_obj: dict[str, Any] | None = None
    count = 0

    def bad(seq: int | None, reason: str) -> tuple[VerifyResult, WalkInfo]:
        return VerifyResult(False, count, seq, reason, prev, False, meta.get("session_id", "")), info

    try:
        signing = _read_signing(con)
    except sqlite3.DatabaseError as exc:
        return bad(1, f"cannot read the signatures (file damaged: {exc})")
    signed_at: dict[int, str] = {}  # seq -> recomputed chain hash, for each signed seq
    sig_seqs = signing.sigs if signing is not None else {}
    try:
        # each event with its readings batch, if any (one pass, not a query per batch)
        cur = con.execute(
            "SELECT e.seq, e.kind, e.t, e.body, e.prev_hash, e.hash, r.batch_seq, r.count, r.codec, r.data "
            "FROM events e LEFT JOIN readings r ON r.batch_seq = e.seq ORDER BY e.seq"
        )
        while True:
            try:
                row = cur.fetchone()
            except sqlite3.DatabaseError as exc:
                return bad(expected, f"cannot read the event (file damaged or cut short: {exc})")
            if row is None:
                break
            seq, kind, t, body, prev_hash, h, batch_seq, n, codec, data = row
            if not isinstance(seq, int) or seq != expected:
                if isinstance(seq, int) and seq > expected:
                    return bad(expected, f"event missing (the next stored event is seq {seq}): deleted")
                return bad(expected, f"stored seq {seq!r} out of order")
            if not isinstance(body, str):
                return bad(seq, "body is not text")
            if prev_hash != prev:
                return bad(seq, "prev_hash does not match the previous event's hash (chain broken)")
            try:
                body_bytes = body.encode("utf-8")
            except UnicodeEncodeError:
                return bad(seq, "body is not valid UTF-8 text")
            if not isinstance(h, str) or chain_hash(prev, body_bytes) != h:
                return bad(seq, "hash does not match sha256(prev_hash + body): the event was changed")
            is_light = kind in light
            try:
                body_obj = _loads_exact(body) if is_light else json.loads(body)
            except ValueError as exc:
                return bad(seq, f"body is not JSON ({exc})")
            if not isinstance(body_obj, dict):
                return bad(seq, "body is not a JSON object")
            if not is_light and canonical_json(body_obj) != body_bytes:
                return bad(seq, "body is not in canonical form")
            if body_obj.get("seq") != seq:
                return bad(seq, f"body says seq {body_obj.get('seq')!r}: event moved (reordered)")
            if body_obj.get("kind") != kind or body_obj.get("t") != t:
                return bad(seq, "kind/t columns do not match the body")
            try:
                event = body_obj if is_light else EventAdapter.validate_python(body_obj)
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = ".".join(str(x) for x in first.get("loc", ()))
                return bad(seq, f"body is not a valid {kind} event ({loc}: {first.get('msg')})")
            if seq == 1:
                if kind != "session_opened":
                    return bad(seq, f"the first event is {kind}, not session_opened")
                info.opened = body_obj
                if meta.get("session_id") != body_obj.get("session_id"):
                    return bad(seq, "session_id differs between meta and session_opened")
            elif kind == "session_opened":
                return bad(seq, "a second session_opened event")
            raw = None
            if kind == "readings_recorded":
                if batch_seq is None:
                    return bad(seq, "its readings are missing (deleted)")
                if codec != "zlib" or not isinstance(data, bytes):
                    return bad(seq, f"readings stored with unknown codec {codec!r}")
                try:
                    raw = zlib.decompress(data)
                except zlib.error as exc:
                    return bad(seq, f"readings cannot be decompressed ({exc}): changed or damaged")
                if hashlib.sha256(raw).hexdigest() != body_obj.get("digest"):
                    return bad(seq, "readings digest does not match: the readings were changed")
                # the digest pins the bytes the writer counted, so the stored count suffices
                if n != body_obj.get("count"):
                    return bad(seq, f"readings count mismatch ({n} stored, {body_obj.get('count')} chained)")
            if keep is not None:
                keep.append((event, raw))
            if seq in sig_seqs:
                signed_at[seq] = h
            prev = h
            count += 1
            expected += 1
        info.last_body = body_obj
        # readings nobody chained (their event was deleted off the tail)
        try:
            orphan = con.execute(
                "SELECT min(batch_seq) FROM readings WHERE batch_seq NOT IN "
                "(SELECT seq FROM events WHERE kind = 'readings_recorded')"
            ).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            return bad(expected, f"cannot read the readings table ({exc})")
        if orphan is not None:
            return bad(orphan, "readings stored for an event that is not there (event deleted)")
    except sqlite3.DatabaseError as exc:
        return bad(expected, f"cannot read the events (file damaged: {exc})")

    if count == 0:
        return bad(1, "no events: the session_opened event is missing")
    try:
        head_seq = int(meta.get("head_seq", ""))
    except ValueError:
        return bad(count + 1, f"meta head_seq {meta.get('head_seq')!r} is not a number")
    head_hash = meta.get("head_hash", "")
    if head_seq > count:
        return bad(count + 1, f"events {count + 1}..{head_seq} are missing: the file was truncated")
    if head_seq < count:
        return bad(head_seq + 1, f"events after seq {head_seq} were added outside the store (head is {head_seq})")
    if head_hash != prev:
        return bad(head_seq, "the last event's hash differs from the recorded head hash")
    closed = body_obj is not None and body_obj.get("kind") == "session_closed"
    ok = VerifyResult(True, count, None, "", prev, closed, meta.get("session_id", ""))
    if signing is None:
        return ok, info
    info.signing_tables = True
    info.key_ids = {fp: kid for kid, (fp, _raw) in signing.keys.items() if fp}
    return _check_signatures(ok, info, signing, signed_at, signatures)


def _check_signatures(ok: VerifyResult, info: WalkInfo, signing: _Signing, signed_at: dict[int, str],
                      mode: str) -> tuple[VerifyResult, WalkInfo]:
    """The chain is intact (``ok``); now the signatures of its commit groups."""
    head = ok.count
    seqs = sorted(signing.sigs)
    if not seqs:
        return ok, info  # tables but no signature: unsigned
    info.head_signed = head in signing.sigs
    used: list[str] = []
    good = 0  # the last seq covered by a good signature
    checked = 0

    def bad(seq: int, reason: str) -> tuple[VerifyResult, WalkInfo]:
        return VerifyResult(False, good, seq, reason, signed_at.get(good, "") if good else "", False,
                            ok.session_id, False, tuple(used)), info

    beyond = [q for q in seqs if q > head]
    for kid, (fp, raw) in signing.keys.items():
        if not fp or len(raw) != 32:
            return bad(1, f"signing key {kid} is not an Ed25519 public key")
        if fingerprint(raw) != fp:
            return bad(1, f"signing key {kid}: its fingerprint {fp} is not that of its public key")

    def verify_one(seq: int) -> str | None:
        kid, sig = signing.sigs[seq]
        key = signing.keys.get(kid)
        if key is None:
            return f"the signature at seq {seq} names key id {kid}, which the file does not hold"
        if not isinstance(sig, bytes) or not check_signature(key[1], sig, seq, signed_at[seq]):
            span = f"seq {seq}" if seq == good + 1 else f"seqs {good + 1}..{seq}"
            return (f"the signature of the commit of {span} (key {key[0]}) does not match the events as "
                    "they are now: changed after signing (the chain was recomputed)")
        return None

    def scan() -> tuple[VerifyResult, WalkInfo] | None:
        nonlocal good, checked
        for seq in seqs:
            if seq > head:
                break
            why = verify_one(seq)
            checked += 1
            if why is not None:
                return bad(good + 1, why)
            fp = signing.keys[signing.sigs[seq][0]][0]
            if fp not in used:
                used.append(fp)
            good = seq
        return None

    if mode == "all" or not info.head_signed or verify_one(head) is not None:
        failed = scan()
        if failed is not None:
            return failed
    else:
        checked = 1
        good = head
        used.extend(signing.keys[k][0] for k in signing.order if signing.keys[k][0])
    if beyond:
        return bad(head + 1, f"signatures for events up to seq {beyond[-1]} remain but those events are "
                             "missing: the file was cut back")
    if good != head:
        return bad(good + 1, f"events {good + 1}..{head} are not signed (the last signature is at seq {good}): "
                             "added outside chairside, or their signatures were removed")
    head_key = signing.keys[signing.sigs[head][0]][0]
    if mode != "all":
        used = [fp for fp in used if fp]  # every key the file holds (not each checked)
    return VerifyResult(True, ok.count, None, "", ok.last_hash, ok.closed, ok.session_id, True,
                        tuple(used), head_key, checked), info


def verify(path: str | Path) -> VerifyResult:
    """Verify the session file at ``path``.

    Returns a :class:`VerifyResult` (``ok`` False names the first bad event); raises
    :class:`NotASessionFile` when the file is not a chairside session file at all.
    """
    path = Path(path)
    sniff(path)
    try:
        con = connect_readonly(path)
    except sqlite3.Error as exc:
        raise NotASessionFile(f"{path}: cannot open as a session file ({exc})") from None
    try:
        result, _ = walk(con, path, signatures="all")
    finally:
        con.close()
    if not result.ok and result.count == 0:
        cut = _cut_short(path)
        if cut is not None:
            return cut
    return result


def _cut_short(path: Path) -> VerifyResult | None:
    """A file cut short in bytes: SQLite refuses it whole (its header promises more pages).

    To name the first lost event, walk a temporary copy whose header is told the true
    page count; the original is not touched.
    """
    import os
    import shutil
    import tempfile

    wal = Path(str(path) + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return None  # committed pages may live in the log: not a plain cut
    with open(path, "rb") as f:
        header = f.read(100)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    promised = int.from_bytes(header[28:32], "big")
    size = os.path.getsize(path)
    if page_size < 512 or size >= promised * page_size:
        return None
    have = size // page_size
    with tempfile.TemporaryDirectory(prefix="chairside-verify-") as tmp:
        copy = Path(tmp) / "copy.chairside"
        shutil.copyfile(path, copy)
        with open(copy, "r+b") as f:
            f.truncate(have * page_size)
            f.seek(28)
            f.write(have.to_bytes(4, "big"))
        con = connect_readonly(copy)
        try:
            result, _ = walk(con, path)
        finally:
            con.close()
    why = (f"the file was cut short at byte {size} ({have} of {promised} pages)"
           + (f"; {result.reason}" if result.reason else ""))
    seq = result.first_bad_seq if not result.ok else result.count + 1
    return VerifyResult(False, result.count, seq, why, result.last_hash, False, result.session_id)
