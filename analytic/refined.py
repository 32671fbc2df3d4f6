"""The refined model's terms: what the realistic machine does, in closed form.

The engine (:mod:`metronome.analytic.engine`) enumerates the same iteration cases as MAESTRO's
model; given the hardware it replaces these of its terms (docs/refined-model.md has the
equations and why):

* *reuse across wraps*: a sweep of the loops inside directive ``c`` touches, per unit,
  ``F(c) = sum_T prod_d extent_T,d(c)`` elements (a dimension whose directive is inside
  ``c`` contributes the unit's extent over the whole sweep, any other its tile); an LRU
  buffer of ``cap`` elements still holds, when ``c`` advances and the inner loops wrap,
  everything touched one sweep ago iff ``F(c) <= cap`` (stack distance below capacity),
  and none of it otherwise (a cyclic sweep larger than LRU's capacity always misses);
* *partial sums accumulate*: an output tile leaves a unit when it is evicted or touched
  for the last time; the sessions of an output element are the product of the positions
  of the reduction loops ``r`` between whose positions it is evicted (an output loop
  iterates inside ``r`` and ``F(r) > cap``);
* *off-chip*: each tensor element is fetched once while L2 holds it and refetched only
  when a top-level loop's sweep does not fit in L2 (the same stack-distance rule with the
  whole array's footprint); the channel's time is a floor under the whole layer, with the
  first fetch before the first step and the final write-back after the last;
* *network*: each topology's hottest link (the L2 port's link) serialises a step's
  traffic (:func:`noc_delay`); spatial reductions cost ``ceil(log2 copies)`` adder
  latencies where the copies meet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from math import prod

from metronome.spec.hardware import UNBOUNDED, Hardware
from metronome.spec.window import FILTER_OF, windows

from .cases import EDGE, State
from .traffic import LevelModel, TensorView

__all__ = [
    "PES_READ",
    "LevelReuse",
    "Machine",
    "array_footprints",
    "ceil_div",
    "collection_hold",
    "drain_hops",
    "evicted_psums",
    "level_reuse",
    "machine_of",
    "noc_delay",
    "output_elems",
    "path_fill",
    "plane_hold",
    "positions",
    "reach_hops",
    "reduction_delay",
    "tensor_elems",
    "touched_rows",
]


@dataclass(frozen=True, slots=True)
class Machine:
    """The hardware as the refined terms use it."""

    num_pes: int
    l1_elems: int
    l2_elems: int
    noc_bw: int
    noc_latency: int
    hop_latency: int
    topology: str
    offchip_bw: int
    offchip_latency: int
    adder_latency: int
    l2_read_bw: int
    l2_write_bw: int
    mesh_l2_corner: bool = True
    reach_hops: int = -1
    """Router-to-router hops of the longest route from L2 to a PE that holds data
    (:func:`reach_hops`; -1: the whole array's longest)."""
    drain_hops: int = -1
    """The same into L2 (:func:`drain_hops`; differs on the systolic array, which
    drains from the right column and the bottom row)."""


def machine_of(hardware: Hardware) -> Machine:
    """The refined model's view of ``hardware``."""
    return Machine(
        num_pes=hardware.num_pes,
        l1_elems=hardware.l1_size_elems,
        l2_elems=hardware.l2_size_elems,
        noc_bw=hardware.noc_bw_elems_per_cycle,
        noc_latency=hardware.noc_latency_cycles,
        hop_latency=hardware.noc_hop_latency_cycles,
        topology=hardware.topology,
        offchip_bw=hardware.offchip_bw_elems_per_cycle,
        offchip_latency=hardware.offchip_latency_cycles,
        adder_latency=hardware.adder_latency_cycles,
        l2_read_bw=hardware.l2_read_bw_elems_per_cycle,
        l2_write_bw=hardware.l2_write_bw_elems_per_cycle,
        mesh_l2_corner=hardware.mesh_l2_position == "corner",
    )


PES_READ = frozenset({"mesh", "systolic"})
"""The topologies whose :func:`reach_hops` and :func:`drain_hops` read the PEs that
hold data (elsewhere every PE is as far)."""


def reach_hops(machine: Machine, pes: Iterable[int]) -> int:
    """Router-to-router hops of the longest route from L2 to one of ``pes`` (the PEs
    that ever hold data): a phase's last element arrives, and its plane is held, for
    the farthest PE it reaches, not for the array's farthest corner. The mesh lays PE
    ``i`` at column ``i % cols``, row ``i // cols`` of the most square grid
    (``cols = ceil(sqrt(N))``), L2 at the corner or over the top edge's middle column,
    XY routes; on the systolic array a PE ``(x, y)`` is fed through the nearer of its
    row's and its column's injection link, ``min(x, y)`` neighbour hops; elsewhere every
    PE is equally far (tree) or the array's figure is kept."""
    if machine.topology == "systolic":
        pes = pes or range(machine.num_pes)
        return max((_systolic_hops(machine.num_pes, i, False) for i in pes), default=0)
    if machine.topology != "mesh":
        return _path_hops(machine)
    cols = math.isqrt(machine.num_pes - 1) + 1 if machine.num_pes > 1 else 1
    attach = 0 if machine.mesh_l2_corner else cols // 2
    return max((abs(i % cols - attach) + i // cols for i in pes), default=0)


def drain_hops(machine: Machine, pes: Iterable[int]) -> int:
    """Neighbour hops of the longest route from one of ``pes`` into L2 on the systolic
    array: a PE ``(x, y)`` drains towards the nearer of its row's last PE and its
    column's lowest, whose link leaves for L2 (docs/simulator.md, "Topologies"); -1
    elsewhere (the distribution's figure is kept)."""
    if machine.topology != "systolic":
        return -1
    return max((_systolic_hops(machine.num_pes, i, True) for i in pes), default=0)


@dataclass(frozen=True, slots=True)
class LevelReuse:
    """Per directive of one level analysis: does a sweep of the loops inside it fit the
    unit's buffer; and the share of MAESTRO's per-step output egress that leaves (the
    footprints are per directive too)."""

    fits: tuple[bool, ...]
    output_share: float
    footprints: tuple[int, ...]
    unit_share: float = 1.0
    """The share of a unit's steps after which its partial sums leave (each group of
    units reducing the same outputs sends once)."""
    leaving: float = 1.0
    """The share of steps in which partial sums leave at all: kept reduction loops with
    an output loop inside them hold every output until their last position, whose
    steps then all send (the others, inside every output loop, spread the sending)."""
    distinct: float = 1.0
    """The share of the output tiles leaving that are distinct outputs: a temporal
    directive on an output dimension whose tiles overlap (size above offset) touches
    an output in consecutive positions, and where the sweep inside it fits the unit
    holds it between them, so it leaves once (:func:`distinct_share`)."""
    first_kept: tuple[bool, ...] = ()
    """Per directive: what a sweep of the loops inside it leaves in the buffer (its
    footprint without the outputs that left) fits, so the next sweep's first tile is
    still held, though the sweep does not fit (LRU then evicts each next tile before
    it comes back)."""
    split: tuple[int, int, str] = (-1, 0, "")
    """(directive, its positions, how its partial sums leave) of a temporal reduction
    loop whose last tile fills fewer units of a level below than its full tiles
    (``-1``: none). Held in L1 across it, the units its last tile leaves idle send at
    its next-to-last position, the others at its last: ``"burst"`` with an output loop
    inside it (every step of the two positions sends), ``"turns"`` without (the groups
    alternate within each sweep); ``"each"``: its sweep does not fit, so at every
    position the units the tile fills send."""
    next_loop: tuple[int, ...] = ()
    """Per directive, the first directive inside it that takes more than one position
    (``-1``: none)."""


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for ``a >= 0``, ``b > 0``."""
    return -(-a // b)


def positions(states: tuple[State, ...]) -> int:
    """How many positions a directive takes (the occurrences of its states)."""
    return sum([s.occurrences for s in states])


def _extent(
    model: LevelModel,
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
    strides: dict[str, int],
    view: TensorView,
    inside: int,
    array: bool = False,
    per_pe: dict[str, float] | None = None,
    short: int = -1,
) -> int:
    """A unit's footprint of ``view`` over one sweep of the directives after ``inside``
    (``array``: the footprint of all the level's units together; ``per_pe``: of one of
    its PEs, each dimension a level below spreads scaled by its PE's share of the tile;
    ``short``: a spatial directive whose last fold leaves the unit idle)."""
    total: float = 1
    mapped, directives = model.tiles.mapped, model.directives
    for dim, i, counted in view.by_tensor_dim:
        d = directives[i]
        tile = mapped[counted] if counted in mapped else dims.get(dim, 1)
        if tile < 1:
            tile = 1
        if i <= inside:
            if array and d.spatial:
                # The units of one fold: tiles ``offset`` apart.
                step = d.offset if counted == dim else d.offset // strides.get(dim, 1)
                step = max(step, 1)
                total *= min(_whole(dims, strides, dim, counted), tile + (model.units - 1) * step)
            else:
                total *= tile
        elif d.spatial and not array:
            folds = positions(per_directive[i]) - (1 if i == short else 0)
            total *= min(_whole(dims, strides, dim, counted), folds * tile)
        else:
            total *= _whole(dims, strides, dim, counted)
        if per_pe:
            total *= per_pe.get(counted, 1.0)
    return math.ceil(total)


def _sweeps(
    model: LevelModel,
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
    strides: dict[str, int],
    view: TensorView,
    array: bool = False,
    per_pe: dict[str, float] | None = None,
) -> list[int]:
    """:func:`_extent` of ``view`` per ``inside`` from 0 to the number of directives
    (the last: no loop inside), each computed once: it depends on ``inside`` only
    through the innermost of ``view``'s directives at or outside it."""
    # Each of the view's dimensions contributes one factor inside ``inside`` and
    # another outside it (:func:`_extent`'s, taken once each, multiplied in its order).
    lowest = 0 if 0 in view.order else -1
    mapped, directives = model.tiles.mapped, model.directives
    factors: list[tuple[int, int, int, float | None]] = []
    for dim, i, counted in view.by_tensor_dim:
        d = directives[i]
        tile = mapped[counted] if counted in mapped else dims.get(dim, 1)
        if tile < 1:
            tile = 1
        if array and d.spatial:
            step = d.offset if counted == dim else d.offset // strides.get(dim, 1)
            step = max(step, 1)
            within = min(_whole(dims, strides, dim, counted), tile + (model.units - 1) * step)
        else:
            within = tile
        beyond = 0
        if i > lowest:
            # (Asked for only where some sweep has the directive outside.)
            if d.spatial and not array:
                beyond = min(
                    _whole(dims, strides, dim, counted), positions(per_directive[i]) * tile
                )
            else:
                beyond = _whole(dims, strides, dim, counted)
        factors.append((i, within, beyond, per_pe.get(counted, 1.0) if per_pe else None))
    # The innermost of the view's directives at or outside ``inside`` changes only at
    # its directives: one value per run of ``inside`` between two of them.
    out: list[int] = []
    marks = sorted(set(view.order))
    ends = [*marks[1:], len(model.directives) + 1] if marks else []
    if not marks or marks[0] > 0:
        ends.insert(0, marks[0] if marks else len(model.directives) + 1)
        marks.insert(0, -1)
    start = 0
    for innermost, end in zip(marks, ends, strict=True):
        total: float = 1
        for i, within, beyond, share in factors:
            total *= within if i <= innermost else beyond
            if share is not None:
                total *= share
        out += [math.ceil(total)] * (end - start)
        start = end
    return out


def _whole(dims: dict[str, int], strides: dict[str, int], dim: str, counted: str) -> int:
    """The whole extent of ``dim`` (counted as ``counted``: an output coordinate counts
    the windows that fit)."""
    if counted != dim:
        return max(windows(dims[dim], dims.get(FILTER_OF[dim], 1), strides.get(dim, 1)), 1)
    return dims.get(dim, 1)


def array_footprints(
    model: LevelModel,
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
    strides: dict[str, int],
    array: bool = True,
) -> tuple[int, ...]:
    """Per directive ``c`` of the top level, what all its units touch over one sweep of
    the loops inside ``c`` (L2's stack distance when ``c`` advances): a spatial
    directive inside ``c`` sweeps its whole dimension, one at or outside ``c`` spans
    the units of its current fold (``array=False``: what one unit touches, the
    footprints of :func:`level_reuse` without a per-PE split)."""
    n = len(model.directives)
    # Outputs are revisited inside ``c`` from the outermost reduction loop that iterates.
    revisited = min([r for r in model.non_output if positions(per_directive[r]) > 1], default=n)
    totals = [0] * n
    for v in model.inputs:
        sweep = _sweeps(model, dims, per_directive, strides, v, array)
        for c in range(n):
            totals[c] += sweep[c]
    output = _sweeps(model, dims, per_directive, strides, model.output, array)
    return tuple([total + output[c if c >= revisited else n] for c, total in enumerate(totals)])


def evicted_psums(
    model: LevelModel,
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
    strides: dict[str, int],
    l2_elems: int,
    unit_sweeps: Callable[[], tuple[int, ...]],
    l1_elems: int,
    counts: tuple[int, int, int, int],
) -> int:
    """Read-modify-write reads of partial sums that find them evicted from L2, so that
    each is written back and fetched back from off-chip. ``counts``: (outputs, partial
    sums written to L2, read-modify-write reads, top-level steps); ``unit_sweeps()``: a
    unit's footprint per directive (its L1 holds ``l1_elems``; asked for only where
    it matters).

    L2 is exact LRU and of one step evicts its inputs and weights before its outputs,
    so a partial sum written ``k`` steps before its next update survives iff L2 exceeds
    what the ``k - 1`` steps between touch. The update comes one sweep of the innermost
    top-level reduction loop ``r`` with an output loop iterating inside it later
    (``n`` steps, touching the inputs of the sweep and ``w`` partial sums per step:
    ``D(k) = (k - 1) / n x (inputs + n w)``), except at ``r``'s last position: partial
    sums leave a unit's L1 once LRU evicts them, ``delta = floor(l1 n / F_unit(r))``
    steps after their update, but at their last touch at once, so the final update
    comes ``n - delta`` steps after the one before (docs/refined-model.md,
    "Off-chip")."""
    outputs, written, rmw, top_steps = counts
    if l2_elems >= UNBOUNDED or written <= 0 or rmw <= 0:
        return 0
    w = written / max(top_steps, 1)
    n_dirs = len(model.directives)
    output_dirs = set(model.output.order)
    for r in reversed(model.non_output):
        if positions(per_directive[r]) <= 1:
            continue
        inside = [j for j in range(r + 1, n_dirs) if positions(per_directive[j]) > 1]
        if not any(j in output_dirs for j in inside):
            continue
        n = prod(positions(per_directive[j]) for j in inside)
        inputs = sum(_extent(model, dims, per_directive, strides, v, r, True) for v in model.inputs)

        delta = 0
        if l1_elems < UNBOUNDED and unit_sweeps()[r] > 0:
            delta = min(n, l1_elems * n // unit_sweeps()[r])
        # Outputs with more than one session meet their final update once.
        final = min(rmw, round(outputs * (1 - _idle_share(model, dims, per_directive, r))))
        sweep = inputs + n * w
        return round(
            (rmw - final) * _missed(n, n, sweep, w, l2_elems)
            + final * _missed(n - delta, n, sweep, w, l2_elems)
        )
    return 0


def _missed(k: float, n: int, sweep: float, w: float, l2_elems: int) -> float:
    """The share of a step's ``w`` partial sums LRU evicted ``k`` steps after their
    write, the ``k - 1`` steps between touching ``(k - 1) / n`` of a sweep's ``sweep``
    elements."""
    if k <= 1:
        return 0.0
    others = (k - 1) / n * sweep
    return 1.0 - min(max(l2_elems - others, 0.0), w) / w


def _idle_share(
    model: LevelModel,
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
    r: int,
) -> float:
    """The share of the level's outputs held by units that idle in the last fold of
    the level's first spatial directive, if it lies inside ``r`` and folds more than
    once: ``(U - last) (folds - 1) / P`` with ``P`` its positions, ``last`` the units of
    its last fold (0 if it does not index the output)."""
    j = model.first_spatial
    if j <= r or j not in model.output.order:
        return 0.0
    folds = positions(per_directive[j])
    d = model.directives[j]
    extent = dims.get(d.dim, 1)
    if folds < 2 or d.offset <= 0:
        return 0.0
    total = 1 + ceil_div(max(extent - d.size, 0), d.offset)
    last = total - (folds - 1) * model.units
    if not 0 < last < model.units:
        return 0.0
    return (model.units - last) * (folds - 1) / total


def level_reuse(
    model: LevelModel,
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
    strides: dict[str, int],
    capacity: int,
    reduced_below: dict[str, int] | None = None,
    per_pe: dict[str, float] | None = None,
) -> LevelReuse:
    """Which wraps keep their data, and the output share, of one level analysis
    (``reduced_below``: reduction dimensions a nested level spreads over its units, with
    the extent its units cover at once)."""
    reduced_below = reduced_below or {}
    n = len(model.directives)
    taken = tuple(map(positions, per_directive))
    reductions = [r for r in model.non_output if taken[r] > 1]

    views = (*model.inputs, model.output)
    swept = [_sweeps(model, dims, per_directive, strides, v, per_pe=per_pe) for v in views]

    def footprint(c: int) -> tuple[int, int]:
        """(the sweep's footprint, what of it stays after the sweep: outputs touched
        for the last time leave)."""
        inputs = sum([sweep[c] for sweep in swept[:-1]])
        # Outputs leave a unit at their last touch: the sweep holds them only while a
        # reduction loop at or outside ``c`` will come back to them.
        revisited = any(r <= c for r in reductions)
        out = swept[-1][c if revisited else n]
        return inputs + out, inputs + (out if revisited else 0)

    sweeps = [footprint(c) for c in range(n)]
    foot = tuple(f for f, _ in sweeps)
    fits = tuple(capacity >= UNBOUNDED or f <= capacity for f in foot)
    first_kept = tuple(capacity >= UNBOUNDED or k <= capacity for _, k in sweeps)
    output_dirs = set(model.output.order)

    def own(view: TensorView, r: int) -> int:
        """The step's own tile of ``view`` within a sweep of the loops inside ``r``
        (none if no loop inside ``r`` over its dimensions iterates: every step of the
        sweep touches the same tile)."""
        if not any(j > r and taken[j] > 1 for j in view.coupled):
            return 0
        return swept[views.index(view)][n]

    kept: float = 1
    spread, groups = 1, 1
    split: tuple[int, int, str] = (-1, 0, "")
    for r in model.non_output:
        p = taken[r]
        if p <= 1:
            continue
        lost = False
        revisited = any(j > r and taken[j] > 1 for j in output_dirs)
        if revisited and not fits[r]:
            # LRU evicts the oldest step's elements first, of one step its inputs and
            # weights before its outputs: a step's partial sums survive the other
            # steps of the sweep as far as the buffer exceeds what those touch.
            tile = own(model.output, r)
            mine = sum(own(v, r) for v in (*model.inputs, model.output))

            def sessions_of(sweep: int, tile: int = tile, mine: int = mine, p: int = p) -> float:
                """An output's sessions over ``r`` for a unit sweeping ``sweep``."""
                kept = min(max(capacity - (sweep - mine), 0), tile) / tile if tile else 0.0
                return 1 + (p - 1) * (1 - kept)

            sessions = sessions_of(foot[r])
            # Units idle in the last fold of a spatial directive inside ``r`` sweep one
            # fold less, and may keep their partial sums where the others do not.
            idle = _idle_share(model, dims, per_directive, r)
            if idle > 0:
                short = sum(
                    _extent(
                        model,
                        dims,
                        per_directive,
                        strides,
                        v,
                        r,
                        per_pe=per_pe,
                        short=model.first_spatial,
                    )
                    for v in (*model.inputs, model.output)
                )
                sessions = (1 - idle) * sessions + idle * sessions_of(short)
            kept *= p / sessions
            lost = sessions >= p
        # Units that reduce the same outputs but finish at different positions (the last
        # tile of a reduction spread over units fills fewer of them) each send their
        # partial sums when they are done: the outputs leave once per group.
        d = model.directives[r]
        edge = any(s.position == EDGE or s.partial_last_unit for s in per_directive[r])
        ragged = edge and d.spatial
        if edge and d.dim in reduced_below:
            # Units a level below spreads the reduction over: their last fold is filled
            # differently by the edge tile than by a full one.
            cover = reduced_below[d.dim]
            full, last = model.tiles.mapped.get(d.dim, 0), model.tiles.mapped_edge.get(d.dim, 0)
            ragged = full % cover != last % cover
        below = ragged and not d.spatial and d.dim in reduced_below
        if not revisited or fits[r]:
            kept *= p
            spread *= 1 if revisited else p
            groups = 2 if ragged else groups
            if below:
                split = (r, p, "burst" if revisited else "turns")
        elif below and lost:
            split = (r, p, "each")
    return LevelReuse(
        fits,
        min(groups / kept, 1.0),
        foot,
        1.0 / kept,
        spread / kept,
        distinct_share(model, dims, per_directive, strides, capacity, per_pe, swept),
        first_kept,
        split,
        _next_loops(taken),
    )


def _next_loops(taken: tuple[int, ...]) -> tuple[int, ...]:
    """Per directive, the first directive inside it that takes more than one position
    (``-1``: none); ``taken``: each directive's positions."""
    out = []
    following = -1
    for i in range(len(taken) - 1, -1, -1):
        out.append(following)
        if taken[i] > 1:
            following = i
    return tuple(reversed(out))


def distinct_share(
    model: LevelModel,
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
    strides: dict[str, int],
    capacity: int,
    per_pe: dict[str, float] | None = None,
    swept: list[list[int]] | None = None,
) -> float:
    """Distinct outputs over the output tiles the cases send: a temporal directive on
    an output dimension (``N`` outputs, output tiles of ``m`` over ``P`` positions, the
    last one ``m_last``) whose tiles overlap touches ``(P - 1) m + m_last > N`` outputs;
    where the unit's ``capacity`` holds the sweep of the loops inside it, its inputs
    and weights and the ``(touched - N) / ((P - 1) m)`` of its outputs the next
    position touches again, an output stays between consecutive positions and leaves
    once, at its last touch: ``N`` leave. ``swept``: the inputs' and the output's
    :func:`_sweeps` over the same ``per_pe``, where the caller has them."""
    share = 1.0
    for dim, i, counted in model.output.by_tensor_dim:
        d = model.directives[i]
        p = positions(per_directive[i])
        if d.spatial or p <= 1:
            continue
        if counted != dim:
            whole = windows(dims[dim], dims.get(FILTER_OF[dim], 1), strides.get(dim, 1))
        else:
            whole = dims.get(dim, 1)
        tile = model.tiles.mapped.get(counted, 0)
        edge = any(st.position == EDGE for st in per_directive[i])
        last = model.tiles.mapped_edge.get(counted, 0) if edge else tile
        touched = (p - 1) * tile + last
        if not 0 < whole < touched:
            continue
        # Held between two positions: the sweep's inputs and weights and, of the
        # outputs it touches, those the next position touches again.
        again = (touched - whole) / ((p - 1) * tile)
        if swept is not None:
            held: float = sum(sweep[i] for sweep in swept[:-1])
            held += again * swept[-1][i]
        else:
            held = sum(
                _extent(model, dims, per_directive, strides, v, i, per_pe=per_pe)
                for v in model.inputs
            )
            held += again * _extent(
                model, dims, per_directive, strides, model.output, i, per_pe=per_pe
            )
        if capacity >= UNBOUNDED or held <= capacity:
            share *= whole / touched
    return share


def noc_delay(
    machine: Machine,
    messages: list[tuple[int, int]],
    bandwidth: int,
    latency: int,
    port: int = UNBOUNDED,
    nested: bool = False,
    below: int = 0,
    collect: bool = False,
) -> tuple[int, int]:
    """(cycles a phase holds its hottest link, cycles until its last element arrives).
    ``messages`` are (elements, flows) per tensor; ``port`` the L2 port's bandwidth,
    which caps the links at L2; ``collect``: towards L2. The bus sends a phase as one
    transaction: busy ``ceil(n/B)``, arrival ``L + ceil(n/B) - 1`` (MAESTRO's delay). The other
    topologies send one message per flow, each taking whole cycles on every link it
    crosses: the L2 link (bandwidth ``B``, on the fat tree ``B 2^(depth-1)``) carries
    every flow, ``sum_f ceil(n_f/B_L2)``; a PE's own link (``B``) every flow to that PE,
    ``sum_T ceil(n_T/f_T / B)``; the hottest of the two is busy, and the last element
    arrives ``max(links x hop_latency, 1) - 1`` cycles later, ``links`` those of the
    longest route from L2 (:func:`_route_links`; ``L`` is the bus's latency alone).
    ``nested``: a nested level's transfers, charged ``L - 1 + hops x hop_latency``.
    On the systolic array L2 has a link into each row and column (out of each edge
    PE): unless together they outrun the L2 port, the busiest of them serialises
    (:func:`_systolic_port_load`; ``below``: the PEs of a unit, 0 = not known, one
    link; ``collect``: towards L2). On the crossbar the tensors going to the same
    PEs travel as one message (:func:`_merged`)."""
    total = sum(n for n, _ in messages)
    if total <= 0:
        return 0, 0
    if machine.topology == "crossbar":
        # MAESTRO's latency is the bus's; the crossbar's links take the hop latency.
        latency = machine.hop_latency
    if machine.topology == "bus":
        busy = ceil_div(total, min(bandwidth, port))
        return busy, busy + max(latency, 1) - 1
    if machine.topology == "tree":
        # Every link of the fat tree, the one into the PE too, is a hop of the hop
        # latency: MAESTRO's ``L`` is the bus's alone (docs/refined-model.md, section 4).
        latency = machine.hop_latency
    root = min(_l2_link_bandwidth(machine, bandwidth), port)
    if machine.topology in ("crossbar", "systolic"):
        messages = _merged(messages)
    at_l2 = sum(f * ceil_div(ceil_div(n, f), root) for n, f in messages if n > 0)
    if machine.topology == "systolic" and not nested and below > 0:
        at_l2 = min(
            at_l2, _systolic_port_load(machine.num_pes, messages, root, port, below, collect)
        )
    at_pe = sum(ceil_div(ceil_div(n, f), bandwidth) for n, f in messages if n > 0)
    busy = max(at_l2, at_pe)
    if machine.topology == "mesh":
        # The L2 link is a hop too and the port between a router and its PE has no
        # latency: a distribution's last element is received a cycle after it entered
        # that port, a collection's once it crossed the L2 link.
        hops = _path_hops(machine) + 1
        if collect:
            return busy, busy - 1 + (hops - 1) * machine.hop_latency + max(machine.hop_latency, 1)
        if nested:
            return busy, busy + hops * machine.hop_latency
        return busy, busy + max(hops * machine.hop_latency, 1) - 1
    if machine.topology == "systolic" and collect and not nested and machine.drain_hops >= 0:
        # Partial sums converge on the exit links: the farthest PE's stream crosses
        # its route's hops while the nearer ones queue on the exit link, so the last
        # element lands after the slower of the two.
        hop = machine.hop_latency
        far = (_route_links(machine, collect) - 1) * hop + at_pe
        return busy, max(far, busy) + max(hop, 1) - 1
    if nested and machine.topology in ("bus", "systolic"):
        # A nested level's steps pay only their transfers' latency, one after another
        # (docs/refined-model.md, "A step"): kept as MAESTRO's L per transfer.
        return busy, busy + max(latency, 1) - 1 + _path_hops(machine) * machine.hop_latency
    return busy, busy + max(_route_links(machine, collect) * machine.hop_latency, 1) - 1


def plane_hold(machine: Machine, busy: int, arrival: int) -> int:
    """Cycles a distribution holds its plane, given its hottest link's ``busy`` cycles
    and its last element's ``arrival`` (docs/simulator.md: a phase is done when every
    hop has released its link, and a hop starts once its head has come in): until its
    head is on the last link and its last element has entered that link. The bus's
    taps take no link time (held until the head reaches them, or the medium's
    serialisation); the mesh's port into a PE has no latency (held until the arrival);
    the systolic array's edge PEs hang off L2 by one link (held for the serialisation);
    elsewhere the last link's hop latency comes after its release."""
    if arrival <= 0:
        return 0
    if machine.topology == "bus":
        return max(busy, arrival - busy + 1)
    if machine.topology == "mesh":
        return arrival
    if machine.topology == "systolic":
        # L2 feeds the left column and the top row over one link each: the hop into
        # an edge PE is the phase's only one there.
        return busy
    return max(busy, arrival - max(machine.hop_latency, 1) + 1)


def collection_hold(machine: Machine, arrival: int) -> int:
    """Cycles a mesh collection whose partial sums land after ``arrival`` cycles holds
    its plane: until its last element has entered the L2 link, whose hop latency it
    crosses after (docs/simulator.md, "Link timing"). Elsewhere 0: the other
    topologies' arrival terms are not the route's (section 4 of docs/refined-model.md)."""
    if arrival <= 0 or machine.topology != "mesh":
        return 0
    return max(arrival - max(machine.hop_latency, 1) + 1, 1)


def _merged(messages: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """One message per set of PEs: the elements every receiving PE needs (the tensors
    multicast to all of them) travel together, and so do each PE's own parts of the
    tensors partitioned over the same units. ``messages`` are (elements, flows) per
    tensor; tensors with the same number of flows go to the same PE sets."""
    by_flows: dict[int, int] = {}
    for n, f in messages:
        if n > 0:
            by_flows[f] = by_flows.get(f, 0) + n
    return sorted((n, f) for f, n in by_flows.items())


def path_fill(machine: Machine) -> int:
    """Cycles a phase holds its plane beyond its hottest link's serialisation: the
    route's router-to-router hops, which the first message crosses before the L2 link
    (collection) or the last one after it (distribution)."""
    return _path_hops(machine) * machine.hop_latency


def _route_links(machine: Machine, collect: bool = False) -> int:
    """Links of the longest route from L2 to a PE that take the hop latency: the
    crossbar's port and PE link; the mesh's L2 link and router hops (a router's PE
    port takes none); the tree's L2 link and one per level; on the systolic array the
    injection link and the neighbour links down the shorter side."""
    n = machine.num_pes
    if machine.topology == "crossbar":
        return 2
    if machine.topology == "systolic":
        if collect and machine.drain_hops >= 0:
            return machine.drain_hops + 1
        if machine.reach_hops >= 0:
            return machine.reach_hops + 1
        return _systolic_links(n)
    return _path_hops(machine) + 1


def _l2_link_bandwidth(machine: Machine, bandwidth: int) -> int:
    """The link at L2: the fat tree doubles bandwidth at each level towards the root."""
    if machine.topology != "tree" or machine.num_pes <= 1:
        return bandwidth
    depth = max(math.ceil(math.log2(machine.num_pes)), 1)
    return int(min(UNBOUNDED, bandwidth << (depth - 1)))


def _grid(n: int) -> tuple[int, int]:
    """(columns, rows) of the grid a mesh or systolic array of ``n`` PEs fills row by
    row: the most square one (docs/simulator.md, "Topologies")."""
    cols = max(math.ceil(math.sqrt(n)), 1)
    return cols, -(-n // cols)


def _systolic_port_load(
    n: int, messages: list[tuple[int, int]], bandwidth: int, port: int, below: int, collect: bool
) -> int:
    """Cycles the busiest L2 link of a systolic array of ``n`` PEs is busy with
    ``messages`` ((elements, flows); flow ``u`` goes to unit ``u``, PEs ``[u below,
    (u + 1) below)``, a lone flow to every unit), each message crossing a link once
    (multicasts are trees). Where the links together outrun the L2 port they share it
    as one server: every message serialises (docs/simulator.md, "Topologies")."""
    links, count = _systolic_routes(n, collect)
    if count * bandwidth > port:
        return sum(f * ceil_div(ceil_div(m, f), bandwidth) for m, f in messages if m > 0)
    load = [0] * count
    for m, f in messages:
        if m <= 0:
            continue
        cycles = ceil_div(ceil_div(m, f), bandwidth)
        if f <= 1:
            for k in range(count):
                load[k] += cycles
            continue
        for u in range(f):
            for k in {links[pe] for pe in range(u * below, min((u + 1) * below, n))}:
                load[k] += cycles
    return max(load, default=0)


@cache
def _systolic_routes(n: int, collect: bool) -> tuple[tuple[int, ...], int]:
    """Per PE of a systolic array of ``n`` PEs, the L2 link its route uses (an index),
    and how many links there are. Distribution enters at the left column (one link per
    row) and the top row (one per other column), each PE through the nearer (the
    column on a tie: breadth-first from L2 reaches the top row first); collection leaves
    through the right column and the PEs with none below, each PE towards the nearer
    of its row's last PE and its column's lowest."""
    cols, _ = _grid(n)
    ids: dict[int, int] = {}
    route = []
    for i in range(n):
        x, y = i % cols, i // cols
        if collect:
            row_end = min(cols - 1, n - 1 - y * cols)
            col_end = (n - 1 - x) // cols
            exit_pe = y * cols + row_end if row_end - x <= col_end - y else col_end * cols + x
        elif x == 0 or (y > 0 and x < y):
            exit_pe = y * cols
        else:
            exit_pe = x
        route.append(ids.setdefault(exit_pe, len(ids)))
    return tuple(route), len(ids)


@cache
def _systolic_hops(n: int, pe: int, collect: bool) -> int:
    """Neighbour hops between PE ``pe`` of a systolic array of ``n`` PEs and the edge
    PE whose link joins L2 (:func:`_systolic_routes`)."""
    cols, _ = _grid(n)
    x, y = pe % cols, pe // cols
    if collect:
        return min(min(cols - 1, n - 1 - y * cols) - x, (n - 1 - x) // cols - y)
    return min(x, y)


@cache
def _systolic_links(n: int) -> int:
    """Links of the longest route from L2 into a systolic array of ``n`` PEs: each PE is
    fed through the nearer of its row's and its column's injection link."""
    cols, _ = _grid(n)
    return max((min(i % cols, i // cols) for i in range(n)), default=0) + 1


def _path_hops(machine: Machine) -> int:
    """Router-to-router hops of the longest route from L2 (beyond the L2 link)."""
    if machine.reach_hops >= 0:
        return machine.reach_hops
    n = machine.num_pes
    if machine.topology == "mesh":
        # L2 at the corner router: the farthest PE, the last row's last or the row
        # above's last column.
        cols, rows = _grid(n)
        return max((n - 1) % cols + rows - 1, cols - 1 + rows - 2 if rows > 1 else 0)
    if machine.topology == "tree":
        return max(math.ceil(math.log2(n)), 1) if n > 1 else 0
    if machine.topology == "systolic":
        return _route_links(machine) - 1
    if machine.topology == "crossbar":
        return 1
    return 0


def reduction_delay(machine: Machine, copies: int) -> int:
    """Adder time of a spatial reduction of ``copies`` partial sums: an adder tree
    ``ceil(log2 copies) * adder_latency``."""
    if copies <= 1:
        return 0
    return math.ceil(math.log2(copies)) * machine.adder_latency


def output_elems(dims: dict[str, int], strides: dict[str, int], out_dims: tuple[str, ...]) -> int:
    """Output elements over ``dims``."""
    size = 1
    for dim in out_dims:
        if dim in FILTER_OF:
            size *= max(windows(dims[dim], dims[FILTER_OF[dim]], strides.get(dim, 1)), 0)
        else:
            size *= dims.get(dim, 1)
    return size


def touched_rows(levels: list[tuple[int, int] | None], extent: int) -> int:
    """Rows of a dimension of ``extent`` rows that some innermost tile reads, given per
    level the (size, offset) of its first directive on the dimension (None: none):
    tiles of ``m`` rows stepping by ``o >= m`` read ``P`` tiles' rows,
    ``P = 1 + ceil((N-m)/o)``, the last one clipped at ``N``; overlapping tiles read
    their union, as densely as the levels inside them read a tile."""
    if not levels:
        return extent
    head, rest = levels[0], levels[1:]
    if head is None or head[0] >= extent:
        return touched_rows(rest, extent)
    m, o = head
    inner = touched_rows(rest, m)
    if o >= m:
        steps = -(-(extent - m) // o)
        last = min(m, extent - steps * o)
        return steps * inner + touched_rows(rest, last)
    return extent if inner >= m else -(-extent * inner // m)


def tensor_elems(dims: dict[str, int], tensor_dims: tuple[str, ...], rows: dict[str, int]) -> int:
    """Elements of an input/weight tensor over ``dims`` that some tile touches
    (``rows[d]``: the rows of dimension ``d`` read, :func:`touched_rows`)."""
    return prod(rows.get(d, dims.get(d, 1)) for d in tensor_dims)
