"""Installed Metronome claims one import name, ``metronome``: the folders ``spec``, ``sim``,
``analytic`` and ``validation`` install as ``metronome.spec`` ... and not as top-level
packages, so Metronome installs side by side with the distributions that own those names."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
NAMESPACE = "metronome"
FOLDERS = ("analytic", "sim", "spec", "validation")


def _outside_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in this interpreter from ``cwd``, with no PYTHONPATH: what an installed
    Metronome offers a program that does not live in the repository."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )


def _package_folders() -> set[str]:
    """Every package folder under the four top-level folders, as the dotted installed name."""
    names = set()
    for folder in FOLDERS:
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO).parts
            names.add(".".join((NAMESPACE, *parts)))
    return names


def test_installed_distribution_has_one_top_level_name() -> None:
    dist = importlib.metadata.distribution("metronome")
    top_level = (dist.read_text("top_level.txt") or "").split()
    assert top_level == [NAMESPACE]
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {"metronome": "metronome.validation.cli:main"}


@pytest.mark.parametrize("folder", FOLDERS)
def test_folder_imports_only_under_the_namespace(folder: str, tmp_path: Path) -> None:
    installed = _outside_python(
        f"import {NAMESPACE}.{folder} as p; print(p.__file__)", cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stderr
    assert Path(installed.stdout.strip()) == REPO / folder / "__init__.py"
    bare = _outside_python(f"import {folder}", cwd=tmp_path)
    assert bare.returncode == 1
    assert f"ModuleNotFoundError: No module named '{folder}'" in bare.stderr


def test_every_package_folder_is_listed_for_installation() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    assert setuptools["package-dir"] == {f"{NAMESPACE}.{f}": f for f in FOLDERS}
    assert set(setuptools["packages"]) == _package_folders()


@pytest.mark.slow
def test_built_wheel_holds_only_the_namespace(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves a build/ folder in the tree it builds.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in FOLDERS:
        shutil.copytree(
            REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("metronome-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        NAMESPACE,
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    packages = {str(Path(n).parent).replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packages == _package_folders()
    assert "metronome/__init__.py" not in names  # an implicit namespace package
