"""The closed form of a SCALE-Sim systolic array, derived on paper from how the array is
fed (docs/simulator.md, "Systolic mode"), independently of the simulator's execution.

Per fold of a ``rows x cols`` array (``R x C``), ``T`` steps in time:

* **OS**: operands enter with the skew for ``T`` cycles; the last PE, ``(R-1, C-1)``,
  does its last MAC ``T - 1 + (R - 1) + (C - 1)`` cycles after the first word entered,
  so a fold lasts ``T + R + C - 2`` cycles.
* **WS / IS**: the stationary words take ``R`` cycles to shift down the columns; the
  streaming words then enter with the skew for ``T`` cycles and the last partial sum
  leaves the bottom of column ``C - 1`` after ``R - 1 + C - 1`` more: ``2R + C + T - 2``.

Strictly serial folds (SCALE-Sim) sum these. With ``overlap_folds`` the next fold issues
as soon as the ports and registers allow: in OS every ``max(T, r)`` cycles (``r`` the
rows the previous fold used: its outputs leave one per cycle per column bus); in WS/IS
the next stationary load fills the shadow registers while the previous fold streams, so
streams follow each other every ``max(T, R)`` cycles.
"""

from __future__ import annotations

from metronome.spec.scalesim import (
    Lowered,
    ScaleSimConfig,
    ScaleSimCounts,
    ScaleSimLayer,
    SystolicLayerResult,
    lower,
)

__all__ = ["ENGINE_SYSTOLIC", "analyze_systolic", "systolic_cycles"]

ENGINE_SYSTOLIC = "analytic-systolic"


def systolic_cycles(low: Lowered, overlap: bool = False) -> int:
    """Cycles of the whole layer (SCALE-Sim's "Total Cycles" is this minus one)."""
    big_r, big_c, t = low.rows, low.cols, low.t
    folds = low.fold_extents()
    if low.dataflow == "os":
        per_fold = t + big_r + big_c - 2
        if not overlap:
            return len(folds) * per_fold
        return sum(max(t, r) for r, _ in folds[:-1]) + per_fold
    per_fold = 2 * big_r + big_c + t - 2
    if not overlap:
        return len(folds) * per_fold
    return (len(folds) - 1) * max(t, big_r) + per_fold


def analyze_systolic(
    layer: ScaleSimLayer,
    config: ScaleSimConfig,
    *,
    overlap: bool = False,
    layer_index: int = 0,
) -> SystolicLayerResult:
    """The closed-form result of one layer in SCALE-Sim's conventions."""
    low = lower(layer, config)
    big_r, big_c, t = low.rows, low.cols, low.t
    folds = low.fold_extents()
    cycles = systolic_cycles(low, overlap)
    # Words crossing each edge per fold: the streamed operand T per used row (and, in OS,
    # T per used column); the stationary operand once per used PE; outputs as they leave.
    if low.dataflow == "os":
        ifmap = sum(t * r for r, _ in folds)
        filt = sum(t * c for _, c in folds)
        ofmap_real = sum(r * c for r, c in folds)
        # SCALE-Sim adds the padded fold's height plus width to its OS write count.
        ofmap = ofmap_real + len(folds) * (big_r + big_c)
        util_cycles = t + big_r + big_c - 2
    else:
        streamed = sum(t * r for r, _ in folds)
        stationary = sum(r * c for r, c in folds)
        ifmap, filt = (streamed, stationary) if low.dataflow == "ws" else (stationary, streamed)
        ofmap_real = ofmap = sum(t * c for _, c in folds)
        # SCALE-Sim divides by its WS/IS per-fold count plus cols - 1.
        util_cycles = 2 * big_r + 2 * big_c + t - 3
    pes = big_r * big_c
    mapping = sum(r * c for r, c in folds) / (pes * len(folds))
    compute = sum(r * c * t / (pes * util_cycles) for r, c in folds) / len(folds)
    counts = ScaleSimCounts(
        total_cycles=cycles - 1,
        sram_ifmap_reads=ifmap,
        sram_filter_reads=filt,
        sram_ofmap_writes=ofmap,
        dram_ifmap_reads=layer.ifmap_words,
        dram_filter_reads=layer.filter_words,
        dram_ofmap_writes=ofmap_real,
        compute_util_pct=100.0 * compute,
        mapping_eff_pct=100.0 * mapping,
    )
    return SystolicLayerResult(
        engine=ENGINE_SYSTOLIC,
        layer=layer.name,
        layer_index=layer_index,
        dataflow=low.dataflow,
        array=f"{big_r}x{big_c}",
        sr=low.sr,
        sc=low.sc,
        t=t,
        folds=len(folds),
        overlap_folds=overlap,
        runtime_cycles=cycles,
        macs=layer.macs,
        scalesim=counts,
        metrics=(("utilization", layer.macs / (cycles * pes)),),
    )
