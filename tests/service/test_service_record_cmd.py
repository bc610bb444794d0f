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


def test_record_refuses_a_port_that_can_never_open_before_making_a_file(tmp_path):
    session = tmp_path / "never.chairside"
    for port, what in (("socket://127.0.0.1", "HOST:PORT"), ("nosuch://x", "nosuch"),
                       ("listen://127.0.0.1:abc", "listen://HOST:PORT")):
        r = _run("record", "--port", port, "--driver", "hl7", "--session", str(session), "--duration", "1")
        assert r.returncode == 2, (port, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and what in r.stderr, (port, r.stderr)
        assert not session.exists()


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE")
def test_record_on_a_full_disk_keeps_monitoring_says_so_and_exits_1(tmp_path):
    """A real write failure (the file-size limit of the process, as a full disk): the headless
    monitor goes on in memory, prints the problem on stderr at once, and exits 1 naming what
    is not in the file; what was committed before verifies."""
    import resource
    import signal

    session = tmp_path / "full.chairside"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, resource.RLIM_INFINITY))

    env = dict(os.environ, CHAIRSIDE_LOG_DIR=str(tmp_path / "log"))  # the log hits the limit too
    exe = Path(sys.executable).parent / "chairside"
    r = subprocess.run([str(exe), "record", "--port", "sim://hypertensive-surge?driver=masimo&seed=3&speed=max",
                        "--driver", "masimo", "--session", str(session), "--duration", "900", "--staff", "AB"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, preexec_fn=limit)
    assert r.returncode == 1, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert any(ln.startswith("chairside record: SESSION FILE PROBLEM") for ln in lines), lines
    assert lines[-1].startswith("chairside record: NOT EVERYTHING IS IN"), lines
    assert "Traceback" not in r.stderr and "Logging error" not in r.stderr  # said once, plainly
    v = _run("verify", str(session))
    assert v.returncode == 0, v.stdout + v.stderr  # what reached the file is intact
