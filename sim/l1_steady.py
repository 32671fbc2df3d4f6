"""Bulk repetitions of an LRU L1 that still holds stale elements, checked per element
instead of per touch.

After a logged repetition ``L`` (stepped exactly) the L1 state ``S'`` splits into its
*young* part (elements touched in ``L``: stamp at least ``L``'s first step) and its *old*
part (the rest: what earlier repetitions, or anything before, left behind). The following
repetitions ``L+k`` touch ``L``'s keys translated by ``k`` repetitions. If

- (A) every key whose first touch in ``L`` hit is, translated by one repetition, young in
  ``S'``,
- (B) every key whose first touch in ``L`` missed is, translated by ``i`` repetitions, not
  held in ``S'``, for ``i`` in ``1..k``,
- the outputs of ``L+k`` leave after their last touch where ``L``'s did (next-touch table),
- and the evictions up to the end of ``L+k`` (per PE, from the occupancy recurrence
  ``c_t = min(cap, c_{t-1} + d_t)`` over ``L``'s misses minus leaving outputs, periodic)
  never exceed the old elements available at the start of ``L+k``,

then by induction on ``k`` no old element is touched again in these repetitions (a touch
of one would, followed back repetition by repetition, be a first touch in ``L`` that
either hit, so its key one repetition on is young, or missed, which B excludes), so LRU's
victims are the oldest old elements in (last touch, key) order, young ones are never
evicted, ``L+k`` hits and sends outputs home exactly as ``L`` did, translated, and the
young part after it is ``S'``'s translated by ``k`` repetitions. The old part is a queue:
``S'``'s old elements, then per repetition the young elements it did not touch again
(``A``, translated and restamped per repetition, each copy newer than the previous); the
evictions so far take its head.

``L`` itself evicted nothing it touched (so the young part is what it touched minus the
outputs that left, and every touch after a key's first hit): had LRU taken a young element
at some step, every old element outside that step's working set would have gone before
it, leaving no old element in ``S'``, while ``L+1`` holds at that step, evicting nothing,
everything ``L`` held then plus the victim, more than the capacity; so the eviction bound
fails for that PE. A step over capacity evicts its own elements, the same case.

This is the LRU steady state of a sliding window over an L1 full of an earlier sweep's
data, at a cost per distinct key of ``L`` (B and the next-touch check: per repetition)
rather than per touch (:func:`~metronome.sim.l1_bulk.bulk_calm`, still used where
this does not apply, e.g. hits on old elements). See docs/simulator.md ("What L1 keeps",
*Stale steady state*).
"""

from __future__ import annotations

import numpy as np

from .l1 import L1Residency
from .l1_touches import NEVER

__all__ = ["bulk_steady"]

_CHUNK = 1 << 20
"""Elements per vectorised batch of the per-repetition checks (bounds their memory)."""


def bulk_steady(
    l1: L1Residency,
    rep: tuple[np.ndarray, ...],
    shift: np.ndarray,
    m: int,
    first: int,
    times: int,
) -> tuple[int, np.ndarray, np.ndarray] | None:
    """Apply the first ``k`` (as many as the module's conditions allow, at most
    ``times``) repetitions following the logged one (``rep``, from
    :meth:`L1Residency.logged`: its ``m`` steps, the first at ``first``; the L1 is in the
    state right after it), each translated by ``shift`` per tensor from the previous.
    Returns ``k`` and the outputs they evicted (keys, steps), or ``None`` (state
    unchanged) when not even one repetition qualifies."""
    if l1.eviction != "lru" or l1.psum_every_step or l1.track_next or times <= 0:
        return None
    keys, tensor, hit, done, local = rep[:5]
    by_key = rep[7]
    if not keys.size:
        return None
    total, cap, n = l1.total, l1.capacity, l1.n_pes
    # Per (PE, step) misses minus leaving outputs (counted from those touches' cells,
    # gathered until they are as many as the cells or a chunk); the touches grouped by
    # key (step order within): where each key's run starts. In chunks (less peak memory).
    d = np.zeros(n * m, dtype=np.int64)
    pending: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    held = 0
    head = np.ones(keys.size, dtype=bool)
    for lo in range(0, keys.size, _CHUNK):
        part = slice(lo, lo + _CHUNK)
        for pick, into in ((~hit[part], pending[0]), (done[part], pending[1])):
            into.append(keys[part][pick] // total * m + local[part][pick])
            held += into[-1].size
        if held > max(_CHUNK, d.size) or lo + _CHUNK >= keys.size:
            d += np.bincount(np.concatenate(pending[0]), minlength=d.size)
            d -= np.bincount(np.concatenate(pending[1]), minlength=d.size)
            pending[0].clear()
            pending[1].clear()
            held = 0
        run = keys[by_key[max(lo - 1, 0) : lo + _CHUNK]]
        head[max(lo, 1) : lo + _CHUNK] = run[1:] != run[:-1]
    del run
    heads = np.flatnonzero(head)
    del head
    uniq = keys[by_key[heads]]
    # The PEs touching anything (their keys' PEs).
    present = np.zeros(n, dtype=bool)
    present[uniq // total] = True
    pes = np.flatnonzero(present)
    d = d.reshape(n, m)[pes]
    first_hit = hit[by_key[heads]]
    last = by_key[np.append(heads[1:] - 1, keys.size - 1)]
    del heads
    out = tensor[last] == 2
    out_keys, out_at, out_done = uniq[out], local[last][out], done[last][out]
    del last, out
    state, stamp = l1.keys, l1.stamp
    # (A) a first touch that hit: one repetition on, its key is young.
    hx = uniq[first_hit]
    if hx.size:
        at, found = _find(state, hx + shift[l1.space.tensor(hx)])
        if not np.all(found & (stamp[at] >= first)):
            return None
    # (B) a first touch that missed: its key, translated by 1..k repetitions, is not held.
    mx = uniq[~first_hit]
    limit = min(times, _first_meet(l1, mx, state, shift, times) - 1)
    del mx
    # Outputs leave after their last touch in each repetition where the logged one's did.
    limit = min(limit, _done_agree(l1, out_keys, out_at, out_done, shift[2], m, first, limit))
    if limit <= 0:
        return None
    # Evictions per PE: occupancy c_t = min(cap, c_{t-1} + d_t) over the periodic d, from
    # the occupancy now; by the end of repetition k, E_k = max(0, c - cap + M + max(0,
    # (k-1) g)) (M: the running maximum of d's prefix sums over one repetition, g: their
    # total).
    runs = np.cumsum(d, axis=1)
    del d
    peak = np.maximum.accumulate(runs, axis=1)
    g, top = runs[:, -1], peak[:, -1]
    del runs
    c0 = l1.count[pes]
    # The old queue: old elements in (last touch, key) order, then the young ones the next
    # repetition does not touch (A), repeated per repetition. Every young element is in
    # a PE the logged repetition touched. Each PE's elements are a slice of the state.
    bounds = np.searchsorted(state, np.arange(n + 1, dtype=np.int64) * total)
    state_pe = np.repeat(np.arange(n), np.diff(bounds))
    low = int(stamp.min()) if stamp.size else 0
    order_key = state_pe * (int(stamp.max()) - low + 1) + (stamp - low) if stamp.size else stamp
    young = stamp >= first
    old = ~young & present[state_pe]
    old_pos = _queue_order(np.flatnonzero(old), order_key)
    ypos = np.flatnonzero(young)
    yk = state[ypos]
    moved_back = yk - shift[l1.space.tensor(yk)]
    _, again = _find(uniq, moved_back)
    in_a = np.zeros(state.size, dtype=bool)
    in_a[ypos[~again]] = True
    a_pos = _queue_order(ypos[~again], order_key)
    del ypos, yk, moved_back, again
    o = _counts(old, bounds)[pes]
    a = _counts(in_a, bounds)[pes]
    del old, in_a
    ks = np.arange(1, limit + 1, dtype=np.int64)
    ecum = np.maximum(0, (c0 - cap + top)[:, None] + np.maximum(0, (ks - 1)[None, :] * g[:, None]))
    short = ecum > o[:, None] + (ks - 1)[None, :] * a[:, None]
    if short.any():
        limit = int(np.argmax(short.any(axis=0)))
        if limit == 0:
            return None
    ev = ecum[:, limit - 1]
    return limit, *_apply(
        l1, shift, m, first, limit, (pes, o, a, ev, c0, g, peak, ecum[:, :limit]), old_pos, a_pos
    )


def _apply(
    l1: L1Residency,
    shift: np.ndarray,
    m: int,
    first: int,
    times: int,
    per_pe: tuple[np.ndarray, ...],
    old_pos: np.ndarray,
    a_pos: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Set the state after ``times`` repetitions; the outputs evicted (keys, steps).
    ``per_pe`` (PEs touched; per PE among them: old elements, elements of ``A``,
    evictions in all, occupancy now, growth per repetition, running maximum of the
    prefix sums, evictions by the end of each repetition); ``old_pos`` and ``a_pos``: the
    state positions of the old queue's head and of ``A``, each in (PE, last touch, key)
    order."""
    pes, o, a, ev, c0, g, peak, ecum = per_pe
    state, stamp, total, cap = l1.keys, l1.stamp, l1.total, l1.capacity
    out_lo = l1.offsets[2]
    # Old elements: rank within their PE's queue; the first `ev` go.
    oslot = np.repeat(np.arange(pes.size), o)
    orank = _ranks(oslot, o)
    gone_old = orank < ev[oslot]
    # A's copies: copy j of the element of rank r sits at o + j a + r in the queue.
    aslot = np.repeat(np.arange(pes.size), a)
    arank = _ranks(aslot, a)
    base = o[aslot] + arank
    width = np.maximum(a[aslot], 1)
    gone_copies = np.clip(-((base - ev[aslot]) // width), 0, times)  # ceil((ev - base) / a)
    # Victims that are outputs: their keys and queue positions (ranks), then their steps.
    vk: list[np.ndarray] = []
    vq: list[np.ndarray] = []
    vs: list[np.ndarray] = []
    gone = np.flatnonzero(gone_old)
    gone_keys = state[old_pos[gone]]
    outs = gone[gone_keys % total >= out_lo]
    vk.append(state[old_pos[outs]])
    vq.append(orank[outs])
    vs.append(oslot[outs])
    aout = (state[a_pos] % total >= out_lo) & (gone_copies > 0)
    if aout.any():
        n_cp = gone_copies[aout]
        j = np.arange(int(n_cp.sum())) - np.repeat(np.cumsum(n_cp) - n_cp, n_cp)
        vk.append(np.repeat(state[a_pos][aout], n_cp) + j * shift[2])
        vq.append(np.repeat(base[aout], n_cp) + j * np.repeat(a[aslot][aout], n_cp))
        vs.append(np.repeat(aslot[aout], n_cp))
    ev_keys, ev_q, ev_slot = (np.concatenate(v) for v in (vk, vq, vs))
    ev_steps = _victim_steps(ev_q + 1, ev_slot, ecum, c0 - cap, g, peak, m, first)
    # Survivors of A's copies: copies gone_copies .. times-1, translated and restamped.
    n_keep = times - gone_copies
    j = np.arange(int(n_keep.sum())) - np.repeat(np.cumsum(n_keep) - n_keep, n_keep)
    j += np.repeat(gone_copies, n_keep)
    akeys = state[a_pos]
    a_shift = shift[l1.space.tensor(akeys)]
    kept_a = np.repeat(akeys, n_keep) + j * np.repeat(a_shift, n_keep)
    kept_a_stamp = np.repeat(stamp[a_pos], n_keep) + j * m
    # The young part, translated by every repetition; the old queue's survivors.
    young = stamp >= first
    ykeys = state[young]
    new_young = ykeys + times * shift[l1.space.tensor(ykeys)]
    keep_old = np.ones(state.size, dtype=bool)
    keep_old[young] = False
    keep_old[old_pos[gone]] = False
    all_keys = np.concatenate([state[keep_old], kept_a, new_young])
    all_stamp = np.concatenate([stamp[keep_old], kept_a_stamp, stamp[young] + times * m])
    order = np.argsort(all_keys, kind="stable")
    l1.keys = all_keys[order]
    l1.stamp = all_stamp[order]
    # Each PE holds what it held, plus what arrived, less the outputs that left and
    # the victims.
    l1.count = l1.count.copy()
    l1.count[pes] = c0 + times * g - ev
    return ev_keys, ev_steps


def _victim_steps(
    nth: np.ndarray,
    vslot: np.ndarray,
    ecum: np.ndarray,
    base: np.ndarray,
    g: np.ndarray,
    peak: np.ndarray,
    m: int,
    first: int,
) -> np.ndarray:
    """The step evicting each PE's ``nth`` victim (1-based): the first with ``E >= nth``,
    in repetition ``k`` (the first whose end reaches it) at the first step ``u`` whose
    ``base + (k-1) g + M_u`` reaches it (earlier repetitions' maxima fall short)."""
    if not nth.size:
        return np.zeros(0, dtype=np.int64)
    reps = ecum.shape[1]
    # Per victim its repetition: rows of ecum are nondecreasing; offset rows to search once.
    span = int(ecum.max()) + 2
    flat = (ecum + np.arange(ecum.shape[0])[:, None] * span).ravel()
    k = np.searchsorted(flat, vslot * span + nth) - vslot * reps + 1
    need = nth - base[vslot] - (k - 1) * g[vslot]
    lo, hi = int(peak.min()), int(peak.max())
    width = hi - lo + 2
    rows = (peak - lo + np.arange(peak.shape[0])[:, None] * width).ravel()
    u = np.searchsorted(rows, vslot * width + np.clip(need - lo, 0, width - 1)) - vslot * m
    return np.asarray(first + k * m + u, dtype=np.int64)


def _queue_order(pos: np.ndarray, order_key: np.ndarray) -> np.ndarray:
    """State positions ``pos`` (increasing, so in key order) in (PE, last touch, key)
    order, by ``order_key`` (PE and last touch in one number; a stable sort keeps ties in
    key order)."""
    return pos[np.argsort(order_key[pos], kind="stable")]


def _counts(mask: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """How many of ``mask`` each PE has (``bounds``: where each PE's slice starts, and
    the end)."""
    ends = np.concatenate([[0], np.cumsum(mask)])
    return np.asarray(ends[bounds[1:]] - ends[bounds[:-1]], dtype=np.int64)


def _ranks(slot: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each element's rank within its group (``slot``: nondecreasing group numbers;
    ``sizes``: each group's size)."""
    return np.asarray(np.arange(slot.size) - (np.cumsum(sizes) - sizes)[slot], dtype=np.int64)


def _find(sorted_keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``query`` in ``sorted_keys`` (clipped) and whether each is there."""
    if not sorted_keys.size:
        return np.zeros(query.size, dtype=np.int64), np.zeros(query.size, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, query), sorted_keys.size - 1)
    return at, sorted_keys[at] == query


def _first_meet(
    l1: L1Residency, src: np.ndarray, held: np.ndarray, shift: np.ndarray, times: int
) -> int:
    """The least ``i`` in ``1..times`` for which some key of ``src`` translated by ``i``
    repetitions (``shift`` per tensor) is in ``held`` (both sorted), else ``times + 1``;
    from whichever side is smaller (``held`` moved back instead)."""
    if not src.size or not held.size:
        return times + 1
    back = held.size < src.size
    moving, target = (held, src) if back else (src, held)
    step = shift[l1.space.tensor(moving)]
    if back:
        step = -step
    rows = max(1, _CHUNK // moving.size)
    for lo in range(1, times + 1, rows):
        i = np.arange(lo, min(times, lo + rows - 1) + 1, dtype=np.int64)
        _, found = _find(target, (moving[None, :] + i[:, None] * step[None, :]).ravel())
        hit = found.reshape(i.size, -1).any(axis=1)
        if hit.any():
            return int(i[np.argmax(hit)])
    return times + 1


def _done_agree(
    l1: L1Residency,
    out_keys: np.ndarray,
    out_at: np.ndarray,
    out_done: np.ndarray,
    by: int,
    m: int,
    first: int,
    times: int,
) -> int:
    """How many of the first ``times`` repetitions send home after their last touch the
    outputs the logged one did, translated: at each output's last touch in a repetition
    (``out_at``, relative), whether a later touch is recorded."""
    if not out_keys.size or times <= 0:
        return max(times, 0)
    rows = max(1, _CHUNK // out_keys.size)
    for lo in range(1, times + 1, rows):
        k = np.arange(lo, min(times, lo + rows - 1) + 1, dtype=np.int64)[:, None]
        nxt = l1.touches.next_many(
            (out_keys[None, :] + k * by).ravel(), (first + out_at[None, :] + k * m).ravel()
        )
        bad = ((nxt == NEVER).reshape(k.size, -1) != out_done[None, :]).any(axis=1)
        if bad.any():
            return int(k[np.argmax(bad), 0]) - 1
    return times
