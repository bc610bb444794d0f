"""What a replay runs on: a session file's events, or a raw capture decoded byte-exactly
through its driver (a CSRAW1 capture at its receive times; plain device bytes, with their
driver named, at the device's own times: ``chairside.transport.replay_source``), as timed inputs.

Owns: ``ReplayError``, ``Input``, ``Recording``, ``load_recording`` and
``collector_paused``. Reads files only (through ``chairside.store.read_session`` and
``chairside.transport.ReplaySource``); no clock.
Must not import: textual, chairside.ui, chairside.service.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from chairside.domain.events import ALARM_EVENT_KINDS, CLINICAL_EVENT_KINDS, SessionOpened
from chairside.domain.readings import DeviceStatus, Reading
from chairside.store import SessionFileError, read_session
from chairside.transport import CaptureError, ReplaySource, is_capture


class ReplayError(ValueError):
    """The file cannot be replayed; the message says what and where (one line)."""


@dataclass(frozen=True, slots=True)
class Input:
    """One timed input of a replay: ``kind`` readings / status / event."""

    t: datetime
    rank: int  # order among inputs at the same time: status 0, readings 1, events 2
    order: int  # then the order of the record
    kind: str
    payload: Any


@dataclass
class Recording:
    """What a replay runs on: the inputs in time order and what was recorded at the time."""

    path: Path
    source: str  # "session" or "capture"
    driver: str
    protocol: str
    opened: SessionOpened | None
    inputs: list[Input]
    recorded_alarms: list[Any] = field(default_factory=list)  # alarm events as recorded
    # the record's own event numbers of its other events (readings groups aside), by kind and time
    recorded_seqs: dict[tuple[str, datetime], list[int]] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    events_total: int = 0
    last_hash: str = ""
    closed: bool = False

    @property
    def duration_s(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def event_times(self) -> list[datetime]:
        """Times of the clinical events (for next/previous event)."""
        return [i.t for i in self.inputs if i.kind == "event" and i.payload.kind in CLINICAL_EVENT_KINDS]


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a recording is built. Loading a 4-hour session
    makes a few hundred thousand objects that all stay alive and form no garbage cycles; the
    collector's repeated full scans of them as they pile up cost about a third of a
    ``--speed max`` replay (bench/bench_replay.py). Only collection is delayed: reference
    counting frees everything else as usual."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load_recording(path: str | Path, driver: str | None = None, *, protocol: str | None = None) -> Recording:
    """A session file or a raw capture as a ``Recording``; ``ReplayError`` otherwise."""
    p = Path(path)
    if not p.exists():
        raise ReplayError(f"{p}: no such file")
    if p.is_dir():
        raise ReplayError(f"{p}: is a folder, not a session file or raw capture")
    with collector_paused():
        if is_capture(p):
            try:
                return _load_capture(p, driver, protocol)
            except CaptureError as exc:
                raise ReplayError(str(exc).splitlines()[0]) from None
        if _is_sqlite(p) or driver is None:
            try:
                return _load_session(p, protocol)
            except ReplayError:
                if _is_sqlite(p):
                    raise
                raise ReplayError(f"{p}: not a session file, not a CSRAW1 raw capture (tried both); if it holds "
                                  "a monitor's bytes, name its driver: --driver ge-s5|masimo|hl7") from None
        # plain device bytes (a capture from another tool, `simulate --out`): through the driver
        try:
            return _load_capture(p, driver, protocol)
        except CaptureError as exc:
            detail = str(exc).split(": ", 2)[-1].split(" (tried")[0]
            raise ReplayError(f"{p}: {detail} (tried: session file, CSRAW1 raw capture, plain {driver} bytes)") from None


SQLITE_MAGIC = b"SQLite format 3\x00"


def _is_sqlite(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _load_session(p: Path, protocol: str | None) -> Recording:
    try:
        record = read_session(p)
    except SessionFileError as exc:
        raise ReplayError(str(exc).splitlines()[0] + " (expected a session file or a raw capture)") from None
    except Exception as exc:  # noqa: BLE001 - sqlite and OS errors name the file
        raise ReplayError(f"{p}: cannot read as a session file: {exc}") from None
    events, last_hash = record.events, record.last_hash
    if not events or events[0].kind != "session_opened":
        raise ReplayError(f"{p}: the session file has no session_opened event")
    opened: SessionOpened = events[0]
    inputs: list[Input] = []
    alarms: list[Any] = []
    driver = ""
    pending_pause: tuple[datetime, str] | None = None
    seqs: dict[tuple[str, datetime], list[int]] = {("session_opened", opened.t): [opened.seq]}
    for ev in events[1:]:
        k = ev.kind
        if k != "readings_recorded" and k not in ALARM_EVENT_KINDS:
            seqs.setdefault((k, ev.t), []).append(ev.seq)
        if k == "readings_recorded":
            # one batch per receive time: the chunks the link handed on, in the order received
            for t, rs in groupby(ev.readings, key=lambda r, t0=ev.t: r.receive_time or t0):
                inputs.append(Input(t, 1, ev.seq, "readings", list(rs)))
        elif k == "device_status":
            driver = driver or ev.driver
            inputs.append(Input(ev.t, 0, ev.seq, "status", ev.status))
        elif k in ALARM_EVENT_KINDS:
            alarms.append(ev)
            if k == "alarm_acknowledged" and ev.by:
                inputs.append(Input(ev.t, 2, ev.seq, "event", ev))
            elif k == "alarm_silenced" and ev.by and ev.mode == "audio_paused":
                key = (ev.t, ev.by)
                if pending_pause != key:  # one pause of the audio silences every alarm at once
                    inputs.append(Input(ev.t, 2, ev.seq, "event", ev))
                pending_pause = key
        elif k in CLINICAL_EVENT_KINDS or k == "training":
            inputs.append(Input(ev.t, 2, ev.seq, "event", ev))
    inputs.sort(key=lambda i: (i.t, i.rank, i.order))
    end = max([opened.t, *(i.t for i in inputs), *(a.t for a in alarms)])
    return Recording(path=p, source="session", driver=driver or "", protocol=protocol or opened.protocol,
                     opened=opened, inputs=inputs, recorded_alarms=alarms, recorded_seqs=seqs, start=opened.t,
                     end=end, events_total=len(events), last_hash=last_hash,
                     closed=any(e.kind == "session_closed" for e in events))


def _load_capture(p: Path, driver: str | None, protocol: str | None) -> Recording:
    batches: list[list[Any]] = []
    src = ReplaySource(p, driver, on_output=batches.append, speed=None)
    src.run()
    inputs: list[Input] = []
    last: datetime | None = None
    for n, batch in enumerate(batches):
        t = max((x.receive_time for x in batch if x.receive_time is not None), default=last)
        if t is None:
            continue
        last = t
        readings = [x for x in batch if isinstance(x, Reading)]
        for s in (x for x in batch if isinstance(x, DeviceStatus)):
            inputs.append(Input(t, 0, n, "status", s))
        if readings:
            inputs.append(Input(t, 1, n, "readings", readings))
    inputs.sort(key=lambda i: (i.t, i.rank, i.order))
    if not inputs:
        raise ReplayError(f"{p}: the raw capture holds no readings for driver {src.driver.name}")
    return Recording(path=p, source="capture", driver=src.driver.name, protocol=protocol or "",
                     opened=None, inputs=inputs, start=inputs[0].t, end=inputs[-1].t)
