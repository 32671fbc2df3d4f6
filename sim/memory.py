"""The shared L2 and the off-chip memory behind it, tracked element by element.

L2 fetches an input or weight element from off-chip the first time a step needs it and
keeps it until evicted. When a step leaves more elements held than the capacity, L2
evicts exactly the excess, least recently used first (inputs and weights by last L2
read, outputs by last write; ties to the lower position), so it holds, after every
step, the ``capacity`` most recently used elements: a larger L2 holds a superset (LRU
is a stack algorithm). An evicted output is fetched back if a later partial sum must be
added to it.

Every stay of an output in L2 ends with one off-chip write, by the step after the last
one that updated it during that stay (the write-back is scheduled as soon as the value
will not change before it leaves L2: when it is final, or before an eviction). So when
outputs are written does not depend on the capacity, only how often; those last updated
by the last step are written after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metronome.spec.hardware import UNBOUNDED, Hardware

from .l1 import refreshed_before_eviction
from .traffic import Footprint

__all__ = ["L2Memory", "L2Step", "OffchipTiming", "SegmentL2"]


@dataclass(frozen=True, slots=True)
class OffchipTiming:
    """The off-chip channel: one transfer at a time at ``elems_per_cycle``; a read's data
    arrives ``latency_cycles`` after its transfer, and up to ``max_outstanding`` steps'
    requests may be in flight at once (pipelined latency). Also L2's read port for
    read-modify-write reads, ``l2_read_elems_per_cycle``."""

    latency_cycles: int
    elems_per_cycle: int
    max_outstanding: int = 1
    l2_read_elems_per_cycle: int = UNBOUNDED

    @classmethod
    def of(cls, hw: Hardware) -> OffchipTiming:
        """The off-chip timing of ``hw``."""
        return cls(
            hw.offchip_latency_cycles,
            hw.offchip_bw_elems_per_cycle,
            hw.offchip_max_outstanding_requests,
            hw.l2_read_bw_elems_per_cycle,
        )

    def transfer_cycles(self, n_elems: int) -> int:
        """Cycles the channel is busy moving ``n_elems`` (0 for nothing)."""
        if n_elems <= 0:
            return 0
        return -(-n_elems // self.elems_per_cycle)

    def transfer(self, reads: int, writes: int, rmw: int = 0) -> tuple[int, int, int]:
        """A step's memory costs: off-chip channel cycles, the latency before its reads
        arrive, and the L2 read port's cycles for its ``rmw`` read-modify-write reads
        (none on an unbounded port, which is no shared resource)."""
        cycles = self.transfer_cycles(reads + writes)
        port = 0
        if rmw > 0 and self.l2_read_elems_per_cycle < UNBOUNDED:
            port = -(-rmw // self.l2_read_elems_per_cycle)
        return cycles, self.latency_cycles if reads and cycles else 0, port

    def transfers(self, traffic: np.ndarray) -> np.ndarray:
        """:meth:`transfer` of every row of ``traffic`` (reads, writes, rmw reads), as an
        array of shape ``(steps, 3)``."""
        reads, moved = traffic[:, 0], traffic[:, 0] + traffic[:, 1]
        cycles = -(-moved // self.elems_per_cycle)
        latency = np.where((reads > 0) & (cycles > 0), self.latency_cycles, 0)
        port = -(-traffic[:, 2] // self.l2_read_elems_per_cycle)
        if self.l2_read_elems_per_cycle >= UNBOUNDED:
            port = np.zeros_like(port)
        return np.stack([cycles, latency, port], axis=1)


@dataclass(frozen=True, slots=True)
class L2Step:
    """What L2 did for one step: off-chip elements fetched before distribution, output
    elements read for read-modify-write, output elements fetched back from off-chip, and
    output elements written off-chip with this step's transfer
    (:meth:`L2Memory.writes_at`, known once the run's L2 accounting is complete)."""

    misses: int
    rmw_reads: int
    output_refetches: int
    writes: int = 0

    @property
    def traffic(self) -> tuple[int, int, int]:
        """Off-chip elements read and written for this step, and its read-modify-write
        reads."""
        return self.misses + self.output_refetches, self.writes, self.rmw_reads


class L2Memory:
    """Residency of every tensor element in L2, with exact LRU eviction."""

    def __init__(self, shapes: tuple[tuple[int, ...], ...], capacity_elems: int) -> None:
        self.shapes = shapes
        self.capacity = capacity_elems
        self.last_use = [np.full(shape, -1, dtype=np.int64) for shape in shapes]
        self.written = np.zeros(shapes[2], dtype=bool)
        self.sizes = [int(np.prod(shape)) for shape in shapes]
        self.strides = [
            [int(np.prod(shape[d + 1 :])) for d in range(len(shape))] for shape in shapes
        ]
        self.resident = [0, 0, 0]
        self.never_evicts = sum(self.sizes) <= capacity_elems
        self.occupancy = 0
        self.peak_occupancy = 0
        self.offchip_reads = [0, 0, 0]
        self.offchip_writes = 0
        self.fills = [0, 0, 0]
        self.evictions = 0
        self._cells: dict[int, tuple[Footprint, np.ndarray]] = {}
        self._batch_steps = 1 << 30
        self._scratch: list[np.ndarray | None] = [None, None, None]
        self._writes = np.zeros(1024, dtype=np.int64)
        # Per tensor the flat indices of the held elements, in chunks kept by
        # batches (None: not known); they may list elements evicted since (``_ghosts``:
        # those evictions), dropped from the lists when next read.
        self._held: list[list[np.ndarray]] | None = None
        self._ghosts = np.zeros(0, dtype=np.int64)
        # The held elements with a stamp at most a bound when last listed (bound, global
        # positions): every element held with a stamp that low since is among them (a
        # stamp only grows, an element arriving later is stamped later). Valid while
        # ``_held`` is.
        self._oldest: tuple[int, np.ndarray] | None = None
        self._offsets = np.cumsum([0, *self.sizes])
        self._is_ghost = np.zeros(int(self._offsets[-1]), dtype=bool)  # ``_ghosts`` as a mask

    @staticmethod
    def _view(array: np.ndarray, corner: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
        return array[tuple(slice(c, c + n) for c, n in zip(corner, shape, strict=True))]

    def step(
        self,
        index: int,
        footprints: tuple[Footprint | None, ...],
        base: dict[str, int],
        dims: tuple[tuple[str, ...], ...],
    ) -> L2Step:
        """Account one step: fetch missing inputs/weights, write its outputs."""
        self._held = None
        misses = 0
        for t in range(2):
            fp = footprints[t]
            if fp is None or (self.never_evicts and self.resident[t] == self.sizes[t]):
                continue
            corner = tuple(r + base.get(d, 0) for r, d in zip(fp.rel_lo, dims[t], strict=True))
            view = self._view(self.last_use[t], corner, fp.canvas.shape)
            missing = fp.canvas & (view < 0)
            n = int(missing.sum())
            if n:
                misses += n
                self.resident[t] += n
                self.occupancy += n
                self.offchip_reads[t] += n
                self.fills[t] += n
            if not self.never_evicts:
                view[fp.canvas] = index
            elif n:
                view[missing] = index
        rmw = refetch = 0
        fp = footprints[2]
        if fp is not None:
            corner = tuple(r + base.get(d, 0) for r, d in zip(fp.rel_lo, dims[2], strict=True))
            view = self._view(self.last_use[2], corner, fp.canvas.shape)
            written = self._view(self.written, corner, fp.canvas.shape)
            again = fp.canvas & written
            rmw = int(again.sum())
            gone = again & (view < 0)
            refetch = int(gone.sum())
            fresh = int((fp.canvas & (view < 0)).sum())
            self.offchip_reads[2] += refetch
            self.resident[2] += fresh
            self.occupancy += fresh
            view[fp.canvas] = index
            written[fp.canvas] = True
        self.peak_occupancy = max(self.peak_occupancy, self.occupancy)
        if self.occupancy > self.capacity:
            self._evict()
        return L2Step(misses, rmw, refetch)

    def _write_back(self, stamps: np.ndarray) -> None:
        """Schedule the off-chip writes of outputs last updated at steps ``stamps``: each
        with the next step's transfer."""
        if not stamps.size:
            return
        top = int(stamps.max()) + 2
        if top > self._writes.size:
            grown = np.zeros(max(top, 2 * self._writes.size), dtype=np.int64)
            grown[: self._writes.size] = self._writes
            self._writes = grown
        low = int(stamps.min()) + 1
        self._writes[low:top] += np.bincount(stamps + 1 - low, minlength=top - low)
        self.offchip_writes += int(stamps.size)

    def writes_at(self, first: int, count: int) -> np.ndarray:
        """Off-chip writes carried by steps ``[first, first + count)`` (complete once
        :meth:`finish` ran)."""
        out = np.zeros(count, dtype=np.int64)
        have = self._writes[first : first + count]
        out[: have.size] = have
        return out

    def _evict(self) -> None:
        """Evict down to the capacity; outputs evicted are written back."""
        self._held = None
        excess = self.occupancy - self.capacity
        stamps = np.concatenate([a.ravel() for a in self.last_use])
        resident = np.flatnonzero(stamps >= 0)
        values = stamps[resident]
        if excess >= values.size:
            order = resident
        else:
            # The `excess` least recently used, ties to the lower position (a stable sort's
            # choice), found by selection instead of sorting.
            kth = np.partition(values, excess - 1)[excess - 1]
            below = resident[values < kth]
            ties = resident[values == kth][: excess - below.size]
            order = np.concatenate([below, ties])
        self._drop(order)

    def _drop(self, order: np.ndarray) -> None:
        """Evict the elements at global positions ``order`` (tensors' flat indices one
        after the other); outputs among them are written back."""
        offsets = np.cumsum([0, *self.sizes])
        for t in range(3):
            chosen = order[(order >= offsets[t]) & (order < offsets[t + 1])] - offsets[t]
            if chosen.size == 0:
                continue
            flat = self.last_use[t].reshape(-1)
            if t == 2:
                self._write_back(flat[chosen])
            flat[chosen] = -1
            self.resident[t] -= chosen.size
        self.occupancy -= int(order.size)
        self.evictions += int(order.size)

    def scratch(self, t: int) -> np.ndarray:
        """A tensor-sized work array of ``_NEVER`` (callers leave it so)."""
        found = self._scratch[t]
        if found is None:
            found = self._scratch[t] = np.full(self.sizes[t], _NEVER, dtype=np.int64)
        return found

    def cells(self, fp: Footprint, shape: tuple[int, ...]) -> np.ndarray:
        """Flat offsets of a footprint's elements from its corner (cached)."""
        hit = self._cells.get(id(fp))
        if hit is None or hit[0] is not fp:
            hit = self._cells[id(fp)] = (fp, _flat_cells(fp, shape))
        return hit[1]

    def segment(
        self,
        first: int,
        footprints: list[tuple[Footprint | None, Footprint | None, Footprint | None]],
        bases: list[dict[str, int]],
        delta: dict[str, int],
        count: int,
        dims: tuple[tuple[str, ...], ...],
    ) -> SegmentL2:
        """Account ``count`` repetitions of a block of steps (footprints and bases of
        the first repetition; repetition ``b`` is translated by ``b * delta``) exactly as
        :meth:`step` would one step at a time, in batches between evictions."""
        return self.blocks(first, [(footprints, bases, delta, count)], dims)

    def blocks(
        self,
        first: int,
        blocks: list[
            tuple[
                list[tuple[Footprint | None, Footprint | None, Footprint | None]],
                list[dict[str, int]],
                dict[str, int],
                int,
            ]
        ],
        dims: tuple[tuple[str, ...], ...],
    ) -> SegmentL2:
        """:meth:`segment` of consecutive segments (each its block's footprints and
        bases, move and repetitions) in one pass: the same per step, without a pass per
        segment."""
        tensors = [
            _Segmenter(self, t, [([fp[t] for fp in b[0]], *b[1:]) for b in blocks], dims[t])
            for t in range(3)
        ]
        m = tensors[0].m
        total = m * (blocks[0][3] if len(blocks) == 1 else 1)
        out = SegmentL2(total)
        per_step = int(sum(t.per_step.sum() for t in tensors)) / max(1, m)
        s = 0
        while s < total:
            span = max(1, min(self._batch_steps, int(_BATCH_ENTRIES / max(1.0, per_step))))
            s = self._batch(first, tensors, s, min(total, s + span), out)
        return out

    def _batch(
        self, first: int, tensors: list[_Segmenter], s0: int, s1: int, out: SegmentL2
    ) -> int:
        """Steps ``[s0, s1)``, or a prefix of them; returns the next step to do.

        Elements touched in the batch are the most recently used, so while they number
        at most the capacity none of them is evicted in it: L2 then evicts only elements
        held at its start, in LRU order, ``E_t = max(0, occupancy_0 + B_t - capacity)`` of
        them by step ``t`` (``B_t``: elements arriving by ``t``), passing over those a step
        touches before eviction reaches them. The batch ends before a step touching more
        distinct elements than the capacity (such a step is done alone, as :meth:`step`
        does it) and before an element evicted in it is touched again."""
        n = s1 - s0
        inc = np.zeros(n, dtype=np.int64)
        distinct = np.zeros(n, dtype=np.int64)
        batches: list[L2Batch | None] = []
        fresh_masks: list[np.ndarray | None] = []
        for t in range(2):
            skip = self.never_evicts and self.resident[t] == self.sizes[t]
            batch = None if skip else tensors[t].touches(s0, s1)
            batches.append(batch)
            if batch is None:
                fresh_masks.append(None)
                continue
            view = self.last_use[t].reshape(-1)
            missing = view[batch.pos] < 0
            fresh_masks.append(missing)
            inc += np.bincount(batch.first[missing] - s0, minlength=n)
            distinct += np.bincount(batch.first - s0, minlength=n)
        out_batch = tensors[2].touches(s0, s1)
        absent = written = np.zeros(0, dtype=bool)
        if out_batch is not None:
            lu = self.last_use[2].reshape(-1)[out_batch.pos]
            written = self.written.reshape(-1)[out_batch.pos]
            absent = lu < 0
            inc += np.bincount(out_batch.first[absent] - s0, minlength=n)
            distinct += np.bincount(out_batch.first - s0, minlength=n)
        arrived = np.cumsum(inc)
        wide = np.flatnonzero(np.cumsum(distinct) > self.capacity)
        end = s1 - 1 if not wide.size else s0 + int(wide[0]) - 1
        alone = end < s0
        if alone:
            end = s0
        evict = np.maximum(0, self.occupancy + arrived[: end + 1 - s0] - self.capacity)
        victims = np.zeros(0, dtype=np.int64)
        if not alone and evict[-1]:
            victims, when, again = self._victims(batches, fresh_masks, out_batch, absent, s0, evict)
            if again <= end:
                end = again - 1
                keep = when <= end
                victims = victims[keep]
                evict = evict[: end + 1 - s0]
        # Apply steps [s0, end].
        for t in range(2):
            batch, missing = batches[t], fresh_masks[t]
            if batch is None or missing is None:
                continue
            done = batch.first <= end
            hit = missing & done
            k = int(hit.sum())
            out.misses[s0 : end + 1] += np.bincount(batch.first[hit] - s0, minlength=end + 1 - s0)
            self.resident[t] += k
            self.offchip_reads[t] += k
            self.fills[t] += k
            view = self.last_use[t].reshape(-1)
            if not self.never_evicts:
                view[batch.pos[done]] = first + batch.last(end)
            else:
                view[batch.pos[hit]] = first + batch.first[hit]
        if out_batch is not None:
            done = out_batch.first <= end
            touches = tensors[2].per_step[np.arange(s0, end + 1) % tensors[2].m]
            new = ~written & done
            rmws = touches - np.bincount(out_batch.first[new] - s0, minlength=end + 1 - s0)
            out.rmws[s0 : end + 1] += rmws
            out.rmw += int(rmws.sum())
            back = written & absent & done
            refetch = int(back.sum())
            out.refetch += refetch
            out.refetches[s0 : end + 1] += np.bincount(
                out_batch.first[back] - s0, minlength=end + 1 - s0
            )
            self.offchip_reads[2] += refetch
            self.resident[2] += int((absent & done).sum())
            self.last_use[2].reshape(-1)[out_batch.pos[done]] = first + out_batch.last(end)
            self.written.reshape(-1)[out_batch.pos[done]] = True
        # Occupancy before each step's eviction: what the previous step left plus arrivals.
        grown = self.occupancy + arrived[: end + 1 - s0]
        before = np.minimum(self.capacity, np.concatenate([[self.occupancy], grown[:-1]]))
        self.peak_occupancy = max(self.peak_occupancy, int((before + inc[: end + 1 - s0]).max()))
        self.occupancy = int(grown[-1])
        if self._held is not None:
            arrivals: list[tuple[int, np.ndarray]] = []
            for t in range(2):
                batch, missing = batches[t], fresh_masks[t]
                if batch is not None and missing is not None:
                    arrivals.append((t, batch.pos[missing & (batch.first <= end)]))
            if out_batch is not None:
                arrivals.append((2, out_batch.pos[absent & (out_batch.first <= end)]))
            for t, pos in arrivals:
                if self._ghosts.size:
                    # An evicted element still listed is held again: listed once.
                    pos = pos[~self._is_ghost[pos + self._offsets[t]]]
                self._held[t].append(pos)
        if alone:
            if self.occupancy > self.capacity:
                self._evict()
        elif victims.size:
            self._drop(victims)
            if self._held is not None:
                self._ghosts = np.concatenate([self._ghosts, victims])
                self._is_ghost[victims] = True
        cut = end + 1 < s1
        if cut:
            self._batch_steps = max(16, 2 * (end + 1 - s0))
        else:
            self._batch_steps = min(1 << 30, 2 * self._batch_steps)
        return end + 1

    def _held_stamps(self, depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Global positions of the held elements and their last-use stamps; with
        ``depth``, only those with a stamp at most the ``depth``-th least."""
        offsets = self._offsets
        if self._held is None:
            self._oldest = None
            self._held = [[np.flatnonzero(lu.reshape(-1) >= 0)] for lu in self.last_use]
        elif depth is not None and self._oldest is not None and self._ghosts.size < 1 << 16:
            found = self._from_oldest(depth)
            if found is not None:
                return found
        held: list[np.ndarray] = []
        stamps: list[np.ndarray] = []
        for t, lu in enumerate(self.last_use):
            chunks = self._held[t]
            mine = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
            values = lu.reshape(-1)[mine]
            if self._ghosts.size:
                live = values >= 0
                mine, values = mine[live], values[live]
            self._held[t] = [mine]
            held.append(mine)
            stamps.append(values)
        self._is_ghost[self._ghosts] = False
        self._ghosts = np.zeros(0, dtype=np.int64)
        values = np.concatenate(stamps)
        keep = None
        if depth is not None and depth < values.size:
            pool = _POOL * depth
            if pool <= values.size // 2:
                bound = _kth_smallest(values, pool)
                pairs = enumerate(zip(held, stamps, strict=True))
                oldest = np.concatenate([m[v <= bound] + offsets[t] for t, (m, v) in pairs])
                self._oldest = bound, oldest
            keep = values <= _kth_smallest(values, depth)
            values = values[keep]
        parts, at = [], 0
        for t, mine in enumerate(held):
            if keep is not None:
                mine = mine[keep[at : at + mine.size]]
                at += held[t].size
            parts.append(mine + offsets[t])
        return np.concatenate(parts), values

    def _from_oldest(self, depth: int) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`_held_stamps` with ``depth`` from the elements listed in ``_oldest``
        (``None`` when fewer than ``depth`` of them are still held that old)."""
        assert self._oldest is not None
        bound, pos = self._oldest
        t = np.searchsorted(self._offsets, pos, side="right") - 1
        values = np.empty(pos.size, dtype=np.int64)
        for k, lu in enumerate(self.last_use):
            mine = t == k
            values[mine] = lu.reshape(-1)[pos[mine] - self._offsets[k]]
        live = (values >= 0) & (values <= bound)
        pos, values = pos[live], values[live]
        self._oldest = bound, pos
        if values.size < depth:
            return None
        keep = values <= _kth_smallest(values, depth)
        return pos[keep], values[keep]

    def _victims(
        self,
        batches: list[L2Batch | None],
        fresh_masks: list[np.ndarray | None],
        out_batch: L2Batch | None,
        absent: np.ndarray,
        s0: int,
        evict: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """The elements held at the batch's start that steps ``s0, s0 + 1, ...`` evict,
        ``evict[i]`` of them by step ``s0 + i`` (global positions, in eviction order), the
        step evicting each, and the first step (``_NEVER``: none) that touches again an
        element evicted before it."""
        offsets = np.cumsum([0, *self.sizes])
        # Elements held at the start that the batch touches, with their first touch.
        pos_parts, first_parts = [], []
        for t, batch in enumerate([*batches, out_batch]):
            if batch is None:
                continue
            held = ~(fresh_masks[t] if t < 2 else absent)  # type: ignore[operator]
            pos_parts.append(batch.pos[held] + offsets[t])
            first_parts.append(batch.first[held])
        touched_pos = np.concatenate(pos_parts) if pos_parts else np.zeros(0, dtype=np.int64)
        touched_first = np.concatenate(first_parts) if first_parts else np.zeros(0, dtype=np.int64)
        need = int(evict[-1])
        # The LRU queue (stamp, position) up to the need-th untouched element: at most
        # need + (touched held elements) from its start.
        resident, values = self._held_stamps(need + touched_pos.size)
        queue = resident[np.lexsort((resident, values))]
        sort = np.argsort(touched_pos)
        spos, sfirst = touched_pos[sort], touched_first[sort]
        f = np.full(queue.size, _NEVER, dtype=np.int64)
        if spos.size:
            at = np.minimum(np.searchsorted(spos, queue), spos.size - 1)
            touched = spos[at] == queue
            f[touched] = sfirst[at[touched]]
        steps = np.arange(s0, s0 + evict.size, dtype=np.int64)
        refreshed = np.zeros(queue.size, dtype=bool)
        where = np.flatnonzero(f < _NEVER)
        if where.size:
            one_segment = np.zeros(where.size, dtype=np.int64)
            refreshed[where] = refreshed_before_eviction(
                where, f[where], one_segment, steps, evict, need + 2, np.array([need])
            )
        chosen = np.flatnonzero(~refreshed)[:need]
        victims = queue[chosen]
        when = steps[np.searchsorted(evict, np.arange(1, victims.size + 1))]
        again = f[chosen]
        return victims, when, int(again.min()) if again.size else _NEVER

    def finish(self, steps: int) -> int:
        """Write back every output still held in L2 at the end of a run of ``steps``
        steps; returns how many writes come after the last step."""
        stamps = self.last_use[2][self.last_use[2] >= 0]
        self._write_back(stamps.ravel())
        return int(self._writes[steps:].sum())


def _kth_smallest(values: np.ndarray, k: int) -> int:
    """The ``k``-th smallest of ``values`` (1-based), selected among those at most a
    bound above the least, the bound growing until ``k`` of them are."""
    low = int(values.min())
    bound = 1
    while True:
        under = values < low + bound
        if int(np.count_nonzero(under)) >= k:
            return int(np.partition(values[under], k - 1)[k - 1])
        bound *= 4


_POOL = 8
"""The victim search lists the ``_POOL`` x its need oldest held elements for the next."""
_BATCH_ENTRIES = 1 << 21
"""Most (element, step) touches handled in one batch of :meth:`L2Memory.segment`."""
_NEVER = np.iinfo(np.int64).max


class L2Batch:
    """The touches of a run of steps on one tensor (flat element index, step), with each
    touched element's first step. ``scratch`` is a tensor-sized array of ``_NEVER`` that
    is left as found."""

    def __init__(self, flat: np.ndarray, steps: np.ndarray, scratch: np.ndarray) -> None:
        self.flat = flat
        self.steps = steps
        self.scratch = scratch
        np.minimum.at(scratch, flat, steps)
        # A step touches an element at most once: exactly one touch carries its first step.
        firsts = scratch[flat] == steps
        self.pos = flat[firsts]
        self.first = steps[firsts]
        scratch[self.pos] = _NEVER

    def last(self, until: int) -> np.ndarray:
        """Last step (at most ``until``) touching each element first touched by then."""
        keep = self.steps <= until
        scratch = self.scratch
        scratch[self.pos] = -1
        np.maximum.at(scratch, self.flat[keep], self.steps[keep])
        out: np.ndarray = scratch[self.pos[self.first <= until]]
        scratch[self.pos] = _NEVER
        return out


class SegmentL2:
    """What L2 did over a segment: misses and output refetches per step (for the
    timing) and totals."""

    def __init__(self, steps: int) -> None:
        self.misses = np.zeros(steps, dtype=np.int64)
        self.refetches = np.zeros(steps, dtype=np.int64)
        self.rmws = np.zeros(steps, dtype=np.int64)
        self.rmw = 0
        self.refetch = 0

    def reads(self) -> np.ndarray:
        """Off-chip reads per step."""
        return self.misses + self.refetches


def _flat_cells(fp: Footprint, shape: tuple[int, ...]) -> np.ndarray:
    strides = np.array([int(np.prod(shape[d + 1 :])) for d in range(len(shape))], dtype=np.int64)
    cells = np.nonzero(fp.canvas)
    flat = np.zeros(cells[0].size, dtype=np.int64)
    for d, coords in enumerate(cells):
        flat += coords.astype(np.int64) * strides[d]
    return flat


class _Segmenter:
    """Batches of a segment's touches on one tensor. Steps whose footprints share a
    canvas form a group, handled with a few array operations per batch. Several
    segments (blocks) are laid out step by step as one block done once."""

    def __init__(
        self,
        memory: L2Memory,
        t: int,
        blocks: list[tuple[list[Footprint | None], list[dict[str, int]], dict[str, int], int]],
        dims: tuple[str, ...],
    ) -> None:
        shape = memory.shapes[t]
        strides = memory.strides[t]
        self.cells: list[np.ndarray] = []
        ids: dict[int, int] = {}
        seen: dict[int, tuple[int, int]] = {}
        groups: list[np.ndarray] = []
        corners: list[np.ndarray] = []
        self.delta = 0
        for fps, bases, delta, count in blocks:
            m = len(fps)
            group = np.full(m, -1, dtype=np.int64)
            # A step's corner is its footprint's offset plus its base's, both flat.
            offsets = np.zeros(m, dtype=np.int64)
            for j, fp in enumerate(fps):
                if fp is None:
                    continue
                hit = seen.get(id(fp))
                if hit is None:
                    g = ids.get(id(fp.canvas))
                    if g is None:
                        g = ids[id(fp.canvas)] = len(self.cells)
                        self.cells.append(memory.cells(fp, shape))
                    off = sum(r * k for r, k in zip(fp.rel_lo, strides, strict=True))
                    hit = seen[id(fp)] = (off, g)
                offsets[j], group[j] = hit
            base_off = np.zeros(m, dtype=np.int64)
            for d, k in zip(dims, strides, strict=True):
                if k:
                    base_off += k * np.fromiter((b.get(d, 0) for b in bases), np.int64, m)
            corner = np.where(group >= 0, offsets + base_off, 0)
            self.delta = sum(delta.get(d, 0) * k for d, k in zip(dims, strides, strict=True))
            if len(blocks) > 1 and count > 1:
                # Laid out repetition by repetition.
                reps = np.arange(count, dtype=np.int64)[:, None] * self.delta
                corner = np.where(group >= 0, corner[None, :] + reps, 0).ravel()
                group = np.tile(group, count)
            groups.append(group)
            corners.append(corner)
        if len(blocks) > 1:
            self.delta = 0
        self.group = np.concatenate(groups) if len(groups) > 1 else groups[0]
        self.corner = np.concatenate(corners) if len(corners) > 1 else corners[0]
        self.m = self.group.size
        sizes = np.zeros(self.m, dtype=np.int64)
        if self.cells:
            counts = np.array([c.size for c in self.cells], dtype=np.int64)
            sizes = np.where(self.group >= 0, counts[np.maximum(self.group, 0)], 0)
        self.scratch = memory.scratch(t)
        self.per_step = sizes

    def touches(self, s0: int, s1: int) -> L2Batch | None:
        """Touches of steps ``[s0, s1)`` (segment-relative), or ``None``."""
        steps_all = np.arange(s0, s1, dtype=np.int64)
        j = steps_all % self.m
        groups = self.group[j]
        flats, steps = [], []
        for g, cells in enumerate(self.cells):
            if not cells.size:
                continue
            chosen = steps_all[groups == g]
            if not chosen.size:
                continue
            corners = self.corner[chosen % self.m] + (chosen // self.m) * self.delta
            flats.append((corners[:, None] + cells[None, :]).ravel())
            steps.append(np.repeat(chosen, cells.size))
        if not flats:
            return None
        return L2Batch(np.concatenate(flats), np.concatenate(steps), self.scratch)
