"""drivers/_fast.py: ``trusted_reading`` (construction without validation) must give exactly
the record that validation gives, or fall back to validation."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from chairside.domain.readings import Reading
from chairside.drivers import _fast

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
times = st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)))
values = st.one_of(st.none(), st.floats(allow_nan=False))


def test_construction_is_in_use_on_this_pydantic():
    # if this fails, pydantic or Reading changed shape and the drivers silently run on the
    # (slower, still correct) validated path: update _fast._constructed
    assert _fast.TRUSTED_IS_CONSTRUCTED and _fast.trusted_reading is _fast._constructed


@given(param=names, value=values, unit=st.sampled_from(["%", "bpm", "mmHg", "g/dL"]), valid=st.booleans(),
       flags=st.lists(names, max_size=4).map(tuple), when=times, source=names)
def test_trusted_equals_validated(param, value, unit, valid, flags, when, source):
    a = _fast._constructed(param, value, unit, valid, flags, when, source)
    b = Reading(param=param, value=value, unit=unit, valid=valid, flags=flags, device_time=when, source=source)
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
    assert a.model_fields_set == b.model_fields_set
    assert a.model_dump_json() == b.model_dump_json()
    assert pickle.loads(pickle.dumps(a)) == b
    now = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    ca, cb = a.model_copy(update={"receive_time": now}), b.model_copy(update={"receive_time": now})
    assert ca == cb and ca.model_fields_set == cb.model_fields_set and a.receive_time is None


def test_frozen_like_a_validated_reading():
    import pytest
    from pydantic import ValidationError

    r = _fast.trusted_reading("spo2", 97.0, "%", True, (), None, "spo2")
    with pytest.raises(ValidationError):
        r.value = 1.0  # type: ignore[misc]


def test_a_difference_is_detected():
    a = _fast._constructed("spo2", 97.0, "%", True, (), None, "spo2")
    b = _fast._validated("spo2", 97.0, "%", True, ("x",), None, "spo2")
    assert not _fast._same(a, b)
    assert _fast._same(a, _fast._validated("spo2", 97.0, "%", True, (), None, "spo2"))
