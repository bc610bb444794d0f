"""Measure the structure limits of issue 13: module sizes, class sizes, function-local imports.

    python tools/structure.py            # modules over 600 lines, classes over 400, local imports
    python tools/structure.py --all      # also list every function-local import with its reason

Prints: the modules over 600 lines, the classes over 400 (issue 13's limits), the
function-local imports with and without a stated reason, and the dynamic import sites.

A function-local import counts as *explained* when the import line, or the comment line(s)
right above it, carries a comment (``# lazy: ...``, ``# optional extra: ...`` or any other
reason). Unexplained ones are hidden dependencies (issue 13 wants them gone). Imports under
``if TYPE_CHECKING:`` are not function-local and are not counted.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "chairside"
MODULE_LIMIT = 600
CLASS_LIMIT = 400


def _local_imports(tree: ast.AST):
    """(node, function) for each import inside a function body."""
    out = []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child)
            elif isinstance(child, (ast.Import, ast.ImportFrom)) and func is not None:
                out.append((child, func))
            else:
                visit(child, func)

    visit(tree, None)
    return out


def _reason(lines: list[str], node: ast.stmt, func: ast.FunctionDef) -> str | None:
    """The comment on the import line or the comment lines right above it; else, when the
    function's docstring says its imports are lazy, that sentence."""
    line = lines[node.lineno - 1]
    if "#" in line:
        return line.split("#", 1)[1].strip()
    i = node.lineno - 2
    reason = []
    while i >= 0 and lines[i].strip().startswith("#"):
        reason.insert(0, lines[i].strip().lstrip("#").strip())
        i -= 1
    if not reason:
        doc = ast.get_docstring(func) or ""
        lazy = [s for s in doc.replace("\n", " ").split(". ") if "lazy" in s.lower()]
        if lazy:
            return f"(docstring of {func.name}) {lazy[0].strip()}"
    return " ".join(reason) or None


def measure(src: Path = SRC):
    modules, classes, imports, dynamic = [], [], [], []
    for path in sorted(src.rglob("*.py")):
        rel = str(path.relative_to(src.parent))
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        modules.append((len(lines), rel))
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes.append((node.end_lineno - node.lineno + 1, f"{rel}::{node.name}"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("__import__", "import_module"))
            ):
                dynamic.append(f"{rel}:{node.lineno}")
        for node, func in _local_imports(tree):
            what = ast.unparse(node)
            imports.append((rel, node.lineno, func.name, what, _reason(lines, node, func)))
    return modules, classes, imports, dynamic


def main(argv: list[str]) -> int:
    modules, classes, imports, dynamic = measure()
    big_mods = sorted((m for m in modules if m[0] > MODULE_LIMIT), reverse=True)
    big_classes = sorted((c for c in classes if c[0] > CLASS_LIMIT), reverse=True)
    print(f"modules: {len(modules)}; largest: " + ", ".join(f"{r} {n}" for n, r in sorted(modules, reverse=True)[:5]))
    print(f"modules over {MODULE_LIMIT} lines: {len(big_mods)}")
    for n, r in big_mods:
        print(f"  {n:5d}  {r}")
    print(f"classes: {len(classes)}; largest: " + ", ".join(f"{r} {n}" for n, r in sorted(classes, reverse=True)[:3]))
    print(f"classes over {CLASS_LIMIT} lines: {len(big_classes)}")
    for n, r in big_classes:
        print(f"  {n:5d}  {r}")
    unexplained = [i for i in imports if not i[4]]
    print(f"function-local imports: {len(imports)} ({len(imports) - len(unexplained)} with a reason, "
          f"{len(unexplained)} without)")
    by_pkg: dict[str, int] = {}
    for rel, *_ in unexplained:
        pkg = rel.split("/")[1] if rel.count("/") > 1 else rel
        by_pkg[pkg] = by_pkg.get(pkg, 0) + 1
    if by_pkg:
        print("  without a reason, by package: " + ", ".join(f"{k} {v}" for k, v in sorted(by_pkg.items())))
    print(f"importlib.import_module / __import__ sites: {len(dynamic)}" + (f" ({', '.join(dynamic)})" if dynamic else ""))
    show = imports if "--all" in argv else unexplained
    for rel, line, func, what, reason in show:
        print(f"  {rel}:{line} in {func}(): {what}" + (f"   # {reason}" if reason else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
