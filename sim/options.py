"""Run options: the modelling policy (one switch per assumption) and how to run."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from metronome.spec.names import PolicyName

__all__ = ["MAESTRO", "POLICIES", "REALISTIC", "Policy", "SimOptions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Modelling assumptions, each one switch, so a difference can be attributed to one.

    ``l1_keeps_reusable_data``: a PE keeps the tiles of an enclosing loop's body in L1 when
    that loop revisits them and they fit; otherwise L1 holds only the current tile.
    ``psum_writeback_every_step``: partial sums leave every step instead of when the
    PE's output tile moves on. ``free_spatial_reduction``: PEs holding the same output
    element are reduced for free (one element on the NoC); otherwise every PE's partial
    sums travel and an adder tree at L2 adds ``ceil(log2(fan-in)) * adder_latency``.
    ``double_buffering``: the next step's tiles may arrive while the current step
    computes, if L1 has room for both. ``forwarding``: a PE takes what a neighbour held in
    the previous step from that neighbour over a PE-to-PE link instead of from L2 (on
    topologies with such links).
    """

    name: str
    l1_keeps_reusable_data: bool
    psum_writeback_every_step: bool
    free_spatial_reduction: bool
    double_buffering: bool = True
    forwarding: bool = False

    def with_switch(self, **changes: bool) -> Policy:
        """A copy with some switches flipped, named after the change."""
        fields = {
            "l1_keeps_reusable_data": self.l1_keeps_reusable_data,
            "psum_writeback_every_step": self.psum_writeback_every_step,
            "free_spatial_reduction": self.free_spatial_reduction,
            "double_buffering": self.double_buffering,
            "forwarding": self.forwarding,
        }
        fields.update(changes)
        suffix = ",".join(f"{k}={v}" for k, v in sorted(changes.items()))
        return Policy(name=f"{self.name}+{suffix}" if suffix else self.name, **fields)


MAESTRO = Policy(
    name=PolicyName.MAESTRO,
    l1_keeps_reusable_data=False,
    psum_writeback_every_step=True,
    free_spatial_reduction=True,
)
"""MAESTRO's assumptions: L1 holds exactly the current tile, partial sums leave every
step, spatial reduction is free, ingress of the next step overlaps compute, every tile
comes from L2."""

REALISTIC = Policy(
    name=PolicyName.REALISTIC,
    l1_keeps_reusable_data=True,
    psum_writeback_every_step=False,
    free_spatial_reduction=False,
    forwarding=True,
)
"""The default: reuse what fits, accumulate partial sums in L1, pay for reductions,
forward between neighbours where links allow."""

POLICIES: dict[PolicyName, Policy] = {PolicyName(p.name): p for p in (MAESTRO, REALISTIC)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    """How to run: the policy, the fast path, functional values, reporting detail.

    ``fast_forward`` memoises step records and step-to-step timing transitions (exact;
    see docs/simulator.md); ``False`` runs every step through the SimPy processes.
    ``l1_eviction`` chooses which element a full L1 evicts under element residency:
    ``"lru"`` (least recently used) or ``"optimal"`` (furthest next use, Belady: the
    upper bound on reuse). ``utilization_bins`` is the length of the utilisation time
    series. ``noc_graph``
    replaces the topology named by the hardware with a user's ``nx.DiGraph`` (nodes
    ``"L2"`` and ``("pe", i)``; see :mod:`metronome.sim.topology`).
    """

    policy: Policy = field(default=REALISTIC)
    fast_forward: bool = True
    energy_table: str = "maestro"
    l1_eviction: str = "lru"
    utilization_bins: int = 50
    noc_graph: nx.DiGraph | None = field(default=None, compare=False)
