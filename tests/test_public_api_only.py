"""Tests, tools, research tools and benchmarks use the package's public API only.

A name starting with ``_`` is its module's own business: a test or tool that reads it pins an implementation
detail (and breaks when it is refactored, as seven private pipeline helpers once did). This reads every such file
(AST) and fails on ``from m import _name`` from a module of this project and on ``something._name`` where
``_name`` is a private name defined in another file of the project (``self._x`` and dunders are fine).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFINING = [ROOT / "hyperseg_lite", ROOT / "tools", ROOT / "research", ROOT / "benchmarks", ROOT / "tests"]
CHECKED = [ROOT / "tests", ROOT / "tools", ROOT / "research", ROOT / "benchmarks"]


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def python_files(folders) -> list[Path]:
    return sorted(p for folder in folders if folder.exists() for p in folder.rglob("*.py"))


def private_definitions() -> dict[str, set[Path]]:
    """Private name -> the files that define it (functions, classes, module or class attributes, ``self._x``)."""
    defined: dict[str, set[Path]] = {}
    for path in python_files(DEFINING):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        names.append(target.id)
                    elif (
                        isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id in ("self", "cls")
                    ):
                        names.append(target.attr)
            for name in names:
                if is_private(name):
                    defined.setdefault(name, set()).add(path)
    return defined


def project_module(name: str) -> bool:
    return name.split(".")[0] in {"hyperseg_lite", "helpers", "pipeline_calls", "demo", "app"}


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def violations(path: Path, defined: dict[str, set[Path]]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and project_module(node.module):
            found += [
                f"{shown(path)}:{node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if is_private(alias.name)
            ]
        elif isinstance(node, ast.Attribute) and is_private(node.attr):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            owners = defined.get(node.attr, set())
            if owners and owners != {path}:
                found.append(
                    f"{shown(path)}:{node.lineno}: .{node.attr} "
                    f"(private to {', '.join(sorted(shown(o) for o in owners))})"
                )
    return found


def test_no_test_tool_or_benchmark_reads_another_modules_private_names():
    defined = private_definitions()
    found = sorted(v for path in python_files(CHECKED) for v in violations(path, defined))
    assert not found, "private names used from outside their module:\n" + "\n".join(found)


def test_the_check_catches_private_use(tmp_path):
    # names made up for the check: a private class imported, a private method called from outside its module
    defined = {"_prepare": {ROOT / "hyperseg_lite" / "pipeline" / "pipeline.py"}}
    bad = tmp_path / "bad.py"
    hidden, method = "_" + "Hidden", "_" + "prepare"  # spelt apart so that no scanner mistakes this for real use
    bad.write_text(
        f"from hyperseg_lite.pipeline.video import {hidden}\nframe = pipe.{method}(image)\n"
        f"self.{method} = 1\nx.__class__\n"
    )
    found = violations(bad, defined)
    assert len(found) == 2 and "_Hidden" in found[0] and "._prepare" in found[1]
