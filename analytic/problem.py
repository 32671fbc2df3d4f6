"""A layer and its mapping as the engine sees them: dimension table, tensors, and the
completed directive list of every cluster level.

Level construction follows MAESTRO's cluster analysis: per level, directives on the
output coordinates ``Y'``/``X'`` become input-coordinate directives (size + filter tile
- 1); directives of the level above that this level does not mention are inherited as
``TemporalMap(upper size, upper offset)`` at the front (each one inserted before the
previous); every input/weight dimension still missing is appended as
``TemporalMap(N, N)``; strided ``Y``/``X`` directives are rewritten (see
:func:`_apply_stride`). The next level's dimensions are ``min(map size, dimension)``
for every input/weight dimension (and any other dimension the level maps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from metronome.spec.layer import Layer, LayerType
from metronome.spec.mapping import Mapping
from metronome.spec.source import SourceSpan, SpecError
from metronome.spec.window import FILTER_OF, OUTPUT_OF, whole_windows_tile, window_rows, windows

from .deviations import Quirks

__all__ = ["LevelDirective", "Problem", "Tensor", "build_problem"]


@dataclass(frozen=True, slots=True)
class LevelDirective:
    """One completed directive of a cluster level (input coordinates, stride applied)."""

    dim: str
    spatial: bool
    size: int
    offset: int


@dataclass(frozen=True, slots=True)
class Tensor:
    """A tensor as the engine indexes it: the output is indexed by the *input*
    coordinates ``Y``/``X`` and converted to ``Y'``/``X'`` where its tile is counted."""

    name: str
    dims: tuple[str, ...]
    is_output: bool


@dataclass(frozen=True, slots=True)
class Problem:
    """Everything the engine needs about one layer, independent of the hardware."""

    layer_name: str
    conv: bool
    dims: tuple[tuple[str, int], ...]
    strides: tuple[tuple[str, int], ...]
    tensors: tuple[Tensor, ...]
    levels: tuple[tuple[LevelDirective, ...], ...]
    level_dims: tuple[tuple[tuple[str, int], ...], ...]
    units: tuple[int, ...]
    span: SourceSpan | None = field(default=None, compare=False)

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        """Input and weight tensors (the ones fetched from L2)."""
        return tuple(t for t in self.tensors if not t.is_output)

    @property
    def output(self) -> Tensor:
        """The output tensor."""
        return next(t for t in self.tensors if t.is_output)


def _tensors(layer: Layer, quirks: Quirks) -> tuple[Tensor, ...]:
    """MAESTRO's tensor table for the layer type (batch-aware when N is declared)."""
    kind = layer.type
    dims: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    if kind is LayerType.GEMM:
        dims = (("M", "K"), ("K", "N"), ("M", "N"))
    else:
        batch: tuple[str, ...] = ("N",) if "N" in layer.declared else ()
        if kind is LayerType.DSCONV:
            dims = (("C", "Y", "X"), ("C", "R", "S"), ("C", "Y", "X"))
        elif kind is LayerType.NGCONV:
            out = (
                ("G", "K", "C", "Y", "X") if quirks.ngconv_output_keeps_c else ("G", "K", "Y", "X")
            )
            dims = (("G", "C", "Y", "X"), ("G", "K", "C", "R", "S"), out)
        else:
            dims = (("C", "Y", "X"), ("K", "C", "R", "S"), ("K", "Y", "X"))
        dims = (batch + dims[0], dims[1], batch + dims[2])
    return (
        Tensor("input", dims[0], False),
        Tensor("weight", dims[1], False),
        Tensor("output", dims[2], True),
    )


def _dimension_table(layer: Layer, quirks: Quirks) -> tuple[dict[str, int], dict[str, int]]:
    """Sizes and strides of the top level.

    MAESTRO keeps the declared dimensions and derives ``Y' = Y - R + 1`` (or
    ``Y = Y' + R - 1``, dropping the stride) whatever the stride; with the quirk off the
    spec's own derivation (``Y' = (Y - R) // stride + 1``) is used.
    """
    if layer.type is LayerType.GEMM:
        return dict(layer.sizes), {}
    sizes: dict[str, int] = {}
    for dim, value in layer.sizes:
        if dim in layer.declared or dim in ("K", "C", "R", "S") or dim == "G":
            sizes[dim] = value
    if layer.type is not LayerType.NGCONV:
        sizes.pop("G", None)
    strides = {"Y": layer.stride_y, "X": layer.stride_x}
    for ref, filt in FILTER_OF.items():
        out = OUTPUT_OF[ref]
        if quirks.stride_ignored_in_output_size and ref not in layer.declared:
            sizes[ref] = window_rows(layer.size(out), layer.size(filt), 1)
            strides[ref] = 1
        else:
            sizes[ref] = layer.size(ref)
        stride = 1 if quirks.stride_ignored_in_output_size else strides[ref]
        sizes[out] = windows(sizes[ref], sizes[filt], stride)
    return sizes, strides


def _to_input_centric(directives: list[LevelDirective], dims: dict[str, int]) -> None:
    """``Y'``/``X'`` directives become ``Y``/``X`` with size + (filter tile) - 1.

    MAESTRO reads the filter tile from the same level's R/S directive (undefined if
    there is none); here the level's filter extent is used in that case.
    """
    present = {d.dim for d in directives}
    for ref, filt in FILTER_OF.items():
        out = OUTPUT_OF[ref]
        if ref in present or out not in present:
            continue
        window = next((d.size for d in directives if d.dim == filt), dims.get(filt, 1))
        i = next(i for i, d in enumerate(directives) if d.dim == out)
        d = directives[i]
        directives[i] = LevelDirective(ref, d.spatial, window_rows(d.size, window, 1), d.offset)


def _apply_stride(
    directives: list[LevelDirective],
    strides: dict[str, int],
    filters: dict[str, int],
    top: bool,
    compact: bool = True,
) -> None:
    """MAESTRO's stride rewriting of ``Y``/``X`` directives whose size covers the filter.

    With filter size R, stride s and map size m >= R: ``out = (m + s - R) // s``,
    size := ``out * min(s, R) + max(R - s, 0)``, offset := ``out * s`` (``out * R``
    below the top level when R < s). Users write the stride-1 mapping, e.g.
    ``TemporalMap(Sz(R),1) Y``, and get (R, s). With ``compact`` off (fixed D13) a
    filter smaller than the stride keeps input coordinates too: size
    ``(out - 1) * s + R``, offset ``out * s``.
    """
    for i, d in enumerate(directives):
        stride = strides.get(d.dim, 1)
        if d.dim not in FILTER_OF or stride == 1:
            continue
        window = filters[FILTER_OF[d.dim]]
        if d.size < window:
            continue
        out = windows(d.size, window, stride)
        if compact:
            size = out * min(stride, window) + max(window - stride, 0)
            offset = out * window if (not top and window < stride) else out * stride
        else:
            size, offset = whole_windows_tile(d.size, window, stride)
        directives[i] = LevelDirective(d.dim, d.spatial, size, offset)


def build_problem(layer: Layer, mapping: Mapping, num_pes: int, quirks: Quirks) -> Problem:
    """Complete the mapping's cluster levels for ``layer`` on ``num_pes`` PEs."""
    units = mapping.units_per_level(num_pes)
    tensors = _tensors(layer, quirks)
    sizes, strides = _dimension_table(layer, quirks)
    conv = layer.type is not LayerType.GEMM
    filters = {f: sizes[f] for f in ("R", "S")} if conv else {}
    for directive in mapping.directives:
        dim = getattr(directive, "dim", None)
        if dim is not None and dim not in sizes and layer.has_dim(dim):
            # e.g. a directive on N for a layer that does not declare N (size 1)
            sizes[dim] = layer.size(dim)
    input_vars = sorted({d for t in tensors if not t.is_output for d in t.dims})
    missing = [d for d in input_vars if d not in sizes]
    if missing:
        raise SpecError.at(
            layer.span, f"layer '{layer.name}' has no dimension {missing[0]} (needed by a tensor)"
        )
    levels: list[tuple[LevelDirective, ...]] = []
    level_dims: list[tuple[tuple[str, int], ...]] = []
    dims = dict(sizes)
    upper: tuple[LevelDirective, ...] = ()
    for index, written in enumerate(mapping.level_directives()):
        directives = [LevelDirective(d.dim, d.spatial, d.size, d.offset) for d in written]
        if conv:
            _to_input_centric(directives, dims)
        present = {d.dim for d in directives}
        for d in upper:
            if d.dim not in present:
                directives.insert(0, LevelDirective(d.dim, False, d.size, d.offset))
                present.add(d.dim)
        for var in input_vars:
            if var not in present and var in dims:
                directives.append(LevelDirective(var, False, dims[var], dims[var]))
                present.add(var)
        if conv:
            _apply_stride(
                directives,
                strides,
                filters,
                top=index == 0,
                compact=quirks.stride_ignored_in_tile_outputs,
            )
        unknown = [d for d in directives if d.dim not in dims]
        if unknown:
            raise SpecError.at(
                layer.span,
                f"layer '{layer.name}': {unknown[0].dim} is not a dimension of this layer",
            )
        levels.append(tuple(directives))
        level_dims.append(tuple(sorted(dims.items())))
        first: dict[str, LevelDirective] = {}
        for d in directives:
            first.setdefault(d.dim, d)
        # MAESTRO keeps only the input/weight dimensions below the top level (and dies
        # on a directive on any other one, e.g. K of a DSCONV); keep those too.
        dims = {
            var: min(first[var].size, size) if var in first else size
            for var, size in dims.items()
            if var not in ("Y'", "X'")
        }
        upper = tuple(directives)
    return Problem(
        layer_name=layer.name,
        conv=conv,
        dims=tuple(sorted(sizes.items())),
        strides=tuple(sorted(strides.items())),
        tensors=tensors,
        levels=tuple(levels),
        level_dims=tuple(level_dims),
        units=units,
        span=layer.span,
    )


def tensor_size(problem: Problem, tensor: Tensor) -> int:
    """Elements of a tensor over the top-level dimension table."""
    sizes = dict(problem.dims)
    return prod(sizes.get(d, 1) for d in tensor.dims)
