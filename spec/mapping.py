"""Data-centric mappings: TemporalMap, SpatialMap and Cluster directives.

A :class:`Mapping` is the ordered directive list of one layer, exactly as the user
wrote it (constants and ``Sz(D)`` resolved). Directive order is loop order, outermost
first; each :class:`ClusterDirective` closes one cluster level and opens the next.
What a directive list *does* (tiles, steps, reuse) is derived by each engine on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from .source import SourceSpan, SpecError

__all__ = [
    "ClusterDirective",
    "ClusterLevel",
    "Directive",
    "MapDirective",
    "Mapping",
]


@dataclass(frozen=True, slots=True)
class MapDirective:
    """``TemporalMap(size, offset) dim`` or ``SpatialMap(size, offset) dim``.

    Temporal: at each step of the level the tile of ``dim`` has ``size`` indices and
    advances by ``offset``. Spatial: unit ``i`` of the level gets the tile starting at
    ``base + i * offset``; when the units run out the map folds over time.
    """

    spatial: bool
    dim: str
    size: int
    offset: int
    span: SourceSpan | None = field(default=None, compare=False)
    size_span: SourceSpan | None = field(default=None, compare=False)
    offset_span: SourceSpan | None = field(default=None, compare=False)
    dim_span: SourceSpan | None = field(default=None, compare=False)

    @property
    def keyword(self) -> str:
        """The directive's name as written in MAESTRO files."""
        return "SpatialMap" if self.spatial else "TemporalMap"

    def __str__(self) -> str:
        return f"{self.keyword}({self.size},{self.offset}) {self.dim}"


@dataclass(frozen=True, slots=True)
class ClusterDirective:
    """``Cluster(size, P)``: the levels below work on groups of ``size`` sub-units."""

    size: int
    kind: str = "P"
    span: SourceSpan | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"Cluster({self.size},{self.kind})"


Directive = MapDirective | ClusterDirective


@dataclass(frozen=True, slots=True)
class ClusterLevel:
    """The directives of one cluster level (outermost level first) and its unit count."""

    index: int
    directives: tuple[MapDirective, ...]
    units: int

    @property
    def spatial(self) -> tuple[MapDirective, ...]:
        """The level's SpatialMap directives (one or two in a valid mapping)."""
        return tuple(d for d in self.directives if d.spatial)


@dataclass(frozen=True, slots=True)
class Mapping:
    """The ordered directives of one layer's dataflow."""

    directives: tuple[Directive, ...]
    span: SourceSpan | None = field(default=None, compare=False)

    @property
    def cluster_sizes(self) -> tuple[int, ...]:
        """Sizes of the Cluster directives, outermost first."""
        return tuple(d.size for d in self.directives if isinstance(d, ClusterDirective))

    def level_directives(self) -> tuple[tuple[MapDirective, ...], ...]:
        """Map directives grouped by cluster level, outermost level first."""
        levels: list[list[MapDirective]] = [[]]
        for directive in self.directives:
            if isinstance(directive, ClusterDirective):
                levels.append([])
            else:
                levels[-1].append(directive)
        return tuple(tuple(level) for level in levels)

    def units_per_level(self, num_pes: int) -> tuple[int, ...]:
        """Units of each level for ``num_pes`` PEs.

        With Cluster sizes n1..nk the top level has ``num_pes // (n1*...*nk)`` units
        (clusters), level j has n_j units and the innermost level's units are PEs.
        Leftover PEs are unused. Raises :class:`SpecError` when the clusters do not fit.
        """
        sizes = self.cluster_sizes
        needed = prod(sizes)
        if needed > num_pes:
            clusters = [d for d in self.directives if isinstance(d, ClusterDirective)]
            product = " x ".join(map(str, sizes)) + (f" = {needed}" if len(sizes) > 1 else "")
            raise SpecError.at(
                clusters[0].span if clusters else self.span,
                f"Cluster size{'s' if len(sizes) > 1 else ''} {product} need"
                f"{'' if len(sizes) > 1 else 's'} {needed} PEs, but the hardware has {num_pes}",
                hint="reduce the Cluster sizes or raise num_pes",
            )
        return (num_pes // needed, *sizes)

    def levels(self, num_pes: int) -> tuple[ClusterLevel, ...]:
        """The cluster levels with their unit counts for ``num_pes`` PEs."""
        units = self.units_per_level(num_pes)
        return tuple(
            ClusterLevel(index=i, directives=dirs, units=units[i])
            for i, dirs in enumerate(self.level_directives())
        )

    def pes_used(self, num_pes: int) -> int:
        """PEs the mapping can occupy (the rest are left idle)."""
        return prod(self.units_per_level(num_pes))

    def __str__(self) -> str:
        return "; ".join(str(d) for d in self.directives)
