"""Energy-per-access tables, each with where its numbers come from, and the one
function that turns access counts into energy.

Both engines count the same kinds of action (:class:`AccessCounts`) and price them with
:meth:`EnergyTable.energy_nj`, so an energy difference between them is always a
difference in counts, never in constants or in which kinds are priced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .results import LayerResult

__all__ = ["ENERGY_TABLES", "AccessCounts", "EnergyTable", "energy_table", "l1_read_accesses"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessCounts:
    """What a layer's run did, per kind of action a table prices.

    ``l1_accesses`` are L1 read accesses (vector reads of ``Hardware.l1_read_width_elems``
    elements count once, :func:`l1_read_accesses`) plus L1 writes; ``l2_accesses`` are
    reads plus writes of all three tensors;
    ``noc_elem_hops`` is elements moved between L2 and the PEs times the NoC hops each
    pays; ``offchip_accesses`` is elements read from plus written to off-chip memory.
    """

    macs: int
    l1_accesses: int
    l2_accesses: int
    noc_elem_hops: int
    offchip_accesses: int

    @classmethod
    def of(cls, result: LayerResult) -> AccessCounts:
        """The counts an engine reported for a layer (its tensors' L1 and L2 counts and
        the metrics ``l1_read_accesses``, ``noc_traversals_elem_hops``, ``offchip_reads_elems`` and
        ``offchip_writes_elems``, which both engines fill)."""
        counts = [c for _, c in result.tensors]
        return cls(
            macs=result.macs,
            l1_accesses=int(result.metric("l1_read_accesses")) + sum(c.l1_writes for c in counts),
            l2_accesses=sum(c.l2_reads + c.l2_writes for c in counts),
            noc_elem_hops=int(result.metric("noc_traversals_elem_hops")),
            offchip_accesses=int(result.metric("offchip_reads_elems"))
            + int(result.metric("offchip_writes_elems")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EnergyTable:
    """Energy of one action of each kind, in nJ."""

    name: str
    mac_nj: float
    l1_access_nj: float
    l2_access_nj: float
    noc_hop_nj: float
    offchip_access_nj: float
    source: str

    def breakdown_nj(self, counts: AccessCounts) -> dict[str, float]:
        """Energy of each kind of action, in nJ: ``mac``, ``l1``, ``l2``, ``noc``,
        ``offchip``."""
        return {
            "mac": counts.macs * self.mac_nj,
            "l1": counts.l1_accesses * self.l1_access_nj,
            "l2": counts.l2_accesses * self.l2_access_nj,
            "noc": counts.noc_elem_hops * self.noc_hop_nj,
            "offchip": counts.offchip_accesses * self.offchip_access_nj,
        }

    def energy_nj(self, counts: AccessCounts) -> float:
        """Total energy of ``counts``, in nJ (the kinds added in a fixed order, so the
        same counts always give the same float)."""
        total = 0.0
        for part in self.breakdown_nj(counts).values():
            total += part
        return total

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for result files."""
        return asdict(self)


_MAESTRO_MAC_NJ = 0.00023

ENERGY_TABLES: dict[str, EnergyTable] = {
    "maestro": EnergyTable(
        name="maestro",
        mac_nj=_MAESTRO_MAC_NJ,
        l1_access_nj=1.68 * _MAESTRO_MAC_NJ,
        l2_access_nj=18.61 * _MAESTRO_MAC_NJ,
        noc_hop_nj=0.0,
        offchip_access_nj=0.0,
        source=(
            "MAESTRO 4eb08d17: L1 = 1.68 and L2 = 18.61 MAC energies (base/BASE_constants.hpp),"
            " MAC = 0.00023 nJ (DSE_cost-database.hpp, 'from external source'); NoC and DRAM"
            " energy not modelled; the CACTI data behind the multipliers is lost (maestro#10)"
        ),
    ),
    "eyeriss65": EnergyTable(
        name="eyeriss65",
        mac_nj=_MAESTRO_MAC_NJ,
        l1_access_nj=1.0 * _MAESTRO_MAC_NJ,
        l2_access_nj=6.0 * _MAESTRO_MAC_NJ,
        noc_hop_nj=2.0 * _MAESTRO_MAC_NJ,
        offchip_access_nj=200.0 * _MAESTRO_MAC_NJ,
        source=(
            "Eyeriss (Chen, Emer, Sze, ISCA 2016) 65 nm normalised costs: RF 1, inter-PE 2,"
            " global buffer 6, DRAM 200 MAC energies; scaled by MAESTRO's 0.23 pJ MAC"
        ),
    ),
}


def l1_read_accesses(reads: int, width_elems: int) -> int:
    """L1 read accesses the energy counts for ``reads`` element reads of one tensor when
    one access returns ``width_elems`` elements (``Hardware.l1_read_width_elems``: the
    vector reads of the seed paper's footnote); each access costs ``l1_access_nj``."""
    return -(-reads // width_elems)


def energy_table(name: str) -> EnergyTable:
    """A table by name; KeyError lists the known ones."""
    try:
        return ENERGY_TABLES[name]
    except KeyError:
        raise KeyError(
            f"unknown energy table {name!r}; known: {', '.join(ENERGY_TABLES)}"
        ) from None
