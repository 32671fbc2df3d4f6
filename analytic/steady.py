"""Steady-state figures of the closed form (the seed paper's Fig. 6 conditions).

A *steady* case of the top cluster level is one where no directive sits at its Edge
position (a clipped tile or a partly filled last spatial fold) and which is not the
all-Init case (the layer's first step, which fills every tile). A directive whose whole
dimension fits in one position (unrolled, possibly with idle units) has no edge to be
at: its one state is part of every step, steady ones included. The figures are sums over
the steady cases, each weighted by its occurrences, with the step taken as its compute
delay (the roofline: no NoC or memory stall; nested levels analysed with free NoCs so
their runtime is their compute). Definitions: docs/paper.md.
"""

from __future__ import annotations

import math

from metronome.spec.results import SteadyState

from .cases import EDGE, enumerate_cases
from .context import NocLevel, _case_model, _Context, level_states
from .deviations import Quirks
from .engine import _compute, _level_models
from .problem import Problem
from .traffic import changing_directive, mapped_volume, output_traffic, spatial_ingress

__all__ = ["steady_state"]


def _pe_tiles(ctx: _Context) -> int:
    """Elements of one PE's current tiles (input, weight, output): the innermost level's
    mapped tiles, the paper's ``NumS(Weight) + NumS(Input) + NumS(Sum)``."""
    inner = ctx.models[-1]
    return sum(mapped_volume(inner, view) for view in (*inner.inputs, inner.output))


def steady_state(problem: Problem, *, simd_lanes: int, quirks: Quirks) -> SteadyState:
    """Sums over the top level's steady cases of ``problem`` (built with ``quirks``)."""
    free = NocLevel(1, 0, free=True)
    ctx = _Context(
        problem=problem,
        models=_level_models(problem, quirks),
        nocs=(free,) * len(problem.levels),
        simd_lanes=simd_lanes,
        offchip_bw=1,
        quirks=quirks,
        strides=dict(problem.strides),
        runtimes_only=True,
    )
    model = ctx.models[0]
    dims, per_directive = level_states(model, problem.level_dims[0], quirks)
    pe_tiles = _pe_tiles(ctx)
    # A steady case's directives sit at Init or Steady, and a directive with a Steady
    # state is neither unrolled past its end nor partly filled at Init, so every steady
    # case reads the same edge flags: the same output traffic, units and nested
    # analysis. Only the ingress follows the case's changing loop.
    steady: tuple[int, int, int, int, float] | None = None
    steps = ingress = 0
    # The states at an Edge position, by directive: a case is at one where it picked
    # that very state (the cases are tuples of ``per_directive``'s states).
    edges = [(i, s) for i, states in enumerate(per_directive) for s in states if s.position == EDGE]
    for states, occ in enumerate_cases(per_directive, int32_occurrences=quirks.int32_overflow):
        at_edge = occ <= 0
        for i, edge in edges:
            if states[i] is edge:
                at_edge = True
                break
        if at_edge:
            continue
        changing = changing_directive(states)
        if changing < 0:
            continue
        if steady is None:
            case_model = _case_model(ctx, model, states)
            egress, psums, case_macs = output_traffic(case_model, states)
            if psums <= 0:
                break
            compute, active = _compute(ctx, case_model, states, psums, dims)
            steady = (egress, psums, case_macs, compute, active)
        steps += occ
        for v in case_model.inputs:
            ingress += occ * spatial_ingress(case_model, states, changing, v)
    egress, _, macs, compute, active = steady or (0, 0, 0, 0, 0.0)
    cycles, macs, noc = steps * compute, steps * macs, ingress + steps * egress
    l1_all = pe_tiles * math.ceil(active) if steady is not None else 0
    # The closed form reads from L2 exactly what enters the NoC and writes what leaves it.
    return SteadyState(
        steps=steps,
        compute_cycles=cycles,
        macs=macs,
        noc_elems=noc,
        l2_elems=noc,
        l1_elems_all_pes=l1_all,
    )
