"""A bulk's replayed steps looked up by place and evicted outputs (:mod:`metronome.sim.replays`):
the records are the ones replaying each step gives."""

from __future__ import annotations

import numpy as np
import pytest

from metronome.sim.replays import ReplayMemo
from metronome.sim.traffic import StepRecord
from metronome.spec.hardware import Hardware

from .helpers import fast_run_records
from .test_keyed_segments import OS_K6, ROWS


def _run(
    text: str, pes: int, l1: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, object], list[int], int]:
    """The fast run's result, each step's record id and how many replayed steps the
    memo answered."""
    hits: list[int] = []
    get = ReplayMemo.get

    def counted(self: ReplayMemo, key: object, r: int) -> StepRecord | None:
        found = get(self, key, r)  # type: ignore[arg-type]
        hits.extend([1] if found is not None else [])
        return found

    monkeypatch.setattr(ReplayMemo, "get", counted)
    result, rids = fast_run_records(text, Hardware(num_pes=pes, l1_size_elems=l1), monkeypatch)
    monkeypatch.setattr(ReplayMemo, "get", get)
    return result, rids, len(hits)


@pytest.mark.parametrize(("text", "pes", "l1"), [(OS_K6, 2, 40), (ROWS % 10, 1, 40)])
def test_looked_up_replays_are_the_records_replaying_gives(
    monkeypatch: pytest.MonkeyPatch, text: str, pes: int, l1: int
) -> None:
    result, rids, hits = _run(text, pes, l1, monkeypatch)
    assert hits
    monkeypatch.setattr(ReplayMemo, "get", lambda self, key, r: None)
    replayed, replayed_rids, none = _run(text, pes, l1, monkeypatch)
    assert none == 0
    # Every step has the record (the same id: no record is built or copied differently).
    assert rids == replayed_rids
    assert result == replayed


def _no_box(self: ReplayMemo, key: object, r: int) -> StepRecord | None:
    found = self._found.get(key)  # type: ignore[call-overload]
    return None if found is None else found[0]  # type: ignore[no-any-return]


def _no_variant(self: ReplayMemo, r: int, j: int, evicted: np.ndarray) -> object:
    key = KEY(self, r, j, evicted)
    return (key[0], 0, 0, key[3])


KEY = ReplayMemo.key


@pytest.mark.parametrize(
    ("text", "pes", "l1", "broken", "what"),
    [
        # One PE's rows of 10 outputs: an evicted output moved with the repetitions
        # leaves its row, another element in flat terms; without the box check its
        # record is another's and a count changes.
        (ROWS % 12, 1, 30, {"get": _no_box}, "result"),
        # K's first and last middle positions' end steps have their own keys (and the
        # last middle one's last step its successor's): without them in the key a step
        # gets another key's record.
        (OS_K6, 2, 40, {"key": _no_variant}, "records"),
    ],
)
def test_the_lookup_needs_its_guards(
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    pes: int,
    l1: int,
    broken: dict[str, object],
    what: str,
) -> None:
    monkeypatch.setattr(ReplayMemo, "get", lambda self, key, r: None)
    replayed, rids, _ = _run(text, pes, l1, monkeypatch)
    monkeypatch.undo()
    for name, fn in broken.items():
        monkeypatch.setattr(ReplayMemo, name, fn)
    wrong, wrong_rids, hits = _run(text, pes, l1, monkeypatch)
    assert hits
    assert wrong_rids != rids
    if what == "result":
        assert wrong != replayed
