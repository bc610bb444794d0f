"""Command-line edges of simulate, replay and run: exit 2 with one line, never a traceback.

Bounds come from data/commands.toml (read here with tomllib, not through the code).
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from chairside.cli import main
from simulators.api import generate

DATA = tomllib.loads((Path(__file__).resolve().parents[2] / "src" / "chairside" / "data" / "commands.toml")
                    .read_text(encoding="utf-8"))
MAX_DURATION = DATA["duration"]["max_s"]
SIM = ["simulate", "--scenario", "uneventful", "--driver", "masimo", "--seed", "3"]


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_the_bounds_carry_their_source_tags():
    for section in ("duration", "speed"):
        for key, value in DATA[section].items():
            if not key.endswith("_source"):
                assert DATA[section][f"{key}_source"] in ("[P]", "[S]", "[C]"), key
                assert value > 0


def test_simulate_out_an_existing_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "caps"
    folder.mkdir()
    assert main([*SIM, "--duration", "10", "--out", str(folder)]) == 2
    assert "folder" in _one_line(capsys.readouterr().err)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("where", ["under-a-file", "missing-folder", "proc"])
def test_simulate_out_an_unwritable_path_is_refused(tmp_path, capsys, where):
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x")
    out = {"under-a-file": blocker / "x.raw", "missing-folder": tmp_path / "nope" / "x.raw",
           "proc": Path("/proc/chairside-test.raw")}[where]
    assert main([*SIM, "--duration", "10", "--out", str(out)]) == 2
    assert str(out) in _one_line(capsys.readouterr().err)
    assert not out.exists()


def test_simulate_out_to_a_full_device_exits_1(tmp_path, capsys):
    node = tmp_path / "full"
    try:
        os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, 7))  # /dev/full's numbers
        target = str(node)
    except PermissionError:
        target = "/dev/full"
    assert main([*SIM, "--duration", "10", "--out", target]) == 1
    assert "write failed" in _one_line(capsys.readouterr().err)
    assert stat.S_ISCHR(os.lstat(target).st_mode)


def test_simulate_speed_max_writes_the_unpaced_stream(tmp_path, capsys):
    out = tmp_path / "m.raw"
    assert main([*SIM, "--duration", "60", "--speed", "max", "--out", str(out)]) == 0
    assert out.read_bytes() == b"".join(c for _, c in generate("uneventful", "masimo", 3, 60))


def test_simulate_speed_max_when_serving_says_why(capsys):
    assert main([*SIM, "--speed", "max", "--pty"]) == 2
    assert "--speed max" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("value", [str(MAX_DURATION * 2), "1e308", "inf", "nan", "0", "-5"])
def test_simulate_duration_has_a_maximum(tmp_path, capsys, value):
    out = tmp_path / "d.raw"
    assert main([*SIM, "--duration", value, "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--duration" in line and f"{MAX_DURATION:g}" in line
    assert not out.exists()


@pytest.mark.parametrize("value", ["1e308", "nan", "inf", "-2", "0", "1e-308", "fast"])
def test_simulate_speed_out_of_range(capsys, value):
    assert main([*SIM, "--speed", value, "--pty"]) == 2
    assert "--speed" in _one_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replay-speed")
    path = folder / "s.chairside"
    rc = main(["record", "--port", "sim://uneventful?driver=masimo&seed=2&speed=max", "--driver", "masimo",
               "--session", str(path), "--duration", "30", "--quiet"])
    assert rc == 0
    return path


@pytest.mark.parametrize("value", ["1e308", "nan", "inf", "-1", "0", "1e-308", str(DATA["speed"]["max"] * 10)])
def test_replay_speed_out_of_range_is_one_line(session, capsys, value):
    assert main(["replay", str(session), "--headless", "--speed", value]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"--speed {value}" in line and f"{DATA['speed']['max']:g}" in line


def test_replay_speed_at_the_maximum_runs(session, capsys):
    assert main(["replay", str(session), "--headless", "--speed", f"{DATA['speed']['max']:g}"]) == 0


@pytest.mark.parametrize("value", ["1e308", "nan", "-1"])
def test_run_speed_out_of_range_is_one_line(capsys, value):
    assert main(["run", "--speed", value]) == 2
    assert "--speed" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["run", "record"])
def test_a_busy_listen_port_is_one_line_exit_2_for_run_and_record(tmp_path, command):
    """The real command in a subprocess (the console would otherwise open): one line, exit 2,
    no session file left behind."""
    import socket
    import subprocess
    import sys

    session = tmp_path / "busy.chairside"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [command, "--port", f"listen://127.0.0.1:{port}", "--driver", "hl7", "--session", str(session)]
        if command == "record":
            argv += ["--duration", "1"]
        r = subprocess.run([sys.executable, "-c", "import sys; from chairside.cli import main; sys.exit(main())",
                            *argv], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                           env=dict(os.environ, CHAIRSIDE_LOG_DIR=str(tmp_path / "log")))
    assert r.returncode == 2, r.stderr
    assert f"127.0.0.1:{port}" in _one_line(r.stderr)
    assert not session.exists()


def test_record_duration_has_the_same_maximum(tmp_path, capsys):
    session = tmp_path / "long.chairside"
    assert main(["record", "--port", "sim://uneventful?driver=masimo&speed=max", "--driver", "masimo",
                 "--session", str(session), "--duration", str(MAX_DURATION * 10)]) == 2
    assert f"{MAX_DURATION:g}" in _one_line(capsys.readouterr().err)
    assert not session.exists()
