"""Fused scenarios in the harness: both engines, compared key by key, explained.

The analytic closed form (:mod:`metronome.analytic.fused`) and the tile executor
(:mod:`metronome.sim.fused`) report the same schema per group and per tensor. Off-chip reads and
writes, MACs (recomputed ones included) and buffer peaks must be equal; runtime differs
by the pipeline's fill and drain and by per-transfer rounding, which the closed form's
steady state ``sum(max(compute, transfer))`` leaves out, and the L1, L2 and NoC traffic
(hence energy) of layers with a dataflow by each engine's single-layer model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metronome.spec.fused import FusedLayer, FusedResult, FusedScenario, Kind

__all__ = [
    "EXACT",
    "FusedRow",
    "compare_fused",
    "reference_chain",
    "render_markdown",
    "run_fused",
]

EXACT: tuple[str, ...] = (
    "offchip_reads",
    "offchip_writes",
    "onchip_buffer_req_elems",
    "macs",
    "macs_recomputed",
)
"""Metrics both engines count from the same schedule, so they must be equal."""

_ONCHIP = (
    "a layer with a dataflow counts its tiles' L1, NoC and L2-to-PE traffic in each engine's"
    " own single-layer model of that mapping on the tile's sub-problem (the closed form's"
    " reuse and multicast assumptions vs the simulator's executed loop nest), so their"
    " single-layer differences carry over; layers without a dataflow count only the"
    " group's L2 makes and needs, which are equal"
)

_EXPLAIN = {
    "runtime_cycles": "the simulator pipelines loads, compute and stores over one off-chip"
    " channel, with a fill (first tile's loads) and a drain (last tile's stores) and each"
    " transfer rounded up on its own; the closed form sums max(compute, transfer) per tile;"
    " for a layer with a dataflow each tile's compute comes from each engine's own"
    " single-layer model of that mapping on the tile's sub-problem, so their single-layer"
    " differences carry over",
    "energy_nj": "energy is a linear function of MACs, L1, L2 and NoC accesses and"
    " off-chip elements; it differs where those counts do",
    "l1_accesses": _ONCHIP,
    "l2_accesses": _ONCHIP,
    "noc_elem_hops": _ONCHIP,
}


@dataclass(frozen=True, slots=True)
class FusedRow:
    """One compared metric of one group (``tensor/metric`` for a tensor's)."""

    scenario: str
    group: str
    metric: str
    analytic: float
    sim: float
    exact: bool
    explanation: str

    @property
    def ok(self) -> bool:
        """Exact metrics must agree; the others are reported with their reason."""
        return not self.exact or self.analytic == self.sim


def compare_fused(analytic: FusedResult, sim: FusedResult) -> list[FusedRow]:
    """Every metric of every group of two results, key by key."""
    rows = []
    for a, s in zip(analytic.groups, sim.groups, strict=True):
        am, sm = a.metrics(), s.metrics()
        for key in sorted(set(am) | set(sm)):
            metric = key.split("/")[-1]
            same_onchip = (a.l1_accesses, a.l2_accesses, a.noc_elem_hops) == (
                s.l1_accesses,
                s.l2_accesses,
                s.noc_elem_hops,
            )
            exact = metric in EXACT or (metric == "energy_nj" and same_onchip)
            rows.append(
                FusedRow(
                    scenario=analytic.scenario,
                    group=a.group,
                    metric=key,
                    analytic=float(am.get(key, float("nan"))),
                    sim=float(sm.get(key, float("nan"))),
                    exact=metric in EXACT,
                    explanation=_EXPLAIN.get(metric, "")
                    if not exact or am.get(key) != sm.get(key)
                    else "",
                )
            )
    return rows


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


def run_fused(
    scenario: FusedScenario,
) -> tuple[FusedResult, FusedResult, list[FusedRow], bool | None]:
    """Both engines on ``scenario``; the rows, and whether the functional output equals
    numpy's (``None`` when the scenario does not ask for a functional run)."""
    from metronome.analytic.fused import analyze_fused
    from metronome.sim.fused import chain_weights, simulate_fused

    analytic = analyze_fused(scenario)
    functional_ok: bool | None = None
    if scenario.functional:
        image, weights = chain_weights(scenario)
        run = simulate_fused(scenario, functional=True, image=image, weights=weights)
        assert run.output is not None
        functional_ok = bool(np.array_equal(run.output, reference_chain(scenario, image, weights)))
    else:
        run = simulate_fused(scenario)
    return analytic, run.result, compare_fused(analytic, run.result), functional_ok


def render_markdown(runs: list[tuple[str, list[FusedRow], bool | None]]) -> str:
    """The fused part of the validation report: every metric, both engines."""
    from .report import fmt

    lines = ["# Fused-layer scenarios: closed form vs executed schedule", ""]
    for name, rows, functional in runs:
        state = {None: "not run", True: "equals numpy", False: "DIFFERS from numpy"}[functional]
        lines += [f"## {name}", "", f"Functional output: {state}.", ""]
        lines += ["| group | metric | analytic | simulated | status |", "|---|---|---|---|---|"]
        for row in rows:
            status = (
                "equal" if row.analytic == row.sim else ("MISMATCH" if row.exact else "differs")
            )
            lines.append(
                f"| {row.group} | {row.metric} | {fmt(row.analytic)} | {fmt(row.sim)} | {status} |"
            )
        explained = sorted({r.explanation for r in rows if r.explanation and r.analytic != r.sim})
        lines += ["", *[f"- {text}" for text in explained], ""]
    return "\n".join(lines)
