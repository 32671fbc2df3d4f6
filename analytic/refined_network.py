"""The refined model's network terms of a step: distribution and collection delays on the
topology in use, spatial reduction (drains, split groups), and the top level's off-chip channel
(equations in docs/refined-model.md)."""

from __future__ import annotations

import math
from collections.abc import Callable
from math import prod
from typing import Any

from metronome.spec.hardware import UNBOUNDED
from metronome.spec.window import FILTER_OF

from .cases import State
from .context import LevelResult, NocLevel, _Context, level_states, replace
from .refined import (
    LevelReuse,
    Machine,
    array_footprints,
    ceil_div,
    collection_hold,
    evicted_psums,
    noc_delay,
    output_elems,
    path_fill,
    plane_hold,
    positions,
    reduction_delay,
    tensor_elems,
    touched_rows,
)
from .traffic import LevelModel


def _carried(ctx: _Context, machine: Machine, model: LevelModel) -> bool:
    """Whether every unit's partial sums travel to L2 (no adders in the network) while
    units reduce the same outputs (memoised per layer: every case asks)."""
    key = ("carried", model.index)
    seen = ctx.unit_counts.get(key)
    if seen is None:
        seen = ctx.unit_counts[key] = int(
            machine.topology in ("bus", "crossbar")
            and (
                _reduced_below(ctx, model.index) > 1
                or any(model.directives[i].spatial for i in model.non_output)
            )
        )
    return bool(seen)


def _reduced_below(ctx: _Context, index: int) -> int:
    """Units of the levels below ``index`` holding partial sums of the same outputs
    (reduction dimensions mapped spatially there), whose copies all travel to L2 on a
    network without adders."""
    key = ("reduced_below", index)
    cached = ctx.unit_counts.get(key)
    if cached is None:
        cached = ctx.unit_counts[key] = _reduced_units(ctx.models[index + 1 :])
    return cached


def _shape(ctx: _Context, model: LevelModel) -> tuple[int, int, bool, bool, int, int]:
    """What the network terms read of a level that its variants over other dimensions
    share (memoised per layer by the level's index: every case asks): the PEs under
    a unit, a bit per input tensor partitioned over the units, whether the level
    spreads a reduction (or an output) dimension over its units, the reduction flows
    of a collection per active unit (:func:`_out_flows`) and the units of the levels
    above holding partial sums of the same outputs."""
    key = ("shape", model.index)
    seen = ctx.shared.get(key)
    if seen is None:
        directives, index = model.directives, model.index
        mask = 0
        for t, view in enumerate(model.inputs):
            if any(directives[i].spatial for i in view.order):
                mask |= 1 << t
        seen = ctx.shared[key] = (
            prod(ctx.problem.units[index + 1 :]),
            mask,
            any(directives[i].spatial for i in model.non_output),
            any(directives[i].spatial for i in model.output.order),
            _partitioned_below(ctx, index),
            _reduced_units(ctx.models[:index]),
        )
    return seen  # type: ignore[return-value]


def _partitioned_below(ctx: _Context, index: int) -> int:
    """Units of the levels below ``index`` among which the output is split (spatial
    directives on output dimensions there): each holds different outputs."""
    cached = ctx.unit_counts.get(("partitioned_below", index))
    if cached is not None:
        return cached
    parts = 1
    for lower in ctx.models[index + 1 :]:
        spread = {lower.directives[i].dim: lower.directives[i].offset for i in lower.spatial}
        for i in lower.spatial:
            d = lower.directives[i]
            if d.dim in FILTER_OF and spread.get(FILTER_OF[d.dim]) == d.offset:
                # Input row and filter row advance together: the output row stays.
                continue
            if i not in lower.non_output and lower.dims[d.dim] > d.size:
                parts *= max(1, min(lower.units, -(-(lower.dims[d.dim] - d.size) // d.offset) + 1))
    ctx.unit_counts[("partitioned_below", index)] = parts
    return parts


def _active_below(ctx: _Context, index: int) -> int:
    """PEs under one unit of level ``index`` that hold data: per level below, the units
    its spatial directives spread over."""
    active = 1
    for lower in ctx.models[index + 1 :]:
        used = 1
        for i in lower.spatial:
            d = lower.directives[i]
            used *= max(1, -(-(lower.dims[d.dim] - d.size) // max(d.offset, 1)) + 1)
        active *= min(lower.units, used)
    return active


def _data_pes(ctx: _Context) -> list[int]:
    """The PEs that ever hold data: per level the units its spatial directives spread
    over (a unit past a directive's positions idles), PE ``sum_l u_l x (PEs under a
    unit of level l)``."""
    pes = [0]
    for index, model in enumerate(ctx.models):
        used = 1
        for i in model.spatial:
            d = model.directives[i]
            used *= max(1, -(-(model.dims[d.dim] - d.size) // max(d.offset, 1)) + 1)
        below = prod(ctx.problem.units[index + 1 :])
        pes = [p + u * below for p in pes for u in range(min(model.units, used))]
    return pes


def _reduced_units(models: tuple[LevelModel, ...]) -> int:
    """Units of ``models``' levels holding partial sums of the same outputs."""
    copies = 1
    for lower in models:
        for i in lower.spatial:
            d = lower.directives[i]
            if i in lower.non_output:
                copies *= max(1, min(lower.units, -(-(lower.dims[d.dim] - d.size) // d.offset) + 1))
    return copies


def _refined_delays(
    ctx: _Context,
    machine: Machine,
    noc: NocLevel,
    model: LevelModel,
    states: tuple[State, ...],
    volumes: tuple[int, ...],
    egress: int,
    reuse: LevelReuse,
) -> tuple[int, int, int, int]:
    """A step's distribution and collection on the topology in use, each as (cycles
    the plane's hottest link is busy, cycles until the data have arrived): a tensor
    partitioned over the units sends one message per active unit, a multicast one; only
    the share of the output that leaves is collected (partial sums accumulate), and
    partial sums reduced across units wait for an adder tree."""
    at_edge = states[model.first_spatial].is_edge
    # Memoised per layer: the delays depend on the case's states only through
    # ``at_edge`` (a term reading more of the case must join the key).
    key = (id(machine), id(noc), id(model), id(reuse), at_edge, volumes, egress)
    seen = ctx.delays.get(key)
    if seen is not None:
        return seen[4]
    active = _case_active(ctx, model, at_edge)
    below, partitioned, reduced, out_partitioned, flows_below, above = _shape(ctx, model)
    messages = [
        (volume, active if partitioned >> t & 1 else 1)
        for t, volume in enumerate(volumes)
        if volume > 0
    ]
    # A nested level's tiles come over the one network within the level above's
    # traffic (charged there): its steps pay only the latency of their transfers.
    bandwidth = UNBOUNDED if noc.free else noc.bandwidth
    in_busy, in_delay = noc_delay(
        machine, messages, bandwidth, noc.latency, machine.l2_read_bw, noc.free, below=below
    )
    out_flows = (active if out_partitioned else 1) * flows_below
    copies = _case_copies(ctx, machine, model, states, reuse, active)
    out = [(egress * copies, out_flows * copies)] if egress > 0 else []
    out_args = (machine, out, bandwidth, noc.latency, machine.l2_write_bw, noc.free, below, True)
    out_busy, out_delay = noc_delay(*out_args)
    if bandwidth != noc.bandwidth:
        # The arrival is the medium's at its own bandwidth.
        out_delay = noc_delay(machine, out, noc.bandwidth, *out_args[3:])[1]
    if out_delay and machine.topology in ("bus", "crossbar"):
        # L2's adder tree adds every copy of the step's outputs, the clusters' of the
        # levels above included (one global step moves them all).
        out_delay += reduction_delay(machine, copies * above)
    elif out_delay:
        # Where the network adds, the partial sums of the units reducing the same
        # outputs meet at adders: this level's and, on the mesh and the tree, the
        # clusters' of the levels above (one global step moves them all).
        if machine.topology not in ("mesh", "tree"):
            above = 1
        merged_here = (active if reduced else 1) * above
        if merged_here > 1 and machine.topology == "systolic":
            # The partial sums meet one PE after another along the drain route: each
            # PE on it adds, and a stream leaves an adder a cycle after it arrived
            # even over links without latency.
            out_delay += (merged_here - 1) * (machine.adder_latency + (machine.hop_latency == 0))
        elif merged_here > 1:
            out_delay += reduction_delay(machine, merged_here)
    if in_busy and machine.topology in ("tree", "crossbar"):
        in_busy += path_fill(machine)
    if in_busy and machine.topology == "bus":
        # The PEs tap the bus only once the medium's latency has passed: a distribution
        # holds the bus until then, however few its elements.
        in_busy = max(in_busy, noc.latency)
    if out_busy and machine.topology == "crossbar":
        out_busy += path_fill(machine)
    if out_busy and machine.topology in ("tree", "mesh"):
        merged = (active if reduced else 1) * _reduced_below(ctx, model.index)
        fill = path_fill(machine) + reduction_delay(machine, merged)
        if machine.topology == "tree" or reduced:
            out_busy += fill
        else:
            # The nearest flow reaches the L2 link once its own unit's streams met: a
            # unit's PEs lie in a row, ``below - 1`` hops apart.
            near = (below - 1) * machine.hop_latency + reduction_delay(machine, merged)
            out_busy = max(out_busy + near, fill + 1)
    # A distribution holds its plane until its head is on the last link: the next one
    # (a nested step's too, whose traffic the level above carries) waits for that.
    in_hold = plane_hold(machine, in_busy, in_delay)
    if noc.free:
        delays = (in_hold, in_delay, collection_hold(machine, out_delay), out_delay)
    else:
        if machine.topology in ("bus", "mesh"):
            in_busy = max(in_busy, in_hold)
        delays = (in_busy, in_delay, out_busy, out_delay)
    ctx.delays[key] = (machine, noc, model, reuse, delays)
    return delays


def _case_active(ctx: _Context, model: LevelModel, at_edge: bool) -> int:
    """Units holding work in a case (at the spatial edge those of the last fold)."""
    active = model.edge_units if at_edge else model.units
    if model.index == 0 and ctx.unit_ratio < 1:
        active = max(1, round(active * ctx.unit_ratio))
    return active


def _out_flows(ctx: _Context, model: LevelModel, active: int) -> int:
    """Reduction flows of a collection: the levels below split each output tile over
    their units, one flow per set of units holding the same outputs."""
    _, _, _, out_partitioned, flows_below, _ = _shape(ctx, model)
    return (active if out_partitioned else 1) * flows_below


def _case_copies(
    ctx: _Context,
    machine: Machine,
    model: LevelModel,
    states: tuple[State, ...],
    reuse: LevelReuse,
    active: int,
) -> int:
    """Copies of each output a case collects: without adders in the network (bus,
    crossbar) every unit's partial sums travel to L2, which adds the copies."""
    if machine.topology not in ("bus", "crossbar"):
        return 1
    reduced = _shape(ctx, model)[2]
    senders = _senders(model, states, reuse, active) if reduced else 1
    return senders * _split_copies(ctx, model, states, reuse)


def _group_arrival(
    ctx: _Context,
    noc: NocLevel,
    model: LevelModel,
    states: tuple[State, ...],
    reuse: LevelReuse,
    egress: int,
) -> Callable[[float], int]:
    """The arrival of a collection carrying ``ratio`` times the case's copies of its
    ``egress`` outputs (adders apart): a group of units sending apart moves its own
    copies, each over the one network (docs/refined-model.md, section 5)."""
    machine = ctx.machine
    assert machine is not None
    below = prod(ctx.problem.units[model.index + 1 :])

    def arrival(ratio: float) -> int:
        # Computed only where groups send apart (few cases): the others never call it.
        active = _case_active(ctx, model, states[model.first_spatial].is_edge)
        flows = _out_flows(ctx, model, active)
        copies = _case_copies(ctx, machine, model, states, reuse, active)
        n = max(1, round(copies * ratio))
        out = [(egress * n, flows * n)] if egress > 0 else []
        args = (noc.bandwidth, noc.latency, machine.l2_write_bw, noc.free)
        return noc_delay(machine, out, *args, below=below, collect=True)[1]

    return arrival


def _drains(
    ctx: _Context,
    noc: NocLevel,
    model: LevelModel,
    dims: dict[str, int],
    states: tuple[State, ...],
    reuse: LevelReuse,
    egress: int,
) -> list[tuple[int, float]]:
    """Per group of units sending apart: (cycles its drain differs from the case's
    collection, steps it computes between two of its egresses). Every unit sends at
    the same positions: one group computing in all ``s = leaving / unit_share`` steps.
    Where the spatial reduction's last fold fills fewer units (``last``) than the
    others (``U``, ``share > unitshare``), the units of the last fold compute in every
    fold and send in the last (``s`` steps, ``last`` copies), while those it leaves
    idle send at the other folds and skip the last one's steps (``s (F - 1) / F``
    over ``F`` folds, ``U - last`` copies). Each group paces every step (a unit
    computes once its egress before the latest has drained); on a network without
    adders L2 adds each group's copies, which reach it after their own transfer
    (a collection of a share of the case's ``egress`` copies, :func:`_group_arrival`)."""
    if not reuse.leaving:
        return [(0, 1.0)]
    s = reuse.leaving / reuse.unit_share
    i = model.first_spatial
    r, p, how = reuse.split
    split = _split_groups(ctx, model, r) if how == "turns" else None
    if split is not None and i not in model.non_output:
        arrival = _group_arrival(ctx, noc, model, states, reuse, egress)
        return _split_drains(ctx, model, states, r, split, s, (p - 1) / p, arrival)
    last, units = model.edge_units, model.units
    if reuse.output_share <= reuse.unit_share or i not in model.non_output or not 0 < last < units:
        return [(0, s)]
    d = model.directives[i]
    places = 1 + -(-max(dims.get(d.dim, 1) - d.size, 0) // max(d.offset, 1))
    folds = -(-places // units)
    idle = s * (folds - 1) / folds if folds > 1 else s
    machine = ctx.machine
    if machine is None or machine.topology not in ("bus", "crossbar"):
        return [(0, s if states[i].is_edge else idle)]
    others = _reduced_below(ctx, model.index) * _reduced_units(ctx.models[: model.index])
    arrival = _group_arrival(ctx, noc, model, states, reuse, egress)
    return _group_drains(machine, others, last, units, states[i].is_edge, (s, idle), arrival)


def _split_drains(
    ctx: _Context,
    model: LevelModel,
    states: tuple[State, ...],
    r: int,
    groups: tuple[int, int],
    s: float,
    busy: float,
    arrival: Callable[[float], int],
) -> list[tuple[int, float]]:
    """:func:`_drains` where the temporal reduction loop ``r``, with no output loop
    inside it, holds the partial sums while its last tile fills fewer units of a level
    below than a full tile (``groups``: those units under each): the units of the last
    tile compute in all ``s`` steps and send at ``r``'s last position, the others in
    ``busy = (P - 1) / P`` of them and send at the position before."""
    full, last = groups
    machine = ctx.machine
    if machine is None or machine.topology not in ("bus", "crossbar"):
        return [(0, s if states[r].is_edge else s * busy)]
    above = _reduced_units(ctx.models[: model.index])
    return _group_drains(machine, above, last, full, states[r].is_edge, (s, s * busy), arrival)


def _group_drains(
    machine: Machine,
    per_unit: int,
    last: int,
    full: int,
    at_last: bool,
    steps: tuple[float, float],
    arrival: Callable[[float], int],
) -> list[tuple[int, float]]:
    """The two groups' (drain difference, steps between egresses) on a network without
    adders, where L2 adds each group's copies (``per_unit`` per unit): the ``last``
    units of the last tile and the ``full - last`` others, each against the copies the
    case itself sends (those of the group sending at this case's position): a group's
    drain is its own copies' transfer (``arrival`` of their share of the case's) and
    L2's adder tree over them."""
    units = last if at_last else full - last
    sent = units * per_unit
    own = arrival(1.0)

    def extra(copies: int) -> int:
        added = reduction_delay(machine, copies * per_unit) - reduction_delay(machine, sent)
        return added + arrival(copies / units) - own

    return [(extra(last), steps[0]), (extra(full - last), steps[1])]


def _split_case(
    ctx: _Context, model: LevelModel, states: tuple[State, ...], reuse: LevelReuse
) -> tuple[LevelReuse, bool]:
    """The shares of one case where a temporal reduction loop's last tile fills fewer
    units of a level below than its full tiles (``reuse.split``, ``P`` positions), and
    whether that applies (then this level's cases place the sending, not the nested
    runtime). The units the last tile leaves idle send at its next-to-last position and
    the others at its last. With an output loop inside it every step of those two
    positions sends and each sending unit sends at every step: of a case at the last
    position all steps send (``leaving x P``), of one before it one position in
    ``P - 1``."""
    r, p, how = reuse.split
    if how not in ("burst", "turns") or _split_groups(ctx, model, r) is None:
        return reuse, False
    if how == "turns":
        # Inside every output loop the groups take turns, each unit sending once
        # per sweep of ``r``: the shares stand (:func:`_split_drains`).
        return reuse, True
    share = reuse.leaving * (p if states[r].is_edge else p / (p - 1))
    return replace(reuse, leaving=share, unit_share=share, output_share=share), True


def _split_groups(ctx: _Context, model: LevelModel, r: int) -> tuple[int, int] | None:
    """Units of the levels below holding partial sums of the same outputs under a full
    tile and under the last tile of the temporal reduction directive ``r`` (the first
    level below that spreads its dimension sees the tile); None unless the last tile
    fills fewer."""
    dim = model.directives[r].dim
    tiles = (model.tiles.mapped.get(dim, 0), model.tiles.mapped_edge.get(dim, 0))
    key = (model.index, r, *tiles)
    if key in ctx.split_groups:
        full, last = ctx.split_groups[key]
        return (full, last) if last < full else None
    counts = [1, 1]
    spread = False
    for lower in ctx.models[model.index + 1 :]:
        for i in lower.spatial:
            d = lower.directives[i]
            if i not in lower.non_output:
                continue
            rows = (lower.dims[d.dim], lower.dims[d.dim])
            if d.dim == dim and not spread:
                spread, rows = True, tiles
            for g, n in enumerate(rows):
                counts[g] *= max(1, min(lower.units, -(-max(n - d.size, 0) // d.offset) + 1))
    full, last = counts
    ctx.split_groups[key] = (full, last)
    return (full, last) if last < full else None


def _split_copies(
    ctx: _Context, model: LevelModel, states: tuple[State, ...], reuse: LevelReuse
) -> int:
    """Units of the levels below holding partial sums of the same outputs (all of
    whose copies travel on a network without adders), or, where a temporal reduction
    loop's last tile fills fewer of them than its full tiles (``reuse.split``), those
    sending in this case: where the partial sums leave at every position, the units
    the case's tile fills; where they stay, at its last position the units its last
    tile fills, before it those a full tile fills and the last one leaves idle."""
    r, _, how = reuse.split
    groups = _split_groups(ctx, model, r) if r >= 0 else None
    if groups is None:
        return _reduced_below(ctx, model.index)
    full, last = groups
    if states[r].is_edge:
        return last
    return full if how == "each" else full - last


def _senders(model: LevelModel, states: tuple[State, ...], reuse: LevelReuse, active: int) -> int:
    """Units whose partial sums leave in a step of this case, on a network without
    adders. Where the spatial reduction's last fold fills fewer units (``last``) than
    the others (``U``) and the partial sums stay in L1 across folds, only the units
    the last fold leaves idle send at a full fold, ``U - last``: the others touch
    their outputs again in the last fold, where those ``last`` send."""
    i = model.first_spatial
    ragged = reuse.output_share > reuse.unit_share
    if not ragged or i not in model.non_output or states[i].is_edge:
        return active
    return max(active - model.edge_units, 1) if 0 < model.edge_units < active else active


def _touched(ctx: _Context, dims: dict[str, int], wanted: set[str]) -> dict[str, int]:
    """Per dimension of ``wanted``, the rows some innermost tile reads (tiles may leave
    gaps)."""
    # Per level, the (size, offset) of its first directive on each dimension.
    firsts: list[dict[str, tuple[int, int]]] = []
    for model in ctx.models:
        first: dict[str, tuple[int, int]] = {}
        for d in model.directives:
            first.setdefault(d.dim, (d.size, d.offset))
        firsts.append(first)
    out: dict[str, int] = {}
    for dim, extent in dims.items():
        if dim in wanted:
            out[dim] = touched_rows([first.get(dim) for first in firsts], extent)
    return out


def _channel_cycles(
    top: LevelResult, refetched: list[int], fetched: list[int], bw: int, psums: int = 0
) -> int:
    """Cycles the off-chip channel spends reading. It moves each step's misses as one
    transfer of whole cycles, ``ceil(misses / bw)``. A tensor fetched once arrives in the
    steps of its first sweep; one refetched every sweep of an outer loop misses in every
    step, its step's share ``volume x fetched / L2 reads`` of its new tile; ``psums``
    partial sums written back and fetched back are spread over the steps that update
    partial sums as their egress is."""
    once = sum(fetched[t] for t in range(len(fetched)) if t not in refetched)
    if not refetched and not psums:
        return ceil_div(once, bw)
    share = {t: fetched[t] / top.l2_reads[t] for t in refetched if top.l2_reads[t] > 0}
    # The steps moving each set of volumes (cases repeat a few).
    steps_of: dict[tuple[int, ...], int] = {}
    for occ, volumes in top.case_volumes:
        steps_of[volumes] = steps_of.get(volumes, 0) + occ
    egress = sum([occ * volumes[-1] for volumes, occ in steps_of.items()])
    per_egress = psums / egress if egress > 0 else 0.0
    steps = 0
    for volumes, occ in steps_of.items():
        misses = sum(volumes[t] * share.get(t, 0.0) for t in refetched)
        misses += volumes[-1] * per_egress
        steps += occ * math.ceil(misses / bw - 1e-9)
    return steps + ceil_div(once, bw)


def _refined_offchip(
    ctx: _Context, machine: Machine, top: LevelResult, done: dict[str, Any]
) -> LevelResult:
    """Off-chip reads (each element once while L2 holds it), L2 fills, read-modify-write
    reads of partial sums, and the runtime with the off-chip channel as a floor: the
    first step's data arrive before it starts and the outputs go off-chip after the
    last one (docs/refined-model.md, "Off-chip"); ``done``: the other fields of ``top``
    the analysis completes (one copy of the result)."""
    model = ctx.models[0]
    dims, per_directive = level_states(model, ctx.problem.level_dims[0], ctx.quirks)
    arrays: list[tuple[int, ...]] = []

    def whole() -> tuple[int, ...]:
        """All units' footprint per directive (computed where a test reads it)."""
        if not arrays:
            arrays.append(array_footprints(model, dims, per_directive, ctx.strides))
        return arrays[0]

    below = _active_below(ctx, 0)
    l1 = machine.l1_elems * below if machine.l1_elems < UNBOUNDED else UNBOUNDED
    unit: list[tuple[int, ...]] = [] if ctx.top_footprints is None else [ctx.top_footprints]

    def unit_sweeps() -> tuple[int, ...]:
        """A unit's footprint per directive (computed where a term reads it)."""
        if not unit:
            unit.append(array_footprints(model, dims, per_directive, ctx.strides, array=False))
        return unit[0]

    l2_writes = list(top.l2_writes)
    l2_reads = list(top.l2_reads)
    reads = 0
    refetched: list[int] = []
    rows = _touched(ctx, dims, {d for view in model.inputs for d in view.tensor.dims})
    taken = [positions(states) for states in per_directive]
    for t, view in enumerate(model.inputs):
        size = tensor_elems(dims, view.tensor.dims, rows)
        refetch = 1
        for c in range(len(model.directives)):
            p = taken[c]
            if c in view.coupled or p <= 1 or machine.l2_elems >= UNBOUNDED:
                continue
            wraps = any(j > c and taken[j] > 1 for j in view.coupled)
            # Refetched only if the units read it again (their L1s lost it) and L2
            # lost it too.
            if (
                wraps
                and not (l1 >= UNBOUNDED or unit_sweeps()[c] <= l1)
                and whole()[c] > machine.l2_elems
            ):
                refetch *= p
        l2_writes[t] = size * refetch
        reads += size * refetch
        if refetch > 1:
            refetched.append(t)
    outputs = output_elems(dims, ctx.strides, model.output.tensor.dims)
    l2_reads[2] = max(l2_writes[2] - outputs, 0)
    # Partial sums L2 evicted between two updates: each is written back and fetched
    # back (one more stay in L2).
    steps = ctx.exact.top_steps if ctx.exact is not None else top.occurrences
    evicted = evicted_psums(
        model,
        dims,
        per_directive,
        ctx.strides,
        machine.l2_elems,
        unit_sweeps,
        l1,
        (outputs, l2_writes[2], l2_reads[2], steps),
    )
    reads += evicted
    bw = machine.offchip_bw
    # The first step's tiles, as the refined model moves them (the units that hold
    # work, the rows the PEs read), arrive before it starts.
    fetch = sum(top.first_volumes) if top.first_volumes else sum(top.l2_size_req[:2]) // 2
    first = machine.offchip_latency + ceil_div(fetch, bw)
    fetched = l2_writes[: len(model.inputs)]
    # Each output goes off-chip with the step after the one that finalised it: only the
    # last step's outputs follow the last step.
    # A last step without a MAC finalises none: the last outputs go with its transfer.
    last_idle = ctx.exact is not None and ctx.exact.last_idle
    tail = 0 if last_idle else min(outputs, top.last_egress)
    channel = machine.offchip_latency + _channel_cycles(top, refetched, fetched, bw, 2 * evicted)
    # The last transfer carries the previous step's outputs, so the last step's
    # distribution and compute follow the channel.
    if outputs > tail:
        channel += ceil_div(outputs - tail, bw) + top.last_step[2]
    channel += top.last_step[0]
    runtime = round(max(first + top.runtime, channel) + top.last_step[1] + ceil_div(tail, bw))
    return replace(
        top,
        runtime=runtime,
        l2_writes=tuple(l2_writes),
        l2_reads=tuple(l2_reads),
        l1_writes=(l2_reads[0], l2_reads[1], top.l1_writes[2]),
        offchip_reads=reads,
        offchip_writes=outputs + evicted,
        **done,
    )
