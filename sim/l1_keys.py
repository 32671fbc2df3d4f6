"""The PEs' shared L1 key space: where each element's key sits, which PEs behave alike
(classes simulated by one PE each) and the keys each step's working sets touch (memoised
per geometry key, translated for its other steps).

All PEs' elements share one key space, ``pe * total + tensor offset + flat index``, so a
step's working sets are a few sorted arrays whatever the number of PEs. Kept apart from
:class:`~metronome.sim.l1.L1Residency` (what the L1s hold) because it depends only on the
layer's shapes, dimensions and tiles, not on what the L1s did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .geometry import StepTiles
from .l1_outcome import StepL1

__all__ = ["KeySpace", "WorkingKeys"]


class WorkingKeys:
    """Keys of one step's working sets: sorted (with each key's tensor), and per (tensor,
    tile shape) group the PEs and their keys (one row per PE, in tile order); ``rank``:
    where each group key (groups' rows concatenated) sits among the sorted keys;
    ``origin``: the geometry key whose memoised keys these are, and the flat translation
    per tensor from them (``None``: not known)."""

    def __init__(
        self,
        keys: np.ndarray,
        tensor: np.ndarray,
        groups: list[tuple[int, np.ndarray, tuple[int, ...], np.ndarray]],
        rank: np.ndarray,
        origin: tuple[object, np.ndarray] | None = None,
    ) -> None:
        self.keys = keys
        self.tensor = tensor
        self.groups = groups
        self.rank = rank
        self.origin = origin
        self._outputs: np.ndarray | None = None

    def outputs(self) -> np.ndarray:
        """The output keys, sorted (computed once)."""
        if self._outputs is None:
            self._outputs = self.keys[self.tensor == 2]
        return self._outputs

    def shifted(self, by: np.ndarray) -> WorkingKeys:
        """The same working sets translated by ``by[t]`` flat elements in tensor ``t``
        (order is kept: every key stays inside its PE's and tensor's range)."""
        if not by.any():
            return self
        groups = [(t, ps, shape, rows + by[t]) for t, ps, shape, rows in self.groups]
        origin = None if self.origin is None else (self.origin[0], self.origin[1] + by)
        return WorkingKeys(self.keys + by[self.tensor], self.tensor, groups, self.rank, origin)


class KeySpace:
    """One layer's L1 keys: their layout, the PEs' classes and each step's working keys."""

    def __init__(
        self,
        shapes: tuple[tuple[int, ...], ...],
        n_pes: int,
        *,
        dims: tuple[tuple[str, ...], ...],
        memo: bool,
    ) -> None:
        self.shapes = shapes
        self.n_pes = n_pes
        sizes = [int(np.prod(s)) for s in shapes]
        self.offsets = [0, sizes[0], sizes[0] + sizes[1]]
        self.total = sum(sizes)
        self.strides = [
            np.array([int(np.prod(s[d + 1 :])) for d in range(len(s))], dtype=np.int64)
            for s in shapes
        ]
        self.out_shape = np.array(shapes[2], dtype=np.int64)[:, None]
        self._grids: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        self.dims = dims
        # Per dimension its flat stride in each tensor (0 where the tensor lacks it).
        coef: dict[str, list[int]] = {}
        for t, (names, strides) in enumerate(zip(dims, self.strides, strict=True)):
            for name, k in zip(names, strides.tolist(), strict=True):
                coef.setdefault(name, [0, 0, 0])[t] += k
        self.coef = {name: (k[0], k[1], k[2]) for name, k in coef.items()}
        self.memo = memo
        self._entries: dict[object, tuple[dict[str, int], WorkingKeys]] = {}
        # Each PE's class (its representative, the class's first PE), ``None``: each its own.
        self.rep_of: np.ndarray | None = None
        # Per PE the translation of its outputs from its representative's (coordinates).
        self.out_offset = np.zeros((len(shapes[2]), n_pes), dtype=np.int64)

    def classify(self, first_tiles: Iterable[StepTiles]) -> None:
        """Simulate one PE per class: PEs whose tiles at every step are one fixed
        translation (per tensor) of each other's, with the same shapes and activity, have
        the same L1 behaviour translated (keys keep their order, next touches move with
        them). ``first_tiles``: the tiles of each geometry key's first occurrence (every
        step is one of them translated alike for all PEs). Only with ``memo``."""
        rows: list[np.ndarray] = []
        first: list[np.ndarray] | None = None
        for tiles in first_tiles:
            if first is None:
                first = [tiles.tensors[t][0] for t in range(3)]
            rows.append(tiles.active.astype(np.int64)[None, :])
            for t in range(3):
                lo, hi = tiles.tensors[t]
                rows.extend((hi - lo, lo - first[t]))
        if first is None:
            return
        # Per PE its row; each PE's class is the first PE with an equal row (rows by
        # their bytes: sorting thousands of columns as one record is slow).
        table = np.ascontiguousarray(np.concatenate(rows, axis=0).T)
        first_of: dict[bytes, int] = {}
        rep_of = np.array(
            [first_of.setdefault(row.tobytes(), q) for q, row in enumerate(table)], dtype=np.int64
        )
        if np.all(rep_of == np.arange(self.n_pes)):
            return
        self.rep_of = rep_of
        self.out_offset = first[2] - first[2][:, rep_of]
        self._entries.clear()

    def expand(self, s: StepL1, leaving: bool = True) -> StepL1:
        """``s`` (computed for each class's first PE) for every PE: a class's PEs lack the
        same masks over their tiles and send their representative's outputs translated
        (without ``leaving``, no PE's: the caller reads :meth:`leaving_coords`)."""
        rep_of = self.rep_of
        if rep_of is None:
            return s
        missing: tuple[list[np.ndarray | None], list[np.ndarray | None]] = (
            [None] * self.n_pes,
            [None] * self.n_pes,
        )
        egress: list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None] = [None] * self.n_pes
        for q, r in enumerate(rep_of.tolist()):
            missing[0][q] = s.missing[0][r]
            missing[1][q] = s.missing[1][r]
            e = s.egress[r] if leaving else None
            if e is not None:
                off = self.out_offset[:, q]
                egress[q] = (e[0] + off, e[1] + off, e[2])
        working = s.working[rep_of]
        return StepL1(missing, egress, working, s.next_fits, s.overflow, s.signature, s.leaving)

    def leaving_coords(self, leaving: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every PE's leaving outputs (``leaving``: the simulated PEs' keys, sorted) as
        their PEs (ascending) and coordinates (shape ``(dims, outputs)``): a class's PEs
        send their representative's outputs translated, as :meth:`expand` says."""
        pe = leaving // self.total
        flat = leaving - pe * self.total - self.offsets[2]
        coords = flat[None, :] // self.strides[2][:, None] % self.out_shape
        rep_of = self.rep_of
        if rep_of is None or not leaving.size:
            return pe, coords
        counts = np.bincount(pe, minlength=self.n_pes)
        per = counts[rep_of]
        owner = np.repeat(np.arange(self.n_pes, dtype=np.int64), per)
        at = np.repeat(np.cumsum(counts)[rep_of] - np.cumsum(per), per) + np.arange(owner.size)
        return owner, coords[:, at] + self.out_offset[:, owner]

    def _grid(self, t: int, shape: tuple[int, ...]) -> np.ndarray:
        hit = self._grids.get((t, shape))
        if hit is None:
            idx = np.indices(shape, dtype=np.int64).reshape(len(shape), -1)
            hit = self._grids[t, shape] = (idx * self.strides[t][:, None]).sum(axis=0)
        return hit

    def working_keys(self, tiles: StepTiles) -> WorkingKeys:
        """The keys every active PE touches, sorted (PE, then tensor, then element)."""
        groups: list[tuple[int, np.ndarray, tuple[int, ...], np.ndarray]] = []
        active = tiles.active
        for t in range(3):
            lo, hi = tiles.tensors[t]
            ext = hi - lo
            live = active & np.all(ext > 0, axis=0)
            if self.rep_of is not None:
                live &= self.rep_of == np.arange(self.n_pes)
            if not live.any():
                continue
            pes = np.flatnonzero(live)
            sub = ext[:, pes]
            if np.all(sub == sub[:, :1]):
                shapes, inverse = sub[:, :1].T, np.zeros(pes.size, dtype=np.int64)
            else:
                shapes, inverse = np.unique(sub.T, axis=0, return_inverse=True)
            for g, shape in enumerate(shapes):
                ps = pes[inverse.ravel() == g]
                corner = (lo[:, ps] * self.strides[t][:, None]).sum(axis=0)
                base = ps * self.total + self.offsets[t] + corner
                tile = tuple(int(v) for v in shape)
                groups.append((t, ps, tile, base[:, None] + self._grid(t, tile)[None, :]))
        if not groups:
            empty = np.zeros(0, dtype=np.int64)
            return WorkingKeys(empty, empty, groups, empty)
        flat = np.concatenate([g[3].ravel() for g in groups])
        tensor = np.concatenate([np.full(g[3].size, g[0], dtype=np.int64) for g in groups])
        order = np.argsort(flat, kind="stable")
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        return WorkingKeys(flat[order], tensor[order], groups, rank)

    def keys_of(
        self, key: object, base: dict[str, int], tiles: Callable[[], StepTiles]
    ) -> WorkingKeys:
        """Working keys of a step with geometry ``key`` and translation ``base``: with
        ``memo``, the key's first occurrence translated (tiles are translation-invariant
        per key, :mod:`metronome.sim.schedule`); else computed from ``tiles()``."""
        if not self.memo:
            return self.working_keys(tiles())
        first, keys = self.entry(key, base, tiles)
        return keys.shifted(self.shift(base, first))

    def entry(
        self, key: object, base: dict[str, int], tiles: Callable[[], StepTiles]
    ) -> tuple[dict[str, int], WorkingKeys]:
        """The memoised first occurrence of geometry ``key``: its base and keys."""
        hit = self._entries.get(key)
        if hit is None:
            keys = self.working_keys(tiles())
            keys.origin = (key, np.zeros(3, dtype=np.int64))
            hit = self._entries[key] = (base, keys)
        return hit

    def memoised(self, key: object) -> tuple[dict[str, int], WorkingKeys]:
        """The memoised first occurrence of geometry ``key`` (:meth:`entry` made it)."""
        return self._entries[key]

    def shift(self, base: dict[str, int], first: dict[str, int]) -> np.ndarray:
        """Flat translation per tensor from ``first`` to ``base``."""
        coef, none = self.coef, (0, 0, 0)
        b0 = b1 = b2 = 0
        for d, v in base.items():
            k0, k1, k2 = coef.get(d, none)
            b0, b1, b2 = b0 + v * k0, b1 + v * k1, b2 + v * k2
        for d, v in first.items():
            k0, k1, k2 = coef.get(d, none)
            b0, b1, b2 = b0 - v * k0, b1 - v * k1, b2 - v * k2
        return np.array((b0, b1, b2), dtype=np.int64)

    @property
    def span(self) -> int:
        """One more than the largest key."""
        return self.n_pes * self.total

    def shift_of(self, delta: dict[str, int]) -> np.ndarray:
        """Flat translation per tensor of one repetition moving by ``delta``."""
        return self.shift(delta, {})

    def tensor(self, keys: np.ndarray) -> np.ndarray:
        """Each key's tensor (0 input, 1 weight, 2 output)."""
        return np.searchsorted(np.array(self.offsets[1:]), keys % self.total, side="right")
