"""The error of the session-state fold, shared by its parts.

Owns: ``StateError`` and ``event_label`` (how an error names the event it refuses).
Must not import: anything outside stdlib; of chairside nothing.
"""

from __future__ import annotations

from typing import Any


class StateError(ValueError):
    """An event that cannot be applied to the state; the message names the event."""


def event_label(ev: Any, seq: int) -> str:
    return f"event #{seq} ({ev.kind})"
