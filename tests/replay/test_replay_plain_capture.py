"""#17 done-when: ``chairside replay db00.raw --driver ge-s5 --headless`` gives the readings
that ``chairside decode`` gives, and a plain ``simulate --out`` file replays; an unreadable
file names the formats that were tried.

Both sides are the real commands (subprocesses); the replay's readings are read back from
its ``--session OUT`` file. The reference is ``decode`` (the contract's reader of raw device
bytes) and the vectors README (db00.raw: first record HR 85, NIBP 87/61 (73), SpO2 100.00,
PR 87).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chairside.store import read_session

ROOT = Path(__file__).resolve().parents[2]
VEC = ROOT.parent / "shared" / "vectors"
DB00 = VEC / "ge-s5" / "db00.raw"
EXE = Path(sys.executable).parent / "chairside"


def cli(*args: str, tmp: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, CHAIRSIDE_LOG_DIR=str(tmp / "log"))
    env.pop("CHAIRSIDE_CONFIG", None)
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=timeout, env=env)


def decoded(driver: str, path: Path, tmp: Path) -> list[tuple]:
    r = cli("decode", "--driver", driver, "--raw", str(path), tmp=tmp)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in r.stdout.splitlines()]
    return [(x["t"], x["param"], x["value"], x["valid"], tuple(x["flags"])) for x in rows]


def replayed(session: Path) -> list[tuple]:
    out = []
    for e in read_session(session).events:
        if e.kind == "readings_recorded":
            for x in e.readings:
                t = x.device_time or x.receive_time
                out.append((t.isoformat(), x.param, x.value, x.valid, tuple(x.flags)))
    return out


@pytest.mark.slow
def test_replay_of_db00_gives_the_readings_decode_gives(tmp_path):
    session = tmp_path / "db00.chairside"
    r = cli("replay", str(DB00), "--driver", "ge-s5", "--headless", "--session", str(session), tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    want = decoded("ge-s5", DB00, tmp_path)
    got = replayed(session)
    # 5,310 readings of HR, NIBP, SpO2 and PR, and one RR per basic record (1,760: db00's CO2 group
    # names the ECG impedance as the monitor's respiration-rate source)
    assert len(want) == 5310 + 1760 and got == want
    assert [(x[1], x[2]) for x in got[:6]] == [("hr", 85), ("nibp_sys", 87), ("nibp_dia", 61), ("nibp_map", 73),
                                               ("spo2", 100.0), ("pr", 87)]


@pytest.mark.parametrize("driver", ["masimo", "hl7"])
def test_our_own_simulate_out_replays(tmp_path, driver):
    raw = tmp_path / f"sim-{driver}.raw"
    r = cli("simulate", "--scenario", "uneventful", "--driver", driver, "--seed", "2", "--duration", "300",
            "--out", str(raw), tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    session = tmp_path / f"sim-{driver}.chairside"
    r = cli("replay", str(raw), "--driver", driver, "--headless", "--session", str(session), tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    assert replayed(session) == decoded(driver, raw, tmp_path)


def test_an_unreadable_file_says_which_formats_were_tried(tmp_path):
    junk = tmp_path / "notes.bin"
    junk.write_bytes(b"nothing a monitor would send\n" * 10)
    r = cli("replay", str(junk), "--driver", "ge-s5", "--headless", tmp=tmp_path)
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "\n" not in line and "session file" in line and "CSRAW1" in line and "ge-s5" in line
    r = cli("replay", str(junk), "--headless", tmp=tmp_path)
    assert r.returncode == 2 and "session file" in r.stderr and "CSRAW1" in r.stderr and "--driver" in r.stderr
