#!/usr/bin/env python3
"""Set-up and entry point for a fresh machine with only Python 3.11+.

    python3 dev.py demo    # create .venv if needed, install with the simulator (numpy), open the console on it
    python3 dev.py test    # create .venv if needed, install with the simulator and test extras, run the whole suite
    python3 dev.py test --browser   # also the HTML report's screenshot test in headless chromium
                                    # (installs Debian's chromium with apt-get if missing, naming it first)

``test`` needs one system package: the MQTT broker the clinic-board tests start (Debian's
``mosquitto``). When it is missing, dev.py names it and installs it with apt-get (as root),
or says how to install it; it installs nothing else.

Any further arguments go to ``chairside`` (demo) or to pytest (test).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def _stamp(extras: str) -> Path:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()[:16]
    return VENV / f".installed-{digest}"


def ensure(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Chairside needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print("dev.py: creating .venv ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = _stamp(extras)
    if stamp.exists():
        return
    print(f"dev.py: installing chairside[{extras}] into .venv ...", file=sys.stderr)
    quiet = ["-q"] if os.environ.get("CI") else []
    subprocess.run([str(PY), "-m", "pip", "install", *quiet, "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", *quiet, "-e", f".[{extras}]"], check=True, cwd=ROOT)
    for old in VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()


def compile_sources() -> None:
    """Bytecode for the package and the simulators, as a normal (non-editable) install has.

    This machine's environment may set PYTHONDONTWRITEBYTECODE, and with an editable install
    every ``chairside`` process (the console, each CLI test, each benchmark run) would then
    compile some forty modules from source again at start-up. Python still reads bytecode
    written here; a source changed later is simply compiled in memory again (the mtime check).
    """
    subprocess.run([str(PY), "-m", "compileall", "-q", "src", "simulators"], cwd=ROOT,
                   stdout=subprocess.DEVNULL, check=False)


BROWSER_PACKAGES = ["chromium"]  # Debian's package names; what --browser installs, and nothing else
BROKER_PACKAGES = ["mosquitto"]  # the MQTT broker the board tests start on 127.0.0.1 (never as a service)


def _apt_install(packages: list[str], why: str) -> bool:
    """Install Debian ``packages`` with apt-get, naming each first; False (and why) when it cannot."""
    names = " ".join(packages)
    if os.name != "posix" or not shutil.which("apt-get") or os.geteuid() != 0:
        print(f"dev.py: {why} needs the system package(s) {names}; dev.py installs system packages only as root "
              f"with apt-get: install it yourself (e.g. sudo apt-get install {names})", file=sys.stderr)
        return False
    print(f"dev.py: installing the system package(s) {names} with apt-get ({why})", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = {"stdout": subprocess.DEVNULL} if os.environ.get("CI") else {}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                                               *packages]):
        print(f"dev.py: running: {' '.join(cmd)}", file=sys.stderr)
        if subprocess.call(cmd, env=env, **quiet) != 0:
            print(f"dev.py: {' '.join(cmd)} failed", file=sys.stderr)
            return False
    return True


def ensure_broker() -> None:
    """The board tests start their own Mosquitto (a generated config, 127.0.0.1, a free port);
    they fail, not skip, without it. The Debian package's own service is not started here."""
    if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
        return
    if not _apt_install(BROKER_PACKAGES, "the clinic-board tests' MQTT broker"):
        print("dev.py: the board tests will fail until mosquitto is installed", file=sys.stderr)


def ensure_browser() -> None:
    """``test --browser``: Debian's chromium for the HTML report's screenshot test. Installed
    with apt-get only when missing, only on this explicit request and only as root (the plain
    ``test`` never installs a system package); each package is named before anything is
    installed. When it cannot be installed the screenshot test fails saying so."""
    if shutil.which("chromium"):
        return
    names = " ".join(BROWSER_PACKAGES)
    if os.name != "posix" or not shutil.which("apt-get") or os.geteuid() != 0:
        print(f"dev.py: --browser: {names} is not installed and dev.py installs system packages only as root "
              f"with apt-get; install it yourself (e.g. sudo apt-get install {names}); "
              "the report screenshot test will fail until then", file=sys.stderr)
        return
    print(f"dev.py: --browser: installing the system package(s) {names} with apt-get "
          "(for the HTML report's screenshot test)", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = {"stdout": subprocess.DEVNULL} if os.environ.get("CI") else {}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *BROWSER_PACKAGES]):
        print(f"dev.py: running: {' '.join(cmd)}", file=sys.stderr)
        if subprocess.call(cmd, env=env, **quiet) != 0:
            print(f"dev.py: {' '.join(cmd)} failed; the report screenshot test will fail", file=sys.stderr)
            return


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "demo"
    rest = argv[1:]
    if cmd == "demo":
        ensure("sim")
        compile_sources()
        return subprocess.call([str(BIN / "chairside"), *rest], cwd=ROOT)
    if cmd == "test":
        ensure("sim,test,bench")
        compile_sources()
        ensure_broker()
        env = dict(os.environ)
        if "--browser" in rest:
            rest = [a for a in rest if a != "--browser"]
            ensure_browser()
            env["CHAIRSIDE_TEST_BROWSER"] = "1"  # the screenshot test fails (not skips) without chromium
        workers = os.environ.get("CHAIRSIDE_TEST_WORKERS", "2")
        return subprocess.call([str(PY), "-m", "pytest", "-n", workers, "-p", "no:cacheprovider", *rest], cwd=ROOT,
                               env=env)
    if cmd == "bench":
        ensure("sim,test,bench")
        compile_sources()
        return subprocess.call([str(PY), str(ROOT / "bench" / "run_all.py"), *rest], cwd=ROOT)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
