"""Random small problems for property tests: a CONV layer, a one- or two-level mapping
(every dimension order, spatial dimension, tile size and offset, partial folds,
strides, Sz and single-row filter maps, Y'/X' output maps), hardware with small buffers
and every topology, and a policy. Small enough for the full SimPy run."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import assume
from hypothesis import strategies as st

from metronome.sim import MAESTRO, REALISTIC, Policy
from metronome.sim.loopnest import LoopNest
from metronome.spec.hardware import TOPOLOGIES, UNBOUNDED, Hardware
from metronome.spec.layer import Layer, LayerType, make_layer
from metronome.spec.mapping import ClusterDirective, MapDirective, Mapping
from metronome.spec.source import SpecError

MAX_STEPS = 160
"""Most global steps of a drawn problem (the full SimPy run stays fast)."""


@dataclass(frozen=True)
class Problem:
    """One drawn case."""

    layer: Layer
    mapping: Mapping
    hardware: Hardware
    policy: Policy

    def __repr__(self) -> str:
        return (
            f"Problem({self.layer.sizes}, stride=({self.layer.stride_y},{self.layer.stride_x}),"
            f" '{self.mapping}', {_changed(self.hardware)}, {self.policy.name})"
        )


def _directive(draw, layer: Layer, dim: str, spatial: bool) -> MapDirective:
    if dim in ("R", "S"):
        n = layer.size(dim)
        whole = draw(st.booleans())
        size = n if whole else 1
        return MapDirective(spatial, dim, size, size)
    if dim in ("Y'", "X'"):
        n = layer.size(dim)
    else:
        n = layer.size(dim)
    size = draw(st.integers(1, n))
    offset = draw(st.integers(1, size))
    return MapDirective(spatial, dim, size, offset)


def _level(draw, layer: Layer) -> list[MapDirective]:
    outputs = draw(st.sampled_from(["none", "Y'", "X'"]))
    dims = ["K", "C", "R", "S", "Y" if outputs != "Y'" else "Y'", "X" if outputs != "X'" else "X'"]
    order = draw(st.permutations(dims))
    spatial = draw(st.sampled_from([d for d in order if d not in ("R", "S")]))
    return [_directive(draw, layer, d, d == spatial) for d in order]


@st.composite
def problems(draw, max_steps: int = MAX_STEPS) -> Problem:
    """A random layer, mapping, hardware and policy whose run has at most
    ``max_steps`` global steps."""
    r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sy, sx = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    sizes = {
        "K": draw(st.integers(1, 4)),
        "C": draw(st.integers(1, 4)),
        "R": r,
        "S": s,
        "Y": draw(st.integers(r, r + 4)),
        "X": draw(st.integers(s, s + 3)),
    }
    layer = make_layer(name="p", type_=LayerType.CONV, declared=sizes, stride_y=sy, stride_x=sx)
    directives: list[MapDirective | ClusterDirective] = list(_level(draw, layer))
    clusters = draw(st.sampled_from([0, 0, 1]))
    if clusters:
        directives.append(ClusterDirective(draw(st.integers(2, 3))))
        directives += _level(draw, layer)
    mapping = Mapping(tuple(directives))
    pes = draw(st.integers(1, 9))
    topology = draw(st.sampled_from(TOPOLOGIES))
    small = st.one_of(st.just(UNBOUNDED), st.integers(1, 8))
    hw = Hardware(
        num_pes=pes,
        simd_lanes=draw(st.integers(1, 3)),
        l1_size_elems=draw(st.one_of(st.just(UNBOUNDED), st.integers(2, 60))),
        l2_size_elems=draw(st.one_of(st.just(UNBOUNDED), st.integers(4, 120))),
        noc_bw_elems_per_cycle=draw(small),
        noc_hop_latency_cycles=draw(st.integers(0, 2)),
        noc_latency_cycles=draw(st.integers(0, 2)),
        offchip_bw_elems_per_cycle=draw(small),
        offchip_latency_cycles=draw(st.integers(0, 6)),
        offchip_max_outstanding_requests=draw(st.sampled_from([1, 2, 16])),
        l2_read_bw_elems_per_cycle=draw(small),
        l2_write_bw_elems_per_cycle=draw(small),
        adder_latency_cycles=draw(st.integers(0, 2)),
        topology=topology,
        noc_arbitration=draw(st.sampled_from(["fifo", "round_robin"])),
        mesh_l2_position=draw(st.sampled_from(["corner", "edge"])),
    )
    try:
        nest = LoopNest(layer, mapping, pes)
        steps = sum(nest.inner_steps(pos)[0] for pos, *_ in _tops(nest, max_steps))
    except SpecError:
        steps = None
    assume(steps is not None and steps <= max_steps)
    policy = draw(st.sampled_from([MAESTRO, REALISTIC]))
    return Problem(layer, mapping, hw, policy)


def _tops(nest: LoopNest, limit: int):
    """Top-level positions, giving up (``SpecError``) beyond ``limit``."""
    import numpy as np

    for count, raw in enumerate(np.ndindex(*nest.top_trips)):
        if count >= limit:
            raise SpecError.at(None, "too many steps")
        yield (tuple(int(p) for p in raw),)


def _changed(hw: Hardware) -> str:
    """The hardware fields that differ from the defaults."""
    default = Hardware()
    fields = ("num_pes", "simd_lanes", "l1_size_elems", "l2_size_elems")
    fields += tuple(f for f in Hardware.__dataclass_fields__ if f not in fields)
    return ", ".join(
        f"{f}={getattr(hw, f)}"
        for f in fields
        if f != "source" and getattr(hw, f) != getattr(default, f)
    )
