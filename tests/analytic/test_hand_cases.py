"""The ten hand-checkable cross-check cases of MAESTRO's reference notes, section (e).

Each test derives its golden numbers by hand in its docstring (notation: an "init" step
is the first, all-Init step and costs compute + ingress delay; every later step costs
max(ingress delay, compute, egress delay); NoC delay d(x) = L + ceil(x/BW) - 1 with the
hardware files' BW 64 and latency L = 1, so d(x) = 1 for 0 < x <= 64). The same numbers
are in MAESTRO's own CSVs (tests/data/maestro-reference/runs/x*.csv), which the replay
test checks field by field; here they are checked against the derivation, in both modes
where the modes differ.
"""

from __future__ import annotations

import pytest

from metronome import analytic
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_hw_file, parse_mapping_file
from metronome.spec.results import LayerResult
from tests.conftest import MAESTRO_REFERENCE

BOTH = pytest.mark.parametrize("compat", [True, False], ids=["maestro", "default"])


def _hw(name: str, lanes: int = 1) -> Hardware:
    return parse_hw_file(MAESTRO_REFERENCE / "hw" / f"{name}.m", simd_lanes=lanes)


def _run(case: str, hardware: Hardware, compat: bool) -> list[LayerResult]:
    network = parse_mapping_file(MAESTRO_REFERENCE / "crosscheck" / f"{case}.m")
    return list(analytic.analyze_network(network, hardware, maestro_compat=compat).layers)


def _one(case: str, hardware: Hardware, compat: bool) -> LayerResult:
    (layer,) = _run(case, hardware, compat)
    return layer


def _l2(layer: LayerResult, tensor: str, counter: str = "l2_reads") -> int:
    return getattr(layer.tensor(tensor), counter)


@BOTH
def test_x01_weight_stationary_k_spatial(compat: bool) -> None:
    """CONV K4 C1 R1 S1 Y1 X8; SpatialMap(1,1) K; TemporalMap(1,1) X on 4 PEs.

    Init: input 1 element (multicast to the 4 PEs) + weights 4 = 5 elements -> d = 1;
    compute 1 MAC -> 2 cycles. 7 more X steps: 1 new input, 4 outputs out, compute 1
    -> max(1, 1, 1) = 1 each. Runtime 2 + 7 = 9. MACs 4 x 8 = 32; input L2 reads 8;
    weight L2 reads 4; output L2 writes 32 (4 per step) and reads K*X' = 32.
    L2 size 2*(1 + 4 + 4) = 18; L1 size per PE 2*(1+1+1) = 6. Peak BW max(5, 4)/1 = 5;
    average (5 + 7*4)/8 = 4.125. Off-chip (2+8)/1/2 = 5. CSV energy
    0.00023 * (18.61*(8+8+4+4+32) + 1.68*140) = 0.293793 nJ.
    """
    layer = _one("x01_ws_kspatial", _hw("xc_pe4_bw64"), compat)
    assert (layer.runtime_cycles, layer.macs) == (9, 32)
    assert (_l2(layer, "input"), _l2(layer, "weight")) == (8, 4)
    assert (_l2(layer, "output", "l2_writes"), _l2(layer, "output")) == (32, 32)
    assert layer.metric("l2_size_req_elems") == 18
    assert layer.metric("l1_size_req_elems") == 6
    assert layer.metric("noc_bw_req_peak_elems_per_cycle") == 5
    assert layer.metric("noc_bw_req_avg_elems_per_cycle") == 4.125
    assert layer.metric("offchip_bw_req_elems_per_cycle") == 5
    assert layer.metric("maestro_csv_energy_nj") == pytest.approx(0.293793, rel=1e-6)


@pytest.mark.parametrize(
    ("hardware", "runtime"),
    [
        (Hardware.maestro_flags(num_pes=4, noc_bw=64), 8),
        (Hardware.maestro_flags(num_pes=4, noc_bw=1), 26),
        (_hw("xc_pe4_bw64_offchip1"), 40),
    ],
    ids=["cli_latency0", "cli_bw1", "offchip1"],
)
def test_x01_variants(hardware: Hardware, runtime: int) -> None:
    """Same layer, other hardware.

    Flags only: NoC latency 0, so d(x) = ceil(x/64) - 1: init 1 + d(5) = 1 + 0, then
    7 x 1 -> 8. NoC BW 1 (latency 0): init 1 + d(5) = 1 + 4 = 5, steady
    max(d(1) = 0, 1, d(4) = 3) = 3 -> 5 + 7*3 = 26. Off-chip BW 1: every step is at
    least (L2req_in + L2req_w)/1/2 = (2+8)/2 = 5 -> 8 x 5 = 40.
    """
    for compat in (True, False):
        assert _one("x01_ws_kspatial", hardware, compat).runtime_cycles == runtime


@BOTH
def test_x04_partial_sums_written_back_every_step(compat: bool) -> None:
    """K1 C4 X4 on 1 PE, C (TemporalMap(1,1)) inside X (TemporalMap(1,1)): 16 steps.

    Init 1 + 1, then 15 x 1 -> 17. MACs 16. Inputs: a new (c, x) element every step ->
    16. Weights: the first step loads w[c0] and each of the 12 C steps the new w[c]; at
    the 3 X steps the weight tensor does not depend on the changing dimension X, so it
    counts as stationary although C wrapped back to c0: 1 + 12 = 13 (no reuse across
    an inner-loop wrap is modelled; exact would be 16 with a 1-element L1). Every step
    writes its partial sum: output L2 writes 16; output size K*X' = 4 -> L2 reads 4.
    """
    layer = _one("x04_psum_writeback", _hw("xc_pe1_bw64"), compat)
    assert (layer.runtime_cycles, layer.macs) == (17, 16)
    assert (_l2(layer, "input"), _l2(layer, "weight")) == (16, 13)
    assert (_l2(layer, "output", "l2_writes"), _l2(layer, "output")) == (16, 4)


@BOTH
def test_x05_spatial_reduction_is_free(compat: bool) -> None:
    """K2 C4 X3: TemporalMap(1,1) K; TemporalMap(1,1) X; SpatialMap(1,1) C on 4 PEs.

    6 steps (k, x). Init: 4 inputs + 4 weights = 8 -> d = 1, compute 1 -> 2; then
    5 x 1 -> 7. MACs 4 x 6 = 24. The 4 PEs' partial sums of one output are reduced for
    free: one output per step -> 6 writes. Inputs: 4 at each step except when K
    advances (the input does not depend on K): 4+4+4 + 0+4+4 = 20. Weights: 4 per K
    value -> 8. Peak BW: init max(8, 1)//1 = 8.
    """
    layer = _one("x05_spatial_reduction", _hw("xc_pe4_bw64"), compat)
    assert (layer.runtime_cycles, layer.macs) == (7, 24)
    assert _l2(layer, "output", "l2_writes") == 6
    assert (_l2(layer, "input"), _l2(layer, "weight")) == (20, 8)
    assert layer.metric("noc_bw_req_peak_elems_per_cycle") == 8


@BOTH
def test_x06_halo_not_shared_in_the_first_step(compat: bool) -> None:
    """K1 C1 R3 Y8, SpatialMap(Sz(R),1) Y on 6 PEs: one step, 6 windows of 3 rows.

    Ingress: each PE its 3 input rows (6*3 = 18, overlap not exploited in the all-Init
    step) + 3 weights multicast = 21 -> d = 1; compute 3 MACs -> 4 cycles. MACs 18,
    input L2 reads 18, output writes 6. L2 size 2*(18 + 3 + 6) = 54; L1 size per PE
    2*(3 + 3 + 3) = 18 (the output tile is counted with the input extent 3).
    """
    layer = _one("x06_halo", _hw("xc_pe6_bw64"), compat)
    assert (layer.runtime_cycles, layer.macs) == (4, 18)
    assert (_l2(layer, "input"), _l2(layer, "output", "l2_writes")) == (18, 6)
    assert layer.metric("l2_size_req_elems") == 54
    assert layer.metric("l1_size_req_elems") == 18


@BOTH
def test_x07_stride1_sliding_window(compat: bool) -> None:
    """K1 C1 R3 Y9, SpatialMap(Sz(R),1) Y on 1 PE: 7 windows, one per step.

    First step 3 + 1 = 4; then 6 x max(1, 3, 1) = 18 -> 22. MACs 7 x 3 = 21. The first
    unit of a SpatialMap pays its full tile at every spatial step: 3 x 7 = 21 inputs.
    """
    layer = _one("x07_stride1", _hw("xc_pe1_bw64"), compat)
    assert (layer.runtime_cycles, layer.macs) == (22, 21)
    assert _l2(layer, "input") == 21


@pytest.mark.parametrize(("compat", "output_reads"), [(True, 7), (False, 4)])
def test_x07_stride2(compat: bool, output_reads: int) -> None:
    """Same with Stride { Y: 2 }: SpatialMap(3,1) Y is rewritten to (3, 2): out =
    (3 + 2 - 3)//2 = 1, size 1*2 + (3-2) = 3, offset 1*2 = 2 -> 4 windows.

    First 3 + 1, then 3 x 3 -> 13; MACs 12; inputs 12; 4 outputs written. The output
    size MAESTRO uses for the output L2 reads ignores the stride: Y-R+1 = 7; the
    default mode counts the 4 outputs the layer has, (9-3)//2 + 1 (deviation D2).
    """
    layer = _one("x07_stride2", _hw("xc_pe1_bw64"), compat)
    assert (layer.runtime_cycles, layer.macs) == (13, 12)
    assert (_l2(layer, "input"), _l2(layer, "output", "l2_writes")) == (12, 4)
    assert _l2(layer, "output") == output_reads


@pytest.mark.parametrize(
    ("compat", "runtime", "macs", "writes"), [(True, 19, 27, 9), (False, 13, 21, 7)]
)
def test_x08_spatial_edge(compat: bool, runtime: int, macs: int, writes: int) -> None:
    """x07_stride1 on 2 PEs: Init (2 PEs, windows 0-1), 2 Steady (windows 2-5), one
    Edge with 1 PE (window 6). Average PEs (2 + 2*2 + 1)/4 = 1.75.

    True: 7 windows x 3 MACs = 21, 7 outputs; runtime 4 + 2*3 + 3 = 13. MAESTRO gives
    the lone edge PE the *input* extent 3 as its output rows (deviation D1): 9 MACs and
    3 outputs at the edge -> 27 MACs, 9 writes, and an edge step of 9 cycles -> 19.
    """
    layer = _one("x08_spatial_edge", _hw("xc_pe2_bw64"), compat)
    assert (layer.runtime_cycles, layer.macs) == (runtime, macs)
    assert _l2(layer, "output", "l2_writes") == writes
    assert layer.metric("avg_active_pes") == 1.75


@pytest.mark.parametrize(("compat", "energy_a"), [(True, 0.342424), (False, 0.453707)])
def test_x09_two_levels(compat: bool, energy_a: float) -> None:
    """K4 C4 X4; top SpatialMap(1,1) K over 8/2 = 4 clusters, Cluster(2,P), inner
    SpatialMap(1,1) C over 2 PEs.

    Sub-level (C tile 4 on 2 PEs): 2 steps, init 1 + 1, then 1 -> 3 cycles. Top: init
    3 + 1, then 3 x max(1, 3, 1) -> 13. MACs 4*4*4 = 64. L2 reads: inputs 16, weights
    16; output writes 16 (one reduced output per cluster and X step). L2 size
    2*(4 + 16 + 4) = 48; innermost L1 2*(1 + 1 + 1) = 6. Two identical layers: MAESTRO's
    CSV energy of the first adds no L1 term (it uses the previous layer's L1 counts,
    deviation D3): 0.342424 nJ, the second 0.453707 nJ; fixed, both 0.453707 nJ.
    """
    first, second = _run("x09_two_level", _hw("xc_pe8_bw64"), compat)
    for layer in (first, second):
        assert (layer.runtime_cycles, layer.macs) == (13, 64)
        assert (_l2(layer, "input"), _l2(layer, "weight")) == (16, 16)
        assert (_l2(layer, "output", "l2_writes"), _l2(layer, "output")) == (16, 16)
        assert layer.metric("l2_size_req_elems") == 48
        assert layer.metric("l1_size_req_elems") == 6
    assert first.metric("maestro_csv_energy_nj") == pytest.approx(energy_a, rel=1e-6)
    assert second.metric("maestro_csv_energy_nj") == pytest.approx(0.453707, rel=1e-6)


@BOTH
@pytest.mark.parametrize(("lanes", "runtime"), [(1, 37), (4, 13)])
def test_x10_simd_lanes(compat: bool, lanes: int, runtime: int) -> None:
    """K2 C1 R3 S3 Y4 X4, SpatialMap(1,1) K on 2 PEs, 3x3 windows: 4 steps of 9 MACs.

    1 lane: init 9 + 1, then 3 x 9 -> 37. 4 lanes: compute ceil(9/4) = 3: 3 + 1, then
    3 x 3 -> 13. MACs 2 x 4 x 9 = 72. Inputs 9 + 3 + 9 + 3 = 24 (a column step reuses 6
    of the 9, a row step reloads all 9: the X loop wrapped); weights 2 x 9 = 18.
    """
    layer = _one("x10_simd", _hw("xc_pe2_bw64", lanes), compat)
    assert (layer.runtime_cycles, layer.macs) == (runtime, 72)
    assert (_l2(layer, "input"), _l2(layer, "weight")) == (24, 18)


@BOTH
def test_x12_gemm(compat: bool) -> None:
    """GEMM M4 N2 K8: SpatialMap(1,1) M; TemporalMap(1,1) N; TemporalMap(8,8) K, 4 PEs.

    Init: A rows 4 x 8 = 32 + B column 8 (multicast) = 40 -> d = 1, compute 8 -> 9.
    N step: 8 new B elements, A stationary, 4 outputs -> max(1, 8, 1) = 8 -> 17.
    MACs 64; A reads 32, B reads 16, output writes 8. Peak BW max(40, 4)//8 = 5, then
    max(8, 4)//8 = 1; average (5 + 1)/2 = 3.
    """
    layer = _one("x12_gemm", _hw("xc_pe4_bw64"), compat)
    assert (layer.runtime_cycles, layer.macs) == (17, 64)
    assert (_l2(layer, "input"), _l2(layer, "weight")) == (32, 16)
    assert _l2(layer, "output", "l2_writes") == 8
    assert layer.metric("noc_bw_req_peak_elems_per_cycle") == 5
    assert layer.metric("noc_bw_req_avg_elems_per_cycle") == 3


@BOTH
def test_x09_nested_fill_overlapped(compat: bool) -> None:
    """x09 with the nested level's fill overlapped (``nested_fill_serialised=False``).

    Sub-level: its first step costs max(d(I) = 1, compute 1, d(E) = 1) = 1 instead of
    1 + 1, then 1 -> 2 cycles. Top (its own fill still serial): init 2 + 1 = 3, then
    3 x max(1, 2, 1) = 6 -> 9, against 13 with MAESTRO's assumption: the 4 top-level
    steps each paid the sub-level's 1-cycle fill. Nothing but time changes.
    """
    network = parse_mapping_file(MAESTRO_REFERENCE / "crosscheck" / "x09_two_level.m")
    hardware = _hw("xc_pe8_bw64")
    entry = network.layers[0]
    serial = analytic.analyze(entry.layer, entry.mapping, hardware, maestro_compat=compat)
    overlapped = analytic.analyze(
        entry.layer,
        entry.mapping,
        hardware,
        maestro_compat=compat,
        assumptions=analytic.Assumptions(nested_fill_serialised=False),
    )
    assert (serial.runtime_cycles, overlapped.runtime_cycles) == (13, 9)
    assert overlapped.macs == serial.macs == 64
    assert overlapped.tensors == serial.tensors


@pytest.mark.parametrize("case", ["x01_ws_kspatial", "x10_simd"])
def test_nested_fill_assumption_changes_nothing_on_one_level(case: str) -> None:
    """With a single cluster level there is no nested fill to overlap."""
    hardware = _hw("xc_pe4_bw64" if case == "x01_ws_kspatial" else "xc_pe2_bw64")
    network = parse_mapping_file(MAESTRO_REFERENCE / "crosscheck" / f"{case}.m")
    entry = network.layers[0]
    overlapped = analytic.Assumptions(nested_fill_serialised=False)
    changed = analytic.analyze(entry.layer, entry.mapping, hardware, assumptions=overlapped)
    assert changed == analytic.analyze(entry.layer, entry.mapping, hardware)


def test_x09_nested_noc_free() -> None:
    """x09 with only the top level's NoC charged (``nested_noc_charged=False``).

    Sub-level: its transfers cost 0, so init 1 + 0 = 1, then max(0, 1, 0) = 1 -> 2
    cycles. Top: init 2 + d(I) = 1 -> 3, then 3 x max(1, 2, 1) = 6 -> 9, against 13
    when the sub-level's 1-cycle deliveries are charged too. Traffic is unchanged.
    """
    network = parse_mapping_file(MAESTRO_REFERENCE / "crosscheck" / "x09_two_level.m")
    hardware = _hw("xc_pe8_bw64")
    entry = network.layers[0]
    charged = analytic.analyze(entry.layer, entry.mapping, hardware)
    free = analytic.analyze(
        entry.layer,
        entry.mapping,
        hardware,
        assumptions=analytic.Assumptions(nested_noc_charged=False),
    )
    assert (charged.runtime_cycles, free.runtime_cycles) == (13, 9)
    assert free.tensors == charged.tensors
