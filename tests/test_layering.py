"""The layering rules of DESIGN.md, checked two ways.

Statically: the import-linter contracts in pyproject.toml (layers, the simulator reached only
through ``simulators.api``, every "Must not import" of a module docstring), run here with
``lint-imports`` so a broken layer fails the suite and CI. At run time (subprocesses that
look at ``sys.modules``, Harlequin's model): the core imports without textual, and the
console on a real port and the commands that do not simulate load without numpy.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "chairside"


def test_import_contracts_are_kept():
    """`lint-imports` with the contracts of pyproject.toml (unmatched ignores are errors)."""
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists(), "import-linter is not installed (it is in the test extras)"
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]

CORE = [
    "chairside",
    "chairside.domain",
    "chairside.drivers",
    "chairside.alarms",
    "chairside.store",
    "chairside.transport",
]


def test_core_imports_without_textual():
    # A finder that refuses textual proves the core never needs it.
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'textual' or name.startswith('textual.'):\n"
        "            raise ImportError('textual is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import importlib\nfor m in {CORE!r}: importlib.import_module(m)\n"
        "import pkgutil, chairside\n"
        "for info in pkgutil.walk_packages(chairside.__path__, 'chairside.'):\n"
        "    if info.name.startswith(('chairside.ui', 'chairside.commands')):\n"
        "        continue\n"
        "    importlib.import_module(info.name)\n"
        "assert 'textual' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_every_module_has_a_docstring():
    missing = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None
    ]
    assert missing == []


# --- numpy only when simulating ------------------------------------------------------------
# A finder that refuses numpy: the console on a real port (and the commands that do not
# simulate) must build without it, as on an install without the `sim` extra.
_BLOCK_NUMPY = (
    "import sys, importlib.abc\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name == 'numpy' or name.startswith('numpy.'):\n"
    "            raise ModuleNotFoundError(\"No module named 'numpy'\", name='numpy')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_console_on_a_real_port_builds_without_numpy(tmp_path):
    """`chairside run --port socket://...`: the command line parsed by the real parser, the
    service and the Textual app built as `run` builds them; numpy never imported."""
    code = _BLOCK_NUMPY + (
        "import os, socket\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n"
        "port = f'socket://127.0.0.1:{srv.getsockname()[1]}'\n"
        "from chairside.cli import build_parser\n"
        "from chairside.commands import run\n"
        "from chairside.commands._common import load_settings\n"
        "args = build_parser('run').parse_args(['run', '--port', port, '--driver', 'masimo'])\n"
        "settings = load_settings()\n"
        "svc, defaults, sim = run.build_service(args, settings)\n"
        "assert sim is None\n"
        "from chairside.ui import create_app\n"
        "app = create_app(svc, svc.clock, settings, start_defaults=defaults)\n"
        "svc.start(); svc.shutdown()\n"
        "leaked = sorted(m for m in sys.modules if m == 'numpy' or m.split('.')[0] == 'simulators')\n"
        "print('leaked:', leaked)\n"
    )
    env_dir = tmp_path / "cfg"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "CHAIRSIDE_CONFIG": "", "CHAIRSIDE_LOG_DIR": str(env_dir),
                              "XDG_CONFIG_HOME": str(env_dir), "XDG_DATA_HOME": str(env_dir)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "leaked: []"


def test_commands_that_do_not_simulate_load_without_numpy_or_textual():
    code = _BLOCK_NUMPY + (
        "from chairside.cli import main\n"
        "assert main(['protocols', '--json']) == 0\n"
        "assert main(['ports', '--json']) == 0\n"
        "assert main(['verify', '/nonexistent.chairside']) == 2\n"
        "assert 'numpy' not in sys.modules\n"
        "assert 'textual' not in sys.modules, 'a headless command loaded textual'\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr


def test_simulating_without_numpy_is_one_line_exit_2():
    """Without the `sim` extra the built-in monitor cannot run: say what to install."""
    code = _BLOCK_NUMPY + (
        "from chairside.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = _python(code, "simulate", "--scenario", "uneventful", "--driver", "ge-s5", "--out", "-")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "numpy" in lines[0] and "chairside[sim]" in lines[0]
