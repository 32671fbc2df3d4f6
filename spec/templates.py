"""Dataflow templates: the styles of MAESTRO's shipped mappings as functions of a layer
and the hardware, so any layer (imported or hand-written) gets a valid mapping that fits.

Each style is the directive list MAESTRO ships in ``data/mapping/*_{style}.m`` (or the
seed paper's Table-2 rebuilds for ``nvdla`` and ``shidiannao``), with its sizes written
as functions of the layer (``R``, ``S``, strides, type) and the hardware (PEs, L1):

* cluster sizes never exceed the PEs (``kcp_ws``/``ckp_ws`` use 64-PE clusters,
  ``yxp_os`` 8, ``nvdla``/``shidiannao`` the side of the largest square array);
* windows step by the layer's stride (the shipped files step by 1 on strided layers,
  so every other step or PE holds no whole window);
* ``rs`` clusters ``S`` PEs, one per filter column (the shipped files always use 3);
* depthwise layers drop ``K``, grouped layers walk ``G`` outermost, batches walk ``N``;
  GEMM layers get the style's GEMM form (see :data:`GEMM_FORMS`);
* L1: a PE holds twice (double buffering) its input, weight and output tiles; ``rs``
  halves its channel tiles until they fit, the other styles' PE tiles are one window
  already (see :func:`l1_footprint_elems`).

:func:`template` returns a validated :class:`~metronome.spec.mapping.Mapping`; a layer that cannot
fit (L1 smaller than one window) is a :class:`~metronome.spec.source.SpecError`.
"""

from __future__ import annotations

from collections.abc import Callable
from math import isqrt, prod

from .hardware import UNBOUNDED, Hardware
from .layer import Layer, LayerType
from .mapping import ClusterDirective, Directive, MapDirective, Mapping
from .source import SpecError
from .validate import _next_level_sizes, validate_mapping
from .window import SLIDING_PAIRS, window_rows, windows

__all__ = ["GEMM_FORMS", "STYLES", "l1_footprint_elems", "template"]

STYLES: tuple[str, ...] = (
    "kcp_ws",
    "xp_ws",
    "yxp_os",
    "rs",
    "nlr",
    "ckp_ws",
    "nvdla",
    "shidiannao",
)
"""Every style :func:`template` knows, MAESTRO's shipped ones first."""

GEMM_FORMS: dict[str, str] = {
    "kcp_ws": "N across clusters, K across the PEs of a cluster (weights stay)",
    "ckp_ws": "K across clusters, N across the PEs of a cluster (weights stay)",
    "nvdla": "K across clusters, N across the PEs of a cluster (weights stay)",
    "xp_ws": "M across PEs, N and K walked outside it (weights stay)",
    "yxp_os": "M across PEs, K walked innermost (outputs stay)",
    "shidiannao": "M across PEs, K walked innermost (outputs stay)",
    "rs": "M across PEs with K/N tiles of the rs sizes (a GEMM has no filter rows)",
    "nlr": "K across PEs, nothing stays (no local reuse)",
}
"""What each style becomes on a GEMM layer ``(M x K) . (K x N)``."""


def _t(size: int, offset: int, dim: str) -> MapDirective:
    return MapDirective(False, dim, size, offset)


def _s(size: int, offset: int, dim: str) -> MapDirective:
    return MapDirective(True, dim, size, offset)


def _conv_prefix(layer: Layer) -> list[Directive]:
    """Batch and group loops, outermost (only when the layer has more than one)."""
    out: list[Directive] = []
    if layer.size("N") > 1:
        out.append(_t(1, 1, "N"))
    if layer.type is LayerType.NGCONV:
        out.append(_t(1, 1, "G"))
    return out


def _gemm_two_level(outer: str, inner: str, p: int) -> list[Directive]:
    """``outer`` one index per cluster, ``inner`` one per PE of a cluster of ``p``."""
    return [
        _s(1, 1, outer),
        _t(p, p, inner),
        _t(1, 1, "M"),
        ClusterDirective(p),
        _s(1, 1, inner),
        _t(1, 1, "M"),
    ]


def _window(layer: Layer) -> tuple[int, int, int, int]:
    return layer.size("R"), layer.size("S"), layer.stride_y, layer.stride_x


def _kcp_ws(layer: Layer, hw: Hardware, knob: int) -> list[Directive]:
    p = min(64, hw.num_pes)
    if not layer.type.is_conv:
        return _gemm_two_level("N", "K", p)
    r, s, sy, sx = _window(layer)
    walk = [_t(r, sy, "Y"), _t(s, sx, "X"), _t(r, r, "R"), _t(s, s, "S")]
    if layer.type is LayerType.DSCONV:
        return [*_conv_prefix(layer), _s(1, 1, "C"), *walk]
    return [
        *_conv_prefix(layer),
        _s(1, 1, "K"),
        _t(p, p, "C"),
        _t(r, r, "R"),
        _t(s, s, "S"),
        _t(r, sy, "Y"),
        _t(s, sx, "X"),
        ClusterDirective(p),
        _s(1, 1, "C"),
        *walk,
    ]


def _ckp_ws(layer: Layer, p: int) -> list[Directive]:
    if not layer.type.is_conv:
        return _gemm_two_level("K", "N", p)
    rows = [_t(1, 1, "Y'"), _t(1, 1, "X'")]
    filt = [_t(layer.size("R"), layer.size("R"), "R"), _t(layer.size("S"), layer.size("S"), "S")]
    if layer.type is LayerType.DSCONV:
        return [*_conv_prefix(layer), _s(1, 1, "C"), *filt, *rows]
    return [
        *_conv_prefix(layer),
        _s(1, 1, "C"),
        _t(p, p, "K"),
        *filt,
        *rows,
        ClusterDirective(p),
        _s(1, 1, "K"),
        *filt,
    ]


def _xp_ws(layer: Layer, hw: Hardware, knob: int) -> list[Directive]:
    if not layer.type.is_conv:
        return [_t(1, 1, "N"), _t(1, 1, "K"), _s(1, 1, "M")]
    r, s, sy, sx = _window(layer)
    channels = [_t(1, 1, "C")] if layer.type is LayerType.DSCONV else [_t(1, 1, "K"), _t(1, 1, "C")]
    return [
        *_conv_prefix(layer),
        *channels,
        _t(r, sy, "Y"),
        _s(s, sx, "X"),
        _t(r, r, "R"),
        _t(s, s, "S"),
    ]


def _yxp_os(layer: Layer, c: int, *, shidiannao: bool) -> list[Directive]:
    if not layer.type.is_conv:
        return [_t(1, 1, "N"), _s(1, 1, "M"), _t(1, 1, "K")]
    r, s, sy, sx = _window(layer)
    channels = [_t(1, 1, "C")] if layer.type is LayerType.DSCONV else [_t(1, 1, "K"), _t(1, 1, "C")]
    # A cluster's X tile holds the windows of c adjacent output columns.
    tile_x = (c - 1) * sx + s
    head = [*_conv_prefix(layer), *channels, _s(r, sy, "Y"), _t(tile_x, c * sx, "X")]
    filt = [_t(r, r, "R"), _t(s, s, "S")]
    if shidiannao:
        return [*head, *filt, ClusterDirective(c), _s(s, sx, "X"), _t(s, s, "S")]
    return [*head, ClusterDirective(c), _s(s, sx, "X"), *filt]


def _rs(layer: Layer, hw: Hardware, knob: int) -> list[Directive]:
    k_tile, c_tile = max(1, knob // 2), knob
    if not layer.type.is_conv:
        return [_t(k_tile, k_tile, "N"), _t(c_tile, c_tile, "K"), _s(1, 1, "M")]
    r, s, sy, sx = _window(layer)
    q = min(s, hw.num_pes)
    channels = [_t(c_tile, c_tile, "C")]
    if layer.type is not LayerType.DSCONV:
        channels.insert(0, _t(k_tile, k_tile, "K"))
    return [
        *_conv_prefix(layer),
        *channels,
        _t(r, r, "R"),
        _s(r, sy, "Y"),
        _t(s, sx, "X"),
        ClusterDirective(q),
        _s(1, 1, "X"),
        _s(1, 1, "S"),
    ]


def _nlr(layer: Layer, hw: Hardware, knob: int) -> list[Directive]:
    if not layer.type.is_conv:
        return [_t(1, 1, "N"), _t(1, 1, "M"), _s(1, 1, "K")]
    r, s, sy, sx = _window(layer)
    channels = [] if layer.type is LayerType.DSCONV else [_t(1, 1, "K")]
    return [
        *_conv_prefix(layer),
        *channels,
        _t(r, sy, "Y"),
        _t(s, sx, "X"),
        _t(r, r, "R"),
        _t(s, s, "S"),
        _s(1, 1, "C"),
    ]


def _square_side(num_pes: int) -> int:
    return max(1, isqrt(num_pes))


_BUILDERS: dict[str, Callable[[Layer, Hardware, int], list[Directive]]] = {
    "kcp_ws": _kcp_ws,
    "xp_ws": _xp_ws,
    "yxp_os": lambda layer, hw, _k: _yxp_os(layer, min(8, hw.num_pes), shidiannao=False),
    "rs": _rs,
    "nlr": _nlr,
    "ckp_ws": lambda layer, hw, _k: _ckp_ws(layer, min(64, hw.num_pes)),
    "nvdla": lambda layer, hw, _k: _ckp_ws(layer, _square_side(hw.num_pes)),
    "shidiannao": lambda layer, hw, _k: _yxp_os(layer, _square_side(hw.num_pes), shidiannao=True),
}

_KNOBS: dict[str, tuple[int, ...]] = {"rs": (4, 2, 1)}
"""Per-style tile sizes tried in order until the mapping fits L1 (``rs``: the C tile;
the K tile is half of it, as in MAESTRO's K 2 / C 4)."""


def l1_footprint_elems(layer: Layer, mapping: Mapping) -> int:
    """L1 elements one PE needs: twice (double buffering) the input, weight and output
    tiles of the innermost cluster level. Never less than the simulator's need (a step's
    tiles plus the next step's input and weight tiles); the analytic model's
    ``l1_size_req_elems`` counts an output tile as its input window's extent, so it
    reports more for windows larger than 1x1 (294 for this 198 on a 7x7 ``kcp_ws``)."""
    sizes = {dim: layer.size(dim) for dim in layer.dims}
    for directives in mapping.level_directives():
        sizes = _next_level_sizes(layer, directives, sizes)
        mapped = {d.dim for d in directives}
        for in_dim, filt, out_dim in SLIDING_PAIRS:
            if layer.type.is_conv and in_dim in mapped and out_dim not in mapped:
                # An input tile holds the windows that fit in it.
                fit = windows(sizes[in_dim], sizes[filt], layer.stride(in_dim))
                sizes[out_dim] = min(sizes[out_dim], max(1, fit))
    if layer.type.is_conv:
        # The innermost input tile is what its output tile's windows read.
        for in_dim, filt, out_dim in SLIDING_PAIRS:
            rows = window_rows(sizes[out_dim], sizes[filt], layer.stride(in_dim))
            sizes[in_dim] = min(sizes[in_dim], rows)
    total = 0
    for spec in layer.tensors:
        total += prod(sizes[d] for d in spec.dims)
    return 2 * total


def template(style: str, layer: Layer, hardware: Hardware) -> Mapping:
    """The ``style`` mapping of ``layer`` on ``hardware``, validated and fitted to L1."""
    if style not in _BUILDERS:
        raise SpecError.at(
            None, f"unknown dataflow style '{style}'", hint="one of " + ", ".join(STYLES)
        )
    knobs = _KNOBS.get(style, (0,))
    need = 0
    for knob in knobs:
        directives = _BUILDERS[style](layer, hardware, knob)
        mapping, _warnings = validate_mapping(layer, Mapping(tuple(directives)))
        mapping.units_per_level(hardware.num_pes)
        need = l1_footprint_elems(layer, mapping)
        if hardware.l1_size_elems >= UNBOUNDED or need <= hardware.l1_size_elems:
            return mapping
    raise SpecError.at(
        layer.span,
        f"the {style} mapping of layer '{layer.name}' needs {need} L1 elements per PE"
        f" (its smallest tiles, double-buffered); the hardware has {hardware.l1_size_elems}",
        hint="raise the L1 size or choose another --dataflow",
    )
