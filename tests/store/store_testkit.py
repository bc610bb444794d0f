"""Helpers for the store tests: a session opened event, readings, and an independent
re-implementation of the documented chain formula (canonical.py's docstring) so tests do
not check the store against itself."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chairside.domain import events as ev
from chairside.domain.clock import ManualClock
from chairside.domain.readings import Reading

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SIX = [("hr", "bpm", "ecg"), ("pr", "bpm", "spo2"), ("spo2", "%", "spo2"),
       ("nibp_sys", "mmHg", "nibp"), ("nibp_dia", "mmHg", "nibp"), ("nibp_map", "mmHg", "nibp")]


def clock() -> ManualClock:
    return ManualClock(T0)


def opened(c: ManualClock, **kw) -> ev.SessionOpened:
    base = dict(t=c.now(), session_id="sess-1", patient_id="P-0001", weight_kg=72.5,
                protocol="iv-ketamine-depression", staff=("AB",), author="AB")
    base.update(kw)
    return ev.SessionOpened(**base)


def six_readings(t: datetime, k: int = 0) -> list[Reading]:
    """One second of monitoring: the six vital-sign parameters (one of them missing)."""
    out = []
    for i, (p, unit, src) in enumerate(SIX):
        if (k + i) % 17 == 0:
            out.append(Reading(param=p, value=None, unit=unit, valid=False, flags=("no_data",),
                               device_time=t, receive_time=t + timedelta(milliseconds=40), source=src))
        else:
            out.append(Reading(param=p, value=60.0 + i + (k % 7) * 0.5, unit=unit, device_time=t,
                               receive_time=t + timedelta(milliseconds=40), source=src))
    return out


def raw_rows(path: Path) -> list[tuple]:
    con = sqlite3.connect(str(path))
    try:
        return con.execute("SELECT seq, kind, t, body, prev_hash, hash FROM events ORDER BY seq").fetchall()
    finally:
        con.close()


def recompute_chain(path: Path) -> list[str]:
    """The chain recomputed from the raw rows with the documented formula."""
    prev = "0" * 64
    out = []
    for seq, _kind, _t, body, prev_hash, h in raw_rows(path):
        assert prev_hash == prev, f"seq {seq}: prev_hash"
        want = hashlib.sha256(bytes.fromhex(prev) + body.encode("utf-8")).hexdigest()
        assert want == h, f"seq {seq}: hash"
        obj = json.loads(body)
        assert json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == body.encode()
        assert obj["seq"] == seq
        out.append(h)
        prev = h
    return out


def raw_readings(path: Path) -> dict[int, bytes]:
    con = sqlite3.connect(str(path))
    try:
        return {s: zlib.decompress(d) for s, d in con.execute("SELECT batch_seq, data FROM readings")}
    finally:
        con.close()


def attacker(path: Path) -> sqlite3.Connection:
    """A raw connection with the append-only triggers dropped, as an attacker would."""
    con = sqlite3.connect(str(path), isolation_level=None)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    return con
