"""Checks of meaning (not syntax) on a layer's mapping.

MAESTRO checks some of these and dies (exit 255); others it never checks and then
computes nonsense or crashes. Each problem here is one :class:`Diagnostic` at the
offending directive; all problems of a mapping are reported together.
"""

from __future__ import annotations

from .layer import Layer
from .mapping import ClusterDirective, MapDirective, Mapping
from .source import Diagnostic, SourceSpan, SpecError
from .window import INPUT_OF, WINDOW_OF, window_rows

__all__ = ["validate_mapping"]

_SLIDING = frozenset(WINDOW_OF)


def _family(dim: str) -> str:
    return dim.rstrip("'")


def validate_mapping(layer: Layer, mapping: Mapping) -> tuple[Mapping, tuple[Diagnostic, ...]]:
    """Check ``mapping`` on ``layer``; return the mapping to run and any warnings.

    Raises :class:`SpecError` listing every problem. A dimension mapped twice in one
    cluster level (the older row-stationary files do this, and crash MAESTRO) keeps its
    first directive; the later ones are dropped with a warning.
    """
    problems: list[Diagnostic] = []
    if not mapping.directives:
        raise SpecError.at(mapping.span, f"the Dataflow of layer '{layer.name}' is empty")
    allowed = layer.mappable_dims
    for directive in mapping.directives:
        if not isinstance(directive, MapDirective):
            continue
        if directive.dim not in allowed:
            problems.append(
                Diagnostic(
                    f"{directive.keyword} names dimension '{directive.dim}', which is not a"
                    f" {layer.keyword or layer.type.value} dimension",
                    directive.dim_span or directive.span,
                    hint="dimensions: " + ", ".join(allowed),
                )
            )
        if directive.size <= 0:
            problems.append(
                Diagnostic(
                    f"{directive.keyword} size must be > 0, got {directive.size}",
                    directive.size_span or directive.span,
                )
            )
        if directive.offset <= 0:
            problems.append(
                Diagnostic(
                    f"{directive.keyword} offset must be > 0, got {directive.offset}",
                    directive.offset_span or directive.span,
                )
            )
    if problems:
        raise SpecError(problems)
    mapping, warnings = _drop_duplicates(mapping)
    problems.extend(_check_levels(layer, mapping))
    if problems:
        raise SpecError(problems)
    return mapping, warnings


def _drop_duplicates(mapping: Mapping) -> tuple[Mapping, tuple[Diagnostic, ...]]:
    kept: list[MapDirective | ClusterDirective] = []
    warnings: list[Diagnostic] = []
    seen: dict[str, MapDirective] = {}
    level = 0
    for directive in mapping.directives:
        if isinstance(directive, ClusterDirective):
            seen = {}
            level += 1
            kept.append(directive)
            continue
        family = _family(directive.dim)
        first = seen.get(family)
        if first is None:
            seen[family] = directive
            kept.append(directive)
            continue
        line = f" at line {first.span.line}" if first.span else ""
        warnings.append(
            Diagnostic(
                f"dimension {family} is already mapped in cluster level {level} by {first}{line};"
                f" this {directive.keyword} is ignored",
                directive.span,
                severity="warning",
            )
        )
    if not warnings:
        return mapping, ()
    return Mapping(tuple(kept), mapping.span), tuple(warnings)


def _check_levels(layer: Layer, mapping: Mapping) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    sizes = {dim: layer.size(dim) for dim in layer.dims}
    openers: list[SourceSpan | None] = [mapping.span]
    openers += [d.span for d in mapping.directives if isinstance(d, ClusterDirective)]
    for index, directives in enumerate(mapping.level_directives()):
        where = f"cluster level {index}" if len(openers) > 1 else "the Dataflow"
        spatial = [d for d in directives if d.spatial]
        if not spatial:
            problems.append(
                Diagnostic(
                    f"{where} has no SpatialMap; every level needs one to spread its work"
                    " over its units",
                    openers[index],
                    hint="add e.g. SpatialMap(1,1) K to this level",
                )
            )
        for extra in spatial[2:]:
            problems.append(
                Diagnostic(
                    f"{where} has more than two SpatialMaps (MAESTRO uses at most two per level)",
                    extra.span,
                    hint="move one of them to a new level with a Cluster directive",
                )
            )
        for directive in directives:
            problems.extend(_check_directive(layer, directive, sizes, where))
        sizes = _next_level_sizes(layer, directives, sizes)
    return problems


def _check_directive(
    layer: Layer, directive: MapDirective, sizes: dict[str, int], where: str
) -> list[Diagnostic]:
    dim = directive.dim
    extent = sizes[dim]
    if dim in ("R", "S") and not directive.spatial and directive.size < extent:
        return [
            Diagnostic(
                f"TemporalMap on {dim} must cover the whole filter at this level"
                f" (size {directive.size} < {dim}={extent}); a partial filter tile splits"
                " the sliding window",
                directive.size_span or directive.span,
                hint=f"use TemporalMap(Sz({dim}),Sz({dim})) {dim}, or SpatialMap to split {dim}"
                " across units",
            )
        ]
    if dim not in _SLIDING and directive.offset > directive.size and directive.size < extent:
        return [
            Diagnostic(
                f"{directive.keyword} offset {directive.offset} > size {directive.size} skips"
                f" indices of {dim} in {where}: the mapping never covers them",
                directive.offset_span or directive.span,
                hint=f"use an offset <= {directive.size}",
            )
        ]
    return []


def _next_level_sizes(
    layer: Layer, directives: tuple[MapDirective, ...], sizes: dict[str, int]
) -> dict[str, int]:
    """Dimension extents seen by the next level: each mapped dimension shrinks to its tile."""
    nxt = dict(sizes)
    by_dim = {d.dim: d for d in directives}
    for dim, directive in by_dim.items():
        if dim in ("Y'", "X'"):
            base = INPUT_OF[dim]
            filt = WINDOW_OF[dim]
            window = by_dim[filt].size if filt in by_dim else sizes[filt]
            window = min(window, sizes[filt])
            out = min(directive.size, sizes[dim])
            nxt[dim] = out
            nxt[base] = min(sizes[base], window_rows(out, window, layer.stride(base)))
        else:
            nxt[dim] = min(directive.size, sizes[dim])
    return nxt
