"""Crash test: a writer process is SIGKILLed at 50+ random moments while recording.

After each kill the file verifies, reopens, and holds every event the writer had
reported as appended (append returned), with the hash it reported, and at least as
many readings as had been appended before the last reported event (readings are
committed ahead of every event). Most writers are forked from one "zygote" child so
the imports are paid once; a few are plain subprocesses. A fifth of the kills land
while the writer is still reopening (verifying and resuming) the file.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from store_testkit import clock, opened

from chairside.store import SessionFile, verify

CHILD = Path(__file__).resolve().parent / "crash_child.py"
KILLS = 52
DIRECT = 3  # of which this many are plain subprocesses


class Lines:
    def __init__(self, stream) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        self.t = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.t.start()

    def _pump(self, stream) -> None:
        for raw in stream:
            self.q.put(raw.decode().strip())
        self.q.put("EOF")

    def until(self, prefix: str, sink: list[str], timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while True:
            line = self.q.get(timeout=max(0.01, end - time.monotonic()))
            if line == "EOF":
                raise AssertionError(f"child ended while waiting for {prefix!r}")
            if line.startswith(prefix):
                return line
            sink.append(line)

    def drain(self, sink: list[str]) -> None:
        while True:
            try:
                line = self.q.get_nowait()
            except queue.Empty:
                return
            if line != "EOF":
                sink.append(line)


def _check(path: Path, reported: dict[int, str], min_readings: int) -> int:
    r = verify(path)
    assert r.ok, r.line()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        hashes = dict(con.execute("SELECT seq, hash FROM events"))
        n_readings = con.execute("SELECT coalesce(sum(count), 0) FROM readings").fetchone()[0]
    finally:
        con.close()
    lost = {s: h for s, h in reported.items() if hashes.get(s) != h}
    assert not lost, f"reported events missing or changed after the kill: {sorted(lost)[:5]}"
    assert n_readings >= min_readings
    sf = SessionFile.open(path, clock())  # reopens for recording (resume), then closes
    assert sf.head_seq == r.count and sf.last_hash == r.last_hash
    sf.close()
    return r.count


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_reported(tmp_path):
    rng = random.Random(20260302)
    path = tmp_path / "crash.chairside"
    c = clock()
    SessionFile.create(path, opened(c), c).close()
    reported: dict[int, str] = {}
    min_readings = 0
    mid_open_kills = 0

    def account(lines: list[str]) -> None:
        nonlocal min_readings
        for line in lines:
            if line.startswith("E "):
                _, seq, h, sent = line.split()
                reported[int(seq)] = h
                round_readings[0] = max(round_readings[0], int(sent))

    zyg = subprocess.Popen([sys.executable, str(CHILD), str(path), "--zygote"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    zlines = Lines(zyg.stdout)
    try:
        for n in range(KILLS):
            lines: list[str] = []
            round_readings = [0]
            before = _readings_on_disk(path)
            if n < KILLS - DIRECT:
                zyg.stdin.write(f"go {n}\n".encode())
                zyg.stdin.flush()
                pid = int(zlines.until("pid ", lines).split()[1])
                src = zlines
            else:
                proc = subprocess.Popen([sys.executable, str(CHILD), str(path), "--direct", str(n)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                pid, src = proc.pid, Lines(proc.stdout)
            if n % 5 == 2 and n < KILLS - DIRECT:
                time.sleep(rng.uniform(0.0, 0.03))  # while it reopens (verify + resume)
                mid_open_kills += 1
            else:
                src.until("R ", lines)
                time.sleep(rng.uniform(0.0, 0.2))
            os.kill(pid, signal.SIGKILL)
            if src is zlines:
                status = int(zlines.until(f"exit {pid}", lines).split()[2])
                assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                    f"writer {n} ended by itself (status {status}) before the kill"
                )
            else:
                assert proc.wait(10) == -signal.SIGKILL
                src.t.join(5)
                src.drain(lines)
            account(lines)
            min_readings = max(min_readings, before + round_readings[0])
            _check(path, reported, min_readings)
        zyg.stdin.write(b"quit\n")
        zyg.stdin.flush()
    finally:
        zyg.kill()
        zyg.wait(10)
    assert len(reported) > 100, "the writers were killed before recording anything"
    assert mid_open_kills >= 5


def _readings_on_disk(path: Path) -> int:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT coalesce(sum(count), 0) FROM readings").fetchone()[0]
    finally:
        con.close()
