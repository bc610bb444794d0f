"""Fast construction of domain records for the drivers' hot paths.

Owns: ``reading(dict)`` and ``status(dict)``: the same full pydantic validation as
``Reading(**fields)`` / ``DeviceStatus(**fields)`` (pydantic 2's ``__pydantic_validator__``),
minus the keyword-argument wrapper of ``BaseModel.__init__``, about a third of the cost of
a reading when a driver makes thousands a second.
``trusted_reading(param, value, unit, valid, flags, device_time, source)``: what
``Reading.model_construct`` does (pydantic's own constructor for data that is already
valid: no validation), without its per-field Python loop; about half the cost of
``reading``. Only for a driver whose arguments are correct by construction: ``param``,
``unit`` and ``source`` constant strings, ``value`` a ``float`` or None, ``valid`` a bool,
``flags`` a tuple of strings, ``device_time`` an aware datetime or None. The result equals
the validated record field for field (and in ``model_fields_set``); an import-time check
proves it against ``reading`` and falls back to ``reading`` if pydantic or ``Reading`` ever
change shape.
Must not import: anything outside chairside.domain and pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chairside.domain.readings import DeviceStatus, Reading

reading: Callable[[dict[str, Any]], Reading] = Reading.__pydantic_validator__.validate_python
status: Callable[[dict[str, Any]], DeviceStatus] = DeviceStatus.__pydantic_validator__.validate_python

_new = object.__new__
_set = object.__setattr__


def _constructed(param: str, value: float | None, unit: str, valid: bool, flags: tuple[str, ...],
                 device_time: datetime | None, source: str) -> Reading:
    r = _new(Reading)
    # the field order of Reading, as validation builds it; receive_time and origin at defaults
    _set(r, "__dict__", {"param": param, "value": value, "unit": unit, "valid": valid, "flags": flags,
                         "device_time": device_time, "receive_time": None, "source": source, "origin": "device"})
    _set(r, "__pydantic_fields_set__", {"param", "value", "unit", "valid", "flags", "device_time", "source"})
    _set(r, "__pydantic_extra__", None)
    _set(r, "__pydantic_private__", None)
    return r


def _validated(param: str, value: float | None, unit: str, valid: bool, flags: tuple[str, ...],
               device_time: datetime | None, source: str) -> Reading:
    return reading({"param": param, "value": value, "unit": unit, "valid": valid, "flags": flags,
                    "device_time": device_time, "source": source})


_PROBE_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _same(a: Reading, b: Reading) -> bool:
    return (type(a) is type(b) and a == b and a.__dict__ == b.__dict__ and list(a.__dict__) == list(b.__dict__)
            and a.model_fields_set == b.model_fields_set and a.model_dump_json() == b.model_dump_json()
            and hash(a) == hash(b)
            and a.model_copy(update={"receive_time": _PROBE_TIME}) == b.model_copy(
                update={"receive_time": _PROBE_TIME}))


def _proven() -> bool:
    """True when construction gives exactly what validation gives for this pydantic/Reading."""
    if (tuple(Reading.model_fields) != ("param", "value", "unit", "valid", "flags", "device_time",
                                        "receive_time", "source", "origin")
            or Reading.__pydantic_post_init__ is not None or Reading.model_config.get("extra") != "forbid"):
        return False
    samples = [("spo2", 97.0, "%", True, (), _PROBE_TIME, "spo2"),
               ("pr", None, "bpm", False, ("sensor_off", "no_data"), None, "spo2")]
    try:
        return all(_same(_constructed(*s), _validated(*s)) for s in samples)
    except Exception:  # noqa: BLE001 - any difference at all: use validation
        return False


TRUSTED_IS_CONSTRUCTED = _proven()
trusted_reading: Callable[..., Reading] = _constructed if TRUSTED_IS_CONSTRUCTED else _validated
