"""Where the network congests beyond the roofline: NoC-bandwidth sweeps per topology.

For every scenario that sweeps ``noc_bw_elems_per_cycle`` the simulated runtime under
the ``maestro`` policy (so that only the network differs from the closed form) is set
against the analytic estimate, whose NoC model is zero-load: each transfer is assumed to
have the network to itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metronome.spec.names import Engine

from . import plots

if TYPE_CHECKING:
    from .harness import CaseResult

__all__ = [
    "DEPARTURE",
    "CongestionFinding",
    "congestion_findings",
    "plot_congestion",
    "saturation",
]

DEPARTURE = 1.05
"""Simulated / analytic runtime above which a topology has departed from the roofline."""


@dataclass(frozen=True, slots=True)
class CongestionFinding:
    """One topology's departure from the analytic curve for one layer."""

    scenario: str
    layer: str
    topology: str
    bandwidths: tuple[int, ...]
    ratios: tuple[float, ...]
    departs_below_bw: int | None
    """Bandwidth below which the simulation is more than 5% slower than the closed form
    (None: never within the sweep; 0: at every bandwidth swept)."""
    worst_ratio: float
    worst_bw: int
    queueing_share_at_worst: float | None = None
    plot: str = ""
    sim_saturates_at_bw: int = 0
    """Lowest bandwidth from which more bandwidth no longer speeds the simulation up by
    more than 5% (the network is then bound by message count and latency, not width)."""
    roofline_saturates_at_bw: int = 0
    """The same for the analytic curve."""
    analytic_cycles: tuple[float, ...] = ()
    """The closed form's runtime at each bandwidth."""
    simulated_cycles: tuple[float, ...] = ()
    """The simulated runtime at each bandwidth."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def congestion_findings(cases: Sequence[CaseResult]) -> list[CongestionFinding]:
    """Findings for every swept layer, one per topology (one plot per layer)."""
    curves: dict[tuple[str, str], dict[str, dict[int, tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    queueing: dict[tuple[str, str, str, int], float | None] = {}
    for case in cases:
        bw = case.settings.get("noc_bw_elems_per_cycle")
        model, truth = case.results.get(Engine.ANALYTIC), case.results.get(Engine.SIM_MAESTRO)
        if bw is None or model is None or truth is None:
            continue
        topology = str(case.settings.get("topology", "bus"))
        curves[(case.scenario, case.layer)][topology][int(bw)] = (
            float(model.runtime_cycles),
            float(truth.runtime_cycles),
        )
        split = truth.flat().get("runtime_split_queueing_cycles")
        queueing[(case.scenario, case.layer, topology, int(bw))] = (
            float(split) / truth.runtime_cycles
            if split is not None and truth.runtime_cycles
            else None
        )
    findings = []
    for (scenario, layer), by_topology in sorted(curves.items()):
        plot_name = f"congestion_{scenario}_{layer}.png".replace("/", "_")
        for topology, points in sorted(by_topology.items()):
            bandwidths = tuple(sorted(points))
            ratios = tuple(points[b][1] / points[b][0] if points[b][0] else 1.0 for b in bandwidths)
            departing = [b for b, r in zip(bandwidths, ratios, strict=True) if r > DEPARTURE]
            departs = None
            if departing:
                higher = [b for b in bandwidths if b > max(departing)]
                departs = higher[0] if higher else 0
            worst = max(range(len(ratios)), key=lambda i: ratios[i])
            findings.append(
                CongestionFinding(
                    scenario=scenario,
                    layer=layer,
                    topology=topology,
                    bandwidths=bandwidths,
                    ratios=ratios,
                    departs_below_bw=departs,
                    worst_ratio=ratios[worst],
                    worst_bw=bandwidths[worst],
                    queueing_share_at_worst=queueing.get(
                        (scenario, layer, topology, bandwidths[worst])
                    ),
                    plot=plot_name,
                    sim_saturates_at_bw=saturation(bandwidths, [points[b][1] for b in bandwidths]),
                    roofline_saturates_at_bw=saturation(
                        bandwidths, [points[b][0] for b in bandwidths]
                    ),
                    analytic_cycles=tuple(points[b][0] for b in bandwidths),
                    simulated_cycles=tuple(points[b][1] for b in bandwidths),
                )
            )
    return findings


def plot_congestion(findings: Sequence[CongestionFinding], out: Path) -> list[str]:
    """One runtime-vs-bandwidth picture per swept layer (every topology on it); returns
    the file names drawn."""
    by_plot: dict[str, list[CongestionFinding]] = defaultdict(list)
    for f in findings:
        by_plot[f.plot].append(f)
    drawn = []
    for name, group in by_plot.items():
        analytic_curve: dict[int, float] = {}
        for f in group:
            analytic_curve.update(zip(f.bandwidths, f.analytic_cycles, strict=True))
        bandwidths = group[-1].bandwidths
        if len(bandwidths) <= 1:
            continue
        plots.congestion_curves(
            bandwidths,
            [analytic_curve[b] for b in bandwidths],
            {f.topology: list(f.simulated_cycles) for f in group},
            f"{group[0].scenario} / {group[0].layer}: runtime vs NoC bandwidth",
            out / name,
        )
        drawn.append(name)
    return drawn


def saturation(bandwidths: tuple[int, ...], runtimes: list[float]) -> int:
    """Lowest swept bandwidth whose runtime is within 5% of the best at any higher one."""
    at = bandwidths[-1]
    for i in range(len(bandwidths) - 1, -1, -1):
        if runtimes[i] > min(runtimes[i:]) * DEPARTURE:
            break
        at = bandwidths[i]
    return at
