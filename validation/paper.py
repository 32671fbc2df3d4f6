"""The seed paper's qualitative findings (MAESTRO arXiv v1, section 4, Figs. 6 and 7),
checked one by one on the results of any engine.

Each finding is the paper's sentence plus a predicate over per-dataflow, per-layer
results; the report states, finding by finding and engine by engine, whether it holds and
with which numbers. The predicates read the figures under the paper's stated conditions
(:class:`Conditions`): Fig. 6 in steady state (the ``steady_*`` metrics), Fig. 7 with
NVDLA's and ShiDianNao's vector L1 reads (``l1_read_accesses``). Switching a condition
off shows which one a verdict hinges on (:func:`attribute`). Definitions, units and the
energy table: docs/paper.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from metronome.spec.energy import AccessCounts, EnergyTable, energy_table
from metronome.spec.results import LayerResult

__all__ = [
    "CLOCK_GHZ",
    "DATAFLOWS",
    "ENGINES",
    "FINDINGS",
    "PAPER",
    "WHOLE_LAYER",
    "WORD_BITS",
    "Conditions",
    "Finding",
    "FindingResult",
    "attribute",
    "energy_breakdown",
    "evaluate",
    "gbps",
    "kilobytes",
    "l1_all_pes",
    "main",
    "measure",
    "noc_bandwidth",
    "throughput",
    "verdict_table",
]

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

ENGINES: tuple[str, ...] = ("analytic-maestro", "analytic", "sim-maestro", "sim-realistic")

WORD_BITS = 16
"""Bits per element: the paper's Fig. 4 caption ("512 Byte with 16-bit fixed point data")."""
CLOCK_GHZ = 1.0
"""Clock assumed to turn elements/cycle into Gbps: the paper states none; 1 GHz makes
1 element/cycle = 16 Gbps."""


def gbps(elems_per_cycle: float) -> float:
    """A bandwidth in the paper's Fig. 6 unit (``WORD_BITS`` at ``CLOCK_GHZ``)."""
    return elems_per_cycle * WORD_BITS * CLOCK_GHZ


def kilobytes(elems: float) -> float:
    """A buffer size in the paper's Fig. 6 unit (KB of ``WORD_BITS`` words)."""
    return elems * WORD_BITS / 8 / 1024


@dataclass(frozen=True, slots=True)
class Conditions:
    """Which of the paper's stated conditions the figures follow.

    ``steady``: Fig. 6's bandwidth, whole-array L1 and roofline throughput of a steady
    step (``steady_*`` metrics) instead of the whole layer's (peak NoC bandwidth, per-PE
    L1 requirement times the mean active PEs, MACs over runtime). ``vector_reads``:
    Fig. 7's L1 reads counted as the engines' ``l1_read_accesses`` (the footnote's vector
    reads) instead of one access per element."""

    steady: bool = True
    vector_reads: bool = True

    @property
    def label(self) -> str:
        """Short name: ``steady+vector``, ``whole-layer``..."""
        parts = [n for n, on in (("steady", self.steady), ("vector", self.vector_reads)) if on]
        return "+".join(parts) or "whole-layer"


PAPER = Conditions()
"""The conditions the paper states."""
WHOLE_LAYER = Conditions(steady=False, vector_reads=False)
"""Whole-layer figures and scalar L1 reads."""


def energy_breakdown(
    result: LayerResult, table: EnergyTable, conditions: Conditions = PAPER
) -> dict[str, float]:
    """MAC, L1 and L2 energy of a layer in nJ (the three bars of the paper's Fig. 7)."""
    reads = sum(c.l1_reads for _, c in result.tensors)
    if conditions.vector_reads:
        reads = int(result.metric("l1_read_accesses"))
    l1 = reads + sum(c.l1_writes for _, c in result.tensors)
    l2 = sum(c.l2_reads + c.l2_writes for _, c in result.tensors)
    counts = AccessCounts(
        macs=result.macs, l1_accesses=l1, l2_accesses=l2, noc_elem_hops=0, offchip_accesses=0
    )
    parts = table.breakdown_nj(counts)
    return {kind: parts[kind] for kind in ("mac", "l1", "l2")}


def _energy(results: Results, flow: str, layer: str, ctx: _Context) -> float:
    return sum(energy_breakdown(results[flow][layer], ctx.table, ctx.conditions).values())


def throughput(result: LayerResult, conditions: Conditions = PAPER) -> float:
    """Fig. 6's roofline throughput (MACs/cycle): of a steady step, or of the whole layer."""
    if conditions.steady:
        return float(result.metric("steady_throughput_macs_per_cycle"))
    return result.macs / result.runtime_cycles if result.runtime_cycles else 0.0


def noc_bandwidth(result: LayerResult, conditions: Conditions = PAPER) -> float:
    """Fig. 6's NoC bandwidth (elements/cycle): a steady step's, or the layer's peak."""
    if conditions.steady:
        return float(result.metric("steady_noc_bw_req_elems_per_cycle"))
    return float(result.metric("noc_bw_req_peak_elems_per_cycle"))


def l1_all_pes(result: LayerResult, conditions: Conditions = PAPER) -> float:
    """L1 the whole accelerator needs (Fig. 6 plots it for the entire array): every PE's
    tiles in a steady step, or the per-PE requirement times the mean active PEs."""
    if conditions.steady:
        return float(result.metric("steady_l1_size_req_elems_all_pes"))
    return float(result.metric("l1_size_req_elems")) * float(result.metric("avg_active_pes"))


@dataclass(frozen=True, slots=True)
class _Context:
    table: EnergyTable
    conditions: Conditions


def _l1_total(results: Results, flow: str, layer: str, ctx: _Context) -> float:
    return l1_all_pes(results[flow][layer], ctx.conditions)


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
    check: Callable[[Results, _Context], FindingResult]


def _table(values: dict[str, float], fmt: str = "{:,.0f}") -> str:
    return ", ".join(f"{LABELS[k]} {fmt.format(v)}" for k, v in values.items())


def _l1_table(values: dict[str, float]) -> str:
    return ", ".join(f"{LABELS[k]} {v:,.0f} ({kilobytes(v):.2f} KB)" for k, v in values.items())


def _least_l1(results: Results, ctx: _Context) -> FindingResult:
    parts, holds = [], True
    for layer in LAYERS:
        values = {f: _l1_total(results, f, layer, ctx) for f in DATAFLOWS}
        ok, ties = _unique_extreme(values, "nlr", largest=False)
        holds &= ok
        parts.append(f"{layer}: {_l1_table(values)} elems in all PEs{ties}")
    return FindingResult(holds, "; ".join(parts))


def _nlr_l2_heavy(results: Results, ctx: _Context) -> FindingResult:
    parts, holds = [], True
    for layer in LAYERS:
        shares = {}
        for f in DATAFLOWS:
            e = energy_breakdown(results[f][layer], ctx.table, ctx.conditions)
            shares[f] = e["l2"] / sum(e.values())
        ok, ties = _unique_extreme(shares, "nlr", largest=True)
        holds &= ok
        parts.append(f"{layer} L2 share of energy: {_table(shares, '{:.0%}')}{ties}")
    return FindingResult(holds, "; ".join(parts))


def _nvdla_worst_conv1(results: Results, ctx: _Context) -> FindingResult:
    values = {f: _energy(results, f, "VGG16_CONV1", ctx) for f in DATAFLOWS}
    holds, ties = _unique_extreme(values, "nvdla_ws", largest=True)
    return FindingResult(holds, f"CONV1 energy: {_table(values, '{:,.1f}')} nJ{ties}")


def _nvdla_half_on_conv11(results: Results, ctx: _Context) -> FindingResult:
    values = {f: _energy(results, f, "VGG16_CONV11", ctx) for f in DATAFLOWS}
    ratios = {f: values[f] / values["nvdla_ws"] for f in ("nlr", "ws", "shidiannao_os")}
    holds = all(r >= 1.5 for r in ratios.values())
    energies = _table(values, "{:,.1f}")
    return FindingResult(
        holds, f"CONV11 energy: {energies} nJ; others / NVDLA: {_table(ratios, '{:.2f}x')}"
    )


def _nvdla_bw_grows(results: Results, ctx: _Context) -> FindingResult:
    one = noc_bandwidth(results["nvdla_ws"]["VGG16_CONV1"], ctx.conditions)
    eleven = noc_bandwidth(results["nvdla_ws"]["VGG16_CONV11"], ctx.conditions)
    kind = "steady-state" if ctx.conditions.steady else "peak"
    return FindingResult(
        eleven > one,
        f"NVDLA {kind} NoC bandwidth: CONV1 {one:.3g} ({gbps(one):.3g} Gbps),"
        f" CONV11 {eleven:.3g} ({gbps(eleven):.3g} Gbps) elems/cycle",
    )


def _rs_most_efficient(results: Results, ctx: _Context) -> FindingResult:
    parts, holds = [], True
    for layer in LAYERS:
        values = {f: _energy(results, f, layer, ctx) for f in DATAFLOWS}
        ok, ties = _unique_extreme(values, "eyeriss_rs", largest=False)
        holds &= ok
        parts.append(f"{layer}: {_table(values, '{:,.1f}')} nJ{ties}")
    return FindingResult(holds, "; ".join(parts))


def _rs_vs_nvdla_throughput(results: Results, ctx: _Context) -> FindingResult:
    t = {
        (f, layer): throughput(results[f][layer], ctx.conditions)
        for f in ("eyeriss_rs", "nvdla_ws")
        for layer in LAYERS
    }
    conv1_worse = t["eyeriss_rs", "VGG16_CONV1"] < t["nvdla_ws", "VGG16_CONV1"]
    conv11_better = t["eyeriss_rs", "VGG16_CONV11"] > t["nvdla_ws", "VGG16_CONV11"]
    evidence = ", ".join(f"{LABELS[f]} {layer[6:]} {v:.2f}" for (f, layer), v in t.items())
    return FindingResult(conv1_worse and conv11_better, f"MACs/cycle: {evidence}")


def _shi_most_l1(results: Results, ctx: _Context) -> FindingResult:
    parts, holds = [], True
    for layer in LAYERS:
        values = {f: _l1_total(results, f, layer, ctx) for f in DATAFLOWS}
        ok, ties = _unique_extreme(values, "shidiannao_os", largest=True)
        holds &= ok
        parts.append(f"{layer}: {_l1_table(values)} elems in all PEs{ties}")
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


def evaluate(
    results: Results, table: EnergyTable, conditions: Conditions = PAPER
) -> list[tuple[Finding, FindingResult]]:
    """Every finding checked on one engine's results (all five dataflows, both layers)."""
    missing = [(f, layer) for f in DATAFLOWS for layer in LAYERS if layer not in results.get(f, {})]
    if missing:
        raise KeyError(f"paper findings need every dataflow and layer; missing {missing[:3]}")
    ctx = _Context(table, conditions)
    return [(finding, finding.check(results, ctx)) for finding in FINDINGS]


_SWITCHES: tuple[tuple[str, Conditions], ...] = (
    ("steady state", Conditions(steady=False)),
    ("vector L1 reads", Conditions(vector_reads=False)),
)


def attribute(
    results: Results, table: EnergyTable
) -> dict[str, tuple[bool, bool, tuple[str, ...]]]:
    """Per finding: whether it holds on whole-layer figures with scalar reads, whether it
    holds under the paper's conditions, and the conditions whose removal alone flips the
    paper-conditions verdict (the conditions it hinges on)."""
    before = {f.key: r.holds for f, r in evaluate(results, table, WHOLE_LAYER)}
    after = {f.key: r.holds for f, r in evaluate(results, table, PAPER)}
    flips: dict[str, list[str]] = {key: [] for key in after}
    for name, conditions in _SWITCHES:
        for f, r in evaluate(results, table, conditions):
            if r.holds != after[f.key]:
                flips[f.key].append(name)
    return {key: (before[key], after[key], tuple(flips[key])) for key in after}


def verdict_table(by_engine: dict[str, Results], table: EnergyTable) -> str:
    """Markdown table: each finding x engine, whole-layer -> paper-conditions verdict,
    with the conditions the paper-conditions verdict hinges on."""
    engines = list(by_engine)
    verdicts = {e: attribute(by_engine[e], table) for e in engines}

    def cell(before: bool, after: bool, hinges: tuple[str, ...]) -> str:
        mark = {True: "holds", False: "fails"}
        text = f"{mark[before]} -> **{mark[after]}**"
        return text + (f" (hinges on {', '.join(hinges)})" if hinges else "")

    lines = ["| finding | " + " | ".join(engines) + " |", "|---" * (len(engines) + 1) + "|"]
    for finding in FINDINGS:
        cells = [cell(*verdicts[e][finding.key]) for e in engines]
        lines.append(f"| {finding.key}: {finding.claim} | " + " | ".join(cells) + " |")
    held = [sum(v[1] for v in verdicts[e].values()) for e in engines]
    before = [sum(v[0] for v in verdicts[e].values()) for e in engines]
    total = len(FINDINGS)
    lines.append(
        "| holding | "
        + " | ".join(f"{b}/{total} -> **{a}/{total}**" for b, a in zip(before, held, strict=True))
        + " |"
    )
    return "\n".join(lines) + "\n"


def measure(scenario_dir: Path, engines: Sequence[str] = ENGINES) -> dict[str, Results]:
    """Every engine on the five Table-2 scenarios ``scenario_dir/<dataflow>.yaml``, in
    this process (one job at a time)."""
    from metronome.spec.names import Engine

    from .runner import Job, RunOutcome, run_job, scenario_of

    out: dict[str, Results] = {}
    for engine in engines:
        results: Results = {}
        for flow in DATAFLOWS:
            path = str(scenario_dir / f"{flow}.yaml")
            layers = scenario_of(path).network.layers
            for i, entry in enumerate(layers):
                outcome = run_job(Job(path, 0, i, Engine(engine)))
                assert isinstance(outcome, RunOutcome)
                results.setdefault(flow, {})[entry.name] = outcome.result
        out[engine] = results
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m metronome.validation.paper [SCENARIO_DIR]``: the verdict table of the
    four engines (default ``scenarios/paper``), whole-layer -> paper conditions, MAESTRO's
    energy table."""
    args = list(sys.argv[1:] if argv is None else argv)
    directory = Path(args[0] if args else "scenarios/paper")
    sys.stdout.write(verdict_table(measure(directory), energy_table("maestro")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
