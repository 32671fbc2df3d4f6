"""Per-level tile sizes: what one unit holds of each dimension, in steady and edge steps.

For a directive on dimension D with map size m, offset o over N indices (the level's
*static* dimensions, fixed by the cluster analysis):

* ``mapped(D) = m``; ``unique(D) = min(m, o)``, or 0 when a TemporalMap covers N;
* ``s = max(0, (N - m) // o)`` steady steps; ``edge = s*o + m < N or m > N``;
* edge size ``e = N - (s+1)*o`` (N when negative); ``mapped_edge(D) = e if edge else m``;
  ``unique_edge(D) = max(o - (m - e), 0)``;
* output coordinates of a sliding pair: ``mapped(Y') = mapped(Y) - mapped(R) + 1``,
  ``unique(Y') = min(o_Y, m_Y)``, and the same with edge sizes.

MAESTRO computes ``e = N - o`` when the tile is larger than the whole dimension
(deviation D8) and keeps edge tiles that would start past the end and negative output
extents (D11); the fixed model clips such a tile to N, has no edge tile past the end
(the last tile is a full one) and counts no outputs for a tile narrower than the filter.
"""

from __future__ import annotations

from dataclasses import dataclass

from metronome.spec.window import FILTER_OF, OUTPUT_OF, windows

from .cint import cdiv
from .problem import LevelDirective

__all__ = ["Tiles", "level_tiles"]


@dataclass(frozen=True, slots=True)
class Tiles:
    """Tile extents of one cluster level, keyed by dimension (incl. ``Y'``/``X'``).

    The dicts are built once and never mutated.
    """

    mapped: dict[str, int]
    unique: dict[str, int]
    mapped_edge: dict[str, int]
    unique_edge: dict[str, int]


def level_tiles(
    directives: tuple[LevelDirective, ...],
    dims: dict[str, int],
    *,
    clip_oversized: bool,
    no_edge_past_the_end: bool = False,
    strides: dict[str, int] | None = None,
) -> Tiles:
    """Tile tables of a level with static dimensions ``dims``.

    ``no_edge_past_the_end`` (fixed D11): with gaps between tiles the "edge" tile would
    start at or past N; there is no such tile, the last one is a full one.
    ``strides`` (fixed D13): a strided sliding tile of m rows over a filter of R rows
    (in input coordinates) holds ``(m - R) // s + 1`` windows, not ``m - R + 1``.
    """
    mapped: dict[str, int] = {}
    unique: dict[str, int] = {}
    mapped_edge: dict[str, int] = {}
    unique_edge: dict[str, int] = {}
    for d in directives:
        size, ofs, extent = d.size, d.offset, dims[d.dim]
        steady = max(0, cdiv(extent - size, ofs))
        has_edge = steady * ofs + size < extent or size > extent
        mapped[d.dim] = size
        unique[d.dim] = 0 if (not d.spatial and extent <= size) else min(size, ofs)
        edge = extent - (steady + 1) * ofs
        if clip_oversized and size > extent:
            edge = extent
        elif no_edge_past_the_end and edge <= 0:
            edge = size
        elif edge < 0:
            edge = extent
        mapped_edge[d.dim] = edge if has_edge else size
        unique_edge[d.dim] = max(ofs - (size - edge), 0)
    # An input tile narrower than the filter holds no window: MAESTRO counts a negative
    # number of outputs (D11); fixed, none.
    low = 0 if no_edge_past_the_end else -(2**63)
    for d in directives:
        if d.dim in FILTER_OF:
            out, filt = OUTPUT_OF[d.dim], FILTER_OF[d.dim]
            window, window_edge = mapped.get(filt, 0), mapped_edge.get(filt, 0)
            stride = strides.get(d.dim, 1) if strides else 1
            # Only tiles that hold a whole window were rewritten for the stride.
            if stride > 1 and mapped[d.dim] >= window:
                mapped[out] = max(0, windows(mapped[d.dim], window, stride))
                mapped_edge[out] = max(0, windows(mapped_edge[d.dim], window_edge, stride))
                unique[out] = min(d.offset // stride, mapped[out])
                unique_edge[out] = min(d.offset // stride, mapped_edge[out])
            else:
                mapped[out] = max(low, windows(mapped[d.dim], window, 1))
                unique[out] = min(d.offset, d.size)
                mapped_edge[out] = max(low, windows(mapped_edge[d.dim], window_edge, 1))
                unique_edge[out] = min(d.offset, mapped_edge[out])
    return Tiles(mapped, unique, mapped_edge, unique_edge)
