"""The engines cross-validate each other only if each derives everything from the spec
on its own: ``sim`` never imports ``analytic``, ``analytic`` never imports ``sim``, and
``spec`` imports neither (nor the harness). The folders install as ``metronome.<folder>``,
so every import names them that way (relative imports are resolved before checking)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
NAMESPACE = "metronome"
FOLDERS = ("analytic", "sim", "spec", "validation")

FORBIDDEN = {
    "sim": {"analytic", "validation"},
    "analytic": {"sim", "validation"},
    "spec": {"sim", "analytic", "validation"},
}


def _module_name(path: Path) -> str:
    """The installed dotted name of a source file of one of the folders."""
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((NAMESPACE, *parts))


def _imported_modules(path: Path, module: str | None = None) -> set[str]:
    """Absolute names of what ``path`` imports; ``from P import n`` also counts as ``P.n``,
    since ``n`` may be a submodule. Relative imports are resolved against ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module.split(".") if module else []
    if module and path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def _folder_of(module: str) -> str | None:
    """Which of the four folders an absolute module name lies in, if any."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == NAMESPACE and parts[1] in FOLDERS:
        return parts[1]
    return None


def _python_files() -> list[Path]:
    """Every Python file of the repository, outside hidden folders (virtual environments)
    and build output."""
    return sorted(
        p
        for p in REPO.rglob("*.py")
        if not any(
            part.startswith(".") or part in ("build", "dist") for part in p.relative_to(REPO).parts
        )
    )


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_source_file_imports_a_forbidden_package(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"package {package} has no source files"
    offenders = []
    for f in files:
        reached = {_folder_of(m) for m in _imported_modules(f, _module_name(f))}
        if reached & FORBIDDEN[package]:
            offenders.append(
                f"{f.relative_to(REPO)} imports {sorted(reached & FORBIDDEN[package])}"
            )
    assert not offenders, "\n".join(offenders)


def test_the_checker_resolves_relative_and_namespace_imports(tmp_path: Path) -> None:
    source = tmp_path / "fast.py"
    source.write_text(
        "from .. import analytic\n"
        "from ..spec.layer import Layer\n"
        "from .noc import Noc\n"
        "from metronome import validation\n"
        "import metronome.sim.pe\n",
        encoding="utf-8",
    )
    reached = {_folder_of(m) for m in _imported_modules(source, "metronome.sim.fast")}
    assert reached == {"analytic", "spec", "sim", "validation", None}
    assert _module_name(REPO / "sim" / "__init__.py") == "metronome.sim"
    assert _module_name(REPO / "sim" / "fast.py") == "metronome.sim.fast"


def test_no_file_imports_a_folder_by_its_bare_name() -> None:
    offenders = [
        f"{f.relative_to(REPO)} imports {sorted(bad)}"
        for f in _python_files()
        if (bad := {m for m in _imported_modules(f) if m.split(".")[0] in FOLDERS})
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("sim", "analytic"), ("analytic", "sim"), ("spec", "analytic"), ("spec", "sim")],
)
def test_importing_a_package_loads_no_module_of_the_other(
    package: str, forbidden: str, tmp_path: Path
) -> None:
    other = f"{NAMESPACE}.{forbidden}"
    code = (
        f"import sys, {NAMESPACE}.{package}\n"
        f"loaded = sorted(m for m in sys.modules if (m + '.').startswith({other + '.'!r}))\n"
        "print(','.join(loaded))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "", f"import {package} loaded {out.stdout.strip()}"
