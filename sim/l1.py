"""Each PE's L1 as an element-exact cache: what it holds, misses, evicts and writes back.

Step ``t`` of PE ``p`` touches its working set: its input, weight and output tiles. An
input or weight element it does not hold is a miss (delivered, one L1 write); after the
step the working set is resident, and a PE holding more than its capacity evicts
elements outside the working set, least recently touched first (``lru``) or furthest next
touch first (``optimal``), ties to the lower (tensor, element); a working set larger than
the capacity then loses its own elements in the same order (it streamed through). Output
elements
accumulate while resident and leave when evicted or after the PE's last touch of them
(every step with ``psum_writeback_every_step``). Double buffering needs each involved
PE's two consecutive working sets to fit together. See docs/simulator.md ("What L1
keeps").

All PEs' elements share one key space, ``pe * total + tensor offset + flat index``, so a
step is a handful of sorted-array operations whatever the number of PEs.
"""

from __future__ import annotations

import array
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .geometry import StepTiles
from .l1_touches import LastTouches, last_output_touches

if TYPE_CHECKING:
    from .schedule import Step

__all__ = ["EVICTIONS", "L1Residency", "LogBlock", "LogEntry", "StepL1"]

EVICTIONS = ("lru", "optimal")
_NEVER = np.iinfo(np.int64).max
# Leaving outputs' signatures and fits kept for replayed steps (cleared when full).
_HEADS_KEPT = 1 << 14

LogEntry = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]
"""One step as a bulk repetition checks it: touched keys, their tensors, hits, outputs
leaving after their last touch, output keys evicted (sorted) and how many evictions a
bulk repetition cannot reproduce (any under ``optimal``)."""


@dataclass(frozen=True, slots=True)
class LogBlock:
    """Log of ``times`` repetitions applied after a logged one of ``m`` steps: the
    ``k``-th (from 1) is the logged one translated by ``k`` x ``shift`` per tensor, its
    evicted outputs too unless ``evicted`` gives them (codes ``step * span + key``, steps
    counted from the logged one's first, sorted). ``flat``: the logged one's first seven
    :meth:`L1Residency.logged` arrays, ``None`` if it evicted what a bulk repetition
    cannot reproduce. Keeps the log one entry per bulk instead of one per step."""

    flat: tuple[np.ndarray, ...] | None
    shift: np.ndarray
    m: int
    times: int
    evicted: np.ndarray | None
    span: int

    @property
    def steps(self) -> int:
        return self.m * self.times

    def sizes(self) -> tuple[int, int]:
        """How many touches and evicted outputs the repetitions hold."""
        assert self.flat is not None
        evicted = self.flat[5].size * self.times if self.evicted is None else self.evicted.size
        return self.flat[0].size * self.times, evicted

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The repetitions' flat arrays as :meth:`L1Residency.logged` gives them (steps
        counted from the block's first)."""
        assert self.flat is not None
        cols = _log_columns(*self.sizes())
        self.fill(cols, 0, 0, 0)
        return cols

    def fill(self, cols: tuple[np.ndarray, ...], at: int, ev_at: int, step: int) -> None:
        """Write :meth:`arrays` into ``cols`` from touch ``at`` and evicted output
        ``ev_at`` on, steps counted from ``step`` (in place: no temporaries the size of
        the repetitions)."""
        assert self.flat is not None
        keys, tensor, hit, done, local, out_keys, out_local = self.flat
        times, m, f = self.times, self.m, keys.size
        reps = np.arange(1, times + 1, dtype=np.int64)[:, None]
        part = slice(at, at + times * f)
        moved = cols[0][part].reshape(times, f)
        np.multiply(reps, self.shift[tensor][None, :], out=moved)
        moved += keys[None, :]
        for col, src in ((cols[1], tensor), (cols[2], hit), (cols[3], done)):
            col[part].reshape(times, f)[:] = src[None, :]
        np.add(local[None, :], (reps - 1) * m + step, out=cols[4][part].reshape(times, f))
        if self.evicted is None:
            g = out_keys.size
            ev = slice(ev_at, ev_at + times * g)
            np.add(out_keys[None, :], reps * self.shift[2], out=cols[5][ev].reshape(times, g))
            np.add(out_local[None, :], (reps - 1) * m + step, out=cols[6][ev].reshape(times, g))
        else:
            ev = slice(ev_at, ev_at + self.evicted.size)
            np.remainder(self.evicted, self.span, out=cols[5][ev])
            np.floor_divide(self.evicted, self.span, out=cols[6][ev])
            cols[6][ev] += step - m


@dataclass(frozen=True, slots=True)
class StepL1:
    """What the L1s did at one step. ``missing[t][p]``: PE ``p``'s mask of tensor ``t``'s
    tile (input, weight) it lacked, ``None`` when it lacked nothing or is idle.
    ``egress[p]``: output elements leaving PE ``p`` after the step as ``(lo, hi, mask)``
    (absolute coordinates; mask ``None``: the whole box), or ``None``. ``signature``
    identifies all of it relative to the PEs' tiles (translation-invariant). ``leaving``:
    the leaving outputs' keys, sorted (of the simulated PEs)."""

    missing: tuple[list[np.ndarray | None], list[np.ndarray | None]]
    egress: list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None]
    working: np.ndarray
    next_fits: bool
    overflow: bool
    signature: bytes
    leaving: np.ndarray


class _Keys:
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

    def shifted(self, by: np.ndarray) -> _Keys:
        """The same working sets translated by ``by[t]`` flat elements in tensor ``t``
        (order is kept: every key stays inside its PE's and tensor's range)."""
        if not by.any():
            return self
        groups = [(t, ps, shape, rows + by[t]) for t, ps, shape, rows in self.groups]
        origin = None if self.origin is None else (self.origin[0], self.origin[1] + by)
        return _Keys(self.keys + by[self.tensor], self.tensor, groups, self.rank, origin)


class L1Residency:
    """The L1s of all PEs over one layer's steps, fed in order."""

    def __init__(
        self,
        shapes: tuple[tuple[int, ...], ...],
        n_pes: int,
        capacity: int,
        eviction: str,
        *,
        psum_every_step: bool,
        dims: tuple[tuple[str, ...], ...],
        memo: bool,
    ) -> None:
        self.shapes = shapes
        self.n_pes = n_pes
        self.capacity = capacity
        self.eviction = eviction
        self.psum_every_step = psum_every_step
        sizes = [int(np.prod(s)) for s in shapes]
        self.offsets = [0, sizes[0], sizes[0] + sizes[1]]
        self.total = sum(sizes)
        self.strides = [
            np.array([int(np.prod(s[d + 1 :])) for d in range(len(s))], dtype=np.int64)
            for s in shapes
        ]
        self._out_shape = np.array(shapes[2], dtype=np.int64)[:, None]
        self._grids: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        self.keys = np.zeros(0, dtype=np.int64)
        self.stamp = np.zeros(0, dtype=np.int64)
        # Each held element's next touch: only ``optimal`` evicts by it (LRU by last touch).
        self.track_next = eviction == "optimal"
        self.next_use = np.zeros(0, dtype=np.int64)
        self.count = np.zeros(n_pes, dtype=np.int64)
        self.dims = dims
        # Per dimension its flat stride in each tensor (0 where the tensor lacks it).
        coef: dict[str, list[int]] = {}
        for t, (names, strides) in enumerate(zip(dims, self.strides, strict=True)):
            for name, k in zip(names, strides.tolist(), strict=True):
                coef.setdefault(name, [0, 0, 0])[t] += k
        self._coef = {name: (k[0], k[1], k[2]) for name, k in coef.items()}
        self.memo = memo
        self._memo: dict[object, tuple[dict[str, int], _Keys]] = {}
        self._touches = np.zeros(0, dtype=np.int64)
        self._span = 1
        self.rep_of: np.ndarray | None = None
        self.log: list[LogEntry | LogBlock] | None = None
        self._out_offset = np.zeros((len(shapes[2]), n_pes), dtype=np.int64)
        self._heads: dict[bytes, tuple[bytes, np.ndarray, np.ndarray]] = {}
        self._fits: dict[tuple[object, ...], tuple[bool, bool]] = {}

    # -- classes of PEs ------------------------------------------------------------
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
        self._out_offset = first[2] - first[2][:, rep_of]
        self._memo.clear()
        self._fits.clear()

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
                off = self._out_offset[:, q]
                egress[q] = (e[0] + off, e[1] + off, e[2])
        working = s.working[rep_of]
        return StepL1(missing, egress, working, s.next_fits, s.overflow, s.signature, s.leaving)

    def leaving_coords(self, leaving: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every PE's leaving outputs (``leaving``: the simulated PEs' keys, sorted) as
        their PEs (ascending) and coordinates (shape ``(dims, outputs)``): a class's PEs
        send their representative's outputs translated, as :meth:`expand` says."""
        pe = leaving // self.total
        flat = leaving - pe * self.total - self.offsets[2]
        coords = flat[None, :] // self.strides[2][:, None] % self._out_shape
        rep_of = self.rep_of
        if rep_of is None or not leaving.size:
            return pe, coords
        counts = np.bincount(pe, minlength=self.n_pes)
        per = counts[rep_of]
        owner = np.repeat(np.arange(self.n_pes, dtype=np.int64), per)
        at = np.repeat(np.cumsum(counts)[rep_of] - np.cumsum(per), per) + np.arange(owner.size)
        return owner, coords[:, at] + self._out_offset[:, owner]

    # -- keys ----------------------------------------------------------------------
    def _grid(self, t: int, shape: tuple[int, ...]) -> np.ndarray:
        hit = self._grids.get((t, shape))
        if hit is None:
            idx = np.indices(shape, dtype=np.int64).reshape(len(shape), -1)
            hit = self._grids[t, shape] = (idx * self.strides[t][:, None]).sum(axis=0)
        return hit

    def working_keys(self, tiles: StepTiles) -> _Keys:
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
            return _Keys(empty, empty, groups, empty)
        flat = np.concatenate([g[3].ravel() for g in groups])
        tensor = np.concatenate([np.full(g[3].size, g[0], dtype=np.int64) for g in groups])
        order = np.argsort(flat, kind="stable")
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        return _Keys(flat[order], tensor[order], groups, rank)

    def keys_of(self, key: object, base: dict[str, int], tiles: Callable[[], StepTiles]) -> _Keys:
        """Working keys of a step with geometry ``key`` and translation ``base``: with
        ``memo``, the key's first occurrence translated (tiles are translation-invariant
        per key, :mod:`metronome.sim.schedule`); else computed from ``tiles()``."""
        if not self.memo:
            return self.working_keys(tiles())
        first, keys = self._entry(key, base, tiles)
        return keys.shifted(self._shift(base, first))

    def _entry(
        self, key: object, base: dict[str, int], tiles: Callable[[], StepTiles]
    ) -> tuple[dict[str, int], _Keys]:
        """The memoised first occurrence of geometry ``key``: its base and keys."""
        hit = self._memo.get(key)
        if hit is None:
            keys = self.working_keys(tiles())
            keys.origin = (key, np.zeros(3, dtype=np.int64))
            hit = self._memo[key] = (base, keys)
        return hit

    def _shift(self, base: dict[str, int], first: dict[str, int]) -> np.ndarray:
        """Flat translation per tensor from ``first`` to ``base``."""
        coef, none = self._coef, (0, 0, 0)
        b0 = b1 = b2 = 0
        for d, v in base.items():
            k0, k1, k2 = coef.get(d, none)
            b0, b1, b2 = b0 + v * k0, b1 + v * k1, b2 + v * k2
        for d, v in first.items():
            k0, k1, k2 = coef.get(d, none)
            b0, b1, b2 = b0 - v * k0, b1 - v * k1, b2 - v * k2
        return np.array((b0, b1, b2), dtype=np.int64)

    def future_keys(
        self, key: object, base: dict[str, int], tiles: Callable[[], StepTiles]
    ) -> np.ndarray:
        """The keys of a step that next-use queries ask about: its outputs (every key
        under ``optimal``)."""
        if self.memo:
            first, wk = self._entry(key, base, tiles)
            by = self._shift(base, first)
        else:
            wk, by = self.working_keys(tiles()), np.zeros(3, dtype=np.int64)
        keys: np.ndarray = (
            wk.keys + by[wk.tensor] if self.eviction == "optimal" else wk.outputs() + by[2]
        )
        return keys

    def future_touches(
        self,
        steps: Iterable[tuple[object, dict[str, int], Callable[[], StepTiles], int]],
        by: np.ndarray,
        later: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`future_keys` of ``steps`` (each its geometry key, base, tiles and index),
        translated by ``by`` per tensor and ``later`` steps, with each key's step,
        concatenated (in no particular order). With ``memo`` the steps sharing a geometry
        key are one array operation."""
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        if not self.memo:
            for _key, _base, tiles, index in steps:
                wk = self.working_keys(tiles())
                optimal = self.eviction == "optimal"
                keys = wk.keys + by[wk.tensor] if optimal else wk.outputs() + by[2]
                parts.append((keys, np.full(keys.size, index + later, dtype=np.int64)))
        else:
            rows: dict[object, tuple[list[dict[str, int]], list[int]]] = {}
            for key, base, tiles, index in steps:
                found = rows.get(key)
                if found is None:
                    self._entry(key, base, tiles)
                    found = rows[key] = ([], [])
                found[0].append(base)
                found[1].append(index)
            for key, (bases, indices) in rows.items():
                first, wk = self._memo[key]
                moved = self._moves(first, bases) + by
                if self.eviction == "optimal":
                    keys = (wk.keys[None, :] + moved[:, wk.tensor]).ravel()
                    width = wk.keys.size
                else:
                    keys = (wk.outputs()[None, :] + moved[:, 2:3]).ravel()
                    width = wk.outputs().size
                at = np.array(indices, dtype=np.int64) + later
                parts.append((keys, np.repeat(at, width)))
        if not parts:
            none = np.zeros(0, dtype=np.int64)
            return none, none
        return np.concatenate([k for k, _ in parts]), np.concatenate([i for _, i in parts])

    def _moves(self, first: dict[str, int], bases: list[dict[str, int]]) -> np.ndarray:
        """Flat translation per tensor from ``first`` to each of ``bases`` (rows); under
        ``lru`` only the outputs' (the other columns 0: only outputs are asked about)."""
        names = list(self._coef)
        if self.eviction == "lru":
            names = [d for d in names if self._coef[d][2]]
        coef = np.array([self._coef[d] for d in names], dtype=np.int64).reshape(-1, 3)
        if self.eviction == "lru":
            coef[:, :2] = 0
        n = len(bases) * len(names)
        at = np.fromiter((b.get(d, 0) for b in bases for d in names), np.int64, n)
        at = at.reshape(len(bases), -1) - np.array([first.get(d, 0) for d in names], dtype=np.int64)
        return np.asarray(at @ coef, dtype=np.int64)

    @property
    def span(self) -> int:
        """One more than the largest key."""
        return self.n_pes * self.total

    def shift_of(self, delta: dict[str, int]) -> np.ndarray:
        """Flat translation per tensor of one repetition moving by ``delta``."""
        return self._shift(delta, {})

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A copy of the L1 state (keys, last touches, next touches: under ``optimal``)."""
        return self.keys.copy(), self.stamp.copy(), self.next_use.copy()

    def _tensor(self, keys: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.array(self.offsets[1:]), keys % self.total, side="right")

    def repeats(
        self, before: tuple[np.ndarray, np.ndarray, np.ndarray], shift: np.ndarray, m: int
    ) -> bool:
        """Whether the state now is ``before`` translated by ``shift`` and ``m`` steps (next
        touches only under ``optimal``: LRU ignores them)."""
        keys, stamp, nxt = before
        if keys.size != self.keys.size:
            return False
        if not np.array_equal(stamp + m, self.stamp):
            return False
        if not np.array_equal(keys + shift[self._tensor(keys)], self.keys):
            return False
        if not self.track_next:
            return True
        return np.array_equal(np.where(nxt == _NEVER, _NEVER, nxt + m), self.next_use)

    def future_repeats(
        self,
        keys: np.ndarray,
        index: np.ndarray,
        shift: np.ndarray,
        m: int,
        times: int,
        first: int = 1,
    ) -> bool:
        """Whether the next touch of every key in ``keys`` after its step in ``index``,
        translated by ``k`` repetitions for ``k`` in ``first``..``times``, is its own
        translated (under ``lru``: whether one comes; LRU evicts by last touches alone)."""
        if not keys.size:
            return True
        # A translation keeps the (key, step) order: asked in that order (faster
        # searches), several repetitions per search.
        order = np.lexsort((index, keys))
        keys, index = keys[order], index[order]
        if self.eviction == "lru":
            return self._last_touches_repeat(keys, index, shift, m, times, first)
        own = shift[self._tensor(keys)]
        base = self._next_many(keys, index)
        never = base == _NEVER
        per = max(1, (1 << 20) // keys.size)
        for lo in range(first, times + 1, per):
            k = np.arange(lo, min(times + 1, lo + per), dtype=np.int64)[:, None]
            found = self._next_many((keys + k * own).ravel(), (index + k * m).ravel())
            if not np.array_equal(
                found.reshape(k.size, keys.size), np.where(never, _NEVER, base + k * m)
            ):
                return False
        return True

    def _last_touches_repeat(
        self,
        keys: np.ndarray,
        index: np.ndarray,
        shift: np.ndarray,
        m: int,
        times: int,
        first: int,
    ) -> bool:
        """:meth:`future_repeats` under ``lru`` (``keys`` sorted): only each key's last
        touch is recorded, and a touch comes after step ``i`` iff the last is after it, so
        each distinct key is looked up once per repetition. Where every key's last touch
        is its own translated, every answer is too: only other repetitions are compared
        touch by touch."""
        head = np.ones(keys.size, dtype=bool)
        head[1:] = keys[1:] != keys[:-1]
        uniq = keys[head]
        of = np.cumsum(head) - 1
        own = shift[self._tensor(uniq)]
        mine = self._last_touch(uniq)
        comes = mine[of] > index
        per = max(1, (1 << 20) // keys.size)
        for lo in range(first, times + 1, per):
            k = np.arange(lo, min(times + 1, lo + per), dtype=np.int64)[:, None]
            last = self._last_touch((uniq + k * own).ravel()).reshape(k.size, uniq.size)
            moved = (last - k * m != mine).any(axis=1)
            if not moved.any():
                continue
            k, last = k[moved], last[moved]
            later = last[:, of] > index + k * m
            if not np.array_equal(later, np.broadcast_to(comes, later.shape)):
                return False
        return True

    def _last_touch(self, keys: np.ndarray) -> np.ndarray:
        """Under ``lru``: each key's recorded (last) touch, -1 if none."""
        found = np.full(keys.size, -1, dtype=np.int64)
        if not self._touches.size:
            return found
        at = np.searchsorted(self._touches, keys * self._span)
        hit = self._touches[np.minimum(at, self._touches.size - 1)]
        same = (at < self._touches.size) & (hit // self._span == keys)
        found[same] = hit[same] % self._span
        return found

    def logged(self, log: list[LogEntry | LogBlock], m: int) -> tuple[np.ndarray, ...] | None:
        """A repetition's log (``m`` steps) as flat arrays: keys, tensors, hits, outputs
        leaving after their last touch, step within the repetition, output keys evicted,
        their step within the repetition, and the touches in key order (stable); ``None``
        if incomplete or it evicted what a bulk repetition cannot reproduce
        (:func:`l1_bulk.bulk_calm`)."""
        flat = flat_log(log, m)
        if flat is None:
            return None
        return (*flat, _stable_order(flat[0]))

    def advance(self, shift: np.ndarray, m: int, times: int) -> None:
        """Translate the state by ``times`` repetitions (they repeated it exactly)."""
        self.keys[:] = self.keys + times * shift[self._tensor(self.keys)]
        self.stamp[:] = self.stamp + times * m
        if self.track_next:
            live = self.next_use != _NEVER
            self.next_use[live] += times * m

    def record_future(
        self, blocks: Iterable[tuple[int, np.ndarray, np.ndarray, int, int]], steps: int
    ) -> None:
        """Remember the (key, step) touches the next-use queries need: under ``optimal``
        every touch of every tensor; under ``lru`` only each output's last touch (a PE's
        last touch of an output sends it home; nothing else asks). ``blocks``:
        ``(step, keys, shift, m, count)``, the step's keys and their ``count``
        repetitions every ``m`` steps, each translated by ``shift`` per tensor; ``steps``:
        the layer's. Encoded ``key * span + step`` and sorted."""
        self._span = span = steps + 1
        last = self.eviction == "lru"

        def codes() -> Iterator[np.ndarray]:
            for index, keys, shift, m, count in blocks:
                if last:
                    by = shift[2]  # outputs only
                else:
                    by = shift[self._tensor(keys)] if keys.size and shift.any() else 0
                if last and not np.any(by):
                    yield keys * span + (index + (count - 1) * m)
                else:
                    reps = np.arange(count, dtype=np.int64)[:, None]
                    yield ((keys[None, :] + reps * by) * span + (index + reps * m)).ravel()

        self._store_touches(codes())

    def record_future_steps(
        self,
        steps: Iterable[tuple[Step, list[object]]],
        tiles: Callable[[tuple[Step, list[object]]], StepTiles],
        repeats: Iterable[tuple[int, np.ndarray, int, int]],
        total: int,
    ) -> None:
        """:meth:`record_future` from memoised keys (``memo``): ``steps`` gives each
        step with its schedules, ``tiles`` the tiles of one (asked once per geometry
        key); ``repeats``, per run of them, its length and how it repeats (``shift`` per
        tensor, ``m`` steps, ``count`` times).
        Steps sharing a geometry key are one array operation; under ``lru`` each
        (output class, translation) keeps only its last step before its keys are
        expanded (:func:`~metronome.sim.l1_touches.last_output_touches`)."""
        self._span = span = total + 1
        last = self.eviction == "lru"
        # Per geometry key its steps' bases, indices and runs (compact: many steps).
        rows: dict[object, tuple[list[dict[str, int]], array.array[int], array.array[int]]] = {}
        runs: list[tuple[np.ndarray, int, int]] = []
        it = iter(steps)
        for n, shift, m, count in repeats:
            run = len(runs)
            runs.append((shift, m, count))
            for item in itertools.islice(it, n):
                step = item[0]
                found = rows.get(step.key)
                if found is None:
                    self._entry(step.key, step.base, functools.partial(tiles, item))
                    found = rows[step.key] = ([], array.array("q"), array.array("q"))
                found[0].append(step.base)
                found[1].append(step.index)
                found[2].append(run)
        # Per run its shift, step count and repetitions; per step its translation from
        # its key's first occurrence (flat, per tensor).
        run_shift = np.array([r[0] for r in runs], dtype=np.int64).reshape(-1, 3)
        run_m = np.array([r[1] for r in runs], dtype=np.int64)
        run_count = np.array([r[2] for r in runs], dtype=np.int64)

        if last:
            # Outputs only, each (output class, translation) kept at its last step
            # before its keys are expanded.
            classes = (
                (
                    self._memo[key][1].outputs() - self._shift(self._memo[key][0], {})[2],
                    self._moves({}, found[0])[:, 2],
                    np.frombuffer(found[1], dtype=np.int64),
                    np.frombuffer(found[2], dtype=np.int64),
                )
                for key, found in rows.items()
            )
            self._store_touches(
                last_output_touches(classes, (run_shift[:, 2], run_m, run_count), span)
            )
            return

        def codes() -> Iterator[np.ndarray]:
            for key, found in rows.items():
                wk = self._memo[key][1]
                b = self._moves(self._memo[key][0], found[0])
                index = np.frombuffer(found[1], dtype=np.int64)
                run = np.frombuffer(found[2], dtype=np.int64)
                shift, m, count = run_shift[run], run_m[run], run_count[run]
                # Rows in runs of about a million repetitions (less peak memory).
                ends = np.cumsum(count)
                start = 0
                while start < count.size:
                    reach = int(ends[start] - count[start]) + (1 << 20)
                    stop = max(start + 1, int(np.searchsorted(ends, reach, side="right")))
                    part = slice(start, stop)
                    yield from expand(wk, b[part], index[part], shift[part], m[part], count[part])
                    start = stop

        def expand(
            wk: _Keys,
            b: np.ndarray,
            index: np.ndarray,
            shift: np.ndarray,
            m: np.ndarray,
            count: np.ndarray,
        ) -> Iterator[np.ndarray]:
            rep = np.repeat(np.arange(count.size), count)
            r = np.arange(rep.size) - np.repeat(np.cumsum(count) - count, count)
            moved = b[rep] + r[:, None] * shift[rep]
            at = index[rep] + r * m[rep]
            # In slices of about a million codes (less peak memory).
            piece = max(1, (1 << 20) // max(1, wk.keys.size))
            for lo in range(0, at.size, piece):
                hi = lo + piece
                yield (
                    (wk.keys[None, :] + moved[lo:hi][:, wk.tensor]) * span + at[lo:hi, None]
                ).ravel()

        self._store_touches(codes())

    def _store_touches(self, codes: Iterable[np.ndarray]) -> None:
        """Keep ``codes`` (``key * span + step``) sorted, under ``lru`` reduced to each
        key's last (in bounded batches)."""
        if self.eviction == "lru":
            last = LastTouches(self._span)
            for part in codes:
                last.add(part)
            self._touches = last.result()
            return
        parts = list(codes)
        self._touches = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        parts.clear()
        self._touches.sort(kind="stable")

    def _next(self, keys: np.ndarray, index: int) -> np.ndarray:
        """Each key's next touch after step ``index`` (``_NEVER`` if none recorded)."""
        return self._next_many(keys, np.full(keys.size, index, dtype=np.int64))

    def _next_many(self, keys: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Each key's next touch after its own step in ``index`` (under ``lru``: its last
        touch if after, as only whether one comes matters there)."""
        if not self._touches.size:
            return np.full(keys.size, _NEVER, dtype=np.int64)
        codes = keys * self._span + index
        at = _sorted_search(self._touches, codes)
        found = np.full(keys.size, _NEVER, dtype=np.int64)
        ok = at < self._touches.size
        hit = self._touches[np.minimum(at, self._touches.size - 1)]
        same = ok & (hit // self._span == keys)
        found[same] = hit[same] % self._span
        return found

    # -- one step ------------------------------------------------------------------
    def step(self, index: int, wk: _Keys, nk: _Keys | None, out_base: np.ndarray) -> StepL1:
        """Touch step ``index``'s working sets ``wk`` (``nk``: the next step's, for double
        buffering; ``out_base``: the step's translation in output coordinates)."""
        touched = wk.keys
        pe_of = touched // self.total
        n_pes, cap = self.n_pes, self.capacity
        sizes = np.bincount(pe_of, minlength=n_pes)
        pos = np.searchsorted(self.keys, touched)
        hit = np.zeros(touched.size, dtype=bool)
        inside = pos < self.keys.size
        hit[inside] = self.keys[pos[inside]] == touched[inside]
        sig: list[bytes] = []
        missing = self._missing(wk, hit, sig)
        # Touch: refresh what was held, insert what was missing.
        if self.eviction == "optimal":
            nxt_use = self._next(touched, index)
        else:
            nxt_use = np.full(touched.size, _NEVER, dtype=np.int64)
            outs = wk.tensor == 2
            nxt_use[outs] = self._next(touched[outs], index)
        self.stamp[pos[hit]] = index
        fresh = ~hit
        at = pos[fresh]
        self.keys = np.insert(self.keys, at, touched[fresh])
        self.stamp = np.insert(self.stamp, at, index)
        if self.track_next:
            self.next_use[pos[hit]] = nxt_use[hit]
            self.next_use = np.insert(self.next_use, at, nxt_use[fresh])
        self.count += np.bincount(pe_of[fresh], minlength=n_pes)
        # Outputs leaving: after every step, or after the PE's last touch.
        outs = wk.tensor == 2
        done_mask = outs if self.psum_every_step else outs & (nxt_use == _NEVER)
        done = touched[done_mask]
        gone = [np.searchsorted(self.keys, done)]
        done_pe = np.bincount(done // self.total, minlength=n_pes)
        # Evict until each PE fits: outside the working set first; a working set larger
        # than L1 loses its own elements too (in the same order: they were touched last).
        excess = self.count - done_pe - cap
        over = np.flatnonzero(excess > 0)
        if over.size:
            starts = np.searchsorted(self.keys, over * self.total)
            ends = np.searchsorted(self.keys, (over + 1) * self.total)
            leaving: np.ndarray | None = None
            if gone[0].size:
                leaving = np.zeros(self.keys.size, dtype=bool)
                leaving[gone[0]] = True
            if self.eviction == "lru":
                # Per PE its `excess` least (last touch, key): its working set was
                # touched last, so it goes last.
                gone.append(_oldest_in(self.stamp, starts, ends, excess[over], leaving))
            else:
                lengths = ends - starts
                cand = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
                    int(lengths.sum())
                )
                if leaving is not None:
                    cand = cand[~leaving[cand]]
                cand_keys = self.keys[cand]
                own = self.stamp[cand] == index
                order = cand[
                    np.lexsort((cand_keys, -self.next_use[cand], own, cand_keys // self.total))
                ]
                groups = self.keys[order] // self.total
                first = np.searchsorted(groups, groups, side="left")
                rank = np.arange(order.size) - first
                gone.append(order[rank < excess[groups]])
        if self.log is not None:
            # Evicted outputs leave (a bulk repetition must evict the same ones); under
            # optimal a bulk repetition reproduces no eviction (:func:`l1_bulk.bulk_calm`).
            victims = np.concatenate(gone[1:]) if len(gone) > 1 else gone[0][:0]
            vkeys = self.keys[victims]
            vout = np.sort(vkeys[vkeys % self.total >= self.offsets[2]])
            other = int(victims.size) if self.eviction == "optimal" else 0
            self.log.append((touched, wk.tensor, hit, done_mask, vout, other))
        removed = np.concatenate(gone)
        self.count -= np.bincount(self.keys[removed] // self.total, minlength=n_pes)
        leaving = removed[(self.keys[removed] % self.total) >= self.offsets[2]]
        out_keys = np.sort(self.keys[leaving])
        egress = self._egress(out_keys, out_base, sig)
        if removed.size:
            self.keys = np.delete(self.keys, removed)
            self.stamp = np.delete(self.stamp, removed)
            if self.track_next:
                self.next_use = np.delete(self.next_use, removed)
        return self._ended(wk, nk, sizes, missing, egress, sig, out_keys)

    def replay(
        self,
        wk: _Keys,
        nk: _Keys | None,
        hit: np.ndarray,
        out_keys: np.ndarray,
        out_base: np.ndarray,
    ) -> StepL1:
        """What :meth:`step` returns for a step touching ``wk`` (``nk`` next) that hit as
        ``hit`` says and sent home the outputs ``out_keys`` (sorted), without touching the
        state: for a step a bulk repetition applied."""
        sig: list[bytes] = []
        missing = self._missing(wk, hit, sig)
        egress = self._egress(out_keys, out_base, sig)
        sizes = np.bincount(wk.keys // self.total, minlength=self.n_pes)
        return self._ended(wk, nk, sizes, missing, egress, sig, out_keys)

    def replay_signature(
        self,
        wk: _Keys,
        nk: _Keys | None,
        hit: np.ndarray,
        out_keys: np.ndarray,
        out_base: np.ndarray,
    ) -> bytes:
        """The signature :meth:`replay` gives, without building its masks and boxes
        (a replayed step's record is mostly one built before under this signature)."""
        sig: list[bytes] = []
        self._missing(wk, hit, sig, masks=False)
        if out_keys.size:
            sig.append(self._leaving_head(out_keys, out_base))
        sizes = np.bincount(wk.keys // self.total, minlength=self.n_pes)
        sig.append(bytes(self._fit_of(wk, nk, sizes)))
        return b"|".join(sig)

    def _missing(
        self, wk: _Keys, hit: np.ndarray, sig: list[bytes], masks: bool = True
    ) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """Per input and weight PE its mask of the tile it lacked (``hit``: per sorted
        key; all ``None`` without ``masks``); their signature appended to ``sig``."""
        missing: tuple[list[np.ndarray | None], list[np.ndarray | None]] = (
            [None] * self.n_pes,
            [None] * self.n_pes,
        )
        offset = 0
        for t, ps, shape, rows in wk.groups:
            offset += rows.size
            if t == 2:
                continue
            lacking = ~hit[wk.rank[offset - rows.size : offset]].reshape(rows.shape)
            for i in np.flatnonzero(lacking.any(axis=1)).tolist() if masks else ():
                p = int(ps[i])
                missing[t][p] = lacking[i].reshape(shape)
            sig.append(np.array([t, *shape], dtype=np.int64).tobytes() + ps.tobytes())
            sig.append(np.packbits(lacking).tobytes())
        return missing

    def leaving_boxes(
        self, out_keys: np.ndarray, out_base: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None]:
        """The outputs leaving (``out_keys``, sorted) per PE as :class:`StepL1` has them
        (``out_base``: the step's base in output coordinates)."""
        return self._egress(out_keys, out_base, [])

    def _egress(
        self, out_keys: np.ndarray, out_base: np.ndarray, sig: list[bytes]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None]:
        """The outputs leaving (``out_keys``, sorted) per PE as ``(lo, hi, mask)``; their
        signature relative to ``out_base`` appended to ``sig``."""
        egress: list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None] = [None] * self.n_pes
        if not out_keys.size:
            return egress
        ps, lo, hi, starts, counts, coords, head = self._leaving(out_keys, out_base)
        sig.append(head)
        full = counts == np.multiply.reduce(hi - lo, axis=0)
        for i, p in enumerate(ps.tolist()):
            mask = None
            if not full[i]:
                mine = coords[:, starts[i] : starts[i] + counts[i]] - lo[:, i : i + 1]
                mask = np.zeros(tuple(int(v) for v in hi[:, i] - lo[:, i]), dtype=np.bool_)
                mask[tuple(mine)] = True
            egress[p] = (lo[:, i], hi[:, i], mask)
        return egress

    def _leaving(
        self, out_keys: np.ndarray, out_base: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bytes]:
        """The leaving outputs (``out_keys``, sorted, not empty) per PE run: the PEs, each
        one's box (``lo``, ``hi``), its run's start and size among the keys, every key's
        coordinates, and the signature: the PEs, boxes relative to ``out_base`` and each
        output's place in its box (in order: what the boxes' masks say)."""
        pe_o = out_keys // self.total
        flat = out_keys - pe_o * self.total - self.offsets[2]
        coords = flat[None, :] // self.strides[2][:, None] % self._out_shape
        # Keys are sorted: each PE's outputs are one run.
        new = np.empty(out_keys.size, dtype=bool)
        new[0] = True
        np.not_equal(pe_o[1:], pe_o[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        ps = pe_o[starts]
        lo = np.minimum.reduceat(coords, starts, axis=1)
        hi = np.maximum.reduceat(coords, starts, axis=1) + 1
        counts = np.append(starts[1:], out_keys.size) - starts
        ext = hi - lo
        run = np.repeat(np.arange(ps.size, dtype=np.int64), counts)
        rel = coords - lo[:, run]
        place = rel[0]
        for d in range(1, rel.shape[0]):
            place = place * ext[d, run] + rel[d]
        place = np.sort(place + run * int(np.multiply.reduce(ext, axis=0).max()))
        head = np.concatenate([[ps.size], ps, (lo - out_base[:, None]).ravel(), ext.ravel(), place])
        return ps, lo, hi, starts, counts, coords, b"o" + head.astype(np.int64).tobytes()

    def _leaving_head(self, out_keys: np.ndarray, out_base: np.ndarray) -> bytes:
        """The signature :meth:`_leaving` gives, memoised on the keys translated by
        ``out_base``'s flat offset: equal translated keys whose boxes, moved by the
        difference of the bases, stay inside the tensor are the same outputs moved alike
        (so their boxes relative to the base and places agree)."""
        rel = out_keys - int(out_base @ self.strides[2])
        key = rel.tobytes()
        hit = self._heads.get(key)
        if hit is not None:
            head, lo_rel, hi_rel = hit
            if (lo_rel + out_base[:, None] >= 0).all() and (
                hi_rel + out_base[:, None] <= self._out_shape
            ).all():
                return head
        _, lo, hi, _, _, _, head = self._leaving(out_keys, out_base)
        if len(self._heads) >= _HEADS_KEPT:
            self._heads.clear()
        self._heads[key] = (head, lo - out_base[:, None], hi - out_base[:, None])
        return head

    def _ended(
        self,
        wk: _Keys,
        nk: _Keys | None,
        sizes: np.ndarray,
        missing: tuple[list[np.ndarray | None], list[np.ndarray | None]],
        egress: list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None],
        sig: list[bytes],
        out_keys: np.ndarray,
    ) -> StepL1:
        """The step's outcome, with whether it overflows and whether the next step's
        working sets fit beside it (double buffering)."""
        fits, overflow = self._fit(wk, nk, sizes)
        sig.append(bytes((fits, overflow)))
        return StepL1(missing, egress, sizes, fits, overflow, b"|".join(sig), out_keys)

    def _fit_of(self, wk: _Keys, nk: _Keys | None, sizes: np.ndarray) -> tuple[bool, bool]:
        """:meth:`_fit`, memoised on both steps' geometry keys and the difference of
        their translations (what decides which keys they share; each PE's counts move
        with the keys)."""
        if wk.origin is None or (nk is not None and nk.origin is None):
            return self._fit(wk, nk, sizes)
        key: tuple[object, ...] = (wk.origin[0],)
        if nk is not None:
            assert nk.origin is not None
            key = (wk.origin[0], nk.origin[0], (nk.origin[1] - wk.origin[1]).tobytes())
        hit = self._fits.get(key)
        if hit is None:
            if len(self._fits) >= _HEADS_KEPT:
                self._fits.clear()
            hit = self._fits[key] = self._fit(wk, nk, sizes)
        return hit

    def _fit(self, wk: _Keys, nk: _Keys | None, sizes: np.ndarray) -> tuple[bool, bool]:
        """Whether the next step's working sets (``nk``) fit beside the step's (``wk``,
        per PE ``sizes``), and whether the step's overflow."""
        cap, touched = self.capacity, wk.keys
        overflow = bool((sizes > cap).any())
        fits = True
        if nk is not None:
            at = np.minimum(np.searchsorted(nk.keys, touched), max(0, nk.keys.size - 1))
            both = nk.keys[at] == touched if nk.keys.size else np.zeros(touched.size, bool)
            shared = np.bincount(touched[both] // self.total, minlength=self.n_pes)
            nsizes = np.bincount(nk.keys // self.total, minlength=self.n_pes)
            union = sizes + nsizes - shared
            fits = bool((union[sizes > 0] <= cap).all())
        return fits, overflow


def refreshed_before_eviction(
    pos: np.ndarray,
    first: np.ndarray,
    seg: np.ndarray,
    steps: np.ndarray,
    sched: np.ndarray,
    width: int,
    need: np.ndarray,
) -> np.ndarray:
    """Which of the start state's elements at queue positions ``pos`` (increasing within
    each PE's segment ``seg``, nondecreasing; first touched at steps ``first``) are
    touched before eviction reaches them. Segment ``g`` evicts ``e`` elements in all by
    step ``steps[i]`` where ``sched[i] = g * width + e`` (nondecreasing; ``need[g]`` in
    all, below ``width - 1``): element ``i`` goes as eviction ``pos_i - P_i + 1``
    (``P_i``: such elements before it in its segment), at the first step where the count
    reaches that, unless touched first; beyond ``need`` nothing goes. Per segment
    ``R = F(R)`` has one solution (the first difference between two would decide alike),
    found by iterating from both ends (``F`` reverses inclusion), else by a scan."""
    own = need[seg]

    def decide(passed: np.ndarray) -> np.ndarray:
        rank = pos - passed
        at = np.searchsorted(sched, seg * width + np.minimum(rank, own - 1) + 1)
        return np.asarray((rank >= own) | (first <= steps[at]), dtype=bool)

    def before(r: np.ndarray) -> np.ndarray:
        return np.asarray(_segment_cumsum(r, seg) - r, dtype=np.int64)

    def differs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.bincount(seg[x != y], minlength=need.size) > 0

    out = np.zeros(pos.size, dtype=bool)
    pending = np.ones(need.size, dtype=bool)
    scan = np.zeros(need.size, dtype=bool)
    low = decide(np.zeros(pos.size, dtype=np.int64))
    for _ in range(32):
        high = decide(before(low))
        again = decide(before(high))
        settled = pending & ~differs(again, low)
        fixed = settled & ~differs(high, low)
        mine = fixed[seg]
        out[mine] = low[mine]
        scan |= settled & ~fixed
        pending &= ~settled
        if not pending.any():
            break
        low = again
    scan |= pending
    for g in np.flatnonzero(scan).tolist():
        a, b = np.searchsorted(seg, [g, g + 1]).tolist()
        passed = 0
        for i, (q, f) in enumerate(zip(pos[a:b].tolist(), first[a:b].tolist(), strict=True)):
            rank = q - passed
            if rank >= need[g]:
                out[a + i : b] = True
                break
            if f <= int(steps[int(np.searchsorted(sched, g * width + rank + 1))]):
                out[a + i] = True
                passed += 1
    return out


def _segment_cumsum(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Running sum of ``x`` restarting at each segment (``seg`` nondecreasing)."""
    run = np.cumsum(x, dtype=np.int64)
    if not run.size:
        return run
    start = np.searchsorted(seg, seg)
    return np.asarray(run - (run[start] - x[start]), dtype=np.int64)


def _oldest_in(
    stamp: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    k: np.ndarray,
    skip: np.ndarray | None = None,
) -> np.ndarray:
    """Positions of the ``k[g]`` least (``stamp``, position) elements of each range
    ``lo[g]:hi[g]`` of a state sorted by key (ranges nonempty, increasing, disjoint), not
    counting those ``skip`` marks (fewer when it has fewer), by range then that order.
    Back-to-back ranges are read in place (no gathers)."""
    n = lo.size
    if not n:
        return np.zeros(0, dtype=np.int64)
    lengths = hi - lo
    pos: np.ndarray | None = None
    if n == 1 or np.array_equal(lo[1:], hi[:-1]):
        first = int(lo[0])
        part = stamp[first : int(hi[-1])]
        gone = skip[first : int(hi[-1])] if skip is not None else None
    else:
        first = 0
        pos = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
        part = stamp[pos]
        gone = skip[pos] if skip is not None else None
    starts = np.cumsum(lengths) - lengths
    under, want, counts = _under_bound(part, starts, lengths, k, gone)
    sel = np.flatnonzero(under)
    seg = np.repeat(np.arange(n), counts)
    # Positions go in key order: a stable sort by (range, stamp) keeps it among ties.
    sub = part[sel]
    low = int(sub.min()) if sub.size else 0
    width = int(sub.max()) - low + 1 if sub.size else 1
    order = sel[np.argsort(seg * width + (sub - low), kind="stable")]
    rank = np.arange(sel.size) - np.repeat(np.cumsum(counts) - counts, counts)
    out = order[rank < want[seg]]
    return np.asarray(out + first if pos is None else pos[out], dtype=np.int64)


def _under_bound(
    stamp: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    k: np.ndarray,
    skip: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which elements are at most a bound past their segment's oldest stamp (segments
    ``starts``/``lengths``, each nonempty), the bound doubling until each segment has
    its ``k`` (as many as it has, not counting ``skip``) among them: its ``k`` least are;
    those ``k`` and how many each segment has under the bound."""
    size = lengths if skip is None else lengths - np.add.reduceat(skip, starts, dtype=np.int64)
    want = np.minimum(k, size)
    age = stamp - np.repeat(np.minimum.reduceat(stamp, starts), lengths)
    if skip is not None:
        age[skip] = _NEVER
    bound = 0
    while True:
        under = age <= bound
        counts = np.add.reduceat(under, starts, dtype=np.int64)
        if np.all(counts >= want):
            return under, want, counts
        bound = 2 * bound + 1


def log_steps(log: list[LogEntry | LogBlock]) -> int:
    """How many steps ``log`` holds."""
    return sum(e.steps if isinstance(e, LogBlock) else 1 for e in log)


def flat_log(log: list[LogEntry | LogBlock], m: int) -> tuple[np.ndarray, ...] | None:
    """:meth:`L1Residency.logged` without the key order."""
    if log_steps(log) != m:
        return None
    touches = evicted = 0
    for e in log:
        if isinstance(e, LogBlock):
            if e.flat is None:
                return None
            n, v = e.sizes()
        elif e[5]:
            return None
        else:
            n, v = e[0].size, e[4].size
        touches += n
        evicted += v
    # Each entry written into its place (no per-entry copies to join: less peak memory).
    cols = _log_columns(touches, evicted)
    at = ev_at = step = 0
    for e in log:
        if isinstance(e, LogBlock):
            e.fill(cols, at, ev_at, step)
            n, v = e.sizes()
            step += e.steps
        else:
            keys, tensor, hit, done, ev_keys, _ = e
            n, v = keys.size, ev_keys.size
            for col, src in zip(cols[:4], (keys, tensor, hit, done), strict=True):
                col[at : at + n] = src
            cols[4][at : at + n] = step
            cols[5][ev_at : ev_at + v] = ev_keys
            cols[6][ev_at : ev_at + v] = step
            step += 1
        at += n
        ev_at += v
    return cols


def _log_columns(touches: int, evicted: int) -> tuple[np.ndarray, ...]:
    """Empty flat log columns (:meth:`L1Residency.logged`'s first seven; tensors as
    ``int8``: only compared and used as indices)."""
    kinds = (np.int64, np.int8, bool, bool, np.int64, np.int64, np.int64)
    return tuple(np.empty(touches if i < 5 else evicted, dtype=k) for i, k in enumerate(kinds))


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")``, as the sorted codes ``key * n + position``
    (``n`` keys) where those fit in int64: sorting values beats sorting indices."""
    n = keys.size
    if not n or keys.dtype != np.int64 or max(-int(keys.min()), int(keys.max()) + 1) * n >= 1 << 62:
        return np.argsort(keys, kind="stable")
    codes = keys * n
    for lo in range(0, n, 1 << 20):  # the positions in slices (less peak memory)
        codes[lo : lo + (1 << 20)] += np.arange(lo, min(n, lo + (1 << 20)), dtype=np.int64)
    codes.sort(kind="stable")
    codes %= n
    return codes


def _first_row(bad: np.ndarray, rows: int) -> int:
    """The first of ``rows`` equal rows of flat ``bad`` holding a ``True`` (``rows``: none)."""
    if not bad.any():
        return rows
    return int(np.argmax(bad.reshape(rows, -1).any(axis=1)))


_SORTED_SEARCH_MIN = 1 << 12
"""Queries from which :func:`_sorted_search` sorts them first (below, sorting costs more
than it saves)."""


def _sorted_search(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``np.searchsorted(table, codes, side="right")``, the ``codes`` searched in sorted
    order (a binary search then starts where the previous one ended: fewer cache misses
    on a large ``table``)."""
    if codes.size < _SORTED_SEARCH_MIN or not np.any(codes[1:] < codes[:-1]):
        return np.searchsorted(table, codes, side="right")
    # Sorted runs (a step's or repetition's keys), which a merge sort exploits.
    order = np.argsort(codes, kind="stable")
    at = np.empty(codes.size, dtype=np.int64)
    at[order] = np.searchsorted(table, codes[order], side="right")
    return at
