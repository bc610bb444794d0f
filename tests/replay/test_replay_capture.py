"""Replay of a raw capture and the ``chairside replay`` command.

The capture is made the way a clinic makes one: ``chairside record --raw`` on the simulated
monitor, served on a loopback socket and read through pyserial, the link and the driver. Its bytes, decoded on their
own by ``chairside decode``, are the expected readings of the replay; the readings the live
recording stored are the expected readings (and receive times) too.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from replay_kit import record, surge_reactions, write_capture  # noqa: E402

from chairside.cli import main  # noqa: E402
from chairside.store import SessionFile, verify  # noqa: E402
from chairside.transport import iter_capture  # noqa: E402


def _events(path: Path):
    sf = SessionFile.open(path, readonly=True)
    try:
        return sf.events(), sf.readings()
    finally:
        sf.close()


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    import simulators

    simulators.register()
    d = tmp_path_factory.mktemp("capture")
    cap, live = d / "probe-off.raw", d / "live.chairside"
    # served on 127.0.0.1 at 300 x real time and read through socket://, pyserial and the
    # driver; --duration counts the session clock (simulated seconds)
    rc = main(["record", "--port", "sim://probe-off?driver=masimo&seed=9&speed=300",
               "--driver", "masimo", "--session", str(live), "--raw", str(cap), "--duration", "1500", "--quiet"])
    assert rc == 0
    return cap, live


def _key(r):
    return (r.param, r.value, r.unit, r.valid, tuple(r.flags), r.source)


def test_a_replayed_capture_gives_the_readings_of_decoding_it(capture, tmp_path, capsys):
    cap, live = capture
    wire = tmp_path / "wire.bin"
    wire.write_bytes(b"".join(chunk for _t, chunk in iter_capture(cap)))
    capsys.readouterr()
    assert main(["decode", "--driver", "masimo", str(wire)]) == 0
    decoded = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(decoded) > 1000  # 25 simulated minutes of 1-per-second lines

    out = tmp_path / "replayed.chairside"
    assert main(["replay", str(cap), "--headless", "--session", str(out)]) == 0
    assert verify(out).ok
    _, replayed = _events(out)
    assert [(r.param, r.value, r.unit, r.valid, list(r.flags)) for r in replayed] == \
           [(d["param"], d["value"], d["unit"], d["valid"], d["flags"]) for d in decoded]
    for r, d in zip(replayed, decoded, strict=True):
        if d["t"] is not None and r.device_time is not None:
            assert r.device_time == datetime.fromisoformat(d["t"])
    # probe off: missing SpO2 is None with a flag, never a zero
    missing = [r for r in replayed if r.param == "spo2" and not r.valid]
    assert missing and all(r.value is None and r.flags for r in missing)

    # and they are the readings the live recording stored, with the same receive times
    _, stored = _events(live)
    assert [(*_key(r), r.device_time, r.receive_time) for r in replayed] == \
           [(*_key(r), r.device_time, r.receive_time) for r in stored]


def test_a_capture_at_real_time_recomputes_the_technical_alarm(tmp_path, capsys):
    from chairside.replay import Replayer, load_recording

    cap = write_capture(tmp_path / "probe-off.raw", "probe-off", "masimo", 23, 1500)
    capsys.readouterr()
    assert main(["replay", str(cap), "--headless", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["source"] == "capture" and s["driver"] == "masimo"
    assert s["duration_s"] == pytest.approx(1500, abs=2)
    lines = b"".join(chunk for _t, chunk in iter_capture(cap)).splitlines()
    assert s["readings"] >= len(lines) >= 1499  # one Masimo line a second, each with SpO2 and PR at least
    assert sum(s["alarms_recomputed"].values()) >= 1 and "peak_rss_mib" in s
    # the probe comes off at 15 min: a technical alarm, and no SpO2-low alarm from the dashes
    r = Replayer(load_recording(cap), phase="infusion")
    r.run_to_end()
    raised = [e for e in r.recomputed if e.kind == "alarm_raised"]
    assert any(e.alarm_class == "technical" and e.param in ("spo2", "pr") for e in raised), raised
    assert not any(e.rule.startswith("spo2_low") for e in raised), raised


def test_a_torn_capture_replays_up_to_the_tear_and_a_damaged_one_is_refused(capture, tmp_path, capsys):
    cap, _ = capture
    data = cap.read_bytes()
    torn = tmp_path / "torn.raw"
    torn.write_bytes(data[:-3])  # the process died mid-write: the last record is cut
    assert main(["replay", str(torn), "--headless"]) == 0
    bad = tmp_path / "bad.raw"
    mid = len(data) // 2
    bad.write_bytes(data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:])
    capsys.readouterr()
    assert main(["replay", str(bad), "--headless"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.raw" in err[0] and "offset" in err[0]


def test_bad_usage_exits_2_with_one_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.chairside"
    garbage.write_bytes(b"\x00not a session\xff" * 100)
    for argv, what in (
        (["replay", str(garbage), "--headless"], "garbage.chairside"),
        (["replay", str(tmp_path / "missing.chairside"), "--headless"], "no such file"),
        (["replay", str(tmp_path), "--headless"], "folder"),
        (["replay", str(garbage), "--headless", "--speed", "fast"], "speed"),
    ):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and what in err[0], (argv, err)


def test_replay_command_on_a_session_file(tmp_path, capsys):
    src = record(tmp_path / "surge.chairside", reactions=surge_reactions(), duration_s=2400)
    recorded, _ = _events(src)
    raised = [e for e in recorded if e.kind == "alarm_raised"]
    capsys.readouterr()
    assert main(["replay", str(src), "--headless", "--check"]) == 0
    text = capsys.readouterr().out
    rank = {"low": 1, "medium": 2, "high": 3}
    top = {e.alarm_id: e.priority for e in raised}  # each alarm at the highest priority it reached
    for e in recorded:
        if e.kind == "alarm_escalated" and e.alarm_id in top and not e.reannounce \
                and rank[e.to_priority] > rank[top[e.alarm_id]]:
            top[e.alarm_id] = e.to_priority
    for prio in ("high", "medium", "low"):
        n = sum(1 for p in top.values() if p == prio)
        assert f"{n} {prio}" in text
    assert "differences between recomputed and recorded alarm events: 0" in text
    # other limits: --check fails (exit 1) and names the differences
    assert main(["replay", str(src), "--headless", "--check", "--protocol", "generic"]) == 1
    assert "sbp_high" in capsys.readouterr().out
    # a replay is recorded into a new file only
    existing = tmp_path / "exists.chairside"
    existing.write_bytes(b"x")
    assert main(["replay", str(src), "--headless", "--session", str(existing)]) == 2
    assert main(["replay", str(src), "--headless", "--phase", "infusion"]) == 2
