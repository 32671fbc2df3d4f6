"""The four networks MAESTRO ships model files for, built as ONNX graphs from their
papers and imported: total MACs equal each architecture's standard count (derived here
from the papers' tables, independently of the importer), and with ``maestro_dims`` every
layer equals the shipped file's, except the departures listed below (each with its
reason; the same list is in docs/import.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from metronome.spec.layer import Layer
from metronome.spec.maestro import parse_mapping_file
from metronome.spec.onnx_import import import_model

from .onnx_nets import MOBILENETV2_STAGES, NETWORKS

MODELS = Path(__file__).parent.parent / "data" / "maestro-inputs" / "data" / "model"


def _conv(k: int, c: int, r: int, out: int) -> int:
    """MACs of a square convolution: K x C x R x R x out x out."""
    return k * c * r * r * out * out


def _vgg16_macs() -> int:
    # (output channels, 3x3 convs, feature-map side) per block; C of a block's first
    # conv is the previous block's K. Then the three FCs 7*7*512 -> 4096 -> 4096 -> 1000.
    total, c = 0, 3
    for k, n, side in ((64, 2, 224), (128, 2, 112), (256, 3, 56), (512, 3, 28), (512, 3, 14)):
        for _ in range(n):
            total += _conv(k, c, 3, side)
            c = k
    return total + 7 * 7 * 512 * 4096 + 4096 * 4096 + 4096 * 1000


def _bottleneck_macs(
    widths: tuple[int, ...], out_mult: int, groups: int, stride_on_1x1: bool
) -> int:
    # Stem: 7x7/2 conv to 112x112; pool to 56. Each block: 1x1 (C -> w), 3x3 (w -> w,
    # `groups` groups), 1x1 (w -> out_mult*w); the first block of a stage adds a 1x1
    # projection shortcut. Stages 3-5 halve the side in their first block. FC 2048x1000.
    total = _conv(64, 3, 7, 112)
    c, side = 64, 56
    for stage, (w, blocks) in enumerate(zip(widths, (3, 4, 6, 3), strict=True)):
        for block in range(blocks):
            out = side // 2 if stage > 0 and block == 0 else side
            first_side = out if stride_on_1x1 else side
            total += _conv(w, c, 1, first_side)
            total += _conv(w, w // groups, 3, out)
            total += _conv(out_mult * w, w, 1, out)
            if block == 0:
                total += _conv(out_mult * w, c, 1, out)
            c, side = out_mult * w, out
    return total + 2048 * 1000


def _mobilenetv2_macs() -> int:
    # Stem 3x3/2 conv 3 -> 32 at 112x112; each block: 1x1 expansion (C -> tC, absent
    # when t = 1), 3x3 depthwise (stride s in a stage's first block), 1x1 projection
    # (tC -> c); then 1x1 320 -> 1280 at 7x7 and the FC 1280 x 1000.
    total, c, side = _conv(32, 3, 3, 112), 32, 112
    for t, out_c, n, s in MOBILENETV2_STAGES:
        for block in range(n):
            out = side // s if block == 0 else side
            hidden = t * c
            if t != 1:
                total += _conv(hidden, c, 1, side)
            total += hidden * 3 * 3 * out * out
            total += _conv(out_c, hidden, 1, out)
            c, side = out_c, out
    return total + _conv(1280, 320, 1, 7) + 1280 * 1000


STANDARD_MACS = {
    # Simonyan & Zisserman: 15.5 G multiply-adds.
    "vgg16": _vgg16_macs(),
    # He et al. 2015, Table 1: 3.8 x 10^9 FLOPs (multiply-adds).
    "Resnet50": _bottleneck_macs((64, 128, 256, 512), 4, 1, True),
    # Sandler et al. 2018, Table 4: 300 M multiply-adds.
    "MobileNetV2": _mobilenetv2_macs(),
    # Xie et al. 2017, Table 1: 4.2 x 10^9 FLOPs.
    "ResNeXt50": _bottleneck_macs((128, 256, 512, 1024), 2, 32, False),
}


def test_standard_counts_match_the_papers_rounded_figures() -> None:
    # The derivations above against the papers' rounded figures (a check of the
    # derivations, not of the importer).
    assert round(STANDARD_MACS["vgg16"] / 1e9, 1) == 15.5
    assert round(STANDARD_MACS["Resnet50"] / 1e9, 1) == 3.9
    assert round(STANDARD_MACS["MobileNetV2"] / 1e6, -1) == 300
    assert round(STANDARD_MACS["ResNeXt50"] / 1e9, 1) == 4.2


@pytest.mark.parametrize("stem", sorted(NETWORKS))
def test_total_macs_are_the_architectures_standard_count(stem: str) -> None:
    model = import_model(NETWORKS[stem](), stem)
    assert model.total_macs == STANDARD_MACS[stem]
    assert not model.not_modelled


_C_OF_BLOCK_INPUT = "C is the stage's first-block input width, not the previous block's output"
_RESNET_FC = (
    "the classifier is a 7x7 CONV over the 7x7 map: 49x the MACs of the network's"
    " global average pool + 2048x1000 FC"
)
_MISSING_PROJECTION = "the projection shortcut (1x1 conv) of the stage's first block is missing"


def _resnet_common() -> dict[str, str]:
    out = {"FC1000": _RESNET_FC}
    for stage in (2, 3, 4, 5):
        out[f"+CONV{stage}_1_Downsample"] = _MISSING_PROJECTION
    return out


DEPARTURES: dict[str, dict[str, str]] = {
    "vgg16": {
        "+FC1": "the three fully connected layers are missing",
        "+FC2": "the three fully connected layers are missing",
        "+FC3": "the three fully connected layers are missing",
    },
    "Resnet50": {
        **_resnet_common(),
        "CONV3_2_1": f"C: 256, the network has 512 ({_C_OF_BLOCK_INPUT})",
        "CONV3_3_1": f"C: 256, the network has 512 ({_C_OF_BLOCK_INPUT})",
        "CONV3_4_1": f"C: 256, the network has 512 ({_C_OF_BLOCK_INPUT})",
        "CONV3_1_Residual#2": "the residual add of block 3_2 is named CONV3_1_Residual again",
        "+CONV3_2_Residual": "appears as a second CONV3_1_Residual",
    },
    "ResNeXt50": {
        **_resnet_common(),
        "CONV1": "the 7x7 stem conv is written R: 1, S: 1 (1x1)",
        **{
            f"CONV{s}_{b}_2": "NGCONV C is the total input width (128/256/512/1024), not the"
            " per-group width (/32): 32x the grouped conv's MACs"
            for s, n in ((2, 3), (3, 4), (4, 6), (5, 3))
            for b in range(1, n + 1)
        },
        **{
            f"CONV{s}_1_1": "stride 2 on the first 1x1 conv; the paper's implementation strides"
            " the grouped 3x3 conv"
            for s in (3, 4, 5)
        },
        # The strided grouped convs depart twice (C and stride); one reason says both.
        **{
            f"CONV{s}_1_2": "NGCONV C is the total input width, not the per-group width; and"
            " no stride (the paper strides this conv)"
            for s in (3, 4, 5)
        },
        "CONV3_2_1": f"C: 256, the network has 512 ({_C_OF_BLOCK_INPUT})",
        "CONV3_3_1": f"C: 256, the network has 512 ({_C_OF_BLOCK_INPUT})",
        "CONV3_4_1": f"C: 256, the network has 512 ({_C_OF_BLOCK_INPUT})",
        **{
            f"+CONV{s}_{b}_Residual": "no residual adds at all (ResNet50's file has them)"
            for s, n in ((2, 3), (3, 4), (4, 6), (5, 3))
            for b in range(1, n + 1)
        },
    },
    "MobileNetV2": {},
}

_MB_WIDTH = (
    "the stage's first projection keeps the expanded width and the later blocks expand to"
    " it, instead of Table 2's t x c"
)
DEPARTURES["MobileNetV2"] = {
    "CONV1": "the 3x3 stem conv is written R: 1, S: 1 (1x1)",
    "Bottleneck1_1_1": "block 1 has t = 1: no expansion conv in the network",
    "Bottleneck1_1_Residual": "block 1 changes 32 -> 16 channels: no residual in the network",
    **dict.fromkeys(
        [
            "Bottleneck2_1_3",
            "Bottleneck2_2_1",
            "Bottleneck2_2_2",
            "Bottleneck2_2_3",
            "Bottleneck3_1_3",
            "Bottleneck3_2_1",
            "Bottleneck3_2_2",
            "Bottleneck3_2_3",
            "Bottleneck3_2_Residual",
            "Bottleneck3_3_1",
            "Bottleneck3_3_2",
            "Bottleneck3_3_3",
            "Bottleneck4_1_3",
            "Bottleneck4_2_1",
            "Bottleneck4_2_2",
            "Bottleneck4_2_3",
            "Bottleneck4_2_Residual",
            "Bottleneck4_3_1",
            "Bottleneck4_3_2",
            "Bottleneck4_3_3",
            "Bottleneck4_3_Residual",
            "Bottleneck4_4_1",
            "Bottleneck4_4_2",
            "Bottleneck4_4_3",
            "Bottleneck5_1_3",
            "Bottleneck5_2_1",
            "Bottleneck5_2_2",
            "Bottleneck5_2_3",
            "Bottleneck6_2_1",
            "Bottleneck6_2_2",
            "Bottleneck6_2_3",
            "Bottleneck6_2_Residual",
            "Bottleneck6_3_1",
            "Bottleneck6_3_2",
            "Bottleneck6_3_3",
        ],
        _MB_WIDTH,
    ),
    "Bottleneck5_2_3#2": "stage 6's first expansion (576 -> 576 at 7x7) is named"
    " Bottleneck5_2_3 and placed after the stride-2 conv",
    "CONV2D_3": "the classifier is a 7x7 CONV over the 7x7 map: 49x the FC's MACs",
    "+FC1000": "the network's FC (the file's CONV2D_3 is a CONV)",
    "+Bottleneck6_1_3": "stage 6's first projection is missing",
    **{
        f"+{name}": "stage 5 has 3 blocks in Table 2; the file has 2"
        for name in (
            "Bottleneck5_3_1",
            "Bottleneck5_3_2",
            "Bottleneck5_3_3",
            "Bottleneck5_3_Residual",
        )
    },
    **{
        f"+{name}": "residual add missing (stride 1, same width in and out)"
        for name in (
            "Bottleneck2_2_Residual",
            "Bottleneck3_3_Residual",
            "Bottleneck4_4_Residual",
            "Bottleneck5_2_Residual",
            "Bottleneck6_3_Residual",
        )
    },
}


def _same(a: Layer, b: Layer) -> bool:
    return (a.type, a.sizes, a.stride_y, a.stride_x) == (b.type, b.sizes, b.stride_y, b.stride_x)


@pytest.mark.parametrize("stem", sorted(NETWORKS))
def test_maestro_dims_match_the_shipped_files_except_the_listed_departures(stem: str) -> None:
    ours = import_model(NETWORKS[stem](), stem, maestro_dims=True).layers
    shipped = [e.layer for e in parse_mapping_file(MODELS / f"{stem}_model.m").layers]
    departures = DEPARTURES[stem]
    by_name: dict[str, list[Layer]] = {}
    for layer in ours:
        by_name.setdefault(layer.name, []).append(layer)
    seen: dict[str, int] = {}
    problems: list[str] = []
    used: set[str] = set()
    for layer in shipped:
        index = seen.get(layer.name, 0)
        seen[layer.name] = index + 1
        key = layer.name if index == 0 else f"{layer.name}#{index + 1}"
        candidates = by_name.get(layer.name, [])
        mine = candidates[index] if index < len(candidates) else None
        if mine is not None:
            used.add(f"{layer.name}#{index}")
        matches = mine is not None and _same(mine, layer)
        if key in departures:
            used.add(key)
            if matches:
                problems.append(f"{key} is listed as a departure but matches")
        elif not matches:
            theirs = layer.describe()
            problems.append(f"{key}: file {theirs}, network {mine.describe() if mine else '-'}")
    for name, layers in by_name.items():
        for index, _layer in enumerate(layers):
            if f"{name}#{index}" in used:
                continue
            if f"+{name}" not in departures:
                problems.append(f"{name} is in the network but not in the file, and not listed")
            used.add(f"+{name}")
    problems += [f"listed departure {k} does not occur" for k in departures if k not in used]
    assert not problems, "\n".join(problems)


def test_maestro_dims_reproduce_the_unpadded_stem_of_resnet50() -> None:
    # The shipped CONV1 has Y: 224 with a 7x7 stride-2 kernel: (224 - 7) // 2 + 1 = 109
    # outputs, where the padded network has (224 + 6 - 7) // 2 + 1 = 112.
    padded = import_model(NETWORKS["Resnet50"](), "Resnet50").layers[0]
    unpadded = import_model(NETWORKS["Resnet50"](), "Resnet50", maestro_dims=True).layers[0]
    assert (padded.size("Y"), padded.size("Y'")) == (230, 112)
    assert (unpadded.size("Y"), unpadded.size("Y'")) == (224, 109)
