"""The engines cross-validate each other only if each derives everything from the spec
on its own: ``sim`` never imports ``analytic``, ``analytic`` never imports ``sim``, and
``spec`` imports neither (nor the harness)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent

FORBIDDEN = {
    "sim": {"analytic", "validation"},
    "analytic": {"sim", "validation"},
    "spec": {"sim", "analytic", "validation"},
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_source_file_imports_a_forbidden_package(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"package {package} has no source files"
    offenders = [
        f"{f.relative_to(REPO)} imports {sorted(_imported_roots(f) & FORBIDDEN[package])}"
        for f in files
        if _imported_roots(f) & FORBIDDEN[package]
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("sim", "analytic"), ("analytic", "sim"), ("spec", "analytic"), ("spec", "sim")],
)
def test_importing_a_package_loads_no_module_of_the_other(package: str, forbidden: str) -> None:
    code = (
        f"import sys, {package}\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] == {forbidden!r})\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"import {package} loaded {out.stdout.strip()}"
