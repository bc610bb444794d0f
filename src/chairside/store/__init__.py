"""Session store: the append-only, hash-chained SQLite session file; verify; export.

May import: chairside.domain, stdlib (sqlite3, hashlib, json, csv). Must not import:
textual, serial, chairside.transport, chairside.alarms, chairside.service.
"""
