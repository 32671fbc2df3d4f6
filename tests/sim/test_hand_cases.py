"""Tiny cases with every count derived by hand (cross-check hardware: bus 64 elements/cycle,
latency 1, off-chip 1000 elements/cycle with no latency, so any fetch takes 1 cycle)."""

from __future__ import annotations

import numpy as np
import pytest

from metronome.sim import MAESTRO, REALISTIC, SimOptions, simulate
from metronome.sim.functional import check_inputs, reference_output
from metronome.spec.layer import LayerType, make_layer
from metronome.spec.mapping import MapDirective, Mapping

from .helpers import case, random_values, xc_hw


def _run(name: str, pes: int, policy=REALISTIC, layer: int = 0, **hw):
    lay, mapping = case(name, layer)
    return simulate(lay, mapping, xc_hw(pes, **hw), SimOptions(policy=policy)).layer


def test_one_pe_maestro_writes_psums_every_step() -> None:
    # K1 C4 X4, X outer, C inner, 1 PE: 16 steps of 1 MAC. Input (c,x) and weight c change
    # every step: 16 L1 writes each. The output x leaves every step: 16 L2 writes, of
    # which 12 find a partial sum already there (read-modify-write). Timing: step t is
    # fetched in [t, t+1), distributed in [t+1, t+2), computed in [t+2, t+3), drained in
    # [t+3, t+4): the last drain ends at 19; the 4 outputs then go off-chip in one
    # cycle (1000 elements/cycle): 20.
    r = _run("x04_psum_writeback", 1, MAESTRO)
    assert r.runtime_cycles == 20
    assert r.macs == 16
    assert r.tensor("input").to_dict() == {
        "l1_reads": 16,
        "l1_writes": 16,
        "l2_reads": 16,
        "l2_writes": 16,
    }
    assert r.tensor("weight").to_dict() == {
        "l1_reads": 16,
        "l1_writes": 16,
        "l2_reads": 16,
        "l2_writes": 4,
    }
    assert r.tensor("output").to_dict() == {
        "l1_reads": 16,
        "l1_writes": 16,
        "l2_reads": 12,
        "l2_writes": 16,
    }


def test_one_pe_realistic_keeps_weights_and_accumulates() -> None:
    # Same layer: the 4 weights stay in L1 after the first X iteration (4 L1 writes), and
    # the output x accumulates over C, leaving once per x (4 L2 writes, no RMW). Inputs
    # still arrive every step, so the timing is unchanged: 20.
    r = _run("x04_psum_writeback", 1, REALISTIC)
    assert r.runtime_cycles == 20
    assert r.tensor("weight").l1_writes == 4
    assert r.tensor("weight").l2_reads == 4
    assert r.tensor("output").l2_writes == 4
    assert r.tensor("output").l2_reads == 0


@pytest.mark.parametrize("policy", [MAESTRO, REALISTIC])
def test_multicast_serves_every_pe_with_one_l2_read(policy) -> None:
    # K4 X8, SpatialMap K over 4 PEs: 8 steps; each step the same input element goes to 4
    # PEs (1 L2 read, 4 L1 writes); each PE keeps its weight (4 reads in total); 4 outputs
    # leave every step. Step t: fetch [t,t+1), bus [t+1,t+2), MAC [t+2,t+3), drain
    # [t+3,t+4): 7 + 4 = 11, then the 32 outputs go off-chip in one cycle: 12.
    r = _run("x01_ws_kspatial", 4, policy)
    assert r.runtime_cycles == 12
    assert r.tensor("input").l2_reads == 8
    assert r.tensor("input").l1_writes == 32
    assert r.tensor("weight").l2_reads == 4
    assert r.tensor("output").l2_writes == 32
    assert r.metric("pe_steps") == 32


def test_without_multicast_every_pe_costs_an_l2_read() -> None:
    r = _run("x01_ws_kspatial", 4, MAESTRO, multicast=False)
    assert r.tensor("input").l2_reads == 32


def test_two_pes_with_multicast_halve_the_steps() -> None:
    # On 2 PEs K is folded: 2 folds x 8 X steps = 16 steps; input read once per step (16).
    r = _run("x01_ws_kspatial", 2, MAESTRO)
    assert r.metric("steps") == 16
    assert r.tensor("input").l2_reads == 16
    assert r.tensor("input").l1_writes == 32


def test_spatial_edge_leaves_one_pe_idle() -> None:
    # Y=9 R=3 -> Y'=7 output rows over 2 PEs: 4 folds, the last with one PE: 7 PE-steps of
    # 3 MACs = 21 MACs, none repeated or missed.
    r = _run("x08_spatial_edge", 2, MAESTRO)
    assert r.metric("steps") == 4
    assert r.metric("pe_steps") == 7
    assert r.macs == 21
    assert r.metric("macs_redundant") == 0
    assert r.metric("macs_missing") == 0


def test_sliding_window_halo_is_multicast() -> None:
    # 6 PEs hold rows [u, u+3) of Y=8: 18 L1 writes but only 8 distinct rows read from L2;
    # the 3 weights go to all 6 PEs (3 L2 reads, 18 L1 writes); 6 outputs.
    r = _run("x06_halo", 6, MAESTRO)
    assert r.tensor("input").l1_writes == 18
    assert r.tensor("input").l2_reads == 8
    assert r.tensor("weight").l2_reads == 3
    assert r.tensor("weight").l1_writes == 18
    assert r.tensor("output").l2_writes == 6


def test_stride_two_rewrites_the_window_directive() -> None:
    # Stride 2: SpatialMap(3,1) Y becomes (3,2): tiles [0,3) [2,5) [4,7) [6,9) on one PE,
    # new rows 3+2+2+2 = 9 (L1 keeps the overlapping row), 4 outputs of 3 MACs.
    r = _run("x07_stride2", 1, MAESTRO)
    assert r.metric("steps") == 4
    assert r.macs == 12
    assert r.tensor("input").l1_writes == 9
    assert r.tensor("output").l2_writes == 4


def test_two_level_cluster_covers_each_mac_once() -> None:
    # K4 C4 X4 on 4 clusters x 2 PEs: top K spatial, inner C spatial (2 folds) x X.
    r = _run("x09_two_level", 8, REALISTIC)
    assert r.macs == 64
    assert r.metric("macs_unique") == 64
    assert r.metric("steps") == 8
    # Top X (4 steps) outside the inner C folds (2 steps): a PE's output (k, x) stays
    # across both folds, so each of the 8 PEs sends one partial sum per top step (32 on
    # the bus), the two PEs of a cluster are added at L2: 16 distinct outputs, no RMW.
    assert r.metric("noc_up_elems") == 32
    assert r.tensor("output").l2_writes == 16
    assert r.tensor("output").l2_reads == 0


def test_gemm_rows_stay_columns_stream() -> None:
    # M4 N2 K8, SpatialMap M over 4 PEs: each PE keeps its row of A (8 elements, 32 in
    # all); each N step multicasts a column of B (8 elements, 16 in all); 8 outputs.
    r = _run("x12_gemm", 4, REALISTIC)
    assert r.tensor("input").l2_reads == 32
    assert r.tensor("weight").l2_reads == 16
    assert r.tensor("weight").l1_writes == 64
    assert r.tensor("output").l2_writes == 8
    assert r.macs == 64


def test_dsconv_mapped_k_repeats_work_but_is_not_accumulated_twice() -> None:
    # DSCONV C2 R3 Y5 (K2 declared): K indexes no tensor, so mapping it repeats every MAC.
    layer = make_layer(
        name="dw", type_=LayerType.DSCONV, declared={"K": 2, "C": 2, "R": 3, "S": 1, "Y": 5, "X": 1}
    )
    mapping = Mapping(
        (
            MapDirective(True, "C", 1, 1),
            MapDirective(False, "K", 1, 1),
            MapDirective(False, "Y", 3, 1),
            MapDirective(False, "R", 3, 3),
        )
    )
    values = random_values(layer)
    r = simulate(layer, mapping, xc_hw(2), values=values)
    assert layer.macs == 2 * 3 * 3
    assert r.layer.macs == 36
    assert r.layer.metric("macs_redundant") == 18
    assert r.layer.metric("macs_missing") == 0
    ref = reference_output(layer, *check_inputs(layer, values)[:2])
    assert np.array_equal(r.output, ref)


def test_incomplete_mapping_is_reported_loudly() -> None:
    # TemporalMap(1,1) Y with R=3: no 1-row window holds a whole filter: nothing computed.
    layer = make_layer(
        name="c", type_=LayerType.CONV, declared={"K": 1, "C": 1, "R": 3, "S": 1, "Y": 4, "X": 1}
    )
    mapping = Mapping((MapDirective(True, "K", 1, 1), MapDirective(False, "Y", 1, 1)))
    r = simulate(layer, mapping, xc_hw(1)).layer
    assert r.metric("macs_missing") == layer.macs
    assert any(n.startswith("INCOMPLETE MAPPING") for n in r.notes)


def test_simd_lanes_divide_compute() -> None:
    # 3x3 windows, 9 MACs per PE-step: 1 lane computes 9 cycles, 4 lanes ceil(9/4) = 3.
    one = _run("x10_simd", 2, MAESTRO)
    four = _run("x10_simd", 2, MAESTRO, simd_lanes=4)
    assert one.metric("pe_compute_cycles_total") == 2 * 4 * 9
    assert four.metric("pe_compute_cycles_total") == 2 * 4 * 3
