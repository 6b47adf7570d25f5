"""Imports go one way: features never reach up to the worker or the CLI, and every module
imports on its own, whatever was imported before it.

A cycle hidden inside function bodies only shows when the function runs; so the
functions import nothing either, unless a `# lazy:` comment says why (Celery loaded only
by a process that has a broker, a large word list read on first use).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import gatehouse

SOURCE = Path(gatehouse.__file__).parent
# The composition level: they assemble the features, so they may import anything.
COMPOSITION_PACKAGES = {"worker", "cli"}
COMPOSITION_MODULES = {"app.py", "runtime.py"}
UPWARD = ("gatehouse.worker", "gatehouse.cli")
LAZY = "# lazy:"


def _modules() -> list[str]:
    names = []
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _imported(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")[: -node.level]
        base = ".".join([*package, base] if base else package)
    # `from gatehouse import worker` imports gatehouse.worker.
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _parsed() -> list[tuple[Path, str, ast.Module]]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        found.append((path, ".".join(parts), ast.parse(path.read_text(), str(path))))
    return found


def _is_feature_module(path: Path) -> bool:
    relative = path.relative_to(SOURCE)
    if len(relative.parts) == 1:
        return relative.name not in COMPOSITION_MODULES
    return relative.parts[0] not in COMPOSITION_PACKAGES


def test_no_feature_imports_the_worker_or_the_cli() -> None:
    wrong = []
    for path, module, tree in _parsed():
        if not _is_feature_module(path):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _imported(node, module):
                if any(name == up or name.startswith(f"{up}.") for up in UPWARD):
                    wrong.append(f"{path.relative_to(SOURCE)}:{node.lineno} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_functions_import_nothing_unless_a_comment_says_why() -> None:
    unexplained = []
    for path, _, tree in _parsed():
        lines = path.read_text().splitlines()
        functions = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        for function in functions:
            for node in ast.walk(function):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                spanned = lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
                reasons = [line.split(LAZY, 1)[1].strip() for line in spanned if LAZY in line]
                if not any(reasons):
                    unexplained.append(
                        f"{path.relative_to(SOURCE)}:{node.lineno}: {lines[node.lineno - 1]}"
                    )
    assert not unexplained, "imports in function bodies without a `# lazy: why`:\n" + "\n".join(
        unexplained
    )


def test_the_shared_task_declaration_imports_no_feature_at_run_time() -> None:
    tree = ast.parse((SOURCE / "kit" / "tasks.py").read_text())
    # Only the module's own top-level statements run; TYPE_CHECKING blocks do not.
    run_time = [
        name
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in _imported(node, "gatehouse.kit.tasks")
    ]
    assert [name for name in run_time if name.startswith("gatehouse")] == []


# Run in a fresh interpreter: for each module, every gatehouse module imported so far is
# forgotten first, so each one imports as if it were the first (third-party packages stay
# loaded: a subprocess per module would take minutes).
ISOLATED_IMPORTS = """
import importlib, json, sys, traceback

failures = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "gatehouse" or m.startswith("gatehouse.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        failures[name] = traceback.format_exc(limit=-3)
print(json.dumps(failures))
"""


def test_every_module_imports_on_its_own_in_a_fresh_interpreter() -> None:
    modules = _modules()
    assert "gatehouse.worker.registry" in modules
    done = subprocess.run(
        [sys.executable, "-c", ISOLATED_IMPORTS, json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    failures: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    assert not failures, "\n\n".join(f"{name}:\n{error}" for name, error in failures.items())
