"""Session store: the append-only, hash-chained SQLite session file, its schema and canonical
form; verify; owner-only file writing. (Reports live in ``chairside.reports``.)

May import: chairside.domain, stdlib (sqlite3, hashlib, json, csv). Must not import:
textual, serial, chairside.transport, chairside.alarms, chairside.service.

Public API: :class:`SessionFile` (create/open/append/append_readings/flush/tick/retry/
events/readings/state/last_hash/degraded/close), :func:`read_session` -> :class:`SessionRecord`
(a whole file for a reader, verified and read once), :func:`scan_session` -> :class:`SessionScan`
(the same verified pass for a summary: readings left as bytes), :func:`verify` -> :class:`VerifyResult`,
and the errors :class:`SessionFileError` (base), :class:`NotASessionFile`,
:class:`DamagedSessionFile`, :class:`SessionFileBusy`. The byte forms that are hashed are
documented in :mod:`chairside.store.canonical`; the layout in :mod:`chairside.store.schema`.
"""

from chairside.store.schema import (
    DamagedSessionFile,
    NotASessionFile,
    SessionFileBusy,
    SessionFileError,
)
from chairside.store.session_file import SessionFile, SessionRecord, SessionScan, read_session, scan_session
from chairside.store.verify import VerifyResult, verify

__all__ = [
    "DamagedSessionFile",
    "NotASessionFile",
    "SessionFile",
    "SessionFileBusy",
    "SessionFileError",
    "SessionRecord",
    "SessionScan",
    "VerifyResult",
    "read_session",
    "scan_session",
    "verify",
]
