"""Bulk repetitions of the L1 residency: a logged repetition of a segment applied to the
L1 state for many repetitions at once, checked touch by touch (see docs/simulator.md,
*Bulk repetitions*). Functions of an :class:`L1Residency`, apart from its per-step
methods, so the class stays the state and its steps."""

from __future__ import annotations

import numpy as np

from .l1 import L1Residency, _first_row, _oldest_in, refreshed_before_eviction
from .l1_touches import NEVER

__all__ = ["bulk", "bulk_calm", "step_groups"]


def bulk(
    l1: L1Residency, rep: tuple[np.ndarray, ...], shift: np.ndarray, m: int, first: int, times: int
) -> tuple[int, np.ndarray, np.ndarray]:
    """Apply as many of the ``times`` repetitions following the logged one (``rep``,
    its ``m`` steps the first at ``first``) as :func:`bulk_calm` can, in chunks
    doubling while they apply, up to the first that does not; returns how many it
    applied and the outputs they evicted (keys, steps)."""
    applied, chunk = 0, 1
    keys: list[np.ndarray] = []
    steps: list[np.ndarray] = []
    while applied < times:
        ask = min(chunk, times - applied)
        n, agreed, evicted = bulk_calm(l1, rep, shift, m, first, applied, ask)
        if n:
            applied += n
            keys.append(evicted[0])
            steps.append(evicted[1])
            chunk *= 2
            continue
        if agreed is None:
            # Half as many may still evict only what they hold now; then the caller
            # steps a repetition (whose state may repeat exactly: no more checks).
            agreed = ask // 2
        if agreed:
            n, _, evicted = bulk_calm(l1, rep, shift, m, first, applied, agreed)
            applied += n
            keys.append(evicted[0])
            steps.append(evicted[1])
        break
    none = np.zeros(0, dtype=np.int64)
    return (
        applied,
        np.concatenate(keys) if keys else none,
        np.concatenate(steps) if steps else none,
    )


def bulk_calm(
    l1: L1Residency,
    rep: tuple[np.ndarray, ...],
    shift: np.ndarray,
    m: int,
    first: int,
    skip: int,
    times: int,
) -> tuple[int, int | None, tuple[np.ndarray, np.ndarray]]:
    """Repeat the logged repetition (``rep``, from :meth:`logged`: its ``m`` steps, the
    first at ``first``) up to ``times`` more times after the ``skip`` already applied,
    translated by ``shift`` each, if every touch hits or misses and every output leaves
    after its last touch as in it and no step overflows. Without eviction the state
    follows from first and last touches alone (an element is held iff held now or
    touched since). Under ``lru`` evictions are allowed when they take only elements
    held now and not touched since (:func:`_evicted`), outputs among them too (they
    leave as partial sums: the caller compares them with the logged ones, translated,
    and builds the records of the steps where they differ, :meth:`replay`); under
    ``optimal`` none. Returns how many repetitions it applied (0: none; state
    unchanged), when none how many leading ones agreed with the log (a call for that
    many applies them; ``None``: not known, e.g. they ran out of elements to evict),
    and the outputs the applied ones evicted (keys, steps)."""
    step_keys, tensor, ref_hit, ref_done, local = rep[:5]
    nothing = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    if times <= 0:
        return 0, None, nothing
    times = min(times, max(1, 1_000_000 // max(1, step_keys.size)))
    reps = np.arange(skip + 1, skip + times + 1, dtype=np.int64)[:, None]
    keys = (step_keys[None, :] + reps * shift[tensor][None, :]).ravel()
    index = (first + local[None, :] + reps * m).ravel()
    outs = np.tile(tensor == 2, times)
    # Touches grouped by key in step order: a group's first is the key's first touch.
    # A repetition's touches in key order translate to each one's (a translation keeps
    # keys in order), so only the repetitions' sorted runs are merged.
    by_key = rep[7]  # only read
    if times > 1:
        by_key = (np.arange(times, dtype=np.int64)[:, None] * step_keys.size + by_key).ravel()
        by_key = by_key[np.argsort(keys[by_key], kind="stable")]
    sorted_keys = keys[by_key]
    head = np.ones(keys.size, dtype=bool)
    head[1:] = sorted_keys[1:] != sorted_keys[:-1]
    tail = np.ones(keys.size, dtype=bool)
    tail[:-1] = head[1:]
    uniq = sorted_keys[head]
    del sorted_keys
    # Whether each touched key is held now (and where), per key.
    at_u = np.searchsorted(l1.keys, uniq)
    held_u = np.zeros(uniq.size, dtype=bool)
    ok = at_u < l1.keys.size
    held_u[ok] = l1.keys[at_u[ok]] == uniq[ok]
    del ok
    touched_at = at_u[held_u]
    want_hit = np.tile(ref_hit, times)
    nxt = np.full(keys.size, NEVER, dtype=np.int64)
    asked = np.ones(keys.size, dtype=bool) if l1.eviction == "optimal" else outs
    # Asked in key order (then step: ascending codes), which searches faster.
    ask = by_key[asked[by_key]]
    nxt[ask] = l1.touches.next_many(keys[ask], index[ask])
    done = outs if l1.psum_every_step else outs & (nxt == NEVER)
    # Each check finds the first repetition that differs from the log; the state
    # evolves causally, so the ones before it are exact.
    agreed = _first_row(done != np.tile(ref_done, times), times)
    found = _evicted(l1, keys, index, want_hit, done, uniq, index[by_key[head]])
    if found is None:
        return 0, None, nothing
    evicted, when = found
    if evicted.size:
        gone = np.zeros(l1.keys.size, dtype=bool)
        gone[evicted] = True
        held_u[held_u] = ~gone[at_u[held_u]]
    # A touch hits what is held (not evicted before its first touch) or touched before.
    hit = np.empty(keys.size, dtype=bool)
    hit[by_key] = held_u[np.cumsum(head) - 1] | ~head
    if l1.psum_every_step:
        hit &= ~outs
    agreed = min(agreed, _first_row(hit != want_hit, times))
    if agreed < times:
        return 0, agreed, nothing
    ev_keys = l1.keys[evicted]
    ev_out = l1.space.tensor(ev_keys) == 2
    # The state after them: last touches' stamps and next touches, minus what left.
    last = by_key[tail]
    new_keys = keys[last]
    keep_new = ~done[last]
    new_keys = new_keys[keep_new]
    new_stamp = index[last][keep_new]
    new_next = nxt[last][keep_new]
    # Untouched elements stay; the touched ones (distinct, in key order) go in.
    old = np.ones(l1.keys.size, dtype=bool)
    old[touched_at] = False
    old[evicted] = False
    out = np.bincount(l1.keys[~old] // l1.total, minlength=l1.n_pes)
    kept = l1.keys[old]
    at = np.searchsorted(kept, new_keys)
    l1.keys = np.insert(kept, at, new_keys)
    l1.stamp = np.insert(l1.stamp[old], at, new_stamp)
    if l1.track_next:
        l1.next_use = np.insert(l1.next_use[old], at, new_next)
    l1.count += np.bincount(new_keys // l1.total, minlength=l1.n_pes) - out
    return times, None, (ev_keys[ev_out], when[ev_out])


def _evicted(
    l1: L1Residency,
    keys: np.ndarray,
    index: np.ndarray,
    hit: np.ndarray,
    done: np.ndarray,
    uniq: np.ndarray,
    first_touch: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions in the state of the elements that touches ``keys`` at steps ``index``
    (nondecreasing), hitting as ``hit`` says and with outputs ``done`` leaving, evict,
    and the step evicting each; ``None`` when that is not the simple case this answers
    exactly.

    Per PE the occupancy after step ``t`` is ``c_t = min(cap, c_{t-1} + d_t)`` (``d``:
    misses minus leaving outputs), so the evictions up to ``t`` are
    ``E_t = max(0, c_0 - cap + max_{s<=t} S_s)`` with ``S`` the running sum of ``d``.
    LRU evicts the least recently touched elements outside the step's working set:
    while elements held at the start and not touched since remain, those, in (last
    touch, key) order; an element touched first at ``f`` is passed over (refreshed)
    when the eviction that reaches it comes at or after ``f``, and the ``i``-th victim
    goes at the first step with ``E_t >= i``. Anything else (a step over capacity,
    evictions under ``optimal``, running out of such elements) gives ``None``."""
    total, cap = l1.total, l1.capacity
    nothing = np.zeros(0, dtype=np.int64)
    if not keys.size:
        return nothing, nothing
    g_pe, g_idx, sizes, d = step_groups(l1, keys, index, (~hit).astype(np.int8) - done)
    if int(sizes.max()) > cap:
        return None
    run = np.cumsum(d)
    pe_start = np.ones(g_pe.size, dtype=bool)
    pe_start[1:] = g_pe[1:] != g_pe[:-1]
    firsts = np.flatnonzero(pe_start)
    owner = np.cumsum(pe_start) - 1
    s_run = run - (run[firsts] - d[firsts])[owner]
    big = int(np.abs(d).sum()) * 2 + 2
    peak = np.maximum.accumulate(s_run + owner * big) - owner * big
    c0 = l1.count[g_pe]
    if int(c0.max()) > cap:
        return None
    evict = np.maximum(0, c0 - cap + peak)
    if not evict.any():
        return nothing, nothing
    if l1.eviction != "lru":
        return None
    # Every evicting PE at once: its queue (the first `need` in (last touch, key)
    # order, plus as many as it touches: only those can go), the queue's elements it
    # touches and when, and the victims.
    ends = np.append(firsts[1:], g_pe.size)
    needs = evict[ends - 1]
    live = np.flatnonzero(needs > 0)
    pes, need = g_pe[firsts[live]], needs[live]
    bounds = np.stack([pes * total, (pes + 1) * total])
    lo, hi = np.searchsorted(l1.keys, bounds)
    u0, u1 = np.searchsorted(uniq, bounds)
    lengths = hi - lo
    if np.any(lengths < need):
        return None
    queue = _oldest_in(l1.stamp, lo, hi, need + u1 - u0)
    qsize = np.minimum(need + u1 - u0, lengths)
    qseg = np.repeat(np.arange(live.size), qsize)
    # Each queue element's segment's first position.
    qfirst = np.repeat(np.cumsum(qsize) - qsize, qsize)
    qkeys = l1.keys[queue]
    at = np.minimum(np.searchsorted(uniq, qkeys), max(0, uniq.size - 1))
    touched = uniq[at] == qkeys if uniq.size else np.zeros(qkeys.size, dtype=bool)
    # The live PEs' eviction schedules, concatenated, keyed to search them all at once.
    groups = np.flatnonzero(np.repeat(needs > 0, ends - firsts))
    width = int(need.max()) + 2
    sched = np.repeat(np.arange(live.size), ends[live] - firsts[live]) * width + evict[groups]
    qpos = np.arange(queue.size) - qfirst
    tq = np.flatnonzero(touched)
    refreshed = np.zeros(queue.size, dtype=bool)
    refreshed[tq] = refreshed_before_eviction(
        qpos[tq], first_touch[at[tq]], qseg[tq], g_idx[groups], sched, width, need
    )
    keep = ~refreshed
    run = np.cumsum(keep, dtype=np.int64)
    rank = run - (run[qfirst] - keep[qfirst]) - 1
    if np.any(np.bincount(qseg[keep], minlength=live.size) < need):
        return None
    victims = queue[keep & (rank < need[qseg])]
    vseg = np.repeat(np.arange(live.size), need)
    nth = np.arange(vseg.size) - np.repeat(np.cumsum(need) - need, need) + 1
    return victims, g_idx[groups[np.searchsorted(sched, vseg * width + nth)]]


def step_groups(
    l1: L1Residency, keys: np.ndarray, index: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The touches (``keys`` at steps ``index``, nondecreasing) grouped by PE, then
    step: each group's PE, step, touches and sum of ``delta``."""
    pe = keys // l1.total
    same = index[1:] == index[:-1]
    if np.all(~same | (pe[1:] >= pe[:-1])):
        # By step, then PE (a step's keys are sorted): a group is a run of touches;
        # the runs go in PE order (a radix sort on narrow PE numbers).
        new = np.ones(keys.size, dtype=bool)
        new[1:] = ~same | (pe[1:] != pe[:-1])
        starts = np.flatnonzero(new)
        run_pe = pe[starts]
        narrow = run_pe.astype(np.int16) if l1.n_pes < 1 << 15 else run_pe
        order = np.argsort(narrow, kind="stable")
        sizes = np.diff(np.append(starts, keys.size))
        d = np.add.reduceat(delta, starts, dtype=np.int64)
        return run_pe[order], index[starts][order], sizes[order], d[order]
    order = np.argsort(pe, kind="stable")
    pe_o, idx_o = pe[order], index[order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (pe_o[1:] != pe_o[:-1]) | (idx_o[1:] != idx_o[:-1])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, order.size))
    d = np.add.reduceat(delta[order], starts, dtype=np.int64)
    return pe_o[starts], idx_o[starts], sizes, d
