"""The per-group closed-form counts (:mod:`metronome.analytic.groups`) against the
simulator's executed loop nest: MACs, global steps, active PE-steps, every tensor's
tile elements and the busiest PE's compute, on random mappings (every directive order,
tile size and offset, strides, partial filter maps, ``Y'``/``X'`` maps, up to three
levels, one or two SpatialMaps per level). Golden values: the simulator's own
``LoopNest``/``Geometry`` walked step by step (tests may import both engines)."""

from __future__ import annotations

from itertools import pairwise
from math import prod

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from metronome import analytic, sim
from metronome.analytic.groups import exact_counts
from metronome.sim.geometry import Geometry
from metronome.sim.loopnest import LoopNest
from metronome.spec.hardware import Hardware
from metronome.spec.layer import Layer, LayerType, make_layer
from metronome.spec.mapping import ClusterDirective, MapDirective, Mapping
from metronome.spec.source import SpecError

MAX_STEPS = 400


def _walk(layer: Layer, mapping: Mapping, num_pes: int, simd: int) -> dict[str, object]:
    """Everything the simulator's nest does, counted by visiting every global step."""
    nest = LoopNest(layer, mapping, num_pes)
    geometry = Geometry(layer, nest.dims)
    macs = steps = pe_steps = compute = 0
    tiles = [0] * len(layer.tensors)
    busy: list[bool] = []
    for positions, inner, _n, schedules in nest.iter_steps():
        t = geometry.tiles(nest.pe_ranges(positions, inner, schedules))
        steps += 1
        macs += int(t.macs.sum())
        busy.append(int(t.macs.sum()) > 0)
        pe_steps += int(t.active.sum())
        compute += -(-int(t.macs.max()) // simd)
        for k, (lo, hi) in enumerate(t.tensors):
            tiles[k] += int(np.prod(np.maximum(hi - lo, 0), axis=0).sum())
    return {
        "macs": macs,
        "steps": steps,
        "top_steps": prod(nest.top_trips),
        "pe_steps": pe_steps,
        "tile_elems": tuple(tiles),
        "compute": compute,
        "levels": len(nest.units),
        "idle": busy.count(False),
        "after_idle": sum(b and not a for a, b in pairwise(busy)),
        "last_idle": not busy[-1],
    }


def _directive(draw: st.DrawFn, layer: Layer, dim: str, spatial: bool) -> MapDirective:
    n = layer.size(dim)
    if dim in ("R", "S") and draw(st.booleans()):
        return MapDirective(spatial, dim, n if draw(st.booleans()) else 1, n)
    size = draw(st.integers(1, n))
    return MapDirective(spatial, dim, size, draw(st.integers(1, size)))


def _level(draw: st.DrawFn, layer: Layer) -> list[MapDirective]:
    outputs = draw(st.sampled_from(["none", "Y'", "X'", "both"]))
    dims = ["K", "C", "R", "S"]
    dims.append("Y'" if outputs in ("Y'", "both") else "Y")
    dims.append("X'" if outputs in ("X'", "both") else "X")
    dims = list(draw(st.permutations(dims)))
    dims = dims[: draw(st.integers(1, len(dims)))]
    candidates = [d for d in dims if d not in ("R", "S")] or dims
    spatial = set(draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=2)))
    return [_directive(draw, layer, d, d in spatial) for d in dims]


@st.composite
def cases(draw: st.DrawFn, rows: int = 6) -> tuple[Layer, Mapping, int, int]:
    """A random CONV layer (``Y``, ``X`` up to ``rows`` past the filter), a one- to
    three-level mapping, PEs and SIMD lanes."""
    r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sizes = {
        "K": draw(st.integers(1, 5)),
        "C": draw(st.integers(1, 4)),
        "R": r,
        "S": s,
        "Y": draw(st.integers(r, r + rows)),
        "X": draw(st.integers(s, s + rows - 1)),
    }
    layer = make_layer(
        name="g",
        type_=LayerType.CONV,
        declared=sizes,
        stride_y=draw(st.integers(1, 3)),
        stride_x=draw(st.integers(1, 2)),
    )
    directives: list[MapDirective | ClusterDirective] = list(_level(draw, layer))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        directives.append(ClusterDirective(draw(st.integers(2, 3))))
        directives += _level(draw, layer)
    mapping = Mapping(tuple(directives))
    return layer, mapping, draw(st.integers(1, 12)), draw(st.integers(1, 3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.one_of(cases(), cases(rows=24)))
def test_counts_match_the_executed_nest(case: tuple[Layer, Mapping, int, int]) -> None:
    """Larger rows put tiles in the interior, where walks are shared (``_canonical``)."""
    layer, mapping, pes, simd = case
    try:
        nest = LoopNest(layer, mapping, pes)
    except SpecError:
        assume(False)
        return
    assume(prod(nest.top_trips) * max(1, prod(nest.units[1:])) <= MAX_STEPS)
    truth = _walk(layer, mapping, pes, simd)
    got = exact_counts(layer, mapping, pes, simd)
    assert got is not None
    assert got.macs == truth["macs"]
    if got.steps_exact:
        assert got.steps == truth["steps"]
    else:
        assert got.steps >= truth["steps"]
    assert got.top_steps == truth["top_steps"]
    assert got.pe_steps == truth["pe_steps"]
    assert got.tile_elems == truth["tile_elems"]
    if truth["levels"] == 1 or (got.steps_exact and got.steps == got.top_steps):
        # One level, or nested levels of one step per top position: the top level's
        # loops are the steps' odometer.
        assert (got.idle_steps, got.after_idle) == (truth["idle"], truth["after_idle"])
        assert got.working_top_steps == truth["top_steps"] - truth["idle"]
        assert got.after_idle == sum(n for _, n in got.after_idle_by_dim)
        if got.idle_steps:
            assert got.last_idle == truth["last_idle"]
    if truth["levels"] == 1:
        assert got.compute_cycles == truth["compute"]
    else:
        # Each group follows its busiest unit's nest: units stepping through edge tiles
        # of different shapes together can make a step busier than that.
        assert got.compute_cycles <= truth["compute"]


def test_counts_match_the_simulated_macs_of_an_output_map_with_a_partial_filter() -> None:
    """A filter map of one row next to an output-row map (the case enumeration's worst:
    it counts 576 MACs and 288 steps here). The layer has ``Y' = (4-3)//2+1 = 1``,
    ``X' = (5-3)//2+1 = 2``: 4 x 2 x 3 x 3 x 1 x 2 = 144 MACs, which the simulator
    performs once each; steps from the simulator's run."""
    layer = make_layer(
        name="p",
        type_=LayerType.CONV,
        declared={"K": 4, "C": 2, "R": 3, "S": 3, "Y": 4, "X": 5},
        stride_y=2,
        stride_x=2,
    )
    mapping = Mapping(
        (
            MapDirective(False, "K", 1, 1),
            MapDirective(False, "R", 1, 1),
            MapDirective(False, "Y'", 1, 1),
            MapDirective(True, "C", 2, 1),
            MapDirective(False, "X", 5, 1),
            MapDirective(False, "S", 3, 3),
            ClusterDirective(2),
            MapDirective(False, "S", 1, 1),
            MapDirective(False, "X'", 1, 1),
            MapDirective(True, "K", 2, 2),
            MapDirective(False, "R", 1, 1),
            MapDirective(False, "C", 2, 1),
            MapDirective(False, "Y", 3, 1),
        )
    )
    hw = Hardware(num_pes=9)
    result = sim.simulate(layer, mapping, hw, sim.SimOptions(policy=sim.REALISTIC))
    got = exact_counts(layer, mapping, hw.num_pes)
    assert got is not None
    assert got.macs == result.layer.macs == 144
    assert got.steps == result.layer.to_dict()["steps"]
    assert analytic.analyze(layer, mapping, hw, model="refined").macs == 144


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(cases())
def test_refined_model_reports_the_executed_macs(case: tuple[Layer, Mapping, int, int]) -> None:
    """The refined model's MACs are the executed nest's, whatever MAESTRO's states count."""
    layer, mapping, pes, simd = case
    try:
        nest = LoopNest(layer, mapping, pes)
        result = analytic.analyze(
            layer, mapping, Hardware(num_pes=pes, simd_lanes=simd), model="refined"
        )
    except SpecError:
        assume(False)
        return
    assume(prod(nest.top_trips) * max(1, prod(nest.units[1:])) <= MAX_STEPS)
    assert result.macs == _walk(layer, mapping, pes, simd)["macs"]
