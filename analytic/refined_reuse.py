"""The refined model's reuse and runtime terms of a case: what L1 and L2 hold across steps,
which steps overlap their transfers (double buffering), and the runtime from the executed
nest's exact counts (equations in docs/refined-model.md)."""

from __future__ import annotations

import math
from math import prod

from metronome.spec.hardware import UNBOUNDED
from metronome.spec.window import FILTER_OF, INPUT_OF, OUTPUT_OF

from .cases import EDGE, INIT, STEADY, State, enumerate_cases
from .context import LevelResult, _case_model, _Context, _Totals, replace
from .deviations import Quirks
from .groups import ExactCounts
from .refined import LevelReuse, Machine, ceil_div, positions
from .traffic import (
    LevelModel,
    TensorView,
    full_unit_tile,
    spatial_ingress,
    unit_new_part,
    unit_tile,
)


def _exact_runtime(
    exact: ExactCounts, totals: _Totals, carries: dict[str, float] | None = None
) -> None:
    """The top level's runtime and MACs over the executed nest's exact counts.

    The case enumeration gives each step's traffic and compute; its step count and
    MACs follow MAESTRO's per-directive states, which miscount partial filter maps next
    to sliding maps, overlapping reduction tiles and output-coordinate maps. The exact
    counts (:mod:`metronome.analytic.groups`) give the top level's steps ``S`` and the
    compute ``K`` of all global steps: the cases' mix is spread over the ``S`` steps
    (``scale = S / S_enum`` times each case's steps, its traffic over ``1 / scale``
    as many cycles of the network) and the compute part of every case's delay is
    scaled by ``kappa = K / (scale x K_enum)``. Where the enumeration's extra steps
    are its walk of every input row (``ExactCounts.row_walk``), its steps instead
    stand for executed steps by kind (:func:`_phantom_weights`; docs/refined-model.md,
    section 0, "one rule"), or, where the units do not hold what the walk's extra steps
    receive, by the loop whose carry leads to them (``carries``, :func:`_walk_carries`)."""
    enumerated = sum(occ for occ, _, _, _ in totals.deferred)
    if enumerated <= 0 or exact.top_steps <= 0:
        return
    working = exact.top_steps
    if 0 < exact.working_top_steps < exact.top_steps:
        # Steps without a MAC take no time and carry the cases' work to the others.
        working = exact.working_top_steps
    scale = working / enumerated
    fills = (
        _fill_share(exact.top_steps, scale, totals.weights, totals.ingress),
        _fill_share(exact.top_steps, scale, totals.weights, totals.egress),
    )
    kinds: list[tuple[float, float, tuple[float, float] | None]] = [(scale, 1 / scale, fills)] * 3
    if scale < 1 and exact.row_walk:
        kinds = _phantom_weights(working, totals) or kinds
    weighted = [kinds[kind] for kind in totals.carrying]
    if scale < 1 and exact.row_walk and carries is not None and working == exact.top_steps:
        weighted = [(carries.get(dim, 1.0), 1.0, (1.0, 1.0)) for dim in totals.changed]
        _drop_phantom_reads(totals, [w for w, _, _ in weighted])
    compute = sum(
        w * occ * k for (occ, _, k, _), (w, _, _) in zip(totals.deferred, weighted, strict=True)
    )
    kappa = exact.compute_cycles / compute if compute > 0 else 1.0
    # The nested steps' floors hold where the enumeration's global steps are the
    # executed ones (else its extra nested steps' transfers are not the executed ones').
    floors = totals.shrinks if exact.steps == totals.global_steps else [()] * len(weighted)
    # Cases sharing their step (engine._CaseStep) and kind ask for the same cost.
    costs: dict[tuple[object, ...], float] = {}
    terms = []
    for (occ, c, k, step), (w, spread, f), slack in zip(
        totals.deferred, weighted, floors, strict=True
    ):
        key = (step, c, k, id(slack), spread, f)
        cost = costs.get(key)
        if cost is None:
            cost = costs[key] = step(c + _shrunk(kappa, k, slack), spread, f)
        terms.append(w * occ * cost)
    totals.runtime = sum(terms)
    if exact.after_idle > 0:
        totals.runtime = max(totals.runtime, _after_idle_bound(exact, totals))
    if totals.macs > 0:
        ratio = exact.macs / totals.macs
        totals.l1_reads = [round(r * ratio) for r in totals.l1_reads]
        totals.l1_writes[2] = round(totals.l1_writes[2] * ratio)
    totals.macs = exact.macs


def _busiest_slack(below: list[LevelResult]) -> tuple[tuple[int, float, float], ...]:
    """The slack (:attr:`LevelResult.slack`) of the busiest nest of a case's units."""
    if not below:
        return ()
    if len(below) == 1:
        return below[0].slack
    return max(below, key=lambda r: r.runtime_exact).slack


def _shrunk(kappa: float, compute: float, slack: tuple[tuple[int, float, float], ...]) -> float:
    """How much a step's compute-dependent cost changes when the exact counts scale its
    compute ``compute`` by ``kappa``: on one level the compute itself; with a nested
    level each nested step's compute shrinks only until the step lasts as long as its
    transfers, ``-sum_i occ_i min(slack_i, (1 - kappa) C_i)`` (a nested step without a
    MAC still holds the network for what it receives; docs/refined-model.md,
    section 0)."""
    if not slack or kappa >= 1:
        return (kappa - 1) * compute
    return -sum(occ * min(extra, (1 - kappa) * c) for occ, extra, c in slack)


def _phantom_weights(
    steps: int, totals: _Totals
) -> list[tuple[float, float, tuple[float, float] | None]] | None:
    """Per kind of top-level case (first step, receiving inputs, receiving none): the
    executed steps each of its enumerated steps stands for, its traffic factor and its
    fills, where the enumeration counts more steps than the ``steps`` executed (working)
    ones: the first step is one; each receiving step is one executed step while there
    are enough, beyond that they gather (``r`` into ``steps - 1``: their traffic in one
    transfer, fills None, ``totals.gathered``); the steps receiving nothing fill the
    executed steps left (docs/refined-model.md, section 0). None where no step after
    the first receives (every step alike)."""
    counts = [0, 0, 0]
    for (occ, _, _, _), kind in zip(totals.deferred, totals.carrying, strict=True):
        counts[kind] += occ
    first, receiving, idle = counts
    rest = steps - first
    if receiving <= 0 or rest <= 0:
        return None
    held = min(receiving, rest)
    if held < receiving:
        # Each tensor arrives in ``min(n_T, h)`` of the ``h`` receiving steps, the rarer
        # ones with the more common (a gathered step takes all its parts' tiles).
        shares = [min(n, held) / held for n in totals.moving]
        per_step = [
            math.ceil(m / min(n, held)) if n else 0
            for m, n in zip(totals.moved, totals.moving, strict=True)
        ]
        cuts = sorted({s for s in shares if s > 0}, reverse=True)
        totals.gathered.clear()
        for i, cut in enumerate(cuts):
            below = cuts[i + 1] if i + 1 < len(cuts) else 0.0
            tier = tuple(v if s >= cut else 0 for v, s in zip(per_step, shares, strict=True))
            totals.gathered.append((cut - below, tier))
    return [
        (1.0, 1.0, (1.0, 1.0)),
        (held / receiving, receiving / held, None),
        ((rest - held) / idle if idle else 0.0, 1.0, (1.0, 1.0)),
    ]


def _walk_carries(
    exact: ExactCounts,
    model: LevelModel,
    per_directive: tuple[tuple[State, ...], ...],
    reuse: LevelReuse | None,
) -> dict[str, float] | None:
    """Per dimension of a top-level loop, the executed steps each enumerated step whose
    carry is at that loop stands for, where the enumeration walks every input row of an
    output coordinate of tile 1 (a row loop of size 1) and the units do not hold what
    its extra steps receive until an executed step with another filter row needs it (a
    sweep inside a walked filter directive does not fit): each step then moves its own
    tiles, and the executed nest is the same odometer with the row loop's ``P``
    positions ``P' = P S / S_enum``, so a carry at loop ``i`` happens ``prod_{j<i} P'_j
    (P'_i - 1)`` times where the enumeration has ``prod_{j<i} P_j (P_i - 1)``. None
    where the walk's rows are held (the gathered rule applies) or its row loop is not
    one loop of whole positions."""
    if reuse is None or not exact.row_walk:
        return None
    counts = [positions(states) for states in per_directive]
    dims = [d.dim for d in model.directives]
    walked = [i for i, d in enumerate(dims) if d in FILTER_OF.values() and counts[i] > 1]
    if not walked or all(reuse.fits[i] for i in walked) or len(set(dims)) < len(dims):
        return None
    rows = [
        i
        for i, d in enumerate(dims)
        if FILTER_OF.get(d) in {dims[j] for j in walked}
        and counts[i] > 1
        and model.directives[i].size == 1
    ]
    total = prod(counts)
    if len(rows) != 1 or (counts[rows[0]] * exact.top_steps) % total:
        return None
    executed = list(counts)
    executed[rows[0]] = counts[rows[0]] * exact.top_steps // total
    carries: dict[str, float] = {}
    for i, dim in enumerate(dims):
        if counts[i] > 1:
            enumerated = prod(counts[:i]) * (counts[i] - 1)
            carries[dim] = prod(executed[:i]) * (executed[i] - 1) / enumerated
    return carries


def _drop_phantom_reads(totals: _Totals, weights: list[float]) -> None:
    """Take out of the input/weight reads what the enumerated steps move beyond the
    executed steps they stand for (``weights`` per case)."""
    dropped = [0.0] * len(totals.moved)
    for (occ, volumes), w in zip(totals.volumes, weights, strict=True):
        for t in range(len(dropped)):
            dropped[t] += occ * volumes[t] * (1 - w)
    for t, d in enumerate(dropped):
        totals.l2_reads[t] = round(totals.l2_reads[t] - d)
        totals.l1_writes[t] = round(totals.l1_writes[t] - d)


def _unit_ratio(
    exact: ExactCounts,
    model: LevelModel,
    per_directive: tuple[tuple[State, ...], ...],
    quirks: Quirks,
) -> float:
    """The units holding work per step in the executed nest over those the case
    enumeration activates, where it activates more (else 1).

    The enumeration turns a spatial map over output coordinates into one over input
    rows of the unit's filter tile, stride ignored, so it spreads the map over more
    units than the output coordinates occupy (p29: ``SpatialMap(1,1) X'`` with one
    output column becomes ``X(1,1)`` over 3 input columns, 3 units where one PE
    works). Each unit's tile is the same in both; the tensors partitioned over the
    units move that many units' tiles (docs/refined-model.md, "Exact counts")."""
    if not model.spatial or exact.top_steps <= 0 or exact.pe_steps <= 0:
        return 1.0
    first = per_directive[model.first_spatial]
    unit_positions = 0
    for s in first:
        active = model.units
        if s.is_edge:
            partial = s.position == EDGE and s.partial_last_unit
            active = model.edge_units + (partial and not quirks.partial_unit_displaces_full)
        unit_positions += s.occurrences * active
    steps = prod(positions(states) for states in per_directive)
    enumerated = unit_positions * steps / max(positions(first), 1)
    return min(1.0, (exact.pe_steps / exact.top_steps) / (enumerated / steps))


def _tile_ratios(
    ctx: _Context,
    exact: ExactCounts,
    model: LevelModel,
    per_directive: tuple[tuple[State, ...], ...],
) -> tuple[float, ...]:
    """Per input/weight tensor of the top level, the tile elements its PEs hold over
    all steps in the executed nest over the enumeration's (a unit's tile times the
    active units, summed over the cases), for the tensors partitioned over the units
    (1 for the others). An output-coordinate map converted to input rows with the
    stride ignored holds a different tile per unit too (p47: ``Y'(2,2)`` at stride 2
    holds 5 input rows, the converted map 4)."""
    sums = [0] * len(model.inputs)
    for states, occ in enumerate_cases(per_directive, int32_occurrences=ctx.quirks.int32_overflow):
        active = _case_model(ctx, model, states)
        units = active.edge_units if states[model.first_spatial].is_edge else active.units
        for t, view in enumerate(model.inputs):
            sums[t] += occ * full_unit_tile(model, states, view) * units
    ratios = []
    for t, view in enumerate(model.inputs):
        partitioned = any(model.directives[i].spatial for i in view.order)
        held = exact.tile_elems[t] if t < len(exact.tile_elems) else 0
        ratios.append(held / sums[t] if partitioned and sums[t] > 0 and held > 0 else 1.0)
    return tuple(ratios)


def _on_units(
    ctx: _Context, model: LevelModel, view: TensorView, volume: int, tensor: int = -1
) -> int:
    """A step's ``volume`` of a tensor partitioned over the top level's units, moved by
    the units that hold work (:func:`_unit_ratio`), an input/weight ``tensor``'s with
    the tiles they hold (:func:`_tile_ratios`)."""
    if ctx.unit_ratio >= 1 or not any(model.directives[i].spatial for i in view.order):
        return volume
    ratio = ctx.tile_ratio[tensor] if 0 <= tensor < len(ctx.tile_ratio) else ctx.unit_ratio
    return ceil_div(volume * round(ratio * 1_000_000), 1_000_000)


def _read_share(ctx: _Context, tensor: int) -> float:
    """The share of a top-level unit's tile of an input/weight ``tensor`` that the PEs
    of the levels below read: a nested directive of size ``m`` and offset ``o > m`` over
    the ``N`` rows of the level above's tile leaves the rows between its tiles unread,
    so the tile sent down holds ``(P - 1) m + min(m, N - (P - 1) o)`` of them, ``P =
    1 + ceil((N - m) / o)`` its positions (docs/refined-model.md, "Exact counts")."""
    share = ctx.read_shares.get(tensor)
    if share is not None:
        return share
    share = 1.0
    dims = ctx.models[0].inputs[tensor].tensor.dims
    for above, lower in zip(ctx.models, ctx.models[1:], strict=False):
        for d in lower.directives:
            rows = min(above.tiles.mapped.get(d.dim, 0), above.dims.get(d.dim, 0))
            if d.dim in dims and d.offset > d.size and rows > d.size:
                last = ceil_div(rows - d.size, d.offset)
                share *= (last * d.size + min(d.size, rows - last * d.offset)) / rows
    ctx.read_shares[tensor] = share
    return share


def _fill_share(steps: int, scale: float, weights: list[int], delays: list[int]) -> float:
    """What each of the case enumeration's phases on a plane carries of a phase's fill
    (route, adders) once its ``moving`` steps are spread over the ``steps`` exact ones:
    one fill per phase, and the executed nest has at most one phase per step, so
    ``min(moving, steps)`` phases, each enumerated one counted ``scale`` times."""
    moving = sum(w for w, d in zip(weights, delays, strict=True) if d > 0)
    if moving <= 0:
        return 1.0
    return min(moving, steps) / (moving * scale)


def _after_idle_bound(exact: ExactCounts, totals: _Totals) -> float:
    """The steps' floor where steps without a MAC come between steps with one.

    A PE takes step ``t``'s tiles once it finished step ``t - 2`` (two buffers), and a
    step without a MAC takes a buffer all the same. So a step with a MAC right after one
    without waits for the step with a MAC before it to finish before its tiles leave
    L2: its arrival is not hidden behind any compute, and
    ``runtime >= K + Id_first + sum_i after_idle_i x Id_i`` (``K`` the compute of all
    steps, ``after_idle_i`` those steps reached by a carry at loop ``i``, ``Id_i`` the
    arrival of the cases whose changing loop is ``i``, weighted by their steps: a carry
    at ``i`` brings what the loop's advance brings; docs/refined-model.md, section 5)."""
    later = list(zip(totals.weights[1:], totals.ingress[1:], totals.changed[1:], strict=True))
    steps = sum(w for w, _, _ in later)
    mean = sum(w * d for w, d, _ in later) / steps if steps > 0 else totals.ingress[0]
    exposed = 0.0
    for dim, count in exact.after_idle_by_dim:
        mine = [(w, d) for w, d, c in later if c in (dim, INPUT_OF.get(dim), OUTPUT_OF.get(dim))]
        weight = sum(w for w, _ in mine)
        exposed += count * (sum(w * d for w, d in mine) / weight if weight > 0 else mean)
    return exact.compute_cycles + totals.ingress[0] + exposed


def _inner_work(below: list[LevelResult], compute: float) -> tuple[int, float]:
    """(Lock-step steps one step of a case lasts, their compute cycles) given the
    analyses of its units' nests (none at the innermost level, whose step is its
    compute): the longest nest, and the compute of the busiest one."""
    if not below:
        return 1, compute
    if len(below) == 1:
        return max(below[0].global_steps, 1), below[0].compute_total
    busiest = max(below, key=lambda r: r.runtime_exact)
    return max(max(r.global_steps for r in below), 1), busiest.compute_total


def _first_tile_kept(reuse: LevelReuse, view: TensorView, changing: int) -> bool:
    """Whether the first tile of a new sweep of ``changing`` (a loop that does not index
    the tensor) is still held although the sweep does not fit: what the last sweep left
    (its footprint without the outputs that left) fits, so LRU's first eviction of the
    new sweep (for its new tiles) takes the tile after the first, and each later one
    evicts the next before it is needed."""
    return (
        changing >= 0
        and changing not in view.coupled
        and not reuse.fits[changing]
        and bool(reuse.first_kept)
        and reuse.first_kept[changing]
    )


def _held_since_sweep(
    reuse: LevelReuse, view: TensorView, states: tuple[State, ...], changing: int
) -> bool:
    """Whether a unit holds all of this step's tile already: the innermost loop ``o`` at
    or outside the changing one that does not index the tensor and is not at its first
    position has advanced, so the unit touched the same tile when ``o`` was one position
    back. The loops inside ``o`` that iterate and do not index the tensor, up to the
    first that does, all went from their last position to their first since (``j`` the
    innermost of them): that touch was one sweep of the loops inside ``j`` ago, which
    must fit the buffer (with no such ``j``, one sweep of ``o``: footprints only grow
    outwards, so ``o`` decides)."""
    for o in range(changing, -1, -1):
        if o not in view.coupled and states[o].position != INIT:
            j = o
            while reuse.next_loop and 0 <= reuse.next_loop[j] not in view.coupled:
                j = reuse.next_loop[j]
            return (j > o or o < changing) and reuse.fits[j]
    return False


def _held_over(
    ctx: _Context,
    machine: Machine,
    model: LevelModel,
    states: tuple[State, ...],
    changing: int,
    codes: tuple[int, ...],
) -> bool:
    """:func:`_double_buffered`, memoised per layer by what it reads of the case, its
    ``codes`` (:func:`case_codes`; as :func:`_pe_held_over`; the analyses with other
    tensors held ask again too)."""
    key = ("double_buffered", id(machine), id(model), changing, codes)
    seen = ctx.shared.get(key)
    if seen is None:
        value = _double_buffered(machine, model, states, changing)
        seen = ctx.shared[key] = (machine, model, value)
    return seen[2]  # type: ignore[return-value]


def _double_buffered(
    machine: Machine, model: LevelModel, states: tuple[State, ...], changing: int
) -> bool:
    """Whether a PE's L1 holds this step's tiles beside the previous step's, so they may
    arrive while it computes (else the step waits for its own distribution). What the
    two steps share is held once: the union is the previous step's tiles plus what this
    step adds, the changing loop's new part of each tensor it indexes, the whole tile of
    a tensor whose inner loops wrapped, nothing of the others."""
    if machine.l1_elems >= UNBOUNDED:
        return True
    views = (*model.inputs, model.output)
    tile = sum(unit_tile(model, states, v) for v in views)
    if changing < 0:
        return machine.l1_elems >= 2 * tile
    if states[changing].is_edge and not model.directives[changing].spatial:
        # The changing loop just reached its edge tile: the previous step held a full one.
        full = replace(states[changing], position=STEADY, is_edge=False)
        before = (*states[:changing], full, *states[changing + 1 :])
        tile = max(tile, sum(unit_tile(model, before, v) for v in views))
    new = sum(unit_new_part(model, states, changing, v) for v in views)
    return machine.l1_elems >= tile + new


def _pe_held_over(
    ctx: _Context,
    model: LevelModel,
    states: tuple[State, ...],
    changing: int,
    codes: tuple[int, ...],
) -> bool:
    """:func:`_pe_double_buffered`, memoised per layer by what it reads of the case: the
    changing loop and each directive's state up to Init or Steady, its ``codes`` (a
    loop outside the changing one adds none of its own part, so only its edge tile
    counts; a loop inside it is at Init, unrolled or not; a term reading more of the
    case must join the key)."""
    machine, held = ctx.machine, ctx.innermost_l1
    if machine is None or machine.l1_elems >= UNBOUNDED or held is None:
        return True
    if sum(held) <= machine.l1_elems:
        # Two whole tiles fit: so does the tile with any part of the next.
        return True
    tile = 0.0
    for elems in held:
        tile += elems / 2
    if machine.l1_elems < tile:
        # Not even one tile fits, with none of the next (as _pe_double_buffered sums).
        return False
    key = ("pe_double_buffered", id(model), changing, held, codes)
    seen = ctx.shared.get(key)
    if seen is None:
        value = _pe_double_buffered(machine.l1_elems, held, model, states, changing)
        seen = ctx.shared[key] = (model, value)
    return seen[1]  # type: ignore[return-value]


def _pe_double_buffered(
    l1_elems: int,
    innermost_l1: tuple[int, ...],
    model: LevelModel,
    states: tuple[State, ...],
    changing: int,
) -> bool:
    """Whether a PE's L1 (``l1_elems``) holds its tiles of a top-level step beside what
    the next step adds, where levels are nested and two whole tiles do not fit: a PE
    holds the innermost level's tile of each tensor (``innermost_l1``, twice a tile),
    and of it the share the top level's step adds to its unit's tile is new
    (:func:`_double_buffered` for one level)."""
    tile = new = 0.0
    for view, held in zip((*model.inputs, model.output), innermost_l1, strict=True):
        pe = held / 2
        unit = unit_tile(model, states, view)
        tile += pe
        if unit > 0:
            new += pe * min(unit_new_part(model, states, changing, view) / unit, 1.0)
    return l1_elems >= tile + new


def _held_below(model: LevelModel, changing: int, volumes: list[int]) -> frozenset[int]:
    """The input tensors a step of ``model`` moves none of (its units hold them since
    an earlier step): the nested level's steps find them in L1 and wait for none of
    their transfers. The layer's first step moves everything; a nested level's first
    step is the level above's, whose ``held`` its volumes already carry."""
    if model.innermost or (changing < 0 and model.index == 0):
        return frozenset()
    return frozenset(t for t, volume in enumerate(volumes) if volume == 0)


def _partly_new(
    ctx: _Context,
    model: LevelModel,
    states: tuple[State, ...],
    changing: int,
    volumes: list[int],
    held: frozenset[int],
    codes: tuple[int, ...],
) -> tuple[int, float] | None:
    """The one input tensor a step of ``model`` moves only part of (a sliding window's
    new rows), with that part's share of its tile, or None."""
    if model.innermost or changing < 0:
        return None
    partly = []
    for t, (view, volume) in enumerate(zip(model.inputs, volumes, strict=True)):
        if t in held or volume <= 0:
            continue
        # A whole tile reads of the case only its codes (edge tiles, a partly filled
        # last unit): memoised per layer by them.
        key = ("whole_tile", id(model), t, codes)
        seen = ctx.shared.get(key)
        if seen is None:
            seen = ctx.shared[key] = (model, spatial_ingress(model, states, -1, view))
        whole: int = seen[1]  # type: ignore[assignment]
        if 0 < volume < whole:
            partly.append((t, volume / whole))
    return partly[0] if len(partly) == 1 else None
