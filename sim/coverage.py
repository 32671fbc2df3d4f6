"""Coverage of the iteration space: MACs performed, performed more than once, never.

Every PE-step performs a hyper-rectangle of MACs. The multiset of those rectangles is a
Cartesian product over *groups* of coupled dimensions: ``Y``/``R``/``Y'`` (sliding
window), ``X``/``S``/``X'``, and dimensions that share one level's unit index through two
SpatialMaps; every other dimension is its own group. So the coverage count of a point is
the product of per-group counts, and unique / total counts multiply across groups. Each
group is executed on its own (only its directives), which is exact and cheap at full size.
:func:`brute_force` checks this on small layers by painting every rectangle.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from metronome.spec.layer import Layer
from metronome.spec.mapping import MapDirective, Mapping

from .geometry import Geometry
from .loopnest import LoopNest, held_dims

__all__ = ["Coverage", "brute_force", "coverage"]

_GROUP_OF = {"Y": "Y", "R": "Y", "Y'": "Y", "X": "X", "S": "X", "X'": "X"}


@dataclass(frozen=True, slots=True)
class Coverage:
    """MACs performed (with repeats), distinct MACs performed, and the layer's MACs."""

    performed: int
    unique: int
    layer_macs: int

    @property
    def redundant(self) -> int:
        """Executions beyond the first of a MAC."""
        return self.performed - self.unique

    @property
    def missing(self) -> int:
        """MACs of the layer never performed."""
        return self.layer_macs - self.unique


def _groups(layer: Layer, mapping: Mapping) -> list[set[str]]:
    parent = {d: _GROUP_OF.get(d, d) for d in (*held_dims(layer), *layer.loop_dims)}

    def find(d: str) -> str:
        while parent[d] != d:
            d = parent[d]
        return d

    for d in list(parent):
        parent.setdefault(parent[d], parent[d])
    for level in mapping.level_directives():
        spatial = [_GROUP_OF.get(d.dim, d.dim) for d in level if d.spatial]
        for other in spatial[1:]:
            parent[find(other)] = find(spatial[0])
    groups: dict[str, set[str]] = {}
    for d in parent:
        groups.setdefault(find(d), set()).add(d)
    return [groups[k] for k in sorted(groups)]


def _restricted(mapping: Mapping, group: set[str]) -> Mapping:
    """The mapping with only the group's directives (Clusters kept)."""
    kept = tuple(d for d in mapping.directives if not isinstance(d, MapDirective) or d.dim in group)
    return Mapping(kept)


def coverage(layer: Layer, mapping: Mapping, num_pes: int) -> Coverage:
    """Exact coverage, computed per group of coupled dimensions."""
    performed = unique = 1
    for group in _groups(layer, mapping):
        nest = LoopNest(layer, _restricted(mapping, group), num_pes)
        geometry = Geometry(layer, nest.dims)
        loop = [i for i, d in enumerate(layer.loop_dims) if d in group]
        shape = tuple(layer.size(layer.loop_dims[i]) for i in loop)
        counts = np.zeros(shape, dtype=np.int64)
        # Units of a level where the group has no SpatialMap belong to another group.
        owns = [
            any(d.spatial and d.dim in group for d in level) for level in mapping.level_directives()
        ]
        unit = np.arange(nest.num_pes)
        counted = np.ones(nest.num_pes, dtype=bool)
        for lvl in range(len(nest.units) - 1, -1, -1):
            if not owns[lvl]:
                counted &= unit % nest.units[lvl] == 0
            unit //= nest.units[lvl]
        for positions, inner, _n, schedules in nest.iter_steps():
            tiles = geometry.tiles(nest.pe_ranges(positions, inner, schedules))
            for p in np.flatnonzero(tiles.active & counted & (tiles.macs > 0)):
                box = tuple(slice(int(tiles.mac_lo[i, p]), int(tiles.mac_hi[i, p])) for i in loop)
                counts[box] += 1
        performed *= int(counts.sum())
        unique *= int((counts > 0).sum())
    return Coverage(performed, unique, layer.macs)


def brute_force(layer: Layer, mapping: Mapping, num_pes: int) -> Coverage:
    """Coverage by painting every PE-step's rectangle (small layers only)."""
    nest = LoopNest(layer, mapping, num_pes)
    geometry = Geometry(layer, nest.dims)
    counts = np.zeros(tuple(layer.size(d) for d in layer.loop_dims), dtype=np.int64)
    for positions, inner, _n, schedules in nest.iter_steps():
        tiles = geometry.tiles(nest.pe_ranges(positions, inner, schedules))
        for p in np.flatnonzero(tiles.macs):
            box = tuple(
                slice(int(a), int(b))
                for a, b in zip(tiles.mac_lo[:, p], tiles.mac_hi[:, p], strict=True)
            )
            counts[box] += 1
    return Coverage(int(counts.sum()), int((counts > 0).sum()), prod(counts.shape))
