"""Modelling assumptions of the closed form that are not bugs.

The fixed and MAESTRO-compatible models keep MAESTRO's choice; the refined model
(:data:`REFINED_ASSUMPTIONS`, docs/refined-model.md) drops every one. The validation
harness flips one at a time to measure what it costs against the simulator (the
simulator's own switches live in :mod:`metronome.sim.options`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAESTRO_ASSUMPTIONS", "REFINED_ASSUMPTIONS", "Assumptions"]


@dataclass(frozen=True, slots=True)
class Assumptions:
    """Which of MAESTRO's timing assumptions the closed form makes."""

    nested_fill_serialised: bool = True
    """A nested cluster level's runtime, the compute delay of one step of the level
    above, starts with its fill: the first step costs ``d(ingress) + compute``. The
    level above therefore pays that fill in every one of its steps. False overlaps the
    nested fill with compute like every later step (``max(d(I), compute, d(E))``), as a
    machine that prefetches the next outer step's first tiles does."""

    nested_noc_charged: bool = True
    """Every cluster level has its own NoC with the hardware's bandwidth and latency,
    and a nested level's steps pay its delays inside each step of the level above: data
    going from L2 to a PE is charged once per level it crosses. False charges only the
    top level's NoC (one network from L2 to the PEs, as the simulator has); nested
    levels move their tiles for free."""


MAESTRO_ASSUMPTIONS = Assumptions()


REFINED_ASSUMPTIONS = Assumptions(nested_fill_serialised=False, nested_noc_charged=False)
"""The refined model's: nested fills overlap the outer step and one network carries the
tiles from L2 to the PEs (its other terms replace MAESTRO's where the engine is given the
hardware, :mod:`metronome.analytic.refined`)."""
