"""L1 outcomes kept compactly, to build a record for a later step with the same signature.

A step's L1 outcome (:class:`~metronome.sim.l1.StepL1`) says, per PE, which elements of
its input and weight tiles it lacked (masks over the tiles) and which outputs left (boxes
in absolute coordinates, with masks over them, which can be large). Its signature says
the same relative to the tiles and to the step's base, so a later step with the same
signature has the same masks and the same leaving outputs moved by the difference of the
bases. Kept are the masks and the leaving outputs' keys (few, :attr:`StepL1.leaving`);
the boxes are rebuilt from the keys moved (:meth:`StepOutcomes.leaving_boxes`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .l1 import L1Residency
from .l1_outcome import StepL1

__all__ = ["KeptOutcome", "kept_outcome", "kept_outcome_at"]


@dataclass(frozen=True, slots=True)
class KeptOutcome:
    """A step's L1 outcome without its leaving boxes (its leaving keys say them), and the
    step's base in output coordinates."""

    outcome: StepL1
    out_base: np.ndarray


def kept_outcome(s: StepL1, out_base: np.ndarray) -> KeptOutcome:
    """``s`` (of the simulated PEs, at a step based at ``out_base``) kept compactly (own
    copies: its arrays may be views of large ones)."""
    leaving = s.leaving.copy()
    missing = ([_copy(m) for m in s.missing[0]], [_copy(m) for m in s.missing[1]])
    empty: list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None] = [None] * len(s.egress)
    kept = replace(s, missing=missing, egress=empty, working=s.working.copy(), leaving=leaving)
    return KeptOutcome(kept, out_base.copy())


def kept_outcome_at(l1: L1Residency, kept: KeptOutcome, out_base: np.ndarray) -> StepL1:
    """The outcome ``kept`` at a step based at ``out_base`` with the same signature: its
    leaving outputs moved with the base (they stay inside the output tensor: the step's
    own outputs, the same relative to its base)."""
    by = int((out_base - kept.out_base) @ l1.space.strides[2])
    moved = kept.outcome.leaving + by
    return replace(kept.outcome, egress=l1.outcomes.leaving_boxes(moved, out_base), leaving=moved)


def _copy(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else a.copy()
