"""Iteration cases of one cluster level: every combination of per-directive states.

Per directive on dimension D (map size m, offset o, N indices in the dimensions this
analysis runs on, U units at the level):

* TemporalMap: *Init* once ("unrolled" if N <= m, "init-edge" if N < m); *Steady*
  ``(N - m) // o`` times when m < N and that is > 0; *Edge* once when not init-edge
  and ``steady*o + m < N``.
* SpatialMap, coverage ``cov = m + o*(U-1)``: *Init* once (unrolled if N <= cov,
  init-edge and "partial last unit" if N < cov); *Steady* ``s = ((N-m)//o + 1)//U - 1``
  times when cov < N and s > 0; *Edge* once when not unrolled, not init-edge,
  ``(s+1)*o*U + cov > N`` and ``s*o*U + cov != N``; the edge has a partially filled
  last unit when ``(a-1)*o + m < r`` with r = N - (s+1)*o*U and a its active units.

A case picks one state per directive; its occurrence count is the product. Cases are
listed in MAESTRO's order (it matters for the order-dependent quantities): the counter
of directive i (change period f_i = product of the state counts after it) advances
*after* being read whenever ``case % f_i == 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from .cint import cdiv
from .problem import LevelDirective

__all__ = ["EDGE", "INIT", "STEADY", "State", "directive_states", "enumerate_cases"]

INIT, STEADY, EDGE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class State:
    """The state of one directive in a case."""

    position: int
    occurrences: int
    unrolled: bool = False
    init_edge: bool = False
    partial_last_unit: bool = False
    is_edge: bool = False
    """At an edge: the Edge position, or an Init that already overruns N."""


def directive_states(
    d: LevelDirective,
    extent: int,
    units: int,
    edge_units: int = 0,
    *,
    init_edge_always_partial: bool = True,
    steps_past_the_end: bool = True,
) -> tuple[State, ...]:
    """The states a directive goes through over ``extent`` indices.

    At an init-edge (fewer indices than the units cover) MAESTRO always takes the last
    active unit as partly filled (deviation D9); fixed, it is partial only when its
    tile, at ``(edge_units - 1) * o``, runs past the end. With gaps between tiles
    (offset > size, e.g. after stride rewriting) MAESTRO adds an edge step or unit that
    starts at or past the end of the dimension (D11); fixed, there is none.
    """
    size, ofs = d.size, d.offset
    if not d.spatial:
        init_edge = extent < size
        states = [State(INIT, 1, extent <= size, init_edge, is_edge=init_edge)]
        steady = cdiv(extent - size, ofs)
        if size < extent and steady > 0:
            states.append(State(STEADY, steady))
        past_end = not steps_past_the_end and (steady + 1) * ofs >= extent
        if not init_edge and steady * ofs + size < extent and not past_end:
            states.append(State(EDGE, 1, is_edge=True))
        return tuple(states)
    coverage = size + ofs * (units - 1)
    unrolled, init_edge = extent <= coverage, extent < coverage
    partial_init = init_edge
    if not init_edge_always_partial:
        partial_init = init_edge and (edge_units - 1) * ofs + size > extent
    states = [State(INIT, 1, unrolled, init_edge, partial_init, init_edge)]
    steady = cdiv(cdiv(extent - size, ofs) + 1, units) - 1
    stride = ofs * units
    has_edge = (
        not unrolled
        and (steady + 1) * stride + coverage > extent
        and steady * stride + coverage != extent
    )
    if coverage < extent and steady > 0:
        states.append(State(STEADY, steady))
    remaining = extent - (steady + 1) * stride
    active = 1 if remaining < size else cdiv(remaining - size, ofs) + 1
    partial = (active - 1) * ofs + size < remaining
    if not steps_past_the_end:
        has_edge = has_edge and remaining > 0
        partial = partial and active * ofs < remaining
    if not init_edge and has_edge:
        states.append(State(EDGE, 1, partial_last_unit=partial, is_edge=True))
    return tuple(states)


def enumerate_cases(
    per_directive: tuple[tuple[State, ...], ...], *, int32_occurrences: bool = False
) -> list[tuple[tuple[State, ...], int]]:
    """All cases as (state per directive, occurrences), in MAESTRO's order.

    MAESTRO multiplies the occurrence counts in a C ``int``; ``int32_occurrences``
    reproduces its wrap-around (only cases with more than 2**31 steps are affected).
    """
    # The top level's cases are asked for again by the steady-state figures, a nested
    # level's by its analyses over the same extents (its directives' states are
    # memoised: equal states are the same objects).
    key = (*map(id, per_directive), int32_occurrences)
    seen = _recent.get(key)
    if seen is not None:
        return seen[1]
    counts = [len(s) for s in per_directive]
    periods = [prod(counts[i + 1 :]) for i in range(len(counts))]
    counters = [0] * len(counts)
    cases: list[tuple[tuple[State, ...], int]] = []
    for case_id in range(prod(counts)):
        picked = []
        occurrences = 1
        for i, states in enumerate(per_directive):
            state = states[counters[i]]
            picked.append(state)
            occurrences *= state.occurrences
            if case_id % periods[i] == 0:
                counters[i] = (counters[i] + 1) % counts[i]
        if int32_occurrences:
            occurrences = (occurrences + 2**31) % 2**32 - 2**31
        cases.append((tuple(picked), occurrences))
    if len(_recent) >= 16:
        _recent.clear()
    _recent[key] = (per_directive, cases)
    return cases


_recent: dict[
    tuple[int | bool, ...],
    tuple[tuple[tuple[State, ...], ...], list[tuple[tuple[State, ...], int]]],
] = {}
"""Recent levels' cases, by the identities of their directives' states (each entry
holds them, so the identities stay theirs)."""
