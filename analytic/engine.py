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
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from math import prod
from operator import attrgetter
from typing import Any, TypeVar

from metronome.spec.hardware import UNBOUNDED, Hardware
from metronome.spec.source import SpecError
from metronome.spec.window import FILTER_OF, INPUT_OF, OUTPUT_OF, windows

from .assumptions import MAESTRO_ASSUMPTIONS, Assumptions
from .cases import EDGE, INIT, STEADY, State, directive_states, enumerate_cases
from .cint import cdiv, fdiv
from .deviations import Quirks
from .groups import ExactCounts
from .problem import LevelDirective, Problem
from .refined import (
    LevelReuse,
    Machine,
    array_footprints,
    ceil_div,
    collection_hold,
    drain_hops,
    evicted_psums,
    level_reuse,
    machine_of,
    noc_delay,
    output_elems,
    path_fill,
    plane_hold,
    positions,
    reach_hops,
    reduction_delay,
    tensor_elems,
    touched_rows,
)
from .tiles import level_tiles
from .traffic import (
    WRAP_KEPT,
    WRAP_LOST,
    LevelModel,
    TensorView,
    changing_directive,
    full_unit_tile,
    mapped_volume,
    output_traffic,
    spatial_ingress,
    sub_level_dims,
    tile_refetched,
    unit_new_part,
    unit_tile,
)

__all__ = ["Delays", "LevelResult", "NocLevel", "analyze_problem"]

_T = TypeVar("_T")
_FIELDS: dict[type, tuple[attrgetter[Any], dict[str, int]]] = {}


def replace(obj: _T, **changes: Any) -> _T:
    """:func:`dataclasses.replace` for the engine's dataclasses (every field an init
    field, no ``__post_init__``), without its per-call field introspection: the
    analyses copy a result or a level model in every case."""
    cls = type(obj)
    known = _FIELDS.get(cls)
    if known is None:
        names = tuple(f.name for f in fields(obj))  # type: ignore[arg-type]
        known = _FIELDS[cls] = (attrgetter(*names), {n: i for i, n in enumerate(names)})
    get, index = known
    values = list(get(obj)) if len(index) > 1 else [get(obj)]
    for name, value in changes.items():
        values[index[name]] = value
    return cls(*values)


LONG_MIN = -(2**63)
"""What MAESTRO prints for a delay statistic of a level with no valid case."""


@dataclass(frozen=True, slots=True)
class NocLevel:
    """Bandwidth (elements/cycle) and zero-load latency (cycles) of one level's NoC."""

    bandwidth: int
    latency: int
    free: bool = False
    """A level whose transfers cost nothing (``Assumptions.nested_noc_charged`` off)."""

    def delay(self, elems: int) -> int:
        """Cycles to move ``elems`` elements: latency + ceil(elems / bandwidth) - 1."""
        if self.free:
            return 0
        sends = cdiv(elems, self.bandwidth) + (1 if elems % self.bandwidth else 0)
        return self.latency + sends - 1


@dataclass(frozen=True, slots=True)
class Delays:
    """Min, max and occurrence-weighted mean (truncated) of a per-step delay."""

    min: int
    max: int
    avg: int


@dataclass(frozen=True, slots=True)
class LevelResult:
    """Everything one level analysis produces (per tensor in input, weight, output order)."""

    runtime: int
    macs: int
    l1_reads: tuple[int, ...]
    l1_writes: tuple[int, ...]
    l2_reads: tuple[int, ...]
    l2_writes: tuple[int, ...]
    l2_size_req: tuple[int, ...]
    l1_size_req: tuple[int, ...]
    peak_bw: int
    avg_bw: float
    offchip_req: int
    ingress: Delays
    egress: Delays
    compute: Delays
    avg_active: float
    arithmetic_intensity: float
    occurrences: int
    innermost_l1_size_req: tuple[int, ...] = (0, 0, 0)
    levels_analyzed: int = 1
    offchip_reads: int = -1
    """Elements read from off-chip (refined model; -1: not modelled)."""
    offchip_writes: int = -1
    """Elements written off-chip (refined model; -1: not modelled)."""
    runtime_base: float = -1.0
    """The refined runtime without what the collections add (a level above, whose
    collections carry the same partial sums, takes the slower of the two)."""
    runtime_exact: float = -1.0
    """The runtime before rounding (refined model: costs amortised over steps)."""
    last_step: tuple[int, int, int] = (0, 0, 0)
    """(compute, collection, distribution) cycles of the last step counted (refined)."""
    case_volumes: tuple[tuple[int, tuple[int, ...]], ...] = ()
    """(steps, per-tensor L2 reads per step) of each case counted."""
    last_egress: int = 0
    """Output elements leaving in the last step counted."""
    first_volumes: tuple[int, ...] = ()
    """Per input tensor, the elements the level's first step moves (refined model)."""
    slack: tuple[tuple[int, float, float], ...] = ()
    """Innermost nested level (refined): per case (steps, cycles a step lasts beyond its
    cost without compute, its compute): how far a smaller compute can shorten it."""
    received: frozenset[int] = frozenset()
    """Input tensors some step of the level after its first, or of a level below,
    receives (refined): holding any other changes none of its steps."""
    global_steps: int = 0
    """Lock-step steps of this level's nest as its cases count them (refined model)."""
    compute_total: float = 0.0
    """Compute cycles of those steps (innermost: ``ceil(psums / lanes)`` per step;
    above: the busiest unit's nest), the part of the runtime that is compute."""


@dataclass(slots=True)
class _Context:
    problem: Problem
    models: tuple[LevelModel, ...]
    nocs: tuple[NocLevel, ...]
    simd_lanes: int
    offchip_bw: int
    quirks: Quirks
    strides: dict[str, int]
    assumptions: Assumptions = MAESTRO_ASSUMPTIONS
    memo: dict[tuple[int, tuple[tuple[str, int], ...], frozenset[int]], LevelResult] = field(
        default_factory=dict
    )
    with_partial_unit: dict[int, LevelModel] = field(default_factory=dict)
    innermost_l1: tuple[int, ...] | None = None
    analyses: int = 0
    machine: Machine | None = None
    """The hardware, when the refined model's terms replace MAESTRO's."""
    pe_shares: dict[tuple[object, ...], dict[str, float]] = field(default_factory=dict)
    """Per level: one PE's share of the level's tile per dimension spread below (refined)."""
    outer_share: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    """Per level: the output, unit and leaving shares of the levels above (refined)."""
    exact: ExactCounts | None = None
    """The executed nest's exact counts (refined model; :mod:`metronome.analytic.groups`)."""
    unit_ratio: float = 1.0
    """The top level's units that hold work per step, the exact count's over the case
    enumeration's, where the enumeration has more (refined model, one level)."""
    tile_ratio: tuple[float, ...] = ()
    """Where ``unit_ratio < 1``, per input/weight tensor partitioned over the units:
    the tile elements the executed nest's PEs hold over the enumeration's."""
    unit_counts: dict[tuple[str, int], int] = field(default_factory=dict)
    """Unit counts of the levels below or above a level, which depend on the level
    models alone (memoised per layer: every case asks)."""
    split_groups: dict[tuple[int, int, int, int], tuple[int, int]] = field(default_factory=dict)
    """Per (level, reduction directive, its full and last tile): the units below holding
    partial sums of the same outputs under each of the two tiles (memoised per layer)."""
    subs: dict[
        tuple[int, int, bool],
        tuple[
            LevelModel,
            tuple[State, ...],
            tuple[tuple[str, int], ...],
            dict[frozenset[int], LevelResult],
        ],
    ] = field(default_factory=dict)
    """A case's nested analysis by the identity of its level model and states (each
    entry holds both, so the identities stay theirs): every case asks several times."""
    delays: dict[
        tuple[object, ...],
        tuple[Machine, NocLevel, LevelModel, LevelReuse, tuple[int, int, int, int]],
    ] = field(default_factory=dict)
    """A step's network delays by what they depend on (:func:`_refined_delays`; each
    entry holds the objects whose identities its key takes)."""
    bare: Machine | None = None
    """The machine without hop and adder latencies (the phases' bare serialisation)."""
    levels: dict[tuple[int, tuple[tuple[str, int], ...]], tuple[LevelModel, LevelReuse]] = field(
        default_factory=dict
    )
    """Per level and dimensions analysed, the level's model and its reuse before the
    levels above's shares (the analyses with other input tensors held ask again)."""
    top_footprints: tuple[int, ...] | None = None
    """A unit's footprint per directive of the top level, where its reuse took whole
    unit tiles (no per-PE split): the off-chip terms ask for the same sweeps."""
    shared: dict[tuple[object, ...], tuple[object, ...]] = field(default_factory=dict)
    """Per-layer memo of what the analyses of one level over the same dimensions with
    other input tensors held ask again (:func:`_outer_reuse`, :func:`_held_over`); each
    entry holds the objects whose identities its key takes."""
    read_shares: dict[int, float] = field(default_factory=dict)
    """Per input/weight tensor, the share of a top-level unit's tile its PEs read
    (:func:`_read_share`; refined model, nested levels)."""


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
    return built


def _build_level_models(problem: Problem, quirks: Quirks) -> tuple[LevelModel, ...]:
    models = []
    last = len(problem.levels) - 1
    for index, directives in enumerate(problem.levels):
        dims = dict(problem.level_dims[index])
        first_index: dict[str, int] = {}
        for i, d in enumerate(directives):
            first_index.setdefault(d.dim, i)
        views = []
        for tensor in problem.tensors:
            coupled = tuple(i for i, d in enumerate(directives) if d.dim in tensor.dims)
            by_dim = tuple(
                (
                    dim,
                    first_index[dim],
                    OUTPUT_OF.get(dim, dim) if tensor.is_output and problem.conv else dim,
                )
                for dim in tensor.dims
                if dim in first_index
            )
            views.append(TensorView(tensor, coupled, by_dim, tuple(i for _, i, _ in by_dim)))
        spatial = tuple(i for i, d in enumerate(directives) if d.spatial)
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
                    strides=None
                    if quirks.stride_ignored_in_tile_outputs
                    else dict(problem.strides),
                ),
                inputs=tuple(v for v in views if not v.tensor.is_output),
                output=output,
                first_spatial=spatial[0],
                spatial=spatial,
                non_output=tuple(
                    i for i, d in enumerate(directives) if d.dim not in output.tensor.dims
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


def _delays(values: list[int], weights: list[int], total: int, compat: bool) -> Delays:
    if total == 0:
        return Delays(LONG_MIN, 0, LONG_MIN) if compat else Delays(0, 0, 0)
    weighted = sum(v * w for v, w in zip(values, weights, strict=True))
    return Delays(min(values), max(values), cdiv(weighted, total))


@dataclass(slots=True)
class _Totals:
    """Running sums of one level analysis (per tensor: input, weight, output)."""

    l1_reads: list[int] = field(default_factory=lambda: [0, 0, 0])
    l1_writes: list[int] = field(default_factory=lambda: [0, 0, 0])
    l2_reads: list[int] = field(default_factory=lambda: [0, 0, 0])
    l2_writes: list[int] = field(default_factory=lambda: [0, 0, 0])
    l2_size: list[int] = field(default_factory=lambda: [0, 0, 0])
    l1_size: list[int] = field(default_factory=lambda: [0, 0, 0])
    runtime: float = 0
    """Cycles (fractional where the refined model amortises a cost over steps)."""
    base_runtime: float = 0
    """The refined runtime without what the collections add."""
    macs: int = 0
    peak_bw: int = 0
    bw_weighted: int = 0
    offchip_req: int = 0
    offchip_max: int = 0
    active_sum: float = 0.0
    occurrences: int = 0
    intensity: float = 0.0
    ingress_total: int = 0
    ingress: list[int] = field(default_factory=list)
    egress: list[int] = field(default_factory=list)
    compute: list[int] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    """Per case: the dimension of its changing directive (\"\" for the first step)."""
    global_steps: int = 0
    compute_total: float = 0.0
    deferred: list[
        tuple[int, float, float, Callable[[float, float, tuple[float, float] | None], float]]
    ] = field(default_factory=list)
    """Top-level cases of the refined model: (steps, compute delay, its compute part,
    step cost given the compute delay and a traffic factor), summed once the exact
    counts say how many steps there are (:func:`_exact_runtime`)."""
    volumes: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)
    """(steps, per-tensor L2 reads per step) of each case counted (refined model)."""
    carrying: list[int] = field(default_factory=list)
    """Per deferred case: 0 the level's first step, 1 a step receiving inputs, 2 one
    receiving none (refined model)."""
    moved: list[int] = field(default_factory=lambda: [0, 0])
    """Elements the top level's steps after its first receive, per input tensor (refined
    model)."""
    moving: list[int] = field(default_factory=lambda: [0, 0])
    """The top level's steps after its first that receive each input tensor (refined
    model)."""
    gathered: list[tuple[float, tuple[int, ...]]] = field(default_factory=list)
    """What the executed steps receive where each gathers several of the enumeration's
    receiving steps: (share of those steps, elements per input tensor), set by
    :func:`_phantom_weights`."""
    last_egress: int = 0
    """Output elements leaving in the last case counted (refined model)."""
    first_volumes: tuple[int, ...] = ()
    """Per input tensor, the elements the level's first step moves (refined model)."""
    received: set[int] = field(default_factory=set)
    """Input tensors received after the level's first step, or below (refined model)."""
    slack: list[tuple[int, float, float]] = field(default_factory=list)
    """Innermost nested level: :attr:`LevelResult.slack`."""
    shrinks: list[tuple[tuple[int, float, float], ...]] = field(default_factory=list)
    """Top level, per deferred case: the slack of its busiest unit's nest."""

    def finish(self, quirks: Quirks) -> LevelResult:
        """The level's result once every case is counted."""
        if not quirks.offchip_req_halved_per_case:
            self.offchip_req = cdiv(self.offchip_max, 2)
        if not quirks.arithmetic_intensity_last_case:
            self.intensity = fdiv(self.macs, self.ingress_total)
        total, weights = self.occurrences, self.weights
        garbage = quirks.oversized_tile_edge_cut
        return LevelResult(
            runtime_exact=float(self.runtime),
            runtime_base=float(self.base_runtime),
            runtime=round(self.runtime),
            macs=self.macs,
            l1_reads=tuple(self.l1_reads),
            l1_writes=tuple(self.l1_writes),
            l2_reads=tuple(self.l2_reads),
            l2_writes=tuple(self.l2_writes),
            l2_size_req=tuple(self.l2_size),
            l1_size_req=tuple(self.l1_size),
            peak_bw=self.peak_bw,
            avg_bw=fdiv(self.bw_weighted, total),
            offchip_req=self.offchip_req,
            ingress=_delays(self.ingress, weights, total, garbage),
            egress=_delays(self.egress, weights, total, garbage),
            compute=_delays(self.compute, weights, total, garbage),
            avg_active=self.active_sum / total if total else self.active_sum,
            arithmetic_intensity=self.intensity,
            occurrences=total,
            global_steps=self.global_steps,
            compute_total=self.compute_total,
            case_volumes=tuple(self.volumes),
            last_egress=self.last_egress,
            first_volumes=self.first_volumes,
            received=frozenset(self.received),
            slack=tuple(self.slack),
        )


def level_states(
    model: LevelModel, dims_key: tuple[tuple[str, int], ...], quirks: Quirks
) -> tuple[dict[str, int], tuple[tuple[State, ...], ...]]:
    """A level's dimension extents over ``dims_key`` and each directive's position states
    (shared with :mod:`metronome.analytic.vectorised`, which must count the same cases)."""
    for seen in _recent_states:
        if seen[0] is model and seen[1] is dims_key and seen[2] is quirks:
            return seen[3]
    # A dimension first mapped at this level keeps its static extent (MAESTRO dies).
    dims = {**model.dims, **dict(dims_key)}
    per_directive = tuple(
        directive_states(
            d,
            dims[d.dim],
            model.units,
            model.edge_units,
            init_edge_always_partial=quirks.init_edge_last_unit_partial,
            steps_past_the_end=quirks.steps_past_the_end,
        )
        for d in model.directives
    )
    _recent_states[:] = [(model, dims_key, quirks, (dims, per_directive)), *_recent_states[:7]]
    return dims, per_directive


_recent_states: list[
    tuple[
        LevelModel,
        tuple[tuple[str, int], ...],
        Quirks,
        tuple[dict[str, int], tuple[tuple[State, ...], ...]],
    ]
] = []
"""The last levels' states, by identity (the top level's are asked for again by the
off-chip terms and the steady-state figures)."""


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
    totals = _Totals()
    if ctx.machine is not None and index == 0 and ctx.exact is not None and len(ctx.models) == 1:
        ctx.unit_ratio = _unit_ratio(ctx.exact, model, per_directive, quirks)
        if ctx.unit_ratio < 1:
            ctx.tile_ratio = _tile_ratios(ctx, ctx.exact, model, per_directive)
    if ctx.machine is not None and reuse is None:
        below = prod(ctx.problem.units[index + 1 :])
        capacity = ctx.machine.l1_elems * below if ctx.machine.l1_elems < UNBOUNDED else UNBOUNDED
        reduced_below = {
            d.dim: d.size + d.offset * (lower.units - 1)
            for lower in ctx.models[index + 1 :]
            for i in lower.spatial
            if i in lower.non_output
            for d in [lower.directives[i]]
            if lower.dims[d.dim] > d.size
        }
        per_pe = _pe_shares(ctx, model)
        if per_pe and capacity < UNBOUNDED:
            # Each PE's L1 holds its own part: compare one PE's footprint with it.
            capacity = ctx.machine.l1_elems
        reuse = level_reuse(
            model, dims, per_directive, ctx.strides, capacity, reduced_below, per_pe or None
        )
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
        own = reuse.output_share / ctx.outer_share.get(index, (1.0,))[0]
        # Each output leaves once per session: at most |O| times the reduction loops'
        # positions times the share (the enumeration's egress also counts the steps
        # its states add, which touch no new partial sum). Not where units reduce the
        # same outputs (each sends its copy) or on the systolic array (its partial sums
        # leave every fold).
        egress = totals.l2_writes[2] * reuse.distinct
        spread = _reduced_below(ctx, index) > 1 or any(
            model.directives[r].spatial for r in model.non_output
        )
        if not spread and ctx.machine is not None and ctx.machine.topology != "systolic":
            sessions = prod(positions(per_directive[r]) for r in model.non_output)
            outputs = output_elems(dims, ctx.strides, model.output.tensor.dims)
            egress = min(egress, outputs * sessions)
        totals.l2_writes[2] = round(egress * own)
    if index == 0 and ctx.exact is not None and totals.deferred:
        carries = None
        if len(ctx.models) == 1:
            carries = _walk_carries(ctx.exact, model, per_directive, reuse)
        _exact_runtime(ctx.exact, totals, carries)
    result = totals.finish(quirks)
    if reuse is not None and totals.egress:
        last = (totals.compute[-1], totals.egress[-1], totals.ingress[-1])
        result = replace(result, last_step=last)
    if model.innermost and ctx.innermost_l1 is None:
        ctx.innermost_l1 = result.l1_size_req
    ctx.memo[key] = result
    return result


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
    elif 0 < exact.idle_steps < exact.top_steps == exact.steps:
        # Nested levels of one step per top position: the same.
        working = exact.top_steps - exact.idle_steps
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
    totals.runtime = sum(
        w * occ * step(c + _shrunk(kappa, k, slack), spread, f)
        for (occ, c, k, step), (w, spread, f), slack in zip(
            totals.deferred, weighted, floors, strict=True
        )
    )
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
    tiles = level_tiles(
        model.directives,
        dims,
        clip_oversized=True,
        no_edge_past_the_end=not quirks.steps_past_the_end,
        strides=dict(ctx.problem.strides),
    )
    clipped = {k: min(v, dims[k]) if k in dims else v for k, v in tiles.mapped.items()}
    return replace(
        model,
        dims=dims,
        edge_units=_edge_units(
            model.directives, model.units, dims, model.first_spatial, quirks.steps_past_the_end
        ),
        tiles=replace(tiles, mapped=clipped),
    )


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
    egress, psums, case_mac = output_traffic(model, states)
    if reuse is not None and model.index == 0:
        egress = _on_units(ctx, model, model.output, egress)
    totals.l2_writes[2] += occ * egress
    totals.l1_writes[2] += occ * case_mac
    totals.l1_reads[2] += occ * case_mac
    if psums <= 0:
        return False
    ingress = 0
    volumes: list[int] = []
    wrap = 0
    kept: tuple[bool, ...] | None = None if reuse is not None else ()
    if reuse is not None and changing >= 0:
        wrap = WRAP_KEPT if reuse.fits[changing] else WRAP_LOST
    for t, view in enumerate(model.inputs):
        if reuse is not None and (
            t in held
            or _held_since_sweep(reuse, view, states, changing)
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
            if model.index == 0:
                volume = _on_units(ctx, model, view, volume, t)
                if reuse is not None and len(ctx.models) > 1:
                    volume = math.ceil(volume * _read_share(ctx, t))
        volumes.append(volume)
        if volume > 0 and changing >= 0:
            totals.received.add(t)
        ingress += volume
        totals.l2_reads[t] += occ * volume
        totals.l1_writes[t] = totals.l2_reads[t]
        totals.l1_reads[t] += occ * case_mac
    totals.intensity = fdiv(case_mac, ingress)
    totals.ingress_total += occ * ingress
    below: list[LevelResult] = []
    inner_held = _held_below(model, changing, volumes) if reuse is not None else frozenset()
    compute, active = _compute(ctx, model, states, psums, dims, below, inner_held)
    novel = _partly_new(model, states, changing, volumes, inner_held) if reuse else None
    if novel is not None:
        # Only the share of the nested steps that walks the new part receives it.
        t, share = novel
        also_below: list[LevelResult] = []
        held_too = _compute(ctx, model, states, psums, dims, also_below, inner_held | {t})[0]
        compute = share * compute + (1 - share) * held_too  # type: ignore[assignment]
    noc = ctx.nocs[model.index]
    serial_fill = changing < 0 and (model.index == 0 or ctx.assumptions.nested_fill_serialised)
    if reuse is not None and ctx.machine is not None:
        reuse, split = _split_case(ctx, model, states, reuse)
        # Where every unit's partial sums travel (no adders in the network), each unit
        # sends its own once: the groups finishing apart are among those copies.
        carried = _carried(ctx, ctx.machine, model)
        sent = tuple(volumes)
        in_busy, step_in, out_busy, step_out = _refined_delays(
            ctx, ctx.machine, noc, model, states, sent, egress, reuse
        )
        if noc.free and changing < 0:
            # A nested level's first tiles came with the level above's step (charged
            # there, and fetched only where L1 lacked them).
            in_busy = step_in = 0
        # The part of each phase's busy time that does not grow with its volume (the
        # route's fill, the adders), which the exact counts spread by phases, not by
        # volume (:func:`_exact_runtime`).
        in_bare, out_bare = in_busy, out_busy
        if model.index == 0 and ctx.exact is not None and ctx.machine.topology in FILLED:
            bare = ctx.bare
            if bare is None:
                bare = ctx.bare = replace(ctx.machine, hop_latency=0, adder_latency=0)
            in_bare, _, out_bare, _ = _refined_delays(
                ctx, bare, noc, model, states, sent, egress, reuse
            )
        in_fill, out_fill = in_busy - in_bare, out_busy - out_bare
        serial = (
            serial_fill
            or (model.innermost and not _held_over(ctx, ctx.machine, model, states, changing))
            or (
                model.index == 0
                and not model.innermost
                and not _pe_held_over(ctx, model, states, changing)
            )
        )
        out_share = reuse.distinct * (reuse.unit_share if carried else reuse.output_share)
        # The nested level's runtime includes what its own collections cost; this
        # level's collections carry the same partial sums, so the slower of the two
        # bounds paces the step, not their sum (``raw``: the nested runtime without).
        # (The slowest nested unit's runtime without its collections' cost.)
        raw = compute if model.innermost else max(r.runtime_base for r in below)
        if novel is not None and not model.innermost:
            raw = novel[1] * raw + (1 - novel[1]) * max(r.runtime_base for r in also_below)
        # Two output buffers: a unit computes once its egress before the latest has
        # drained, so two egress intervals take the drain plus the unit's computes in
        # between.
        arrival = _group_arrival(ctx, noc, model, states, reuse, egress)
        drains = _drains(ctx, model, dims, states, reuse, arrival)
        split = split and not model.innermost
        leaving = reuse.leaving
        unit_share = reuse.unit_share
        start_compute = compute

        machine, gathered = ctx.machine, totals.gathered
        gathering: dict[float, tuple[float, float, float, float]] = {}

        def gather(spread: float) -> tuple[float, float, float, float]:
            """The step's delays where it gathers ``spread`` of the enumeration's
            receiving steps: one transfer carries their tiles (``totals.gathered``'s
            tiers, else each tensor's times ``spread``): the links' serialisation
            grows, the route's fills, holds and adders stay."""
            if spread not in gathering:
                tiers = gathered or [(1.0, tuple(math.ceil(v * spread) for v in volumes))]
                mixed = [0.0, 0.0, 0.0, 0.0]
                for share, scaled in tiers:
                    tier = _refined_delays(ctx, machine, noc, model, states, scaled, egress, reuse)
                    mixed = [m + share * d for m, d in zip(mixed, tier, strict=True)]
                gathering[spread] = (mixed[0], mixed[1], mixed[2], mixed[3])
            return gathering[spread]

        def paced(
            compute: float, spread: float = 1.0, fills: tuple[float, float] | None = (1.0, 1.0)
        ) -> tuple[float, float]:
            """(The step's cost, the same without what this level's collections add)
            given its compute, with its traffic times ``spread`` and each plane's fill
            times ``fills``, or gathered into one transfer where ``fills`` is None
            (docs/refined-model.md, "A step" and "Exact counts")."""
            if fills is None and model.innermost:
                ib, si, ob, so = gather(spread)
            else:
                fill_in, fill_out = fills or (1.0, 1.0)
                ib = in_bare * spread + in_fill * fill_in
                ob = out_bare * spread + out_fill * fill_out
                si, so = step_in - in_busy + ib, step_out - out_busy + ob
            nested = raw + compute - start_compute
            if serial:
                # Where the partial sums leave at a reduction loop's last two positions
                # (``reuse.split``), this level's cases say which steps send: the nested
                # runtime's collections, spread over every step, are not a bound.
                serial_step = max(ib, ob, (nested if split else compute) + si)
                return serial_step, serial_step
            # Two buffers per PE: a step's data may arrive (its outputs must have
            # drained) once the step before the previous one finished, so the delays
            # and the compute share two steps; each plane carries one phase at a time.
            # Partial sums leave in a share ``leaving`` of the steps; within those, a
            # unit sends every ``leaving / unit_share`` steps, so one collection
            # overlaps that many steps of its compute, and the plane carries every
            # group's. Extra compute (exact counts) lengthens the nested runtime alike.
            base = max(ib, nested, (si + nested) / 2)
            step = base if split else max(ib, compute, (si + compute) / 2)
            if leaving > 0:
                per_step = max(
                    out_share / leaving * ob,
                    *(unit_share / leaving * (so + d + a * nested) / 2 for d, a in drains),
                )
                if per_step > base:
                    step = max(step, base + leaving * (per_step - base))
            return step, base

        def step_of(
            compute: float, spread: float = 1.0, fills: tuple[float, float] | None = (1.0, 1.0)
        ) -> float:
            """The step's cost given its compute, traffic spread and fills."""
            return paced(compute, spread, fills)[0]

        step, base = paced(compute)
        if model.innermost and model.index > 0:
            totals.slack.append((occ, step - step_of(0.0), compute))
        for result in below:
            totals.received.update(result.received)
        totals.base_runtime += occ * base
        inner_steps, inner_compute = _inner_work(below, compute)
        totals.global_steps += occ * inner_steps
        totals.compute_total += occ * inner_compute
        if model.index == 0 and ctx.exact is not None:
            totals.deferred.append((occ, compute, inner_compute, step_of))
            totals.shrinks.append(_busiest_slack(below))
            totals.carrying.append(0 if changing < 0 else 1 if any(volumes) else 2)
            if changing >= 0:
                for t, moved in enumerate(volumes):
                    totals.moved[t] += occ * moved
                    totals.moving[t] += occ if moved else 0
    else:
        step_in, step_out = noc.delay(ingress), noc.delay(egress)
        step = compute + step_in if serial_fill else max(step_out, compute, step_in)
    if model.index == 0:
        if compute == 0:
            raise _no_valid_unit_error(ctx, maestro_crashes=True)
        offchip_step, case_req = _offchip(ctx, totals.l2_size, compute)
        if ctx.machine is None:
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
        updating = any(states[i].position != INIT for i in model.non_output)
        totals.volumes.append((occ, (*volumes, egress if updating else 0)))
        if changing < 0:
            totals.first_volumes = tuple(volumes)
        totals.last_egress = egress
    return True


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


FILLED = ("tree", "mesh")
"""Topologies whose phases hold their plane for a fill beyond their serialisation."""


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


def _case_flags(states: tuple[State, ...]) -> list[tuple[bool, bool, bool, bool]]:
    """What the double-buffering tests read of each directive's state: at its edge
    position, at its edge tile, a partly filled last unit, unrolled (Init and Steady
    alike), the memo key part of a case."""
    return [(st.position == EDGE, st.is_edge, st.partial_last_unit, st.unrolled) for st in states]


def _held_over(
    ctx: _Context, machine: Machine, model: LevelModel, states: tuple[State, ...], changing: int
) -> bool:
    """:func:`_double_buffered`, memoised per layer by what it reads of the case (as
    :func:`_pe_held_over`; the analyses with other tensors held ask again too)."""
    key = (
        "double_buffered",
        id(machine),
        id(model),
        changing,
        *_case_flags(states),
    )
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
    ctx: _Context, model: LevelModel, states: tuple[State, ...], changing: int
) -> bool:
    """:func:`_pe_double_buffered`, memoised per layer by what it reads of the case: the
    changing loop and each directive's state up to Init or Steady (a loop outside the
    changing one adds none of its own part, so only its edge tile counts; a loop inside
    it is at Init, unrolled or not; a term reading more of the case must join the key)."""
    key = (
        "pe_double_buffered",
        id(model),
        changing,
        ctx.innermost_l1,
        *_case_flags(states),
    )
    seen = ctx.shared.get(key)
    if seen is None:
        seen = ctx.shared[key] = (model, _pe_double_buffered(ctx, model, states, changing))
    return seen[1]  # type: ignore[return-value]


def _pe_double_buffered(
    ctx: _Context, model: LevelModel, states: tuple[State, ...], changing: int
) -> bool:
    """Whether a PE's L1 holds its tiles of a top-level step beside what the next step
    adds, where levels are nested: a PE holds the innermost level's tile of each tensor
    (``ctx.innermost_l1``, twice a tile), and of it the share the top level's step adds
    to its unit's tile is new (:func:`_double_buffered` for one level)."""
    if ctx.machine is None or ctx.machine.l1_elems >= UNBOUNDED or ctx.innermost_l1 is None:
        return True
    if sum(ctx.innermost_l1) <= ctx.machine.l1_elems:
        # Two whole tiles fit: so does the tile with any part of the next.
        return True
    tile = new = 0.0
    for view, held in zip((*model.inputs, model.output), ctx.innermost_l1, strict=True):
        pe = held / 2
        unit = unit_tile(model, states, view)
        tile += pe
        if unit > 0:
            new += pe * min(unit_new_part(model, states, changing, view) / unit, 1.0)
    return ctx.machine.l1_elems >= tile + new


def _reduced_below(ctx: _Context, index: int) -> int:
    """Units of the levels below ``index`` holding partial sums of the same outputs
    (reduction dimensions mapped spatially there), whose copies all travel to L2 on a
    network without adders."""
    key = ("reduced_below", index)
    cached = ctx.unit_counts.get(key)
    if cached is None:
        cached = ctx.unit_counts[key] = _reduced_units(ctx.models[index + 1 :])
    return cached


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
    messages = []
    for view, volume in zip(model.inputs, volumes, strict=True):
        if volume > 0:
            partitioned = any(model.directives[i].spatial for i in view.order)
            messages.append((volume, active if partitioned else 1))
    # A nested level's tiles come over the one network within the level above's
    # traffic (charged there): its steps pay only the latency of their transfers.
    bandwidth = UNBOUNDED if noc.free else noc.bandwidth
    in_busy, in_delay = noc_delay(
        machine,
        messages,
        bandwidth,
        noc.latency,
        machine.l2_read_bw,
        noc.free,
        below=prod(ctx.problem.units[model.index + 1 :]),
    )
    out_flows = _out_flows(ctx, model, active)
    reduced = any(model.directives[i].spatial for i in model.non_output)
    copies = _case_copies(ctx, machine, model, states, reuse, active)
    out = [(egress * copies, out_flows * copies)] if egress > 0 else []
    out_busy, _ = noc_delay(
        machine,
        out,
        bandwidth,
        noc.latency,
        machine.l2_write_bw,
        noc.free,
        below=prod(ctx.problem.units[model.index + 1 :]),
        collect=True,
    )
    _, out_delay = noc_delay(
        machine,
        out,
        noc.bandwidth,
        noc.latency,
        machine.l2_write_bw,
        noc.free,
        below=prod(ctx.problem.units[model.index + 1 :]),
        collect=True,
    )
    if out_delay and machine.topology in ("bus", "crossbar"):
        # L2's adder tree adds every copy of the step's outputs, the clusters' of the
        # levels above included (one global step moves them all).
        out_delay += reduction_delay(machine, copies * _reduced_units(ctx.models[: model.index]))
    elif out_delay:
        # Where the network adds, the partial sums of the units reducing the same
        # outputs meet at adders: this level's and, on the mesh and the tree, the
        # clusters' of the levels above (one global step moves them all).
        above = 1
        if machine.topology in ("mesh", "tree"):
            above = _reduced_units(ctx.models[: model.index])
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
            below = prod(ctx.problem.units[model.index + 1 :])
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
    out_partitioned = any(model.directives[i].spatial for i in model.output.order)
    return (active if out_partitioned else 1) * _partitioned_below(ctx, model.index)


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
    reduced = any(model.directives[i].spatial for i in model.non_output)
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
    model: LevelModel,
    dims: dict[str, int],
    states: tuple[State, ...],
    reuse: LevelReuse,
    arrival: Callable[[float], int],
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
    (``arrival``: a collection of a share of the case's copies, :func:`_group_arrival`)."""
    if not reuse.leaving:
        return [(0, 1.0)]
    s = reuse.leaving / reuse.unit_share
    i = model.first_spatial
    r, p, how = reuse.split
    split = _split_groups(ctx, model, r) if how == "turns" else None
    if split is not None and i not in model.non_output:
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


def _case_model(ctx: _Context, model: LevelModel, states: tuple[State, ...]) -> LevelModel:
    """The level as this case sees it.

    At a spatial Edge whose last unit is only partly filled, E full units are active
    *and* the partial one; MAESTRO lets the partial unit take the place of a full one
    (D12), which the fixed model counts as one more active unit.
    """
    if ctx.quirks.partial_unit_displaces_full:
        return model
    state = states[model.first_spatial]
    if state.position != EDGE or not state.partial_last_unit:
        return model
    bumped = ctx.with_partial_unit.get(model.index)
    if bumped is None:
        bumped = replace(model, edge_units=model.edge_units + 1)
        ctx.with_partial_unit[model.index] = bumped
    return bumped


def _offchip(ctx: _Context, l2_size: list[int], compute: int) -> tuple[int, int]:
    """Off-chip side of a top-level step, with L2 requirements in/w/out of the layer.

    Refilling L2 while the array computes (double buffering) takes
    ``(L2req_in + L2req_w) / offchip_bw / 2`` and ``L2req_out / offchip_bw / 2`` cycles,
    a floor under the step; the case needs ``max(L2req_out, L2req_in + L2req_w) /
    compute`` elements per cycle (C integer divisions).
    """
    in_req, out_req = l2_size[0] + l2_size[1], l2_size[-1]
    bw = ctx.offchip_bw
    floor = max(cdiv(cdiv(in_req, bw), 2), cdiv(cdiv(out_req, bw), 2))
    return floor, max(cdiv(out_req, compute), cdiv(in_req, compute))


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
    for t, view in enumerate(model.inputs):
        totals.l2_size[t] += 2 * spatial_ingress(model, states, changing, view)
        totals.l2_writes[t] = prod(dims[d] for d in view.tensor.dims if d in dims)
        totals.l1_size[t] += 2 * mapped_volume(model, view)
    totals.l2_size[2] = 2 * output_traffic(model, states)[0]
    totals.l2_reads[2] = _output_size(ctx, dims, model.output)
    totals.l1_size[2] = 2 * mapped_volume(model, model.output)


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
        result = _sub(ctx, model, states, False, held)
        if below_out is not None:
            below_out.append(result)
        busy = 0 + result.avg_active * active
        value = result.runtime_exact if ctx.machine is not None else result.runtime
        return value, busy if busy != 0 else float(active)  # type: ignore[return-value]
    # A partly filled last unit: its own analysis, and the full ones'.
    below = [(_sub(ctx, model, states, True, held), 1)]
    if model.edge_units - 1 > 0:
        below.append((_sub(ctx, model, states, False, held), model.edge_units - 1))
    busy = sum(r.avg_active * count for r, count in below)
    if below_out is not None:
        below_out.extend(r for r, _ in below)
    if ctx.machine is not None:
        exact = max(r.runtime_exact for r, _ in below)
        return exact, busy if busy != 0 else float(active)  # type: ignore[return-value]
    compute = max(r.runtime for r, _ in below)
    return compute, busy if busy != 0 else float(active)


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


def _held_below(model: LevelModel, changing: int, volumes: list[int]) -> frozenset[int]:
    """The input tensors a step of ``model`` moves none of (its units hold them since
    an earlier step): the nested level's steps find them in L1 and wait for none of
    their transfers. The layer's first step moves everything; a nested level's first
    step is the level above's, whose ``held`` its volumes already carry."""
    if model.innermost or (changing < 0 and model.index == 0):
        return frozenset()
    return frozenset(t for t, volume in enumerate(volumes) if volume == 0)


def _partly_new(
    model: LevelModel,
    states: tuple[State, ...],
    changing: int,
    volumes: list[int],
    held: frozenset[int],
) -> tuple[int, float] | None:
    """The one input tensor a step of ``model`` moves only part of (a sliding window's
    new rows), with that part's share of its tile, or None."""
    if model.innermost or changing < 0:
        return None
    partly = []
    for t, (view, volume) in enumerate(zip(model.inputs, volumes, strict=True)):
        if t in held or volume <= 0:
            continue
        whole = spatial_ingress(model, states, -1, view)
        if 0 < volume < whole:
            partly.append((t, volume / whole))
    return partly[0] if len(partly) == 1 else None


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
            pes = _data_pes(ctx)
            ctx.machine = replace(
                ctx.machine,
                reach_hops=reach_hops(ctx.machine, pes),
                drain_hops=drain_hops(ctx.machine, pes),
            )
    top = _analyze_level(ctx, 0, problem.level_dims[0])
    if top.occurrences == 0 and not quirks.oversized_tile_edge_cut:
        raise _no_valid_unit_error(ctx, maestro_crashes=False)
    innermost = ctx.innermost_l1 if ctx.innermost_l1 is not None else top.l1_size_req
    top = replace(top, innermost_l1_size_req=innermost, levels_analyzed=ctx.analyses)
    if ctx.machine is not None:
        top = _refined_offchip(ctx, ctx.machine, top)
    return top


def _touched(ctx: _Context, dims: dict[str, int]) -> dict[str, int]:
    """Per dimension, the rows some innermost tile reads (tiles may leave gaps)."""
    out: dict[str, int] = {}
    for dim, extent in dims.items():
        levels: list[tuple[int, int] | None] = []
        for model in ctx.models:
            d = next((d for d in model.directives if d.dim == dim), None)
            levels.append((d.size, d.offset) if d is not None else None)
        out[dim] = touched_rows(levels, extent)
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
    egress = sum(occ * volumes[-1] for occ, volumes in top.case_volumes)
    per_egress = psums / egress if egress > 0 else 0.0
    steps = 0
    for occ, volumes in top.case_volumes:
        misses = sum(volumes[t] * share.get(t, 0.0) for t in refetched)
        misses += volumes[-1] * per_egress
        steps += occ * math.ceil(misses / bw - 1e-9)
    return steps + ceil_div(once, bw)


def _refined_offchip(ctx: _Context, machine: Machine, top: LevelResult) -> LevelResult:
    """Off-chip reads (each element once while L2 holds it), L2 fills, read-modify-write
    reads of partial sums, and the runtime with the off-chip channel as a floor: the
    first step's data arrive before it starts and the outputs go off-chip after the
    last one (docs/refined-model.md, "Off-chip")."""
    model = ctx.models[0]
    dims, per_directive = level_states(model, ctx.problem.level_dims[0], ctx.quirks)
    whole = array_footprints(model, dims, per_directive, ctx.strides)
    below = _active_below(ctx, 0)
    l1 = machine.l1_elems * below if machine.l1_elems < UNBOUNDED else UNBOUNDED
    footprints = ctx.top_footprints
    if footprints is None:
        footprints = array_footprints(model, dims, per_directive, ctx.strides, array=False)
    held = tuple(l1 >= UNBOUNDED or f <= l1 for f in footprints)
    l2_writes = list(top.l2_writes)
    l2_reads = list(top.l2_reads)
    reads = 0
    refetched: list[int] = []
    rows = _touched(ctx, dims)
    for t, view in enumerate(model.inputs):
        size = tensor_elems(dims, view.tensor.dims, rows)
        refetch = 1
        for c in range(len(model.directives)):
            p = positions(per_directive[c])
            if c in view.coupled or p <= 1 or machine.l2_elems >= UNBOUNDED:
                continue
            wraps = any(j > c and positions(per_directive[j]) > 1 for j in view.coupled)
            # Refetched only if the units read it again (their L1s lost it) and L2
            # lost it too.
            if wraps and not held[c] and whole[c] > machine.l2_elems:
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
        footprints,
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
    )
