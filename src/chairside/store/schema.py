"""The session file's SQLite layout, its identification, and the store's errors.

Owns: the schema (tables, append-only triggers), the file header check that tells a
chairside session file from anything else, ``SessionFileError`` and its kinds.
Must not import: textual, serial, chairside.transport, chairside.alarms, chairside.service.

Layout (format ``chairside-session/1``, SQLite ``application_id`` 0x43485253 "CHRS")::

    meta(key TEXT PRIMARY KEY, value TEXT)          format, format_version, session_id,
                                                    created, head_seq, head_hash
    events(seq INTEGER PRIMARY KEY, kind, t, body,  body = canonical JSON (canonical.py),
           prev_hash, hash)                         hash = sha256(prev_hash + body)
    readings(batch_seq INTEGER PRIMARY KEY,         one row per readings_recorded event:
             count, codec, data BLOB)               zlib of the batch's canonical bytes
    signing_keys(id INTEGER PRIMARY KEY,            the public keys that signed this file
                 fingerprint, algorithm,            (one per installation that wrote to it)
                 public_key BLOB, first_seq)
    signatures(seq INTEGER PRIMARY KEY,             one row per commit group: the key's
               key_id, sig BLOB)                    Ed25519 signature of the head (seq, hash)
                                                    after that commit (signing.py)

The signing tables were added after the first files were written: a file without them is
an *unsigned* file (an older chairside wrote it, or someone removed them); it still
verifies as a chain, and ``chairside verify`` says it is unsigned. Resuming such a file
adds the tables, and the commits from then on are signed (each signature covers the whole
chain before it).

``meta.head_seq``/``head_hash`` are rewritten in the same transaction as every append,
so the file always names its own last event: a tail cut off after the fact (rows deleted)
no longer matches the head. They are the only values that may change; triggers refuse
UPDATE and DELETE everywhere else (an attacker can drop triggers, which is why the chain
and verify exist; the triggers stop accidents and naive edits).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_ID = 0x43485253  # "CHRS"
FORMAT = "chairside-session"
FORMAT_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    t TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE readings (
    batch_seq INTEGER PRIMARY KEY,
    count INTEGER NOT NULL,
    codec TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'chairside: session events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'chairside: session events are append-only'); END;
CREATE TRIGGER events_in_order BEFORE INSERT ON events
WHEN new.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM events)
BEGIN SELECT RAISE(ABORT, 'chairside: events are appended in seq order'); END;
CREATE TRIGGER readings_append_only_update BEFORE UPDATE ON readings
BEGIN SELECT RAISE(ABORT, 'chairside: session readings are append-only'); END;
CREATE TRIGGER readings_append_only_delete BEFORE DELETE ON readings
BEGIN SELECT RAISE(ABORT, 'chairside: session readings are append-only'); END;
CREATE TRIGGER readings_need_event BEFORE INSERT ON readings
WHEN NOT EXISTS (SELECT 1 FROM events WHERE seq = new.batch_seq AND kind = 'readings_recorded')
BEGIN SELECT RAISE(ABORT, 'chairside: readings belong to a readings_recorded event'); END;
CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta
BEGIN SELECT RAISE(ABORT, 'chairside: session meta is append-only'); END;
CREATE TRIGGER meta_head_only BEFORE UPDATE ON meta
WHEN old.key NOT IN ('head_seq', 'head_hash')
BEGIN SELECT RAISE(ABORT, 'chairside: only the head may change in meta'); END;
"""

SIGNING_SCHEMA = """
CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    algorithm TEXT NOT NULL,
    public_key BLOB NOT NULL,
    first_seq INTEGER NOT NULL
);
CREATE TABLE signatures (
    seq INTEGER PRIMARY KEY,
    key_id INTEGER NOT NULL REFERENCES signing_keys(id),
    sig BLOB NOT NULL
);
CREATE TRIGGER signing_keys_append_only_update BEFORE UPDATE ON signing_keys
BEGIN SELECT RAISE(ABORT, 'chairside: signing keys are append-only'); END;
CREATE TRIGGER signing_keys_append_only_delete BEFORE DELETE ON signing_keys
BEGIN SELECT RAISE(ABORT, 'chairside: signing keys are append-only'); END;
CREATE TRIGGER signatures_append_only_update BEFORE UPDATE ON signatures
BEGIN SELECT RAISE(ABORT, 'chairside: signatures are append-only'); END;
CREATE TRIGGER signatures_append_only_delete BEFORE DELETE ON signatures
BEGIN SELECT RAISE(ABORT, 'chairside: signatures are append-only'); END;
CREATE TRIGGER signatures_need_event BEFORE INSERT ON signatures
WHEN NOT EXISTS (SELECT 1 FROM events WHERE seq = new.seq)
BEGIN SELECT RAISE(ABORT, 'chairside: a signature signs an event that is there'); END;
"""


class SessionFileError(Exception):
    """A session file cannot be used; the message is one line naming the file and why."""


class NotASessionFile(SessionFileError):
    """The file is missing, empty, not SQLite, or SQLite but not a chairside session."""


class DamagedSessionFile(SessionFileError):
    """A chairside session file whose chain does not verify (``result`` says where)."""

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class SessionFileBusy(SessionFileError):
    """Another process is recording into this file."""


def sniff(path: Path) -> None:
    """Raise :class:`NotASessionFile` unless ``path`` starts like a chairside session file.

    Reads only the first 100 bytes (the SQLite header); never writes.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotASessionFile(f"{path}: no such file") from None
    except OSError as exc:
        raise NotASessionFile(f"{path}: cannot read ({exc.strerror})") from None
    if os.path.isdir(path):
        raise NotASessionFile(f"{path}: is a folder, not a session file")
    if st.st_size == 0:
        raise NotASessionFile(f"{path}: empty file, not a session file (was its creation interrupted?)")
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as exc:
        raise NotASessionFile(f"{path}: cannot read ({exc.strerror})") from None
    if not head.startswith(SQLITE_MAGIC):
        raise NotASessionFile(f"{path}: not a chairside session file (not an SQLite database)")
    if len(head) < 100:
        raise NotASessionFile(f"{path}: not a chairside session file (SQLite header cut short at byte {len(head)})")
    app_id = int.from_bytes(head[68:72], "big")
    if app_id != APP_ID:
        raise NotASessionFile(
            f"{path}: an SQLite database but not a chairside session file (application_id {app_id:#x} at byte 68)"
        )
