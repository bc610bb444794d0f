"""Canonical byte forms of events and readings, and the SHA-256 chain over them.

Owns: the exact bytes that are hashed in a session file, so that anyone can recompute the
chain without Chairside. Must not import: textual, serial, chairside.transport,
chairside.alarms, chairside.service (stdlib + chairside.domain only).

Canonical JSON (events)
    ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)`` encoded as UTF-8: keys sorted, no whitespace, non-ASCII kept as
    UTF-8, NaN/Infinity refused. ``obj`` is the event as pydantic's JSON mode dumps it
    (times as ISO 8601 with ``Z``), *including* its ``seq``; for ``readings_recorded``
    the ``readings`` list is left out of the body (the readings are stored in their own
    table) and the body carries ``count`` and ``digest`` instead.

Chain
    ``hash[n] = sha256(bytes.fromhex(hash[n-1]) + body[n])`` with ``hash[0]`` = 64 zeros
    (``GENESIS``); hashes are stored as lowercase hex.

Canonical readings (one batch)
    A JSON array (same ``json.dumps`` options) with one array per reading, in the order
    they were recorded: ``[param, value, unit, valid, flags, device_time, receive_time,
    source, origin]``. ``value`` is a float or null (a NaN or infinite value is stored as
    null with ``valid`` false and the flag ``not_finite``: a missing value, never a number); ``flags`` an array of strings;
    a time is an integer count of microseconds since 1970-01-01T00:00:00Z when it is
    timezone-aware, the ISO 8601 text when it is naive (a device clock without a zone),
    or null. ``digest = sha256(those bytes)`` in hex. The store keeps the batch bytes
    zlib-compressed; the digest is always over the uncompressed canonical bytes.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from math import isfinite
from collections.abc import Iterable, Sequence
from operator import attrgetter
from datetime import UTC, datetime, timedelta
from typing import Any

from chairside.domain.events import EventAdapter
from chairside.domain.readings import Reading

GENESIS = "0" * 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

_dumps = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def canonical_json(obj: Any) -> bytes:
    """The canonical UTF-8 JSON bytes of a JSON-able object (see module docstring)."""
    return _dumps(obj).encode("utf-8")


def chain_hash(prev_hash: str, body: bytes) -> str:
    """``sha256(prev_hash_bytes + body)`` as lowercase hex."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def event_body(event: Any) -> dict[str, Any]:
    """The JSON-mode dict that is hashed for an event (readings left out)."""
    if getattr(event, "kind", None) == "readings_recorded":
        return event.model_dump(mode="json", exclude={"readings"})
    return event.model_dump(mode="json")


def decode_event(body: str | bytes, readings: Sequence[Reading] | None = None) -> Any:
    """Parse a stored body back into its event (readings filled back in when given)."""
    event = EventAdapter.validate_json(body)
    if readings is not None:
        event = event.model_copy(update={"readings": tuple(readings)})
    return event


# --------------------------------------------------------------------------- readings


_EPOCH_ORDINAL = EPOCH.toordinal()
_FIXED = {type(UTC)}
try:  # pydantic gives validated datetimes its own fixed-offset tzinfo
    from pydantic_core import TzInfo as _TzInfo

    _FIXED.add(_TzInfo)
except ImportError:  # pragma: no cover
    pass


def _time(dt: datetime | None) -> int | str | None:
    if dt is None:
        return None
    tz = dt.tzinfo
    if tz is None:
        return dt.isoformat()
    off = tz.utcoffset(None) if type(tz) in _FIXED else dt.utcoffset()
    if off is None:
        return dt.isoformat()
    return (((dt.toordinal() - _EPOCH_ORDINAL) * 86400 + dt.hour * 3600 + dt.minute * 60 + dt.second
             - off.days * 86400 - off.seconds) * 1_000_000 + dt.microsecond - off.microseconds)


def _untime(v: int | str | None) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, str):
        return datetime.fromisoformat(v)
    return EPOCH + timedelta(microseconds=v)


_fields = attrgetter("param", "value", "unit", "valid", "flags", "device_time", "receive_time", "source",
                     "origin")


def readings_rows(readings: Iterable[Reading]) -> list[list[Any]]:
    """The canonical row of each reading (see module docstring)."""
    rows = []
    append = rows.append
    memo: dict[datetime, Any] = {}
    last_dt: Any = object()
    last_v: Any = None
    last_rt: Any = object()
    last_rv: Any = None
    for r in readings:
        param, v, unit, valid, flags, dt, rt, source, origin = _fields(r)
        if dt is not last_dt:
            last_dt = dt
            if dt is None:
                last_v = None
            else:
                last_v = memo.get(dt)
                if last_v is None:
                    last_v = memo[dt] = _time(dt)
        if rt is not last_rt:
            last_rt = rt
            if rt is None:
                last_rv = None
            else:
                last_rv = memo.get(rt)
                if last_rv is None:
                    last_rv = memo[rt] = _time(rt)
        if v is not None:
            if v.__class__ is not float:
                v = float(v)
            if not isfinite(v):  # JSON has no NaN/inf: a value that is not a number is missing
                v, valid, flags = None, False, (*flags, "not_finite")
        append([param, v, unit, valid, flags, last_v, last_rv, source, origin])
    return rows


def encode_readings(readings: Iterable[Reading]) -> tuple[bytes, str, int]:
    """(canonical bytes, sha256 hex digest, count) of one batch."""
    rows = readings_rows(readings)
    data = canonical_json(rows)
    return data, hashlib.sha256(data).hexdigest(), len(rows)


_new = object.__new__
_set = object.__setattr__
_READING_FIELDS = ("param", "value", "unit", "valid", "flags", "device_time", "receive_time", "source", "origin")


def _construct_reading(param: str, value: float | None, unit: str, valid: bool, flags: tuple[str, ...],
                       device_time: datetime | None, receive_time: datetime | None, source: str,
                       origin: str) -> Reading:
    """What ``Reading.model_construct`` gives for all nine fields, without its per-field loop
    (the rows are this module's own, read back from a hash-checked file)."""
    r = _new(Reading)
    _set(r, "__dict__", {"param": param, "value": value, "unit": unit, "valid": valid, "flags": flags,
                         "device_time": device_time, "receive_time": receive_time, "source": source,
                         "origin": origin})
    _set(r, "__pydantic_fields_set__", set(_READING_FIELDS))
    _set(r, "__pydantic_extra__", None)
    _set(r, "__pydantic_private__", None)
    return r


def _model_construct_reading(*args: Any) -> Reading:
    return Reading.model_construct(**dict(zip(_READING_FIELDS, args, strict=True)))


def _construct_proven() -> bool:
    """True when ``_construct_reading`` gives exactly what ``model_construct`` gives (checked at
    import; a pydantic or ``Reading`` change of shape falls back to ``model_construct``)."""
    if tuple(Reading.model_fields) != _READING_FIELDS or Reading.__pydantic_post_init__ is not None:
        return False
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    samples = [("spo2", 97.0, "%", True, (), t, t, "spo2", "device"),
               ("pr", None, "bpm", False, ("sensor_off",), None, t, "spo2", "manual")]
    try:
        for sample in samples:
            a, b = _construct_reading(*sample), _model_construct_reading(*sample)
            if not (a == b and a.__dict__ == b.__dict__ and list(a.__dict__) == list(b.__dict__)
                    and a.model_fields_set == b.model_fields_set and a.model_dump_json() == b.model_dump_json()
                    and hash(a) == hash(b)):
                return False
    except Exception:  # noqa: BLE001 - any difference: use pydantic's own constructor
        return False
    return True


_reading = _construct_reading if _construct_proven() else _model_construct_reading


def decode_readings(data: bytes) -> list[Reading]:
    """Readings back from a batch's canonical bytes (times come back in UTC)."""
    construct = _reading
    out = []
    cache: dict[Any, datetime | None] = {}
    # decoded here: json.loads of bytes first sniffs their encoding, a third of the time of a small batch
    for param, value, unit, valid, flags, dt, rt, source, origin in json.loads(data.decode("utf-8")):
        d = cache.get(dt)
        if d is None and dt is not None:
            d = cache[dt] = _untime(dt)
        r = cache.get(rt)
        if r is None and rt is not None:
            r = cache[rt] = _untime(rt)
        out.append(construct(param, value, unit, valid, tuple(flags), d, r, source, origin))
    return out


def reading_values(data: bytes) -> list[tuple[str, float | None, bool, int | str | None]]:
    """``(param, value, valid, time)`` of each reading of a batch's canonical bytes, without
    building ``Reading`` objects (a summary scanning an hour of readings for its peaks);
    ``time`` is the row's device time, else its receive time, still in the stored form:
    ``reading_time`` turns it into a datetime."""
    text = data.decode("utf-8")
    rows, end = _DECODER.raw_decode(text)  # canonical bytes: no whitespace to skip
    if end != len(text):
        raise ValueError(f"readings batch: extra data at character {end}")
    return [(row[0], row[1], row[3], row[5] if row[5] is not None else row[6]) for row in rows]


_DECODER = json.JSONDecoder()


def reading_time(v: int | str | None) -> datetime | None:
    """A stored reading time (``reading_values``) as a datetime (UTC when it was aware)."""
    return _untime(v)


def compress(data: bytes) -> bytes:
    # small batches (1 Hz monitoring) squeeze well and cost little; big bursts favour speed
    return zlib.compress(data, 6 if len(data) < 65536 else 1)


def decompress(blob: bytes) -> bytes:
    return zlib.decompress(blob)
