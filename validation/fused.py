"""Fused scenarios in the harness: both engines, compared key by key, explained, guarded.

The analytic closed form (:mod:`metronome.analytic.fused`) and the tile executor
(:mod:`metronome.sim.fused`) report the same schema per group and per tensor. Off-chip
reads and writes and MACs (recomputed ones included) must be equal. Buffer peaks, L2
accesses and energy are expected equal too (both engines count the same schedule with
the same release policy); a difference there passes only when the harness can say where
it comes from. Runtime differs, and the harness splits each group's gap into the tile
pipeline's share (measured by re-running both engines with every layer's dataflow
replaced by an even spread over the PEs, so that their per-tile compute is the same) and
the share of the single-layer models that time each tile's compute (the rest).
Every compared value also becomes a :class:`~metronome.validation.compare.MetricRow`, so
the accuracy guard (``baseline.json``) covers fused groups like single layers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metronome.spec.energy import ENERGY_TABLES, AccessCounts
from metronome.spec.fused import (
    FusedGroupResult,
    FusedLayer,
    FusedResult,
    FusedScenario,
    Kind,
    load_fused,
)

from .compare import MetricRow
from .document import Block, Heading, Items, Paragraph, Table

__all__ = [
    "COMPARISON",
    "EXACT",
    "FusedOutcome",
    "FusedRow",
    "RuntimeSplit",
    "compare_fused",
    "fused_blocks",
    "fused_page",
    "fused_summary",
    "reference_chain",
    "run_fused",
    "run_fused_paths",
    "runtime_splits",
]

COMPARISON = "fused:analytic~sim"
"""The comparison name fused rows carry in results and in the baseline."""

EXACT: tuple[str, ...] = (
    "offchip_reads",
    "offchip_writes",
    "macs",
    "macs_recomputed",
)
"""Metrics both engines count from the same schedule: any difference is a bug."""

_RUNTIME = "runtime_cycles"


_ONCHIP_COUNTS = ("l1_accesses", "l2_accesses", "noc_elem_hops")
"""The on-chip traffic counts every group reports."""


@dataclass(frozen=True, slots=True)
class RuntimeSplit:
    """A group's runtime gap (simulated - analytic) in two measured parts, and the
    on-chip counts on which the engines agree once no layer has a dataflow."""

    pipeline_cycles: int
    compute_cycles: int
    equal_without_dataflows: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """The explanation line of a runtime row."""
        parts = [
            f"{self.pipeline_cycles:+,} cycles from the tile pipeline (the simulator overlaps"
            " loads, compute and stores of consecutive tiles on one off-chip channel, with a"
            " fill before the first tile computes and a drain after the last, and rounds"
            " loads and stores separately; the closed form sums max(compute, transfer) per"
            " tile)"
        ]
        if self.compute_cycles:
            parts.append(
                f"{self.compute_cycles:+,} cycles from the tiles' compute under the layers'"
                " dataflows (each engine times a tile's sub-problem with its own single-layer"
                " model)"
            )
        return "; ".join(parts)

    def describe_onchip(self, metric: str, analytic: float, sim: float) -> str:
        """Why an on-chip count differs, when the dataflows add to it and removing them
        makes the engines agree."""
        even = self.equal_without_dataflows.get(metric)
        if even is None or analytic == sim or even in (analytic, sim):
            return ""
        return (
            f"{sim - analytic:+,.0f} from the layers' dataflows: each engine counts a tile's"
            " traffic under a mapping with its own single-layer model (analytic"
            f" {analytic - even:+,.0f}, simulated {sim - even:+,.0f}); with every dataflow"
            f" replaced by an even spread over the PEs both count {even:,.0f}"
        )


@dataclass(frozen=True, slots=True)
class FusedRow:
    """One compared metric of one group (``tensor/metric`` for a tensor's)."""

    scenario: str
    group: str
    group_index: int
    metric: str
    analytic: float
    sim: float
    exact: bool
    explanation: str

    @property
    def equal(self) -> bool:
        """Both engines gave the same value."""
        return self.analytic == self.sim

    @property
    def ok(self) -> bool:
        """Equal, or (for a metric that is not exact) different for a stated reason."""
        return self.equal or (not self.exact and bool(self.explanation))

    @property
    def status(self) -> str:
        """equal, explained, MISMATCH (an exact metric) or UNEXPLAINED."""
        if self.equal:
            return "equal"
        if self.exact:
            return "MISMATCH"
        return "explained" if self.explanation else "UNEXPLAINED"

    def metric_row(self) -> MetricRow:
        """The row the accuracy guard and results.csv keep (model = analytic)."""
        return MetricRow(
            self.scenario,
            "",
            self.group,
            self.group_index,
            COMPARISON,
            self.metric,
            self.analytic,
            self.sim,
        )


def _counts(g: FusedGroupResult) -> AccessCounts:
    """What the group's energy prices."""
    return AccessCounts(
        macs=g.macs,
        l1_accesses=g.l1_accesses,
        l2_accesses=g.l2_accesses,
        noc_elem_hops=g.noc_elem_hops,
        offchip_accesses=g.offchip_reads + g.offchip_writes,
    )


def _energy_reason(a: FusedGroupResult, s: FusedGroupResult, energy: str) -> str:
    """Why the energies differ, when each is its own counts priced by the energy table
    (so the difference is wholly the counts' difference)."""
    table = ENERGY_TABLES[energy]
    ca, cs = _counts(a), _counts(s)
    priced = all(
        math.isclose(table.energy_nj(c), g.energy_nj, rel_tol=1e-9, abs_tol=1e-5)
        for c, g in ((ca, a), (cs, s))
    )
    deltas = [
        f"{name.replace('_', ' ')} {getattr(cs, name) - getattr(ca, name):+,}"
        for name in ("macs", "l1_accesses", "l2_accesses", "noc_elem_hops", "offchip_accesses")
        if getattr(cs, name) != getattr(ca, name)
    ]
    if priced and deltas:
        return f"energy follows the counts it prices: {', '.join(deltas)} (simulated - analytic)"
    return ""


def compare_fused(
    analytic: FusedResult,
    sim: FusedResult,
    splits: dict[str, RuntimeSplit] | None = None,
    energy: str = "eyeriss65",
) -> list[FusedRow]:
    """Every metric of every group of two results, key by key, each difference with its
    reason where one is known (``splits``: each group's measured runtime split)."""
    rows = []
    for index, (a, s) in enumerate(zip(analytic.groups, sim.groups, strict=True)):
        am = {**a.metrics(), "l2_accesses": a.l2_accesses}
        sm = {**s.metrics(), "l2_accesses": s.l2_accesses}
        for key in sorted(set(am) | set(sm)):
            metric = key.split("/")[-1]
            av = float(am.get(key, math.nan))
            sv = float(sm.get(key, math.nan))
            reason = ""
            if av != sv:
                if key == _RUNTIME and splits and a.group in splits:
                    reason = splits[a.group].describe()
                elif key in _ONCHIP_COUNTS and splits and a.group in splits:
                    reason = splits[a.group].describe_onchip(key, av, sv)
                elif key == "energy_nj":
                    reason = _energy_reason(a, s, energy)
            rows.append(
                FusedRow(
                    scenario=analytic.scenario,
                    group=a.group,
                    group_index=index,
                    metric=key,
                    analytic=av,
                    sim=sv,
                    exact=metric in EXACT,
                    explanation=reason,
                )
            )
    return rows


def _even_spread(layer: FusedLayer) -> FusedLayer:
    return dataclasses.replace(layer, dataflow=None, mapping=None)


def runtime_splits(
    scenario: FusedScenario, analytic: FusedResult, sim: FusedResult
) -> dict[str, RuntimeSplit]:
    """Each group's runtime gap split into the pipeline's and the tile compute's shares.

    Without dataflows both engines give a tile the same compute (its operations spread
    evenly over the PEs), so the whole gap is the pipeline's. With them, both engines run
    again with every dataflow replaced by that even spread: the gap left is the pipeline's
    share, the rest the single-layer models' share. The same re-run tells which on-chip
    counts differ only because of the dataflows (equal without them).
    """
    from metronome.analytic.fused import analyze_fused
    from metronome.sim.fused import simulate_fused

    gaps = {
        a.group: s.runtime_cycles - a.runtime_cycles
        for a, s in zip(analytic.groups, sim.groups, strict=True)
    }
    if all(layer.dataflow is None for layer in scenario.layers):
        return {g: RuntimeSplit(gap, 0) for g, gap in gaps.items()}
    even = dataclasses.replace(scenario, layers=tuple(map(_even_spread, scenario.layers)))
    a0, s0 = analyze_fused(even), simulate_fused(even).result
    out = {}
    for a, s in zip(a0.groups, s0.groups, strict=True):
        pipeline = s.runtime_cycles - a.runtime_cycles
        equal = {
            name: float(getattr(a, name))
            for name in _ONCHIP_COUNTS
            if getattr(a, name) == getattr(s, name)
        }
        out[a.group] = RuntimeSplit(pipeline, gaps[a.group] - pipeline, equal)
    return out


def _reference_layer(layer: FusedLayer, data: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """One whole layer in numpy, written independently of the tile executor: zero-pad,
    then sum (or max over) the window's shifted, strided slices."""
    (sy, sx), (r, s), (py, px) = layer.stride, layer.window, layer.padding
    padded = np.pad(data, ((0, 0), (py, py), (px, px)))
    _, oh, ow = layer.out_shape
    if layer.kind is Kind.GEMM:
        out = weight @ data.reshape(data.shape[0], -1)
        out = out.reshape(layer.out_shape)
    else:
        acc: np.ndarray | None = None
        for dr in range(r):
            for ds in range(s):
                piece = padded[
                    :, dr : dr + (oh - 1) * sy + 1 : sy, ds : ds + (ow - 1) * sx + 1 : sx
                ]
                if layer.kind is Kind.CONV:
                    term = np.tensordot(weight[:, :, dr, ds], piece, axes=([1], [0]))
                elif layer.kind is Kind.DSCONV:
                    term = piece * weight[:, dr, ds][:, None, None]
                else:
                    term = piece
                if acc is None:
                    acc = term.copy()
                elif layer.pool == "max":
                    acc = np.maximum(acc, term)
                else:
                    acc = acc + term
        assert acc is not None
        out = acc // (r * s) if layer.pool == "avg" else acc
    if layer.activation == "relu":
        out = np.maximum(out, 0)
    return np.asarray(out, dtype=np.int64)


def reference_chain(
    scenario: FusedScenario, image: np.ndarray, weights: list[np.ndarray]
) -> np.ndarray:
    """The chain's output computed layer by layer in numpy (int64)."""
    data = image
    for layer, weight in zip(scenario.layers, weights, strict=True):
        data = _reference_layer(layer, data, weight)
    return data


@dataclass(frozen=True, slots=True)
class FusedOutcome:
    """One fused scenario validated: both engines' results, the compared rows, and
    whether the functional output equals numpy's (``None`` when not asked for)."""

    scenario: FusedScenario
    analytic: FusedResult
    sim: FusedResult
    rows: tuple[FusedRow, ...]
    functional: bool | None = None
    splits: dict[str, RuntimeSplit] = field(default_factory=dict)

    @property
    def failures(self) -> list[FusedRow]:
        """Rows that differ without a known reason (exact metrics: any difference)."""
        return [r for r in self.rows if not r.ok]

    @property
    def ok(self) -> bool:
        """Nothing unexplained and the functional output (if run) equals numpy's."""
        return not self.failures and self.functional is not False

    def metric_rows(self) -> list[MetricRow]:
        """Every compared value as a guard row."""
        return [r.metric_row() for r in self.rows]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: both results, the functional verdict, each row's status."""
        return {
            "scenario": self.scenario.name,
            "path": self.scenario.path,
            "functional": self.functional,
            "analytic": self.analytic.to_dict(),
            "sim": self.sim.to_dict(),
            "runtime_split": {g: dataclasses.asdict(s) for g, s in sorted(self.splits.items())},
            "rows": [
                {
                    "group": r.group,
                    "metric": r.metric,
                    "analytic": r.analytic,
                    "sim": r.sim,
                    "status": r.status,
                    "explanation": r.explanation,
                }
                for r in self.rows
            ],
        }


def run_fused(scenario: FusedScenario) -> FusedOutcome:
    """Both engines on ``scenario`` (functionally when it asks for it), compared."""
    from metronome.analytic.fused import analyze_fused
    from metronome.sim.fused import chain_weights, simulate_fused

    analytic = analyze_fused(scenario)
    functional: bool | None = None
    if scenario.functional:
        image, weights = chain_weights(scenario)
        run = simulate_fused(scenario, functional=True, image=image, weights=weights)
        assert run.output is not None
        functional = bool(np.array_equal(run.output, reference_chain(scenario, image, weights)))
    else:
        run = simulate_fused(scenario)
    splits = runtime_splits(scenario, analytic, run.result)
    rows = compare_fused(analytic, run.result, splits, scenario.energy)
    return FusedOutcome(scenario, analytic, run.result, tuple(rows), functional, splits)


def run_fused_paths(paths: list[Path]) -> list[FusedOutcome]:
    """Load and validate every fused scenario (a bad one stops with a SpecError before
    anything runs)."""
    scenarios = [load_fused(p) for p in paths]
    return [run_fused(s) for s in scenarios]


def _fmt(value: float) -> str:
    from .report import fmt

    return "n/a" if math.isnan(value) else fmt(value)


def _runtime_error(a: float, s: float) -> float:
    return (a - s) / abs(s) if s else 0.0


def fused_summary(outcomes: list[FusedOutcome]) -> str:
    """One answer-first line: do the engines agree, how far apart are the runtimes, is
    every difference explained."""
    groups = [(o, i) for o in outcomes for i in range(len(o.analytic.groups))]
    exact_ok = sum(
        1 for o, i in groups if all(r.equal for r in o.rows if r.group_index == i and r.exact)
    )
    buffer_ok = sum(
        1
        for o, i in groups
        if o.analytic.groups[i].onchip_buffer_req_elems == o.sim.groups[i].onchip_buffer_req_elems
    )
    errors = [
        (
            _runtime_error(o.analytic.groups[i].runtime_cycles, o.sim.groups[i].runtime_cycles),
            f"{o.scenario.name}/{o.analytic.groups[i].group}",
        )
        for o, i in groups
    ]
    worst = max(errors, key=lambda e: (abs(e[0]), e[1]), default=(0.0, ""))
    bad = sum(len(o.failures) for o in outcomes)
    functional = [o.functional for o in outcomes if o.functional is not None]
    verdict = (
        "every difference explained"
        if not bad
        else f"{bad} difference(s) NOT explained (see the fused page)"
    )
    return (
        f"fused: {len(outcomes)} scenario(s), {len(groups)} group(s): off-chip transfers and"
        f" MACs equal on {exact_ok}/{len(groups)}, buffer peaks on {buffer_ok}/{len(groups)};"
        f" runtime (analytic vs simulated) worst {worst[0]:+.2%} ({worst[1]}); {verdict}"
        + (
            f"; functional output equals numpy's on {sum(functional)}/{len(functional)}"
            if functional
            else ""
        )
    )


def _cell(a: float, s: float) -> str:
    return _fmt(a) if a == s else f"{_fmt(a)} vs {_fmt(s)}"


def fused_blocks(outcomes: list[FusedOutcome]) -> list[Block]:
    """The fused section of report.md: the answer, one row per group, the reasons."""
    if not outcomes:
        return []
    table = []
    for o in outcomes:
        for i, (a, s) in enumerate(zip(o.analytic.groups, o.sim.groups, strict=True)):
            split = o.splits.get(a.group)
            failures = [r for r in o.failures if r.group_index == i]
            why = (
                "; ".join(f"{r.metric} {r.status}" for r in failures)
                if failures
                else (
                    f"pipeline {split.pipeline_cycles:+,}, tile compute {split.compute_cycles:+,}"
                    if split and a.runtime_cycles != s.runtime_cycles
                    else "-"
                )
            )
            table.append(
                (
                    f"{o.scenario.name}/{a.group}",
                    _fmt(a.tiles),
                    _cell(a.offchip_reads + a.offchip_writes, s.offchip_reads + s.offchip_writes),
                    _cell(a.macs, s.macs),
                    _cell(a.onchip_buffer_req_elems, s.onchip_buffer_req_elems),
                    _fmt(a.runtime_cycles),
                    _fmt(s.runtime_cycles),
                    f"{_runtime_error(a.runtime_cycles, s.runtime_cycles):+.2%}",
                    why,
                )
            )
    return [
        Heading("Fused-layer groups: closed form vs executed schedule", 2),
        Paragraph(fused_summary(outcomes) + "."),
        Table(
            (
                "scenario/group",
                "tiles",
                "off-chip elements",
                "MACs",
                "buffer (elements)",
                "analytic cycles",
                "simulated cycles",
                "runtime error",
                "runtime gap: where from (cycles)",
            ),
            tuple(table),
            "lrrrrrrrl",
        ),
        Paragraph(
            "One value where both engines agree, `analytic vs simulated` where they do not."
            " Off-chip transfers and MACs must be equal (the engines count the same schedule);"
            " so must buffer peaks, L2 accesses and energy unless the harness can name the"
            " cause. A runtime gap is split by measurement: both engines re-run with every"
            " layer's dataflow replaced by an even spread of its operations over the PEs (the"
            " same per-tile compute in both) leave the *pipeline* share: the simulator's fill"
            " (the first tile's loads before anything computes), drain (the last tile's"
            " stores) and separately rounded loads and stores, against the closed form's"
            " steady state, the sum over tiles of max(compute, transfer). The rest is the"
            " *tile compute* share: each engine times a tile's sub-problem with its own"
            " single-layer model of the layer's mapping, so their single-layer differences"
            " carry over. [Every metric of every tensor](fused) · docs/fused.md."
        ),
    ]


def fused_page(outcomes: list[FusedOutcome]) -> list[Block]:
    """The fused page: every metric of every group and tensor, both engines."""
    blocks: list[Block] = [
        Heading("Fused-layer scenarios: closed form vs executed schedule", 1),
        Paragraph("[back to the report](report)"),
        Paragraph(fused_summary(outcomes) + "."),
    ]
    for o in outcomes:
        state = {None: "not run", True: "equals numpy", False: "DIFFERS from numpy"}[o.functional]
        blocks += [
            Heading(o.scenario.name, 2),
            Paragraph(f"`{o.scenario.path}` · functional output: {state}."),
            Table(
                ("group", "metric", "analytic", "simulated", "status"),
                tuple((r.group, r.metric, _fmt(r.analytic), _fmt(r.sim), r.status) for r in o.rows),
                "llrrl",
            ),
        ]
        reasons = [f"{r.group} `{r.metric}`: {r.explanation}" for r in o.rows if r.explanation]
        if reasons:
            blocks.append(Items(tuple(reasons)))
    return blocks
