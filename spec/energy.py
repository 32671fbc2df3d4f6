"""Energy-per-access tables, each with where its numbers come from.

Both engines multiply their own access counts by the same table, so an energy
difference between them is always a difference in counts, never in constants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ENERGY_TABLES", "EnergyTable", "energy_table", "l1_read_accesses"]


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
