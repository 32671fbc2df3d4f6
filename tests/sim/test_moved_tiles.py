"""Records under L1 residency built from a geometry key's first tiles translated
(:meth:`Geometry.moved`, :meth:`RunContext._record_tiles`) instead of each step's own:
the tiles agree on every active PE, and whole runs give the same results."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings

import metronome.sim.context as context_module
from metronome.sim import REALISTIC, SimOptions, simulate
from metronome.sim.context import RunContext
from metronome.sim.geometry import Geometry, StepTiles
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_mapping_text

from .random_cases import Problem, problems
from .test_keyed_segments import OS_K6

# Two PEs, rows of outputs accumulated over C: evictions of earlier rows' partial sums
# differ from step to step, so one geometry key gets several records.
WIDE = OS_K6.replace("Y: 8, X: 12", "Y: 10, X: 20")


def _active_part(tiles: StepTiles) -> list[np.ndarray]:
    """What the record builder reads of ``tiles``: the active PEs' boxes, every PE's
    MACs and activity, and each PE's tile sizes (an idle PE's are empty)."""
    act = tiles.active
    parts = [tiles.active, tiles.macs, tiles.mac_lo[:, act], tiles.mac_hi[:, act]]
    for lo, hi in tiles.tensors:
        parts += [lo[:, act], hi[:, act], np.prod(np.maximum(hi - lo, 0), axis=0)]
    return parts


@settings(max_examples=150, deadline=None)
@given(problems())
def test_a_keys_first_tiles_moved_are_each_steps_on_the_active_pes(problem: Problem) -> None:
    options = SimOptions(policy=dataclasses.replace(REALISTIC, l1_keeps_reusable_data=False))
    run = RunContext(problem.layer, problem.mapping, problem.hardware, options)
    first: dict[object, tuple[dict[str, int], StepTiles]] = {}
    for step, schedules in run.stream:
        tiles = run.tiles(step, schedules)
        seen = first.setdefault(step.key, (step.base, tiles))
        by = {d: step.base.get(d, 0) - seen[0].get(d, 0) for d in {*step.base, *seen[0]}}
        moved = run.geometry.moved(seen[1], by)
        for got, want in zip(_active_part(moved), _active_part(tiles), strict=True):
            assert np.array_equal(got, want)


def _result(text: str, pes: int, l1: int, topology: str) -> dict[str, object]:
    entry = parse_mapping_text(text).layers[0]
    assert entry.mapping is not None
    hw = Hardware(num_pes=pes, l1_size_elems=l1, topology=topology)
    return simulate(entry.layer, entry.mapping, hw, SimOptions(policy=REALISTIC)).layer.to_dict()


@pytest.mark.parametrize(("l1", "topology"), [(80, "bus"), (100, "bus"), (100, "mesh")])
def test_records_from_moved_tiles_give_the_results_of_each_steps_tiles(
    monkeypatch: pytest.MonkeyPatch, l1: int, topology: str
) -> None:
    moved: list[StepTiles] = []
    move = Geometry.moved

    def counted(self: Geometry, tiles: StepTiles, by: dict[str, int]) -> StepTiles:
        moved.append(move(self, tiles, by))
        return moved[-1]

    monkeypatch.setattr(Geometry, "moved", counted)
    fast = _result(WIDE, 2, l1, topology)
    assert moved
    monkeypatch.setattr(context_module, "_KEY_TILES_KEPT", 0)
    assert fast == _result(WIDE, 2, l1, topology)
