"""Replay: a session file or a raw capture run again through the monitoring pipeline.

``recording`` loads what is replayed, ``replayer`` runs it through a fresh service on the
recorded times and recomputes the alarms, ``compare`` sets them beside the recorded ones,
``console`` paces a replay for the console and holds its read-only service.
Must not import: textual, chairside.ui.
"""

from chairside.replay.compare import COMPARED_KINDS, AlarmDifference, compare_alarms
from chairside.replay.console import SPEEDS, ReplayPlayer, ReplayService
from chairside.replay.recording import Input, Recording, ReplayError, collector_paused, load_recording
from chairside.replay.replayer import CAPTURE_PATIENT, CAPTURE_WEIGHT_KG, Replayer

__all__ = [
    "CAPTURE_PATIENT", "CAPTURE_WEIGHT_KG", "COMPARED_KINDS", "SPEEDS", "AlarmDifference", "Input", "Recording",
    "ReplayError", "ReplayPlayer", "ReplayService", "Replayer", "collector_paused", "compare_alarms",
    "load_recording",
]
