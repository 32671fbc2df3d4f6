"""Where in the user's mapping an explanation applies: the directives behind a cause.

A cause found by re-running an engine (a MAESTRO bug switched on, an analytic assumption
switched off) says *what* makes a difference; these rules say *which directives* of the
layer's mapping trigger it, with the file position the user wrote them at.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from metronome.spec.layer import Layer
from metronome.spec.mapping import ClusterDirective, MapDirective, Mapping
from metronome.spec.window import WINDOW_OF, windows

__all__ = ["describe_sites", "sites"]


def _map_directives(mapping: Mapping) -> list[MapDirective]:
    return [d for d in mapping.directives if isinstance(d, MapDirective)]


def _first_spatial_per_level(layer: Layer, mapping: Mapping) -> list[MapDirective]:
    return [
        next(d for d in level if d.spatial)
        for level in mapping.level_directives()
        if any(d.spatial for d in level)
    ]


def _spatial_sliding(layer: Layer, mapping: Mapping) -> list[MapDirective]:
    return [d for d in _map_directives(mapping) if d.spatial and d.dim in WINDOW_OF]


def _strided_sliding(layer: Layer, mapping: Mapping) -> list[MapDirective]:
    return [
        d
        for d in _map_directives(mapping)
        if d.dim.rstrip("'") in ("Y", "X") and layer.stride(d.dim.rstrip("'")) > 1
    ]


def _several_windows(layer: Layer, mapping: Mapping) -> list[MapDirective]:
    """Strided Y/X tiles that hold more than one window, or a filter below the stride."""
    out = []
    for d in _strided_sliding(layer, mapping):
        if d.dim not in ("Y", "X"):
            continue
        window, stride = layer.size(WINDOW_OF[d.dim]), layer.stride(d.dim)
        if windows(d.size, window, stride) > 1 or window < stride:
            out.append(d)
    return out


def _uneven(layer: Layer, mapping: Mapping) -> list[MapDirective]:
    """Temporal maps whose last tile is partial (an edge step)."""
    out = []
    for d in _map_directives(mapping):
        if d.spatial or not layer.has_dim(d.dim):
            continue
        extent = layer.size(d.dim)
        if extent > d.size and (extent - d.size) % d.offset:
            out.append(d)
    return out


def _oversized(layer: Layer, mapping: Mapping) -> list[MapDirective]:
    return [
        d for d in _map_directives(mapping) if layer.has_dim(d.dim) and d.size > layer.size(d.dim)
    ]


def _gapped(layer: Layer, mapping: Mapping) -> list[MapDirective]:
    return [d for d in _map_directives(mapping) if d.offset > d.size] + [
        d
        for d in _strided_sliding(layer, mapping)
        if d.dim in ("Y", "X") and layer.size(WINDOW_OF[d.dim]) < layer.stride(d.dim)
    ]


def _clusters(layer: Layer, mapping: Mapping) -> list[ClusterDirective]:
    return [d for d in mapping.directives if isinstance(d, ClusterDirective)]


RULES: dict[str, Callable[[Layer, Mapping], list[MapDirective] | list[ClusterDirective]]] = {
    "D1": _spatial_sliding,
    "D7": _uneven,
    "D8": _oversized,
    "D9": _first_spatial_per_level,
    "D11": _gapped,
    "D12": _first_spatial_per_level,
    "D13": _several_windows,
    "nested_fill_serialised": _clusters,
    "nested_noc_charged": _clusters,
}
"""Cause (MAESTRO deviation or analytic assumption) -> the directives that trigger it."""


def sites(cause: str, layer: Layer, mapping: Mapping) -> list[MapDirective | ClusterDirective]:
    """The directives of ``mapping`` behind ``cause`` (empty when none is specific)."""
    rule = RULES.get(cause)
    return list(dict.fromkeys(rule(layer, mapping))) if rule else []


def describe_sites(cause: str, layer: Layer, mapping: Mapping) -> str:
    """`` (at TemporalMap(5,4) Y, f.m:7:5; ...)`` or ``""``."""
    found = sites(cause, layer, mapping)
    if not found:
        return ""
    named = [
        f"{d} at {os.path.normpath(d.span.path)}:{d.span.line}:{d.span.col}" if d.span else str(d)
        for d in found[:3]
    ]
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return f" (from {'; '.join(named)}{more})"
