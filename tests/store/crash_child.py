"""Child for the crash test: records a simulated session into an existing session file.

    python crash_child.py PATH --zygote   read "go N" lines on stdin; for each, fork a
                                          writer (so the imports are paid once) and print
                                          "pid P" then, when it dies, "exit P STATUS"
    python crash_child.py PATH --direct N be the writer in this process

The writer resumes PATH, prints "R <pid> <head_seq>" once open, then records 6 readings
per simulated 10 ms (about 1000 frames per real second) and a clinical event every few iterations; after each append
returns it prints "E <seq> <hash> <readings appended so far>", all with single
os.write calls (atomic on a pipe). It runs until killed.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from store_testkit import T0, six_readings  # noqa: E402

from chairside.domain import events as ev  # noqa: E402
from chairside.domain.clock import ManualClock  # noqa: E402
from chairside.store import SessionFile  # noqa: E402


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def writer(path: Path, n: int) -> None:
    rng = random.Random(n)
    clock = ManualClock(T0 + timedelta(hours=n))
    sf = SessionFile.open(path, clock)
    say(f"R {os.getpid()} {sf.head_seq}")
    sent = 0
    i = 0
    every = rng.choice([3, 7, 23, 61])
    while True:
        i += 1
        clock.advance(0.01)
        batch = six_readings(clock.now(), i)
        sf.append_readings(batch)
        sent += len(batch)
        time.sleep(0.0005)  # ~1000 frames/s: a fast monitor, and a file that stays small
        if i % every == 0:
            kind = rng.randrange(4)
            t = clock.now()
            if kind == 0:
                e = ev.NoteAdded(t=t, text=f"round {n} step {i}", author="AB")
            elif kind == 1:
                e = ev.ObservationRecorded(t=t, scale="cadss", score=rng.randrange(30), author="AB")
            elif kind == 2:
                e = ev.AlarmRaised(t=t, alarm_id=f"spo2_low#{n}.{i}", priority="medium", param="spo2", value=89.0)
            else:
                e = ev.InterventionGiven(t=t, drug="ondansetron", dose=4, dose_unit="mg", route="IV",
                                         given_by="AB", author="AB")
            stored = sf.append(e)
            say(f"E {stored.seq} {sf.last_hash} {sent}")


def zygote(path: Path) -> None:
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            return
        n = int(parts[1])
        pid = os.fork()
        if pid == 0:  # the writer: runs until killed; any other end is a failure
            try:
                writer(path, n)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(3)
        say(f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        say(f"exit {pid} {status}")


if __name__ == "__main__":
    target = Path(sys.argv[1])
    if sys.argv[2] == "--zygote":
        zygote(target)
    else:
        writer(target, int(sys.argv[3]))
