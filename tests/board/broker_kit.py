"""A real Mosquitto broker for the board tests, started by each test on a free 127.0.0.1
port with a generated config (persistence on, so a restart keeps the board's session).
A machine without mosquitto FAILS these tests: the project's set-up (dev.py) installs it."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def mosquitto_binary() -> str:
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        pytest.fail("mosquitto is not installed: `python3 dev.py test` installs it (Debian package mosquitto)")
    return exe


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\nlog_dest file {folder}/mosquitto.log\n"
            # started as root, mosquitto drops to the user "mosquitto", which cannot write into
            # pytest's private folders: no log, no persistence file, and a restart silently
            # loses the board's session (and the alarm events queued for it). It runs as us.
            f"user {getpass.getuser()}\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            self.proc.wait(timeout=10)
            self.proc = None
            if not (self.folder / "mosquitto.db").exists():  # a restart would lose the board's session
                log = self.folder / "mosquitto.log"
                raise AssertionError("mosquitto saved no persistence file in " + str(self.folder)
                                     + (": " + log.read_text()[-500:] if log.exists() else " (and wrote no log)"))
