"""Replayed steps of one bulk whose records repeat: looked up instead of rebuilt.

A bulk applies repetitions of a segment after a logged one; a step whose evicted outputs
are not the logged step's translated gets its record from what it hit (the logged step's
hits) and sent home (:meth:`StepOutcomes.replay_signature`). Within one bulk two such
steps at the same place ``j`` of repetitions ``r0`` and ``r`` get the same record when
they have the same geometry keys around them and sent home the same outputs relative to
their repetitions: their working sets, their successors' and the outputs leaving are
then one translation (``r - r0`` repetitions) apart, so their L1 signatures, and hence
their records (memoised on key and signature), are equal, provided the translated
outputs are the same elements moved (their coordinates stay inside the output tensor,
so flat keys moved by the flat translation are the coordinates moved). The key is the
step's place, which end-step keys its repetition and the next have
(:class:`~metronome.sim.keyed.KeyedSegment`), and the evicted outputs' keys relative to
the repetition; the check is the outputs' bounding box moved.
"""

from __future__ import annotations

import numpy as np

from .keyed import KeyedSegment
from .l1 import L1Residency
from .schedule import Segment
from .traffic import StepRecord

__all__ = ["ReplayMemo"]

_Key = tuple[int, int, int, bytes]


class ReplayMemo:
    """The records of one bulk's replayed steps (repetitions of ``seg`` after the logged
    one ``logged``; outputs move ``shift`` flat elements and ``move`` coordinates per
    repetition), by :meth:`key`."""

    def __init__(
        self, l1: L1Residency, seg: Segment, logged: int, shift: int, move: np.ndarray
    ) -> None:
        self.seg = seg
        self.logged = logged
        self.shift = shift
        self.move = move
        self.total = l1.total
        self.offset = l1.offsets[2]
        self.strides = l1.space.strides[2][:, None]
        self.shape = np.array(l1.space.shapes[2], dtype=np.int64)
        self._found: dict[_Key, tuple[StepRecord, int, np.ndarray, np.ndarray]] = {}

    def _variant(self, r: int) -> int:
        """Which end-step keys repetition ``r`` has: the first's, the middle ones', the
        last's (only a :class:`KeyedSegment`'s differ; -1: past the segment, the step
        after it follows)."""
        if r >= self.seg.count:
            return -1
        if not isinstance(self.seg, KeyedSegment) or r == 0:
            return 0
        return 2 if r == self.seg.count - 1 else 1

    def key(self, r: int, j: int, evicted: np.ndarray) -> _Key:
        """What decides the record of step ``j`` of repetition ``r`` besides the
        logged step's hits: the end-step keys of its repetition (and the next one's,
        for the last step, whose successor is there) and the evicted outputs
        (``evicted``, sorted keys) relative to the repetition."""
        after = self._variant(r + 1) if j == len(self.seg.steps) - 1 else 0
        rel = evicted - (r - self.logged) * self.shift
        return (j, self._variant(r), after, rel.tobytes())

    def get(self, key: _Key, r: int) -> StepRecord | None:
        """The record found for ``key`` at another repetition, if its outputs moved to
        repetition ``r`` stay inside the output tensor."""
        hit = self._found.get(key)
        if hit is None:
            return None
        rec, r0, lo, hi = hit
        by = (r - r0) * self.move
        if (lo + by >= 0).all() and (hi + by < self.shape).all():
            return rec
        return None

    def add(self, key: _Key, r: int, rec: StepRecord, leaving: np.ndarray) -> None:
        """Remember ``rec``, the record of ``key`` at repetition ``r`` whose outputs
        ``leaving`` (keys) went home."""
        if leaving.size:
            coords = (leaving % self.total - self.offset)[None, :] // self.strides
            coords %= self.shape[:, None]
            lo, hi = coords.min(axis=1), coords.max(axis=1)
        else:
            lo = hi = np.zeros(self.shape.size, dtype=np.int64)
        self._found[key] = (rec, r, lo, hi)
