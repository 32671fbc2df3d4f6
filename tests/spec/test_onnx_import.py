"""The ONNX front end on graphs built with ``onnx.helper``: every supported operator,
padding, strides, groups, dilation, batches, a residual block, a transformer block, and
malformed or unsupported models. Expected MACs are hand-derived in each test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

from metronome.spec.layer import LayerType
from metronome.spec.onnx_import import ImportedModel, import_model, load_onnx
from metronome.spec.source import SpecError


def _vi(name: str, shape: list[Any]) -> onnx.ValueInfoProto:
    return oh.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _model(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, list[Any]],
    outputs: dict[str, list[Any]],
    consts: dict[str, np.ndarray] | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    graph = oh.make_graph(
        nodes,
        "g",
        [_vi(k, v) for k, v in inputs.items()],
        [_vi(k, v) for k, v in outputs.items()],
        [numpy_helper.from_array(v, k) for k, v in (consts or {}).items()],
    )
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)])


def _conv_model(x: list[Any], w: list[int], out: list[Any], **attrs: Any) -> onnx.ModelProto:
    node = oh.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    return _model([node], {"x": x, "w": w}, {"y": out})


def _one(model: onnx.ModelProto, **kw: Any) -> Any:
    imported = import_model(model, "m.onnx", **kw)
    return imported.ops[0]


def test_strided_padded_conv_gets_the_padded_input_and_true_output() -> None:
    # 8x8 input, 3x3 kernel, stride 2, pads 1: output (8 + 2 - 3) // 2 + 1 = 4; the
    # padded input is 10. MACs 4 K x 3 C x 9 x 4 x 4 = 1728.
    model = _conv_model([1, 3, 8, 8], [4, 3, 3, 3], [1, 4, 4, 4], strides=[2, 2], pads=[1, 1, 1, 1])
    op = _one(model)
    layer = op.layer
    assert layer.type is LayerType.CONV
    assert (layer.size("Y"), layer.size("X"), layer.size("Y'"), layer.size("X'")) == (10, 10, 4, 4)
    assert (layer.stride_y, layer.stride_x) == (2, 2)
    assert op.macs == 1728
    # MAESTRO's convention: the unpadded 8 rows, (8 - 3) // 2 + 1 = 3 outputs, 4*3*9*9.
    assert _one(model, maestro_dims=True).macs == 972


def test_asymmetric_and_auto_padding() -> None:
    # pads top 0, left 1, bottom 2, right 0 on 5x6: Y = 7, X = 7, outputs 5x5.
    op = _one(_conv_model([1, 1, 5, 6], [1, 1, 3, 3], [1, 1, 5, 5], pads=[0, 1, 2, 0]))
    assert (op.layer.size("Y"), op.layer.size("X")) == (7, 7)
    # SAME_UPPER, stride 2 on 7x7 with 3x3: output ceil(7/2) = 4, total padding
    # (4 - 1) * 2 + 3 - 7 = 2, so Y = 9.
    op = _one(
        _conv_model([1, 1, 7, 7], [1, 1, 3, 3], [1, 1, 4, 4], strides=[2, 2], auto_pad="SAME_UPPER")
    )
    assert (op.layer.size("Y"), op.layer.size("Y'")) == (9, 4)


def test_grouped_depthwise_and_multiplier_convs() -> None:
    # 2 groups of 4 in/4 out channels, 3x3 "same" on 6x6: 2*4*4*9*36 = 10368.
    op = _one(_conv_model([1, 8, 6, 6], [8, 4, 3, 3], [1, 8, 6, 6], group=2, pads=[1] * 4))
    assert op.layer.type is LayerType.NGCONV
    assert (op.layer.size("G"), op.layer.size("K"), op.layer.size("C")) == (2, 4, 4)
    assert op.macs == 10368
    # Depthwise (group = C = K): 8 channels x 9 x 36 = 2592.
    op = _one(_conv_model([1, 8, 6, 6], [8, 1, 3, 3], [1, 8, 6, 6], group=8, pads=[1] * 4))
    assert op.layer.type is LayerType.DSCONV
    assert op.macs == 2592
    # Depth multiplier 2 (K = 16, group 8): 8 groups of 2 outputs from 1 input: 5184.
    op = _one(_conv_model([1, 8, 6, 6], [16, 1, 3, 3], [1, 16, 6, 6], group=8, pads=[1] * 4))
    assert op.layer.type is LayerType.NGCONV
    assert (op.layer.size("G"), op.layer.size("K"), op.layer.size("C")) == (8, 2, 1)
    assert op.macs == 5184


def test_dilation_folds_into_the_batch_exactly() -> None:
    # 3x3 dilated by 2, pads 2, on 8x8: 8x8 outputs, each K*C*9 MACs: 2*3*9*64 = 3456,
    # computed as 4 (= 2x2 phases) undilated convs of 4x4 outputs.
    op = _one(_conv_model([1, 3, 8, 8], [2, 3, 3, 3], [1, 2, 8, 8], dilations=[2, 2], pads=[2] * 4))
    assert (op.layer.size("N"), op.layer.size("Y'"), op.layer.size("R")) == (4, 4, 3)
    assert op.macs == 3456
    # 7x7 outputs are not divisible by the dilation: recorded, not modelled.
    op = _one(_conv_model([1, 3, 7, 7], [2, 3, 3, 3], [1, 2, 7, 7], dilations=[2, 2], pads=[2] * 4))
    assert op.kind == "not modelled"
    assert op.layer is None
    assert "dilation 2x2" in op.note


def test_conv1d_is_a_single_row_and_conv3d_is_not_modelled() -> None:
    # x (1, 4, 10), w (6, 4, 3): 8 outputs, 6*4*3*8 = 576 MACs.
    op = _one(_conv_model([1, 4, 10], [6, 4, 3], [1, 6, 8]))
    assert (op.layer.size("R"), op.layer.size("Y"), op.layer.size("X'")) == (1, 1, 8)
    assert op.macs == 576
    op = _one(_conv_model([1, 1, 4, 4, 4], [1, 1, 3, 3, 3], [1, 1, 2, 2, 2]))
    assert op.kind == "not modelled"
    assert op.output_shape == (1, 1, 2, 2, 2)


def test_gemm_transposes() -> None:
    # A (5 x 3) transposed is M 3 x K 5; B (5 x 7): N 7; 3*5*7 = 105 MACs.
    node = oh.make_node("Gemm", ["a", "b"], ["y"], name="fc", transA=1)
    op = _one(_model([node], {"a": [5, 3], "b": [5, 7]}, {"y": [3, 7]}))
    assert (op.layer.size("M"), op.layer.size("K"), op.layer.size("N")) == (3, 5, 7)
    assert op.macs == 105
    node = oh.make_node("Gemm", ["a", "b", "c"], ["y"], name="fc", transB=1)
    model = _model([node], {"a": [2, 5], "b": [7, 5], "c": [7]}, {"y": [2, 7]})
    assert _one(model).macs == 2 * 5 * 7


def test_matmul_batches() -> None:
    # Shared right operand: A (2, 3, 4, 5) . B (5, 6) is M = 2*3*4 = 24 rows: 720 MACs.
    node = oh.make_node("MatMul", ["a", "b"], ["y"], name="mm")
    op = _one(_model([node], {"a": [2, 3, 4, 5], "b": [5, 6]}, {"y": [2, 3, 4, 6]}))
    assert op.layer.type is LayerType.GEMM
    assert op.layer.size("M") == 24
    assert op.macs == 720
    # Batched on both sides: 2 products of (4 x 5) . (5 x 6) = 2*4*5*6 = 240 MACs.
    op = _one(_model([node], {"a": [2, 4, 5], "b": [2, 5, 6]}, {"y": [2, 4, 6]}))
    assert op.layer.type is LayerType.NGCONV
    assert op.layer.size("G") == 2
    assert op.macs == 240
    # A vector: (5) . (5 x 6) = 30 MACs.
    op = _one(_model([node], {"a": [5], "b": [5, 6]}, {"y": [6]}))
    assert (op.layer.size("M"), op.macs) == (1, 30)


def test_pools_elementwise_activations_and_shape_ops_are_recorded() -> None:
    nodes = [
        oh.make_node("MaxPool", ["x"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("AveragePool", ["p"], ["q"], name="avg", kernel_shape=[2, 2]),
        oh.make_node("Relu", ["q"], ["r"], name="relu"),
        oh.make_node("Add", ["r", "bias"], ["s"], name="bias_add"),
        oh.make_node("Flatten", ["s"], ["f"], name="flat"),
        oh.make_node("Reshape", ["f", "shape"], ["g"], name="reshape"),
        oh.make_node("Concat", ["g", "g"], ["h"], name="cat", axis=1),
        oh.make_node("Sigmoid", ["h"], ["y"], name="sig"),
    ]
    consts = {"bias": np.zeros((1, 2, 3, 3), np.float32), "shape": np.array([1, 18], np.int64)}
    model = _model(nodes, {"x": [1, 2, 8, 8]}, {"y": [1, 36]}, consts)
    imported = import_model(model, "m.onnx")
    kinds = [(op.name, op.kind, op.output_shape) for op in imported.ops]
    assert kinds == [
        ("pool", "pool", (1, 2, 4, 4)),
        ("avg", "pool", (1, 2, 3, 3)),
        ("relu", "activation", (1, 2, 3, 3)),
        ("bias_add", "elementwise", (1, 2, 3, 3)),
        ("flat", "shape", (1, 18)),
        ("reshape", "shape", (1, 18)),
        ("cat", "shape", (1, 36)),
        ("sig", "activation", (1, 36)),
    ]
    assert imported.total_macs == 0
    # A bias (a constant operand) is no residual, even with MAESTRO's conventions.
    assert import_model(model, "m.onnx", maestro_dims=True).ops[3].layer is None


def _residual_block() -> onnx.ModelProto:
    nodes = [
        oh.make_node("Conv", ["x", "w1"], ["a"], name="conv_a", pads=[1] * 4),
        oh.make_node("Relu", ["a"], ["b"], name="relu_a"),
        oh.make_node("Conv", ["b", "w2"], ["c"], name="conv_b", pads=[1] * 4),
        oh.make_node("Add", ["c", "x"], ["d"], name="residual"),
        oh.make_node("Relu", ["d"], ["y"], name="relu_out"),
    ]
    inputs = {"x": ["batch", 4, 6, 6], "w1": [4, 4, 3, 3], "w2": [4, 4, 3, 3]}
    return _model(nodes, inputs, {"y": ["batch", 4, 6, 6]})


def test_residual_block_and_batch() -> None:
    # Two "same" 3x3 convs of 4 -> 4 channels on 6x6: 2 x 4*4*9*36 = 10368 MACs per
    # image; the add is element-wise (no MACs).
    block = import_model(_residual_block(), "m.onnx")
    assert [op.kind for op in block.ops] == [
        "conv",
        "activation",
        "conv",
        "elementwise",
        "activation",
    ]
    assert (block.batch, block.total_macs) == (1, 10368)
    batched = import_model(_residual_block(), "m.onnx", batch=3)
    assert batched.layers[0].size("N") == 3
    assert batched.total_macs == 3 * 10368
    # MAESTRO's conventions: unpadded 6x6 (4x4 outputs, 2 x 4*4*9*16 = 4608) and the add
    # as a 1x1 DSCONV over 4 channels of 6x6 (144 MACs).
    maestro = import_model(_residual_block(), "m.onnx", maestro_dims=True)
    residual = maestro.ops[3].layer
    assert residual.type is LayerType.DSCONV
    assert residual.macs == 144
    assert maestro.total_macs == 4608 + 144


def _transformer_block(seq: int = 8, d: int = 16, heads: int = 2, ff: int = 64) -> onnx.ModelProto:
    dh = d // heads
    consts = {
        "split_heads": np.array([1, seq, heads, dh], np.int64),
        "merge_heads": np.array([1, seq, d], np.int64),
        "gamma": np.ones(d, np.float32),
        "beta": np.zeros(d, np.float32),
    }
    nodes = []
    for t in ("q", "k", "v"):
        nodes += [
            oh.make_node("MatMul", ["x", f"w{t}"], [f"{t}0"], name=f"proj_{t}"),
            oh.make_node("Reshape", [f"{t}0", "split_heads"], [f"{t}1"], name=f"split_{t}"),
        ]
    nodes += [
        oh.make_node("Transpose", ["q1"], ["q2"], name="tq", perm=[0, 2, 1, 3]),
        oh.make_node("Transpose", ["k1"], ["k2"], name="tk", perm=[0, 2, 3, 1]),
        oh.make_node("Transpose", ["v1"], ["v2"], name="tv", perm=[0, 2, 1, 3]),
        oh.make_node("MatMul", ["q2", "k2"], ["scores"], name="scores"),
        oh.make_node("Softmax", ["scores"], ["probs"], name="softmax", axis=-1),
        oh.make_node("MatMul", ["probs", "v2"], ["ctx"], name="context"),
        oh.make_node("Transpose", ["ctx"], ["ctx_t"], name="tctx", perm=[0, 2, 1, 3]),
        oh.make_node("Reshape", ["ctx_t", "merge_heads"], ["ctx_m"], name="merge"),
        oh.make_node("MatMul", ["ctx_m", "wo"], ["attn"], name="proj_out"),
        oh.make_node("Add", ["attn", "x"], ["res1"], name="residual1"),
        oh.make_node("LayerNormalization", ["res1", "gamma", "beta"], ["n1"], name="norm1"),
        oh.make_node("MatMul", ["n1", "w1"], ["h"], name="ffn1"),
        oh.make_node("Relu", ["h"], ["h_r"], name="ffn_relu"),
        oh.make_node("MatMul", ["h_r", "w2"], ["f"], name="ffn2"),
        oh.make_node("Add", ["f", "n1"], ["res2"], name="residual2"),
        oh.make_node("LayerNormalization", ["res2", "gamma", "beta"], ["y"], name="norm2"),
    ]
    inputs = {
        "x": [1, seq, d],
        "wq": [d, d],
        "wk": [d, d],
        "wv": [d, d],
        "wo": [d, d],
        "w1": [d, ff],
        "w2": [ff, d],
    }
    return _model(nodes, inputs, {"y": [1, seq, d]}, consts)


def test_transformer_block() -> None:
    # seq 8, d 16, 2 heads of 8, FFN 64. Projections q, k, v, out: 4 x 8*16*16 = 8192;
    # scores and context: 2 heads x 8*8*8 each = 1024 + 1024; FFN 2 x 8*16*64 = 16384.
    model = import_model(_transformer_block(), "m.onnx")
    macs = {op.name: op.macs for op in model.ops if op.macs}
    assert macs == {
        "proj_q": 2048,
        "proj_k": 2048,
        "proj_v": 2048,
        "scores": 1024,
        "context": 1024,
        "proj_out": 2048,
        "ffn1": 8192,
        "ffn2": 8192,
    }
    kinds = {op.name: op.kind for op in model.ops}
    assert kinds["softmax"] == kinds["norm1"] == "activation"
    scores = next(op for op in model.ops if op.name == "scores").layer
    assert (scores.type, scores.size("G"), scores.size("C")) == (LayerType.NGCONV, 2, 8)
    assert not model.not_modelled


def test_unsupported_operators_are_recorded_with_their_shape() -> None:
    node = oh.make_node("TopK", ["x", "k"], ["v", "i"], name="topk", axis=1)
    graph = oh.make_graph(
        [node],
        "g",
        [_vi("x", [1, 10])],
        [_vi("v", [1, 3]), oh.make_tensor_value_info("i", TensorProto.INT64, [1, 3])],
        [numpy_helper.from_array(np.array([3], np.int64), "k")],
    )
    model = import_model(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)]), "m")
    (op,) = model.not_modelled
    assert (op.name, op.op_type, op.output_shape) == ("topk", "TopK", (1, 3))
    assert "not modelled" in op.note


def test_layer_names_are_cleaned_and_made_unique() -> None:
    nodes = [
        oh.make_node("Relu", ["x"], ["a"], name="/block/act"),
        oh.make_node("Relu", ["a"], ["b"], name="/block/act"),
        oh.make_node("Relu", ["b"], ["y"]),
    ]
    model = import_model(_model(nodes, {"x": [1, 4]}, {"y": [1, 4]}), "m")
    assert [op.name for op in model.ops] == ["block_act", "block_act_2", "Relu_2"]


def test_malformed_and_unreadable_models(tmp_path: Path) -> None:
    garbage = tmp_path / "bad.onnx"
    garbage.write_bytes(b"\x08\x07not a protobuf at all\xff\xff")
    with pytest.raises(SpecError, match=r"not a readable ONNX model|invalid ONNX model"):
        load_onnx(garbage)
    with pytest.raises(SpecError, match="no such file"):
        load_onnx(tmp_path / "missing.onnx")
    # A node reading a tensor nobody defines fails the ONNX checker.
    node = oh.make_node("Relu", ["nowhere"], ["y"], name="r")
    with pytest.raises(SpecError, match="invalid ONNX model"):
        import_model(_model([node], {"x": [1, 4]}, {"y": [1, 4]}), "m")
    # Only the batch dimension may be symbolic.
    node = oh.make_node("Relu", ["x"], ["y"], name="r")
    with pytest.raises(SpecError, match="symbolic dimension 1 \\('seq'\\)"):
        import_model(_model([node], {"x": [1, "seq"]}, {"y": [1, "seq"]}), "m")
    # A --batch that contradicts a fixed batch.
    with pytest.raises(SpecError, match="fixed batch of 1"):
        import_model(_model([node], {"x": [1, 4]}, {"y": [1, 4]}), "m", batch=2)
    # A weight whose channels contradict the input.
    bad = _conv_model([1, 3, 8, 8], [4, 5, 3, 3], [1, 4, 6, 6])
    with pytest.raises(SpecError, match=r"weight \[4, 5, 3, 3\] with group 1 does not fit"):
        import_model(bad, "m")
    # Shapes that contradict the operator fail shape inference.
    node = oh.make_node("Add", ["x", "z"], ["y"], name="add")
    with pytest.raises(SpecError, match="shape inference failed"):
        import_model(_model([node], {"x": [1, 4], "z": [1, 5]}, {"y": [1, 4]}), "m")


def test_missing_onnx_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    with pytest.raises(SpecError, match="needs the 'onnx' package") as info:
        load_onnx("any.onnx")
    assert "metronome[onnx]" in info.value.render()


def test_saved_model_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "block.onnx"
    onnx.save(_residual_block(), path)
    model: ImportedModel = load_onnx(path)
    assert model.path == str(path)
    assert model.total_macs == 10368
