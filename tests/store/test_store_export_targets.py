"""``export --out`` never replaces what is not a regular file, and says so in one line.

A folder, a symbolic link or a path whose folder is missing: exit 2, nothing written. A
FIFO or a device is written in place (it stays a FIFO / device). A write that fails on the
way (a full device, like /dev/full) exits 1. The full device is a private node with
/dev/full's numbers made in tmp_path, so no test can replace the machine's own /dev/full.
"""

from __future__ import annotations

import os
import stat
import threading

import pytest
from store_testkit import clock, opened, six_readings

from chairside.cli import main
from chairside.domain import events as ev
from chairside.store import SessionFile

FORMATS = ["csv", "jsonl", "html", "fhir"]
CSV_HEADER = "t,param,value,unit,valid,flags,source,device_time,receive_time"  # DESIGN / export docstring


@pytest.fixture
def session(tmp_path):
    c = clock()
    p = tmp_path / "s.chairside"
    sf = SessionFile.create(p, opened(c), c)
    for k in range(5):
        c.advance(1.0)
        sf.append_readings(six_readings(c.now(), k))
    sf.append(ev.SessionClosed(t=c.now(), author="AB"))
    sf.close()
    return p


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_existing_folder_is_refused(session, tmp_path, capsys, fmt):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    assert main(["export", str(session), "--format", fmt, "--out", str(folder)]) == 2
    assert "folder" in _one_line(capsys.readouterr().err)
    assert folder.is_dir() and sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_symlink_is_refused_and_left_alone(session, tmp_path, capsys, fmt):
    link = tmp_path / "latest.out"
    os.symlink(tmp_path / "target.out", link)
    assert main(["export", str(session), "--format", fmt, "--out", str(link)]) == 2
    assert "symbolic link" in _one_line(capsys.readouterr().err)
    assert link.is_symlink() and not (tmp_path / "target.out").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_folder_is_bad_input(session, tmp_path, capsys, fmt):
    out = tmp_path / "no-such-folder" / "x.out"
    assert main(["export", str(session), "--format", fmt, "--out", str(out)]) == 2
    assert "does not exist" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("fmt", ["csv", "html"])
def test_fifo_is_written_in_place(session, tmp_path, capsys, fmt):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert main(["export", str(session), "--format", fmt, "--out", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    text = got[0].decode("utf-8")
    if fmt == "csv":
        assert text.splitlines()[1] == CSV_HEADER and len(text.splitlines()) == 2 + 5 * 6
    else:
        assert text.lstrip().lower().startswith("<!doctype html")


@pytest.fixture
def full_device(tmp_path):
    """A character device node with /dev/full's numbers (1, 7): every write fails ENOSPC."""
    node = tmp_path / "full"
    try:
        os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, 7))
    except PermissionError:
        # not root: /dev/full itself cannot be replaced by this user, so it is safe to aim at
        return "/dev/full"
    return str(node)


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_error_on_a_full_device_exits_1_and_keeps_the_device(session, full_device, capsys, fmt):
    assert main(["export", str(session), "--format", fmt, "--out", full_device]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "write failed" in line and os.strerror(28) in line  # ENOSPC
    assert stat.S_ISCHR(os.lstat(full_device).st_mode)


def test_a_regular_file_is_still_replaced_whole_and_0600(session, tmp_path, capsys):
    out = tmp_path / "r.csv"
    out.write_text("old\n")
    os.chmod(out, 0o644)
    assert main(["export", str(session), "--format", "csv", "--out", str(out)]) == 0
    assert out.read_text().splitlines()[1] == CSV_HEADER
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
