"""Fused-layer designs (LoopTree): a chain of layers, fusion groups and their schedules.

A fused scenario (``kind: fused``) describes a chain of layers on one image (batch 1):
CONV, DSCONV and GEMM as :class:`metronome.spec.layer.Layer`, plus max/avg pooling; every layer
may carry a free element-wise activation and implicit zero padding (generated on chip,
never transferred); a window may be smaller than its stride (a strided 1x1
convolution reads rows and columns with gaps). Consecutive layers form a *fusion
group*. A group's schedule tiles the last layer's output over its rows ``P``, columns
``Q`` and, when the last layer is a CONV or GEMM, output channels ``K`` (a channel tile
reads all channels of its input), walks the tiles in a loop order (``[P, Q]``: rows
outer; ``K`` anywhere, innermost by default), and says for every
intermediate tensor whether it is **retained** on chip (each element computed once and
kept until its last use), **recomputed** (each tile computes its whole receptive field
anew) or **spilled** (computed once, written off-chip, read back where a later tile
needs it). The group input is ``retain`` (read once, kept while needed) or ``reread``
(every tile reads its whole region); weights are ``resident`` (read once per group) or
``reread`` (read again by every tile that uses them; the last layer's channel tiles
read only their slice).

Example::

    kind: fused
    name: two_convs
    input: {C: 2, Y: 8, X: 8}
    layers:
      - {name: c1, type: CONV, dims: {K: 3, R: 3, S: 3}, padding: {Y: 1, X: 1}}
      - {name: p1, type: POOL, pool: max, window: {Y: 2, X: 2}, stride: {Y: 2, X: 2}}
    groups:
      - name: g
        layers: [c1, p1]
        tile: {P: 2, Q: 4}
        order: [P, Q]               # with a channel tile, e.g. tile {P: 2, K: 2}: [K, P, Q]
        intermediates: {c1: retain}
        input: retain
        weights: resident
        buffer_elems: 4096          # optional: the on-chip capacity the design declares
    hardware: {num_pes: 16, offchip_bw_elems_per_cycle: 4, bytes_per_elem: 4}

The per-tile geometry (which rows, or columns, of every tensor each tile needs and
computes, one spatial dimension at a time, and how long retained elements stay on chip)
is defined here, because the loader needs it to reject a retain choice that cannot fit
the declared buffer, and the analytic model builds on it. The simulator does not use
it: it derives the same sets from 2-D element masks, tile by tile.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .energy import ENERGY_TABLES, AccessCounts
from .hardware import Hardware
from .layer import Layer, LayerType, make_layer
from .mapping import Mapping
from .results import LayerResult
from .source import SourceSpan, SpecError

__all__ = [
    "RETENTION_CHOICES",
    "FusedGroup",
    "FusedGroupResult",
    "FusedLayer",
    "FusedResult",
    "FusedScenario",
    "FusedTensorResult",
    "GroupGeometry",
    "KPass",
    "OnChip",
    "is_fused_file",
    "load_fused",
]

RETENTION_CHOICES: tuple[str, ...] = ("retain", "recompute", "spill")
INPUT_CHOICES: tuple[str, ...] = ("retain", "reread")
WEIGHT_CHOICES: tuple[str, ...] = ("resident", "reread")
TILE_RANKS: tuple[str, ...] = ("P", "Q")
POOL_KINDS: tuple[str, ...] = ("max", "avg")
ACTIVATIONS: tuple[str, ...] = ("none", "relu")


class Kind(StrEnum):
    """What a chain layer computes."""

    CONV = "CONV"
    DSCONV = "DSCONV"
    GEMM = "GEMM"
    POOL = "POOL"


@dataclass(frozen=True, slots=True, kw_only=True)
class FusedLayer:
    """One layer of a chain, with its input and output shapes ``(C, Y, X)``.

    ``window``, ``stride`` and ``padding`` are ``(rows, columns)``; a GEMM acts on every
    pixel (``M`` = rows x columns) as a 1x1 window. ``layer`` is the single-layer view
    (``None`` for pooling) and ``mapping`` its own directive mapping, if given.
    """

    name: str
    kind: Kind
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    pool: str = ""
    activation: str = "none"
    layer: Layer | None = field(default=None, compare=False)
    mapping: Mapping | None = field(default=None, compare=False)
    dataflow: tuple[tuple[Any, ...], SourceSpan] | None = field(default=None, compare=False)
    span: SourceSpan | None = field(default=None, compare=False)

    @property
    def macs_per_output(self) -> int:
        """MACs for one output element (pooling: none, it compares or adds)."""
        r, s = self.window
        if self.kind is Kind.CONV:
            return self.in_shape[0] * r * s
        if self.kind is Kind.DSCONV:
            return r * s
        if self.kind is Kind.GEMM:
            return self.in_shape[0]
        return 0

    @property
    def ops_per_output(self) -> int:
        """PE operations for one output element: its MACs, or the pooling window."""
        return self.macs_per_output or self.window[0] * self.window[1]

    @property
    def weight_elems(self) -> int:
        """Elements of the layer's weights (pooling has none)."""
        r, s = self.window
        if self.kind is Kind.CONV:
            return self.out_shape[0] * self.in_shape[0] * r * s
        if self.kind is Kind.DSCONV:
            return self.in_shape[0] * r * s
        if self.kind is Kind.GEMM:
            return self.out_shape[0] * self.in_shape[0]
        return 0

    def pes(self, num_pes: int) -> int:
        """PEs the layer's tile sub-problem keeps busy: the units its own mapping uses
        on ``num_pes`` PEs, else all of them."""
        return num_pes if self.mapping is None else max(1, self.mapping.pes_used(num_pes))

    def sub_problem(
        self, rows: int, cols: int, hardware: Hardware, channels: int | None = None
    ) -> tuple[Layer, Mapping]:
        """The single layer a tile making ``rows x cols`` outputs of ``channels`` output
        channels (default all) runs on the PE array (its padded input window, all input
        channels) and the layer's own directives resolved against it, for the
        single-layer engines. Only for layers with a dataflow."""
        from .maestro import parse_dataflow_tokens

        assert self.layer is not None
        assert self.dataflow is not None
        (sy, sx), (r, s) = self.stride, self.window
        c, k = self.in_shape[0], channels or self.out_shape[0]
        if self.kind is Kind.GEMM:
            declared = {"M": rows * cols, "K": c, "N": k}
        else:
            declared = {"C": c, "R": r, "S": s, "Y": (rows - 1) * sy + r, "X": (cols - 1) * sx + s}
            if self.kind is Kind.CONV:
                declared["K"] = k
        layer = make_layer(
            name=self.name, type_=self.layer.type, declared=declared, stride_y=sy, stride_x=sx
        )
        tokens, eof = self.dataflow
        mapping, _ = parse_dataflow_tokens(list(tokens), eof, layer)
        mapping.units_per_level(hardware.num_pes)
        return layer, mapping


@dataclass(frozen=True, slots=True, kw_only=True)
class FusedGroup:
    """Consecutive layers ``first..last`` (chain indices) and their schedule.

    ``tile`` is the rows and columns of the last layer's output per tile, ``tile_k`` its
    output channels per tile (``None``: all); ``order`` the tile loops, outermost
    first: ``P`` and ``Q``, and ``K`` when channels are tiled.
    ``choices[k]`` is the choice for the output of layer ``first + k`` (the last entry,
    the group output, is always ``"spill"``: written off-chip once).
    """

    name: str
    first: int
    last: int
    tile: tuple[int, int]
    order: tuple[str, ...]
    choices: tuple[str, ...]
    input_choice: str = "retain"
    weights: str = "resident"
    buffer_elems: int | None = None
    tile_k: int | None = None
    span: SourceSpan | None = field(default=None, compare=False)
    choice_spans: tuple[tuple[str, SourceSpan], ...] = field(default=(), compare=False)

    @property
    def spatial_order(self) -> tuple[str, ...]:
        """The row and column tile loops, outer first."""
        return tuple(rank for rank in self.order if rank != "K")


@dataclass(frozen=True, slots=True)
class FusedScenario:
    """A parsed fused scenario: the chain, its groups (covering it in order), hardware."""

    name: str
    path: str
    description: str
    input_shape: tuple[int, int, int]
    layers: tuple[FusedLayer, ...]
    groups: tuple[FusedGroup, ...]
    hardware: Hardware
    energy: str = "eyeriss65"
    functional: bool = False
    reference: tuple[tuple[str, float], ...] = ()
    reference_source: str = ""

    def group_layers(self, group: FusedGroup) -> tuple[FusedLayer, ...]:
        """The layers of ``group``, in chain order."""
        return self.layers[group.first : group.last + 1]


# --- tile geometry ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AxisSets:
    """Along one axis, per tile index: the rows (or columns) of a tensor its consumer
    needs (``need``) and those the tile computes or loads (``make``), as ``(tiles,
    extent)`` boolean masks. Sets need not be intervals: a window smaller than its
    stride reads rows with gaps."""

    need: np.ndarray
    make: np.ndarray
    need_before: np.ndarray | None = None
    """Per index, the union of the needed sets before it, when it was computed."""


@dataclass(frozen=True, slots=True)
class AxisUnions:
    """One axis's needed masks and, per index, the union of those strictly before and
    strictly after it (what lifetimes are made of)."""

    mask: np.ndarray
    before: np.ndarray
    after: np.ndarray

    @classmethod
    def of(cls, masks: np.ndarray, before: np.ndarray | None = None) -> AxisUnions:
        """The unions of ``masks`` (``before`` if already known)."""
        masks = np.asarray(masks, dtype=bool)
        return cls(masks, _before(masks) if before is None else before, _after(masks))


def tile_masks(size: int, tile: int) -> np.ndarray:
    """The partition of ``[0, size)`` into tiles of ``tile`` (the last may be shorter),
    one mask row per tile."""
    count = -(-size // tile)
    masks: np.ndarray = (np.arange(size) // tile)[None, :] == np.arange(count)[:, None]
    return masks


def _receptive(layer: FusedLayer, axis: int, made: np.ndarray) -> np.ndarray:
    """Per row of ``made`` (output masks), the input rows its outputs read: output ``o``
    reads ``o s - p + tap`` for every window tap, padding excluded."""
    s, r, p = layer.stride[axis], layer.window[axis], layer.padding[axis]
    size = layer.in_shape[1 + axis]
    need = np.zeros((made.shape[0], size), dtype=bool)
    outputs = made.shape[1]
    for tap in range(r):
        # Outputs o with 0 <= o s - p + tap < size, a run [lo, hi) of them.
        lo = max(0, -(-(p - tap) // s))
        hi = min(outputs, (size - 1 + p - tap) // s + 1)
        if hi > lo:
            start = lo * s - p + tap
            need[:, start : start + (hi - lo - 1) * s + 1 : s] |= made[:, lo:hi]
    return need


def _before(masks: np.ndarray) -> np.ndarray:
    """Per index, the union of the masks strictly before it: the elements whose first
    mask comes earlier."""
    count = len(masks)
    first = np.where(masks.any(axis=0), masks.argmax(axis=0), count)
    before: np.ndarray = np.arange(count)[:, None] > first[None, :]
    return before


def _after(masks: np.ndarray) -> np.ndarray:
    """Per index, the union of the masks strictly after it: the elements whose last
    mask comes later."""
    count = len(masks)
    last = np.where(masks.any(axis=0), count - 1 - masks[::-1].argmax(axis=0), -1)
    after: np.ndarray = np.arange(count)[:, None] < last[None, :]
    return after


def axis_sets(
    layers: tuple[FusedLayer, ...],
    choices: tuple[str, ...],
    input_choice: str,
    axis: int,
    tile: int,
) -> list[AxisSets]:
    """Per tensor of a group (group input first, then each layer's output), the rows
    (``axis`` 0) or columns (1) every tile index needs and makes.

    The last layer's tiles partition its output. Walking back, a layer's needed input is
    the receptive field of what it makes; a retained or spilled tensor makes only what
    no earlier tile made (each element once), a recomputed one all it is asked for. The
    group input is loaded like a retained (``retain``) or recomputed (``reread``) tensor.
    """
    tiles = tile_masks(layers[-1].out_shape[1 + axis], tile)
    sets = [AxisSets(tiles, tiles)]
    make = tiles
    for index in range(len(layers) - 1, -1, -1):
        need = _receptive(layers[index], axis, make)
        choice = choices[index - 1] if index > 0 else input_choice
        if choice in ("recompute", "reread"):
            sets.append(AxisSets(need, need))
            make = need
        else:
            before = _before(need)
            make = need & ~before
            sets.append(AxisSets(need, make, before))
    sets.reverse()
    return sets


def set_sizes(masks: np.ndarray) -> np.ndarray:
    """Elements of every mask row."""
    sizes: np.ndarray = np.count_nonzero(masks, axis=1)
    return sizes


def union_size(masks: np.ndarray) -> int:
    """Elements of the union of all mask rows."""
    return int(np.count_nonzero(masks.any(axis=0)))


_SIGNS = [
    np.array([1.0 if bin(m).count("1") % 2 else -1.0 for m in range(1, 1 << n)]) for n in range(6)
]
"""Inclusion-exclusion sign of every nonempty subset of ``n`` rectangles."""


def live_elems(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Elements (per channel) of a kept tensor on chip during each tile, as an
    ``(outer tiles, inner tiles)`` array, for tiles walked outer-major; ``outer`` and
    ``inner`` are the per-axis needed masks, tile ``(a, b)`` needing their product.

    An element is on chip from the first tile that needs it to the last. During tile
    ``t = (a, b)`` that is ``N_t`` plus what tiles before and after ``t`` both need:
    ``N_t`` and four rectangles, ``(U<a ∩ A_a) x U>b_B``, ``(U<a ∩ U>a) x U_B``,
    ``A_a x (U<b ∩ U>b)`` and ``(A_a ∩ U>a) x U<b_B``; their union's area is summed by
    inclusion-exclusion, one outer product per subset. Any sets work, not only intervals.
    """
    return _live(AxisUnions.of(outer), AxisUnions.of(inner))


def _live(outer: AxisUnions, inner: AxisUnions) -> np.ndarray:
    """:func:`live_elems` from the axes' unions."""
    a, a_before, a_after = outer.mask, outer.before, outer.after
    b, b_before, b_after = inner.mask, inner.before, inner.after
    b_all = np.broadcast_to(b.any(axis=0), b.shape)
    candidates = [
        (a, b),
        (a_before & a, b_after),
        (a_before & a_after, b_all),
        (a, b_before & b_after),
        (a & a_after, b_before),
    ]
    rects = [(ra, rb) for ra, rb in candidates if ra.any() and rb.any()]
    # Subset intersections by dynamic programming: subset = smaller subset ∩ one rectangle.
    count = len(rects)
    sets_a = np.empty((1 << count, *a.shape), dtype=bool)
    sets_b = np.empty((1 << count, *b.shape), dtype=bool)
    sets_a[0], sets_b[0] = True, True
    for mask in range(1, 1 << count):
        low = (mask & -mask).bit_length() - 1
        rest = mask & (mask - 1)
        ra, rb = rects[low]
        np.logical_and(sets_a[rest], ra, out=sets_a[mask])
        np.logical_and(sets_b[rest], rb, out=sets_b[mask])
    len_a = np.count_nonzero(sets_a[1:], axis=2).astype(np.float64)
    len_b = np.count_nonzero(sets_b[1:], axis=2).astype(np.float64)
    total = (len_a * _SIGNS[count][:, None]).T @ len_b
    counts: np.ndarray = np.rint(total).astype(np.int64)
    return counts


@dataclass(frozen=True, slots=True)
class KPass:
    """Tiles of the last layer's output-channel (K) loop that share their per-tile sets:
    ``count`` K indices, whether they are the first (``first``) and the last (``last``)
    index, and the output channels each of their tiles makes."""

    count: int
    first: bool
    last: bool
    channels: int


@dataclass(frozen=True, slots=True)
class GroupGeometry:
    """Every tensor's per-axis sets for one group, for the first K index (``first``:
    the schedule of a group whose channels are not tiled) and for every later one
    (``later``). Tensor ``k`` is the group input (0) or layer ``k - 1``'s output.

    A later K tile needs the same spatial tile of the last layer's input as the first
    did, so a retained or spilled tensor has made everything by then: walking back,
    it makes nothing more and asks nothing of earlier tensors. A tensor whose consumers
    up to the last layer are all recomputed (``extended``) is asked again for its whole
    receptive field; it remakes it if it is itself recomputed (or a re-read input).
    """

    layers: tuple[FusedLayer, ...]
    kinds: tuple[str, ...]
    channels: tuple[int, ...]
    outer_first: bool
    k_position: str
    """Where the K loop is: ``outer``, ``middle`` (between the spatial loops) or ``inner``."""
    passes: tuple[KPass, ...]
    first: tuple[tuple[AxisSets, AxisSets], ...]
    later: tuple[tuple[AxisSets, AxisSets], ...]
    extended: tuple[bool, ...]
    cache: dict[tuple[int, bool, str], np.ndarray] = field(default_factory=dict, compare=False)
    totals: dict[tuple[int, bool, str], int] = field(default_factory=dict, compare=False)

    def orient(self, sets: tuple[AxisSets, AxisSets]) -> tuple[AxisSets, AxisSets]:
        """``(rows, cols)`` as ``(outer, inner)`` of the spatial loop order."""
        return sets if self.outer_first else (sets[1], sets[0])

    def grid(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Per spatial tile (outer, inner), the product of a row and a column quantity."""
        return np.outer(rows, cols) if self.outer_first else np.outer(cols, rows)

    def sizes(self, k: int, later: bool, what: str) -> np.ndarray:
        """Per spatial tile, the elements (per channel) tensor ``k``'s ``what`` (``need``
        or ``make``) set holds, for the first or a later K index; ``runs``: 1 where
        the tile makes any of it (its producer runs), else 0."""
        key = (k, later and len(self.passes) > 1, what)
        if key not in self.cache:
            if what == "runs":
                sizes = (self.sizes(k, later, "make") > 0).astype(np.int64)
            else:
                ry, rx = (self.later if key[1] else self.first)[k]
                sizes = self.grid(set_sizes(getattr(ry, what)), set_sizes(getattr(rx, what)))
            sizes.setflags(write=False)
            self.cache[key] = sizes
        return self.cache[key]

    def total(self, k: int, later: bool, what: str) -> int:
        """:meth:`sizes` summed over the spatial tiles."""
        key = (k, later and len(self.passes) > 1, what)
        if key not in self.totals:
            self.totals[key] = int(self.sizes(k, later, what).sum())
        return self.totals[key]

    def live(self, k: int) -> list[np.ndarray]:
        """Elements of tensor ``k`` on chip during each spatial tile, one ``(outer,
        inner)`` array per entry of :attr:`passes` (derivation: docs/fused.md).

        Retained tensors (the group input when retained) hold each element from the
        first tile that needs it to the last; the others hold their tile's needed set;
        the output its tile. With the K loop innermost a later K index holds no more
        than the first index of the same spatial tile did (same sets, or subsets), so
        only the first pass is returned. With K outermost or between the spatial loops,
        a retained tensor that later K indices ask again (``extended``) stays on chip
        across them.
        """
        n = len(self.layers)
        passes = self.passes if self.k_position != "inner" else self.passes[:1]
        ch = self.channels[k]
        if k == n:
            return [p.channels * self.sizes(n, False, "need") for p in passes]
        if self.kinds[k] != "retain":
            return [ch * self.sizes(k, not p.first, "need") for p in passes]
        outer, inner = (AxisUnions.of(s.need, s.need_before) for s in self.orient(self.first[k]))
        spread = ch * _live(outer, inner)
        if len(self.passes) == 1 or self.k_position == "inner":
            return [spread for _ in passes]
        if self.k_position == "middle":
            first, middle, last = _middle_k_live(outer, inner, self.extended[k], spread // ch)
            return [ch * (first if p.first else last if p.last else middle) for p in passes]
        out = []
        made = ch * self.sizes(k, False, "make")
        for p in passes:
            if not self.extended[k]:
                out.append(spread if p.first else np.zeros_like(spread))
            elif p.first:
                # Everything needed so far stays for the later passes.
                out.append(np.cumsum(made.ravel()).reshape(made.shape))
            elif not p.last:
                out.append(np.full_like(spread, made.sum()))
            else:
                # Everything still needed: new parts taken from the end, summed backwards.
                after = [s.mask & ~s.after for s in (outer, inner)]
                fresh = ch * np.outer(set_sizes(after[0]), set_sizes(after[1]))
                out.append(np.cumsum(fresh.ravel()[::-1])[::-1].reshape(fresh.shape))
        return out


def _middle_k_live(
    outer: AxisUnions, inner: AxisUnions, extended: bool, plain: np.ndarray
) -> list[np.ndarray]:
    """Per-channel elements of a retained tensor on chip with the K loop between the
    outer and the inner spatial loop, for the first, middle and last K index (tiles
    ``(a, c, b)``; ``plain`` is the schedule without channel tiles, :func:`_live`).

    Not extended (needed at ``c = 0`` only): the first K index is the plain schedule;
    at a later one an element stays iff tiles of outer index ``<= a`` and ``> a`` both
    need it, ``(Y<=a ∩ Y>a) x X``. Extended (needed at every ``c``): first index
    ``(Y<a ∩ Y>=a) x X ∪ A_a x X<=b``, middle ``(Y<=a ∩ Y>=a) x X``, last ``(Y<=a ∩
    Y>a) x X ∪ A_a x X>=b`` (``Y<a`` the union of the outer sets before ``a``, ``X`` of
    all inner sets, ``X<=b`` of the inner sets up to ``b``).
    """
    a, before, after = outer.mask, outer.before, outer.after
    upto, onward = before | a, after | a
    width = np.count_nonzero(inner.mask.any(axis=0))
    x_upto = set_sizes(inner.before | inner.mask)
    x_onward = set_sizes(inner.after | inner.mask)
    cols = np.ones(len(inner.mask), dtype=np.int64)
    kept_after = np.outer(set_sizes(upto & after) * width, cols)
    if not extended:
        return [plain, kept_after, kept_after]
    own = set_sizes(a)
    first = np.outer(set_sizes(before & onward) * width, cols) + np.outer(
        own - set_sizes(before & a), x_upto
    )
    middle = np.outer(set_sizes(upto & onward) * width, cols)
    last = kept_after + np.outer(own - set_sizes(after & a), x_onward)
    return [first, middle, last]


def k_passes(channels: int, tile: int) -> tuple[KPass, ...]:
    """The K tiles of ``channels`` output channels in tiles of ``tile``, grouped into
    the first, the middle ones and the last."""
    count = -(-channels // tile)
    if count == 1:
        return (KPass(1, True, True, channels),)
    last = channels - (count - 1) * tile
    middle = (KPass(count - 2, False, False, tile),) if count > 2 else ()
    return (KPass(1, True, False, tile), *middle, KPass(1, False, True, last))


def group_geometry(scenario: FusedScenario, group: FusedGroup) -> GroupGeometry:
    """The per-axis sets of every tensor of ``group``, for the first and later K tiles."""
    layers = scenario.group_layers(group)
    n = len(layers)
    kinds = (group.input_choice, *group.choices)
    rows = axis_sets(layers, group.choices, group.input_choice, 0, group.tile[0])
    cols = axis_sets(layers, group.choices, group.input_choice, 1, group.tile[1])
    first = tuple(zip(rows, cols, strict=True))
    out_channels = layers[-1].out_shape[0]
    passes = k_passes(out_channels, group.tile_k or out_channels)
    extended = tuple(all(kinds[j] == "recompute" for j in range(k + 1, n)) for k in range(n + 1))
    later = first
    if len(passes) > 1:
        asked = ("recompute",) * (n - 1) + ("spill",)
        rows_r = axis_sets(layers, asked, "reread", 0, group.tile[0])
        cols_r = axis_sets(layers, asked, "reread", 1, group.tile[1])
        sets: list[tuple[AxisSets, AxisSets]] = []
        for k in range(n + 1):
            if k == n:
                sets.append(first[n])
                continue
            pair = []
            for full in (rows_r[k], cols_r[k]):
                need = full.need if extended[k] else np.zeros_like(full.need)
                remade = kinds[k] in ("recompute", "reread")
                pair.append(AxisSets(need, need if remade else np.zeros_like(need)))
            sets.append((pair[0], pair[1]))
        later = tuple(sets)
    channels = (layers[0].in_shape[0], *(layer.out_shape[0] for layer in layers))
    return GroupGeometry(
        layers=layers,
        kinds=kinds,
        channels=channels,
        outer_first=group.spatial_order[0] == "P",
        k_position=("outer", "middle", "inner")[group.order.index("K")]
        if "K" in group.order
        else "inner",
        passes=passes,
        first=first,
        later=later,
        extended=extended,
    )


def kept_live(scenario: FusedScenario, group: FusedGroup) -> list[tuple[str, np.ndarray]]:
    """(tensor, elements on chip per tile) of every retained tensor of ``group`` (the
    group input too when it is retained), one ``(passes, outer, inner)`` array each."""
    geometry = group_geometry(scenario, group)
    names = ["input", *(layer.name for layer in geometry.layers)]
    return [
        (names[k], np.stack(geometry.live(k)))
        for k in range(len(geometry.layers))
        if geometry.kinds[k] == "retain"
    ]


# --- results (both engines write these) ------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FusedTensorResult:
    """One tensor of a group: off-chip traffic and on-chip peak in elements; MACs of the
    layer that produces it (0 for the group input and weights)."""

    tensor: str
    offchip_reads: int
    offchip_writes: int
    onchip_buffer_req_elems: int
    macs: int = 0
    macs_recomputed: int = 0


@dataclass(frozen=True, slots=True)
class OnChip:
    """Traffic inside the chip of one layer's tile sub-problem, from a single-layer
    engine: L1 accesses, accesses between the L2 and the PEs (input and weight reads,
    output writes; the L2 fills and drains are the group's), NoC element-hops."""

    l1_accesses: int = 0
    l2_accesses: int = 0
    noc_elem_hops: int = 0

    @classmethod
    def of(cls, result: LayerResult) -> OnChip:
        """The on-chip part of a single-layer result (its data already on chip)."""
        counts = AccessCounts.of(result)
        pe_side = (
            result.tensor("input").l2_reads
            + result.tensor("weight").l2_reads
            + result.tensor("output").l2_writes
        )
        return cls(counts.l1_accesses, pe_side, counts.noc_elem_hops)

    def scaled(self, times: int) -> OnChip:
        """These counts ``times`` over."""
        return OnChip(
            self.l1_accesses * times, self.l2_accesses * times, self.noc_elem_hops * times
        )

    def __add__(self, other: OnChip) -> OnChip:
        return OnChip(
            self.l1_accesses + other.l1_accesses,
            self.l2_accesses + other.l2_accesses,
            self.noc_elem_hops + other.noc_elem_hops,
        )


def group_l2_accesses(
    layers: tuple[FusedLayer, ...],
    made: list[int],
    needed: list[int],
    weight_loads: list[int],
    weight_uses: list[int],
    onchip: list[OnChip | None],
) -> OnChip:
    """The group's L2 accesses and the L1 and NoC traffic of its layers' dataflows.

    Every tensor's elements are written into the L2 once per make and read once per
    need (the group input from off-chip, the output to off-chip), weights once per
    load and once per tile that uses them. A layer with its own dataflow replaces its
    part (its input's needs, its output's makes and its weight uses) by what its
    single-layer model counts between the L2 and the PEs over all its tiles
    (``onchip[i]``), and adds that model's L1 and NoC traffic.
    """
    l2 = sum(made) + sum(needed) + sum(weight_loads) + sum(weight_uses)
    total = OnChip()
    for i, counts in enumerate(onchip):
        if counts is not None and layers[i].dataflow is not None:
            l2 += counts.l2_accesses - needed[i] - made[i + 1] - weight_uses[i]
            total += counts
    return OnChip(total.l1_accesses, l2, total.noc_elem_hops)


@dataclass(frozen=True, slots=True, kw_only=True)
class FusedGroupResult:
    """One fusion group: totals over its tensors, its runtime and energy (MACs, L1,
    L2, NoC and off-chip accesses priced in the scenario's energy table)."""

    group: str
    offchip_reads: int
    offchip_writes: int
    onchip_buffer_req_elems: int
    macs: int
    macs_recomputed: int
    runtime_cycles: int
    energy_nj: float
    l2_accesses: int
    tiles: int
    tensors: tuple[FusedTensorResult, ...]
    l1_accesses: int = 0
    noc_elem_hops: int = 0

    @classmethod
    def total(
        cls,
        scenario: FusedScenario,
        group: FusedGroup,
        tensors: list[FusedTensorResult],
        *,
        buffer_elems: int,
        runtime_cycles: int,
        onchip: OnChip,
        tiles: int,
    ) -> FusedGroupResult:
        """The group's result from its tensors: sums, and the energy of its MACs, L1,
        L2 and NoC accesses and off-chip elements in the scenario's energy table."""
        reads = sum(t.offchip_reads for t in tensors)
        writes = sum(t.offchip_writes for t in tensors)
        macs = sum(t.macs for t in tensors)
        energy = ENERGY_TABLES[scenario.energy].energy_nj(
            AccessCounts(
                macs=macs,
                l1_accesses=onchip.l1_accesses,
                l2_accesses=onchip.l2_accesses,
                noc_elem_hops=onchip.noc_elem_hops,
                offchip_accesses=reads + writes,
            )
        )
        return cls(
            group=group.name,
            offchip_reads=reads,
            offchip_writes=writes,
            onchip_buffer_req_elems=buffer_elems,
            macs=macs,
            macs_recomputed=sum(t.macs_recomputed for t in tensors),
            runtime_cycles=runtime_cycles,
            energy_nj=round(energy, 6),
            l2_accesses=onchip.l2_accesses,
            tiles=tiles,
            tensors=tuple(tensors),
            l1_accesses=onchip.l1_accesses,
            noc_elem_hops=onchip.noc_elem_hops,
        )

    def metrics(self) -> dict[str, float]:
        """The compared metrics as a flat mapping (``tensor/metric`` for tensors)."""
        out: dict[str, float] = {
            "offchip_reads": self.offchip_reads,
            "offchip_writes": self.offchip_writes,
            "onchip_buffer_req_elems": self.onchip_buffer_req_elems,
            "macs": self.macs,
            "macs_recomputed": self.macs_recomputed,
            "runtime_cycles": self.runtime_cycles,
            "energy_nj": self.energy_nj,
            "l1_accesses": self.l1_accesses,
            "l2_accesses": self.l2_accesses,
            "noc_elem_hops": self.noc_elem_hops,
        }
        for t in self.tensors:
            for key in (
                "offchip_reads",
                "offchip_writes",
                "onchip_buffer_req_elems",
                "macs",
                "macs_recomputed",
            ):
                out[f"{t.tensor}/{key}"] = getattr(t, key)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FusedResult:
    """All groups of a fused scenario, from one engine."""

    scenario: str
    engine: str
    groups: tuple[FusedGroupResult, ...]

    @property
    def offchip_elems(self) -> int:
        """Off-chip reads plus writes over every group."""
        return sum(g.offchip_reads + g.offchip_writes for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "scenario": self.scenario,
            "engine": self.engine,
            "groups": [
                {
                    "group": g.group,
                    "tiles": g.tiles,
                    "l2_accesses": g.l2_accesses,
                    **{k: v for k, v in g.metrics().items() if "/" not in k},
                    "tensors": [
                        {
                            "tensor": t.tensor,
                            "offchip_reads": t.offchip_reads,
                            "offchip_writes": t.offchip_writes,
                            "onchip_buffer_req_elems": t.onchip_buffer_req_elems,
                            "macs": t.macs,
                            "macs_recomputed": t.macs_recomputed,
                        }
                        for t in g.tensors
                    ],
                }
                for g in self.groups
            ],
        }


def render_fused(result: FusedResult, scenario: FusedScenario) -> str:
    """A table: one line per group and per tensor."""
    width = scenario.hardware.bytes_per_elem
    lines = [f"{scenario.name} ({result.engine}): {len(result.groups)} group(s)"]
    head = f"  {'tensor':<18}{'reads':>12}{'writes':>12}{'buffer':>11}{'MACs':>14}{'recomp':>12}"
    for g in result.groups:
        lines.append(
            f"group {g.group}: {g.tiles} tiles, {g.runtime_cycles} cycles,"
            f" {g.energy_nj:.1f} nJ, off-chip {(g.offchip_reads + g.offchip_writes) * width}"
            f" B, buffer {g.onchip_buffer_req_elems * width} B"
        )
        lines.append(head)
        for t in (*g.tensors, None):
            row = t or FusedTensorResult(
                tensor="total",
                offchip_reads=g.offchip_reads,
                offchip_writes=g.offchip_writes,
                onchip_buffer_req_elems=g.onchip_buffer_req_elems,
                macs=g.macs,
                macs_recomputed=g.macs_recomputed,
            )
            lines.append(
                f"  {row.tensor:<18}{row.offchip_reads:>12}{row.offchip_writes:>12}"
                f"{row.onchip_buffer_req_elems:>11}{row.macs:>14}{row.macs_recomputed:>12}"
            )
    total = result.offchip_elems * width
    lines.append(f"off-chip total: {total} B ({total / 2**20:.2f} MiB)")
    return "\n".join(lines)


# --- YAML loader -----------------------------------------------------------------------


def is_fused_file(path: str | Path) -> bool:
    """Whether ``path`` is a YAML file whose top level says ``kind: fused``."""
    p = Path(path)
    if p.suffix not in (".yaml", ".yml") or not p.is_file():
        return False
    try:
        for raw in p.read_text(encoding="utf-8", errors="replace").splitlines():
            line = raw.split("#", 1)[0].rstrip()
            if line.startswith("kind:"):
                return line.split(":", 1)[1].strip().strip("'\"") == "fused"
    except OSError:
        return False
    return False


_TOP = (
    "kind",
    "name",
    "description",
    "input",
    "layers",
    "groups",
    "hardware",
    "energy",
    "simulator",
    "reference",
)
_LAYER_KEYS = (
    "name",
    "type",
    "dims",
    "stride",
    "padding",
    "pool",
    "window",
    "activation",
    "dataflow",
)
_GROUP_KEYS = (
    "name",
    "layers",
    "tile",
    "order",
    "intermediates",
    "input",
    "weights",
    "buffer_elems",
)


def load_fused(path: str | Path) -> FusedScenario:
    """Read and check a fused scenario; every problem is a :class:`SpecError` at its
    YAML position."""
    from .scenario import _load_hardware, compose_yaml

    doc, root = compose_yaml(path, "fused scenario")
    top = doc.mapping(root, "the fused scenario", _TOP)
    for key in ("input", "layers", "groups", "hardware"):
        if key not in top:
            raise doc.error(root, f"a fused scenario needs '{key}'")
    if "kind" in top and doc.scalar(top["kind"][1], "kind") != "fused":
        raise doc.error(top["kind"][1], "kind must be 'fused' in a fused scenario")
    name = doc.scalar(top["name"][1], "name") if "name" in top else Path(str(path)).stem
    dims = doc.mapping(top["input"][1], "input", ("C", "Y", "X"))
    for key in ("C", "Y", "X"):
        if key not in dims:
            raise doc.error(top["input"][1], f"input needs '{key}'")
    shape = tuple(doc.integer(dims[k][1], f"input {k}") for k in ("C", "Y", "X"))
    layers: list[FusedLayer] = []
    current: tuple[int, int, int] = (shape[0], shape[1], shape[2])
    for item in doc.sequence(top["layers"][1], "layers"):
        layer = _load_layer(doc, item, current)
        if any(prev.name == layer.name for prev in layers):
            raise doc.error(item, f"layer name '{layer.name}' is repeated")
        layers.append(layer)
        current = layer.out_shape
    if not layers:
        raise doc.error(top["layers"][1], "'layers' is empty")
    hardware = _load_hardware(doc, top["hardware"][1], Path(str(path)).parent, None)
    energy = _choice(doc, top, "energy", tuple(ENERGY_TABLES), "eyeriss65")
    functional = False
    if "simulator" in top:
        sim = doc.mapping(top["simulator"][1], "simulator", ("functional",))
        if "functional" in sim:
            functional = doc.boolean(sim["functional"][1], "functional")
    reference: tuple[tuple[str, float], ...] = ()
    source = ""
    if "reference" in top:
        block = doc.mapping(top["reference"][1], "reference", ("source", "values"))
        if "source" not in block:
            raise doc.error(top["reference"][1], "reference needs a 'source'")
        source = doc.scalar(block["source"][1], "reference source")
        if "values" in block:
            values = doc.mapping(block["values"][1], "reference values", None)
            reference = tuple((k, doc.number(v, f"reference {k}")) for k, (_, v) in values.items())
    groups_node = top["groups"][1]
    groups: list[FusedGroup] = []
    names = [layer.name for layer in layers]
    for item in doc.sequence(groups_node, "groups"):
        groups.append(_load_group(doc, item, tuple(layers), names, hardware))
    expected = 0
    for group, item in zip(groups, doc.sequence(groups_node, "groups"), strict=True):
        if group.first != expected:
            raise doc.error(
                item,
                f"group '{group.name}' starts at layer '{names[group.first]}', but the chain"
                f" continues with '{names[expected]}'"
                if expected < len(names)
                else f"group '{group.name}' repeats layers an earlier group runs",
                hint="groups must cover the chain in order, each layer exactly once",
            )
        expected = group.last + 1
    if expected != len(layers):
        raise doc.error(
            groups_node,
            f"no group runs layer '{names[expected]}'",
            hint="groups must cover the chain in order, each layer exactly once",
        )
    scenario = FusedScenario(
        name=name,
        path=str(path),
        description=doc.scalar(top["description"][1], "description")
        if "description" in top
        else "",
        input_shape=(shape[0], shape[1], shape[2]),
        layers=tuple(layers),
        groups=tuple(groups),
        hardware=hardware,
        energy=energy,
        functional=functional,
        reference=reference,
        reference_source=source,
    )
    for group in groups:
        _check_capacity(scenario, group, hardware)
    return scenario


def _pair(doc: Any, node: yaml.Node, what: str, default: int, minimum: int) -> tuple[int, int]:
    block = doc.mapping(node, what, ("Y", "X"))
    y = doc.integer(block["Y"][1], f"{what} Y", minimum) if "Y" in block else default
    x = doc.integer(block["X"][1], f"{what} X", minimum) if "X" in block else default
    return (y, x)


def _load_layer(doc: Any, item: yaml.Node, shape: tuple[int, int, int]) -> FusedLayer:
    from .maestro import parse_dataflow_tokens

    block = doc.mapping(item, "a layer", _LAYER_KEYS)
    for key in ("name", "type"):
        if key not in block:
            raise doc.error(item, f"a layer needs '{key}'")
    name = doc.scalar(block["name"][1], "layer name")
    type_node = block["type"][1]
    text = doc.scalar(type_node, "layer type").upper()
    text = "GEMM" if text == "FC" else text
    if text not in Kind.__members__:
        raise doc.error(
            type_node,
            f"layer type '{text}' cannot be fused",
            hint="one of CONV, DSCONV, GEMM (FC), POOL",
        )
    kind = Kind[text]
    span = doc.span(block["name"][1])
    c, h, w = shape
    stride = _pair(doc, block["stride"][1], "stride", 1, 1) if "stride" in block else (1, 1)
    padding = _pair(doc, block["padding"][1], "padding", 0, 0) if "padding" in block else (0, 0)
    declared: dict[str, int] = {}
    spans: dict[str, SourceSpan] = {}
    if "dims" in block:
        dims = doc.mapping(block["dims"][1], "dims", None)
        for dim, (key, value) in dims.items():
            declared[dim] = doc.integer(value, f"dimension {dim}")
            spans[dim] = doc.span(key)
    pool = ""
    if kind is Kind.POOL:
        if "dims" in block or "dataflow" in block:
            bad = block["dims"][0] if "dims" in block else block["dataflow"][0]
            raise doc.error(bad, "a POOL layer has a 'window', no dims or dataflow")
        if "window" not in block or "pool" not in block:
            raise doc.error(item, "a POOL layer needs 'pool' (max or avg) and 'window'")
        pool = _one_of(doc, block["pool"][1], "pool", POOL_KINDS)
        window = _pair(doc, block["window"][1], "window", 1, 1)
    else:
        if "window" in block or "pool" in block:
            bad = block["window"][0] if "window" in block else block["pool"][0]
            raise doc.error(bad, f"only POOL layers take '{doc.scalar(bad, 'key')}'")
        window = (1, 1)
        if kind is not Kind.GEMM:
            window = (declared.get("R", 1), declared.get("S", 1))
    for axis, what in ((0, "Y"), (1, "X")):
        if padding[axis] >= window[axis]:
            raise doc.error(
                block["padding"][1],
                f"layer '{name}': padding {what} {padding[axis]} is not smaller than the"
                f" window {window[axis]}",
            )
    out_h = (h + 2 * padding[0] - window[0]) // stride[0] + 1
    out_w = (w + 2 * padding[1] - window[1]) // stride[1] + 1
    if out_h < 1 or out_w < 1:
        raise doc.error(
            item,
            f"layer '{name}': a {window[0]}x{window[1]} window does not fit its"
            f" {h}x{w} input (padding {padding[0]}x{padding[1]})",
            hint="chain shapes: each layer reads the previous layer's output",
        )
    layer: Layer | None = None
    out_c = c
    if kind is not Kind.POOL:
        own = {"C": c}
        if kind is Kind.GEMM:
            own = {"K": c, "M": h * w}
        for dim, value in own.items():
            if dim in declared and declared[dim] != value:
                raise doc.error(
                    doc.mapping(block["dims"][1], "dims", None)[dim][1],
                    f"layer '{name}' declares {dim}={declared[dim]}, but the previous"
                    f" tensor gives it {value}",
                    hint="chain shapes must match: leave it out to take it from the chain",
                )
        if kind is Kind.GEMM:
            if "N" not in declared:
                raise doc.error(item, f"GEMM layer '{name}' needs dims N (output features)")
            full = {"M": h * w, "K": c, "N": declared["N"]}
            out_c = declared["N"]
            type_ = LayerType.GEMM
        else:
            full = {"C": c, "Y": h + 2 * padding[0], "X": w + 2 * padding[1]}
            for dim in ("R", "S") + (("K",) if kind is Kind.CONV else ()):
                if dim not in declared:
                    raise doc.error(item, f"{kind.value} layer '{name}' needs dims {dim}")
                full[dim] = declared[dim]
            for dim in declared:
                if dim not in full:
                    raise doc.error(
                        doc.mapping(block["dims"][1], "dims", None)[dim][0],
                        f"dimension {dim} of a fused {kind.value} comes from the chain",
                        hint="declare only K, R and S (DSCONV: R and S); C, Y and X follow"
                        " from the previous layer",
                    )
            out_c = declared["K"] if kind is Kind.CONV else c
            type_ = LayerType.CONV if kind is Kind.CONV else LayerType.DSCONV
        layer = make_layer(
            name=name,
            type_=type_,
            declared=full,
            stride_y=stride[0],
            stride_x=stride[1],
            keyword=kind.value,
            span=span,
            dim_spans=spans,
        )
    activation = _choice(doc, block, "activation", ACTIVATIONS, "none")
    mapping: Mapping | None = None
    dataflow: tuple[tuple[Any, ...], SourceSpan] | None = None
    if "dataflow" in block and layer is not None:
        tokens, eof = doc.text_tokens(block["dataflow"][1])
        dataflow = (tuple(tokens), eof)
        mapping, _ = parse_dataflow_tokens(tokens, eof, layer, doc.span(block["dataflow"][0]))
    return FusedLayer(
        name=name,
        kind=kind,
        in_shape=shape,
        out_shape=(out_c, out_h, out_w),
        window=window,
        stride=stride,
        padding=padding,
        pool=pool,
        activation=activation,
        layer=layer,
        mapping=mapping,
        dataflow=dataflow,
        span=span,
    )


def _load_group(
    doc: Any,
    item: yaml.Node,
    layers: tuple[FusedLayer, ...],
    names: list[str],
    hardware: Hardware,
) -> FusedGroup:
    block = doc.mapping(item, "a group", _GROUP_KEYS)
    if "layers" not in block:
        raise doc.error(item, "a group needs 'layers' (consecutive layer names)")
    nodes = doc.sequence(block["layers"][1], "group layers")
    indices = []
    for node in nodes:
        layer_name = doc.scalar(node, "a layer name")
        if layer_name not in names:
            raise doc.error(node, f"the chain has no layer '{layer_name}'")
        indices.append((names.index(layer_name), node))
    if not indices:
        raise doc.error(block["layers"][1], "a group needs at least one layer")
    for (prev, _), (cur, node) in itertools.pairwise(indices):
        if cur != prev + 1:
            raise doc.error(
                node,
                f"layer '{names[cur]}' does not follow '{names[prev]}' in the chain",
                hint="a fusion group is consecutive layers",
            )
    first, last = indices[0][0], indices[-1][0]
    name = doc.scalar(block["name"][1], "group name") if "name" in block else names[first]
    out = layers[last].out_shape
    tile = [out[1], out[2]]
    tile_k: int | None = None
    k_given = False
    if "tile" in block:
        tiles = doc.mapping(block["tile"][1], "tile", ("P", "Q", "K"))
        for rank, (_, value) in tiles.items():
            size = doc.integer(value, f"tile {rank}")
            if rank == "K":
                tile_k = _tile_k(doc, value, size, layers[last])
                k_given = True
                continue
            axis = TILE_RANKS.index(rank)
            if size > out[1 + axis]:
                raise doc.error(
                    value,
                    f"tile {rank} {size} is larger than the output of '{names[last]}'"
                    f" ({out[1 + axis]} {'rows' if axis == 0 else 'columns'})",
                    hint=f"a tile size from 1 to {out[1 + axis]}",
                )
            tile[axis] = size
    order = _order(doc, block, k_given)
    choices = ["retain"] * (last - first) + ["spill"]
    choice_spans: list[tuple[str, SourceSpan]] = []
    if "intermediates" in block:
        inner = doc.mapping(block["intermediates"][1], "intermediates", None)
        for tensor, (key, value) in inner.items():
            if tensor not in names[first:last]:
                raise doc.error(
                    key,
                    f"'{tensor}' is not an intermediate of group '{name}'",
                    hint="intermediates are the outputs of every group layer but the last: "
                    + ", ".join(names[first:last]),
                )
            choice = _one_of(doc, value, f"choice for '{tensor}'", RETENTION_CHOICES)
            choices[names.index(tensor) - first] = choice
            choice_spans.append((tensor, doc.span(value)))
    input_choice = _choice(doc, block, "input", INPUT_CHOICES, "retain")
    weights = _choice(doc, block, "weights", WEIGHT_CHOICES, "resident")
    buffer_elems: int | None = None
    if "buffer_elems" in block:
        buffer_elems = doc.integer(block["buffer_elems"][1], "buffer_elems")
    elif hardware.l2_size_elems < 2**31 - 1:
        buffer_elems = hardware.l2_size_elems
    return FusedGroup(
        name=name,
        first=first,
        last=last,
        tile=(tile[0], tile[1]),
        order=order,
        choices=tuple(choices),
        input_choice=input_choice,
        weights=weights,
        buffer_elems=buffer_elems,
        tile_k=tile_k,
        span=doc.span(item),
        choice_spans=tuple(choice_spans),
    )


def _tile_k(doc: Any, node: yaml.Node, size: int, layer: FusedLayer) -> int | None:
    """Output channels per tile of the group's last layer (``None``: all of them); only
    a CONV or GEMM, whose every output channel reads all input channels, is split."""
    channels = layer.out_shape[0]
    if size > channels:
        raise doc.error(
            node,
            f"tile K {size} is larger than the {channels} output channels of '{layer.name}'",
            hint=f"a tile size from 1 to {channels}",
        )
    if size == channels:
        return None
    if layer.kind not in (Kind.CONV, Kind.GEMM):
        raise doc.error(
            node,
            f"tile K {size} splits the channels of {layer.kind.value} layer '{layer.name}',"
            " which this model tiles only for CONV and GEMM",
            hint=f"omit K or give K: {channels}",
        )
    return size


def _order(doc: Any, block: dict[str, Any], tiled_k: bool) -> tuple[str, ...]:
    """The tile loop order, outermost first; ``K`` (innermost by default) is allowed only
    when the tile gives ``K``."""
    if "order" not in block:
        return ("P", "Q", "K") if tiled_k else ("P", "Q")
    node = block["order"][1]
    ranks = tuple(str(doc.scalar(n, "a rank")) for n in doc.sequence(node, "order"))
    if tiled_k and sorted(ranks) == ["P", "Q"]:
        ranks = (*ranks, "K")
    if sorted(ranks) != (["K", "P", "Q"] if tiled_k else ["P", "Q"]):
        raise doc.error(
            node,
            f"tile loop order {list(ranks)} must name P and Q once each"
            + (" and K once" if tiled_k else " (K only when the tile gives K)"),
            hint="[P, Q] (rows outer) or [Q, P]; with a K tile K anywhere, e.g. [K, P, Q]",
        )
    return ranks


def _choice(
    doc: Any, block: dict[str, Any], key: str, allowed: tuple[str, ...], default: str
) -> str:
    """``block[key]`` if given (one of ``allowed``), else ``default``."""
    if key not in block:
        return default
    return _one_of(doc, block[key][1], key, allowed)


def _one_of(doc: Any, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> str:
    """A scalar that must be one of ``allowed``."""
    value = str(doc.scalar(node, what))
    if value not in allowed:
        raise doc.error(
            node, f"'{value}' is not a valid {what}", hint="one of " + ", ".join(allowed)
        )
    return value


def _check_capacity(scenario: FusedScenario, group: FusedGroup, hardware: Hardware) -> None:
    """A retained tensor whose peak alone exceeds the declared buffer is an error."""
    if group.buffer_elems is None:
        return
    live = kept_live(scenario, group)
    if not live:
        return
    total = int(np.sum([matrix for _, matrix in live], axis=0).max(initial=0))
    if total > group.buffer_elems:
        worst = max(live, key=lambda item: int(item[1].max(initial=0)))
        raise SpecError.at(
            dict(group.choice_spans).get(worst[0], group.span),
            f"group '{group.name}' retains {total} elements at its peak ('{worst[0]}'"
            f" alone up to {int(worst[1].max(initial=0))}), more than its buffer of"
            f" {group.buffer_elems}",
            hint="smaller tiles, or recompute or spill some intermediates",
        )
