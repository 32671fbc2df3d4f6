"""What the L1s did at one step, as the rest of the simulator reads it: which tiles each
PE lacked, which outputs leave it, and a translation-invariant signature of both (records
of steps are kept and looked up by it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["StepL1"]


@dataclass(frozen=True, slots=True)
class StepL1:
    """What the L1s did at one step. ``missing[t][p]``: PE ``p``'s mask of tensor ``t``'s
    tile (input, weight) it lacked, ``None`` when it lacked nothing or is idle.
    ``egress[p]``: output elements leaving PE ``p`` after the step as ``(lo, hi, mask)``
    (absolute coordinates; mask ``None``: the whole box), or ``None``. ``signature``
    identifies all of it relative to the PEs' tiles (translation-invariant). ``leaving``:
    the leaving outputs' keys, sorted (of the simulated PEs)."""

    missing: tuple[list[np.ndarray | None], list[np.ndarray | None]]
    egress: list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None]
    working: np.ndarray
    next_fits: bool
    overflow: bool
    signature: bytes
    leaving: np.ndarray
