"""The next-touch table under LRU (:func:`metronome.sim.l1_touches.last_output_touches`):
each output key's last touch, found per (output class, translation) before the keys are
expanded, against every touch expanded and reduced to its key's last in a dict."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.sim.l1_touches import last_output_touches, last_touches

# Relative output keys of a geometry key: drawn from a few, so classes share them and
# overlap each other.
_RELS = ((0, 1, 2), (0, 1, 2), (1, 5), (0,), (2, 3, 9))


@st.composite
def _streams(draw: st.DrawFn) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Runs (output shift per repetition, steps, repetitions) and their steps (geometry
    key, output translation, run), in order."""
    runs: list[tuple[int, int, int]] = []
    steps: list[tuple[int, int, int]] = []
    for run in range(draw(st.integers(1, 4))):
        m = draw(st.integers(1, 5))
        runs.append((draw(st.sampled_from([0, 0, 1, 3, 7])), m, draw(st.integers(1, 4))))
        for _ in range(m):
            steps.append((draw(st.integers(0, len(_RELS) - 1)), draw(st.integers(0, 12)), run))
    return runs, steps


def _by_dict(runs: list[tuple[int, int, int]], steps: list[tuple[int, int, int]]) -> dict[int, int]:
    """Every touch of every repetition, each key's last step kept."""
    last: dict[int, int] = {}
    at = 0
    for run, (shift, m, count) in enumerate(runs):
        block = [s for s in steps if s[2] == run]
        for r in range(count):
            for j, (g, moved, _) in enumerate(block):
                for k in _RELS[g]:
                    last[k + moved + r * shift] = at + r * m + j
        at += m * count
    return last


@settings(max_examples=300, deadline=None)
@given(_streams())
def test_last_output_touches_equal_every_touch_reduced(stream) -> None:
    runs, steps = stream
    span = sum(m * count for _, m, count in runs) + 1
    firsts = np.cumsum([0] + [m * count for _, m, count in runs])
    per_key: dict[int, tuple[list[int], list[int], list[int]]] = {}
    offset = dict.fromkeys(range(len(runs)), 0)
    for g, moved, run in steps:
        rows = per_key.setdefault(g, ([], [], []))
        rows[0].append(moved)
        rows[1].append(int(firsts[run]) + offset[run])
        rows[2].append(run)
        offset[run] += 1
    keys = [
        (np.array(_RELS[g]), np.array(t), np.array(i), np.array(r))
        for g, (t, i, r) in per_key.items()
    ]
    arrays = tuple(np.array(col, dtype=np.int64) for col in zip(*runs, strict=True))
    parts = list(last_output_touches(keys, arrays, span))
    got = last_touches(np.concatenate(parts), span) if parts else np.zeros(0, dtype=np.int64)
    want = _by_dict(runs, steps)
    assert got.tolist() == sorted(k * span + s for k, s in want.items())
