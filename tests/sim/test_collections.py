"""A run's garbage-collector settings (:func:`metronome.sim.simulate._fewer_collections`):
the run's long-lived structures are frozen once built and unfrozen after; a caller's
frozen objects are left as they are."""

from __future__ import annotations

import gc

from metronome.sim import REALISTIC, SimOptions, simulate
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_mapping_text

from .test_l1_residency import MONO


def _run() -> None:
    entry = parse_mapping_text(MONO).layers[0]
    assert entry.mapping is not None
    simulate(
        entry.layer,
        entry.mapping,
        Hardware(num_pes=16, l1_size_elems=100),
        SimOptions(policy=REALISTIC),
    )


def test_a_run_freezes_its_structures_and_unfreezes_them(monkeypatch) -> None:
    seen: list[int] = []
    freeze = gc.freeze

    def counted() -> None:
        freeze()
        seen.append(gc.get_freeze_count())

    monkeypatch.setattr(gc, "freeze", counted)
    assert gc.get_freeze_count() == 0
    _run()
    # Frozen once during the run, nothing frozen after it.
    assert len(seen) == 1
    assert seen[0] > 0
    assert gc.get_freeze_count() == 0


def test_a_callers_frozen_objects_stay_frozen() -> None:
    mine = [object() for _ in range(10)]
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        assert before > 0
        _run()
        assert gc.get_freeze_count() == before
    finally:
        gc.unfreeze()
    del mine
