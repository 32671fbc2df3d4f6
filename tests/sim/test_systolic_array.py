"""The executed systolic array: hand-derived fold timings, hazards, the exactness of
executing each distinct fold once and of fast-forwarding steady stretches, the earliest
overlapped issue, and agreement with the independently derived closed form."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metronome.analytic.systolic import analyze_systolic
from metronome.sim.systolic import (
    FoldShape,
    Hazard,
    execute_folds,
    execute_layer,
    schedule_layer,
    simulate_systolic,
)
from metronome.spec.scalesim import ScaleSimConfig, ScaleSimLayer, lower


def _config(rows: int, cols: int, dataflow: str) -> ScaleSimConfig:
    return ScaleSimConfig(
        path="test.cfg",
        run_name="t",
        array_rows=rows,
        array_cols=cols,
        dataflow=dataflow,
        ifmap_sram_kb=64,
        filter_sram_kb=64,
        ofmap_sram_kb=64,
        ifmap_offset=0,
        filter_offset=10_000_000,
        ofmap_offset=20_000_000,
        bandwidth_words_per_cycle=(10,),
        interface_bandwidth="CALC",
    )


def test_os_fold_on_a_4x3_array_by_hand() -> None:
    # A 4x3 array, T = 5. Word t of row i enters at cycle t + i, word t of column j at
    # t + j; they meet in PE(i, j) at cycle t + i + j. The last MAC is PE(3, 2)'s t = 4
    # at cycle 4 + 3 + 2 = 9, so the fold runs cycles 0..9: 10 = T + R + C - 2.
    run = execute_folds(4, 3, False, [FoldShape(4, 3, 5)], [0])
    assert run.cycles == 10
    assert run.macs == 4 * 3 * 5
    # Each used row takes T words from the left, each used column T from the top.
    assert (run.left_reads, run.top_reads, run.out_writes) == (4 * 5, 3 * 5, 12)


def test_ws_fold_on_a_4x3_array_by_hand() -> None:
    # Weights: column j takes its 4 words at cycles j..j+3 and latches them at the end of
    # cycle j + 3. Streaming word t enters row i at a + t + i and reaches PE(i, j) at
    # a + t + i + j, which must come after the latch (cycle j + 3): a >= 4 = R.
    # The last partial sum (t = 6) leaves PE(3, 2) at 4 + 6 + 3 + 2 = 15: 16 cycles,
    # = 2R + C + T - 2 = 8 + 3 + 7 - 2.
    shape = FoldShape(4, 3, 7)
    with pytest.raises(Hazard, match="before its stationary word"):
        execute_folds(4, 3, True, [shape], [3], [0])
    run = execute_folds(4, 3, True, [shape], [4], [0])
    assert run.cycles == 16
    assert (run.left_reads, run.top_reads, run.out_writes) == (4 * 7, 4 * 3, 3 * 7)


def test_a_partly_used_fold_still_crosses_the_whole_array() -> None:
    # SCALE-Sim pads unused rows/columns with null requests: same 10 cycles as the full
    # 4x3 fold above, but only 2 x 1 PEs do MACs.
    run = execute_folds(4, 3, False, [FoldShape(2, 1, 5)], [0])
    assert run.cycles == 10
    assert run.macs == 2 * 1 * 5
    assert run.pes_used == (2,)


def test_port_and_register_hazards() -> None:
    shape = FoldShape(3, 3, 4)
    # A second OS fold issued while the first still feeds row 0 shares its port.
    with pytest.raises(Hazard, match="port carries two words"):
        execute_folds(3, 3, False, [shape, shape], [0, 3])
    # Issued at T = 4 the ports are free, but both folds' outputs on a 3-row column bus
    # collide until the offset reaches 3 rows... and T = 4 >= 3, so 4 is fine.
    execute_folds(3, 3, False, [shape, shape], [0, 4])
    short = FoldShape(3, 3, 1)
    with pytest.raises(Hazard, match="column bus"):
        execute_folds(3, 3, False, [short, short], [0, 1])
    # A second stationary load whose words latch (column j at cycle 3 + j + 2) while the
    # shadow registers still hold the first fold's, which only swap in when its stream
    # arrives (from cycle 10).
    with pytest.raises(Hazard, match="shadow registers"):
        execute_folds(3, 3, True, [shape, shape], [10, 30], [0, 3])
    # Streamed from cycle 3, the first fold swaps column j's last PE at 3 + 2 + j, the
    # same cycle the second fold latches there: allowed (read, then write).
    execute_folds(3, 3, True, [shape, shape], [3, 7], [0, 3])


def _layers() -> list[tuple[int, int, str, ScaleSimLayer]]:
    tiny = ScaleSimLayer("tiny", 10, 10, 3, 3, 2, 4, 1)
    gemm = ScaleSimLayer("gemm", 20, 9, 1, 9, 1, 11, 1)
    strided = ScaleSimLayer("s2", 9, 9, 3, 3, 2, 5, 2)
    return [
        (r, c, df, layer)
        for layer in (tiny, gemm, strided)
        for df in ("os", "ws", "is")
        for r, c in ((4, 4), (8, 3), (3, 8))
    ]


@pytest.mark.slow
@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize(("rows", "cols", "dataflow", "layer"), _layers())
def test_one_execution_per_distinct_fold_equals_the_whole_layer(
    rows: int, cols: int, dataflow: str, layer: ScaleSimLayer, overlap: bool
) -> None:
    low = lower(layer, _config(rows, cols, dataflow))
    shapes = [FoldShape(r, c, low.t) for r, c in low.fold_extents()]
    stationary = dataflow != "os"
    once = execute_layer(rows, cols, stationary, shapes, overlap=overlap)
    whole = execute_layer(rows, cols, stationary, shapes, overlap=overlap, whole=True)
    # Overlapped, a fold's span from its first load to its last output is longer than
    # alone (it loads early and waits); everything else must be equal.
    spans = {"fold_cycles": ()} if overlap else {}
    assert dataclasses.replace(once, executed_cycles=0, **spans) == dataclasses.replace(
        whole, executed_cycles=0, **spans
    )
    assert once.macs == layer.macs


@pytest.mark.slow
@pytest.mark.parametrize(("rows", "cols", "dataflow", "layer"), _layers()[:9])
def test_every_overlapped_issue_is_the_earliest(
    rows: int, cols: int, dataflow: str, layer: ScaleSimLayer
) -> None:
    """Issuing any one fold a cycle earlier (its load or its stream) meets a hazard when
    the whole layer is executed: the schedule is the greedy earliest one."""
    low = lower(layer, _config(rows, cols, dataflow))
    # The first 8 folds: a greedy schedule's prefix is the prefix's schedule.
    shapes = [FoldShape(r, c, low.t) for r, c in low.fold_extents()][:8]
    stationary = dataflow != "os"
    plan = schedule_layer(rows, cols, stationary, shapes, overlap=True)
    for index in range(1, len(shapes)):
        stream, load = list(plan.stream), list(plan.load)
        if stationary:
            early_load = list(load)
            early_load[index] -= 1
            with pytest.raises(Hazard):
                execute_folds(rows, cols, True, shapes, stream, early_load)
        stream[index] -= 1
        with pytest.raises(Hazard):
            execute_folds(rows, cols, stationary, shapes, stream, load if stationary else [])


@pytest.mark.parametrize(
    ("stationary", "shape", "stream", "load"),
    [
        (False, FoldShape(5, 4, 40), [0], []),
        (False, FoldShape(2, 4, 3), [0], []),
        (True, FoldShape(5, 3, 40), [5], [0]),
        (True, FoldShape(1, 2, 17), [5], [0]),
    ],
)
def test_fast_forward_changes_nothing_but_the_work(
    stationary: bool, shape: FoldShape, stream: list[int], load: list[int]
) -> None:
    fast = execute_folds(
        5,
        4,
        stationary,
        [shape, shape],
        [stream[0], stream[0] + 60],
        ([load[0], load[0] + 60] if stationary else []),
    )
    slow = execute_folds(
        5,
        4,
        stationary,
        [shape, shape],
        [stream[0], stream[0] + 60],
        [load[0], load[0] + 60] if stationary else [],
        fast_forward=False,
    )
    assert dataclasses.replace(fast, executed_cycles=0) == dataclasses.replace(
        slow, executed_cycles=0
    )
    assert slow.executed_cycles == slow.cycles
    if shape.t > 20:
        assert fast.executed_cycles < slow.executed_cycles


@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    dataflow=st.sampled_from(["os", "ws", "is"]),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    r=st.integers(1, 3),
    s=st.integers(1, 3),
    c=st.integers(1, 3),
    k=st.integers(1, 9),
    stride=st.integers(1, 3),
    overlap=st.booleans(),
)
def test_closed_form_equals_execution(
    rows: int,
    cols: int,
    dataflow: str,
    h: int,
    w: int,
    r: int,
    s: int,
    c: int,
    k: int,
    stride: int,
    overlap: bool,
) -> None:
    layer = ScaleSimLayer("x", max(h, r), max(w, s), r, s, c, k, stride)
    config = _config(rows, cols, dataflow)
    sim = simulate_systolic(layer, config, overlap=overlap)
    ana = analyze_systolic(layer, config, overlap=overlap)
    assert sim.runtime_cycles == ana.runtime_cycles
    assert sim.macs == ana.macs == layer.macs
    assert sim.scalesim.to_dict() == pytest.approx(ana.scalesim.to_dict(), rel=1e-12)
    serial = analyze_systolic(layer, config).runtime_cycles
    assert sim.runtime_cycles <= serial
