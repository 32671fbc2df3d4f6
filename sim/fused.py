"""Executes fused-layer schedules tile by tile and measures what they move and keep.

For every tile of a group's last output (in the schedule's loop order) the executor
works back through the layers with element masks: what a layer must make this tile
(for a retained or spilled tensor, only elements no earlier tile made; for a recomputed
one, all its consumer asks for), and which inputs that reads (the window of every made
element, padding excluded). Off-chip reads and writes, made elements and MACs are
counted from those masks; an element of a retained tensor stays in the L2 from the tile
that makes it to the last tile that reads it, and the occupancy is summed per tile from
those lifetimes. Tiles of the last layer's output channels are tiles like the others:
each needs all channels of the last layer's input. Timing: a SimPy pipeline of loads,
compute and stores per tile over one off-chip channel, so tile ``t+1`` loads while ``t``
computes. A layer with its own dataflow computes its tiles in the single-layer
simulator, whose L1, NoC and L2-to-PE traffic goes into the group's accesses and energy.

``functional=True`` also computes the values (int64) in a second pass over the recorded
masks, with an L2 that holds each retained element only during its lifetime, spilled
elements read back from off-chip and recomputed ones made anew; reading an element the
L2 does not hold is an internal error.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from metronome.spec.fused import (
    FusedGroup,
    FusedGroupResult,
    FusedLayer,
    FusedResult,
    FusedScenario,
    FusedTensorResult,
    Kind,
    OnChip,
    group_l2_accesses,
)
from metronome.spec.hardware import UNBOUNDED, Hardware

__all__ = ["FusedRun", "chain_weights", "simulate_fused"]


@dataclass(slots=True)
class _Region:
    """A set of pixels: a boolean mask over rows ``y0..`` and columns ``x0..``."""

    y0: int
    x0: int
    mask: np.ndarray

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.mask))

    def window(self) -> tuple[slice, slice]:
        h, w = self.mask.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)


def _empty() -> _Region:
    return _Region(0, 0, np.zeros((0, 0), dtype=bool))


def _trim(region: _Region) -> _Region:
    """The region cut to the bounding box of its set pixels."""
    mask = region.mask
    if not mask.any():
        return _empty()
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return _Region(
        region.y0 + int(ys[0]),
        region.x0 + int(xs[0]),
        mask[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1],
    )


def _minus(a: _Region, b: _Region) -> _Region:
    """Pixels of ``a`` that are not in ``b``."""
    mask = a.mask.copy()
    if b.count and a.count:
        h, w = a.mask.shape
        bh, bw = b.mask.shape
        top, left = max(a.y0, b.y0), max(a.x0, b.x0)
        bottom, right = min(a.y0 + h, b.y0 + bh), min(a.x0 + w, b.x0 + bw)
        if bottom > top and right > left:
            mask[top - a.y0 : bottom - a.y0, left - a.x0 : right - a.x0] &= ~b.mask[
                top - b.y0 : bottom - b.y0, left - b.x0 : right - b.x0
            ]
    return _Region(a.y0, a.x0, mask)


def _reads(layer: FusedLayer, made: _Region) -> _Region:
    """The input pixels (padding excluded) that the made output pixels read."""
    if made.count == 0:
        return _empty()
    (sy, sx), (r, s), (py, px) = layer.stride, layer.window, layer.padding
    h, w = made.mask.shape
    big = np.zeros(((h - 1) * sy + r, (w - 1) * sx + s), dtype=bool)
    for dr in range(r):
        for ds in range(s):
            big[dr : dr + (h - 1) * sy + 1 : sy, ds : ds + (w - 1) * sx + 1 : sx] |= made.mask
    y0, x0 = made.y0 * sy - py, made.x0 * sx - px
    _, height, width = layer.in_shape
    top, left = max(0, -y0), max(0, -x0)
    bottom = min(big.shape[0], height - y0)
    right = min(big.shape[1], width - x0)
    return _trim(_Region(y0 + top, x0 + left, big[top:bottom, left:right]))


@dataclass(slots=True)
class _TileRecord:
    """What one tile makes and needs of each tensor, and its output channels ``[k0,
    k1)`` (kept only for the functional pass)."""

    make: list[_Region]
    need: list[_Region]
    channels: tuple[int, int]


@dataclass(slots=True)
class _GroupTrace:
    """Per-tile counters of one group's execution."""

    compute: list[int] = field(default_factory=list)
    loads: list[int] = field(default_factory=list)
    stores: list[int] = field(default_factory=list)
    weights: list[tuple[int, ...]] = field(default_factory=list)
    """Per tile, the weight elements each layer reads (0 when it makes nothing)."""
    records: list[_TileRecord] = field(default_factory=list)


_Tile = tuple[int, int, int, int, int, int]
"""A tile of the last output: rows ``[y0, y1)``, columns ``[x0, x1)``, channels ``[k0, k1)``."""


def _tiles(group: FusedGroup, out_shape: tuple[int, int, int]) -> list[_Tile]:
    """Tiles of the last output in the schedule's loop order."""
    channels, out_h, out_w = out_shape
    ty, tx = group.tile
    tk = group.tile_k or channels
    ranges = {
        "P": [(y, min(out_h, y + ty)) for y in range(0, out_h, ty)],
        "Q": [(x, min(out_w, x + tx)) for x in range(0, out_w, tx)],
        "K": [(k, min(channels, k + tk)) for k in range(0, channels, tk)],
    }
    order = list(group.order) + (["K"] if "K" not in group.order else [])
    tiles = []
    for picked in itertools.product(*(ranges[rank] for rank in order)):
        at = dict(zip(order, picked, strict=True))
        tiles.append((*at["P"], *at["Q"], *at["K"]))
    return tiles


def _layer_cycles(
    layer: FusedLayer,
    made: _Region,
    elems: int,
    channels: int,
    pes: int,
    hardware: Hardware,
    cache: dict[tuple[int, int, int], tuple[int, OnChip]],
) -> tuple[int, OnChip]:
    """PE cycles and on-chip traffic of what a tile makes of a layer (``channels``
    output channels): with the layer's own dataflow, the single-layer simulator's run
    of the made region's rows x columns (data on chip: off-chip unbounded), once per
    region shape; without one, the operations spread over the PEs (no L1 or NoC
    model)."""
    if layer.dataflow is None or not made.count:
        return -(-elems * layer.ops_per_output // pes), OnChip()
    rows = int(np.count_nonzero(made.mask.any(axis=1)))
    cols = int(np.count_nonzero(made.mask.any(axis=0)))
    if made.count != rows * cols:
        raise RuntimeError(f"fused executor: '{layer.name}' makes a region that is no product")
    if (rows, cols, channels) not in cache:
        from .simulate import simulate

        sub, mapping = layer.sub_problem(rows, cols, hardware, channels)
        onchip = hardware.with_changes(offchip_bw_elems_per_cycle=UNBOUNDED)
        run = simulate(sub, mapping, onchip).layer
        cache[(rows, cols, channels)] = (int(run.runtime_cycles), OnChip.of(run))
    return cache[(rows, cols, channels)]


def _run_group(
    scenario: FusedScenario, group: FusedGroup, keep_records: bool
) -> tuple[FusedGroupResult, _GroupTrace]:
    layers = scenario.group_layers(group)
    hw = scenario.hardware
    n = len(layers)
    shapes = [layers[0].in_shape, *(layer.out_shape for layer in layers)]
    kinds = [group.input_choice, *group.choices]
    kept = [kinds[k] in ("retain", "spill") for k in range(n)] + [True]
    made_before = [np.zeros(s[1:], dtype=bool) for s in shapes]
    first_use = [np.full(s[1:], -1, dtype=np.int64) for s in shapes]
    last_use = [np.full(s[1:], -1, dtype=np.int64) for s in shapes]
    tiles = _tiles(group, shapes[-1])
    live = [np.zeros(len(tiles), dtype=np.int64) for _ in range(n + 1)]
    made_total = [0] * (n + 1)
    need_total = [0] * (n + 1)
    reads = [0] * (n + 1)
    writes = [0] * (n + 1)
    pes = [layer.pes(hw.num_pes) for layer in layers]
    cycle_cache: list[dict[tuple[int, int, int], tuple[int, OnChip]]] = [{} for _ in layers]
    onchip: list[OnChip | None] = [OnChip() if layer.dataflow else None for layer in layers]
    trace = _GroupTrace()
    for t, (y0, y1, x0, x1, k0, k1) in enumerate(tiles):
        make: list[_Region] = [_empty()] * (n + 1)
        need: list[_Region] = [_empty()] * (n + 1)
        make[n] = need[n] = _Region(y0, x0, np.ones((y1 - y0, x1 - x0), dtype=bool))
        for i in range(n - 1, -1, -1):
            asked = _reads(layers[i], make[i + 1])
            need[i] = asked
            if kept[i] and asked.count:
                ys, xs = asked.window()
                make[i] = _trim(_Region(asked.y0, asked.x0, asked.mask & ~made_before[i][ys, xs]))
            else:
                make[i] = asked
        load = store = work = 0
        for k in range(n + 1):
            ch = k1 - k0 if k == n else shapes[k][0]
            made, needed = make[k].count * ch, need[k].count * ch
            made_total[k] += made
            need_total[k] += needed
            if k == 0:
                reads[0] += made
                load += made
            elif k == n:
                writes[n] += made
                store += made
            elif kinds[k] == "spill":
                writes[k] += made
                reads[k] += needed - made
                store += made
                load += needed - made
            if make[k].count:
                ys, xs = make[k].window()
                made_before[k][ys, xs] |= make[k].mask
                firsts = first_use[k][ys, xs]
                firsts[make[k].mask & (firsts < 0)] = t
            if kinds[k] == "retain" and k < n:
                if need[k].count:
                    ys, xs = need[k].window()
                    last_use[k][ys, xs][need[k].mask] = t
            else:
                live[k][t] += needed
            if k > 0:
                layer = layers[k - 1]
                cycles, counts = _layer_cycles(
                    layer, make[k], made, ch, pes[k - 1], hw, cycle_cache[k - 1]
                )
                work += cycles
                tally = onchip[k - 1]
                if tally is not None:
                    onchip[k - 1] = tally + counts
        # A layer that makes something reads its weights; the last one only its
        # output channels' slice.
        trace.weights.append(
            tuple(
                (
                    layer.weight_elems * (k1 - k0) // shapes[n][0]
                    if i == n - 1
                    else layer.weight_elems
                )
                * (make[i + 1].count > 0)
                for i, layer in enumerate(layers)
            )
        )
        trace.compute.append(work)
        trace.loads.append(load)
        trace.stores.append(store)
        if keep_records:
            trace.records.append(_TileRecord(list(make), list(need), (k0, k1)))
    tensors: list[FusedTensorResult] = []
    for k in range(n + 1):
        ch = shapes[k][0]
        if kinds[k] == "retain" and k < n:
            life = np.zeros(len(tiles) + 1, dtype=np.int64)
            alive = last_use[k] >= 0
            np.add.at(life, first_use[k][alive], ch)
            np.add.at(life, last_use[k][alive] + 1, -ch)
            live[k] = np.cumsum(life)[:-1]
        macs = recomputed = 0
        if k > 0:
            per = layers[k - 1].macs_per_output
            macs = made_total[k] * per
            recomputed = macs - int(np.count_nonzero(made_before[k])) * ch * per
        tensors.append(
            FusedTensorResult(
                tensor="input" if k == 0 else layers[k - 1].name,
                offchip_reads=reads[k],
                offchip_writes=writes[k],
                onchip_buffer_req_elems=int(live[k].max(initial=0)),
                macs=macs,
                macs_recomputed=recomputed,
            )
        )
    weight_buffer = 0
    weight_loads, weight_uses = [0] * n, [0] * n
    for i, layer in enumerate(layers):
        w = layer.weight_elems
        if not w:
            continue
        per_tile = [used[i] for used in trace.weights]
        if group.weights == "resident":
            loaded = w
            trace.loads[0] += w
            weight_buffer += w
        else:
            loaded = sum(per_tile)
            for t, elems in enumerate(per_tile):
                trace.loads[t] += elems
            weight_buffer = max(weight_buffer, max(per_tile))
        weight_loads[i], weight_uses[i] = loaded, sum(per_tile)
        tensors.append(
            FusedTensorResult(
                tensor=f"{layer.name}.weight",
                offchip_reads=loaded,
                offchip_writes=0,
                onchip_buffer_req_elems=w,
            )
        )
    runtime = _pipeline_cycles(trace, hw.offchip_bw_elems_per_cycle)
    result = FusedGroupResult.total(
        scenario,
        group,
        tensors,
        buffer_elems=int(np.sum(live, axis=0).max(initial=0)) + weight_buffer,
        runtime_cycles=runtime,
        onchip=group_l2_accesses(layers, made_total, need_total, weight_loads, weight_uses, onchip),
        tiles=len(tiles),
    )
    return result, trace


def _pipeline_cycles(trace: _GroupTrace, bw: int) -> int:
    """Cycles of the tile pipeline: a loader, the PE array and a storer, one tile each
    at a time, loads and stores sharing one off-chip channel; a tile's loads may run
    while the previous tile computes (one tile of lookahead)."""
    env = simpy.Environment()
    channel = simpy.Resource(env, capacity=1)
    loaded: simpy.Store = simpy.Store(env, capacity=1)
    computed: simpy.Store = simpy.Store(env, capacity=1)
    count = len(trace.compute)

    def transfer(elems: int) -> Generator[simpy.Event, Any, None]:
        if elems:
            with channel.request() as grant:
                yield grant
                yield env.timeout(-(-elems // bw))

    def loader() -> Generator[simpy.Event, Any, None]:
        for t in range(count):
            yield from transfer(trace.loads[t])
            yield loaded.put(t)

    def pes() -> Generator[simpy.Event, Any, None]:
        for _ in range(count):
            t = yield loaded.get()
            yield env.timeout(trace.compute[t])
            yield computed.put(t)

    def storer() -> Generator[simpy.Event, Any, None]:
        for _ in range(count):
            t = yield computed.get()
            yield from transfer(trace.stores[t])

    env.process(loader())
    env.process(pes())
    done = env.process(storer())
    env.run(until=done)
    return int(env.now)


def chain_weights(scenario: FusedScenario, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """A deterministic int64 input image and weights for every layer (small values,
    so int64 sums stay exact): input ``(C, Y, X)``, CONV ``(K, C, R, S)``, DSCONV
    ``(C, R, S)``, GEMM ``(N, C)``, pooling an empty array."""
    rng = np.random.default_rng(seed)
    image = rng.integers(-4, 8, size=scenario.input_shape, dtype=np.int64)
    weights = []
    for layer in scenario.layers:
        c, (r, s), k = layer.in_shape[0], layer.window, layer.out_shape[0]
        shape: tuple[int, ...] = {
            Kind.CONV: (k, c, r, s),
            Kind.DSCONV: (c, r, s),
            Kind.GEMM: (k, c),
            Kind.POOL: (0,),
        }[layer.kind]
        weights.append(rng.integers(-3, 4, size=shape, dtype=np.int64))
    return image, weights


def compute_window(
    layer: FusedLayer, patch: np.ndarray, weight: np.ndarray, oy0: int, ox0: int
) -> np.ndarray:
    """Outputs ``oy0.., ox0..`` of ``layer`` from ``patch``: its zero-padded input over
    exactly the rows and columns those outputs read."""
    (sy, sx), (r, s) = layer.stride, layer.window
    del oy0, ox0
    win = np.lib.stride_tricks.sliding_window_view(patch, (r, s), axis=(1, 2))[:, ::sy, ::sx]
    if layer.kind is Kind.CONV:
        out = np.einsum("chwrs,kcrs->khw", win, weight)
    elif layer.kind is Kind.DSCONV:
        out = np.einsum("chwrs,crs->chw", win, weight)
    elif layer.kind is Kind.GEMM:
        out = np.einsum("chw,kc->khw", patch, weight)
    elif layer.pool == "max":
        out = win.max(axis=(3, 4))
    else:
        out = win.sum(axis=(3, 4)) // (r * s)
    if layer.activation == "relu":
        out = np.maximum(out, 0)
    return np.asarray(out, dtype=np.int64)


class _L2Tensor:
    """A tensor's on-chip copy: values and which elements the L2 holds now."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.values = np.zeros(shape, dtype=np.int64)
        self.held = np.zeros(shape[1:], dtype=bool)

    def put(self, region: _Region, values: np.ndarray) -> None:
        ys, xs = region.window()
        self.values[:, ys, xs] = np.where(region.mask, values, self.values[:, ys, xs])
        self.held[ys, xs] |= region.mask

    def drop(self, region: _Region) -> None:
        if region.count:
            ys, xs = region.window()
            self.held[ys, xs] &= ~region.mask

    def patch(self, layer: FusedLayer, made: _Region, name: str) -> np.ndarray:
        """The zero-padded input ``layer`` reads for ``made``; every real element must
        be held (padding is generated, never stored)."""
        (sy, sx), (r, s), (py, px) = layer.stride, layer.window, layer.padding
        h, w = made.mask.shape
        y0, x0 = made.y0 * sy - py, made.x0 * sx - px
        rows, cols = (h - 1) * sy + r, (w - 1) * sx + s
        ch, height, width = self.values.shape
        out = np.zeros((ch, rows, cols), dtype=np.int64)
        top, left = max(0, -y0), max(0, -x0)
        bottom, right = min(rows, height - y0), min(cols, width - x0)
        needed = _reads(layer, made)
        if needed.count:
            ys, xs = needed.window()
            if not self.held[ys, xs][needed.mask].all():
                raise RuntimeError(f"fused executor read '{name}' elements the L2 does not hold")
        out[:, top:bottom, left:right] = self.values[
            :, y0 + top : y0 + bottom, x0 + left : x0 + right
        ]
        return out


def _functional_group(
    scenario: FusedScenario,
    group: FusedGroup,
    trace: _GroupTrace,
    offchip_in: np.ndarray,
    weights: list[np.ndarray],
) -> np.ndarray:
    """Execute the recorded schedule with values; returns the group's output."""
    layers = scenario.group_layers(group)
    n = len(layers)
    shapes = [layers[0].in_shape, *(layer.out_shape for layer in layers)]
    kinds = [group.input_choice, *group.choices]
    l2 = [_L2Tensor(shape) for shape in shapes]
    spilled = [np.zeros(shape, dtype=np.int64) for shape in shapes]
    output = np.zeros(shapes[-1], dtype=np.int64)
    last = [np.full(shape[1:], -1, dtype=np.int64) for shape in shapes]
    for t, record in enumerate(trace.records):
        for k in range(n):
            if kinds[k] == "retain" and record.need[k].count:
                rows, cols = record.need[k].window()
                last[k][rows, cols][record.need[k].mask] = t
    for t, record in enumerate(trace.records):
        # Bring the group input and spilled tensors' older elements on chip.
        need0 = record.make[0]
        if need0.count:
            ys, xs = need0.window()
            l2[0].put(need0, offchip_in[:, ys, xs])
        for k in range(1, n):
            if kinds[k] == "spill" and record.need[k].count:
                older = _minus(record.need[k], record.make[k])
                ys, xs = older.window()
                l2[k].put(older, spilled[k][:, ys, xs])
        for i, layer in enumerate(layers):
            made = record.make[i + 1]
            if not made.count:
                continue
            patch = l2[i].patch(layer, made, "input" if i == 0 else layers[i - 1].name)
            weight = weights[group.first + i]
            ys, xs = made.window()
            if i + 1 == n:
                # The tile makes only its output channels, from their slice of the weights.
                k0, k1 = record.channels
                values = compute_window(layer, patch, weight[k0:k1], made.y0, made.x0)
                out = output[k0:k1, ys, xs]
                output[k0:k1, ys, xs] = np.where(made.mask, values, out)
                continue
            values = compute_window(layer, patch, weight, made.y0, made.x0)
            l2[i + 1].put(made, values)
            if kinds[i + 1] == "spill":
                spilled[i + 1][:, ys, xs] = np.where(made.mask, values, spilled[i + 1][:, ys, xs])
        for k in range(n + 1):
            if kinds[k] == "retain" and k < n:
                l2[k].held &= last[k] != t
            else:
                l2[k].drop(record.need[k])
                l2[k].drop(record.make[k])
    return output


@dataclass(frozen=True, slots=True)
class FusedRun:
    """The simulator's result, and the chain's output when run functionally."""

    result: FusedResult
    output: np.ndarray | None = None


def simulate_fused(
    scenario: FusedScenario,
    *,
    functional: bool = False,
    image: np.ndarray | None = None,
    weights: list[np.ndarray] | None = None,
) -> FusedRun:
    """Execute every group of ``scenario``; with ``functional`` also the values (from
    ``image`` and ``weights``, or :func:`chain_weights`)."""
    groups = []
    data: np.ndarray | None = None
    if functional:
        if image is None or weights is None:
            image, weights = chain_weights(scenario)
        data = image
    for group in scenario.groups:
        result, trace = _run_group(scenario, group, functional)
        groups.append(result)
        if functional and data is not None and weights is not None:
            data = _functional_group(scenario, group, trace, data, weights)
    return FusedRun(FusedResult(scenario=scenario.name, engine="sim", groups=tuple(groups)), data)
