#!/usr/bin/env python3
"""Start-up of the real ``chairside`` command in a pseudo-terminal (issue 17).

What a nurse sees: the command is spawned in a pty of a fixed size (100 x 30, TERM
xterm-256color) exactly as typed (``chairside``: the built-in simulated monitor, with
Python start-up, settings, the simulator with numpy and the start screen), and the
terminal output is fed to a terminal emulator (pyte) as it arrives. The time is from the
spawn to the first screen on which the HR tile shows a number (its big digits; dashes do
not count), or, while the start screen covers the tiles, the compact vitals line above it
shows one (``HR 70 bpm``). Median of N runs (target < 1 s). A second figure does the same with a real
port (a loopback TCP server sending Masimo lines: no simulator, no numpy), to the first
screen with the SpO2 tile showing a number.

Each run gets its own empty config, data and log folders (no user settings are read).

    .venv/bin/python bench/bench_startup.py              # 7 runs each
    .venv/bin/python bench/bench_startup.py --runs 15
    .venv/bin/python bench/bench_startup.py --quick      # 1 run each (smoke)
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

import pyte

ROOT = Path(__file__).resolve().parents[1]
ROWS, COLS = 30, 100
TARGET_S = 1.0
TIMEOUT_S = 30.0
DIGIT_STROKES = set("┃┏┓┗┛┣┫╻╹")  # the big-digit font; a missing value is drawn as ╺━╸ only
MASIMO_LINE = b"01/01/26 09:00:01 SN=0000012345 SPO2=097% BPM=073 PI=02.44% SPCO=--.-% SPMET=--.-% " \
              b"DESAT=-- PIDELTA=+00 PVI=--- ALARM=0000 EXC=000000\r\n"


def chairside_argv() -> list[str]:
    """The installed console script beside this Python (what the user types), else the same
    entry point through ``-c``."""
    script = Path(sys.executable).with_name("chairside")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from chairside.cli import main; sys.exit(main())"]


def tile_shows_number(screen: pyte.Screen, title: str) -> bool:
    """True when the vital ``title`` (e.g. ``HR bpm``) shows a number: in its tile (big digits
    under the border that reads the title) or, while a form covers the tiles, in the compact
    vitals line above it (``HR 70 bpm``)."""
    lines = screen.display
    name, unit = title.split(" ", 1)
    compact = re.compile(rf"(^|\s){re.escape(name)} \d+(\.\d+)? {re.escape(unit)}")
    if any(compact.search(line) for line in lines):
        return True
    for row, line in enumerate(lines):
        col = line.find(f"─ {title} ")
        if col < 0:
            continue
        left = line.rfind("╭", 0, col)
        right = line.find("╮", col)
        if left < 0 or right < 0:
            continue
        for below in lines[row + 1:row + 6]:
            if DIGIT_STROKES & set(below[left + 1:right]):
                return True
    return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn_until(argv: list[str], tile: str, env_extra: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the console) from spawning ``argv`` in a pty to the first
    screen whose ``tile`` shows a number. The CPU figure does not grow when other processes
    share the machine's cores; the wall figure does."""
    scratch = tempfile.mkdtemp(prefix="chairside-startup-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAIRSIDE_")}
    env.update(TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS), CHAIRSIDE_LOG_DIR=scratch,
               XDG_CONFIG_HOME=scratch, XDG_DATA_HOME=scratch, XDG_STATE_HOME=scratch, XDG_CACHE_HOME=scratch)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(env_extra or {})
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(screen)
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal's size, then the command
        fcntl.ioctl(sys.stdout.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        os.execvpe(argv[0], argv, env)
    try:
        while True:
            elapsed = time.perf_counter() - t0
            if elapsed > TIMEOUT_S:
                raise SystemExit(f"no {tile} value on screen after {TIMEOUT_S:.0f} s:\n" + "\n".join(screen.display))
            ready, _, _ = select.select([fd], [], [], 0.02)
            if not ready:
                continue
            try:
                data = os.read(fd, 1 << 16)
            except OSError:
                data = b""
            if not data:
                raise SystemExit("the console exited before showing vitals:\n" + "\n".join(screen.display))
            stream.feed(data)
            if tile_shows_number(screen, tile):
                return time.perf_counter() - t0, cpu_seconds(pid)
    finally:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                break
            time.sleep(0.02)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
        shutil.rmtree(scratch, ignore_errors=True)


class MasimoServer:
    """A loopback TCP 'monitor' sending one Masimo line a second to whoever connects."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn:
            while not self.stop.is_set():
                try:
                    conn.sendall(MASIMO_LINE)
                except OSError:
                    return
                self.stop.wait(1.0)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def report(what: str, runs: list[tuple[float, float]]) -> None:
    times = [w for w, _ in runs]
    med = statistics.median(times)
    cpu = statistics.median(c for _, c in runs)
    print(f"{what}: median {med * 1000:.0f} ms over {len(times)} run(s) (min {min(times) * 1000:.0f}, "
          f"max {max(times) * 1000:.0f}; console CPU median {cpu * 1000:.0f} ms; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); target < {TARGET_S * 1000:.0f} ms "
          f"-> ratio {med / TARGET_S:.2f}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smoke run: one run of each")
    args = ap.parse_args()
    runs = 1 if args.quick else args.runs
    argv = chairside_argv()
    report("`chairside` (built-in simulated monitor) to first frame with vitals",
           [spawn_until(argv, "HR bpm") for _ in range(runs)])
    server = MasimoServer()
    try:
        port = ["run", "--port", f"socket://127.0.0.1:{server.port}", "--driver", "masimo"]
        report("`chairside run --port socket://... --driver masimo` to first frame with vitals",
               [spawn_until(argv + port, "SpO2 %") for _ in range(runs)])
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
