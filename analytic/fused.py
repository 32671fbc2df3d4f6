"""Closed-form cost of fused-layer designs (LoopTree-style), derived in docs/fused.md.

Every tensor's per-tile region is a product of a row set and a column set
(:func:`metronome.spec.fused.group_geometry`), so every count is a product of per-axis
sums: the elements a tile makes of tensor ``k`` are ``C * |make_rows(a)| *
|make_cols(b)|``, the total over tiles ``C * sum(make_rows) * sum(make_cols)``. Tiles of
the last layer's output channels (K) repeat the spatial tiles; all but the first K tile
of a spatial tile share their sets, so each count is the first K tile's plus the later
ones' times their number. Buffer occupancy and the per-tile latency are ``(outer tiles
x inner tiles)`` arrays built from outer products, one per group of K tiles.
"""

from __future__ import annotations

import numpy as np

from metronome.spec.fused import (
    FusedGroup,
    FusedGroupResult,
    FusedLayer,
    FusedResult,
    FusedScenario,
    FusedTensorResult,
    GroupGeometry,
    OnChip,
    group_geometry,
    group_l2_accesses,
    set_sizes,
    union_size,
)
from metronome.spec.hardware import UNBOUNDED, Hardware

__all__ = ["analyze_fused", "analyze_group"]


def _tile_run(
    layer: FusedLayer, tile_rows: int, tile_cols: int, channels: int, hardware: Hardware
) -> tuple[int, OnChip]:
    """Cycles and on-chip traffic of one tile's sub-problem of ``layer`` under its own
    mapping, from the single-layer closed form (its data already on chip: off-chip
    unbounded)."""
    from .api import analyze

    sub, mapping = layer.sub_problem(tile_rows, tile_cols, hardware, channels)
    onchip = hardware.with_changes(offchip_bw_elems_per_cycle=UNBOUNDED)
    result = analyze(sub, mapping, onchip)
    return int(result.runtime_cycles), OnChip.of(result)


def grid_cycles(
    layer: FusedLayer,
    rows: np.ndarray,
    cols: np.ndarray,
    channels: int,
    hardware: Hardware,
    outer_first: bool,
) -> tuple[np.ndarray, OnChip]:
    """Per tile (outer, inner), the cycles of the layer's made ``rows x cols`` region of
    ``channels`` output channels, and the on-chip traffic of all those tiles; one
    single-layer analysis per distinct region shape."""
    out = np.zeros((len(rows), len(cols)), dtype=np.int64)
    cache: dict[tuple[int, int], tuple[int, OnChip]] = {}
    total = OnChip()
    for a, h in enumerate(rows.tolist()):
        for b, w in enumerate(cols.tolist()):
            if h and w:
                if (h, w) not in cache:
                    cache[(h, w)] = _tile_run(layer, h, w, channels, hardware)
                out[a, b], counts = cache[(h, w)]
                total += counts
    return (out if outer_first else out.T), total


def _layer_compute(
    geo: GroupGeometry, k: int, later: bool, channels: int, hardware: Hardware
) -> tuple[np.ndarray, OnChip]:
    """Per spatial tile, the PE cycles of layer ``k - 1`` making its part of tensor
    ``k`` (its own dataflow's single-layer closed form, or its operations spread evenly
    over the PEs it keeps busy), and the on-chip traffic its dataflow counts."""
    layer = geo.layers[k - 1]
    rows, cols = (geo.later if later else geo.first)[k]
    if layer.dataflow is None:
        made = channels * geo.sizes(k, later, "make")
        cycles: np.ndarray = -(-(made * layer.ops_per_output) // layer.pes(hardware.num_pes))
        return cycles, OnChip()
    return grid_cycles(
        layer, set_sizes(rows.make), set_sizes(cols.make), channels, hardware, geo.outer_first
    )


def analyze_group(scenario: FusedScenario, group: FusedGroup) -> FusedGroupResult:
    """Off-chip traffic, buffer peak, MACs, runtime and energy of one fusion group."""
    geo = group_geometry(scenario, group)
    layers, passes = geo.layers, geo.passes
    hw = scenario.hardware
    n = len(layers)
    names = ["input", *(layer.name for layer in layers)]
    shape = geo.sizes(n, False, "make").shape
    transfer = [np.zeros(shape, dtype=np.int64) for _ in passes]
    compute = [np.zeros(shape, dtype=np.int64) for _ in passes]
    live_total: list[np.ndarray] | None = None
    tensors: list[FusedTensorResult] = []
    made_all, needed_all = [], []
    onchip: list[OnChip | None] = [None] * n
    # Passes that share their sets and channel counts share their per-tile arrays.
    runs: dict[tuple[int, bool, int], tuple[np.ndarray, OnChip]] = {}
    for k in range(n + 1):
        ch = geo.channels[k]
        made = needed = 0
        moved = "make" if k in (0, n) else "need" if geo.kinds[k] == "spill" else ""
        for i, p in enumerate(passes):
            per = p.channels if k == n else ch
            made += p.count * per * geo.total(k, not p.first, "make")
            needed += p.count * per * geo.total(k, not p.first, "need")
            if moved:
                transfer[i] += per * geo.sizes(k, not p.first, moved)
        reads = writes = 0
        if k == 0:
            reads = made
        elif k == n:
            writes = made
        elif geo.kinds[k] == "spill":
            writes, reads = made, needed - made
        live = geo.live(k)
        totals = live if live_total is None else live_total
        live_total = [a + b for a, b in zip(totals, live, strict=True)] if k else live
        macs = recomputed = 0
        if k > 0:
            layer = layers[k - 1]
            macs = made * layer.macs_per_output
            rows, cols = geo.first[k]
            once = ch * union_size(rows.make) * union_size(cols.make)
            recomputed = macs - once * layer.macs_per_output
            counts = OnChip()
            for i, p in enumerate(passes):
                key = (k, not p.first, p.channels if k == n else ch)
                if key not in runs:
                    runs[key] = _layer_compute(geo, *key, hw)
                cycles, tile_counts = runs[key]
                compute[i] += cycles
                counts += tile_counts.scaled(p.count)
            onchip[k - 1] = counts
        made_all.append(made)
        needed_all.append(needed)
        tensors.append(
            FusedTensorResult(
                tensor=names[k],
                offchip_reads=reads,
                offchip_writes=writes,
                onchip_buffer_req_elems=max(int(a.max(initial=0)) for a in live),
                macs=macs,
                macs_recomputed=recomputed,
            )
        )
    weight_buffer = 0
    out_channels = geo.channels[n]
    weight_loads, weight_uses = [0] * n, [0] * n
    for i, layer in enumerate(layers):
        w = layer.weight_elems
        if not w:
            continue
        uses = 0
        for j, p in enumerate(passes):
            # The last layer reads only its K tile's slice of its weights.
            per_tile = w * p.channels // out_channels if i == n - 1 else w
            uses += p.count * per_tile * geo.total(i + 1, not p.first, "runs")
            if group.weights == "reread":
                used = geo.sizes(i + 1, not p.first, "runs")
                weight_buffer = max(weight_buffer, per_tile)
                transfer[j] += per_tile * used
        if group.weights == "resident":
            reads = w
            transfer[0][0, 0] += w
            weight_buffer += w
        else:
            reads = uses
        weight_loads[i], weight_uses[i] = reads, uses
        tensors.append(
            FusedTensorResult(
                tensor=f"{layer.name}.weight",
                offchip_reads=reads,
                offchip_writes=0,
                onchip_buffer_req_elems=w,
            )
        )
    bw = hw.offchip_bw_elems_per_cycle
    runtime = sum(
        p.count * int(np.maximum(c, -(-t // bw)).sum())
        for p, c, t in zip(passes, compute, transfer, strict=True)
    )
    assert live_total is not None
    return FusedGroupResult.total(
        scenario,
        group,
        tensors,
        buffer_elems=max(int(a.max(initial=0)) for a in live_total) + weight_buffer,
        runtime_cycles=runtime,
        onchip=group_l2_accesses(layers, made_all, needed_all, weight_loads, weight_uses, onchip),
        tiles=shape[0] * shape[1] * sum(p.count for p in passes),
    )


def analyze_fused(scenario: FusedScenario) -> FusedResult:
    """Every group of ``scenario`` in the closed form."""
    return FusedResult(
        scenario=scenario.name,
        engine="analytic",
        groups=tuple(analyze_group(scenario, g) for g in scenario.groups),
    )
