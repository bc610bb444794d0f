"""The layering rule of DESIGN.md: the core imports without textual; only chairside.ui imports it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "chairside"

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


def test_only_ui_imports_textual():
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "ui":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(n == "textual" or n.startswith("textual.") for n in names):
                # commands may import the UI lazily inside functions, never textual directly
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_every_module_has_a_docstring():
    missing = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None
    ]
    assert missing == []
