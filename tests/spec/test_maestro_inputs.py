"""Every MAESTRO input file bundled in tests/data parses, and what it says is read
exactly as MAESTRO means it (or better, where MAESTRO misreads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from metronome.spec import LayerType
from metronome.spec.lexer import read_source
from metronome.spec.maestro import (
    looks_like_hw_file,
    parse_hw_file,
    parse_mapping_file,
    parse_mapping_text,
)
from metronome.validation.cli import main
from tests.conftest import MAESTRO_INPUTS, MAESTRO_REFERENCE

ALL_M_FILES = sorted(MAESTRO_INPUTS.rglob("*.m")) + sorted(MAESTRO_REFERENCE.rglob("*.m"))


def test_bundle_is_complete() -> None:
    assert len(list(MAESTRO_INPUTS.rglob("*.m"))) == 57
    assert len(ALL_M_FILES) == 82


@pytest.mark.parametrize("path", ALL_M_FILES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_bundled_file_parses(path: Path) -> None:
    if looks_like_hw_file(read_source(path)):
        assert parse_hw_file(path).num_pes >= 1
    else:
        network = parse_mapping_file(path)
        assert network.layers


@pytest.mark.slow
def test_metronome_check_accepts_all_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", *map(str, ALL_M_FILES)]) == 0
    out = capsys.readouterr().out
    assert out.count("network '") == 82 - 11


def test_layer_names_keep_their_dashes() -> None:
    network = parse_mapping_file(MAESTRO_INPUTS / "data/mapping/googlenet_kcp_ws.m")
    assert [e.name for e in network.layers[:3]] == ["Conv2d-1", "Conv2d-2", "Conv2d-3"]


def test_resnet50_layer_count_dims_and_stride() -> None:
    network = parse_mapping_file(MAESTRO_INPUTS / "data/mapping/Resnet50_kcp_ws.m")
    assert len(network.layers) == 66
    conv1 = network.layers[0].layer
    assert (conv1.size("K"), conv1.size("C"), conv1.size("R"), conv1.size("Y")) == (64, 3, 7, 224)
    assert (conv1.stride_y, conv1.stride_x) == (2, 2)
    assert conv1.size("Y'") == (224 - 7) // 2 + 1


def test_constants_and_sz_are_resolved() -> None:
    network = parse_mapping_file(MAESTRO_INPUTS / "data/mapping/GEMM_Example.m")
    layer = network.layers[0]
    assert layer.layer.type is LayerType.GEMM
    assert layer.layer.size_map == {"M": 100, "N": 100, "K": 100}
    text = "; ".join(str(d) for d in layer.require_mapping().directives)
    assert text == (
        "TemporalMap(1,1) N; SpatialMap(1,1) M; TemporalMap(100,100) K; Cluster(100,P);"
        " TemporalMap(1,1) N; TemporalMap(1,1) M; SpatialMap(1,1) K"
    )


def test_model_only_files_parse_without_mappings() -> None:
    network = parse_mapping_file(MAESTRO_INPUTS / "data/model/vgg16_model.m")
    assert len(network.layers) == 13
    assert all(e.mapping is None for e in network.layers)


def test_layer_without_dataflow_reuses_previous_one_with_its_own_sizes() -> None:
    text = """
    Network n {
      Layer A { Type: CONV Dimensions { K: 8, C: 2, R: 3, S: 3, Y: 8, X: 8 }
        Dataflow { SpatialMap(1,1) K; TemporalMap(Sz(R),1) Y; TemporalMap(Sz(R),Sz(R)) R; } }
      Layer B { Type: CONV Dimensions { K: 8, C: 2, R: 5, S: 5, Y: 8, X: 8 } }
    }"""
    network = parse_mapping_text(text)
    second = network.layers[1]
    assert second.mapping_inherited
    assert str(second.require_mapping()) == (
        "SpatialMap(1,1) K; TemporalMap(5,1) Y; TemporalMap(5,5) R"
    )


def test_full_size_r_map_with_large_offset_is_accepted() -> None:
    """``TemporalMap(Sz(R),7) R`` covers the whole filter in one step; MAESTRO's check
    rejects it (exit 255) but it is well defined, so it is accepted."""
    network = parse_mapping_file(MAESTRO_INPUTS / "data/mapping/googlenet_ykp_os.m")
    directive = network.layers[1].require_mapping().level_directives()[1][-2]
    assert (directive.dim, directive.size, directive.offset) == ("R", 1, 7)


def test_second_directive_on_a_dimension_in_a_level_is_dropped_with_a_warning() -> None:
    network = parse_mapping_file(MAESTRO_INPUTS / "data/mapping/Resnet50_rs.m")
    entry = network.layers[0]
    inner = entry.require_mapping().level_directives()[1]
    assert [str(d) for d in inner] == ["SpatialMap(1,1) X", "SpatialMap(1,1) S"]
    assert "is already mapped" in entry.warnings[0].message
    assert entry.warnings[0].span is not None
    assert entry.warnings[0].span.line == 16


def test_hw_file_modes() -> None:
    hw = parse_hw_file(MAESTRO_INPUTS / "data/hw/accelerator_1.m")
    assert (hw.num_pes, hw.l1_size_elems, hw.l2_size_elems) == (256, 100, 3000)
    assert (hw.noc_bw_elems_per_cycle, hw.offchip_bw_elems_per_cycle) == (1000, 50)
    assert hw.noc_latency_cycles == 1
    hops2 = parse_hw_file(MAESTRO_REFERENCE / "hw/pe256_bw256_hops2.m", simd_lanes=2)
    assert (hops2.noc_latency_cycles, hops2.simd_lanes) == (2, 2)


def test_tensors_and_macs_per_layer_type() -> None:
    network = parse_mapping_file(MAESTRO_INPUTS / "data/mapping/ResNeXt50_kcp_ws.m")
    grouped = next(e.layer for e in network.layers if e.layer.type is LayerType.NGCONV)
    assert grouped.tensor("output").dims == ("N", "G", "K", "Y'", "X'")
    assert grouped.macs == grouped.size("G") * grouped.size("K") * grouped.size("C") * 9 * (
        grouped.size("Y'") * grouped.size("X'")
    )
    mobile = parse_mapping_file(MAESTRO_INPUTS / "data/mapping/MobileNetV2_kcp_ws.m")
    depthwise = next(e.layer for e in mobile.layers if e.layer.type is LayerType.DSCONV)
    assert depthwise.tensor("weight").dims == ("C", "R", "S")
    assert depthwise.macs == depthwise.size("C") * 9 * depthwise.size("Y'") * depthwise.size("X'")


def test_dataflow_paths_shown_in_errors_are_relative_as_given(tmp_path: Path) -> None:
    bad = tmp_path / "x.m"
    bad.write_text("Network n { Layer L { Type: CONV } }\n")
    with pytest.raises(Exception, match=r"x\.m:1:19: error: layer 'L' has no Dimensions"):
        parse_mapping_file(bad)
