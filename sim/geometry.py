"""What a PE's held ranges mean: its MAC rectangle in the iteration space and its tiles.

Sliding-window rule: a PE holding input rows ``[a, a+m)`` and filter rows ``[b, b+n)``
computes exactly the output rows ``y'`` whose restricted window fits,
``y'*s + b >= a`` and ``y'*s + b + n - 1 <= a + m - 1`` (clipped to ``[0, Y')``), each
with every filter row in ``[b, b+n)``. The same holds for ``X``/``S``/``X'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metronome.spec.layer import Layer
from metronome.spec.window import SLIDING_PAIRS, outputs_within

from .loopnest import PERanges

__all__ = ["Geometry", "StepTiles"]

_SLIDING = {out: (in_dim, filt) for in_dim, filt, out in SLIDING_PAIRS}


@dataclass(frozen=True, slots=True)
class StepTiles:
    """Per-PE rectangles of one step: ``mac_lo``/``mac_hi`` over the loop dims, and per
    tensor ``(lo, hi)`` over its dims, each of shape ``(n_dims, n_pes)``; empty where a PE
    is idle. ``macs`` is the MAC count per PE."""

    mac_lo: np.ndarray
    mac_hi: np.ndarray
    macs: np.ndarray
    tensors: tuple[tuple[np.ndarray, np.ndarray], ...]
    active: np.ndarray


class Geometry:
    """Turns held ranges into MAC rectangles and tensor tiles for one layer."""

    def __init__(self, layer: Layer, dims: tuple[str, ...]) -> None:
        self.layer = layer
        self.dims = dims
        self.index = {d: i for i, d in enumerate(dims)}
        self.loop_dims = layer.loop_dims
        self.tensor_dims = tuple(t.dims for t in layer.tensors)
        self.tensor_sizes = tuple(tuple(layer.size(d) for d in dims) for dims in self.tensor_dims)

    def _outputs(self, r: PERanges, out_dim: str) -> tuple[np.ndarray, np.ndarray]:
        in_dim, f_dim = _SLIDING[out_dim]
        k, f = self.index[in_dim], self.index[f_dim]
        s = self.layer.stride(in_dim)
        a, m = r.lo[k], r.hi[k] - r.lo[k]
        b, n = r.lo[f], r.hi[f] - r.lo[f]
        first, last = outputs_within(a, m, b, n, s)
        first, last = np.maximum(0, first), np.minimum(self.layer.size(out_dim) - 1, last)
        ok = (n > 0) & (m > 0)
        hi = np.where(ok, np.maximum(first, last + 1), first)
        return first, hi

    def moved(self, tiles: StepTiles, by: dict[str, int]) -> StepTiles:
        """``tiles`` translated by ``by`` (per dimension; absent ones 0): a step's tiles
        from those of the first step with its geometry key, which are one translation of
        each other's on the active PEs (:mod:`metronome.sim.schedule`). An idle PE's
        ranges are empty either way, but where they sit need not translate (ranges past
        a layer's edge do, zero ranges do not): they are moved with the rest."""
        mac = np.array([by.get(d, 0) for d in self.loop_dims], dtype=np.int64)[:, None]
        tensors = []
        for (lo, hi), dims in zip(tiles.tensors, self.tensor_dims, strict=True):
            off = np.array([by.get(d, 0) for d in dims], dtype=np.int64)[:, None]
            tensors.append((lo + off, hi + off))
        return StepTiles(
            tiles.mac_lo + mac, tiles.mac_hi + mac, tiles.macs, tuple(tensors), tiles.active
        )

    def tiles(self, r: PERanges) -> StepTiles:
        """MAC rectangles, MAC counts and tensor tiles of every PE."""
        derived = {d: self._outputs(r, d) for d in _SLIDING if d in self.loop_dims}
        n_pes = r.lo.shape[1]
        mac_lo = np.zeros((len(self.loop_dims), n_pes), dtype=np.int64)
        mac_hi = np.zeros_like(mac_lo)
        for i, d in enumerate(self.loop_dims):
            if d in derived:
                mac_lo[i], mac_hi[i] = derived[d]
            else:
                mac_lo[i], mac_hi[i] = r.lo[self.index[d]], r.hi[self.index[d]]
        # A PE whose window fits no output computes nothing with its filter rows.
        extents = np.maximum(mac_hi - mac_lo, 0)
        macs = np.where(r.active, np.prod(extents, axis=0), 0)
        empty = macs == 0
        mac_hi = np.where(empty[None, :], mac_lo, mac_hi)
        tensors = []
        for dims in self.tensor_dims:
            t_lo = np.zeros((len(dims), n_pes), dtype=np.int64)
            t_hi = np.zeros_like(t_lo)
            for i, d in enumerate(dims):
                if d in derived:
                    t_lo[i], t_hi[i] = derived[d]
                else:
                    t_lo[i], t_hi[i] = r.lo[self.index[d]], r.hi[self.index[d]]
            t_hi = np.where(r.active[None, :], t_hi, t_lo)
            tensors.append((t_lo, t_hi))
        return StepTiles(mac_lo, mac_hi, macs.astype(np.int64), tuple(tensors), r.active)
