"""Modelling assumptions of the closed form that are not bugs.

Both modes keep MAESTRO's choice; the validation harness flips one at a time to measure
what it costs against the simulator (the simulator's own switches live in
:mod:`sim.options`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAESTRO_ASSUMPTIONS", "Assumptions"]


@dataclass(frozen=True, slots=True)
class Assumptions:
    """Which of MAESTRO's timing assumptions the closed form makes."""

    nested_fill_serialised: bool = True
    """A nested cluster level's runtime, the compute delay of one step of the level
    above, starts with its fill: the first step costs ``d(ingress) + compute``. The
    level above therefore pays that fill in every one of its steps. False overlaps the
    nested fill with compute like every later step (``max(d(I), compute, d(E))``), as a
    machine that prefetches the next outer step's first tiles does."""


MAESTRO_ASSUMPTIONS = Assumptions()
