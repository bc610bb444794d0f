"""The console draws on the terminal even when stderr is redirected to a file.

The real command in a pseudo-terminal: stdin and stdout on the pty, stderr to a file (as
``chairside 2>errors.log`` does). Frames must arrive on the pty, none in the file.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

pytestmark = pytest.mark.e2e


def _read_until(fd: int, wanted: bytes, timeout: float) -> bytes:
    got = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end and wanted not in got:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    return got


def test_console_draws_on_the_pty_when_stderr_goes_to_a_file(tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    err_path = tmp_path / "stderr.txt"
    env = dict(os.environ, TERM="xterm-256color", CHAIRSIDE_SESSION_DIR=str(tmp_path / "sessions"))
    env.pop("TEXTUAL_DRIVER", None)
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from chairside.cli import main; sys.exit(main([]))"],
            stdin=slave, stdout=slave, stderr=err, env=env, cwd=tmp_path, start_new_session=True,
        )
    os.close(slave)
    try:
        # the start screen's title ("New session"), drawn on the terminal
        out = _read_until(master, b"New session", timeout=30)
        assert b"\x1b[?1049h" in out, "no alternate screen on the pty"
        assert b"New session" in out, "no frame on the pty"
        os.write(master, b"\x11")  # ctrl+q
        _read_until(master, b"\x1b[?1049l", timeout=20)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = err_path.read_bytes()
    assert b"\x1b[?1049h" not in text and b"New session" not in text
