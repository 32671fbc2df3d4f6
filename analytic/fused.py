"""Closed-form cost of fused-layer designs (LoopTree-style), derived in docs/fused.md.

Every tensor's per-tile region is a product of a row interval and a column interval
(:func:`metronome.spec.fused.axis_sets`), so every count is a product of per-axis sums: the
elements a tile makes of tensor ``k`` are ``C * |make_rows(a)| * |make_cols(b)|``, the
total over tiles ``C * sum(make_rows) * sum(make_cols)``. Buffer occupancy and the
per-tile latency are ``(outer tiles x inner tiles)`` arrays built from outer products.
"""

from __future__ import annotations

import numpy as np

from metronome.spec.fused import (
    AxisSets,
    FusedGroup,
    FusedGroupResult,
    FusedLayer,
    FusedResult,
    FusedScenario,
    FusedTensorResult,
    axis_sets,
    interval_lengths,
    live_elems,
    union_length,
)
from metronome.spec.hardware import UNBOUNDED, Hardware

__all__ = ["analyze_fused", "analyze_group"]


def _tile_cycles(layer: FusedLayer, tile_rows: int, tile_cols: int, hardware: Hardware) -> int:
    """Cycles of one tile's sub-problem of ``layer`` under its own mapping, from the
    single-layer closed form (its data already on chip: off-chip unbounded)."""
    from .api import analyze

    sub, mapping = layer.sub_problem(tile_rows, tile_cols, hardware)
    onchip = hardware.with_changes(offchip_bw_elems_per_cycle=UNBOUNDED)
    return int(analyze(sub, mapping, onchip).runtime_cycles)


def grid_cycles(
    layer: FusedLayer, rows: np.ndarray, cols: np.ndarray, hardware: Hardware, outer_first: bool
) -> np.ndarray:
    """Per tile (outer, inner), the cycles of the layer's made ``rows x cols`` region,
    one single-layer analysis per distinct region shape."""
    out = np.zeros((len(rows), len(cols)), dtype=np.int64)
    cache: dict[tuple[int, int], int] = {}
    for a, h in enumerate(rows.tolist()):
        for b, w in enumerate(cols.tolist()):
            if h and w:
                if (h, w) not in cache:
                    cache[(h, w)] = _tile_cycles(layer, h, w, hardware)
                out[a, b] = cache[(h, w)]
    return out if outer_first else out.T


def analyze_group(scenario: FusedScenario, group: FusedGroup) -> FusedGroupResult:
    """Off-chip traffic, buffer peak, MACs, runtime and energy of one fusion group."""
    layers = scenario.group_layers(group)
    hw = scenario.hardware
    rows = axis_sets(layers, group.choices, group.input_choice, 0, group.tile[0])
    cols = axis_sets(layers, group.choices, group.input_choice, 1, group.tile[1])
    outer_first = group.order[0] == "P"

    def grid(ry: np.ndarray, rx: np.ndarray) -> np.ndarray:
        """Per-tile product of a row and a column quantity, as (outer, inner)."""
        return np.outer(ry, rx) if outer_first else np.outer(rx, ry)

    def orient(k: int) -> tuple[AxisSets, AxisSets]:
        return (rows[k], cols[k]) if outer_first else (cols[k], rows[k])

    channels = [layers[0].in_shape[0], *(layer.out_shape[0] for layer in layers)]
    names = ["input", *(layer.name for layer in layers)]
    kinds = [group.input_choice, *group.choices]
    n = len(layers)
    shape = (len(orient(0)[0].make), len(orient(0)[1].make))
    live_total = np.zeros(shape, dtype=np.int64)
    transfer = np.zeros(shape, dtype=np.int64)
    compute = np.zeros(shape, dtype=np.int64)
    tensors: list[FusedTensorResult] = []
    l2 = 0
    for k in range(n + 1):
        ch = channels[k]
        make_y, make_x = interval_lengths(rows[k].make), interval_lengths(cols[k].make)
        need_y, need_x = interval_lengths(rows[k].need), interval_lengths(cols[k].need)
        made = ch * int(make_y.sum()) * int(make_x.sum())
        needed = ch * int(need_y.sum()) * int(need_x.sum())
        make_grid = ch * grid(make_y, make_x)
        need_grid = ch * grid(need_y, need_x)
        reads = writes = 0
        if k == 0:
            reads = made
            transfer += make_grid
        elif k == n:
            writes = made
            transfer += make_grid
        elif kinds[k] == "spill":
            writes, reads = made, needed - made
            transfer += make_grid + (need_grid - make_grid)
        if kinds[k] == "retain" and k < n:
            outer, inner = orient(k)
            live = ch * live_elems(outer.need, inner.need)
        else:
            live = need_grid
        live_total += live
        macs = recomputed = 0
        if k > 0:
            layer = layers[k - 1]
            macs = made * layer.macs_per_output
            once = ch * union_length(rows[k].make) * union_length(cols[k].make)
            recomputed = macs - once * layer.macs_per_output
            if layer.dataflow is None:
                compute += -(-(make_grid * layer.ops_per_output) // layer.pes(hw.num_pes))
            else:
                compute += grid_cycles(
                    layer,
                    interval_lengths(rows[k].make),
                    interval_lengths(cols[k].make),
                    hw,
                    outer_first,
                )
        l2 += made + needed
        tensors.append(
            FusedTensorResult(
                tensor=names[k],
                offchip_reads=reads,
                offchip_writes=writes,
                onchip_buffer_req_elems=int(live.max(initial=0)),
                macs=macs,
                macs_recomputed=recomputed,
            )
        )
    weight_reads = 0
    weight_buffer = 0
    for i, layer in enumerate(layers):
        w = layer.weight_elems
        if not w:
            continue
        used = grid(
            (interval_lengths(rows[i + 1].make) > 0).astype(np.int64),
            (interval_lengths(cols[i + 1].make) > 0).astype(np.int64),
        )
        uses = int(used.sum())
        if group.weights == "resident":
            reads = w
            transfer[0, 0] += w
            weight_buffer += w
        else:
            reads = w * uses
            transfer += w * used
            weight_buffer = max(weight_buffer, w)
        weight_reads += reads
        l2 += reads + w * uses
        tensors.append(
            FusedTensorResult(
                tensor=f"{layer.name}.weight",
                offchip_reads=reads,
                offchip_writes=0,
                onchip_buffer_req_elems=w,
            )
        )
    bw = hw.offchip_bw_elems_per_cycle
    runtime = int(np.maximum(compute, -(-transfer // bw)).sum())

    return FusedGroupResult.total(
        scenario,
        group,
        tensors,
        buffer_elems=int(live_total.max(initial=0)) + weight_buffer,
        runtime_cycles=runtime,
        l2_accesses=l2,
        tiles=shape[0] * shape[1],
    )


def analyze_fused(scenario: FusedScenario) -> FusedResult:
    """Every group of ``scenario`` in the closed form."""
    return FusedResult(
        scenario=scenario.name,
        engine="analytic",
        groups=tuple(analyze_group(scenario, g) for g in scenario.groups),
    )
