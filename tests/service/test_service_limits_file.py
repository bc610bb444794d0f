"""Issue 15: the limits file is chosen at start (the ``limits`` setting, ``--limits FILE``,
the console's start screen); a bad one is refused at once with the file and the bad entry
named (one line, no traceback); the session record names the limits file and its SHA-256.

Expected values come from the files themselves (their bytes' SHA-256, the limit written into
the test's copy), never from the code under test."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chairside.domain.clock import ManualClock
from chairside.service import CommandRefused, MonitorService
from chairside.store import read_session
from pilot_kit import set_field, settle

ROOT = Path(__file__).resolve().parents[2]
LIMITS = ROOT / "src" / "chairside" / "data" / "limits"
BASE = (LIMITS / "standard.toml").read_text(encoding="utf-8")
SPO2_LOW_MED = 'priority = "medium", limit = 90, delay_s = { value = 15,'
RR_MED = 'priority = "medium", limit = 8,'


def _clinic_file(tmp_path: Path, limit: int = 93) -> Path:
    """The standard limits with the SpO2 medium tier at ``limit`` (a clinic's own choice)."""
    assert SPO2_LOW_MED in BASE
    p = tmp_path / "clinic-limits.toml"
    p.write_text(BASE.replace(SPO2_LOW_MED, SPO2_LOW_MED.replace("limit = 90", f"limit = {limit}")), encoding="utf-8")
    return p


def _bad_file(tmp_path: Path, what: str) -> Path:
    p = tmp_path / f"bad-{what}.toml"
    if what == "delay":
        assert SPO2_LOW_MED in BASE
        p.write_text(BASE.replace(SPO2_LOW_MED, SPO2_LOW_MED.replace("value = 15", "value = -15")), encoding="utf-8")
    else:
        assert RR_MED in BASE
        p.write_text(BASE.replace(RR_MED, RR_MED.replace('"medium"', '"urgent"')), encoding="utf-8")
    return p


def _cli(*args: str, tmp_path: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, CHAIRSIDE_LOG_DIR=str(tmp_path / "log"), **(env_extra or {}))
    env.pop("CHAIRSIDE_CONFIG", None)
    env.pop("CHAIRSIDE_LIMITS", None) if not env_extra or "CHAIRSIDE_LIMITS" not in env_extra else None
    return subprocess.run([sys.executable, "-m", "chairside.cli", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)


def _record(tmp_path: Path, session: Path, *extra: str, env_extra: dict[str, str] | None = None):
    return _cli("record", "--port", "sim://uneventful?driver=masimo&speed=max", "--driver", "masimo",
                "--session", str(session), "--duration", "20", "--weight", "70", *extra,
                tmp_path=tmp_path, env_extra=env_extra)


@pytest.mark.parametrize("what, names", [
    ("delay", ("delay_s", "spo2_low", "not negative")),
    ("priority", ("priority", "rr_low", "'urgent'")),
])
def test_record_refuses_a_bad_limits_file_at_start_naming_file_and_entry(tmp_path, what, names):
    bad = _bad_file(tmp_path, what)
    session = tmp_path / "s.chairside"
    p = _record(tmp_path, session, "--limits", str(bad))
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert str(bad) in lines[0] and all(n in lines[0] for n in names), lines[0]
    assert not session.exists()  # nothing was recorded on it


def test_record_with_a_limits_file_names_it_and_its_hash_in_the_record(tmp_path):
    clinic = _clinic_file(tmp_path)
    session = tmp_path / "s.chairside"
    p = _record(tmp_path, session, "--limits", str(clinic))
    assert p.returncode == 0, p.stderr
    opened = read_session(session).events[0]
    assert opened.kind == "session_opened"
    assert Path(opened.limits_file) == clinic.resolve()
    assert opened.limits_sha256 == hashlib.sha256(clinic.read_bytes()).hexdigest()


def test_without_a_choice_the_record_names_the_templates_own_limits(tmp_path):
    session = tmp_path / "s.chairside"
    p = _record(tmp_path, session)
    assert p.returncode == 0, p.stderr
    opened = read_session(session).events[0]
    std = (LIMITS / "standard.toml").resolve()  # the depression template's profile
    assert Path(opened.limits_file) == std
    assert opened.limits_sha256 == hashlib.sha256(std.read_bytes()).hexdigest()


def test_the_limits_setting_from_the_environment_is_used_and_a_bad_one_refused(tmp_path):
    clinic = _clinic_file(tmp_path)
    session = tmp_path / "s.chairside"
    p = _record(tmp_path, session, env_extra={"CHAIRSIDE_LIMITS": str(clinic)})
    assert p.returncode == 0, p.stderr
    assert Path(read_session(session).events[0].limits_file) == clinic.resolve()
    bad = _bad_file(tmp_path, "delay")
    p = _record(tmp_path, tmp_path / "t.chairside", env_extra={"CHAIRSIDE_LIMITS": str(bad)})
    assert p.returncode == 2 and str(bad) in p.stderr and "Traceback" not in p.stderr


def test_the_engine_runs_on_the_chosen_file(tmp_path):
    clinic = _clinic_file(tmp_path, limit=93)
    svc = MonitorService(clock=ManualClock(), session_dir=tmp_path, limits=clinic)
    try:
        svc.open_session(patient_id="P-1", weight_kg=70, staff=["AB"], path=tmp_path / "s.chairside")
        assert Path(svc.profile.path) == clinic.resolve()
        (ld,) = [ld for ld in svc.profile.ladder if ld.name == "spo2_low"]
        assert 93 in [t.limit for t in ld.tiers]
        assert svc.engine.profile is svc.profile  # the engine alarms on the chosen file
    finally:
        svc.shutdown()
    with pytest.raises(CommandRefused) as ei:
        MonitorService(clock=ManualClock(), session_dir=tmp_path, limits=_bad_file(tmp_path, "priority"))
    assert "bad-priority.toml" in str(ei.value) and "rr_low" in str(ei.value)


def test_open_session_refuses_a_bad_file_and_opens_nothing(tmp_path):
    svc = MonitorService(clock=ManualClock(), session_dir=tmp_path)
    try:
        with pytest.raises(CommandRefused) as ei:
            svc.open_session(patient_id="P-1", weight_kg=70, staff=["AB"], path=tmp_path / "s.chairside",
                             limits=_bad_file(tmp_path, "delay"))
        assert "bad-delay.toml" in str(ei.value) and "spo2_low" in str(ei.value)
        assert not svc.session_open and not (tmp_path / "s.chairside").exists()
    finally:
        svc.shutdown()


async def test_the_start_screen_chooses_the_limits_file_and_refuses_a_bad_one(tmp_path):
    from chairside.ui import create_app

    clock = ManualClock()
    svc = MonitorService(clock=clock, session_dir=tmp_path)
    path = tmp_path / "s.chairside"
    app = create_app(svc, clock, None, show_start=True, flash=False, bell=False,
                     start_defaults={"path": str(path), "patient_id": "P-9", "weight_kg": 70, "staff": "AB",
                                     "weight_confirmed_by": "CD", "asked": True, "hours_fasted": 6,
                                     "escort": True, "consent": True, "medications": True,
                                     "allergies": "none known"})
    try:
        async with app.run_test(size=(120, 50)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert type(screen).__name__ == "StartScreen"
            bad = _bad_file(tmp_path, "priority")
            set_field(screen, "limits", str(bad))
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert type(app.screen).__name__ == "StartScreen" and not svc.session_open
            shown = str(screen.query_one("#dialog-error").content)
            assert "bad-priority.toml" in shown and "rr_low" in shown and "urgent" in shown
            clinic = _clinic_file(tmp_path)
            set_field(screen, "limits", str(clinic))
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert type(app.screen).__name__ == "MonitorScreen" and svc.session_open
    finally:
        svc.shutdown()
    opened = read_session(path).events[0]
    assert Path(opened.limits_file) == clinic.resolve()
    assert opened.limits_sha256 == hashlib.sha256(clinic.read_bytes()).hexdigest()
