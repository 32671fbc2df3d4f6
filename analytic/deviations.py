"""The one place that lists where the default mode deliberately differs from MAESTRO.

Each :class:`Deviation` is a *plain bug* of MAESTRO 4eb08d17 (a number that is simply
wrong for the mapping it was given), with the quirk flag that reproduces it. With
``maestro_compat=True`` every flag is on (MAESTRO's numbers as its binary prints them);
by default every flag is off. Modelling *assumptions* (partial sums written back every
step, no reuse across an inner-loop wrap, free spatial reduction, zero-load NoC, double
buffering) are not listed here: both modes keep them.

``docs/maestro-deviations.md`` explains each entry; ``tests/analytic/test_deviations.py``
shows, for each, MAESTRO's value, ours and why.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["COMPAT", "DEVIATIONS", "FIXED", "Deviation", "Quirks"]


@dataclass(frozen=True, slots=True)
class Quirks:
    """Which MAESTRO bugs to reproduce (True) or fix (False); one flag per deviation."""

    edge_output_uses_input_extent: bool
    """D1: at a spatial edge with one active unit the output tile takes the *input*
    extent of Y/X (not Y'/X'), over-counting MACs and output writes."""

    stride_ignored_in_output_size: bool
    """D2: the output size (output L2 reads) is K*(Y-R+1)*(X-S+1) and a declared Y'/X'
    gives Y = Y'+R-1 with stride 1, whatever the stride."""

    energy_uses_previous_layer_l1: bool
    """D3: the CSV energy of a multi-level (Cluster) mapping adds the *previous*
    layer's L1 counts (zero for the first layer)."""

    offchip_req_halved_per_case: bool
    """D4: the off-chip bandwidth requirement is halved again in every iteration case,
    so it depends on the order of the cases."""

    ngconv_output_keeps_c: bool
    """D5: NGCONV's output tensor is indexed by C as well, so the layer never reduces
    over its input channels."""

    arithmetic_intensity_last_case: bool
    """D6: the arithmetic intensity is MACs / ingress of the last enumerated case only."""

    temporal_edge_ingress_full_tile: bool
    """D7: at a temporal edge the fetched tile has the full map size, not the (smaller)
    edge size, so edge tiles are over-fetched."""

    oversized_tile_edge_cut: bool
    """D8: a tile larger than its dimension is cut to N - offset instead of N; with a
    sliding window the output extent can become <= 0, every case is skipped and the
    layer reports 0 cycles and NaNs (ResNeXt50_yxp_os FC1000). What MAESTRO then prints
    for skipped cases comes with it: input buffer needs added up once per skipped
    leading case, and delay statistics of -2**63. Fixed, a layer where no unit can
    finish an output is an error."""

    init_edge_last_unit_partial: bool
    """D9: when a SpatialMap needs fewer units than the level has (init-edge), the last
    active unit is always taken as partly filled, even when its tile is complete; its
    output tile then counts 0 elements, so output writes are under-counted."""

    int32_overflow: bool
    """D10: occurrence counts of a case and the summed L1/L2 size requirements are C
    ``int``s and wrap around past 2**31 - 1 (negative runtimes on huge layers)."""

    steps_past_the_end: bool
    """D11: with gaps between tiles (offset > size, as stride rewriting makes them) an
    edge step, or an extra unit, is added that starts at or past the end of the
    dimension, and a unit whose input tile is narrower than the filter counts a
    *negative* number of outputs: such tiles are counted and MACs can cancel out."""

    partial_unit_displaces_full: bool
    """D12: at a spatial Edge whose last unit is only partly filled, the partial unit is
    counted *instead of* one of the full units (with a single full unit, instead of
    it), so part of the dimension is never computed."""

    stride_ignored_in_tile_outputs: bool
    """D13: a strided Y/X tile of m rows over a filter of R rows is counted as holding
    m - R + 1 output windows (the stride-1 count) instead of (m - R) // s + 1, and with
    R < s it is compacted to ``out`` rows while the dimension stays in input rows, so
    MACs and output writes are over-counted whenever a tile holds more than one
    window."""


COMPAT = Quirks(**{f.name: True for f in fields(Quirks)})
"""MAESTRO as its binary behaves."""

FIXED = Quirks(**{f.name: False for f in fields(Quirks)})
"""The default mode: every listed bug fixed."""


@dataclass(frozen=True, slots=True)
class Deviation:
    """One deliberate difference of the default mode from MAESTRO."""

    ident: str
    flag: str
    title: str
    maestro: str
    ours: str
    test: str


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "D1",
        "edge_output_uses_input_extent",
        "spatial-edge output tile uses the input extent",
        "x08 (Y=9, R=3, SpatialMap(3,1) Y on 2 PEs): 27 MACs, 9 output writes",
        "21 MACs and 7 output writes: the lone edge unit computes one output row",
        "test_d1_spatial_edge_mac_overcount",
    ),
    Deviation(
        "D2",
        "stride_ignored_in_output_size",
        "stride ignored in the output size",
        "x07 stride 2 (Y=9, R=3): output L2 reads 7 = Y-R+1",
        "output L2 reads 4 = (Y-R)//2+1, the outputs the layer really has",
        "test_d2_output_size_uses_stride",
    ),
    Deviation(
        "D3",
        "energy_uses_previous_layer_l1",
        "CSV energy of Cluster mappings uses the previous layer's L1 counts",
        "x09: two identical two-level layers report 0.342424 and 0.453707 nJ",
        "both layers 0.453707 nJ: each layer's own L1 counts",
        "test_d3_energy_of_multilevel_layers",
    ),
    Deviation(
        "D4",
        "offchip_req_halved_per_case",
        "off-chip bandwidth requirement halved once per case",
        "req = max(req, v_case)/2 in every case: the value depends on case order",
        "max over cases of the per-case requirement, halved once (double buffering)",
        "test_d4_offchip_requirement_halved_once",
    ),
    Deviation(
        "D5",
        "ngconv_output_keeps_c",
        "NGCONV output indexed by C",
        "output tensor G,K,C,Y',X': no reduction over C, C times too many outputs",
        "output tensor G,K,Y',X' (this project's NGCONV table): C is reduced",
        "test_d5_ngconv_reduces_over_c",
    ),
    Deviation(
        "D6",
        "arithmetic_intensity_last_case",
        "arithmetic intensity of the last case only",
        "MACs / ingress of whichever case happens to be enumerated last",
        "all MACs / all input and weight L2 reads of the layer",
        "test_d6_arithmetic_intensity_whole_layer",
    ),
    Deviation(
        "D7",
        "temporal_edge_ingress_full_tile",
        "temporal edge tiles fetched at full size",
        "TemporalMap(64,64) C over C=96: the edge step fetches 64 channels",
        "the edge step fetches the 32 channels that exist",
        "test_d7_temporal_edge_ingress",
    ),
    Deviation(
        "D8",
        "oversized_tile_edge_cut",
        "tile larger than its dimension cut at N - offset",
        "ResNeXt50_yxp_os FC1000 (X=S=7, TemporalMap(8,1) X): 0 cycles, 0 MACs, -nan",
        "the tile is clipped to the 7 columns that exist: 100,352,000 MACs",
        "test_d8_oversized_tile",
    ),
    Deviation(
        "D9",
        "init_edge_last_unit_partial",
        "last unit of an init-edge spatial map taken as partial",
        "K2 on 4 PEs (SpatialMap(1,1) K), X8: 8 output writes, the 2nd PE's dropped",
        "16 output writes: both PEs write their output every step",
        "test_d9_init_edge_last_unit",
    ),
    Deviation(
        "D10",
        "int32_overflow",
        "occurrence counts and buffer totals wrap at 2**31",
        "GEMM 65536 x 65536 x 1 on 1 PE, one step per (m, n): a negative runtime",
        "4,294,967,296 steps counted exactly (Python integers)",
        "test_d10_int32_overflow",
    ),
    Deviation(
        "D11",
        "steps_past_the_end",
        "edge steps and units past the end of a gapped dimension",
        "Y=3, R=2, stride 3, SpatialMap(1,1) Y' on 2 PEs: a 2nd unit at row 3, 0 MACs",
        "one unit, one window: 2 MACs",
        "test_d11_steps_past_the_end",
    ),
    Deviation(
        "D12",
        "partial_unit_displaces_full",
        "partial last unit at a spatial edge replaces a full unit",
        "K=7, SpatialMap(2,2) K on 2 PEs: the edge step counts K6 only, 5 of 7 channels",
        "the edge step has K4-5 on one PE and K6 on the other: all 7 channels",
        "test_d12_partial_unit_at_spatial_edge",
    ),
    Deviation(
        "D13",
        "stride_ignored_in_tile_outputs",
        "strided tiles counted with stride-1 windows",
        "Y=9, R=3, stride 2, TemporalMap(5,4) Y: 3 windows per tile, 36 MACs for 24",
        "(5-3)//2+1 = 2 windows per tile: 24 MACs, the layer's count",
        "test_d13_strided_tile_holds_fewer_windows",
    ),
)
"""Every deliberate deviation, in the order of ``docs/maestro-deviations.md``."""
