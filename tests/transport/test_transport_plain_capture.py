"""#17 "Replay what others captured": a plain byte capture (no CSRAW1 header) replays through
its driver, each frame at the device's own time.

Expected readings come from ``chairside decode`` of the same file (the contract's reader of
raw device bytes) and the vectors README (db00.raw: 3,520 frames, first record HR 85, NIBP
87/61 (73), SpO2 100.00, PR 87); times from the S/5 record header (README layout).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chairside.domain.readings import Reading
from chairside.transport import CaptureError, ReplaySource
from chairside.transport.capture import capture_format

VEC = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
DB00 = VEC / "ge-s5" / "db00.raw"


def replay(path: Path, driver: str, **kw) -> tuple[list[list], ReplaySource]:
    batches: list[list] = []
    src = ReplaySource(path, driver, on_output=batches.append, **kw)
    src.run()
    return batches, src


def decode_rows(driver: str, path: Path) -> list[dict]:
    from tests.drivers.test_drivers_stream import run_cli

    rc, out, _ = run_cli(["decode", "--driver", driver, "--raw", str(path)])
    assert rc == 0
    return [json.loads(ln) for ln in out.splitlines()]


def as_rows(readings: list[Reading]) -> list[dict]:
    from chairside.commands.decode import reading_json

    return [json.loads(json.dumps(reading_json(r))) for r in readings]


def test_db00_replays_to_the_readings_decode_gives():
    assert capture_format(DB00) == "plain"
    batches, src = replay(DB00, "ge-s5", speed=None)
    readings = [x for b in batches for x in b if isinstance(x, Reading)]
    assert src.stats.frames_decoded == 3520  # README: 3,520 frames, all checksums good
    assert as_rows(readings) == decode_rows("ge-s5", DB00)
    first = {r.param: r.value for r in readings[:6]}
    assert first == {"hr": 85, "nibp_sys": 87, "nibp_dia": 61, "nibp_map": 73, "spo2": 100.0, "pr": 87}


def _r_times(data: bytes) -> list[datetime]:
    """r_time of every displayed-values record, by the independent reader of the S/5 tests."""
    from tests.drivers.test_drivers_ge_s5 import basic_records, classify

    return [r["time"] for r in basic_records(classify(data)["good"])]


def test_frames_are_received_at_their_device_time_and_paced_by_it():
    data = (VEC / "ge-s5" / "short.raw").read_bytes()
    times = _r_times(data)
    batches, _ = replay(VEC / "ge-s5" / "short.raw", "ge-s5", speed=None)
    got = sorted({x.receive_time for b in batches for x in b if isinstance(x, Reading)})
    assert got == sorted(set(times))
    # the 33 s without a record after the first one is "no data" on the capture's own timeline
    gaps = [x for b in batches for x in b if not isinstance(x, Reading) and x.kind == "no_data"]
    assert [g.active for g in gaps] == [True, False]
    # paced: at 1000x the 42 s of short.raw take about 42 ms of the (fake) timer
    now = [0.0]
    waits: list[float] = []

    def sleeper(s: float) -> None:
        waits.append(s)
        now[0] += s

    replay(VEC / "ge-s5" / "short.raw", "ge-s5", speed=1000.0, timer=lambda: now[0], sleeper=sleeper)
    span = (max(times) - min(times)).total_seconds()
    assert now[0] == pytest.approx(span / 1000.0, rel=0.01)


def test_masimo_lines_without_time_come_at_the_nominal_rate(tmp_path):
    lines = [b"SN=1 SPO2=097% BPM=072 PI=02.10% EXC=000000\r\n" for _ in range(3)]
    lines.insert(1, b"02/22/16 22:47:45 SN=1 SPO2=098% BPM=071 PI=02.10% EXC=000000\r\n")
    path = tmp_path / "masimo.txt"
    path.write_bytes(b"".join(lines))
    batches, _ = replay(path, "masimo", speed=None)
    t = [b[0].receive_time for b in batches if isinstance(b[0], Reading)]
    stamped = datetime(2016, 2, 22, 22, 47, 45, tzinfo=UTC)
    # README: one line a second; a line without its time stamp comes 1 s after the one before
    # (the first, before any stamped line, 1 s before the first stamp)
    second = timedelta(seconds=1)
    assert t == [stamped - second, stamped, stamped + second, stamped + 2 * second]


def test_a_file_that_is_no_capture_says_what_was_tried(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(CaptureError) as exc:
        replay(path, "ge-s5", speed=None)
    assert "CSRAW1" in str(exc.value) and "ge-s5" in str(exc.value)
    with pytest.raises(CaptureError) as exc:
        ReplaySource(path, None, on_output=lambda _: None)
    assert "--driver" in str(exc.value)


def test_record_reads_a_capture_as_if_it_were_a_port(tmp_path):
    import os
    import subprocess
    import sys

    from chairside.store import read_session

    session = tmp_path / "file-port.chairside"
    env = dict(os.environ, CHAIRSIDE_LOG_DIR=str(tmp_path / "log"))
    env.pop("CHAIRSIDE_CONFIG", None)
    r = subprocess.run([str(Path(sys.executable).parent / "chairside"), "record", "--port",
                        f"file:{VEC / 'ge-s5' / 'short.raw'}", "--driver", "ge-s5", "--session", str(session),
                        "--duration", "3"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    readings = [x for e in read_session(session).events if e.kind == "readings_recorded" for x in e.readings]
    # README: first record of short.raw (as db02.raw): HR 80, NIBP 93/48 (69), SpO2 96.65, PR 83
    assert [(x.param, x.value) for x in readings[:6]] == [
        ("hr", 80), ("nibp_sys", 93), ("nibp_dia", 48), ("nibp_map", 69), ("spo2", 96.65), ("pr", 83)]
    assert readings[0].device_time == datetime(2018, 7, 26, 17, 6, 5, tzinfo=UTC)
    assert readings[0].receive_time > datetime(2020, 1, 1, tzinfo=UTC)  # stamped now, like a port


def test_an_unreadable_file_port_is_refused_before_any_file(tmp_path):
    import os
    import subprocess
    import sys

    session = tmp_path / "never.chairside"
    env = dict(os.environ, CHAIRSIDE_LOG_DIR=str(tmp_path / "log"))
    env.pop("CHAIRSIDE_CONFIG", None)
    r = subprocess.run([str(Path(sys.executable).parent / "chairside"), "record", "--port",
                        f"file:{tmp_path / 'missing.raw'}", "--driver", "ge-s5", "--session", str(session),
                        "--duration", "1"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "missing.raw" in r.stderr
    assert not session.exists()


def test_simulate_out_writes_plain_bytes_or_a_csraw_capture_of_the_same_bytes(tmp_path):
    import subprocess
    import sys

    from chairside.transport import CaptureReader, capture_info

    def run_cli(argv):
        r = subprocess.run([str(Path(sys.executable).parent / "chairside"), *argv], capture_output=True,
                           text=True, timeout=120)
        return r.returncode, r.stdout, r.stderr

    plain, csraw = tmp_path / "sim.raw", tmp_path / "sim.csraw"
    common = ["simulate", "--scenario", "uneventful", "--driver", "masimo", "--seed", "3", "--duration", "30",
              "--start", "2026-01-01T09:00:00+00:00"]
    assert run_cli([*common, "--out", str(plain)])[0] == 0
    assert run_cli([*common, "--out", str(csraw), "--format", "csraw"])[0] == 0
    assert capture_format(plain) == "plain" and capture_format(csraw) == "csraw"
    assert capture_info(csraw).driver == "masimo"
    records = list(CaptureReader(csraw))
    assert b"".join(r.data for r in records) == plain.read_bytes()
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert all(start < r.receive_time <= start + timedelta(seconds=30) for r in records)
    # both replay to the same readings (the plain one timed by the Masimo's line times)
    a, _ = replay(plain, "masimo", speed=None)
    b, _ = replay(csraw, None, speed=None)
    key = [(x.param, x.value, x.device_time) for batch in a for x in batch if isinstance(x, Reading)]
    assert key and key == [(x.param, x.value, x.device_time) for batch in b for x in batch if isinstance(x, Reading)]
