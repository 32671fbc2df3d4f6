"""Cluster-level analysis: runtime, traffic and buffer needs of one level, recursively.

For each iteration case c of a level (n(c) occurrences, I(c) ingress, E(c) egress,
M(c) MACs of all units):

* compute delay: innermost level ``ceil(psums of the busiest unit / SIMD lanes)``;
  upper levels: the runtime of the level below, re-analysed with this case's tile
  sizes as its dimensions (twice at a spatial edge with a partly filled last unit),
  the worst of them;
* NoC delay ``d(x) = L + ceil(x / BW) - 1`` (zero-load, latency L);
* step: the all-Init case costs ``compute + d(I)`` (a nested level's too, so the level
  above pays that fill in each of its steps; :mod:`metronome.analytic.assumptions`); any other
  ``max(d(I), compute, d(E))`` (double buffering). At the top level off-chip transfers
  are folded in:
  ``step = max(step, (L2req_in + L2req_w) / offchip_bw / 2, L2req_out / offchip_bw / 2)``;
* runtime = sum n(c) * step(c); L2 reads of T = sum n(c) I_T(c); output L2 writes =
  sum n(c) E(c); L1 reads of every tensor and L1 writes of the output = sum n(c) M(c);
  L1 writes of an input = its L2 reads; L2 writes of an input = its size (one fill)
  and L2 reads of the output = its size;
* buffer needs: L2 = 2 x (first case's traffic) per tensor, L1 = 2 x one unit's tile;
* NoC bandwidth: peak = max_c max(I, E) // compute, average weighted by n(c).

A case whose busiest unit has no MAC is skipped (its output traffic is already counted).
"""

from __future__ import annotations

import math
from math import prod

from metronome.spec.hardware import UNBOUNDED, Hardware
from metronome.spec.source import SpecError
from metronome.spec.window import FILTER_OF, OUTPUT_OF, windows

from .assumptions import MAESTRO_ASSUMPTIONS, Assumptions
from .cases import INIT, State, enumerate_cases
from .cint import cdiv, fdiv
from .context import (
    Delays,
    LevelResult,
    NocLevel,
    _case_model,
    _Context,
    _Totals,
    level_states,
    replace,
)
from .deviations import Quirks
from .groups import ExactCounts
from .problem import LevelDirective, Problem
from .refined import (
    PES_READ,
    LevelReuse,
    Machine,
    drain_hops,
    level_reuse,
    machine_of,
    output_elems,
    positions,
    reach_hops,
)
from .refined_network import _data_pes, _reduced_below, _refined_offchip
from .refined_reuse import (
    _busiest_slack,
    _exact_runtime,
    _first_tile_kept,
    _held_below,
    _held_since_sweep,
    _inner_work,
    _on_units,
    _partly_new,
    _read_share,
    _tile_ratios,
    _unit_ratio,
    _walk_carries,
)
from .refined_step import _CaseStep, _raw_runtime, _StepCost
from .tiles import level_tiles
from .traffic import (
    WRAP_KEPT,
    WRAP_LOST,
    LevelModel,
    TensorView,
    case_codes,
    changing_directive,
    forget_models,
    mapped_volume,
    output_traffic,
    spatial_ingress,
    sub_level_dims,
    tile_refetched,
)

__all__ = ["Delays", "LevelResult", "NocLevel", "analyze_problem"]


def _edge_units(
    directives: tuple[LevelDirective, ...],
    units: int,
    dims: dict[str, int],
    first_spatial: int,
    unit_past_the_end: bool,
) -> int:
    """Active units at the spatial edge, from the level's static dimensions (MAESTRO
    counts one more unit for a partial tile even when it starts past the end, D11)."""
    d = directives[first_spatial]
    extent, size, ofs = dims[d.dim], d.size, d.offset
    if extent > ofs * (units - 1) + size:
        steady = cdiv(cdiv(extent - size, ofs) + 1, units) - 1
        remaining = extent - (steady + 1) * ofs * units
        active = 1 if remaining < size else cdiv(remaining - size, ofs) + 1
    elif extent > size:
        active = cdiv(extent - size, ofs) + 1
        if ofs * (active - 1) + size < extent and (unit_past_the_end or ofs * active < extent):
            active += 1
    else:
        active = 1
    return 1 if extent <= size else active


_last_models: list[tuple[Problem, Quirks, tuple[LevelModel, ...]]] = []
"""The level models last built (the steady-state figures ask again for the same problem)."""


def _level_models(problem: Problem, quirks: Quirks) -> tuple[LevelModel, ...]:
    if _last_models:
        last = _last_models[-1]
        if last[0] is problem and last[1] is quirks:
            return last[2]
    built = _build_level_models(problem, quirks)
    _last_models[:] = [(problem, quirks, built)]
    # The memos keyed by level models (each entry holds its model) hold none of these:
    # what they hold of the models replaced is never asked for again.
    forget_models()
    return built


def _build_level_models(problem: Problem, quirks: Quirks) -> tuple[LevelModel, ...]:
    models = []
    last = len(problem.levels) - 1
    strides = None if quirks.stride_ignored_in_tile_outputs else dict(problem.strides)
    for index, directives in enumerate(problem.levels):
        dims = dict(problem.level_dims[index])
        names = [d.dim for d in directives]
        first_index: dict[str, int] = {}
        for i, dim in enumerate(names):
            first_index.setdefault(dim, i)
        views = []
        for tensor in problem.tensors:
            coupled = tuple([i for i, dim in enumerate(names) if dim in tensor.dims])
            renamed = tensor.is_output and problem.conv
            by_dim = tuple(
                [
                    (dim, first_index[dim], OUTPUT_OF.get(dim, dim) if renamed else dim)
                    for dim in tensor.dims
                    if dim in first_index
                ]
            )
            views.append(TensorView(tensor, coupled, by_dim, tuple([i for _, i, _ in by_dim])))
        spatial = tuple([i for i, d in enumerate(directives) if d.spatial])
        output = next(v for v in views if v.tensor.is_output)
        units = problem.units[index]
        models.append(
            LevelModel(
                index=index,
                units=units,
                edge_units=_edge_units(
                    directives, units, dims, spatial[0], quirks.steps_past_the_end
                ),
                directives=directives,
                dims=dims,
                tiles=level_tiles(
                    directives,
                    dims,
                    clip_oversized=not quirks.oversized_tile_edge_cut,
                    no_edge_past_the_end=not quirks.steps_past_the_end,
                    strides=strides,
                ),
                inputs=tuple([v for v in views if not v.tensor.is_output]),
                output=output,
                first_spatial=spatial[0],
                spatial=spatial,
                non_output=tuple(
                    [i for i, dim in enumerate(names) if dim not in output.tensor.dims]
                ),
                innermost=index == last,
                quirks=quirks,
            )
        )
    return tuple(models)


def _output_size(ctx: _Context, dims: dict[str, int], view: TensorView) -> int:
    """Output elements over ``dims`` (MAESTRO: Y-R+1 whatever the stride, D2)."""
    size = 1
    for dim in view.tensor.dims:
        if ctx.problem.conv and dim in FILTER_OF:
            stride = 1 if ctx.quirks.stride_ignored_in_output_size else ctx.strides.get(dim, 1)
            size *= windows(dims[dim], dims[FILTER_OF[dim]], stride)
        else:
            size *= dims[dim]
    return size


def _analyze_level(
    ctx: _Context,
    index: int,
    dims_key: tuple[tuple[str, int], ...],
    held: frozenset[int] = frozenset(),
) -> LevelResult:
    """Analyse level ``index`` over the dimensions ``dims_key`` (memoised per layer);
    ``held``: the input tensors its units hold already (refined model: the level above
    moved none of them in this step), which none of its steps receives."""
    key = (index, dims_key, held)
    cached = ctx.memo.get(key)
    if cached is not None:
        return cached
    ctx.analyses += 1
    model = ctx.models[index]
    quirks = ctx.quirks
    reuse = None
    shared = ctx.levels.get((index, dims_key))
    if shared is not None:
        # Analysed before with other tensors held: the same model and reuse serve.
        model, reuse = shared
    elif ctx.machine is not None and index > 0:
        model = _model_over(ctx, model, dims_key)
    dims, per_directive = level_states(model, dims_key, quirks)
    if (
        ctx.machine is not None
        and index > 0
        and not held
        and shared is None
        and all(len(states) == 1 for states in per_directive)
    ):
        return _remember(
            ctx, key, model, _one_case_level(ctx, model, dims_key, dims, per_directive)
        )
    totals = _Totals()
    if (
        ctx.machine is not None
        and reuse is None
        and _counted_nothing(ctx, model, dims_key, dims, per_directive, totals)
    ):
        # (No reuse: the level counts no case; its totals hold its buffer sizes.)
        return _remember(ctx, key, model, totals.finish(quirks))
    if ctx.machine is not None and index == 0 and ctx.exact is not None and len(ctx.models) == 1:
        ctx.unit_ratio = _unit_ratio(ctx.exact, model, per_directive, quirks)
        if ctx.unit_ratio < 1:
            ctx.tile_ratio = _tile_ratios(ctx, ctx.exact, model, per_directive)
    if ctx.machine is not None and reuse is None:
        reuse, per_pe = _derive_reuse(ctx, ctx.machine, model, dims, per_directive)
        if index == 0 and not per_pe:
            ctx.top_footprints = reuse.footprints
        ctx.levels[(index, dims_key)] = (model, reuse)
    if reuse is not None:
        reuse = _outer_reuse(ctx, index, reuse)
        ctx.outer_share[index + 1] = (reuse.output_share, reuse.unit_share, reuse.leaving)
    # MAESTRO sizes the buffers at every case until one is counted (see D8).
    resize_while_skipping = quirks.oversized_tile_edge_cut
    sized = False
    for states, occ in enumerate_cases(per_directive, int32_occurrences=quirks.int32_overflow):
        changing = changing_directive(states)
        case_model = _case_model(ctx, model, states)
        if not sized:
            sized = not resize_while_skipping
            _buffer_sizes(ctx, case_model, dims, states, changing, totals)
        if _count_case(ctx, case_model, dims, states, changing, occ, totals, reuse, held):
            sized = True
    if reuse is not None:
        _output_egress(ctx, model, dims, per_directive, reuse, totals)
    if index == 0 and ctx.exact is not None and totals.deferred:
        carries = None
        if len(ctx.models) == 1:
            carries = _walk_carries(ctx.exact, model, per_directive, reuse)
        _exact_runtime(ctx.exact, totals, carries)
    last = (0, 0, 0)
    if reuse is not None and totals.egress:
        last = (totals.compute[-1], totals.egress[-1], totals.ingress[-1])
    return _remember(ctx, key, model, totals.finish(quirks, last))


def _remember(
    ctx: _Context,
    key: tuple[int, tuple[tuple[str, int], ...], frozenset[int]],
    model: LevelModel,
    result: LevelResult,
) -> LevelResult:
    """``result`` memoised under ``key``; the innermost level's first result also
    gives the layer's L1 size requirement."""
    if model.innermost and ctx.innermost_l1 is None:
        ctx.innermost_l1 = result.l1_size_req
    ctx.memo[key] = result
    return result


def _output_egress(
    ctx: _Context,
    model: LevelModel,
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
    reuse: LevelReuse,
    totals: _Totals,
) -> None:
    """The output L2 writes of a refined level analysis once its cases are counted."""
    own = reuse.output_share / ctx.outer_share.get(model.index, (1.0,))[0]
    # Each output leaves once per session: at most |O| times the reduction loops'
    # positions times the share (the enumeration's egress also counts the steps
    # its states add, which touch no new partial sum). Not where units reduce the
    # same outputs (each sends its copy) or on the systolic array (its partial sums
    # leave every fold).
    egress = totals.l2_writes[2] * reuse.distinct
    spread = _reduced_below(ctx, model.index) > 1 or any(
        model.directives[r].spatial for r in model.non_output
    )
    if not spread and ctx.machine is not None and ctx.machine.topology != "systolic":
        sessions = prod(positions(per_directive[r]) for r in model.non_output)
        outputs = output_elems(dims, ctx.strides, model.output.tensor.dims)
        egress = min(egress, outputs * sessions)
    totals.l2_writes[2] = round(egress * own)


def _one_case_level(
    ctx: _Context,
    model: LevelModel,
    dims_key: tuple[tuple[str, int], ...],
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
) -> LevelResult:
    """:func:`_analyze_level` of a nested level (refined model, no tensor held, first
    asked) whose directives each take one state: its only case, every directive at
    Init, counted directly, without the enumeration and the per-case memos."""
    quirks = ctx.quirks
    states = tuple([s[0] for s in per_directive])
    case_model = _case_model(ctx, model, states)
    totals = _Totals()
    if any(extent <= 0 for dim, extent in dims_key if dim in _OUTPUT_COORDINATES):
        # :func:`_counted_nothing` of the one case.
        egress, psums, case_mac = output_traffic(case_model, states)
        if psums <= 0 and egress == 0:
            _buffer_sizes(ctx, case_model, dims, states, -1, totals)
            totals.l1_writes[2] += case_mac
            totals.l1_reads[2] += case_mac
            return totals.finish(quirks)
    reuse = _one_case_reuse(model)
    ctx.levels[(model.index, dims_key)] = (model, reuse)
    reuse = _outer_reuse(ctx, model.index, reuse)
    ctx.outer_share[model.index + 1] = (reuse.output_share, reuse.unit_share, reuse.leaving)
    _buffer_sizes(ctx, case_model, dims, states, -1, totals)
    _count_case(ctx, case_model, dims, states, -1, 1, totals, reuse)
    _output_egress(ctx, model, dims, per_directive, reuse, totals)
    last = (0, 0, 0)
    if totals.egress:
        last = (totals.compute[-1], totals.egress[-1], totals.ingress[-1])
    return totals.finish(quirks, last)


def _one_case_reuse(model: LevelModel) -> LevelReuse:
    """:func:`level_reuse` of a level whose directives each take one position: no
    reduction loop iterates, so every share is 1 and none splits; no loop wraps or
    leaves its first position, so what a sweep keeps is never asked (``fits`` all
    False, as read at the Init positions; no footprints) and its sweeps are not taken."""
    n = len(model.directives)
    return LevelReuse((False,) * n, 1.0, (), next_loop=(-1,) * n)


def _derive_reuse(
    ctx: _Context,
    machine: Machine,
    model: LevelModel,
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
) -> tuple[LevelReuse, dict[str, float]]:
    """The refined reuse of one level analysis (:func:`level_reuse`) over the unit's
    buffers, and the shares of its tile one PE holds (empty: none split)."""
    below = prod(ctx.problem.units[model.index + 1 :])
    capacity = machine.l1_elems * below if machine.l1_elems < UNBOUNDED else UNBOUNDED
    reduced_below = {
        d.dim: d.size + d.offset * (lower.units - 1)
        for lower in ctx.models[model.index + 1 :]
        for i in lower.spatial
        if i in lower.non_output
        for d in [lower.directives[i]]
        if lower.dims[d.dim] > d.size
    }
    per_pe = _pe_shares(ctx, model)
    if per_pe and capacity < UNBOUNDED:
        # Each PE's L1 holds its own part: compare one PE's footprint with it.
        capacity = machine.l1_elems
    reuse = level_reuse(
        model, dims, per_directive, ctx.strides, capacity, reduced_below, per_pe or None
    )
    return reuse, per_pe


def _counted_nothing(
    ctx: _Context,
    model: LevelModel,
    dims_key: tuple[tuple[str, int], ...],
    dims: dict[str, int],
    per_directive: tuple[tuple[State, ...], ...],
    totals: _Totals,
) -> bool:
    """Whether a nested level over ``dims_key`` (an edge tile holding no whole window)
    counts no case and sends no output; if so, ``totals`` holds what its case loop
    would add (buffer sizes, the MACs of skipped cases) and its reuse, which changes
    nothing of its result, need not be derived (a level with cases to count never
    takes this test's enumeration: it runs only where an output coordinate has no
    extent)."""
    if model.index == 0 or not any(
        extent <= 0 for dim, extent in dims_key if dim in _OUTPUT_COORDINATES
    ):
        return False
    cases = enumerate_cases(per_directive, int32_occurrences=ctx.quirks.int32_overflow)
    traffic = []
    for states, occ in cases:
        case_model = _case_model(ctx, model, states)
        egress, psums, case_mac = output_traffic(case_model, states)
        if psums > 0 or occ * egress != 0:
            return False
        traffic.append((case_model, states, occ, egress, case_mac))
    # :func:`_analyze_level`'s case loop where every case is skipped (MAESTRO's
    # resizing while skipping included).
    sized = False
    for case_model, states, occ, egress, case_mac in traffic:
        if not sized:
            sized = not ctx.quirks.oversized_tile_edge_cut
            _buffer_sizes(ctx, case_model, dims, states, changing_directive(states), totals)
        totals.l2_writes[2] += occ * egress
        totals.l1_writes[2] += occ * case_mac
        totals.l1_reads[2] += occ * case_mac
    return True


_OUTPUT_COORDINATES = frozenset(OUTPUT_OF.values())


def _outer_reuse(ctx: _Context, index: int, reuse: LevelReuse) -> LevelReuse:
    """``reuse`` with the output, unit and leaving shares of the levels above, one
    object per level reuse and shares (the step delays are memoised by its identity)."""
    outer = ctx.outer_share.get(index, (1.0, 1.0, 1.0))
    key = ("outer_reuse", id(reuse), outer)
    seen = ctx.shared.get(key)
    if seen is not None:
        return seen[1]  # type: ignore[return-value]
    adjusted = replace(
        reuse,
        output_share=outer[0] * reuse.output_share,
        unit_share=outer[1] * reuse.unit_share,
        leaving=outer[2] * reuse.leaving,
    )
    ctx.shared[key] = (reuse, adjusted)
    return adjusted


def _model_over(
    ctx: _Context, model: LevelModel, dims_key: tuple[tuple[str, int], ...]
) -> LevelModel:
    """A nested level's model with its tiles and edge units taken over the dimensions
    it is analysed on (an edge tile of the level above), not its first tile's: a map
    larger than what the level receives holds only what it receives (refined model)."""
    dims = {**model.dims, **dict(dims_key)}
    if dims == model.dims:
        return model
    quirks = ctx.quirks
    if (
        not quirks.oversized_tile_edge_cut
        and not quirks.stride_ignored_in_tile_outputs
        and all(dims[d.dim] == model.dims[d.dim] for d in model.directives)
    ):
        # The tiles and edge units read of the dimensions only the directives' extents
        # (and were built with the same options): the level's own serve.
        tiles, edge_units = model.tiles, model.edge_units
    else:
        tiles = level_tiles(
            model.directives,
            dims,
            clip_oversized=True,
            no_edge_past_the_end=not quirks.steps_past_the_end,
            strides=dict(ctx.problem.strides),
        )
        edge_units = _edge_units(
            model.directives, model.units, dims, model.first_spatial, quirks.steps_past_the_end
        )
    clipped = {k: min(v, dims[k]) if k in dims else v for k, v in tiles.mapped.items()}
    return replace(model, dims=dims, edge_units=edge_units, tiles=replace(tiles, mapped=clipped))


def _count_case(
    ctx: _Context,
    model: LevelModel,
    dims: dict[str, int],
    states: tuple[State, ...],
    changing: int,
    occ: int,
    totals: _Totals,
    reuse: LevelReuse | None = None,
    held: frozenset[int] = frozenset(),
) -> bool:
    """Add one case (``occ`` steps) to ``totals``; False if MAESTRO skips it because its
    busiest unit has no MAC (its output traffic is counted all the same). ``reuse``
    (refined model) says which wraps keep their data and how much output leaves;
    ``held`` which input tensors the units hold since an earlier step of the level
    above (none of this level's steps receives them)."""
    alike: list[int] | None = None
    nested_key: tuple[object, ...] = ()
    if reuse is not None and model.index > 0:
        # A nested level analysed again with other input tensors held meets the same
        # cases: their traffic without the held tensors is taken once per layer.
        nested_key = ("nested_case", id(model), id(states), id(reuse))
        seen = ctx.shared.get(nested_key)
        if seen is not None:
            codes, egress, psums, case_mac, alike = seen[3]  # type: ignore[misc]
    if alike is None:
        codes = case_codes(states)
        egress, psums, case_mac = output_traffic(model, states, codes)
        if reuse is not None and model.index == 0 and ctx.unit_ratio < 1:
            egress = _on_units(ctx, model, model.output, egress)
    totals.l2_writes[2] += occ * egress
    totals.l1_writes[2] += occ * case_mac
    totals.l1_reads[2] += occ * case_mac
    if psums <= 0:
        if nested_key and alike is None:
            ctx.shared[nested_key] = (model, states, reuse, (codes, egress, psums, case_mac, []))
        return False
    wrap = 0
    if reuse is not None and changing >= 0:
        wrap = WRAP_KEPT if reuse.fits[changing] else WRAP_LOST
    if alike is None:
        alike = _case_volumes(ctx, model, states, changing, reuse, wrap)
        if nested_key:
            ctx.shared[nested_key] = (model, states, reuse, (codes, egress, psums, case_mac, alike))
    ingress = 0
    volumes: list[int] = alike if not held else [0 if t in held else v for t, v in enumerate(alike)]
    l2_reads, l1_writes, l1_reads = totals.l2_reads, totals.l1_writes, totals.l1_reads
    for t, volume in enumerate(volumes):
        if volume > 0 and changing >= 0:
            totals.received.add(t)
        ingress += volume
        l2_reads[t] += occ * volume
        l1_writes[t] = l2_reads[t]
        l1_reads[t] += occ * case_mac
    totals.intensity = fdiv(case_mac, ingress)
    totals.ingress_total += occ * ingress
    machine = ctx.machine
    if reuse is not None and machine is not None:
        # What follows reads of the case only its codes, changing loop and traffic:
        # cases alike in those share it (memoised per level analysis).
        sent = tuple(volumes)
        key = (id(model), codes, changing, sent, egress, psums, ctx.innermost_l1)
        known = totals.steps.get(key)
        if known is None and nested_key:
            # (The nested levels' steps read no gathered tiers: the analyses of one
            # with other tensors held share them too.)
            steps = ctx.shared.get(("nested_steps", id(reuse), id(dims)))
            if steps is None:
                steps = ctx.shared[("nested_steps", id(reuse), id(dims))] = (reuse, dims, {})
            alike_steps: dict[tuple[object, ...], _CaseStep] = steps[2]  # type: ignore[assignment]
            known = alike_steps.get(key)
            if known is not None:
                totals.steps[key] = known
                for result in known.below:
                    totals.received.update(result.received)
        if known is None:
            known = totals.steps[key] = _refined_case(
                ctx,
                machine,
                model,
                dims,
                states,
                changing,
                codes,
                reuse,
                psums,
                volumes,
                sent,
                egress,
                totals.gathered,
            )
            for result in known.below:
                totals.received.update(result.received)
            if nested_key:
                alike_steps[key] = known
        compute, active = known.compute, known.active
        step_in, step_out = known.cost.step_in, known.cost.step_out
        step = known.step
        if model.innermost and model.index > 0:
            totals.slack.append((occ, step - known.idle_step, compute))
        totals.base_runtime += occ * known.base
        totals.global_steps += occ * known.inner_steps
        totals.compute_total += occ * known.inner_compute
        if model.index == 0 and ctx.exact is not None:
            totals.deferred.append((occ, compute, known.inner_compute, known.cost.step_of))
            totals.shrinks.append(known.shrink)
            totals.carrying.append(0 if changing < 0 else 1 if any(volumes) else 2)
            if changing >= 0:
                for t, moved in enumerate(volumes):
                    totals.moved[t] += occ * moved
                    totals.moving[t] += occ if moved else 0
    else:
        compute, active = _compute(ctx, model, states, psums, dims)
        noc = ctx.nocs[model.index]
        serial_fill = changing < 0 and (model.index == 0 or ctx.assumptions.nested_fill_serialised)
        step_in, step_out = noc.delay(ingress), noc.delay(egress)
        step = compute + step_in if serial_fill else max(step_out, compute, step_in)
    if model.index == 0:
        if compute == 0:
            raise _no_valid_unit_error(ctx, maestro_crashes=True)
        offchip_step, case_req = _offchip(ctx, totals.l2_size, compute)
        if offchip_step is not None:
            step = max(step, offchip_step)
        totals.offchip_req = cdiv(max(totals.offchip_req, case_req), 2)
        totals.offchip_max = max(totals.offchip_max, case_req)
    totals.runtime += occ * step
    totals.macs += occ * case_mac
    totals.active_sum += active * occ
    compute = compute or 1
    totals.peak_bw = max(totals.peak_bw, cdiv(max(ingress, egress), compute))
    totals.bw_weighted += cdiv(occ * max(ingress, egress), compute)
    totals.ingress.append(step_in)
    totals.egress.append(step_out)
    totals.compute.append(compute)
    totals.weights.append(occ)
    totals.changed.append(model.directives[changing].dim if changing >= 0 else "")
    totals.occurrences += occ
    if reuse is not None and model.index == 0:
        # Partial sums fetched back and written back travel only in steps that update
        # sums L2 had before: a reduction loop has left its first position.
        updating = False
        if changing >= 0:
            for i in model.non_output:
                if states[i].position != INIT:
                    updating = True
                    break
        totals.volumes.append((occ, (*volumes, egress if updating else 0)))
        if changing < 0:
            totals.first_volumes = tuple(volumes)
        totals.last_egress = egress
    return True


def _case_volumes(
    ctx: _Context,
    model: LevelModel,
    states: tuple[State, ...],
    changing: int,
    reuse: LevelReuse | None,
    wrap: int,
) -> list[int]:
    """Per input tensor, what the case at ``states`` receives where its units hold
    none of them yet (:func:`_count_case` zeroes the tensors held since the level
    above's step)."""
    kept: tuple[bool, ...] | None = None if reuse is not None else ()
    volumes: list[int] = []
    on_units = model.index == 0 and ctx.unit_ratio < 1
    read_share = model.index == 0 and reuse is not None and len(ctx.models) > 1
    for t, view in enumerate(model.inputs):
        if reuse is not None and (
            _held_since_sweep(reuse, view, states, changing)
            or _first_tile_kept(reuse, view, changing)
        ):
            volume = 0
        elif (
            changing >= 0
            and changing not in view.coupled
            and not tile_refetched(states, changing, view, wrap)
        ):
            volume = 0  # (What spatial_ingress answers, without building its arguments.)
        else:
            if kept is None:
                assert reuse is not None
                kept = tuple(
                    [f and s.position != INIT for f, s in zip(reuse.fits, states, strict=True)]
                )
            volume = spatial_ingress(model, states, changing, view, wrap, kept)
            if on_units:
                volume = _on_units(ctx, model, view, volume, t)
            if read_share:
                volume = math.ceil(volume * _read_share(ctx, t))
        volumes.append(volume)
    return volumes


def _refined_case(
    ctx: _Context,
    machine: Machine,
    model: LevelModel,
    dims: dict[str, int],
    states: tuple[State, ...],
    changing: int,
    codes: tuple[int, ...],
    reuse: LevelReuse,
    psums: int,
    volumes: list[int],
    sent: tuple[int, ...],
    egress: int,
    gathered: list[tuple[float, tuple[int, ...]]],
) -> _CaseStep:
    """A refined case's compute (its units' nested analyses) and step cost, given its
    traffic (``volumes``, also as the tuple ``sent``, and ``egress``), its busiest
    unit's ``psums`` and the level's gathered tiers (:attr:`_Totals.gathered`)."""
    below: list[LevelResult] = []
    inner_held = _held_below(model, changing, volumes)
    compute, active = _compute(ctx, model, states, psums, dims, below, inner_held)
    novel = _partly_new(ctx, model, states, changing, volumes, inner_held, codes)
    also_below: list[LevelResult] = []
    if novel is not None:
        # Only the share of the nested steps that walks the new part receives it.
        t, share = novel
        held_too = _compute(ctx, model, states, psums, dims, also_below, inner_held | {t})[0]
        compute = share * compute + (1 - share) * held_too  # type: ignore[assignment]
    noc = ctx.nocs[model.index]
    serial_fill = changing < 0 and (model.index == 0 or ctx.assumptions.nested_fill_serialised)
    # The nested level's runtime includes what its own collections cost; this level's
    # collections carry the same partial sums, so the slower of the two bounds paces
    # the step, not their sum (``raw``: the slowest nested unit's runtime without its
    # collections' cost).
    if model.innermost:
        raw: float = compute
    else:
        raw = _raw_runtime(below)
        if novel is not None:
            raw = novel[1] * raw + (1 - novel[1]) * _raw_runtime(also_below)
    cost = _StepCost(ctx, machine, noc, model, reuse)
    cost.derive(
        dims, states, changing, codes, volumes, sent, egress, gathered, serial_fill, raw, compute
    )
    step, base = cost.paced(compute)
    idle_step = cost.step_of(0.0) if model.innermost and model.index > 0 else 0.0
    inner_steps, inner_compute = _inner_work(below, compute)
    return _CaseStep(
        compute,
        active,
        below,
        cost,
        step,
        base,
        idle_step,
        inner_steps,
        inner_compute,
        _busiest_slack(below),
    )


def _offchip(ctx: _Context, l2_size: list[int], compute: int) -> tuple[int | None, int]:
    """Off-chip side of a top-level step, with L2 requirements in/w/out of the layer.

    Refilling L2 while the array computes (double buffering) takes
    ``(L2req_in + L2req_w) / offchip_bw / 2`` and ``L2req_out / offchip_bw / 2`` cycles,
    a floor under the step (None in the refined model, whose off-chip terms replace
    it); the case needs ``max(L2req_out, L2req_in + L2req_w) / compute`` elements per
    cycle (C integer divisions).
    """
    in_req, out_req = l2_size[0] + l2_size[1], l2_size[-1]
    need = max(cdiv(out_req, compute), cdiv(in_req, compute))
    if ctx.machine is not None:
        return None, need
    bw = ctx.offchip_bw
    return max(cdiv(cdiv(in_req, bw), 2), cdiv(cdiv(out_req, bw), 2)), need


def _buffer_sizes(
    ctx: _Context,
    model: LevelModel,
    dims: dict[str, int],
    states: tuple[State, ...],
    changing: int,
    totals: _Totals,
) -> None:
    """Buffer needs from the first case, and the one-fill L2 writes / output L2 reads.

    MAESTRO does this while no case has been counted yet, so when the first cases are
    skipped the input requirements are added up again (reproduced in compat mode).
    """
    # The level's dimensions follow from its model and the case's states from both:
    # the analyses of one level with other input tensors held ask again.
    key = ("buffer_sizes", id(model), id(states))
    seen = ctx.shared.get(key)
    if seen is None:
        sizes = (
            tuple(2 * spatial_ingress(model, states, changing, view) for view in model.inputs),
            tuple(prod(dims[d] for d in v.tensor.dims if d in dims) for v in model.inputs),
            tuple(2 * mapped_volume(model, view) for view in model.inputs),
            (
                2 * output_traffic(model, states)[0],
                _output_size(ctx, dims, model.output),
                2 * mapped_volume(model, model.output),
            ),
        )
        seen = ctx.shared[key] = (model, states, sizes)
    known: tuple[tuple[int, ...], ...] = seen[2]  # type: ignore[assignment]
    l2_sizes, fills, l1_sizes, output = known
    for t in range(len(model.inputs)):
        totals.l2_size[t] += l2_sizes[t]
        totals.l2_writes[t] = fills[t]
        totals.l1_size[t] += l1_sizes[t]
    totals.l2_size[2], totals.l2_reads[2], totals.l1_size[2] = output


def _compute(
    ctx: _Context,
    model: LevelModel,
    states: tuple[State, ...],
    psums: int,
    dims: dict[str, int],
    below_out: list[LevelResult] | None = None,
    held: frozenset[int] = frozenset(),
) -> tuple[int, float]:
    """Compute delay of a case and the units it keeps busy (PEs for upper levels; their
    analyses, over the input tensors ``held`` already, are appended to ``below_out``)."""
    sp_state = states[model.first_spatial]
    at_edge = sp_state.is_edge
    active = model.edge_units if at_edge else model.units
    if model.innermost:
        return math.ceil(psums / ctx.simd_lanes), float(active)
    if not (at_edge and sp_state.partial_last_unit):
        # One nested analysis for all active units (``0 +``: the sum below's start).
        runtime, exact, avg_active = _nested(ctx, model, states, False, held, below_out)
        busy = 0 + avg_active * active
        value = exact if ctx.machine is not None else runtime
        return value, busy if busy != 0 else float(active)  # type: ignore[return-value]
    # A partly filled last unit: its own analysis, and the full ones'.
    below = [(_nested(ctx, model, states, True, held, below_out), 1)]
    if model.edge_units - 1 > 0:
        below.append((_nested(ctx, model, states, False, held, below_out), model.edge_units - 1))
    busy = sum(r[2] * count for r, count in below)
    if ctx.machine is not None:
        exact = max(r[1] for r, _ in below)
        return exact, busy if busy != 0 else float(active)  # type: ignore[return-value]
    compute = max(r[0] for r, _ in below)
    return compute, busy if busy != 0 else float(active)


def _nested(
    ctx: _Context,
    model: LevelModel,
    states: tuple[State, ...],
    partial: bool,
    held: frozenset[int],
    below_out: list[LevelResult] | None,
) -> tuple[int, float, float]:
    """(Runtime, its unrounded value, average busy units) of a case's nested analysis
    (:func:`_sub`, appended to ``below_out``); where only those are read and the level
    below is the innermost, without the rest of its analysis (:func:`_free_runtime`)."""
    if ctx.runtimes_only and below_out is None and ctx.models[model.index + 1].innermost:
        return _free_runtime(ctx, model.index + 1, sub_level_dims(model, states, partial))
    result = _sub(ctx, model, states, partial, held)
    if below_out is not None:
        below_out.append(result)
    return result.runtime, result.runtime_exact, result.avg_active


def _free_runtime(
    ctx: _Context, index: int, dims_key: tuple[tuple[str, int], ...]
) -> tuple[int, float, float]:
    """:func:`_nested` of the innermost level ``index`` over ``dims_key`` where its
    network is free and the model MAESTRO's (``ctx.runtimes_only``): a counted case's
    step is then its compute, ``ceil(psums / lanes)`` (:func:`_count_case`)."""
    model = ctx.models[index]
    _, per_directive = level_states(model, dims_key, ctx.quirks)
    runtime = total = 0
    active_sum = 0.0
    for states, occ in enumerate_cases(per_directive, int32_occurrences=ctx.quirks.int32_overflow):
        case_model = _case_model(ctx, model, states)
        psums = output_traffic(case_model, states)[1]
        if psums <= 0:
            continue
        active = (
            case_model.edge_units if states[case_model.first_spatial].is_edge else case_model.units
        )
        runtime += occ * math.ceil(psums / ctx.simd_lanes)
        active_sum += float(active) * occ
        total += occ
    return runtime, float(runtime), active_sum / total if total else active_sum


def _pe_shares(ctx: _Context, model: LevelModel) -> dict[str, float]:
    """Per dimension a level below ``model`` spreads over its units, the share of
    ``model``'s tile one PE holds (its own tile over the unit's)."""
    key = (model.index, tuple(model.tiles.mapped.items()))
    cached = ctx.pe_shares.get(key)
    if cached is not None:
        return cached
    shares: dict[str, float] = ctx.pe_shares.setdefault(key, {})
    for lower in ctx.models[model.index + 1 :]:
        for i in lower.spatial:
            dim = lower.directives[i].dim
            for d in (dim, OUTPUT_OF.get(dim, "")):
                mine, unit = lower.tiles.mapped.get(d, 0), model.tiles.mapped.get(d, 0)
                if 0 < mine < unit:
                    shares[d] = shares.get(d, 1.0) * mine / unit
    return shares


def _sub(
    ctx: _Context,
    model: LevelModel,
    states: tuple[State, ...],
    partial: bool,
    held: frozenset[int] = frozenset(),
) -> LevelResult:
    key = (id(model), id(states), partial)
    seen = ctx.subs.get(key)
    if seen is None:
        dims_key = sub_level_dims(model, states, partial)
        # The cases whose units get the same dimensions (one tuple per level model and
        # edge flags) share their nested analyses by held tensors.
        by_dims = ctx.shared.get(("sub_results", id(dims_key)))
        if by_dims is None:
            by_dims = ctx.shared[("sub_results", id(dims_key))] = (dims_key, {})
        shared: dict[frozenset[int], LevelResult] = by_dims[1]  # type: ignore[assignment]
        seen = ctx.subs[key] = (model, states, dims_key, shared)
    results = seen[3]
    result = results.get(held)
    if result is not None:
        return result
    dims = seen[2]
    alone = results.get(frozenset())
    if alone is None:
        alone = results[frozenset()] = _analyze_level(ctx, model.index + 1, dims)
    # Holding a tensor no step after the nested level's first receives changes
    # nothing: the same analysis serves.
    inner = held & alone.received
    result = _analyze_level(ctx, model.index + 1, dims, inner) if inner else alone
    results[held] = result
    return result


def _no_valid_unit_error(ctx: _Context, maestro_crashes: bool) -> SpecError:
    problem = ctx.problem
    detail = " (no unit ever has a complete sliding window)"
    for index in range(len(ctx.models)):
        tiles = ctx.models[index].tiles
        for ref, out in OUTPUT_OF.items():
            if tiles.mapped.get(out, 1) <= 0:
                filt = FILTER_OF[ref]
                detail = (
                    f": in cluster level {index} a unit's {ref} tile"
                    f" ({tiles.mapped[ref]}) is smaller than its {filt} tile"
                    f" ({tiles.mapped.get(filt, 0)}), so no unit can finish an output"
                )
                break
        if detail.startswith(":"):
            break
    return SpecError.at(
        problem.span,
        f"layer '{problem.layer_name}': no unit ever computes a complete output"
        f"{detail}"
        + (
            " (MAESTRO divides by zero here and dies with SIGFPE)"
            if maestro_crashes
            else " (MAESTRO reports 0 cycles and NaNs)"
        ),
        hint="map the filter dimension with the same extent as its input dimension in"
        " each unit, e.g. the newer row-stationary form (SpatialMap(1,1) Y; SpatialMap(1,1) R)",
    )


def analyze_problem(
    problem: Problem,
    *,
    nocs: tuple[NocLevel, ...],
    simd_lanes: int,
    offchip_bw: int,
    quirks: Quirks,
    assumptions: Assumptions = MAESTRO_ASSUMPTIONS,
    hardware: Hardware | None = None,
    exact: ExactCounts | None = None,
) -> LevelResult:
    """Analyse every level of ``problem``; the top level's result, with the innermost
    level's L1 requirement attached. With ``hardware`` the refined model's terms
    (:mod:`metronome.analytic.refined`) replace MAESTRO's reuse, off-chip and network terms."""
    strides = dict(problem.strides)
    ctx = _Context(
        problem=problem,
        models=_level_models(problem, quirks),
        nocs=nocs,
        simd_lanes=simd_lanes,
        offchip_bw=offchip_bw,
        quirks=quirks,
        strides=strides,
        assumptions=assumptions,
        machine=machine_of(hardware) if hardware is not None else None,
        exact=exact if hardware is not None else None,
    )
    if ctx.machine is not None:
        if ctx.machine.topology == "systolic" and len(ctx.models) > 1:
            # Clusters on the systolic array keep the whole array's routes: the
            # nested levels' transfer terms were derived with them.
            ctx.machine = replace(ctx.machine, reach_hops=reach_hops(ctx.machine, ()))
        else:
            pes = _data_pes(ctx) if ctx.machine.topology in PES_READ else []
            ctx.machine = replace(
                ctx.machine,
                reach_hops=reach_hops(ctx.machine, pes),
                drain_hops=drain_hops(ctx.machine, pes),
            )
    top = _analyze_level(ctx, 0, problem.level_dims[0])
    if top.occurrences == 0 and not quirks.oversized_tile_edge_cut:
        raise _no_valid_unit_error(ctx, maestro_crashes=False)
    innermost = ctx.innermost_l1 if ctx.innermost_l1 is not None else top.l1_size_req
    done = {"innermost_l1_size_req": innermost, "levels_analyzed": ctx.analyses}
    if ctx.machine is not None:
        top = _refined_offchip(ctx, ctx.machine, top, done)
    else:
        top = replace(top, **done)
    _release(ctx)
    return top


def _release(ctx: _Context) -> None:
    """Drops the per-layer memo :attr:`_Context.shared` once the analysis is done: the
    nested steps it holds refer back to the context (:class:`_StepCost`), a cycle that
    would leave the whole context (hundreds of objects) to the cyclic garbage
    collector, whose passes then cost the analyses more than freeing it here."""
    ctx.shared.clear()
