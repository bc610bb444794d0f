"""Alarm engine: phase-aware limits, priorities, delays, hysteresis, latching,
acknowledgement, audio pause, escalation, technical and combined alarms.

Pure and deterministic: time is passed in; state changes come out as domain events.
May import: chairside.domain, stdlib. Must not import: textual, serial, sqlite3,
chairside.store, chairside.transport, chairside.service.
"""
