"""Messages the console passes upward (Textual's "messages up" rule).

Owns: ``SnapshotArrived`` (a new service snapshot, posted from a service thread with
``post_message``) and ``CommandDone`` (a service command finished in a worker thread).
Must not import: chairside.store, chairside.transport (the UI talks to the service only).
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from chairside.service.model import Snapshot


class SnapshotArrived(Message):
    """The service published a new snapshot (the app keeps only the newest)."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class CommandDone(Message):
    """A service command completed (``error`` is the exception when it was refused)."""

    def __init__(self, name: str, result: Any = None, error: BaseException | None = None) -> None:
        super().__init__()
        self.name = name
        self.result = result
        self.error = error
