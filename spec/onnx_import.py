"""ONNX front end: a model's graph becomes the spec's layers, every node accounted for.

The ``onnx`` package is an optional dependency (``pip install 'metronome[onnx]'``); it
is imported only here, only when a model is read. Its shape inference gives every
tensor's shape; each node in graph order becomes one :class:`ImportedOp`:

* ``Conv`` (1-D or 2-D): ``CONV``; ``group == C == K`` is a depthwise ``DSCONV``; other
  groups an ``NGCONV`` (``G`` groups of ``K`` output and ``C`` input channels each);
  dilation ``d`` with stride 1 is folded exactly into the batch (``N x dy x dx``
  interleaved sub-convolutions of the undilated kernel) when ``d`` divides the output;
* ``Gemm``/``MatMul``: ``GEMM`` (``M x K . K x N``, transposes honoured); a MatMul with
  batch dimensions folds them into ``M`` when its right operand is shared, else it is a
  batched product, written exactly as an ``NGCONV`` with one group per batch element;
* pooling, element-wise and activation/normalisation nodes are recorded with zero MACs;
  ``Flatten``/``Reshape``/``Concat`` and friends only move shapes;
* anything else is recorded as "not modelled", with its output shape, never dropped.

Padding: by default ``Y``/``X`` are the *padded* input sizes (zeros generated on chip),
so every layer has its true output size. ``maestro_dims=True`` reproduces the
conventions of MAESTRO's shipped model files instead: unpadded input sizes, and each
residual ``Add`` of two feature maps as a 1x1 ``DSCONV`` layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

from .layer import Layer, LayerType, make_layer
from .source import SourceSpan, SpecError
from .window import window_rows

__all__ = ["ImportedModel", "ImportedOp", "import_model", "load_onnx", "onnx_missing_hint"]

ELEMENTWISE: frozenset[str] = frozenset(
    {"Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Mean", "Pow", "Where", "Equal"}
)
ACTIVATIONS: frozenset[str] = frozenset(
    {
        "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish",
        "Gelu", "Erf", "Elu", "Selu", "Softplus", "Mish", "Softmax", "LogSoftmax", "Sqrt",
        "Reciprocal", "Exp", "Log", "Neg", "Abs", "BatchNormalization", "LayerNormalization",
        "InstanceNormalization", "GroupNormalization", "Dropout", "Identity", "Cast",
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceL2",
    }
)  # fmt: skip
POOLS: frozenset[str] = frozenset(
    {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool"}
)
SHAPE_OPS: frozenset[str] = frozenset(
    {
        "Flatten", "Reshape", "Concat", "Transpose", "Squeeze", "Unsqueeze", "Shape",
        "Gather", "Slice", "Split", "Constant", "ConstantOfShape", "Expand", "Pad", "Tile",
        "Resize", "Upsample",
    }
)  # fmt: skip

_INSTALL_HINT = "install it with: pip install 'metronome[onnx]'"


def onnx_missing_hint() -> str:
    """How to get the optional ``onnx`` package."""
    return _INSTALL_HINT


@dataclass(frozen=True, slots=True)
class ImportedOp:
    """One graph node: what it is, the layer it became (``None`` if it performs no MACs
    or is not modelled), its output shape and a note (padding, folding, why not)."""

    name: str
    op_type: str
    kind: str
    layer: Layer | None
    output_shape: tuple[int, ...]
    note: str = ""

    @property
    def macs(self) -> int:
        """MACs of the node (zero unless it became a layer)."""
        return self.layer.macs if self.layer is not None else 0


@dataclass(frozen=True, slots=True)
class ImportedModel:
    """Every node of a model in graph order."""

    name: str
    path: str
    batch: int
    ops: tuple[ImportedOp, ...]
    maestro_dims: bool = False

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layers with MACs, in graph order."""
        return tuple(op.layer for op in self.ops if op.layer is not None)

    @property
    def total_macs(self) -> int:
        """MACs of the whole model."""
        return sum(op.macs for op in self.ops)

    @property
    def not_modelled(self) -> tuple[ImportedOp, ...]:
        """Nodes whose cost is not modelled."""
        return tuple(op for op in self.ops if op.kind == "not modelled")


def _onnx() -> Any:
    try:
        import onnx
    except ModuleNotFoundError:
        raise SpecError.at(
            None, "reading ONNX models needs the 'onnx' package", hint=_INSTALL_HINT
        ) from None
    return onnx


def _where(path: str) -> SourceSpan:
    return SourceSpan(path, 1, 1, 1, "")


_NAME_OK = re.compile(r"[^A-Za-z0-9_.\-]+")


def _clean_name(raw: str, op_type: str, index: int, taken: set[str]) -> str:
    """A layer name the ``.m`` language accepts: non-token characters become ``_``;
    empty names become ``{op}_{index}``; repeats get a numeric suffix."""
    name = _NAME_OK.sub("_", raw).strip("_") or f"{op_type}_{index}"
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


class _Graph:
    """Shapes, constants and attributes of an inferred ONNX graph."""

    def __init__(self, onnx: Any, model: Any, path: str) -> None:
        self.onnx = onnx
        self.path = path
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.consts: dict[str, Any] = {}
        graph = model.graph
        for init in graph.initializer:
            self.shapes[init.name] = tuple(int(d) for d in init.dims)
            self.consts[init.name] = init
        for info in (*graph.input, *graph.value_info, *graph.output):
            shape = self._shape_of(info)
            if shape is not None:
                self.shapes.setdefault(info.name, shape)

    @staticmethod
    def _shape_of(info: Any) -> tuple[int, ...] | None:
        kind = info.type.WhichOneof("value")
        if kind != "tensor_type" or not info.type.tensor_type.HasField("shape"):
            return None
        dims = info.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims):
            return None
        return tuple(int(d.dim_value) for d in dims)

    def shape(self, name: str, node_name: str, op: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise SpecError.at(
                _where(self.path),
                f"{op} node '{node_name}': the shape of '{name}' is unknown after ONNX shape"
                " inference",
                hint="give the model's inputs fixed shapes (or use --batch for the batch size)",
            )
        return self.shapes[name]

    def attrs(self, node: Any) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}


def _set_batch(model: Any, batch: int | None, path: str) -> int:
    """Give the symbolic batch dimension (the first) of every graph input ``batch``
    (default 1); returns the model's batch size. Any other symbolic dimension, or a
    ``batch`` that contradicts a fixed one, is an error."""
    inits = {i.name for i in model.graph.initializer}
    found: int | None = None
    for info in model.graph.input:
        if info.name in inits or not info.type.HasField("tensor_type"):
            continue
        dims = info.type.tensor_type.shape.dim
        for i, dim in enumerate(dims):
            if dim.HasField("dim_value"):
                continue
            if i != 0:
                raise SpecError.at(
                    _where(path),
                    f"input '{info.name}' has a symbolic dimension {i}"
                    f" ('{dim.dim_param or '?'}'); only the batch dimension may be left open",
                    hint="export the model with fixed input sizes",
                )
            dim.Clear()
            dim.dim_value = batch if batch is not None else 1
        if found is None and dims:
            found = int(dims[0].dim_value)
            if batch is not None and found != batch:
                raise SpecError.at(
                    _where(path),
                    f"--batch {batch}: input '{info.name}' has a fixed batch of {found}",
                    hint="export the model with a symbolic batch dimension",
                )
    return found or 1


def load_onnx(
    path: str | Path, *, batch: int | None = None, maestro_dims: bool = False
) -> ImportedModel:
    """Read an ONNX model, run shape inference and turn every node into an op."""
    onnx = _onnx()
    shown = str(path)
    try:
        model = onnx.load(shown)
    except FileNotFoundError:
        raise SpecError.at(None, f"{shown}: no such file") from None
    except Exception as exc:
        raise SpecError.at(
            _where(shown), f"not a readable ONNX model: {_first_line(exc)}"
        ) from None
    return import_model(model, shown, batch=batch, maestro_dims=maestro_dims)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def import_model(
    model: Any, path: str, *, batch: int | None = None, maestro_dims: bool = False
) -> ImportedModel:
    """Turn an in-memory ``onnx.ModelProto`` into an :class:`ImportedModel` (its
    symbolic batch dimension is fixed in place)."""
    onnx = _onnx()
    if batch is not None and batch < 1:
        raise SpecError.at(None, f"--batch must be >= 1, got {batch}")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise SpecError.at(_where(path), f"invalid ONNX model: {_first_line(exc)}") from None
    n = _set_batch(model, batch, path)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:
        raise SpecError.at(
            _where(path), f"ONNX shape inference failed: {_first_line(exc)}"
        ) from None
    graph = _Graph(onnx, inferred, path)
    ops: list[ImportedOp] = []
    taken: set[str] = set()
    for index, node in enumerate(inferred.graph.node):
        name = _clean_name(node.name, node.op_type, index, taken)
        ops.append(_convert(graph, node, name, maestro_dims))
    model_name = inferred.graph.name or Path(path).stem
    return ImportedModel(
        _clean_name(model_name, "model", 0, set()), path, n, tuple(ops), maestro_dims
    )


def _out_shape(graph: _Graph, node: Any) -> tuple[int, ...]:
    if not node.output:
        return ()
    return graph.shapes.get(node.output[0], ())


def _convert(graph: _Graph, node: Any, name: str, maestro_dims: bool) -> ImportedOp:
    op = node.op_type
    out = _out_shape(graph, node)
    if op == "Conv":
        return _conv(graph, node, name, maestro_dims)
    if op == "Gemm":
        return _gemm(graph, node, name)
    if op == "MatMul":
        return _matmul(graph, node, name)
    if op in POOLS:
        attrs = graph.attrs(node)
        kernel = "x".join(map(str, attrs.get("kernel_shape", []))) or "global"
        return ImportedOp(name, op, "pool", None, out, f"window {kernel}, no MACs")
    if op in ELEMENTWISE:
        if maestro_dims and op == "Add" and _is_residual(graph, node):
            return _residual(graph, node, name, out)
        return ImportedOp(name, op, "elementwise", None, out, "element-wise, no MACs")
    if op in ACTIVATIONS:
        return ImportedOp(name, op, "activation", None, out, "no MACs")
    if op in SHAPE_OPS:
        return ImportedOp(name, op, "shape", None, out, "moves data only")
    return ImportedOp(name, op, "not modelled", None, out, f"operator {op} is not modelled")


def _not_modelled(name: str, op: str, out: tuple[int, ...], why: str) -> ImportedOp:
    return ImportedOp(name, op, "not modelled", None, out, why)


def _is_residual(graph: _Graph, node: Any) -> bool:
    """An Add of two computed 4-D feature maps of one shape (not a bias)."""
    if len(node.input) != 2 or any(i in graph.consts for i in node.input):
        return False
    shapes = [graph.shapes.get(i) for i in node.input]
    return shapes[0] is not None and shapes[0] == shapes[1] and len(shapes[0]) == 4


def _residual(graph: _Graph, node: Any, name: str, out: tuple[int, ...]) -> ImportedOp:
    n, c, h, w = out
    layer = make_layer(
        name=name,
        type_=LayerType.DSCONV,
        declared={"N": n, "K": 1, "C": c, "R": 1, "S": 1, "Y": h, "X": w},
        keyword="DSCONV",
    )
    return ImportedOp(name, "Add", "residual", layer, out, "residual add as MAESTRO's 1x1 DSCONV")


def _ints(value: Any, count: int, default: int) -> list[int]:
    return [int(v) for v in value] if value else [default] * count


def _conv(graph: _Graph, node: Any, name: str, maestro_dims: bool) -> ImportedOp:
    out = _out_shape(graph, node)
    x = graph.shape(node.input[0], name, "Conv")
    w = graph.shape(node.input[1], name, "Conv")
    attrs = graph.attrs(node)
    spatial = len(x) - 2
    if spatial not in (1, 2):
        return _not_modelled(name, "Conv", out, f"{spatial}-D convolution is not modelled")
    # A 1-D convolution is a 2-D one with a single row.
    if spatial == 1:
        x, w, out = (*x[:2], 1, x[2]), (*w[:2], 1, w[2]), (*out[:2], 1, out[2])
    strides = _ints(attrs.get("strides"), spatial, 1)
    dilations = _ints(attrs.get("dilations"), spatial, 1)
    pads = _ints(attrs.get("pads"), 2 * spatial, 0)
    if spatial == 1:
        strides, dilations = [1, strides[0]], [1, dilations[0]]
        pads = [0, pads[0], 0, pads[1]]
    n, c_in, h, wid = x
    k_out, c_per_group, r, s = w
    out_h, out_w = out[2], out[3]
    group = int(attrs.get("group", 1))
    if group < 1 or c_per_group * group != c_in or k_out % group:
        raise SpecError.at(
            _where(graph.path),
            f"Conv node '{name}': weight {list(w)} with group {group} does not fit an input"
            f" of {c_in} channels",
        )
    sy, sx = strides
    dy, dx = dilations
    notes: list[str] = []
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    span_y, span_x = (r - 1) * dy + 1, (s - 1) * dx + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pad_y = max(0, window_rows(out_h, span_y, sy) - h)
        pad_x = max(0, window_rows(out_w, span_x, sx) - wid)
    elif auto_pad == "VALID":
        pad_y = pad_x = 0
    else:
        pad_y, pad_x = pads[0] + pads[2], pads[1] + pads[3]
    if maestro_dims:
        in_y, in_x = max(h, span_y), max(wid, span_x)
        if pad_y or pad_x:
            notes.append(f"padding {pad_y}x{pad_x} ignored (MAESTRO's convention)")
    else:
        in_y, in_x = h + pad_y, wid + pad_x
        if pad_y or pad_x:
            notes.append(f"padded input {in_y}x{in_x} (pads {pad_y}x{pad_x})")
    if (dy, dx) != (1, 1):
        fold = _fold_dilation(n, out_h, out_w, sy, sx, dy, dx)
        if fold is None:
            why = f"dilation {dy}x{dx} with stride {sy}x{sx} and output {out_h}x{out_w}"
            return _not_modelled(
                name,
                "Conv",
                out,
                why + " cannot be folded exactly (needs stride 1 and"
                " an output divisible by the dilation)",
            )
        n, out_h, out_w = fold
        in_y, in_x = window_rows(out_h, r, 1), window_rows(out_w, s, 1)
        notes.append(f"dilation {dy}x{dx} folded into the batch (N x {dy * dx})")
    declared: dict[str, int] = {"N": n, "R": r, "S": s, "Y": in_y, "X": in_x}
    if group == 1:
        layer_type = LayerType.CONV
        declared |= {"K": k_out, "C": c_in}
    elif group == c_in and k_out == c_in and c_per_group == 1:
        layer_type = LayerType.DSCONV
        declared |= {"C": c_in}
        notes.insert(0, "depthwise")
    else:
        layer_type = LayerType.NGCONV
        declared |= {"G": group, "K": k_out // group, "C": c_per_group}
        notes.insert(0, f"{group} groups")
    layer = make_layer(
        name=name,
        type_=layer_type,
        declared=declared,
        stride_y=sy,
        stride_x=sx,
        keyword=layer_type.value,
    )
    return ImportedOp(name, "Conv", "conv", layer, out, "; ".join(notes))


def _fold_dilation(
    n: int, out_h: int, out_w: int, sy: int, sx: int, dy: int, dx: int
) -> tuple[int, int, int] | None:
    """(N, Y', X') of the dy*dx interleaved undilated convolutions, when exact."""
    if (sy, sx) != (1, 1) or out_h % dy or out_w % dx:
        return None
    return n * dy * dx, out_h // dy, out_w // dx


def _gemm_layer(name: str, m: int, k: int, n: int) -> Layer:
    return make_layer(
        name=name, type_=LayerType.GEMM, declared={"M": m, "N": n, "K": k}, keyword="GEMM"
    )


def _gemm(graph: _Graph, node: Any, name: str) -> ImportedOp:
    out = _out_shape(graph, node)
    a = graph.shape(node.input[0], name, "Gemm")
    b = graph.shape(node.input[1], name, "Gemm")
    attrs = graph.attrs(node)
    m, k = (a[1], a[0]) if attrs.get("transA", 0) else (a[0], a[1])
    n = b[0] if attrs.get("transB", 0) else b[1]
    notes = [
        t
        for t, flag in (("A transposed", "transA"), ("B transposed", "transB"))
        if attrs.get(flag, 0)
    ]
    return ImportedOp(name, "Gemm", "gemm", _gemm_layer(name, m, k, n), out, "; ".join(notes))


def _matmul(graph: _Graph, node: Any, name: str) -> ImportedOp:
    out = _out_shape(graph, node)
    a = graph.shape(node.input[0], name, "MatMul")
    b = graph.shape(node.input[1], name, "MatMul")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    m, k = a2[-2], a2[-1]
    n = b2[-1]
    batch_a, batch_b = a2[:-2], b2[:-2]
    batch = prod(out[: len(out) - 2]) if len(out) > 2 else 1
    if prod(batch_b) == 1:
        # One shared right operand: the batch rows are more rows of A.
        rows = m * prod(batch_a)
        note = f"batch {prod(batch_a)} folded into M" if prod(batch_a) > 1 else ""
        return ImportedOp(name, "MatMul", "gemm", _gemm_layer(name, rows, k, n), out, note)
    # A batched product (e.g. attention scores): one group per batch element of a
    # grouped 1x1 convolution: input G x C(=K) x Y(=M), weight G x K(=N) x C.
    layer = make_layer(
        name=name,
        type_=LayerType.NGCONV,
        declared={"G": batch, "K": n, "C": k, "R": 1, "S": 1, "Y": m, "X": 1},
        keyword="NGCONV",
    )
    return ImportedOp(
        name, "MatMul", "gemm", layer, out, f"batched ({batch}) as a grouped 1x1 conv"
    )
