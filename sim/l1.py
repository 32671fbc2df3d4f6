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

The keys (:mod:`~metronome.sim.l1_keys`) and the touches to come
(:mod:`~metronome.sim.l1_touches`) are their own objects; this module holds what the L1s
hold and what each step does to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .geometry import StepTiles
from .l1_keys import KeySpace, WorkingKeys
from .l1_outcome import StepL1, StepOutcomes
from .l1_touches import NEVER, NextTouches

__all__ = ["EVICTIONS", "L1Residency", "LogBlock", "LogEntry"]

EVICTIONS = ("lru", "optimal")

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
        self.space = KeySpace(shapes, n_pes, dims=dims, memo=memo)
        self.touches = NextTouches(self.space, eviction)
        # The key space's layout, read at every step.
        self.n_pes, self.total, self.offsets = n_pes, self.space.total, self.space.offsets
        self.capacity = capacity
        self.eviction = eviction
        self.psum_every_step = psum_every_step
        self.keys = np.zeros(0, dtype=np.int64)
        self.stamp = np.zeros(0, dtype=np.int64)
        # Each held element's next touch: only ``optimal`` evicts by it (LRU by last touch).
        self.track_next = eviction == "optimal"
        self.next_use = np.zeros(0, dtype=np.int64)
        self.count = np.zeros(n_pes, dtype=np.int64)
        self.log: list[LogEntry | LogBlock] | None = None
        self.outcomes = StepOutcomes(self.space, capacity)

    def classify(self, first_tiles: Iterable[StepTiles]) -> None:
        """:meth:`KeySpace.classify`; the fits memoised on working keys then go (the
        working keys are the classes' representatives' from now on)."""
        self.space.classify(first_tiles)
        self.outcomes.forget_fits()

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A copy of the L1 state (keys, last touches, next touches: under ``optimal``)."""
        return self.keys.copy(), self.stamp.copy(), self.next_use.copy()

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
        if not np.array_equal(keys + shift[self.space.tensor(keys)], self.keys):
            return False
        if not self.track_next:
            return True
        return np.array_equal(np.where(nxt == NEVER, NEVER, nxt + m), self.next_use)

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
        self.keys[:] = self.keys + times * shift[self.space.tensor(self.keys)]
        self.stamp[:] = self.stamp + times * m
        if self.track_next:
            live = self.next_use != NEVER
            self.next_use[live] += times * m

    # -- one step ------------------------------------------------------------------
    def step(
        self, index: int, wk: WorkingKeys, nk: WorkingKeys | None, out_base: np.ndarray
    ) -> StepL1:
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
        missing = self.outcomes.missing(wk, hit, sig)
        # Touch: refresh what was held, insert what was missing.
        if self.eviction == "optimal":
            nxt_use = self.touches.next_after(touched, index)
        else:
            nxt_use = np.full(touched.size, NEVER, dtype=np.int64)
            outs = wk.tensor == 2
            nxt_use[outs] = self.touches.next_after(touched[outs], index)
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
        done_mask = outs if self.psum_every_step else outs & (nxt_use == NEVER)
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
        egress = self.outcomes.egress(out_keys, out_base, sig)
        if removed.size:
            self.keys = np.delete(self.keys, removed)
            self.stamp = np.delete(self.stamp, removed)
            if self.track_next:
                self.next_use = np.delete(self.next_use, removed)
        return self.outcomes.ended(wk, nk, sizes, missing, egress, sig, out_keys)


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
        age[skip] = NEVER
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
