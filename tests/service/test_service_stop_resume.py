"""Monitoring never stops without a record: a signalled ``record`` closes its session with the
signal as the reason; a crash and a resume leave a visible gap (``session_resumed`` naming the
last event before it and the time lost); time in the record never runs backwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from readings_kit import cont
from chairside.domain.clock import ManualClock
from chairside.service import CommandRefused, MonitorService
from chairside.store import read_session, verify

ROOT = Path(__file__).resolve().parents[2]
PORT = "sim://uneventful?driver=masimo&seed=5&speed=1"


def _env():
    env = dict(os.environ, CHAIRSIDE_LOG_DIR=os.environ.get("TMPDIR", "/tmp") + "/chairside-test-logs")
    env.pop("CHAIRSIDE_CONFIG", None)
    return env


def _record(session: Path, *extra: str) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "chairside"
    return subprocess.Popen([str(exe), "record", "--port", PORT, "--driver", "masimo", "--session", str(session),
                             "--staff", "AB", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=ROOT)


def _wait_for_readings(session: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stderr.read()
        if session.exists():
            try:
                if any(e.kind == "readings_recorded" for e in read_session(session).events):
                    return
            except Exception:  # noqa: BLE001 - the writer may be mid-commit; look again
                pass
        time.sleep(0.3)
    raise AssertionError("no readings were recorded")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signalled_record_closes_its_session_with_the_signal_as_reason(tmp_path, sig):
    session = tmp_path / "sig.chairside"
    proc = _record(session)
    _wait_for_readings(session, proc)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert verify(session).ok
    last = read_session(session).events[-1]
    assert last.kind == "session_closed" and sig.name in last.reason, (last, err)


@pytest.mark.slow
def test_resume_after_kill_9_records_the_gap(tmp_path):
    session = tmp_path / "crash.chairside"
    proc = _record(session)
    _wait_for_readings(session, proc)
    proc.kill()  # SIGKILL: no chance to write anything
    proc.communicate(timeout=30)
    before = read_session(session).events
    assert before[-1].kind != "session_closed"
    pause_s = 2.0
    time.sleep(pause_s)
    again = _record(session, "--duration", "2")
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert verify(session).ok
    after = read_session(session).events
    resumed = [e for e in after if e.kind == "session_resumed"]
    assert len(resumed) == 1, err
    r = resumed[0]
    last = before[-1]
    assert (r.last_seq, r.last_kind, r.last_t) == (last.seq, last.kind, last.t)
    assert r.gap_s == pytest.approx((r.t - last.t).total_seconds()) and r.gap_s >= pause_s
    times = [e.t for e in after]
    assert times == sorted(times)  # time in the record never runs backwards
    assert after[-1].kind == "session_closed"


def _svc(clock, tmp_path):
    return MonitorService(clock=clock, session_dir=tmp_path)


def test_resume_in_process_names_the_last_event_and_the_time_lost(tmp_path):
    clock = ManualClock()
    svc = _svc(clock, tmp_path)
    path = svc.open_session(patient_id="P-1", weight_kg=70, staff=["AB"], path=tmp_path / "s.chairside")
    svc.feed(cont(clock))
    note = svc.add_note(author="AB", text="last words before the crash")
    svc.stop()  # the process dies: nothing closes the session
    svc.store.close()
    clock.advance(600)
    svc2 = _svc(clock, tmp_path)
    ev = svc2.resume_session(path, author="CD")
    assert ev.kind == "session_resumed" and ev.author == "CD"
    assert (ev.last_seq, ev.last_kind, ev.gap_s) == (note.seq, "note", 600.0)
    assert svc2.snapshot().timeline[-1].kind == "session_resumed"
    svc2.shutdown()


def test_a_resume_whose_clock_is_behind_the_record_is_refused(tmp_path):
    clock = ManualClock()
    svc = _svc(clock, tmp_path)
    path = svc.open_session(patient_id="P-1", weight_kg=70, staff=["AB"], path=tmp_path / "s.chairside")
    clock.advance(300)
    svc.add_note(author="AB", text="at five minutes")
    svc.shutdown()
    behind = ManualClock(clock.now() - timedelta(seconds=60))
    with pytest.raises(CommandRefused, match="never runs backwards"):
        _svc(behind, tmp_path).resume_session(path)
    assert read_session(path).events[-1].kind == "note"  # nothing written by the refused resume


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="pseudo-terminal")
def test_the_console_on_sigterm_resumes_then_closes_with_the_signal_as_reason(tmp_path):
    """``chairside run`` in a pseudo-terminal on a session left open by a killed ``record``:
    the resume records the gap, SIGTERM closes the session naming the signal."""
    import pty
    import select

    session = tmp_path / "tty.chairside"
    proc = _record(session)
    _wait_for_readings(session, proc)
    proc.kill()
    proc.communicate(timeout=30)
    exe = str(Path(sys.executable).parent / "chairside")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console on the pseudo-terminal
        os.chdir(ROOT)
        os.execve(exe, [exe, "run", "--port", PORT, "--driver", "masimo", "--session", str(session)], _env())

    def drain(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    os.read(fd, 65536)
                except OSError:
                    return

    end = time.monotonic() + 60
    while time.monotonic() < end and not any(e.kind == "session_resumed" for e in read_session(session).events):
        drain(0.5)
    os.kill(pid, signal.SIGTERM)
    status = None
    end = time.monotonic() + 30
    while time.monotonic() < end and status is None:
        drain(0.2)
        done, code = os.waitpid(pid, os.WNOHANG)
        status = code if done else None
    assert status is not None and os.waitstatus_to_exitcode(status) == 0
    events = read_session(session).events
    assert verify(session).ok
    assert [e.kind for e in events].count("session_resumed") == 1
    assert events[-1].kind == "session_closed" and "SIGTERM" in events[-1].reason
