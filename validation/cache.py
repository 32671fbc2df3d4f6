"""A content-addressed cache of engine outcomes, so that re-validating after a change
re-runs only the cases the change touched.

An entry's name is the digest of the job's content (:func:`metronome.validation.runner.content_key`:
layer, mapping, hardware, engine, change) and of the engines' source code, so editing a
scenario invalidates its cases and editing ``analytic/``, ``sim/`` or ``spec/``
invalidates everything. Entries are pickled outcomes written atomically; a damaged or
unreadable entry is treated as absent. Nothing is ever evicted: delete the folder to
reclaim the space.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

from metronome.spec.fileio import atomic_write_bytes

if TYPE_CHECKING:
    from .runner import Outcome

__all__ = ["ResultCache", "default_cache_dir", "engine_source_digest"]

_ENGINE_MODULES: tuple[str, ...] = ("metronome.analytic", "metronome.sim", "metronome.spec")
_RUNNER_FILES: tuple[str, ...] = ("runner.py", "functional.py", "cache.py")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/metronome/results`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "metronome" / "results"


def engine_source_digest() -> str:
    """A digest of the package version and every source file that computes outcomes."""
    import importlib
    from importlib import metadata

    digest = hashlib.sha256()
    try:
        digest.update(metadata.version("metronome").encode())
    except metadata.PackageNotFoundError:
        digest.update(b"unversioned")
    here = Path(__file__).parent
    files = [here / name for name in _RUNNER_FILES]
    for name in _ENGINE_MODULES:
        module = importlib.import_module(name)
        assert module.__file__ is not None
        files += sorted(Path(module.__file__).parent.rglob("*.py"))
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class ResultCache:
    """Outcomes under ``root``, keyed by content digest and engine source digest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.source = engine_source_digest()
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        name = hashlib.sha256(f"{self.source}:{key}".encode()).hexdigest()
        return self.root / name[:2] / f"{name[2:]}.pickle"

    def get(self, key: str) -> Outcome | None:
        """The stored outcome, or None."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        try:
            outcome: Outcome = pickle.loads(data)
        except Exception:  # a damaged entry: run the job again
            self.misses += 1
            return None
        self.hits += 1
        return outcome

    def put(self, key: str, outcome: Outcome) -> None:
        """Store ``outcome``; a cache that cannot be written is skipped, not fatal."""
        with contextlib.suppress(OSError):
            atomic_write_bytes(self._path(key), pickle.dumps(outcome, protocol=5))
