"""The engine's shared pieces: a level's result, the per-layer analysis context and its
memos, the running totals of a level's cases, and a level's position states."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from operator import attrgetter, mul
from typing import TYPE_CHECKING, Any, TypeVar

from .assumptions import MAESTRO_ASSUMPTIONS, Assumptions
from .cases import EDGE, State, directive_states
from .cint import cdiv, fdiv
from .deviations import Quirks
from .groups import ExactCounts
from .problem import LevelDirective, Problem
from .refined import LevelReuse, Machine
from .traffic import LevelModel

if TYPE_CHECKING:
    from .refined_step import _CaseStep

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
    runtimes_only: bool = False
    """Only the nested levels' runtimes and busy units are read, every network is free
    and the model is MAESTRO's (the steady-state figures)."""
    read_shares: dict[int, float] = field(default_factory=dict)
    """Per input/weight tensor, the share of a top-level unit's tile its PEs read
    (:func:`_read_share`; refined model, nested levels)."""


def _delays(values: list[int], weights: list[int], total: int, compat: bool) -> Delays:
    if total == 0:
        return Delays(LONG_MIN, 0, LONG_MIN) if compat else Delays(0, 0, 0)
    # ``values`` and ``weights`` grow together, one entry per case counted.
    if len(values) == 1:
        value = values[0]
        return Delays(value, value, cdiv(value * weights[0], total))
    weighted = sum(map(mul, values, weights))
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
    steps: dict[tuple[object, ...], _CaseStep] = field(default_factory=dict)
    """Refined model: the step of each kind of case counted, by what it reads of the
    case (``engine._refined_case``; each entry's key holds its level model's identity,
    which the level analysis keeps alive)."""

    def finish(self, quirks: Quirks, last_step: tuple[int, int, int] = (0, 0, 0)) -> LevelResult:
        """The level's result once every case is counted (``last_step``:
        :attr:`LevelResult.last_step`)."""
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
            last_step=last_step,
        )


def level_states(
    model: LevelModel, dims_key: tuple[tuple[str, int], ...], quirks: Quirks
) -> tuple[dict[str, int], tuple[tuple[State, ...], ...]]:
    """A level's dimension extents over ``dims_key`` and each directive's position states
    (shared with :mod:`metronome.analytic.vectorised`, which must count the same cases)."""
    for seen in _recent_states:
        if seen[0] is model and seen[2] is quirks and seen[1] == dims_key:
            return seen[3]
    # A dimension first mapped at this level keeps its static extent (MAESTRO dies).
    dims = {**model.dims, **dict(dims_key)}
    per_directive = tuple(
        [
            _directive_states(d, dims[d.dim], model.units, model.edge_units, quirks)
            for d in model.directives
        ]
    )
    _recent_states[:] = [(model, dims_key, quirks, (dims, per_directive)), *_recent_states[:7]]
    return dims, per_directive


def _directive_states(
    d: LevelDirective, extent: int, units: int, edge_units: int, quirks: Quirks
) -> tuple[State, ...]:
    """:func:`directive_states` memoised by what it reads (the directive by identity,
    each entry holding it): a level's variants over other dimensions share most of
    their directives' extents; a temporal directive's read neither count of units)."""
    key = (
        (id(d), extent, units, edge_units, id(quirks)) if d.spatial else (id(d), extent, id(quirks))
    )
    seen = _states_seen.get(key)
    if seen is not None:
        return seen[2]
    states = directive_states(
        d,
        extent,
        units,
        edge_units,
        init_edge_always_partial=quirks.init_edge_last_unit_partial,
        steps_past_the_end=quirks.steps_past_the_end,
    )
    if len(_states_seen) >= 64:
        _states_seen.clear()
    _states_seen[key] = (d, quirks, states)
    return states


_states_seen: dict[tuple[int, ...], tuple[LevelDirective, Quirks, tuple[State, ...]]] = {}
"""Recent directives' states by the identity of the directive (and quirks) and the
extents and units they read."""


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
