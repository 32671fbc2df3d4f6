"""Finding scenarios: files, directories and suite files.

A suite file is a YAML file with an ``include`` list of globs relative to it::

    suite: default
    description: what this suite is for
    include:
      - crosscheck/*.yaml
      - default/*.yaml
"""

from __future__ import annotations

from pathlib import Path

import yaml

from metronome.spec.lexer import read_source
from metronome.spec.source import SourceSpan, SpecError

__all__ = ["DEFAULT_SUITE", "expand", "is_suite"]

DEFAULT_SUITE = Path("scenarios") / "default.yaml"


def is_suite(path: Path) -> bool:
    """Whether a YAML file is a suite (has a top-level ``include``)."""
    try:
        data = yaml.safe_load(read_source(path))
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and "include" in data


def _suite_members(path: Path) -> list[Path]:
    text = read_source(path)
    data = yaml.safe_load(text)
    patterns = data.get("include")
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise SpecError.at(
            SourceSpan(str(path), 1, 1, 1, text.splitlines()[0] if text else ""),
            "a suite's 'include' must be a list of glob patterns",
        )
    members: list[Path] = []
    for pattern in patterns:
        found = sorted(path.parent.glob(pattern))
        if not found:
            line = next((i for i, t in enumerate(text.splitlines(), 1) if pattern in t), 1)
            raise SpecError.at(
                SourceSpan(str(path), line, 1, 1, text.splitlines()[line - 1]),
                f"include pattern '{pattern}' matches no file",
            )
        members.extend(found)
    return members


def expand(targets: list[str]) -> list[Path]:
    """Scenario files named by ``targets`` (files, directories, suites), in order,
    without duplicates. No targets means the default suite."""
    if not targets:
        if not DEFAULT_SUITE.is_file():
            raise SpecError.at(
                None,
                f"no scenarios given and no {DEFAULT_SUITE} here",
                hint="run from the repository root, or name scenario files or directories",
            )
        targets = [str(DEFAULT_SUITE)]
    out: list[Path] = []
    pending = [Path(t) for t in targets]
    seen_suites: set[Path] = set()
    while pending:
        path = pending.pop(0)
        if path.is_dir():
            pending[:0] = sorted(path.rglob("*.yaml"))
        elif not path.exists():
            raise SpecError.at(None, f"{path}: no such file or directory")
        elif is_suite(path):
            if path.resolve() in seen_suites:
                continue
            seen_suites.add(path.resolve())
            pending[:0] = _suite_members(path)
        elif path.suffix in (".yaml", ".yml"):
            if path not in out:
                out.append(path)
        else:
            raise SpecError.at(
                None,
                f"{path}: not a scenario (.yaml)",
                hint="metronome validate runs YAML scenarios; use analyze/simulate for .m files",
            )
    return out
