#!/usr/bin/env python3
"""Set-up and entry point for a fresh machine with only Python 3.11+.

    python3 dev.py demo    # create .venv if needed, install with the simulator (numpy), open the console on it
    python3 dev.py test    # create .venv if needed, install with the simulator and test extras, run the whole suite

Any further arguments go to ``chairside`` (demo) or to pytest (test).
"""

from __future__ import annotations

import hashlib
import os
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


def ensure_chromium() -> None:
    """Best effort: Debian's chromium for the HTML report's screenshot test (root + apt only)."""
    import shutil

    if shutil.which("chromium") or os.environ.get("CHAIRSIDE_NO_APT"):
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print("dev.py: chromium not found; the report screenshot test will be skipped", file=sys.stderr)
        return
    print("dev.py: installing chromium (apt-get) for the report screenshot test ...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = {"stdout": subprocess.DEVNULL} if os.environ.get("CI") else {}
    if subprocess.call(["apt-get", "update", "-qq"], env=env, **quiet) == 0:
        subprocess.call(["apt-get", "install", "-y", "-qq", "chromium"], env=env, **quiet)


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
        ensure_chromium()
        workers = os.environ.get("CHAIRSIDE_TEST_WORKERS", "2")
        return subprocess.call([str(PY), "-m", "pytest", "-n", workers, "-p", "no:cacheprovider", *rest], cwd=ROOT)
    if cmd == "bench":
        ensure("sim,test,bench")
        compile_sources()
        return subprocess.call([str(PY), str(ROOT / "bench" / "run_all.py"), *rest], cwd=ROOT)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
