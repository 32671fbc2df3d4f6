"""Exact work counts of a mapping, per group of coupled dimensions.

A mapping executes as lock-step loops (docs/simulator.md, "Execution model"): at each
level every directive is a loop over ``P = 1 + ceil(max(0, N - m) / o)`` positions (a
SpatialMap's fold loop takes ``ceil(P / U)`` of them, a second SpatialMap rides on the
first one's position ``f U + u``), a strided ``Y``/``X`` tile holding a whole window of
the incoming filter rows is cut to whole windows, ``Y'``/``X'`` maps are output
coordinates turned into input rows with the unit's filter rows, and a PE holding input
rows ``[a, a+m)`` and filter rows ``[b, b+n)`` computes the outputs whose restricted
window fits (:func:`metronome.spec.window.outputs_within`).

A unit's tile of a dimension depends only on the positions of the directives of its
*group*: ``Y``/``R``/``Y'``, ``X``/``S``/``X'``, every other dimension on its own, and
the groups of the SpatialMaps of one level joined (they share the unit index). So every
count that is a sum over PE-steps of a product over dimensions is a product over groups
of sums over each group's own positions (and units), and the lock-step length of a step
(the longest inner nest of its units) is a product over groups of the longest inner
nest of each group's units:

    MACs         = prod_g  sum_{PE-steps of g} prod_{d in g} ext_d
    tile(T)      = prod_g  sum_{PE-steps of g} prod_{d in g, d indexes T} ext_d
    len_l(r)     = prod_g  sum_{positions p_g at l} max_{active units u} len_{l+1,g}(tile(p_g, u))
    steps        = len_0(whole layer)  (a top-level position with no active unit lasts 1)

(a nested level's fold whose every unit idles lasts one step in the simulator, whatever
the other groups' nests: there the product is an upper bound, ``steps_exact`` False).

``ext`` of an output coordinate is the number of windows that fit, of any other
dimension the tile's rows. A global step's compute, ``ceil(max over PEs of the MACs /
SIMD lanes)``, is not a sum of products; it is the product of each group's largest unit
extent, so its total over the steps comes from combining each group's histogram of those
extents over its busiest unit's nest (exact for one level). Nothing here enumerates the
whole nest: each group's own positions are walked once (memoised per incoming range).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from math import prod

import numpy as np

from metronome.spec.layer import Layer, LayerType
from metronome.spec.mapping import MapDirective, Mapping
from metronome.spec.window import (
    FILTER_OF,
    INPUT_OF,
    OUTPUT_OF,
    input_row,
    outputs_within,
    whole_windows_tile,
    window_rows,
)

__all__ = ["ExactCounts", "exact_counts"]

_GROUP_OF = {"Y": "Y", "R": "Y", "Y'": "Y", "X": "X", "S": "X", "X'": "X"}

Ranges = tuple[tuple[int, int], ...]
"""Half-open ``(lo, hi)`` per held dimension of a group, in the group's order."""


@dataclass(frozen=True, slots=True)
class ExactCounts:
    """What the executed loop nest does, counted exactly."""

    macs: int
    """MACs performed (repeats included)."""
    steps: int
    """Global lock-step steps."""
    top_steps: int
    """Steps of the top level's loops."""
    pe_steps: int
    """PE-steps with work assigned (active PEs summed over the steps)."""
    tile_elems: tuple[int, ...]
    """Per tensor (the layer's order), its tile elements summed over the PE-steps."""
    steps_exact: bool
    """False where a nested level has a fold with every unit idle (two SpatialMaps of
    different extents at that level): the sim spends one step on such a fold, the
    product over groups the other groups' whole nests (an upper bound)."""
    compute_cycles: int
    """Sum over the global steps of ``ceil(busiest PE's MACs / simd_lanes)``: exact for
    one level; with nested levels each group follows the nest of its busiest unit
    (the units of a level step through their nests together, so where they hold edge
    tiles of different shapes the sum is a close lower bound)."""
    idle_steps: int = 0
    """One level: the steps at which no PE has a MAC (tiles holding no whole window)."""
    after_idle: int = 0
    """One level (or a nested level of one step per top position): the steps with a
    MAC right after a step without one."""
    last_idle: bool = False
    """One level (or a nested level of one step per top position): the last step has
    no MAC (so it finalises no output)."""
    after_idle_by_dim: tuple[tuple[str, int], ...] = ()
    """:attr:`after_idle` split by the top-level loop whose carry leads to the step
    (the loop's dimension): which tiles that step receives follows from the loop."""
    working_top_steps: int = 0
    """Top-level steps in which some PE has a MAC (one level, or a nested level of one
    step per top position; otherwise all the top steps)."""
    row_walk: bool = False
    """The top level maps an output coordinate (Y', X') and walks its filter dimension
    (R, S) over more than one position: the case enumeration turns the pair into a
    walk over every input row, steps of which hold no window."""


@dataclass(slots=True)
class _Walk:
    """Sums of one group over a unit's nest below a level (see the module docstring)."""

    linear: list[int]
    """Per factor (MACs, active PE-steps, each tensor's tile): the sum over PE-steps."""
    length: int
    """The group's factor of the nest's lock-step length."""
    busiest: dict[int, int]
    """Over the lock-step steps of the nest's busiest unit (the one with the most MACs
    of this group): how many steps have each MAC factor of the busiest PE."""


@dataclass(slots=True)
class _Planned:
    """One directive at one level, over the ranges a unit received: its tile size and
    offset (a strided tile cut to whole windows), positions, and for an output
    coordinate the first output and the outputs the ranges give."""

    directive: MapDirective
    size: int
    offset: int
    positions: int
    first: int
    extent: int


_Shape = tuple[
    tuple[str, ...],
    dict[str, int],
    tuple[str, ...],
    tuple[str, ...],
    tuple[tuple[str, ...], ...],
    tuple[tuple[int, ...], ...],
    tuple[tuple[int, int], ...],
    tuple[tuple[str, int, int], ...],
    bool,
]
_SHAPES: dict[tuple[LayerType, tuple[str, ...]], _Shape] = {}


def _shape(layer: Layer, dims: tuple[str, ...]) -> _Shape:
    """What a group of ``dims`` reads of ``layer``'s type alone (not its sizes), shared
    by every layer of the type: the held dimensions and their indices,
    the loop dimensions, the leaf's dimensions, per factor (MACs, active PE-steps, each
    tensor's tile) its dimensions and their positions among the leaf's, the sliding
    pairs' indices, per sliding input dimension held with its filter the dimension and
    both indices, and whether the group is one dimension without a sliding window."""
    key = (layer.type, dims)
    known = _SHAPES.get(key)
    if known is not None:
        return known
    held = tuple([d for d in dims if d not in INPUT_OF])
    index = {d: i for i, d in enumerate(held)}
    loop_dims = tuple([d for d in layer.loop_dims if d in dims])
    leaf_dims = tuple(dict.fromkeys((*loop_dims, *held)))
    factor_dims = (loop_dims, (), *[tuple([d for d in t.dims if d in dims]) for t in layer.tensors])
    where = {d: i for i, d in enumerate(leaf_dims)}
    leaf_factors = tuple([tuple([where[d] for d in factor]) for factor in factor_dims])
    pairs = tuple((index[d], index[f]) for d, f in FILTER_OF.items() if d in index and f in index)
    sliding = tuple(
        (d, index[d], index[FILTER_OF[d]]) for d in held if d in FILTER_OF and FILTER_OF[d] in index
    )
    line = len(held) == 1 and held[0] not in _GROUP_OF
    shape = (held, index, loop_dims, leaf_dims, factor_dims, leaf_factors, pairs, sliding, line)
    _SHAPES[key] = shape
    return shape


class _Group:
    """The directives of one group of coupled dimensions, executed on their own."""

    def __init__(
        self,
        layer: Layer,
        levels: list[list[MapDirective]],
        units: list[int],
        dims: tuple[str, ...],
        sizes: dict[str, int],
        strides: dict[str, int],
        leaves: dict[tuple[object, ...], dict[tuple[int, ...], list[int]]],
    ) -> None:
        """``levels``: per level, its directives of ``dims`` in order; ``units``: per
        level, its units where the group has a SpatialMap there, else 1; ``leaves``:
        the leaf memos of the layer's groups so far, by what a leaf reads."""
        self.layer = layer
        shape = _shape(layer, dims)
        self.held, self.index, self.loop_dims, self.leaf_dims = shape[:4]
        self.factor_dims, self.leaf_factors, self.pairs, sliding, self.line = shape[4:]
        self.levels = levels
        self.units = units
        self.kinds = [_kind(lvl) if lvl else _NO_LOOP for lvl in self.levels]
        """Per level: its SpatialMaps' indices, whether it has temporal tiles of held
        dimensions alone, and whether it maps an output coordinate."""
        self.memo: dict[tuple[int, Ranges], _Walk] = {}
        self.unit_macs: dict[Ranges, int] = {}
        """:meth:`_macs_below` per tile asked."""
        self.top_positions = 0
        """Positions of the group's top-level loops."""
        self.top_idle = 0
        """Top-level positions at which every unit of the group is idle."""
        self.nested_idle = False
        """Some nested level has a position at which every unit of the group is idle."""
        self.sizes = sizes
        self.strides = strides
        self.slides = tuple(
            [
                (k, f, sizes[FILTER_OF[d]] - 1, strides[d], sizes[OUTPUT_OF[d]] * strides[d])
                for d, k, f in sliding
            ]
        )
        """Per sliding input dimension held with its filter: their indices, the
        filter's reach ``R - 1``, the stride and ``Y' s`` (see :meth:`_canonical`)."""
        self.pair = self.pairs[0] if len(self.held) == 2 and len(self.pairs) == 1 else None
        """The held dimensions are one sliding pair alone: its indices (for
        :meth:`_leaf_of`'s key)."""
        index = self.index
        self.reads = tuple(
            [
                (index[d], -1, 1, 0)
                if d not in INPUT_OF
                else (
                    index[INPUT_OF[d]],
                    index[FILTER_OF[INPUT_OF[d]]],
                    strides[INPUT_OF[d]],
                    sizes[d],
                )
                for d in self.leaf_dims
            ]
        )
        """Per dimension of :attr:`leaf_dims`, what :meth:`_leaf` reads: a held one's
        index (and -1); an output coordinate's input and filter indices, stride and
        size."""
        self.leaves = leaves.setdefault((self.reads, self.leaf_factors), {})
        """:meth:`_leaf_of`'s memo, shared with the layer's groups that read the same
        (``Y``/``R``/``Y'`` and ``X``/``S``/``X'`` of equal sizes and strides)."""

    def _outputs(self, ranges: Ranges, out: str) -> tuple[int, int]:
        """First output and count the rows and filter rows of ``ranges`` give."""
        in_dim = INPUT_OF[out]
        a, ah = ranges[self.index[in_dim]]
        b, bh = ranges[self.index[FILTER_OF[in_dim]]]
        first, last = outputs_within(a, ah - a, b, bh - b, self.strides[in_dim])
        first, last = max(0, first), min(self.sizes[out] - 1, last)
        return first, max(0, last - first + 1)

    def _leaf_of(self, ranges: Ranges) -> list[int]:
        """:meth:`_leaf`, memoised by what it reads: each range's extent and, per sliding
        pair held, the input rows' start less the filter rows' (the windows that fit
        depend on nothing else), so tiles moved together along a pair share one entry."""
        pair = self.pair
        if pair is not None:
            (lo, hi), (lo2, hi2) = ranges
            key: tuple[int, ...] = (hi - lo, hi2 - lo2, ranges[pair[0]][0] - ranges[pair[1]][0])
        else:
            parts = [hi - lo for lo, hi in ranges]
            for k, f in self.pairs:
                parts.append(ranges[k][0] - ranges[f][0])
            key = tuple(parts)
        cached = self.leaves.get(key)
        if cached is None:
            cached = self.leaves[key] = self._leaf(ranges)
        return cached

    def _leaf(self, ranges: Ranges) -> list[int]:
        # One PE's extent per leaf dimension: a held one's rows; an output
        # coordinate's windows that fit in its input and filter rows (as
        # :meth:`_outputs` counts them; none where either holds no row).
        ext = []
        for k, f, stride, top in self.reads:
            a, ah = ranges[k]
            if f < 0:
                ext.append(ah - a)
                continue
            b, bh = ranges[f]
            if ah <= a or bh <= b:
                ext.append(0)
                continue
            # :func:`outputs_within`'s first and last output, clamped to the layer.
            first, last = max(0, -((b - a) // stride)), min(top - 1, (ah - bh) // stride)
            ext.append(max(0, last - first + 1))
        out = []
        for positions in self.leaf_factors:
            value = 1
            for at in positions:
                value *= ext[at]
            out.append(value)
        return out

    def walk(self, level: int, ranges: Ranges) -> _Walk:
        """The group's sums over one unit's nest from ``level`` on, given its ranges."""
        if self.line:
            ranges = ((0, ranges[0][1] - ranges[0][0]),)
        elif level > 0:
            ranges = self._canonical(ranges)
        key = (level, ranges)
        cached = self.memo.get(key)
        if cached is not None:
            return cached
        if self.line and len(self.levels[level]) <= 1:
            result = self._walk_line(level, ranges[0][1])
            self.memo[key] = result
            return result
        units = self.units[level]
        last = level == len(self.levels) - 1
        if last and not self.levels[level]:
            # No loop of the group here: one position, the unit's own tile.
            sums = self._leaf_of(ranges)
            if level == 0:
                self.top_positions += 1
            result = _Walk(list(sums), 1, {max(0, sums[0]): 1})
            self.memo[key] = result
            return result
        spatial, plain, outputs = self.kinds[level]
        # Temporal tiles alone: every position's tile is its base.
        if plain and units == 1 and self._in_one(level, ranges):
            result = self._walk_through(level, ranges, last)
            self.memo[key] = result
            return result
        plan = self._plan(level, ranges)
        if plain and units == 1:
            result = self._walk_plain(level, ranges, plan, spatial, last)
            self.memo[key] = result
            return result
        if len(spatial) == 1 and not outputs:
            result = self._walk_folds(level, ranges, plan, spatial[0], units, last)
            self.memo[key] = result
            return result
        if last and not plain:
            result = self._walk_last(level, ranges, plan, spatial, units)
            self.memo[key] = result
            return result
        linear = [0] * len(self.factor_dims)
        length = 0
        top = level == 0
        hist: dict[int, int] = {}
        for base, fold in self._positions(ranges, plan, spatial, units):
            held: dict[Ranges, int] = {}
            for u in range(units):
                tile = (
                    tuple(base) if plain else self._unit_tile(base, plan, spatial, fold * units + u)
                )
                if tile is not None:
                    held[tile] = held.get(tile, 0) + 1
            any_active = bool(held)
            best, busiest, chosen = self._units_walked(level, held, last, linear)
            length += best if any_active else 1
            self.nested_idle = self.nested_idle or (level > 0 and not any_active)
            _add(hist, chosen if chosen else {busiest: 1})
            if top:
                self.top_positions += 1
                self.top_idle += 0 if any_active else 1
        result = _Walk(linear, length, hist)
        self.memo[key] = result
        return result

    def _in_one(self, level: int, ranges: Ranges) -> bool:
        """Whether every directive of a level of temporal tiles takes one position over
        ``ranges`` (its tile holds all of its rows), so its one tile is ``ranges``."""
        index = self.index
        for d in self.levels[level]:
            lo, hi = ranges[index[d.dim]]
            if lo > hi or hi - lo > self._tile_size(d, ranges)[0]:
                return False
        return True

    def _walk_through(self, level: int, ranges: Ranges, last: bool) -> _Walk:
        """:meth:`_walk_plain` of a level whose temporal tiles each take one position
        (:meth:`_in_one`): the one tile, its walk below (or leaf) as it is."""
        tile = self._canonical(ranges) if self.slides else ranges
        if level == 0:
            self.top_positions += 1
        if last:
            sums = self._leaf_of(tile)
            return _Walk(list(sums), 1, {max(0, sums[0]): 1})
        w = self.walk(level + 1, tile)
        busiest = dict(w.busiest) if w.busiest else {w.linear[0]: 1}
        return _Walk(list(w.linear), max(0, w.length), busiest)

    def _walk_plain(
        self, level: int, ranges: Ranges, plan: list[_Planned], spatial: Sequence[int], last: bool
    ) -> _Walk:
        """:meth:`walk` of a level whose directives are all temporal tiles of held
        dimensions: one unit, every position's tile its base. Positions whose tiles
        share one walk (the same canonical ranges) are summed once, times their count."""
        # The positions are the product of each directive's tiles of its dimension
        # (:meth:`_positions` without the SpatialMaps and output coordinates).
        counts: dict[Ranges, int] = {}
        base = list(ranges)
        axes: list[tuple[int, _Planned]] = []
        for planned in plan:
            k = self.index[planned.directive.dim]
            lo, hi = ranges[k]
            if planned.positions == 1:
                base[k] = (min(lo, hi), min(lo + planned.size, hi))
            else:
                axes.append((k, planned))
        if len(axes) == 1 and all(f != axes[0][0] for _, f, *_ in self.slides):
            # One directive moves, not over a filter: the other ranges' canonical form
            # is fixed, and only its own tiles move down (as :meth:`_canonical` does).
            k, planned = axes[0]
            lo, hi = ranges[k]
            size, offset = planned.size, planned.offset
            fixed = list(self._canonical(tuple(base)))
            rules = [s for s in self.slides if s[0] == k]
            own: dict[tuple[int, int], int] = {}
            first, last_full = 0, -1
            if len(rules) == 1 and fixed[rules[0][1]][1] > fixed[rules[0][1]][0]:
                # Whole tiles ``[a, a + m)`` with ``a >= R - 1`` and ``a + m <= Y' s``
                # move down to ``R - 1 + (a - R + 1) mod s``: counted per residue.
                _, _, reach, stride, limit = rules[0]
                first = max(0, -((lo - reach) // offset))
                last_full = min(planned.positions - 1, (min(hi, limit) - size - lo) // offset)
                period = stride // math.gcd(offset, stride)
                for p in range(first, min(first + period, last_full + 1)):
                    a = reach + (lo + p * offset - reach) % stride
                    own[(a, a + size)] = (last_full - p) // period + 1
            # The edge positions, before and after the whole ones [first, last_full].
            whole = (first, last_full + 1) if first <= last_full else (0, 0)
            for p in (*range(whole[0]), *range(whole[1], planned.positions)):
                a = lo + p * offset
                t = (min(a, hi), min(a + size, hi))
                for _, f, reach, stride, limit in rules:
                    a, b = t
                    if fixed[f][1] > fixed[f][0] and a >= reach and b <= limit:
                        shift = (a - reach) // stride * stride
                        t = (a - shift, b - shift)
                own[t] = own.get(t, 0) + 1
            for t, n in own.items():
                fixed[k] = t
                counts[tuple(fixed)] = n
        else:
            canonical = self._canonical if self.slides else None
            moving = []
            for k, planned in axes:
                lo, hi = ranges[k]
                starts = range(lo, lo + planned.positions * planned.offset, planned.offset)
                moving.append((k, [(min(a, hi), min(a + planned.size, hi)) for a in starts]))
            for combo in product(*(tiles for _, tiles in moving)):
                for (k, _), t in zip(moving, combo, strict=True):
                    base[k] = t
                tile = canonical(tuple(base)) if canonical is not None else tuple(base)
                counts[tile] = counts.get(tile, 0) + 1
        linear = [0] * len(self.factor_dims)
        length = 0
        hist: dict[int, int] = {}
        for tile, n in counts.items():
            if last:
                sums, sub = self._leaf_of(tile), 1
                _add(hist, {max(0, sums[0]): 1}, n)
            else:
                w = self.walk(level + 1, tile)
                sums, sub = w.linear, w.length
                _add(hist, w.busiest if w.busiest else {sums[0]: 1}, n)
            for k, v in enumerate(sums):
                linear[k] += n * v
            length += n * max(0, sub)
            if level == 0:
                self.top_positions += n
        return _Walk(linear, length, hist)

    def _walk_folds(
        self, level: int, ranges: Ranges, plan: list[_Planned], si: int, units: int, last: bool
    ) -> _Walk:
        """:meth:`walk` of a level with one SpatialMap, of a held dimension, and no
        output-coordinate directive: a fold's active units are its first
        ``P - f U`` positions, their tiles the map's; units whose tiles share one walk
        (the same canonical ranges) are summed once, times their count, in the order
        they first occur (the busiest is the first with the most MACs)."""
        planned = plan[si]
        k = self.index[planned.directive.dim]
        rules = [s for s in self.slides if s[0] == k]
        moves_filter = any(s[1] == k for s in self.slides)
        linear = [0] * len(self.factor_dims)
        length = 0
        hist: dict[int, int] = {}
        top = level == 0
        for base, fold in self._positions(ranges, plan, [si], units):
            first = fold * units
            active = min(units, planned.positions - first)
            if active <= 0:
                length += 1
                self.nested_idle = self.nested_idle or level > 0
                _add(hist, {0: 1})
                if top:
                    self.top_positions += 1
                    self.top_idle += 1
                continue
            lo, hi = base[k]
            fixed = list(self._canonical(tuple(base)))
            seen: dict[Ranges, int] = {}
            size, offset, end = planned.size, planned.offset, first + active
            # Positions [head, tail) hold whole tiles [a, a + m) with a >= R - 1 and
            # a + m <= Y' s, which move down to ``R - 1 + (a - R + 1) mod s``: one per
            # residue is walked, counted for all of its positions (as in
            # :meth:`_walk_plain`). The runs before, within and after hold different
            # tiles, so ``seen`` keeps the order of first occurrence.
            head = tail = end
            period = 1
            if not moves_filter and len(rules) == 1:
                _, f, reach, stride, limit = rules[0]
                lowest = max(first, -((lo - reach) // offset))
                highest = min(end - 1, (min(hi, limit) - size - lo) // offset)
                if fixed[f][1] > fixed[f][0] and lowest <= highest:
                    head, tail = lowest, highest + 1
                    period = stride // math.gcd(offset, stride)
            walked = (*range(first, head), *range(head, min(head + period, tail)))
            for p in (*walked, *range(tail, end)):
                start = lo + p * offset
                t = (min(start, hi), min(start + size, hi))
                if moves_filter:
                    tile = list(base)
                    tile[k] = t
                    key = self._canonical(tuple(tile))
                else:
                    for _, f, reach, stride, limit in rules:
                        a, b = t
                        if fixed[f][1] > fixed[f][0] and a >= reach and b <= limit:
                            shift = (a - reach) // stride * stride
                            t = (a - shift, b - shift)
                    fixed[k] = t
                    key = tuple(fixed)
                n = (tail - 1 - p) // period + 1 if head <= p < tail else 1
                seen[key] = seen.get(key, 0) + n
            best, busiest, chosen = self._units_walked(level, seen, last, linear)
            length += best
            _add(hist, chosen if chosen else {busiest: 1})
            if top:
                self.top_positions += 1
        return _Walk(linear, length, hist)

    def _walk_last(
        self, level: int, ranges: Ranges, plan: list[_Planned], spatial: Sequence[int], units: int
    ) -> _Walk:
        """:meth:`walk` of the innermost level in general: each position lasts one step
        (its active units' PE tiles), its busiest unit the one whose leaf has the most
        MACs; the units' leaves are added as they come (no tile needs grouping)."""
        linear = [0] * len(self.factor_dims)
        hist: dict[int, int] = {}
        top = level == 0
        leaf_of = self._leaf_of
        length = 0
        # Without output coordinates a unit's tile is its SpatialMaps' tiles over the
        # base (as :meth:`_unit_tile` gives); units past a map's positions idle, and
        # so do the units after them.
        simple = not self.kinds[level][2]
        moves = [(self.index[plan[i].directive.dim], plan[i]) for i in spatial] if simple else []
        limit = min((p.positions for _, p in moves), default=0)
        # Where every sliding pair's two ranges move by the same offset per unit, the
        # units whose maps cut whole tiles share one leaf key (:meth:`_leaf_of`: the
        # extents and each pair's start difference stay): one leaf, times their count.
        step = {k: planned.offset for k, planned in moves}
        shared = simple and all(step.get(k, 0) == step.get(f, 0) for k, f in self.pairs)
        if shared and len(spatial) == len(plan):
            # No temporal tile: every fold holds the level's ranges. Where every active
            # unit's maps cut whole tiles, they all share one leaf: the first
            # ``ceil(limit / U)`` folds are active, the rest idle.
            whole = min(
                (ranges[k][1] - ranges[k][0] - planned.size) // planned.offset + 1
                for k, planned in moves
            )
            if whole >= limit:
                cut = list(ranges)
                for k, planned in moves:
                    cut[k] = (cut[k][0], cut[k][0] + planned.size)
                sums = leaf_of(tuple(cut))
                folds = -(-plan[spatial[0]].positions // units)
                idle = folds - -(-limit // units)
                hist[sums[0]] = folds - idle
                if idle:
                    hist[0] = hist.get(0, 0) + idle
                    self.nested_idle = self.nested_idle or level > 0
                if top:
                    self.top_positions += folds
                    self.top_idle += idle
                return _Walk([limit * v for v in sums], folds, hist)
        # Per base: the units cutting whole tiles, and their leaf.
        whole_of: dict[Ranges, tuple[int, list[int]]] = {}
        for base, fold in self._positions(ranges, plan, spatial, units):
            busiest = 0
            any_active = False
            first = fold * units
            if shared and first < limit:
                known = whole_of.get(held := tuple(base))
                if known is None:
                    whole = min(
                        (base[k][1] - base[k][0] - planned.size) // planned.offset + 1
                        for k, planned in moves
                    )
                    cut = base.copy()
                    for k, planned in moves:
                        cut[k] = (cut[k][0], cut[k][0] + planned.size)
                    known = whole_of[held] = (whole, leaf_of(tuple(cut)) if whole > 0 else [])
                whole, sums = known
                n = min(first + units, limit, whole) - first
                if n > 0:
                    any_active = True
                    busiest = sums[0]
                    for k, v in enumerate(sums):
                        linear[k] += n * v
                    first += n
            for position in range(first, fold * units + units):
                if simple:
                    if position >= limit:
                        break
                    cut = base.copy()
                    for k, planned in moves:
                        lo, hi = cut[k]
                        start = lo + position * planned.offset
                        cut[k] = (min(start, hi), min(start + planned.size, hi))
                    tile: Ranges | None = tuple(cut)
                else:
                    tile = self._unit_tile(base, plan, spatial, position)
                if tile is None:
                    break
                any_active = True
                sums = leaf_of(tile)
                busiest = max(busiest, sums[0])
                for k, v in enumerate(sums):
                    linear[k] += v
            length += 1
            self.nested_idle = self.nested_idle or (level > 0 and not any_active)
            hist[busiest] = hist.get(busiest, 0) + 1
            if top:
                self.top_positions += 1
                self.top_idle += 0 if any_active else 1
        return _Walk(linear, length, hist)

    def _units_walked(
        self, level: int, held: dict[Ranges, int], last: bool, linear: list[int]
    ) -> tuple[int, int, dict[int, int]]:
        """Adds the nests of one position's units (``held``: each tile and how many
        units hold it, in unit order) to ``linear``; (the longest nest, the busiest
        unit's MACs, its histogram: the first unit with the most MACs)."""
        best, busiest = 0, 0
        chosen: dict[int, int] = {}
        for tile, n in held.items():
            if last:
                sums, sub = self._leaf_of(tile), 1
                busiest = max(busiest, sums[0])
            else:
                w = self.walk(level + 1, tile)
                sums, sub = w.linear, w.length
                if not chosen or sums[0] > busiest:
                    chosen, busiest = w.busiest, sums[0]
            for k, v in enumerate(sums):
                linear[k] += n * v
            best = max(best, sub)
        return best, busiest, chosen

    def _canonical(self, ranges: Ranges) -> Ranges:
        """``ranges`` moved down by a multiple of the stride along each sliding input
        dimension whose rows no window can cross the layer's edge from
        (``lo >= R - 1`` and ``hi <= Y' s``: no output is clipped, so every count
        below is the same), to share one walk among the interior tiles."""
        out = list(ranges)
        for k, f, reach, stride, limit in self.slides:
            lo, hi = out[k]
            if out[f][1] > out[f][0] and lo >= reach and hi <= limit:
                shift = (lo - reach) // stride * stride
                out[k] = (lo - shift, hi - shift)
        return tuple(out)

    def _below(self, level: int, extent: int) -> _Walk:
        """A unit's sums given ``extent`` rows (the leaf below the innermost level)."""
        if level == len(self.levels) - 1:
            leaf = self._leaf(((0, extent),))
            return _Walk(leaf, 1, {leaf[0]: 1})
        return self.walk(level + 1, ((0, extent),))

    def _walk_line(self, level: int, extent: int) -> _Walk:
        """:meth:`walk` of a one-dimension group in closed form: a directive of size
        ``m`` and offset ``o`` over ``N`` rows takes ``P = 1 + ceil(max(0, N-m)/o)``
        positions, all full tiles but the last, ``min(m, N - (P-1) o)`` rows; a
        SpatialMap's folds hold ``U`` positions each, the last fold the rest."""
        top = level == 0
        if not self.levels[level]:
            if top:
                self.top_positions += 1
            return self._below(level, extent)
        d = self.levels[level][0]
        size, offset = d.size, d.offset
        positions = 1 + -(-max(0, extent - size) // offset)
        full = self._below(level, size) if positions > 1 else None
        tail = self._below(level, min(size, extent - (positions - 1) * offset))
        units = self.units[level] if d.spatial else 1
        folds = -(-positions // units)
        in_last_fold = positions - (folds - 1) * units
        linear = list(tail.linear)
        if full is not None:
            linear = [
                t + (positions - 1) * f for t, f in zip(tail.linear, full.linear, strict=True)
            ]
        length = tail.length
        if full is not None:
            length = (folds - 1) * full.length + (
                max(full.length, tail.length) if in_last_fold > 1 else tail.length
            )
        if top:
            self.top_positions += folds
        hist: dict[int, int] = {}
        if full is not None:
            _add(hist, full.busiest, folds - 1)
        last_fold = tail
        if full is not None and in_last_fold > 1 and full.linear[0] >= tail.linear[0]:
            last_fold = full
        _add(hist, last_fold.busiest)
        return _Walk(linear, length, hist)

    def _positions(
        self, ranges: Ranges, plan: list[_Planned], spatial: Sequence[int], units: int
    ) -> list[tuple[list[tuple[int, int]], int]]:
        """Per position of the level's loops: the ranges with every temporal
        directive's tile applied, and the fold of the SpatialMaps (whose loop takes
        ``ceil(P / U)`` positions; a second SpatialMap rides on the first)."""
        out: list[tuple[list[tuple[int, int]], int]] = [(list(ranges), 0)]
        for i, planned in enumerate(plan):
            d = planned.directive
            if d.spatial:
                if i == spatial[0]:
                    folds = -(-planned.positions // units)
                    out = [(base, f) for base, _ in out for f in range(folds)]
                continue
            if d.dim in INPUT_OF:
                continue
            k = self.index[d.dim]
            lo, hi = ranges[k]
            tiles = [
                (min(lo + p * planned.offset, hi), min(lo + p * planned.offset + planned.size, hi))
                for p in range(planned.positions)
            ]
            grown = []
            for base, fold in out:
                for tile in tiles:
                    new = base.copy()
                    new[k] = tile
                    grown.append((new, fold))
            out = grown
        # Output-coordinate directives are temporal loops too, applied per unit (the
        # order of the positions does not matter to any count).
        for planned in plan:
            if not planned.directive.spatial and planned.directive.dim in INPUT_OF:
                out = [
                    ([*base, (p, -1)], fold) for base, fold in out for p in range(planned.positions)
                ]
        return out

    def _unit_tile(
        self,
        base: list[tuple[int, int]],
        plan: list[_Planned],
        spatial: Sequence[int],
        position: int,
    ) -> Ranges | None:
        """A unit's ranges at SpatialMap position ``position`` given the temporal tiles
        ``base`` (followed by the output-coordinate loops' positions); None: idle."""
        held = len(self.held)
        tile = base[:held]
        extra = iter(base[held:])
        outputs: list[tuple[_Planned, int]] = []
        for planned in plan:
            d = planned.directive
            if not d.spatial:
                if d.dim in INPUT_OF:
                    outputs.append((planned, next(extra)[0]))
                continue
            if position >= planned.positions:
                return None
            if d.dim in INPUT_OF:
                outputs.append((planned, position))
                continue
            k = self.index[d.dim]
            lo, hi = tile[k]
            start = lo + position * planned.offset
            tile[k] = (min(start, hi), min(start + planned.size, hi))
        for planned, position in outputs:
            in_dim = INPUT_OF[planned.directive.dim]
            k, f = self.index[in_dim], self.index[FILTER_OF[in_dim]]
            stride = self.strides[in_dim]
            o_lo = planned.first + min(position * planned.offset, planned.extent)
            o_hi = planned.first + min(position * planned.offset + planned.size, planned.extent)
            lo = input_row(o_lo, tile[f][0], stride)
            rows = window_rows(o_hi - o_lo, tile[f][1] - tile[f][0], stride) if o_hi > o_lo else 0
            tile[k] = (lo, lo + rows)
        return tuple(tile)

    def _plan(self, level: int, ranges: Ranges) -> list[_Planned]:
        """The level's directives of this group over ``ranges``, in the level's order."""
        plan: list[_Planned] = []
        for d in self.levels[level]:
            size, offset = self._tile_size(d, ranges)
            if d.dim in INPUT_OF:
                first, extent = self._outputs(ranges, d.dim)
            else:
                lo, hi = ranges[self.index[d.dim]]
                first, extent = lo, hi - lo
            positions = 1 + -(-max(0, extent - size) // offset)
            plan.append(_Planned(d, size, offset, positions, first, extent))
        return plan

    def _tile_size(self, d: MapDirective, ranges: Ranges) -> tuple[int, int]:
        """Size and offset of ``d``'s tiles over ``ranges``: a strided input tile that
        holds a whole window of the filter rows is cut to whole windows."""
        size, offset = d.size, d.offset
        if d.dim in FILTER_OF:
            stride = self.strides[d.dim]
            lo_r, hi_r = ranges[self.index[FILTER_OF[d.dim]]]
            if stride > 1 and size >= hi_r - lo_r:
                size, offset = whole_windows_tile(size, hi_r - lo_r, stride)
        return size, offset

    def _macs_below(self, tile: Ranges) -> int:
        """A top-level unit's MACs of this group given its tile (one level: the PE's;
        else summed over the nest below)."""
        macs = self.unit_macs.get(tile)
        if macs is None:
            if len(self.levels) == 1:
                macs = self._leaf_of(tile)[0]
            else:
                macs = self.walk(1, tile).linear[0]
            self.unit_macs[tile] = macs
        return macs

    def _residues(self, plan: list[_Planned], base: list[tuple[int, int]]) -> tuple[int, int, int]:
        """Of a level of temporal tiles alone over the ranges ``base`` (its first
        position's): where a single directive moves, over a sliding dimension with its
        filter held, the positions [head, tail) whose tiles are whole interior ones
        (``a >= R - 1``, ``a + m <= Y' s``) and the period of their canonical ranges
        (positions one period apart share one walk); else (0, 0, 1)."""
        moving = [p for p in plan if p.positions > 1]
        if len(moving) != 1:
            return 0, 0, 1
        planned = moving[0]
        k = self.index[planned.directive.dim]
        rules = [s for s in self.slides if s[0] == k]
        if len(rules) != 1 or any(s[1] == k for s in self.slides):
            return 0, 0, 1
        _, f, reach, stride, limit = rules[0]
        lo, hi = planned.first, planned.first + planned.extent
        size, offset = planned.size, planned.offset
        lowest = max(0, -((lo - reach) // offset))
        highest = min(planned.positions - 1, (min(hi, limit) - size - lo) // offset)
        if base[f][1] <= base[f][0] or highest < lowest:
            return 0, 0, 1
        return lowest, highest + 1, stride // math.gcd(offset, stride)

    def mac_positions(self) -> tuple[np.ndarray, bool]:
        """Over the positions of the group's top-level loops, in the level's order (a
        SpatialMap's fold loop where the first SpatialMap stands): does some unit's
        tile hold a MAC (one level: the tile is the PE's; with nested levels some
        PE's of the unit's nest); and whether every position does."""
        whole = tuple((0, self.sizes[d]) for d in self.held)
        plan = self._plan(0, whole)
        units = self.units[0]
        spatial = [i for i, p in enumerate(plan) if p.directive.spatial]
        plain = not any(p.directive.spatial or p.directive.dim in INPUT_OF for p in plan)
        # :meth:`_positions` nests the held dimensions' loops (the fold loop where the
        # first SpatialMap stands) in the level's order, then the output coordinates'.
        loops = [
            i
            for i, p in enumerate(plan)
            if (i == spatial[0] if p.directive.spatial else p.directive.dim not in INPUT_OF)
        ]
        loops += [i for i, p in enumerate(plan) if not p.directive.spatial and i not in loops]
        shape = [
            -(-plan[i].positions // units) if plan[i].directive.spatial else plan[i].positions
            for i in loops
        ]
        within = all(d.offset <= d.size for level in self.levels for d in level)
        if self.line and within and whole[0][1] > 0:
            # One dimension whose tiles never step past its end: every tile at every
            # level holds rows, so every position has MACs.
            return np.ones(shape, dtype=bool), True
        flat: list[bool] = []
        macs_of = self._macs_below
        listed = self._positions(whole, plan, spatial, units)
        head, tail, period = self._residues(plan, listed[0][0]) if plain else (0, 0, 1)
        for p, (base, fold) in enumerate(listed):
            if plain:
                if head + period <= p < tail:
                    flat.append(flat[head + (p - head) % period])
                else:
                    flat.append(macs_of(tuple(base)) > 0)
                continue
            has_mac = False
            for u in range(units):
                tile = self._unit_tile(base, plan, spatial, fold * units + u)
                if tile is not None and macs_of(tile) > 0:
                    has_mac = True
                    break
            flat.append(has_mac)
        nz = np.array(flat, dtype=bool).reshape(shape)
        return np.transpose(nz, np.argsort(loops)), False


def _kind(level: Sequence[MapDirective]) -> tuple[tuple[int, ...], bool, bool]:
    """A level's SpatialMaps' indices, whether its directives are all temporal tiles of
    held dimensions, and whether one maps an output coordinate."""
    spatial = tuple([i for i, d in enumerate(level) if d.spatial])
    outputs = any(d.dim in INPUT_OF for d in level)
    return spatial, not spatial and not outputs, outputs


_NO_LOOP: tuple[tuple[int, ...], bool, bool] = ((), True, False)
""":func:`_kind` of a level without a directive of the group."""


def _add(into: dict[int, int], hist: dict[int, int], times: int = 1) -> None:
    """Adds ``times`` x ``hist`` to the histogram ``into``."""
    for value, count in hist.items():
        into[value] = into.get(value, 0) + count * times


_GROUPINGS: dict[tuple[LayerType, tuple[tuple[str, ...], ...]], tuple[tuple[str, ...], ...]] = {}


def _groups(layer: Layer, levels: Sequence[Sequence[MapDirective]]) -> tuple[tuple[str, ...], ...]:
    """The groups of coupled dimensions (sliding pairs; SpatialMaps sharing a level),
    which depend only on the layer's type and each level's SpatialMaps' dimensions (so
    are kept per those)."""
    maps = tuple([tuple([d.dim for d in lvl if d.spatial]) for lvl in levels])
    key = (layer.type, maps)
    known = _GROUPINGS.get(key)
    if known is None:
        known = _GROUPINGS[key] = _grouping(layer, maps)
    return known


def _grouping(layer: Layer, maps: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """:func:`_groups` given each level's SpatialMaps' dimensions."""
    dims = [*dict.fromkeys((*layer.mappable_dims, *layer.loop_dims))]
    parent = {d: _GROUP_OF.get(d, d) if _GROUP_OF.get(d, d) in dims else d for d in dims}

    def find(d: str) -> str:
        while parent[d] != d:
            d = parent[d]
        return d

    for lvl in maps:
        spatial = [find(d) for d in lvl]
        for other in spatial[1:]:
            root, new = find(spatial[0]), find(other)
            if root != new:
                parent[new] = root
    out: dict[str, list[str]] = {}
    for d in dims:
        out.setdefault(find(d), []).append(d)
    return tuple([tuple(v) for _, v in sorted(out.items())])


def exact_counts(
    layer: Layer, mapping: Mapping, num_pes: int, simd_lanes: int = 1
) -> ExactCounts | None:
    """Exact counts of ``mapping`` on ``layer`` (None where a level names a dimension
    twice, or mixes an input dimension with its output coordinate: no such nest runs)."""
    levels = mapping.level_directives()
    for lvl in levels:
        named = [_GROUP_OF.get(d.dim, d.dim) if d.dim not in ("R", "S") else d.dim for d in lvl]
        if len(set(named)) != len(named) or len({d.dim for d in lvl}) != len(lvl):
            return None
    units = mapping.units_per_level(num_pes)
    sizes = dict(layer.sizes)
    strides = {d: layer.stride(d) for d in FILTER_OF}
    grouping = _groups(layer, levels)
    # Each group's directives and units per level, in one pass over the directives.
    of = {d: g for g, dims in enumerate(grouping) for d in dims}
    split: list[list[list[MapDirective]]] = [[[] for _ in levels] for _ in grouping]
    owned = [[1] * len(levels) for _ in grouping]
    for i, lvl in enumerate(levels):
        for d in lvl:
            g = of.get(d.dim)
            if g is not None:
                split[g][i].append(d)
                if d.spatial:
                    owned[g][i] = units[i]
    groups = []
    leaves: dict[tuple[object, ...], dict[tuple[int, ...], list[int]]] = {}
    for dims, own, held_units in zip(grouping, split, owned, strict=True):
        group = _Group(layer, own, held_units, dims, sizes, strides, leaves)
        whole = tuple((0, sizes[d]) for d in group.held)
        groups.append((group, group.walk(0, whole)))
    unowned = prod(
        u for lvl, u in zip(levels, units, strict=True) if not any(d.spatial for d in lvl)
    )
    linear = [
        unowned * prod(w.linear[k] for _, w in groups) for k in range(len(groups[0][1].linear))
    ]
    top_steps, steps = _top_steps(groups)
    compute = _compute_cycles(groups, simd_lanes)
    without_mac = _step_histogram(groups).get(0, 0)
    idle = 0
    last_idle = False
    after_by_dim: dict[str, int] = {}
    # With nested levels the top level's loops are the steps' odometer only where every
    # top position is one global step.
    nested_idle = any(g.nested_idle for g, _ in groups)
    one_step = len(levels) == 1 or (steps == top_steps and not nested_idle)
    if one_step and without_mac > 0:
        idle, after_by_dim, last_idle = _idle_runs(groups, levels[0])
    return ExactCounts(
        macs=linear[0],
        steps=steps,
        top_steps=top_steps,
        pe_steps=linear[1],
        steps_exact=not nested_idle,
        tile_elems=tuple(linear[2:]),
        compute_cycles=compute,
        idle_steps=idle,
        after_idle=sum(after_by_dim.values()),
        after_idle_by_dim=tuple(sorted(after_by_dim.items())),
        last_idle=last_idle,
        working_top_steps=top_steps - idle,
        row_walk=_row_walk(layer, levels[0]),
    )


def _row_walk(layer: Layer, top: Sequence[MapDirective]) -> bool:
    """Whether ``top`` maps an output coordinate next to a walk of its filter dimension
    (:attr:`ExactCounts.row_walk`)."""
    walked = {d.dim for d in top if d.size < layer.size(d.dim)}
    rows = {d.dim for d in top if d.size == 1}
    return any(FILTER_OF[ref] in walked for ref, out in OUTPUT_OF.items() if out in rows)


def _top_steps(groups: list[tuple[_Group, _Walk]]) -> tuple[int, int]:
    """(top-level steps, global steps): a top position whose units are all idle lasts
    one step whatever the other groups' nests."""
    top = prod(g.top_positions for g, _ in groups)
    steps = prod(w.length - g.top_idle for g, w in groups)
    for i, (g, _) in enumerate(groups):
        if g.top_idle:
            others = prod(h.top_positions for j, (h, _) in enumerate(groups) if j != i)
            steps += g.top_idle * others
    return top, steps


def _compute_cycles(groups: list[tuple[_Group, _Walk]], simd: int) -> int:
    """Sum over the steps of ``ceil(busiest PE's MACs / simd)``: the busiest PE's MACs
    are the product of each group's largest unit extent, so the groups' histograms of
    those extents combine into the steps' histogram."""
    return sum(n * -(-v // simd) for v, n in _step_histogram(groups).items())


def _step_histogram(groups: list[tuple[_Group, _Walk]]) -> dict[int, int]:
    """How many steps have each busiest-PE MAC count (the groups' histograms combined)."""
    hist: dict[int, int] = {1: 1}
    for _, w in groups:
        own = w.busiest
        combined: dict[int, int] = {}
        for a, na in hist.items():
            for b, nb in own.items():
                combined[a * b] = combined.get(a * b, 0) + na * nb
        hist = combined
    return hist


def _idle_runs(
    groups: list[tuple[_Group, _Walk]], level: Sequence[MapDirective]
) -> tuple[int, dict[str, int], bool]:
    """(Steps without a MAC, per dimension of the loop whose carry leads to it: the
    steps with a MAC right after one without, whether the last step has none) of a
    one-level nest (or of the top level where each of its positions is one global
    step). The steps are an odometer over
    the level's loops (a SpatialMap's fold loop, a second SpatialMap riding on the
    first); a step has a MAC iff every group's tile holds one (in some unit, for the
    SpatialMaps' group; with nested levels in some PE of the unit's nest). Step ``t``
    follows ``t - 1`` by a carry at loop ``i``: loop ``i`` advances, the loops inside
    it go from their last position to their first, the loops outside stay. A group
    without a loop at or inside ``i`` keeps its tile; so over the carries at ``i`` the
    steps with a MAC after one without number ``prod_kept N_g x (prod_moved (A_g +
    B_g) - prod_moved A_g)``, ``N_g`` the group's positions with a MAC, ``A_g`` /
    ``B_g`` its carries with a MAC after one with / without (each group's own
    positions only)."""
    axes: list[MapDirective] = []
    for i, d in enumerate(level):
        if not d.spatial or not any(e.spatial for e in level[:i]):
            axes.append(d)
    owned = []
    for g, _ in groups:
        mine = [a for a, d in enumerate(axes) if d.dim in {e.dim for e in g.levels[0]}]
        if any(d.spatial for d in g.levels[0]):
            mine = sorted({*mine, *(a for a, d in enumerate(axes) if d.spatial)})
        owned.append((mine, *g.mac_positions()))
    sizes = [0] * len(axes)
    for mine, nz, _ in owned:
        for a, n in zip(mine, nz.shape, strict=True):
            sizes[a] = n

    def count(nz: np.ndarray, full: bool, where: tuple[slice, ...] = ()) -> int:
        """Positions with a MAC in ``nz[where]`` (of a group with one at every
        position: the positions the slices take)."""
        if not full:
            return int(nz[where].sum())
        cuts = where or (slice(None),) * nz.ndim
        return prod(len(range(n)[cut]) for n, cut in zip(nz.shape, cuts, strict=True))

    with_mac = prod(count(nz, full) for _, nz, full in owned)
    after: dict[str, int] = {}
    for i, size in enumerate(sizes):
        if size <= 1:
            continue
        kept, moved_all, moved_both = 1, 1, 1
        for mine, nz, full in owned:
            if not any(a >= i for a in mine):
                kept *= count(nz, full)
                continue
            # The positions before and after each carry at ``i``: loop ``i`` at ``p`` and
            # ``p + 1``, the loops inside it at their last and first positions.
            before: list[slice] = []
            after_carry: list[slice] = []
            for a in mine:
                if a > i:
                    before.append(slice(-1, None))
                    after_carry.append(slice(0, 1))
                elif a == i:
                    before.append(slice(0, size - 1))
                    after_carry.append(slice(1, size))
                else:
                    before.append(slice(None))
                    after_carry.append(slice(None))
            if full:
                moved_all *= count(nz, full, tuple(after_carry))
                moved_both *= count(nz, full, tuple(after_carry))
                continue
            old, new = nz[tuple(before)], nz[tuple(after_carry)]
            moved_all *= int(new.sum())
            moved_both *= int((new & old).sum())
        if kept * (moved_all - moved_both):
            dim = axes[i].dim
            after[dim] = after.get(dim, 0) + kept * (moved_all - moved_both)
    last = all(full or bool(nz[(-1,) * nz.ndim]) for _, nz, full in owned)
    return prod(sizes) - with_mac, after, not last
