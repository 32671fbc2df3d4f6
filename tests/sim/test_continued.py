"""A top-level loop's last position taken as one more repetition of the exact repeat before
it (:mod:`metronome.sim.continued`): every step gets the record stepping it gives."""

from __future__ import annotations

import numpy as np
import pytest

import metronome.sim.context as context_module
import metronome.sim.continued as continued_module
import metronome.sim.fast as fast_module
from metronome.sim.context import RunContext
from metronome.sim.l1 import L1Residency
from metronome.sim.l1_outcome import StepL1
from metronome.sim.outcomes import KeptOutcome, kept_outcome_at
from metronome.sim.traffic import StepRecord
from metronome.spec.hardware import Hardware

from .helpers import fast_run_records
from .test_keyed_segments import OS_K6, ROWS

# OS_K6 with K in tiles of 4 outputs over 10: the last position holds 2 (its tiles are
# not the middle ones' translated).
CLIPPED_K = OS_K6.replace("K: 6", "K: 10").replace("TemporalMap(1,1) K", "TemporalMap(4,4) K")


def _run(
    text: str, pes: int, l1: int, topology: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, object], list[int], int]:
    """The fast run's result, each step's record id and how many segments continued an
    exact repeat."""
    taken: list[int] = []
    records = fast_module.continued_records

    def counted(*args: object) -> list[StepRecord] | None:
        found = records(*args)  # type: ignore[arg-type]
        taken.extend([1] if found is not None else [])
        return found

    monkeypatch.setattr(fast_module, "continued_records", counted)
    hw = Hardware(num_pes=pes, l1_size_elems=l1, topology=topology)
    result, rids = fast_run_records(text, hw, monkeypatch)
    monkeypatch.setattr(fast_module, "continued_records", records)
    return result, rids, len(taken)


@pytest.mark.parametrize(
    ("l1", "topology"), [(30, "bus"), (40, "bus"), (60, "bus"), (40, "mesh"), (40, "tree")]
)
def test_a_continued_last_position_gets_the_records_stepping_gives(
    monkeypatch: pytest.MonkeyPatch, l1: int, topology: str
) -> None:
    result, rids, taken = _run(OS_K6, 2, l1, topology, monkeypatch)
    assert taken == 1
    monkeypatch.setattr(fast_module, "continued_records", lambda *args: None)
    stepped, stepped_rids, _ = _run(OS_K6, 2, l1, topology, monkeypatch)
    assert rids == stepped_rids
    assert result == stepped


@pytest.mark.parametrize("l1", [40, 60])
def test_a_continued_segment_with_clipped_positions_gets_the_records_stepping_gives(
    monkeypatch: pytest.MonkeyPatch, l1: int
) -> None:
    result, rids, taken = _run(CLIPPED_K, 2, l1, "bus", monkeypatch)
    assert taken
    monkeypatch.setattr(fast_module, "continued_records", lambda *args: None)
    stepped, stepped_rids, _ = _run(CLIPPED_K, 2, l1, "bus", monkeypatch)
    assert rids == stepped_rids
    assert result == stepped


def _last_as_logged(*args: object) -> list[StepRecord] | None:
    """:func:`continued_records` giving the last step the logged last step's record
    under its own key too (as if its successor were the logged one's)."""
    run, tail, seg, _following = args
    if not continued_module._continues(run, tail, seg):  # type: ignore[arg-type]
        return None
    m = len(seg.steps)  # type: ignore[attr-defined]
    items = [(s, seg.schedules[j]) for j, s in enumerate(seg.steps)]  # type: ignore[attr-defined]
    before = (tail.seg.step_at(tail.seg.count - 1, m - 1), tail.seg.schedules[-1])  # type: ignore[attr-defined]
    sigs = [run.signature_of(r) for r in tail.recs]  # type: ignore[attr-defined]
    recs = [run.record_as(items[j], items[j - 1] if j else before, sigs[j]) for j in range(m)]  # type: ignore[attr-defined]
    run.l1.advance(tail.shift, m, 1)  # type: ignore[attr-defined]
    return recs


def test_the_last_step_needs_its_own_successor(monkeypatch: pytest.MonkeyPatch) -> None:
    # The segment's last step precedes the next segment's first, not a repetition's:
    # with the logged last step's outcome a count changes.
    monkeypatch.setattr(fast_module, "continued_records", lambda *args: None)
    stepped, _, _ = _run(CLIPPED_K, 2, 40, "bus", monkeypatch)
    monkeypatch.setattr(fast_module, "continued_records", _last_as_logged)
    wrong, _, taken = _run(CLIPPED_K, 2, 40, "bus", monkeypatch)
    assert taken
    assert wrong != stepped


def test_a_kept_outcome_gives_back_its_leaving_boxes_moved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every outcome kept in a run (outputs leaving at clipped and full positions alike)
    # comes back with the same boxes and masks at its own base, and moved with the base.
    seen: list[tuple[object, ...]] = []
    keep = context_module.kept_outcome

    def kept(s: StepL1, out_base: np.ndarray) -> KeptOutcome:
        out = keep(s, out_base)
        seen.append((runs[0].l1, s, out_base, out))
        return out

    runs: list[RunContext] = []
    init = RunContext.__init__

    def made(self: RunContext, *args: object) -> None:
        init(self, *args)  # type: ignore[arg-type]
        runs.append(self)

    monkeypatch.setattr(RunContext, "__init__", made)
    monkeypatch.setattr(context_module, "kept_outcome", kept)
    _run(ROWS % 10, 1, 30, "bus", monkeypatch)
    moved = 0
    for l1, s, base, out in seen:
        assert isinstance(l1, L1Residency)
        assert isinstance(s, StepL1)
        assert isinstance(base, np.ndarray)
        assert isinstance(out, KeptOutcome)
        shape = np.array(l1.space.shapes[2])
        for by in (np.zeros_like(base), np.eye(base.size, dtype=np.int64)[-1]):
            boxes = [e for e in s.egress if e is not None]
            if any((e[1] + by > shape).any() for e in boxes):
                continue
            back = kept_outcome_at(l1, out, base + by).egress
            want = [None if e is None else (e[0] + by, e[1] + by, e[2]) for e in s.egress]
            assert len(back) == len(want)
            for b, w in zip(back, want, strict=True):
                assert (b is None) == (w is None)
                if b is not None and w is not None:
                    assert b[0].tolist() == w[0].tolist()
                    assert b[1].tolist() == w[1].tolist()
                    assert (b[2] is None) == (w[2] is None)
                    assert b[2] is None or w[2] is None or b[2].tolist() == w[2].tolist()
                    moved += int(by.any())
    assert moved
