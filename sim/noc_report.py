"""NoC statistics of a run: per-link totals, the result metrics and the ``noc`` section.

Both execution paths end with the same totals: the SimPy machine's link statistics, or
the fast path's phase outcomes each multiplied by how often it occurred.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .noc import NoC, PhaseOutcome
from .phases import COLLECTION, PLANES, Fabric
from .topology import L2, node_label

__all__ = ["NocReport", "NocTotals", "busy_series", "noc_report"]

_HOTTEST = 5


@dataclass(frozen=True, slots=True)
class NocTotals:
    """Per plane: edge -> [elements, busy cycles, queueing cycles, max queueing cycles,
    hops served]; resource -> peak queue length."""

    edges: tuple[dict[int, list[int]], ...]
    peaks: tuple[dict[int, int], ...]

    @classmethod
    def from_outcomes(cls, counts: Counter[int], outcomes: Sequence[PhaseOutcome]) -> NocTotals:
        """Totals of the fast path: each phase outcome times its number of occurrences."""
        edges: tuple[dict[int, list[int]], ...] = ({}, {})
        peaks: tuple[dict[int, int], ...] = ({}, {})
        for oid, count in sorted(counts.items()):
            out = outcomes[oid]
            table = edges[out.plane]
            for e, elems, busy, wait, wait_max, hops in out.edges:
                row = table.setdefault(e, [0, 0, 0, 0, 0])
                row[0] += count * elems
                row[1] += count * busy
                row[2] += count * wait
                row[3] = max(row[3], wait_max)
                row[4] += count * hops
            for r, peak in out.peaks:
                peaks[out.plane][r] = max(peaks[out.plane].get(r, 0), peak)
        return cls(edges, peaks)

    @classmethod
    def from_noc(cls, noc: NoC) -> NocTotals:
        """Totals the SimPy machine measured."""
        return cls(
            tuple({e: list(row) for e, row in s.edges.items()} for s in noc.stats),
            (noc.peaks(0), noc.peaks(1)),
        )


@dataclass(frozen=True, slots=True)
class NocReport:
    """Metrics for the result, the JSON ``noc`` section, and link utilisation keyed by
    the graph's (src, dst) nodes (the busier plane where both use a link)."""

    metrics: dict[str, int | float]
    section: dict[str, object]
    utilization: dict[tuple[Hashable, Hashable], float]


def noc_report(
    fabric: Fabric,
    totals: NocTotals,
    runtime: int,
    timeline: tuple[
        Sequence[int] | np.ndarray,
        Sequence[int] | np.ndarray,
        dict[int, dict[tuple[int, int], int]],
        int,
    ],
    arbitration: str,
) -> NocReport:
    """Summarise the totals of a run lasting ``runtime`` cycles; ``timeline`` is (each
    step's compute start, each step's two phase ids, each phase's busy cycles per
    (plane, edge), number of bins)."""
    links: list[dict[str, Any]] = []
    utilization: dict[tuple[Hashable, Hashable], float] = {}
    traversals = elem_links = queueing = into_l2 = 0
    for plane, table in enumerate(totals.edges):
        for e, (elems, busy, wait, wait_max, hops) in sorted(table.items()):
            src, dst = fabric.label(e)
            util = busy / runtime if runtime else 0.0
            peak = totals.peaks[plane].get(fabric.resource[e], 0)
            traversals += elems * fabric.energy_hops[e]
            elem_links += elems
            queueing += wait
            node_pair = fabric.edges[e]
            if plane == COLLECTION and node_pair[1] == L2:
                into_l2 += elems
            utilization[node_pair] = max(utilization.get(node_pair, 0.0), round(util, 6))
            links.append(
                {
                    "src": src,
                    "dst": dst,
                    "plane": PLANES[plane],
                    "elems": elems,
                    "busy_cycles": busy,
                    "utilization": round(util, 6),
                    "hops": hops,
                    "queueing_cycles": wait,
                    "mean_queue_len": round(wait / runtime, 6) if runtime else 0.0,
                    "peak_queue_len": peak,
                    "mean_queueing_delay_cycles": round(wait / hops, 6) if hops else 0.0,
                    "max_queueing_delay_cycles": wait_max,
                }
            )
    hottest = sorted(links, key=lambda x: (-x["utilization"], -x["queueing_cycles"]))
    hot_key = None
    if hottest:
        top = hottest[0]
        hot_key = (PLANES.index(top["plane"]), fabric.edge_id[_find(fabric, top)])
    mean, hot = busy_series(*timeline, runtime=runtime, links=len(links), hot=hot_key)
    peak_queue = max((max(p.values(), default=0) for p in totals.peaks), default=0)
    metrics: dict[str, int | float] = {
        "noc_traversals_elem_hops": traversals,
        "noc_into_l2_elems": into_l2,
        "noc_link_elems_total": elem_links,
        "noc_link_queueing_cycles": queueing,
        "noc_links_used": len(links),
        "noc_peak_queue_len": peak_queue,
        "noc_max_link_utilization": hottest[0]["utilization"] if hottest else 0.0,
    }
    section: dict[str, object] = {
        "topology": fabric.name,
        "arbitration": arbitration,
        "planes": list(PLANES),
        "links": links,
        "hottest_links": hottest[:_HOTTEST],
        "link_utilization": [[*fabric_pair, u] for fabric_pair, u in _labelled(utilization)],
        "busy_series": mean,
        "hottest_link_busy_series": hot,
    }
    return NocReport(metrics, section, utilization)


def _labelled(
    utilization: dict[tuple[Hashable, Hashable], float],
) -> list[tuple[tuple[str, str], float]]:
    return [((node_label(a), node_label(b)), u) for (a, b), u in utilization.items()]


def _find(fabric: Fabric, link: dict[str, object]) -> tuple[Hashable, Hashable]:
    for e in range(len(fabric.edges)):
        if fabric.label(e) == (link["src"], link["dst"]):
            return fabric.edges[e]
    raise KeyError(link)


def busy_series(
    starts: Sequence[int] | np.ndarray,
    phase_at: Sequence[int] | np.ndarray,
    phase_busy: dict[int, dict[tuple[int, int], int]],
    bins: int,
    *,
    runtime: int,
    links: int,
    hot: tuple[int, int] | None,
) -> tuple[list[float], list[float]]:
    """Per time bin: the mean fraction of the used links busy, and the fraction of the
    hottest link busy; each step's link-busy cycles count in the bin where its compute
    starts."""
    if runtime <= 0 or not len(starts) or links <= 0:
        return [], []
    width = -(-runtime // bins)
    n = max(phase_busy, default=-1) + 2  # the last slot stays 0: phase id -1 = none
    total = np.zeros(n, dtype=np.float64)
    on_hot = np.zeros(n, dtype=np.float64)
    for sig, table in phase_busy.items():
        total[sig] = sum(table.values())
        on_hot[sig] = table.get(hot, 0) if hot is not None else 0
    pairs = np.asarray(phase_at, dtype=np.int64).reshape(-1, 2)
    where = np.minimum(np.asarray(starts, dtype=np.int64) // width, bins - 1)
    out = []
    for series, scale in ((total, width * links), (on_hot, width)):
        per_step = series[pairs[:, 0]] + series[pairs[:, 1]]
        sums = np.bincount(where, weights=per_step, minlength=bins)
        out.append([round(float(v) / scale, 6) for v in sums])
    return out[0], out[1]
