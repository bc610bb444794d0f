"""``chairside record``: the headless monitor through the real sim:// port and driver."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args, timeout=60):
    env = dict(os.environ, CHAIRSIDE_LOG_DIR=os.environ.get("TMPDIR", "/tmp") + "/chairside-test-logs",
               CHAIRSIDE_CONFIG="")
    env.pop("CHAIRSIDE_CONFIG")
    exe = Path(sys.executable).parent / "chairside"
    return subprocess.run([str(exe), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.slow
def test_record_writes_a_verifiable_file_and_prints_alarms(tmp_path):
    session = tmp_path / "rec.chairside"
    # --duration counts the session clock: 40 simulated minutes, 8 s of wall time at x300
    r = _run("record", "--port", "sim://hypertensive-surge?driver=ge-s5&seed=7&speed=300", "--driver", "ge-s5",
             "--session", str(session), "--duration", "2400", "--weight", "80", "--staff", "AB")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert any("***" in ln or "ESCALATED" in ln for ln in lines), r.stderr
    assert lines[-1].startswith("chairside record:")
    v = _run("verify", str(session))
    assert v.returncode == 0, v.stdout + v.stderr
    from chairside.store import SessionFile

    sf = SessionFile.open(session, readonly=True)
    try:
        kinds = [e.kind for e in sf.events()]
        assert kinds[0] == "session_opened" and kinds[-1] == "session_closed"
        assert "alarm_raised" in kinds and "readings_recorded" in kinds
    finally:
        sf.close()


def test_record_bad_protocol_is_a_one_line_usage_error(tmp_path):
    r = _run("record", "--port", "loop://", "--driver", "ge-s5", "--session", str(tmp_path / "x.chairside"),
             "--protocol", "no-such-protocol", "--duration", "1")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "no-such-protocol" in r.stderr
