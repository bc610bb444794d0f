"""Properties of the raw-capture format: any chunks and times round-trip exactly; any damage
gives either the intact prefix or a CaptureError with an offset inside the file, never
another exception."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from chairside.transport import CaptureError, CaptureReader, CaptureWriter

START = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)

chunks = st.lists(st.tuples(st.integers(0, 10**8), st.binary(min_size=1, max_size=200)), min_size=0, max_size=30)


def _write(path: Path, items) -> list[tuple[datetime, bytes]]:
    expected = []
    t_us = 0
    with CaptureWriter(path, driver="masimo", start=START, monotonic_origin=0.0) as w:
        for step_us, data in items:
            t_us += step_us
            when = START + timedelta(microseconds=t_us)
            w.write(when, t_us / 1e6, data)
            expected.append((when, data))
    return expected


@settings(max_examples=60, deadline=None)
@given(chunks)
def test_any_chunks_round_trip(items):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.raw"
        expected = _write(path, items)
        recs = list(CaptureReader(path, strict=True))
        assert [(r.receive_time, r.data) for r in recs] == expected
        assert [r.mono_ns for r in recs] == [round((r.receive_time - START).total_seconds() * 1e6) * 1000
                                             for r in recs]


@settings(max_examples=150, deadline=None)
@given(chunks, st.data())
def test_damage_never_raises_anything_but_capture_error(items, data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.raw"
        expected = _write(path, items)
        original = path.read_bytes()
        raw = bytearray(original)
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del raw[pos:]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        path.write_bytes(bytes(raw))
        got = []
        reader = CaptureReader(path)
        try:
            for rec in reader:
                got.append((rec.receive_time, rec.data))
        except CaptureError as exc:
            # the bad record starts at or before the first byte that differs from the file as
            # written (an inserted byte equal to the one it displaces changes nothing there)
            first_diff = next((i for i, (a, b) in enumerate(zip(original, raw)) if a != b),
                              min(len(original), len(raw)))
            assert 0 <= exc.offset <= first_diff
        else:
            if kind == "cut":
                assert got == expected[:len(got)]
        # what was delivered before the damage is always the true prefix
        assert got == expected[:len(got)]
