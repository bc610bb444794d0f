"""The diagnostic log: a rotating file with link events, decode errors and exceptions."""

from __future__ import annotations

import logging

from chairside.diagnostics import FILE_NAME, log_exception, setup_diagnostics, shutdown_diagnostics
from chairside.domain.clock import ManualClock
from chairside.domain.readings import DeviceStatus
from chairside.service import MonitorService


def test_link_events_and_exceptions_reach_the_rotating_file(tmp_path):
    shutdown_diagnostics()
    path = setup_diagnostics(tmp_path / "logs", max_bytes=4000, backups=2)
    try:
        assert path == tmp_path / "logs" / FILE_NAME
        clock = ManualClock()
        svc = MonitorService(clock=clock, session_dir=tmp_path, port=None)
        svc.feed([DeviceStatus(kind="link_lost", detail="/dev/ttyUSB0: device disconnected",
                               flags=("transport",), receive_time=clock.now())])
        try:
            raise RuntimeError("boom in a widget")
        except RuntimeError as exc:
            log_exception("console", exc)
        for i in range(60):  # rotation keeps the file bounded
            logging.getLogger("chairside.test").info("filler line %d %s", i, "x" * 40)
        text = path.read_text()
        rotated = sorted((tmp_path / "logs").glob(FILE_NAME + ".*"))
        assert rotated and len(rotated) <= 2
        everything = text + "".join(p.read_text() for p in rotated)
        assert "link_lost" in everything and "device disconnected" in everything
        assert "boom in a widget" in everything and "Traceback" in everything
        assert path.stat().st_size <= 4000 + 200
    finally:
        shutdown_diagnostics()


def test_unwritable_log_folder_does_not_stop_the_console(tmp_path, capsys):
    shutdown_diagnostics()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    try:
        assert setup_diagnostics(blocker / "logs") is None
        assert "diagnostic log not available" in capsys.readouterr().err
    finally:
        shutdown_diagnostics()


def test_the_log_and_its_rotations_are_owner_only(tmp_path):
    """0600 like the session file, whatever the umask, for each file of the rotation; an
    existing log left readable by an older version is made 0600 when opened."""
    import os
    import stat

    shutdown_diagnostics()
    old_umask = os.umask(0o022)
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / FILE_NAME).write_text("old line\n")
    os.chmod(folder / FILE_NAME, 0o644)
    try:
        path = setup_diagnostics(folder, max_bytes=2000, backups=2)
        for i in range(80):
            logging.getLogger("chairside.test").info("filler line %d %s", i, "x" * 40)
        files = [path, *sorted(folder.glob(FILE_NAME + ".*"))]
        assert len(files) == 3
        assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(0o600)}
    finally:
        os.umask(old_umask)
        shutdown_diagnostics()
