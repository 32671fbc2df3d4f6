"""DNN layers: operation type, dimension sizes, strides and the tensors they define.

A :class:`Layer` holds what the user declared, completed by the derivations the
language defines (output extents ``Y'``/``X'`` from input extents and strides, or the
reverse). It holds *facts about the input* only; how a mapping walks it is each
engine's business.

Dimension names are MAESTRO's letters: ``N`` batch, ``G`` groups, ``K`` output
channels, ``C`` input channels, ``R``/``S`` filter rows/columns, ``Y``/``X`` input
rows/columns and ``Y'``/``X'`` output rows/columns. GEMM layers use ``M``, ``N``, ``K``
for ``(M x K) . (K x N) = (M x N)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from math import prod

from .source import Diagnostic, SourceSpan, SpecError
from .window import SLIDING_PAIRS, window_rows, windows

__all__ = [
    "CONV_DIMS",
    "GEMM_DIMS",
    "TENSORS",
    "Layer",
    "LayerType",
    "TensorSpec",
    "make_layer",
]

TENSORS: tuple[str, ...] = ("input", "weight", "output")
"""The three tensors of every layer, in report order."""

CONV_DIMS: tuple[str, ...] = ("N", "G", "K", "C", "R", "S", "Y", "X", "Y'", "X'")
GEMM_DIMS: tuple[str, ...] = ("M", "N", "K")


class LayerType(StrEnum):
    """Operation of a layer; FC is accepted as an alias of GEMM."""

    CONV = "CONV"
    DSCONV = "DSCONV"
    NGCONV = "NGCONV"
    TRCONV = "TRCONV"
    GEMM = "GEMM"

    @property
    def is_conv(self) -> bool:
        """True for the convolution family (sliding windows over Y/R and X/S)."""
        return self is not LayerType.GEMM


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A tensor's name and the dimensions that index it (input tensors in input
    coordinates ``Y``/``X``, outputs in output coordinates ``Y'``/``X'``)."""

    name: str
    dims: tuple[str, ...]


_TENSOR_TABLE: dict[LayerType, tuple[TensorSpec, ...]] = {
    LayerType.CONV: (
        TensorSpec("input", ("N", "C", "Y", "X")),
        TensorSpec("weight", ("K", "C", "R", "S")),
        TensorSpec("output", ("N", "K", "Y'", "X'")),
    ),
    LayerType.DSCONV: (
        TensorSpec("input", ("N", "C", "Y", "X")),
        TensorSpec("weight", ("C", "R", "S")),
        TensorSpec("output", ("N", "C", "Y'", "X'")),
    ),
    # Grouped convolution: G groups of K output and C input channels each.
    LayerType.NGCONV: (
        TensorSpec("input", ("N", "G", "C", "Y", "X")),
        TensorSpec("weight", ("G", "K", "C", "R", "S")),
        TensorSpec("output", ("N", "G", "K", "Y'", "X'")),
    ),
    LayerType.GEMM: (
        TensorSpec("input", ("M", "K")),
        TensorSpec("weight", ("K", "N")),
        TensorSpec("output", ("M", "N")),
    ),
}
_TENSOR_TABLE[LayerType.TRCONV] = _TENSOR_TABLE[LayerType.CONV]

_LOOP_DIMS: dict[LayerType, tuple[str, ...]] = {
    LayerType.CONV: ("N", "K", "C", "R", "S", "Y'", "X'"),
    LayerType.TRCONV: ("N", "K", "C", "R", "S", "Y'", "X'"),
    LayerType.DSCONV: ("N", "C", "R", "S", "Y'", "X'"),
    LayerType.NGCONV: ("N", "G", "K", "C", "R", "S", "Y'", "X'"),
    LayerType.GEMM: ("M", "N", "K"),
}

_MAPPABLE_DIMS: dict[LayerType, tuple[str, ...]] = {
    LayerType.CONV: ("N", "K", "C", "R", "S", "Y", "X", "Y'", "X'"),
    LayerType.TRCONV: ("N", "K", "C", "R", "S", "Y", "X", "Y'", "X'"),
    LayerType.DSCONV: ("N", "K", "C", "R", "S", "Y", "X", "Y'", "X'"),
    LayerType.NGCONV: ("N", "G", "K", "C", "R", "S", "Y", "X", "Y'", "X'"),
    LayerType.GEMM: ("M", "N", "K"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """One layer: its type, every dimension's size (declared or derived) and strides.

    ``sizes`` lists every dimension of the type (see :meth:`dims`), including the
    derived output extents ``Y' = (Y - R) // stride_y + 1`` and ``X'`` likewise.
    ``declared`` records which of them the user wrote, so front ends and the
    MAESTRO-compatible analysis can tell a declared ``Y'`` from a derived one.
    """

    name: str
    type: LayerType
    sizes: tuple[tuple[str, int], ...]
    stride_y: int = 1
    stride_x: int = 1
    declared: frozenset[str] = frozenset()
    keyword: str = ""
    span: SourceSpan | None = field(default=None, compare=False)

    def size(self, dim: str) -> int:
        """Size of dimension ``dim``; KeyError if the layer type has no such dimension."""
        for name, value in self.sizes:
            if name == dim:
                return value
        raise KeyError(f"layer {self.name!r} ({self.type}) has no dimension {dim!r}")

    def has_dim(self, dim: str) -> bool:
        """Whether ``dim`` is a dimension of this layer."""
        return any(name == dim for name, _ in self.sizes)

    @property
    def dims(self) -> tuple[str, ...]:
        """All dimension names, in canonical order."""
        return tuple(name for name, _ in self.sizes)

    @property
    def size_map(self) -> dict[str, int]:
        """Dimension sizes as a fresh dict."""
        return dict(self.sizes)

    @property
    def loop_dims(self) -> tuple[str, ...]:
        """Dimensions of the iteration space (one MAC per point): output coordinates
        for the sliding dimensions, plus the reduction dimensions."""
        return _LOOP_DIMS[self.type]

    @property
    def mappable_dims(self) -> tuple[str, ...]:
        """Dimensions a directive may name for this layer type."""
        return _MAPPABLE_DIMS[self.type]

    @property
    def tensors(self) -> tuple[TensorSpec, ...]:
        """Input, weight and output tensors (this project's table; see README)."""
        return _TENSOR_TABLE[self.type]

    def tensor(self, name: str) -> TensorSpec:
        """The tensor called ``name`` (input, weight or output)."""
        for spec in self.tensors:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def tensor_elems(self, name: str) -> int:
        """Number of elements of a tensor."""
        return prod(self.size(d) for d in self.tensor(name).dims)

    @property
    def macs(self) -> int:
        """Multiply-accumulates the layer needs: the size of its iteration space."""
        return prod(self.size(d) for d in self.loop_dims)

    def stride(self, dim: str) -> int:
        """Stride of an input sliding dimension (``Y`` or ``X``); 1 for any other."""
        if dim == "Y":
            return self.stride_y
        if dim == "X":
            return self.stride_x
        return 1

    def describe(self) -> str:
        """One line, e.g. ``CONV K64 C3 R3 S3 Y224 X224 -> Y'222 X'222``."""
        if not self.type.is_conv:
            body = " ".join(f"{d}{self.size(d)}" for d in GEMM_DIMS)
            return f"{self.keyword or self.type.value} {body}"
        shown = [f"{d}{v}" for d, v in self.sizes if d in ("K", "C", "R", "S", "Y", "X")]
        if self.type is LayerType.NGCONV:
            shown.insert(0, f"G{self.size('G')}")
        if self.size("N") != 1:
            shown.insert(0, f"N{self.size('N')}")
        out_y, out_x = self.size("Y'"), self.size("X'")
        text = f"{self.keyword or self.type.value} {' '.join(shown)} -> Y'{out_y} X'{out_x}"
        if (self.stride_y, self.stride_x) != (1, 1):
            text += f" stride {self.stride_y}x{self.stride_x}"
        return text


def make_layer(
    *,
    name: str,
    type_: LayerType,
    declared: dict[str, int],
    stride_y: int = 1,
    stride_x: int = 1,
    keyword: str = "",
    span: SourceSpan | None = None,
    dim_spans: dict[str, SourceSpan] | None = None,
) -> Layer:
    """Complete a layer from the dimensions the user declared.

    Missing ``N`` and ``G`` default to 1; ``Y'`` is derived as ``(Y - R) // stride + 1``
    when ``Y`` is given, or ``Y = (Y' - 1) * stride + R`` when only ``Y'`` is given
    (likewise for X). Raises :class:`SpecError` for unknown, missing, conflicting or
    non-positive dimensions.
    """
    dim_spans = dim_spans or {}
    problems: list[Diagnostic] = []

    def where(dim: str) -> SourceSpan | None:
        return dim_spans.get(dim, span)

    allowed = set(GEMM_DIMS) if type_ is LayerType.GEMM else set(CONV_DIMS)
    if type_ is not LayerType.NGCONV and type_ is not LayerType.GEMM:
        allowed.discard("G")
    for dim, value in declared.items():
        if dim not in allowed:
            kind = keyword or type_.value
            problems.append(
                Diagnostic(
                    f"dimension '{dim}' is not a dimension of a {kind} layer",
                    where(dim),
                    hint="allowed: " + ", ".join(d for d in _order(type_) if d in allowed),
                )
            )
        elif value <= 0:
            problems.append(Diagnostic(f"dimension {dim} must be > 0, got {value}", where(dim)))
    if problems:
        raise SpecError(problems)

    sizes: dict[str, int] = {}
    if type_ is LayerType.GEMM:
        for dim in GEMM_DIMS:
            if dim not in declared:
                problems.append(
                    Diagnostic(f"GEMM layer '{name}' does not declare dimension {dim}", span)
                )
            else:
                sizes[dim] = declared[dim]
        if problems:
            raise SpecError(problems)
        return Layer(
            name=name,
            type=type_,
            sizes=tuple((d, sizes[d]) for d in GEMM_DIMS),
            declared=frozenset(declared),
            keyword=keyword or type_.value,
            span=span,
        )

    sizes["N"] = declared.get("N", 1)
    sizes["G"] = declared.get("G", 1)
    sizes["K"] = declared.get("K", 1)
    for dim in ("C", "R", "S"):
        if dim not in declared:
            problems.append(Diagnostic(f"layer '{name}' does not declare dimension {dim}", span))
        else:
            sizes[dim] = declared[dim]
    if type_ is not LayerType.DSCONV and "K" not in declared:
        problems.append(Diagnostic(f"layer '{name}' does not declare dimension K", span))
    strides = {"Y": stride_y, "X": stride_x}
    for in_dim, _filt, out_dim in SLIDING_PAIRS:
        if in_dim in declared and out_dim in declared:
            problems.append(
                Diagnostic(
                    f"both {in_dim} and {out_dim} are given; give one, the other is derived",
                    where(out_dim),
                )
            )
        elif in_dim not in declared and out_dim not in declared:
            problems.append(
                Diagnostic(f"layer '{name}' declares neither {in_dim} nor {out_dim}", span)
            )
    if problems:
        raise SpecError(problems)
    for in_dim, filt, out_dim in SLIDING_PAIRS:
        stride = strides[in_dim]
        window = sizes[filt]
        if in_dim in declared:
            sizes[in_dim] = declared[in_dim]
            if sizes[in_dim] < window:
                problems.append(
                    Diagnostic(
                        f"filter {filt}={window} is larger than input {in_dim}={sizes[in_dim]}"
                        " (Metronome, like MAESTRO, models no padding)",
                        where(in_dim),
                        hint=f"declare the padded input size, e.g. {in_dim}: "
                        f"{sizes[in_dim] + window - 1}",
                    )
                )
                continue
            sizes[out_dim] = windows(sizes[in_dim], window, stride)
        else:
            sizes[out_dim] = declared[out_dim]
            sizes[in_dim] = window_rows(sizes[out_dim], window, stride)
    if problems:
        raise SpecError(problems)
    order = [d for d in CONV_DIMS if d in sizes and (d != "G" or type_ is LayerType.NGCONV)]
    return Layer(
        name=name,
        type=type_,
        sizes=tuple((d, sizes[d]) for d in order),
        stride_y=stride_y,
        stride_x=stride_x,
        declared=frozenset(declared),
        keyword=keyword or type_.value,
        span=span,
    )


def _order(type_: LayerType) -> tuple[str, ...]:
    return GEMM_DIMS if type_ is LayerType.GEMM else CONV_DIMS
