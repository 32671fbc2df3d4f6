"""The memory a run would need, estimated before anything is built, and the limit above
which the simulator refuses the run (a clear error instead of minutes of swapping).

The estimate counts what grows with the PEs a mapping occupies: the NoC graph's links
(networkx keeps an attribute dict per directed edge) and the per-PE state of a run
(routes, per-step tile arrays, tallies). Both constants were measured on this code with
``tracemalloc`` and peak RSS; see docs/simulator.md ("Hardware size limit")."""

from __future__ import annotations

from typing import Final

import networkx as nx

from metronome.spec.hardware import Hardware
from metronome.spec.mapping import Mapping
from metronome.spec.source import SpecError

__all__ = [
    "BYTES_PER_LINK",
    "BYTES_PER_PE",
    "LINKS_PER_PE",
    "MEMORY_LIMIT_BYTES",
    "check_budget",
    "estimate_bytes",
]

MEMORY_LIMIT_BYTES: Final = 4 * 2**30
"""Runs estimated to need more than this are refused (4 GiB)."""

BYTES_PER_LINK: Final = 700
"""One directed NoC link with its attributes (measured: 550-720 B across topologies)."""

BYTES_PER_PE: Final = 11_000
"""Per-PE run state beyond the NoC graph (measured: 12.3 GB peak RSS for 10^6 PEs on a
bus, 1.3 GB for 10^5, less the graph's 1.4 KB per PE)."""

LINKS_PER_PE: Final = {"bus": 2, "crossbar": 2, "mesh": 6, "tree": 4, "systolic": 4}
"""Directed links per PE of each built-in topology (a PE's own links plus its share of
routers' and switches' links, rounded up)."""


def estimate_bytes(hardware: Hardware, num_pes: int, graph: nx.DiGraph | None = None) -> int:
    """Bytes a run on ``num_pes`` occupied PEs would need: its NoC graph's links (those of
    ``graph`` when given, else the built-in topology's) plus per-PE state."""
    links = (
        graph.number_of_edges() if graph is not None else LINKS_PER_PE[hardware.topology] * num_pes
    )
    return BYTES_PER_LINK * links + BYTES_PER_PE * num_pes


def check_budget(mapping: Mapping, hardware: Hardware, graph: nx.DiGraph | None = None) -> None:
    """Raise :class:`SpecError` when running ``mapping`` on ``hardware`` would need more
    than :data:`MEMORY_LIMIT_BYTES` (before any of it is built)."""
    pes = mapping.pes_used(hardware.num_pes)
    need = estimate_bytes(hardware, pes, graph)
    if need <= MEMORY_LIMIT_BYTES:
        return
    raise SpecError.at(
        None,
        f"the simulator would build {pes} PEs on a {hardware.topology} NoC, estimated"
        f" {_gib(need)} of memory (about {_kib(need // pes)} per PE); the limit is"
        f" {_gib(MEMORY_LIMIT_BYTES)} (about {MEMORY_LIMIT_BYTES * pes // need} PEs)",
        hint="use fewer PEs (--num-pes, num_pes), or the analytic model (metronome analyze)",
    )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _kib(n: int) -> str:
    return f"{n / 2**10:.1f} KiB"
