"""The seed paper's qualitative findings (MAESTRO arXiv v1, section 4, Figs. 6 and 7),
checked one by one on the results of any engine.

Each finding is the paper's sentence plus a predicate over per-dataflow, per-layer
results; the report states, finding by finding and engine by engine, whether it holds and
with which numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from spec.energy import AccessCounts, EnergyTable
from spec.results import LayerResult

__all__ = ["DATAFLOWS", "FINDINGS", "Finding", "FindingResult", "energy_breakdown", "evaluate"]

DATAFLOWS: tuple[str, ...] = ("nlr", "ws", "shidiannao_os", "eyeriss_rs", "nvdla_ws")
LABELS: dict[str, str] = {
    "nlr": "NLR",
    "ws": "WS",
    "shidiannao_os": "ShiDianNao",
    "eyeriss_rs": "Eyeriss RS",
    "nvdla_ws": "NVDLA",
}
LAYERS: tuple[str, ...] = ("VGG16_CONV1", "VGG16_CONV11")

Results = dict[str, dict[str, LayerResult]]
"""dataflow -> layer -> result."""


def energy_breakdown(result: LayerResult, table: EnergyTable) -> dict[str, float]:
    """MAC, L1 and L2 energy of a layer in nJ (the three bars of the paper's Fig. 7)."""
    l1 = sum(c.l1_reads + c.l1_writes for _, c in result.tensors)
    l2 = sum(c.l2_reads + c.l2_writes for _, c in result.tensors)
    counts = AccessCounts(
        macs=result.macs, l1_accesses=l1, l2_accesses=l2, noc_elem_hops=0, offchip_accesses=0
    )
    parts = table.breakdown_nj(counts)
    return {kind: parts[kind] for kind in ("mac", "l1", "l2")}


def _energy(results: Results, flow: str, layer: str, table: EnergyTable) -> float:
    return sum(energy_breakdown(results[flow][layer], table).values())


def _throughput(results: Results, flow: str, layer: str) -> float:
    r = results[flow][layer]
    return r.macs / r.runtime_cycles if r.runtime_cycles else 0.0


def _metric(results: Results, flow: str, layer: str, key: str) -> float:
    return float(results[flow][layer].metric(key))


def _l1_total(results: Results, flow: str, layer: str) -> float:
    """L1 the whole accelerator needs (the paper's Fig. 6 plots it for the entire array):
    per-PE requirement times the PEs in use on average."""
    return _metric(results, flow, layer, "l1_size_req_elems") * _metric(
        results, flow, layer, "avg_active_pes"
    )


def _unique_extreme(values: dict[str, float], flow: str, largest: bool) -> tuple[bool, str]:
    """Whether ``flow`` is strictly the largest (or smallest) of ``values``; ties do not count."""
    target = values[flow]
    others = [v for k, v in values.items() if k != flow]
    holds = all(target > v for v in others) if largest else all(target < v for v in others)
    tied = [LABELS[k] for k, v in values.items() if k != flow and v == target]
    return holds, f" (tied with {', '.join(tied)})" if tied else ""


@dataclass(frozen=True, slots=True)
class FindingResult:
    """Whether a finding holds for one engine's results, with the numbers that decide it."""

    holds: bool
    evidence: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One qualitative claim of the paper."""

    key: str
    claim: str
    check: Callable[[Results, EnergyTable], FindingResult]


def _table(values: dict[str, float], fmt: str = "{:,.0f}") -> str:
    return ", ".join(f"{LABELS[k]} {fmt.format(v)}" for k, v in values.items())


def _least_l1(results: Results, table: EnergyTable) -> FindingResult:
    parts, holds = [], True
    for layer in LAYERS:
        values = {f: _l1_total(results, f, layer) for f in DATAFLOWS}
        ok, ties = _unique_extreme(values, "nlr", largest=False)
        holds &= ok
        parts.append(f"{layer}: {_table(values)} elems in all PEs{ties}")
    return FindingResult(holds, "; ".join(parts))


def _nlr_l2_heavy(results: Results, table: EnergyTable) -> FindingResult:
    parts, holds = [], True
    for layer in LAYERS:
        shares = {}
        for f in DATAFLOWS:
            e = energy_breakdown(results[f][layer], table)
            shares[f] = e["l2"] / sum(e.values())
        ok, ties = _unique_extreme(shares, "nlr", largest=True)
        holds &= ok
        parts.append(f"{layer} L2 share of energy: {_table(shares, '{:.0%}')}{ties}")
    return FindingResult(holds, "; ".join(parts))


def _nvdla_worst_conv1(results: Results, table: EnergyTable) -> FindingResult:
    values = {f: _energy(results, f, "VGG16_CONV1", table) for f in DATAFLOWS}
    holds, ties = _unique_extreme(values, "nvdla_ws", largest=True)
    return FindingResult(holds, f"CONV1 energy: {_table(values, '{:,.1f}')} nJ{ties}")


def _nvdla_half_on_conv11(results: Results, table: EnergyTable) -> FindingResult:
    values = {f: _energy(results, f, "VGG16_CONV11", table) for f in DATAFLOWS}
    ratios = {f: values[f] / values["nvdla_ws"] for f in ("nlr", "ws", "shidiannao_os")}
    holds = all(r >= 1.5 for r in ratios.values())
    energies = _table(values, "{:,.1f}")
    return FindingResult(
        holds, f"CONV11 energy: {energies} nJ; others / NVDLA: {_table(ratios, '{:.2f}x')}"
    )


def _nvdla_bw_grows(results: Results, table: EnergyTable) -> FindingResult:
    key = "noc_bw_req_peak_elems_per_cycle"
    one = _metric(results, "nvdla_ws", "VGG16_CONV1", key)
    eleven = _metric(results, "nvdla_ws", "VGG16_CONV11", key)
    return FindingResult(
        eleven > one, f"NVDLA peak NoC bandwidth: CONV1 {one:g}, CONV11 {eleven:g} elems/cycle"
    )


def _rs_most_efficient(results: Results, table: EnergyTable) -> FindingResult:
    parts, holds = [], True
    for layer in LAYERS:
        values = {f: _energy(results, f, layer, table) for f in DATAFLOWS}
        ok, ties = _unique_extreme(values, "eyeriss_rs", largest=False)
        holds &= ok
        parts.append(f"{layer}: {_table(values, '{:,.1f}')} nJ{ties}")
    return FindingResult(holds, "; ".join(parts))


def _rs_vs_nvdla_throughput(results: Results, table: EnergyTable) -> FindingResult:
    t = {
        (f, layer): _throughput(results, f, layer)
        for f in ("eyeriss_rs", "nvdla_ws")
        for layer in LAYERS
    }
    conv1_worse = t["eyeriss_rs", "VGG16_CONV1"] < t["nvdla_ws", "VGG16_CONV1"]
    conv11_better = t["eyeriss_rs", "VGG16_CONV11"] > t["nvdla_ws", "VGG16_CONV11"]
    evidence = ", ".join(f"{LABELS[f]} {layer[6:]} {v:.2f}" for (f, layer), v in t.items())
    return FindingResult(conv1_worse and conv11_better, f"MACs/cycle: {evidence}")


def _shi_most_l1(results: Results, table: EnergyTable) -> FindingResult:
    parts, holds = [], True
    for layer in LAYERS:
        values = {f: _l1_total(results, f, layer) for f in DATAFLOWS}
        ok, ties = _unique_extreme(values, "shidiannao_os", largest=True)
        holds &= ok
        parts.append(f"{layer}: {_table(values)} elems in all PEs{ties}")
    return FindingResult(holds, "; ".join(parts))


FINDINGS: tuple[Finding, ...] = (
    Finding("nlr-least-l1", "NLR has the least L1 memory requirement.", _least_l1),
    Finding(
        "nlr-l2-energy",
        "NLR therefore has significant L2 energy consumption (the largest L2 share).",
        _nlr_l2_heavy,
    ),
    Finding(
        "nvdla-worst-conv1",
        "For CONV1, NVDLA has the highest energy consumption among all dataflows.",
        _nvdla_worst_conv1,
    ),
    Finding(
        "nvdla-best-conv11",
        "For CONV11, NVDLA's energy is about 2x lower than NLR, WS and ShiDianNao.",
        _nvdla_half_on_conv11,
    ),
    Finding(
        "nvdla-bw-conv11",
        "NVDLA requires much higher NoC bandwidth in CONV11 than in CONV1.",
        _nvdla_bw_grows,
    ),
    Finding(
        "rs-most-efficient",
        "The RS dataflow is the most energy-efficient (very few L2 reads).",
        _rs_most_efficient,
    ),
    Finding(
        "rs-vs-nvdla-throughput",
        "Compared to NVDLA, RS has worse roofline throughput on CONV1 but better on CONV11.",
        _rs_vs_nvdla_throughput,
    ),
    Finding(
        "shi-most-l1",
        "ShiDianNao has the highest L1 buffer requirement among all dataflows.",
        _shi_most_l1,
    ),
)


def evaluate(results: Results, table: EnergyTable) -> list[tuple[Finding, FindingResult]]:
    """Every finding checked on one engine's results (all five dataflows, both layers)."""
    missing = [(f, layer) for f in DATAFLOWS for layer in LAYERS if layer not in results.get(f, {})]
    if missing:
        raise KeyError(f"paper findings need every dataflow and layer; missing {missing[:3]}")
    return [(finding, finding.check(results, table)) for finding in FINDINGS]
