"""Files that carry patient data are written owner-only (0600), as the session file is:
every report and export format, the debrief, and a new raw capture, whatever the umask;
a report is written whole or not at all."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime

import pytest

from report_scenario import esk_file, iv_file  # noqa: F401 (fixtures)
from chairside.cli import main
from chairside.store.private import open_private_text, write_private_text
from chairside.transport.capture import CaptureWriter, iter_capture


@pytest.fixture()
def open_umask():
    old = os.umask(0o022)  # the common default: new files would be 0644
    try:
        yield
    finally:
        os.umask(old)


def mode(p):
    return stat.S_IMODE(p.stat().st_mode)


def test_every_export_format_is_owner_only(tmp_path, iv_file, esk_file, open_umask, capsys):
    for fmt, name, src in (("csv", "r.csv", iv_file), ("jsonl", "r.jsonl", iv_file), ("html", "r.html", iv_file),
                           ("fhir", "r.fhir.json", iv_file), ("rems-json", "r.rems.json", esk_file)):
        out = tmp_path / name
        out.write_text("an older, world-readable copy\n")
        os.chmod(out, 0o644)
        assert main(["export", str(src), "--format", fmt, "--out", str(out)]) == 0
        assert mode(out) == 0o600, fmt
        assert out.stat().st_size > 100 and "older" not in out.read_text(encoding="utf-8")
    assert main(["debrief", str(iv_file), "--format", "md", "--out", str(tmp_path / "d.md")]) == 0
    assert mode(tmp_path / "d.md") == 0o600
    assert not list(tmp_path.glob(".*.part"))  # no temporary file left behind


def test_a_report_is_written_whole_or_not_at_all(tmp_path, open_umask):
    target = tmp_path / "r.html"
    write_private_text(target, "first\n")
    with pytest.raises(RuntimeError):
        with open_private_text(target) as f:
            f.write("half of a new rep")
            raise RuntimeError("the renderer failed")
    assert target.read_text() == "first\n" and mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_a_new_raw_capture_is_owner_only(tmp_path, open_umask):
    path = tmp_path / "s.raw"
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    with CaptureWriter(path, driver="masimo", start=start) as w:
        w.write(start, 0.0, b"SPO2=097 BPM=072\r\n")
    assert mode(path) == 0o600
    assert list(iter_capture(path)) == [(start, b"SPO2=097 BPM=072\r\n")]
