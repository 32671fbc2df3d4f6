"""The 2018 pragma front end: syntax of Fig. 4, the translation rules of
docs/pragma-2018.md, and the five Table-2 files of scenarios/paper, which must say
exactly what MAESTRO's 2019-syntax rebuilds in tests/data say."""

from __future__ import annotations

from pathlib import Path

import pytest

from metronome.spec.maestro import parse_mapping_file
from metronome.spec.mapping import ClusterDirective, MapDirective, Mapping
from metronome.spec.pragma import parse_pragma_file, parse_pragma_text
from metronome.spec.source import SpecError
from tests.conftest import MAESTRO_REFERENCE, REPO

PAPER = REPO / "scenarios" / "paper"
PAIRS = [
    ("nlr", "t2_nlr"),
    ("ws", "t2_ws"),
    ("shidiannao_os", "t2_shidiannao_os"),
    ("eyeriss_rs", "t2_eyeriss_rs"),
    ("nvdla_ws", "t2_nvdla_ws"),
]

FIG4 = """//Physical Resource Description
L1Size 256;
L2Size 1024;
Bandwidth 32;
NumPEs 256;

//DNN Layer Description
Layer CONV VGG_C1;
K 64; C 3; R 3; S 3; Y 224; X 224;
endLayer

//Dataflow Description
Temporal_Map (1,1) K
-> Temporal_Map (1,1) C
-> Temporal_Map (1,1) Y
-> Spatial_Map (1,1) X
-> Unroll R
-> Unroll S
"""


def _input_centric(mapping: Mapping) -> list[str]:
    """Directives with Y'/X' rewritten to input coordinates the way MAESTRO does per
    level: size + (size of the same level's R resp. S directive) - 1, offset unchanged."""
    out: list[str] = []
    for level in mapping.level_directives():
        window = {d.dim: d.size for d in level}
        for d in level:
            if d.dim in ("Y'", "X'"):
                filt = "R" if d.dim == "Y'" else "S"
                d = MapDirective(d.spatial, d.dim[0], d.size + window[filt] - 1, d.offset)
            out.append(str(d))
        out.append("|")
    return out[:-1]


def _sorted_levels(directives: list[str]) -> list[list[str]]:
    """Levels with their directives in order, for comparing two directive lists."""
    levels: list[list[str]] = [[]]
    for text in directives:
        if text == "|":
            levels.append([])
        else:
            levels[-1].append(text)
    return levels


@pytest.mark.parametrize(("pragma", "rebuild"), PAIRS)
def test_table2_pragma_files_match_maestro_rebuilds(pragma: str, rebuild: str) -> None:
    ours = parse_pragma_file(PAPER / f"{pragma}.pragma")
    theirs = parse_mapping_file(MAESTRO_REFERENCE / "table2" / f"{rebuild}.m")
    assert [e.name for e in ours.layers] == [e.name for e in theirs.layers]
    for mine, ref in zip(ours.layers, theirs.layers, strict=True):
        assert mine.layer.size_map == ref.layer.size_map
        assert mine.require_mapping().cluster_sizes == ref.require_mapping().cluster_sizes
        got = _sorted_levels(_input_centric(mine.require_mapping()))
        want = _sorted_levels(_input_centric(ref.require_mapping()))
        # Loop order matters, so compare in order; the rebuilds list dimensions the
        # pragma files leave implicit (whole-dimension maps), which are dropped here.
        for got_level, want_level in zip(got, want, strict=True):
            explicit = [w for w in want_level if w in got_level]
            assert got_level == explicit, (got_level, want_level)
    assert ours.hardware is not None
    assert (ours.hardware.num_pes, ours.hardware.noc_bw_elems_per_cycle) == (64, 64)
    assert ours.hardware.noc_latency_cycles == 1


def test_figure4_example_parses_with_its_hardware() -> None:
    network = parse_pragma_text(FIG4, "fig4.pragma")
    hw = network.hardware
    assert hw is not None
    assert (hw.num_pes, hw.l1_size_elems, hw.l2_size_elems, hw.noc_bw_elems_per_cycle) == (
        256,
        256,
        1024,
        32,
    )
    assert str(network.layers[0].require_mapping()) == (
        "TemporalMap(1,1) K; TemporalMap(1,1) C; TemporalMap(1,1) Y; SpatialMap(1,1) X;"
        " TemporalMap(3,3) R; TemporalMap(3,3) S"
    )


def test_paper_nlr_text_is_rejected_for_its_partial_filter_tile() -> None:
    text = FIG4.split("//Dataflow")[0] + (
        "TEMPORAL_MAP (4,4) K -> TEMPORAL_MAP (1,1) C -> TEMPORAL_MAP (1,1) Y\n"
        "-> TEMPORAL_MAP (1,1) R -> TEMPORAL_MAP (1,1) S -> SPATIAL_MAP (1,1) X\n"
    )
    with pytest.raises(SpecError) as info:
        parse_pragma_text(text, "nlr.pragma")
    first = info.value.first
    assert first.span is not None
    assert (first.span.line, first.span.col) == (13, 18)
    assert first.message.startswith("TemporalMap on R must cover the whole filter")


def _directives(body: str, pes: int = 64) -> list[str]:
    text = f"NumPEs {pes};\nLayer CONV L;\nK 8; C 4; R 3; S 3; Y 10; X 10;\nendLayer\n{body}\n"
    return [str(d) for d in parse_pragma_text(text).layers[0].require_mapping().directives]


def test_unroll_tile_and_case_insensitive_keywords() -> None:
    assert _directives("SPATIAL_MAP (1,1) K -> unroll R -> Tile (2) C -> spatial_map (1,1) C") == [
        "SpatialMap(1,1) K",
        "TemporalMap(3,3) R",
        "Cluster(2,P)",
        "SpatialMap(1,1) C",
    ]


def test_merge_under_temporal_map_is_the_nested_loop() -> None:
    assert _directives("Temporal_Map (2,2) K -> Merge C -> Spatial_Map (1,1) X") == [
        "TemporalMap(2,2) K",
        "TemporalMap(1,1) C",
        "SpatialMap(1,1) X",
    ]


def test_merge_under_spatial_map_is_a_cluster_of_the_merged_loop() -> None:
    assert _directives("Spatial_Map (1,1) K -> Merge C") == [
        "SpatialMap(1,1) K",
        "Cluster(4,P)",
        "SpatialMap(1,1) C",
    ]


def test_merge_that_wraps_across_pes_is_flagged() -> None:
    text = "NumPEs 30;\nLayer CONV L;\nK 8; C 4; R 3; S 3; Y 10; X 10;\nendLayer\n"
    network = parse_pragma_text(text + "Spatial_Map (1,1) K -> Merge C\n")
    warning = network.layers[0].warnings[0]
    assert warning.severity == "warning"
    assert "30 PEs are not a multiple of Sz(C)=4" in warning.message


def test_fc_is_a_one_by_one_convolution() -> None:
    text = "NumPEs 4;\nLayer FC fc;\nK 10; C 20;\nendLayer\nSpatial_Map (1,1) K\n"
    layer = parse_pragma_text(text).layers[0].layer
    assert layer.macs == 200
    assert (layer.size("Y'"), layer.size("X'")) == (1, 1)


def test_every_scenario_pragma_file_parses() -> None:
    files = sorted(Path(PAPER).glob("*.pragma"))
    assert len(files) == 5
    for path in files:
        network = parse_pragma_file(path)
        assert [e.name for e in network.layers] == ["VGG16_CONV1", "VGG16_CONV11"]
        for entry in network.layers:
            mapping = entry.require_mapping()
            assert all(isinstance(d, MapDirective | ClusterDirective) for d in mapping.directives)
