"""The monitoring service: the facade ``MonitorService`` over the one write path.

Modules: ``monitor`` (the facade), ``recorder`` (state -> store -> alarm engine -> timeline),
``pump`` (threads, inbox, subscribers), ``view`` (the snapshot; staleness and NIBP cadence),
``commands`` (nurse commands -> domain events), ``ports`` (what the UI may use), ``model``
(the snapshot's parts and the command errors), ``data`` (console defaults), ``memory``
(the in-memory record before a session file exists).
Must not import: textual, chairside.ui.
"""

from chairside.service.model import (
    CommandRefused,
    DischargeBlocked,
    DischargeCheck,
    GateBlocked,
    Snapshot,
)
from chairside.service.monitor import MonitorService

__all__ = [
    "MonitorService", "Snapshot", "CommandRefused", "GateBlocked", "DischargeBlocked",
    "DischargeCheck",
]
