"""How the fast path splits a repetition (:func:`metronome.sim.fast._uniform`): groups of
steps repeat the first group only when keys, schedules and positions match and every
base moves by one constant per group."""

from __future__ import annotations

from metronome.sim.fast import _uniform
from metronome.sim.schedule import Step


def _groups(moves: list[list[dict[str, int]]]) -> tuple[list[Step], list[tuple[int, int]]]:
    """Steps of groups ``g`` (loop 0 at position ``g``) with bases ``moves[g][j]``."""
    steps, groups = [], []
    for g, bases in enumerate(moves):
        groups.append((len(steps), len(steps) + len(bases)))
        for j, base in enumerate(bases):
            steps.append(Step(len(steps), 0, (g, j), j, len(bases), ("k", j), base))
    return steps, groups


def test_groups_moving_by_a_constant_repeat() -> None:
    # Y advances 2 per group, every step of a group alike; X differs inside a group.
    steps, groups = _groups([[{"Y": 2 * g, "X": j} for j in range(3)] for g in range(4)])
    assert _uniform(steps, [[]] * len(steps), groups, 0)


def test_one_step_moving_otherwise_breaks_the_repeat() -> None:
    moves = [[{"Y": 2 * g, "X": j} for j in range(3)] for g in range(4)]
    moves[2][1] = {"Y": 4, "X": 2}  # X should stay 1
    steps, groups = _groups(moves)
    assert not _uniform(steps, [[]] * len(steps), groups, 0)
    # A dimension present in one base only counts as 0 elsewhere.
    moves[2][1] = {"Y": 4, "X": 1, "K": 1}
    steps, groups = _groups(moves)
    assert not _uniform(steps, [[]] * len(steps), groups, 0)
