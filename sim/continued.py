"""A segment that is one more repetition of an exact repeat: its records looked up.

A top-level loop's last position is a segment of its own: every step's geometry key names
the loop's last class, so it cannot join the middle positions' segment. Its steps' tiles
are often the last middle position's translated all the same. When the segment before it
repeated exactly up to its end (the L1 state translated by a repetition, every later
next-touch answer translated; see :meth:`FastPath._residency`) and those checks hold one
repetition further, and every step's L1 working sets are the previous repetition's
translated, the L1s act at every step as at the logged repetition's, translated: each
step's L1 outcome, hence its signature, is the logged step's, and its record is the one
memoised under its own key and that signature, a copy of one built alike
(:class:`~metronome.sim.twins.Twins`), or one built from the outcome of a step that had
that signature, translated (:meth:`RunContext.record_as`). Only the last step's successor
differs (the next segment's first step): its record is replayed from what the logged last
step did, translated. The L1 state then moves by one repetition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .context import RunContext
from .schedule import Segment, Step
from .traffic import StepRecord

__all__ = ["ExactTail", "continued_records"]

Item = tuple[Step, list[object]]


@dataclass(frozen=True, slots=True)
class ExactTail:
    """A top-level segment whose repetitions after ``logged`` repeated it exactly up to
    its end, and whose checks hold one repetition further: the logged repetition's
    records, what its end steps did (:func:`~metronome.sim.keyed.end_steps`) and the flat
    translation per tensor of a repetition."""

    seg: Segment
    logged: int
    recs: list[StepRecord]
    ends: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    shift: np.ndarray


def _moved(a: Step, b: Step, seg: Segment) -> bool:
    """Whether ``b`` is ``a`` one repetition of ``seg`` later (any key)."""
    loop, m = seg.loop, len(seg.steps)
    moved = (*a.positions[:loop], a.positions[loop] + 1, *a.positions[loop + 1 :])
    if b.positions != moved or b.index != a.index + m or b.inner != a.inner:
        return False
    dims = set(a.base) | set(b.base) | set(seg.delta)
    return all(b.base.get(d, 0) == a.base.get(d, 0) + seg.delta.get(d, 0) for d in dims)


def _continues(run: RunContext, tail: ExactTail, seg: Segment) -> bool:
    """Whether ``seg`` is ``tail.seg``'s next repetition: its steps and schedules moved,
    every step's L1 working sets the previous repetition's translated."""
    l1 = run.l1
    assert l1 is not None
    prev = tail.seg
    m = len(prev.steps)
    if seg.count != 1 or len(seg.steps) != m:
        return False
    # Steps moved by a repetition: their keys' working sets (each the key's first
    # occurrence translated) compare alike wherever the two keys meet again.
    alike: dict[tuple[object, object], bool] = {}
    for j in range(m):
        a, b = prev.step_at(prev.count - 1, j), seg.steps[j]
        sa, sb = prev.schedules[j], seg.schedules[j]
        if not _moved(a, b, prev) or not (sa is sb or sa == sb):
            return False
        if a.key == b.key:
            continue
        same = alike.get((a.key, b.key))
        if same is None:
            wa = l1.space.keys_of(a.key, a.base, run.lazy((a, sa)))
            wb = l1.space.keys_of(b.key, b.base, run.lazy((b, sb)))
            same = alike[a.key, b.key] = bool(
                np.array_equal(wa.tensor, wb.tensor)
                and np.array_equal(wa.keys + tail.shift[wa.tensor], wb.keys)
            )
        if not same:
            return False
    return True


def continued_records(
    run: RunContext, tail: ExactTail, seg: Segment, following: Item | None
) -> list[StepRecord] | None:
    """The records of ``seg`` when it continues ``tail`` (``following``: the step after
    it), with the L1 state moved by one repetition; ``None`` (nothing changed) when it
    does not."""
    l1 = run.l1
    assert l1 is not None
    if len(tail.recs) != len(tail.seg.steps) or not _continues(run, tail, seg):
        return None
    m = len(seg.steps)
    items: list[Item] = [(s, seg.schedules[j]) for j, s in enumerate(seg.steps)]
    before: Item = (tail.seg.step_at(tail.seg.count - 1, m - 1), tail.seg.schedules[-1])
    signatures: list[bytes] = []
    for rec in tail.recs[: m - 1]:
        sig = run.signature_of(rec)
        if sig is None or not run.knows(sig):
            return None
        signatures.append(sig)
    recs: list[StepRecord] = []
    for j in range(m - 1):
        recs.append(run.record_as(items[j], items[j - 1] if j else before, signatures[j]))
    # The last step: what the logged one did, translated, before its own successor.
    hit, outs, by = tail.ends[-1]
    reps = tail.seg.count - tail.logged
    prev = items[m - 2] if m > 1 else before
    recs.append(run.residency_record(items[-1], prev, following, (hit, outs + reps * by)))
    l1.advance(tail.shift, m, 1)
    return recs
