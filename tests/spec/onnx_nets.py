"""ONNX graphs built with ``onnx.helper`` (no download, no PyTorch): a small builder and
the four networks MAESTRO ships model files for (VGG16, ResNet50, MobileNetV2,
ResNeXt50), from their papers' definitions, with the layer names MAESTRO's files use.

Weights are graph inputs with fixed shapes rather than initializers, so a 25M-parameter
network costs no memory; the importer reads shapes only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import onnx
from onnx import TensorProto
from onnx import helper as oh


@dataclass
class Builder:
    """Appends nodes and tracks every tensor's shape (NCHW)."""

    name: str
    input_shape: tuple[Any, ...] = (1, 3, 224, 224)
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inputs: list[onnx.ValueInfoProto] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    last: str = "x"

    def __post_init__(self) -> None:
        self.inputs.append(oh.make_tensor_value_info("x", TensorProto.FLOAT, self.input_shape))
        batch = self.input_shape[0] if isinstance(self.input_shape[0], int) else 1
        self.shapes["x"] = (batch, *self.input_shape[1:])

    def weight(self, name: str, shape: tuple[int, ...]) -> str:
        self.inputs.append(oh.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        self.shapes[name] = shape
        return name

    def _emit(
        self, op: str, name: str, inputs: list[str], shape: tuple[int, ...], **attrs: Any
    ) -> str:
        out = f"{name}_out"
        self.nodes.append(oh.make_node(op, inputs, [out], name=name, **attrs))
        self.shapes[out] = shape
        self.last = out
        return out

    def conv(
        self,
        name: str,
        x: str,
        k: int,
        r: int,
        *,
        stride: int = 1,
        pad: int | None = None,
        group: int = 1,
        dilation: int = 1,
    ) -> str:
        n, c, h, w = self.shapes[x]
        p = (r // 2) * dilation if pad is None else pad
        span = (r - 1) * dilation + 1
        oh_, ow_ = (h + 2 * p - span) // stride + 1, (w + 2 * p - span) // stride + 1
        wt = self.weight(f"{name}_w", (k, c // group, r, r))
        return self._emit(
            "Conv",
            name,
            [x, wt],
            (n, k, oh_, ow_),
            kernel_shape=[r, r],
            strides=[stride, stride],
            pads=[p, p, p, p],
            group=group,
            dilations=[dilation, dilation],
        )

    def relu(self, name: str, x: str) -> str:
        return self._emit("Relu", name, [x], self.shapes[x])

    def add(self, name: str, a: str, b: str) -> str:
        return self._emit("Add", name, [a, b], self.shapes[a])

    def maxpool(self, name: str, x: str, r: int, stride: int, pad: int) -> str:
        n, c, h, w = self.shapes[x]
        o = (h + 2 * pad - r) // stride + 1
        return self._emit(
            "MaxPool",
            name,
            [x],
            (n, c, o, (w + 2 * pad - r) // stride + 1),
            kernel_shape=[r, r],
            strides=[stride, stride],
            pads=[pad] * 4,
        )

    def gap_fc(self, pool: str, fc: str, x: str, classes: int) -> str:
        """Global average pool, flatten and the classifier."""
        n, c = self.shapes[x][:2]
        p = self._emit("GlobalAveragePool", pool, [x], (n, c, 1, 1))
        f = self._emit("Flatten", f"{pool}_flatten", [p], (n, c))
        return self.fc(fc, f, classes)

    def fc(self, name: str, x: str, out: int) -> str:
        n, c = self.shapes[x]
        wt = self.weight(f"{name}_w", (out, c))
        return self._emit("Gemm", name, [x, wt], (n, out), transB=1)

    def model(self) -> onnx.ModelProto:
        out = oh.make_tensor_value_info(self.last, TensorProto.FLOAT, self.shapes[self.last])
        graph = oh.make_graph(self.nodes, self.name, self.inputs, [out])
        return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])


def vgg16() -> onnx.ModelProto:
    """VGG16 (Simonyan & Zisserman, configuration D): 13 3x3 convs, 5 pools, 3 FCs."""
    b = Builder("vgg16")
    x = "x"
    index = 0
    for channels, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            index += 1
            x = b.relu(f"RELU{index}", b.conv(f"CONV{index}", x, channels, 3))
        x = b.maxpool(f"POOL{index}", x, 2, 2, 0)
    n, c, h, w = b.shapes[x]
    x = b._emit("Flatten", "FLATTEN", [x], (n, c * h * w))
    x = b.relu("RELU_FC1", b.fc("FC1", x, 4096))
    x = b.relu("RELU_FC2", b.fc("FC2", x, 4096))
    b.fc("FC3", x, 1000)
    return b.model()


def _stem(b: Builder) -> str:
    x = b.relu("RELU1", b.conv("CONV1", "x", 64, 7, stride=2))
    return b.maxpool("POOL1", x, 3, 2, 1)


def resnet50() -> onnx.ModelProto:
    """ResNet-50 (He et al. 2015, Table 1; stride 2 on each stage's first 1x1 conv, as
    the original Caffe model), MAESTRO's layer names; projection shortcuts are
    ``CONVs_1_Downsample``."""
    b = Builder("Resnet50")
    x = _stem(b)
    for stage, (width, blocks, stride) in enumerate(
        ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), start=2
    ):
        for block in range(1, blocks + 1):
            tag = f"CONV{stage}_{block}"
            s = stride if block == 1 else 1
            y = b.relu(f"{tag}_1_relu", b.conv(f"{tag}_1", x, width, 1, stride=s))
            y = b.relu(f"{tag}_2_relu", b.conv(f"{tag}_2", y, width, 3))
            y = b.conv(f"{tag}_3", y, 4 * width, 1)
            short = b.conv(f"{tag}_Downsample", x, 4 * width, 1, stride=s) if block == 1 else x
            x = b.relu(f"{tag}_relu", b.add(f"{tag}_Residual", y, short))
    b.gap_fc("POOL5", "FC1000", x, 1000)
    return b.model()


def resnext50() -> onnx.ModelProto:
    """ResNeXt-50 32x4d (Xie et al. 2017, Table 1): grouped 3x3 convs of 32 groups,
    stride 2 on each stage's first 3x3 conv (the paper's implementation, 4.2 GMACs)."""
    b = Builder("ResNeXt50")
    x = _stem(b)
    for stage, (width, blocks, stride) in enumerate(
        ((128, 3, 1), (256, 4, 2), (512, 6, 2), (1024, 3, 2)), start=2
    ):
        for block in range(1, blocks + 1):
            tag = f"CONV{stage}_{block}"
            s = stride if block == 1 else 1
            y = b.relu(f"{tag}_1_relu", b.conv(f"{tag}_1", x, width, 1))
            y = b.relu(f"{tag}_2_relu", b.conv(f"{tag}_2", y, width, 3, stride=s, group=32))
            y = b.conv(f"{tag}_3", y, 2 * width, 1)
            short = b.conv(f"{tag}_Downsample", x, 2 * width, 1, stride=s) if block == 1 else x
            x = b.relu(f"{tag}_relu", b.add(f"{tag}_Residual", y, short))
    b.gap_fc("POOL5", "FC1000", x, 1000)
    return b.model()


MOBILENETV2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
"""(expansion t, output channels c, blocks n, first stride s): Sandler et al. 2018, Table 2."""


def mobilenetv2() -> onnx.ModelProto:
    """MobileNetV2 1.0/224 (Sandler et al. 2018, Table 2), MAESTRO's layer names."""
    b = Builder("MobileNetV2")
    x = b.relu("RELU1", b.conv("CONV1", "x", 32, 3, stride=2))
    channels = 32
    for stage, (t, c, n, s) in enumerate(MOBILENETV2_STAGES, start=1):
        for block in range(1, n + 1):
            tag = f"Bottleneck{stage}_{block}"
            stride = s if block == 1 else 1
            y = x
            if t != 1:
                y = b.relu(f"{tag}_1_relu", b.conv(f"{tag}_1", y, channels * t, 1))
            hidden = channels * t
            y = b.relu(
                f"{tag}_2_relu", b.conv(f"{tag}_2", y, hidden, 3, stride=stride, group=hidden)
            )
            y = b.conv(f"{tag}_3", y, c, 1)
            x = b.add(f"{tag}_Residual", y, x) if stride == 1 and channels == c else y
            channels = c
    x = b.relu("CONV2D_2_relu", b.conv("CONV2D_2", x, 1280, 1))
    b.gap_fc("POOL", "FC1000", x, 1000)
    return b.model()


NETWORKS = {
    "vgg16": vgg16,
    "Resnet50": resnet50,
    "MobileNetV2": mobilenetv2,
    "ResNeXt50": resnext50,
}
"""Shipped model file stem -> builder."""
