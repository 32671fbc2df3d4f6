"""Dataflow templates: every style on every layer of the four shipped networks writes a
mapping that parses back, fits the PEs, and (by the simulator's exact coverage count)
performs every MAC exactly once; where MAESTRO ships the style for a layer the template
reproduces it, except for the differences listed with their reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from metronome.sim.coverage import coverage
from metronome.spec.hardware import Hardware
from metronome.spec.layer import Layer, LayerType, make_layer
from metronome.spec.maestro import parse_mapping_file, parse_mapping_text
from metronome.spec.mapping import ClusterDirective, MapDirective, Mapping
from metronome.spec.source import SpecError
from metronome.spec.templates import STYLES, l1_footprint_elems, template
from metronome.spec.writer import write_m_network

DATA = Path(__file__).parent.parent / "data" / "maestro-inputs" / "data"
NETS = ("vgg16", "Resnet50", "MobileNetV2", "ResNeXt50")
HW = Hardware(num_pes=256)  # accelerator_1.m's PEs; L1 unbounded (fitting is tested below)


def _shipped_layers(channel_cap: int | None = None) -> list[Layer]:
    """Every distinct layer (type, sizes, strides) of the four shipped model files;
    with ``channel_cap``, K and C are capped (every other size kept)."""
    seen: dict[tuple[object, ...], Layer] = {}
    for net in NETS:
        for entry in parse_mapping_file(DATA / "model" / f"{net}_model.m").layers:
            layer = entry.layer
            if channel_cap is not None:
                declared = {d: layer.size(d) for d in layer.declared}
                for dim in ("K", "C"):
                    if dim in declared:
                        declared[dim] = min(declared[dim], channel_cap)
                layer = make_layer(
                    name=layer.name,
                    type_=layer.type,
                    declared=declared,
                    stride_y=layer.stride_y,
                    stride_x=layer.stride_x,
                )
            seen.setdefault((layer.type, layer.sizes, layer.stride_y, layer.stride_x), layer)
    return list(seen.values())


def _conv(name: str, dims: dict[str, int], stride_x: int = 1) -> Layer:
    return make_layer(name=name, type_=LayerType.CONV, declared=dims, stride_x=stride_x)


EDGE_LAYERS = [
    _conv("batch2", {"N": 2, "K": 4, "C": 3, "R": 3, "S": 3, "Y": 9, "X": 9}),
    _conv("tiny", {"K": 1, "C": 1, "R": 1, "S": 1, "Y": 1, "X": 1}),
    _conv("rect", {"K": 5, "C": 2, "R": 1, "S": 3, "Y": 4, "X": 11}, stride_x=2),
    make_layer(name="gemm", type_=LayerType.GEMM, declared={"M": 7, "N": 130, "K": 70}),
    make_layer(
        name="heads",
        type_=LayerType.NGCONV,
        declared={"G": 4, "K": 6, "C": 5, "R": 1, "S": 1, "Y": 9, "X": 1},
    ),
]


def _coverage_problems(style: str, layers: list[Layer]) -> list[str]:
    problems = []
    for layer in layers:
        mapping = template(style, layer, HW)
        got = coverage(layer, mapping, HW.num_pes)
        if not got.performed == got.unique == layer.macs:
            problems.append(f"{layer.name} {layer.describe()}: {got}")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_every_style_covers_every_mac_of_every_window_shape_exactly_once(style: str) -> None:
    # Every distinct shipped layer with K and C capped at 20 (windows, strides, input
    # sizes, groups and types as shipped: 38 layers), and the edge cases.
    problems = _coverage_problems(style, [*_shipped_layers(channel_cap=20), *EDGE_LAYERS])
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_every_style_covers_every_mac_of_every_shipped_layer_exactly_once(style: str) -> None:
    # The 85 distinct layers at full size (minutes: the coverage count walks every
    # K and C tile).
    problems = _coverage_problems(style, _shipped_layers())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("style", STYLES)
def test_edge_layers_are_covered_on_few_pes(style: str) -> None:
    # Batches, 1x1x1 layers, rectangular strided windows, GEMMs and grouped layers on
    # 1, 6 and 64 PEs (clusters shrink to fit).
    for pes in (1, 6, 64):
        for layer in EDGE_LAYERS:
            mapping = template(style, layer, Hardware(num_pes=pes))
            assert mapping.pes_used(pes) <= pes
            got = coverage(layer, mapping, pes)
            assert got.performed == got.unique == layer.macs, (pes, layer.name, got)


@pytest.mark.parametrize("style", STYLES)
def test_written_mappings_parse_back_and_fit(style: str) -> None:
    layers = [*_shipped_layers(), *EDGE_LAYERS]
    entries = [(layer, template(style, layer, HW)) for layer in layers]
    text = write_m_network("all", entries)
    network = parse_mapping_text(text, "all.m")
    assert len(network.layers) == len(entries)
    for entry, (layer, mapping) in zip(network.layers, entries, strict=True):
        assert (entry.layer.type, entry.layer.sizes) == (layer.type, layer.sizes)
        assert (entry.layer.stride_y, entry.layer.stride_x) == (layer.stride_y, layer.stride_x)
        assert entry.mapping == mapping
        assert not entry.warnings
        entry.mapping.units_per_level(HW.num_pes)


_STRIDE = (
    "the template steps by the stride; the file steps by 1, so every other step holds no window"
)
_RS_CLUSTER = "rs clusters S PEs (one per filter column); the file always clusters 3"
_RS_VGG = "vgg16_rs.m uses a C tile of 3 and maps R (not S) across the cluster"
_RS_OR = "yxp_os: the file moves R and S above the Cluster"
_X_TILE = "the file hand-sets the X tile of this 7-wide layer"
_NO_G = "the file walks no G (all 32 groups in one tile) or clusters 10"


def _reason(net: str, style: str, layer: Layer) -> str | None:
    """Why the template departs from MAESTRO's file on this layer (None: it must not)."""
    if (layer.stride_y, layer.stride_x) != (1, 1):
        return _STRIDE
    if style == "rs" and net == "vgg16":
        return _RS_VGG
    if style == "rs" and layer.size("S") != 3:
        return _RS_CLUSTER
    if style == "yxp_os" and layer.name in ("FC1000", "CONV2D_3"):
        return _X_TILE
    if (net, style) == ("MobileNetV2", "yxp_os") and layer.name.startswith(
        ("Bottleneck1_1_", "Bottleneck2_1_1")
    ):
        return _RS_OR
    if (net, style) == ("vgg16", "yxp_os") and layer.name == "CONV1":
        return _RS_OR
    if (net, style) == ("ResNeXt50", "yxp_os") and layer.name in (
        "CONV4_1_2",
        "CONV4_2_2",
        "CONV4_4_2",
        "CONV4_5_2",
    ):
        return _NO_G
    if (net, style) == ("Resnet50", "nlr") and layer.name == "CONV4_1_Residual":
        return "the file walks K on this one DSCONV (K is 1; the other residuals do not)"
    return None


SHIPPED = [
    (net, style)
    for net in NETS
    for style in ("kcp_ws", "xp_ws", "yxp_os", "rs", "nlr", "ckp_ws")
    if (DATA / "mapping" / f"{net}_{style}.m").exists()
]


@pytest.mark.parametrize(("net", "style"), SHIPPED)
def test_templates_reproduce_maestros_shipped_mappings(net: str, style: str) -> None:
    problems = []
    reproduced = 0
    for entry in parse_mapping_file(DATA / "mapping" / f"{net}_{style}.m").layers:
        mine = template(style, entry.layer, HW)
        same = mine.directives == entry.require_mapping().directives
        reason = _reason(net, style, entry.layer)
        if reason is None and not same:
            problems.append(f"{entry.name}: file {entry.mapping}\n  template {mine}")
        elif reason is not None and same:
            problems.append(f"{entry.name}: listed as differing ({reason}) but equal")
        reproduced += same
    assert not problems, "\n".join(problems)
    assert reproduced > 0 or (net, style) == ("vgg16", "rs")


def test_nvdla_and_shidiannao_reproduce_the_table2_rebuilds() -> None:
    # MAESTRO's Table-2 rebuilds of the seed paper (64 PEs): VGG16 CONV1 and CONV11.
    table2 = DATA.parent.parent / "maestro-reference" / "table2"
    hw = Hardware(num_pes=64)
    for style, stem in (("nvdla", "t2_nvdla_ws"), ("shidiannao", "t2_shidiannao_os")):
        for entry in parse_mapping_file(table2 / f"{stem}.m").layers:
            assert template(style, entry.layer, hw).directives == entry.mapping.directives


def _rs_tiles(mapping: Mapping) -> tuple[int, int]:
    first = [d for d in mapping.directives if isinstance(d, MapDirective)]
    return first[0].size, first[1].size


def test_rs_shrinks_its_channel_tiles_to_fit_l1() -> None:
    # VGG16 CONV2 (K64 C64 3x3): rs keeps K 2 x C 4 per cluster; the innermost PE tile
    # is one X column of one filter column: input 1 row-column ... counted by
    # l1_footprint_elems. Each halving of the C tile (and of K) shrinks the need.
    layer = make_layer(
        name="c2",
        type_=LayerType.CONV,
        declared={"K": 64, "C": 64, "R": 3, "S": 3, "Y": 224, "X": 224},
    )
    big = template("rs", layer, HW)
    need = l1_footprint_elems(layer, big)
    assert _rs_tiles(big) == (2, 4)
    small = template("rs", layer, HW.with_changes(l1_size_elems=need - 1))
    assert _rs_tiles(small) == (1, 2)
    assert l1_footprint_elems(layer, small) <= need - 1


def test_l1_footprint_is_twice_the_innermost_tiles() -> None:
    # kcp_ws on a 7x7 conv: each PE holds one K, one C, the 7x7 window of weights and
    # of input, and one output: 2 x (49 + 49 + 1) = 198 (accelerator_1.m's L1 of 100
    # is too small, which template() reports).
    layer = make_layer(
        name="c1",
        type_=LayerType.CONV,
        declared={"K": 64, "C": 3, "R": 7, "S": 7, "Y": 224, "X": 224},
        stride_y=2,
        stride_x=2,
    )
    assert l1_footprint_elems(layer, template("kcp_ws", layer, HW)) == 198
    with pytest.raises(SpecError, match="needs 198 L1 elements per PE"):
        template("kcp_ws", layer, HW.with_changes(l1_size_elems=100))


def test_unknown_style_is_an_error() -> None:
    layer = EDGE_LAYERS[1]
    with pytest.raises(SpecError, match="unknown dataflow style 'ws'"):
        template("ws", layer, HW)


def test_clusters_never_exceed_the_pes() -> None:
    layer = _shipped_layers()[1]
    for style in STYLES:
        for pes in (1, 2, 3, 7, 100):
            mapping = template(style, layer, Hardware(num_pes=pes))
            assert all(d.size <= pes for d in mapping.directives if isinstance(d, ClusterDirective))
