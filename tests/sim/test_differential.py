"""The fast path equals the full SimPy run on every metric, on random problems
(:mod:`tests.sim.random_cases`): every mapping shape, partial folds, strides, clusters,
small L1 and L2, every topology, both arbitrations and both policies."""

from __future__ import annotations

import pytest
from hypothesis import given, note, settings

from metronome.sim import SimOptions, simulate
from metronome.spec.source import SpecError

from .helpers import stable
from .random_cases import Problem, problems


def _run(problem: Problem, fast: bool):
    return simulate(
        problem.layer,
        problem.mapping,
        problem.hardware,
        SimOptions(policy=problem.policy, fast_forward=fast),
    )


def check_fast_equals_full(problem: Problem) -> None:
    """Every counter, per-PE detail, NoC section and link utilisation agree."""
    note(repr(problem))
    try:
        fast = _run(problem, True)
    except SpecError:
        with pytest.raises(SpecError):
            _run(problem, False)
        return
    full = _run(problem, False)
    assert stable(fast.to_dict()) == stable(full.to_dict())
    assert fast.link_utilization == full.link_utilization


# Hundreds of cases in the ci profile, the profile's own count when larger (big: 3000).
CASES = max(300, settings.default.max_examples)


@pytest.mark.slow
@settings(max_examples=CASES)
@given(problems())
def test_fast_path_equals_full_simpy_run_on_random_problems(problem: Problem) -> None:
    check_fast_equals_full(problem)
