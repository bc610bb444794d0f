"""Every benchmark script runs in its --quick form and prints figures (no timing asserted:
speed targets are met in the benchmarks themselves, not in unit tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("bench_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_quick_runs(script: Path):
    out = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    # a benchmark that prints no number measured nothing
    assert any(ch.isdigit() for ch in out.stdout), out.stdout
