"""Every deliberate deviation of the default mode from MAESTRO: its value, ours, why.

Each test switches exactly one quirk off (MAESTRO with that bug fixed) and shows the
MAESTRO value (golden: MAESTRO's reference CSVs where the case was run, otherwise the
hand derivation in the docstring), the fixed value and the reason. The list itself
lives in ``metronome.analytic.deviations.DEVIATIONS`` and ``docs/maestro-deviations.md``.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from metronome import analytic
from metronome.analytic.api import run_problem
from metronome.analytic.deviations import COMPAT, DEVIATIONS, FIXED, Quirks
from metronome.analytic.engine import LevelResult
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_hw_file, parse_mapping_file, parse_mapping_text
from tests.conftest import MAESTRO_INPUTS, MAESTRO_REFERENCE, REPO


def _hw(name: str) -> Hardware:
    return parse_hw_file(MAESTRO_REFERENCE / "hw" / f"{name}.m")


def _both(text: str, hardware: Hardware, flag: str) -> tuple[LevelResult, LevelResult]:
    """(MAESTRO, MAESTRO with only ``flag`` fixed) for the first layer of ``text``."""
    entry = parse_mapping_text(text).layers[0]
    _, maestro = run_problem(entry.layer, entry.require_mapping(), hardware, COMPAT)
    fixed = replace(COMPAT, **{flag: False})
    _, ours = run_problem(entry.layer, entry.require_mapping(), hardware, fixed)
    return maestro, ours


def _crosscheck(name: str) -> str:
    return (MAESTRO_REFERENCE / "crosscheck" / f"{name}.m").read_text()


def test_d1_spatial_edge_mac_overcount() -> None:
    """x08: Y=9, R=3, SpatialMap(3,1) Y on 2 PEs (reference CSV x08_spatial_edge__pe2:
    27 MACs, 9 output writes). The lone unit at the spatial edge holds rows 6..8, one
    window: 3 MACs and 1 output; MAESTRO counts its *input* extent (3 rows) as output
    rows: 9 MACs, 3 outputs. Fixed: 7 windows x 3 = 21 MACs, 7 outputs."""
    maestro, ours = _both(_crosscheck("x08_spatial_edge"), _hw("xc_pe2_bw64"), DEVIATIONS[0].flag)
    assert (maestro.macs, maestro.l2_writes[2]) == (27, 9)
    assert (ours.macs, ours.l2_writes[2]) == (21, 7)


def test_d2_output_size_uses_stride() -> None:
    """x07 stride 2 (reference CSV: output L2 reads 7). Y=9, R=3, stride 2 has
    (9-3)//2 + 1 = 4 outputs, and 4 are written; MAESTRO's output size Y-R+1 = 7."""
    maestro, ours = _both(_crosscheck("x07_stride2"), _hw("xc_pe1_bw64"), DEVIATIONS[1].flag)
    assert (maestro.l2_reads[2], maestro.l2_writes[2]) == (7, 4)
    assert (ours.l2_reads[2], ours.l2_writes[2]) == (4, 4)


def test_d2_declared_output_size_keeps_stride() -> None:
    """A layer declaring Y' (not Y) with stride 2: MAESTRO derives Y = Y' + R - 1 and
    drops the stride (a 6-row input, read with stride 1); the spec derives
    Y = (Y'-1)*2 + R = 9 and the fixed model keeps the stride. Both walk 4 windows of 3
    MACs, but the input MAESTRO fills into L2 has 6 rows instead of 9."""
    text = (
        "Network n { Layer L { Type: CONV Stride { Y: 2 }"
        " Dimensions { K: 1, C: 1, R: 3, S: 1, Y': 4, X': 1 }"
        " Dataflow { SpatialMap(3,1) Y; TemporalMap(1,1) X; } } }"
    )
    maestro, ours = _both(text, _hw("xc_pe1_bw64"), DEVIATIONS[1].flag)
    assert (maestro.macs, maestro.runtime, maestro.l2_writes[0]) == (12, 13, 6)
    assert (ours.macs, ours.runtime, ours.l2_writes[0]) == (12, 13, 9)


def test_d3_energy_of_multilevel_layers() -> None:
    """x09: two identical Cluster layers; reference CSV energies 0.342424 and 0.453707
    nJ. 0.453707 = 0.00023 x (18.61 x 80 + 1.68 x 288): L2 in/w reads+writes 64 and
    output writes 16, L1 counts 288. The first layer's 0.342424 misses the L1 term (it
    takes the previous layer's L1 counts, none for the first layer)."""
    network = parse_mapping_file(MAESTRO_REFERENCE / "crosscheck" / "x09_two_level.m")
    hardware = _hw("xc_pe8_bw64")
    maestro = analytic.analyze_network(network, hardware, maestro_compat=True).layers
    ours = analytic.analyze_network(network, hardware).layers
    assert [round(r.metric("maestro_csv_energy_nj"), 6) for r in maestro] == [0.342424, 0.453707]
    assert [round(r.metric("maestro_csv_energy_nj"), 6) for r in ours] == [0.453707] * 2
    assert pytest.approx(0.453707, abs=5e-7) == 0.00023 * (18.61 * 80 + 1.68 * 288)


def test_d4_offchip_requirement_halved_once() -> None:
    """x08 (MAESTRO: off-chip requirement 1). L2 requirements: input 12, weight 6,
    output 4 -> 18 in. Cases: init compute 3 -> 18//3 = 6, steady compute 3 -> 6, edge
    compute 9 -> 2. MAESTRO: req = max(req, v)//2 per case: 3, 3, 1. Fixed: the largest
    per-case requirement halved once (double buffering): 6//2 = 3."""
    maestro, ours = _both(_crosscheck("x08_spatial_edge"), _hw("xc_pe2_bw64"), DEVIATIONS[3].flag)
    assert maestro.l2_size_req == ours.l2_size_req == (12, 6, 4)
    assert (maestro.offchip_req, ours.offchip_req) == (1, 3)


def test_d5_ngconv_reduces_over_c() -> None:
    """NGCONV G2 K2 C2 (1x1, X2): MAESTRO indexes the output by G, K, C, Y', X', so its
    output size is 2*2*2*1*2 = 16; a grouped convolution reduces over the C input
    channels of its group: 2*2*1*2 = 8 outputs. MACs are the same (16)."""
    text = (
        "Network n { Layer L { Type: NGCONV Dimensions { G: 2, K: 2, C: 2, R: 1, S: 1,"
        " Y: 1, X: 2 } Dataflow { SpatialMap(1,1) K; TemporalMap(1,1) G;"
        " TemporalMap(1,1) C; TemporalMap(1,1) X; } } }"
    )
    maestro, ours = _both(text, _hw("xc_pe4_bw64"), DEVIATIONS[4].flag)
    assert (maestro.macs, maestro.l2_reads[2]) == (16, 16)
    assert (ours.macs, ours.l2_reads[2]) == (16, 8)


def test_d6_arithmetic_intensity_whole_layer() -> None:
    """x01 (reference CSV: arithmetic intensity 4): the last case enumerated is a steady
    X step with 4 MACs and 1 new input. Over the layer: 32 MACs / (8 input + 4 weight
    L2 reads) = 2.667."""
    maestro, ours = _both(_crosscheck("x01_ws_kspatial"), _hw("xc_pe4_bw64"), DEVIATIONS[5].flag)
    assert maestro.arithmetic_intensity == 4
    assert ours.arithmetic_intensity == pytest.approx(32 / 12)


def test_d7_temporal_edge_ingress() -> None:
    """K1 C96 X2 on 1 PE, TemporalMap(64,64) C inside TemporalMap(1,1) X: the C loop has
    a 64-channel step and a 32-channel edge step. MAESTRO fetches 64 inputs at the edge
    too: 64 + 64 + 64 + 64 = 256 input reads; the edge has 32: 192 (= 96 x 2)."""
    text = (
        "Network n { Layer L { Type: CONV Dimensions { K: 1, C: 96, R: 1, S: 1, Y: 1,"
        " X: 2 } Dataflow { SpatialMap(1,1) K; TemporalMap(1,1) X; TemporalMap(64,64) C; } } }"
    )
    maestro, ours = _both(text, _hw("xc_pe1_bw64"), DEVIATIONS[6].flag)
    assert (maestro.l2_reads[0], ours.l2_reads[0]) == (256, 192)
    assert maestro.macs == ours.macs == 192


def test_d8_oversized_tile() -> None:
    """TemporalMap(4,1) X over X=3 with S=3: MAESTRO cuts the too-large tile to
    N - offset = 2 columns, 2 - 3 + 1 = 0 output columns, skips every case: 0 cycles,
    0 MACs (ResNeXt50_yxp_os FC1000 in the reference CSVs). Clipped to the 3 columns
    that exist: 1 output column, K2 x 3x3 = 18 MACs."""
    text = (
        "Network n { Layer L { Type: CONV Dimensions { K: 2, C: 1, R: 3, S: 3, Y: 3, X: 3 }"
        " Dataflow { SpatialMap(1,1) K; TemporalMap(3,1) Y; TemporalMap(4,1) X;"
        " TemporalMap(3,3) R; TemporalMap(3,3) S; } } }"
    )
    maestro, ours = _both(text, _hw("xc_pe4_bw64"), DEVIATIONS[7].flag)
    assert (maestro.runtime, maestro.macs, maestro.occurrences) == (0, 0, 0)
    assert ours.macs == 18
    # One step (every directive has a single tile or spatial position on 4 PEs), so its
    # cost is ingress + compute (docs/maestro-deviations.md: the first step). Ingress:
    # the 3x3 input window and the 2 units' 3x3 weights, 9 + 18 = 27 elements, delay
    # L + ceil(27/64) - 1 = 1 + 1 - 1 = 1; compute: one output column's 3x3 window,
    # 9 MACs at 1 per cycle.
    assert (ours.ingress.max, ours.compute.max) == (1, 9)
    assert ours.runtime == 1 + 9


def test_d8_resnext_fc1000_in_both_modes() -> None:
    """The reference case itself: FC1000 of ResNeXt50_yxp_os on accelerator_1."""
    network = parse_mapping_file(MAESTRO_INPUTS / "data" / "mapping" / "ResNeXt50_yxp_os.m")
    network = network.select(["FC1000"])
    hardware = parse_hw_file(MAESTRO_INPUTS / "data" / "hw" / "accelerator_1.m")
    (maestro,) = analytic.analyze_network(network, hardware, maestro_compat=True).layers
    (ours,) = analytic.analyze_network(network, hardware).layers
    assert (maestro.runtime_cycles, maestro.macs) == (0, 0)
    assert "undefined: throughput_macs_per_cycle = -nan" in maestro.notes
    assert ours.macs == 2048 * 1000 * 7 * 7
    # One output pixel (Y' = X' = 1): every MAC is in the one PE whose tile holds the
    # whole 7x7 window, at each of the K x C temporal steps, 1 MAC per cycle.
    assert ours.runtime_cycles >= 2048 * 1000 * 7 * 7
    assert not ours.notes


def test_d9_init_edge_last_unit() -> None:
    """K2 on 4 PEs (SpatialMap(1,1) K), X8 temporal: K needs 2 of the 4 PEs (an
    init-edge). MAESTRO marks the 2nd PE as partly filled, whose K extent at the edge is
    then unique_edge(K) = 0: 1 output written per step, 8 in all. Both PEs hold a full
    output: 2 per step, 16 = K x X' (as many as the layer has outputs)."""
    text = (
        "Network n { Layer L { Type: CONV Dimensions { K: 2, C: 1, R: 1, S: 1, Y: 1, X: 8 }"
        " Dataflow { SpatialMap(1,1) K; TemporalMap(1,1) X; } } }"
    )
    maestro, ours = _both(text, _hw("xc_pe4_bw64"), DEVIATIONS[8].flag)
    assert (maestro.l2_writes[2], ours.l2_writes[2]) == (8, 16)
    assert maestro.macs == ours.macs == 16


def test_d10_int32_overflow() -> None:
    """GEMM M=N=65536, K=1, one (m, n) pair per step on 1 PE: 2**32 steps, of which the
    (Steady M, Steady N) case alone occurs 65535**2 = 4,294,836,225 times. In a C int
    that wraps to -131,071 and the occurrences of all cases add up to 0: MAESTRO's
    totals are garbage (0 MACs). Counted exactly: 2**32 MACs and steps."""
    text = (
        "Network n { Layer L { Type: GEMM Dimensions { M: 65536, N: 65536, K: 1 }"
        " Dataflow { TemporalMap(1,1) M; TemporalMap(1,1) N; SpatialMap(1,1) K; } } }"
    )
    hardware = Hardware.maestro_hw_file(num_pes=1, noc_bw_cstr=64)
    maestro, ours = _both(text, hardware, DEVIATIONS[9].flag)
    assert (maestro.occurrences, maestro.macs) == (0, 0)
    assert (ours.occurrences, ours.macs) == (2**32, 2**32)
    assert ours.runtime == 2**32 + 1


def test_d11_steps_past_the_end() -> None:
    """X=8, S=1, stride 3: outputs at columns 0, 3 and 6. TemporalMap(1,1) X' becomes
    (1, 3): steps at 0, 3, 6, and since 6 + 1 < 8 MAESTRO adds an edge step at column 9,
    past the end; its size N - 9 < 0 is replaced by N = 8, an 8-column tile: 3 + 8 = 11
    MACs in 4 steps. Without the phantom step: 3 MACs in 3 steps."""
    text = (
        "Network n { Layer L { Type: CONV Stride { X: 3 } Dimensions { K: 1, C: 1, R: 1,"
        " S: 1, Y: 1, X: 8 } Dataflow { SpatialMap(1,1) K; TemporalMap(1,1) X'; } } }"
    )
    maestro, ours = _both(text, _hw("xc_pe1_bw64"), DEVIATIONS[10].flag)
    assert (maestro.macs, maestro.occurrences) == (11, 4)
    assert (ours.macs, ours.occurrences) == (3, 3)


def test_d11_narrow_partial_unit_counts_no_output() -> None:
    """X=4, S=3, stride 3: one window (columns 0-2). SpatialMap(1,1) X' becomes (3, 3)
    on 2 PEs; the 2nd PE gets column 3 alone, narrower than the filter: MAESTRO counts
    1 - 3 + 1 = -1 output columns there, which cancels the 1st PE's 3 MACs (0 MACs).
    Fixed: the 2nd PE has no window, the layer 3 MACs."""
    text = (
        "Network n { Layer L { Type: CONV Stride { X: 3 } Dimensions { K: 1, C: 1, R: 1,"
        " S: 3, Y: 1, X: 4 } Dataflow { SpatialMap(1,1) X'; TemporalMap(Sz(S),Sz(S)) S; } } }"
    )
    maestro, ours = _both(text, _hw("xc_pe2_bw64"), DEVIATIONS[10].flag)
    assert maestro.macs == 0
    assert ours.macs == 3


def test_d12_partial_unit_at_spatial_edge() -> None:
    """K=7, SpatialMap(2,2) K on 2 PEs, X=2: first step K0-3 on both PEs, edge step
    K4-5 on one PE and K6 on the other. MAESTRO counts only the partial unit at the edge
    (K6): 4 + 1 = 5 channels per X step, 10 MACs and 10 output writes. Fixed: 7
    channels, 14 MACs, 14 writes."""
    text = (
        "Network n { Layer L { Type: CONV Dimensions { K: 7, C: 1, R: 1, S: 1, Y: 1, X: 2 }"
        " Dataflow { SpatialMap(2,2) K; TemporalMap(1,1) X; } } }"
    )
    maestro, ours = _both(text, _hw("xc_pe2_bw64"), DEVIATIONS[11].flag)
    assert (maestro.macs, maestro.l2_writes[2]) == (10, 10)
    assert (ours.macs, ours.l2_writes[2]) == (14, 14)
    assert ours.l2_reads[1] == 7


def test_d13_strided_tile_holds_fewer_windows() -> None:
    """K2 C1 R3 S1 Y9 X1, stride 2 on Y (Y' = (9-3)//2+1 = 4), SpatialMap(1,1) K on
    2 PEs, TemporalMap(5,4) Y: tiles rows 0-4 and 4-8, each holding the windows at rows
    0, 2 (then 4, 6): 2 windows of 3 MACs per PE and step. Two steps: 2 x 2 x 2 x 3 = 24
    MACs and 2 x 2 x 2 = 8 output writes. MAESTRO counts 5 - 3 + 1 = 3 windows per
    tile: 36 MACs and 12 writes. Runtime (fixed): init 6 + d(5 + 6) = 7, then
    max(d(4), 6, d(4)) = 6 -> 13; MAESTRO computes 9 per step: 10 + 9 = 19. Input reads
    5 + 4 = 9 in both."""
    text = (
        "Network n { Layer L { Type: CONV Stride { Y: 2 } Dimensions { K: 2, C: 1, R: 3,"
        " S: 1, Y: 9, X: 1 } Dataflow { SpatialMap(1,1) K; TemporalMap(5,4) Y;"
        " TemporalMap(Sz(R),Sz(R)) R; } } }"
    )
    maestro, ours = _both(text, _hw("xc_pe2_bw64"), DEVIATIONS[12].flag)
    assert (maestro.macs, maestro.l2_writes[2], maestro.runtime) == (36, 12, 19)
    assert (ours.macs, ours.l2_writes[2], ours.runtime) == (24, 8, 13)
    assert maestro.l2_reads[0] == ours.l2_reads[0] == 9


def test_d13_filter_smaller_than_stride_keeps_input_coordinates() -> None:
    """K2 C1 R1 S1 Y6 X1, stride 2 on Y (Y' = 3: rows 0, 2, 4), SpatialMap(1,1) K on
    2 PEs, TemporalMap(3,4) Y: tiles rows 0-2 (windows 0, 2) and 4-5 (window 4), 3
    windows per PE: 6 MACs, 6 output writes. Runtime: init 2 + d(3 + 2) = 3, then
    max(d, 1, d) = 1 -> 4. MAESTRO compacts the tile to 2 rows at offset 4 while Y stays
    6, so both steps hold 2 windows: 8 MACs, 8 writes, 3 + 2 = 5 cycles."""
    text = (
        "Network n { Layer L { Type: CONV Stride { Y: 2 } Dimensions { K: 2, C: 1, R: 1,"
        " S: 1, Y: 6, X: 1 } Dataflow { SpatialMap(1,1) K; TemporalMap(3,4) Y; } } }"
    )
    maestro, ours = _both(text, _hw("xc_pe2_bw64"), DEVIATIONS[12].flag)
    assert (maestro.macs, maestro.l2_writes[2], maestro.runtime) == (8, 8, 5)
    assert (ours.macs, ours.l2_writes[2], ours.runtime) == (6, 6, 4)


def test_table_flags_are_the_quirk_fields_and_modes_are_all_or_nothing() -> None:
    fields = list(Quirks.__dataclass_fields__)
    assert [d.flag for d in DEVIATIONS] == fields
    assert [d.ident for d in DEVIATIONS] == [f"D{i}" for i in range(1, len(DEVIATIONS) + 1)]
    assert all(getattr(COMPAT, f) for f in fields)
    assert not any(getattr(FIXED, f) for f in fields)


def test_every_deviation_has_its_test_and_its_doc_entry() -> None:
    doc = (REPO / "docs" / "maestro-deviations.md").read_text()
    names = set(globals())
    for deviation in DEVIATIONS:
        assert deviation.test in names, deviation.test
        assert re.search(rf"^## {deviation.ident}\b", doc, re.MULTILINE), deviation.ident
        assert deviation.test in doc, deviation.test


def test_default_mode_reports_which_deviations_it_applies() -> None:
    network = parse_mapping_file(MAESTRO_REFERENCE / "crosscheck" / "x01_ws_kspatial.m")
    hardware = _hw("xc_pe4_bw64")
    default = analytic.analyze_network(network, hardware)
    compat = analytic.analyze_network(network, hardware, maestro_compat=True)
    assert default.info["deviations_from_maestro"] == [d.ident for d in DEVIATIONS]
    assert compat.info["deviations_from_maestro"] == []
    assert (default.engine, compat.engine) == ("analytic", "analytic-maestro")
