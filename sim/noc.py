"""The network between L2 and the PEs. This issue's NoC is a full-duplex bus: one channel
carries tiles from L2 to the PEs (a multicast is one transfer), the other carries partial
sums back. A transfer of ``n`` elements holds its channel for ``L + ceil(n / B) - 1``
cycles (latency not overlapped with the next transfer; ``B`` is the bus bandwidth, capped
by the L2 port on that side). Transfers queue first come, first served.

Any NoC offers ``transfer(src, dsts, n_elems)``, a SimPy process body, plus statistics,
so a topology (issue 5) can replace the bus without touching the PEs or the L2.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import simpy

from spec.hardware import Hardware

__all__ = ["L2_NODE", "Bus", "BusTiming"]

L2_NODE = "L2"
"""Name of the L2 end of every transfer."""


@dataclass(frozen=True, slots=True)
class BusTiming:
    """Zero-load durations of the bus and of off-chip fetches, in cycles."""

    latency_cycles: int
    down_elems_per_cycle: int
    up_elems_per_cycle: int
    offchip_latency_cycles: int
    offchip_elems_per_cycle: int

    @classmethod
    def of(cls, hw: Hardware) -> BusTiming:
        """Timing for ``hw``: each direction limited by the bus and its L2 port."""
        return cls(
            latency_cycles=hw.noc_latency_cycles,
            down_elems_per_cycle=min(hw.noc_bw_elems_per_cycle, hw.l2_read_bw_elems_per_cycle),
            up_elems_per_cycle=min(hw.noc_bw_elems_per_cycle, hw.l2_write_bw_elems_per_cycle),
            offchip_latency_cycles=hw.offchip_latency_cycles,
            offchip_elems_per_cycle=hw.offchip_bw_elems_per_cycle,
        )

    def down_cycles(self, n_elems: int) -> int:
        """Cycles L2 -> PEs for ``n_elems`` (0 for nothing to send)."""
        if n_elems <= 0:
            return 0
        return max(0, self.latency_cycles + -(-n_elems // self.down_elems_per_cycle) - 1)

    def up_cycles(self, n_elems: int) -> int:
        """Cycles PEs -> L2 for ``n_elems``."""
        if n_elems <= 0:
            return 0
        return max(0, self.latency_cycles + -(-n_elems // self.up_elems_per_cycle) - 1)

    def offchip_cycles(self, n_elems: int) -> int:
        """Cycles to bring ``n_elems`` from off-chip into L2."""
        if n_elems <= 0:
            return 0
        return self.offchip_latency_cycles + -(-n_elems // self.offchip_elems_per_cycle)


class Bus:
    """A full-duplex bus: ``transfer`` holds the channel of its direction."""

    def __init__(self, env: simpy.Environment, timing: BusTiming) -> None:
        self.env = env
        self.timing = timing
        self.down = simpy.Resource(env, capacity=1)
        self.up = simpy.Resource(env, capacity=1)
        self.busy_cycles = {"down": 0, "up": 0}
        self.elems = {"down": 0, "up": 0}
        self.transfers = {"down": 0, "up": 0}

    def transfer(
        self, src: str | int, dsts: tuple[str | int, ...], n_elems: int
    ) -> Generator[simpy.Event, object, None]:
        """Move ``n_elems`` from ``src`` to every node of ``dsts`` (one multicast)."""
        del dsts  # every PE hears the bus; the L2 end decides the direction
        side = "down" if src == L2_NODE else "up"
        channel = self.down if side == "down" else self.up
        cycles = (
            self.timing.down_cycles(n_elems) if side == "down" else self.timing.up_cycles(n_elems)
        )
        with channel.request() as req:
            yield req
            self.busy_cycles[side] += cycles
            self.elems[side] += n_elems
            self.transfers[side] += 1
            yield self.env.timeout(cycles)
