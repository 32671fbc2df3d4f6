"""Shared helpers for simulator tests: loading cross-check cases and shrinking layers."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from metronome.sim import REALISTIC, SimOptions, simulate
from metronome.sim.fast import FastPath
from metronome.sim.schedule import Segment
from metronome.sim.traffic import StepRecord
from metronome.spec.hardware import Hardware
from metronome.spec.layer import Layer, LayerType, make_layer
from metronome.spec.loader import load_network
from metronome.spec.maestro import parse_mapping_text
from metronome.spec.mapping import ClusterDirective, MapDirective, Mapping
from metronome.spec.window import (
    SLIDING_PAIRS,
    input_row,
    outputs_within,
    whole_windows_tile,
    window_rows,
)

DATA = Path(__file__).parent.parent / "data"
CROSSCHECK = DATA / "maestro-reference" / "crosscheck"
VOLATILE = {"simpy_events", "steps_timed_in_detail"}

# Bus bandwidth 64, latency 1, off-chip 1000 elements/cycle with no latency, big buffers.
XC = {
    "l1_size_elems": 1000,
    "l2_size_elems": 100000,
    "noc_bw_elems_per_cycle": 64,
    "noc_latency_cycles": 1,
    "offchip_bw_elems_per_cycle": 1000,
}


def xc_hw(num_pes: int, **changes: object) -> Hardware:
    """The cross-check hardware with ``num_pes`` PEs."""
    return Hardware(num_pes=num_pes, **{**XC, **changes})  # type: ignore[arg-type]


def case(name: str, layer: int = 0) -> tuple[Layer, Mapping]:
    """A layer and its mapping from ``crosscheck/NAME.m``."""
    entry = load_network(CROSSCHECK / f"{name}.m").layers[layer]
    assert entry.mapping is not None
    return entry.layer, entry.mapping


def stable(result_dict: dict[str, object]) -> dict[str, object]:
    """A result dict without the counters that differ between fast and full paths."""
    return {k: v for k, v in result_dict.items() if k not in VOLATILE}


def random_values(layer: Layer, seed: int = 0) -> dict[str, np.ndarray]:
    """Small random int64 operands for ``layer``."""
    rng = np.random.default_rng(seed)
    return {
        t: rng.integers(-4, 5, size=[layer.size(d) for d in layer.tensor(t).dims])
        for t in ("input", "weight")
    }


def shrink(layer: Layer, mapping: Mapping) -> tuple[Layer, Mapping]:
    """A small copy of ``layer`` whose mapping stays valid: filter sizes kept, other
    dimensions capped; a directive size or offset equal to its dimension's old size
    follows the new size, anything larger is capped to it."""
    if layer.type is LayerType.GEMM:
        new = {d: min(layer.size(d), 4) for d in ("M", "N", "K")}
    else:
        r, s = layer.size("R"), layer.size("S")
        new = {
            "N": 1,
            "K": min(layer.size("K"), 3),
            "C": min(layer.size("C"), 3),
            "R": r,
            "S": s,
            "Y": min(layer.size("Y"), r + 2 * layer.stride_y),
            "X": min(layer.size("X"), s + 2 * layer.stride_x),
        }
        if layer.type is LayerType.NGCONV:
            new["G"] = min(layer.size("G"), 2)
    small = make_layer(
        name=layer.name,
        type_=layer.type,
        declared=new,
        stride_y=layer.stride_y,
        stride_x=layer.stride_x,
    )
    directives = []
    for d in mapping.directives:
        if isinstance(d, ClusterDirective):
            directives.append(d)
            continue
        old, cap = layer.size(d.dim), small.size(d.dim)

        def fit(value: int, old: int = old, cap: int = cap) -> int:
            return cap if value == old or value > cap else value

        directives.append(MapDirective(d.spatial, d.dim, fit(d.size), fit(d.offset)))
    return small, Mapping(tuple(directives))


def covers_every_mac(layer: Layer, mapping: Mapping) -> bool:
    """Whether ``mapping`` performs every MAC of ``layer``, decided from the mapping's
    text alone (spec only, never the simulator): walk every level's tiles and paint the
    MACs of each innermost tile into a boolean array over the MAC space.

    The directive rules painted: a directive's tiles start every ``offset`` from the
    incoming range's start, ``size`` long and clipped to it, as long as a tile starts
    before ``range end - size`` is passed (``1 + ceil((extent - size) / offset)`` tiles);
    a level's SpatialMaps share one unit index and a unit works while every one of them
    still has a tile; a strided input tile at least one incoming filter long is cut to
    the whole windows it holds; a tile of input rows ``a..b-1`` and filter taps
    ``r0..r1-1`` performs the MACs of the outputs whose taps ``r0..r1-1`` all fall in
    ``a..b-1``; an output-dimension (``Y'``) tile is taken from the outputs the level's
    incoming rows and taps give and held as the input rows it reads. Units do not matter:
    every spatial position is visited, in some fold."""
    window = {i: (f, o) for i, f, o in SLIDING_PAIRS}
    out_of = {o: (i, f) for i, f, o in SLIDING_PAIRS}
    held = [d for d in layer.mappable_dims if d not in out_of]
    axes = [window[d][1] if d in window else d for d in held]
    painted = np.zeros([layer.size(a) for a in axes], dtype=bool)
    levels = mapping.level_directives()

    def paint(lo: dict[str, int], hi: dict[str, int]) -> None:
        box: list[slice] = []
        for d in held:
            if d not in window:
                box.append(slice(lo[d], hi[d]))
                continue
            f, o = window[d]
            first, last = outputs_within(
                lo[d], hi[d] - lo[d], lo[f], hi[f] - lo[f], layer.stride(d)
            )
            box.append(slice(max(first, 0), min(last, layer.size(o) - 1) + 1))
        if all(s.stop > s.start for s in box):
            painted[tuple(box)] = True

    def visit(level: int, lo: dict[str, int], hi: dict[str, int]) -> None:
        if level == len(levels):
            paint(lo, hi)
            return
        plans = []  # (directive, size, offset, tiles)
        for d in levels[level]:
            size, offset = d.size, d.offset
            if d.dim in out_of:
                i, f = out_of[d.dim]
                first, last = outputs_within(
                    lo[i], hi[i] - lo[i], lo[f], hi[f] - lo[f], layer.stride(i)
                )
                extent = max(0, min(last, layer.size(d.dim) - 1) - max(first, 0) + 1)
            else:
                extent = hi[d.dim] - lo[d.dim]
                if d.dim in window and layer.stride(d.dim) > 1:
                    taps = hi[window[d.dim][0]] - lo[window[d.dim][0]]
                    if size >= taps:
                        size, offset = whole_windows_tile(size, taps, layer.stride(d.dim))
            plans.append((d, size, offset, 1 + -(-max(0, extent - size) // offset)))
        spatial = [p for p in plans if p[0].spatial]
        temporal = [p for p in plans if not p[0].spatial]
        units = min((p[3] for p in spatial), default=1)
        for positions in itertools.product(*(range(p[3]) for p in temporal)):
            for unit in range(units):
                at = {id(p[0]): q for p, q in zip(temporal, positions, strict=True)}
                at.update({id(p[0]): unit for p in spatial})
                new_lo, new_hi = dict(lo), dict(hi)
                outputs = []
                for d, size, offset, _ in plans:
                    start = at[id(d)] * offset
                    if d.dim in out_of:
                        outputs.append((d.dim, start, size))
                        continue
                    new_lo[d.dim] = min(lo[d.dim] + start, hi[d.dim])
                    new_hi[d.dim] = min(lo[d.dim] + start + size, hi[d.dim])
                for o, start, size in outputs:
                    i, f = out_of[o]
                    stride = layer.stride(i)
                    first, last = outputs_within(lo[i], hi[i] - lo[i], lo[f], hi[f] - lo[f], stride)
                    first, last = max(first, 0), min(last, layer.size(o) - 1)
                    o_lo = min(first + start, last + 1)
                    o_hi = min(first + start + size, last + 1)
                    new_lo[i] = input_row(o_lo, new_lo[f], stride)
                    taps = new_hi[f] - new_lo[f]
                    new_hi[i] = (
                        new_lo[i] + window_rows(o_hi - o_lo, taps, stride)
                        if o_hi > o_lo
                        else new_lo[i]
                    )
                visit(level + 1, new_lo, new_hi)

    visit(0, dict.fromkeys(held, 0), {d: layer.size(d) for d in held})
    return bool(painted.all())


def fast_run_records(
    text: str, hw: Hardware, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, object], list[int]]:
    """Simulate the one layer of mapping ``text`` on ``hw`` (realistic policy), capturing
    the fast path's pieces (:meth:`FastPath._piece`): the result and each step's record
    id in step order (a piece's records once per repetition). Tests compare these between
    a mechanism and the stepping it stands for."""
    pieces: list[tuple[int, int, list[StepRecord]]] = []
    piece = FastPath._piece

    def logged(self: FastPath, seg: Segment, recs: list[StepRecord]) -> None:
        pieces.append((seg.steps[0].index, seg.count, list(recs)))
        piece(self, seg, recs)

    monkeypatch.setattr(FastPath, "_piece", logged)
    entry = parse_mapping_text(text).layers[0]
    assert entry.mapping is not None
    result = simulate(entry.layer, entry.mapping, hw, SimOptions(policy=REALISTIC))
    monkeypatch.setattr(FastPath, "_piece", piece)
    rids: list[int] = []
    for _first, count, recs in sorted(pieces, key=lambda p: p[0]):
        rids.extend([r.rid for r in recs] * count)
    return result.layer.to_dict(), rids
