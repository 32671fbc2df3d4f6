"""The fast path: the same results as the SimPy machine, without stepping through it.

Three memoisations, each exact (``tests/sim`` compares every counter with the full run):

1. Step records per geometry key (:mod:`metronome.sim.schedule`), so a segment's repeated block
   needs records for its first repetition only.
2. L2 residency per segment in batches between evictions (:meth:`L2Memory.segment`),
   element by element, as one step at a time would do it. Every segment goes through L2
   before any is timed: an output's write-back rides with the step after its last
   update, known once L2 has seen the steps up to its eviction or the end.
3. Timing transitions per (record, misses, relative state, phase outcomes)
   (:mod:`metronome.sim.timing`), with NoC phase outcomes per distinct phase
   (:class:`metronome.sim.noc.PhaseOracle`). When a block starts from the same states as the
   previous block and sees the same misses, it repeats that block exactly, and so do
   the following blocks with those misses: they are counted in bulk.

Alongside the real run, two reference clocks time the same steps on a contention-free
NoC and on an instantaneous one (the runtime split).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from .context import Progress, RunContext
from .continued import ExactTail, continued_records
from .geometry import StepTiles
from .keyed import (
    KeyedSegment,
    end_steps,
    evicted_outputs,
    joined,
    keyed,
    moved_base,
    reach,
    widened,
)
from .l1 import L1Residency, LogBlock, LogEntry, flat_log, log_steps
from .l1_bulk import bulk
from .l1_steady import bulk_steady
from .memory import OffchipTiming
from .noc import PhaseOracle, PhaseOutcome
from .phases import COLLECTION, DISTRIBUTION
from .replays import ReplayMemo
from .schedule import Segment, Step
from .timing import IDEAL, Clock, Transition
from .traffic import StepRecord

__all__ = ["FastPath"]

Outcomes = tuple[PhaseOutcome, PhaseOutcome]

_CONTINUE_RATIO = 10
_JOINED_STEPS = 1 << 14
"""Most steps of short segments joined in one L2 pass (a segment of more than a quarter
of that goes alone)."""


class FastPath:
    """Runs a layer's segments through records, L2 and the three clocks."""

    def __init__(
        self, run: RunContext, timing: OffchipTiming, n_pes: int, *, round_robin: bool
    ) -> None:
        self.run = run
        self.round_robin = round_robin
        self.oracle = PhaseOracle(run.fabric, round_robin=round_robin, contention=True)
        self.zero = PhaseOracle(run.fabric, round_robin=False, contention=False)
        self.timing = timing
        self.clocks = (Clock(timing, n_pes), Clock(timing, n_pes), Clock(timing, n_pes))
        self.pointers = (0, 0)
        self._fifo: dict[int, Outcomes] = {}
        self._zero: dict[int, Outcomes] = {}
        self._same: dict[int, bool] = {}
        self._by_content: dict[tuple[object, ...], StepRecord] = {}
        self._untimed: list[tuple[list[StepRecord], int, int, np.ndarray, np.ndarray]] = []
        self._tail: ExactTail | None = None
        # Short segments waiting to go through L2 together, and their steps.
        self._short: list[tuple[Segment, list[StepRecord]]] = []
        self._short_steps = 0

    # -- phase outcomes ----------------------------------------------------------------
    def _actual(self, rec: StepRecord) -> Outcomes:
        hit = self._fifo.get(rec.rid) if not self.round_robin else None
        if hit is None:
            phases = self.run.phases
            down, dptr = self.oracle.outcome(phases.phase(rec, DISTRIBUTION), self.pointers[0])
            up, uptr = self.oracle.outcome(phases.phase(rec, COLLECTION), self.pointers[1])
            self.pointers = (dptr, uptr)
            hit = self._fifo[rec.rid] = (down, up)
        return hit

    def _zero_load(self, rec: StepRecord) -> Outcomes:
        hit = self._zero.get(rec.rid)
        if hit is None:
            phases = self.run.phases
            hit = self._zero[rec.rid] = (
                self.zero.outcome(phases.phase(rec, DISTRIBUTION))[0],
                self.zero.outcome(phases.phase(rec, COLLECTION))[0],
            )
        return hit

    def _uncontended(self, rec: StepRecord) -> bool:
        """Whether ``rec``'s phases time the same with and without contention."""
        hit = self._same.get(rec.rid)
        if hit is None:
            pairs = zip(self._actual(rec), self._zero_load(rec), strict=True)
            hit = self._same[rec.rid] = all(
                (a.deliveries, a.done, a.landed, a.port, a.empty)
                == (z.deliveries, z.done, z.landed, z.port, z.empty)
                for a, z in pairs
            )
        return hit

    # -- the run -----------------------------------------------------------------------
    def execute(self, segments: Iterator[Segment], progress: Progress | None) -> tuple[int, int]:
        """Run every segment; returns the runtime of the steps and the outputs written
        back after the last one."""
        run = self.run
        total = run.stream.top_steps
        before: tuple[Step, list[object]] | None = None
        if run.l1 is not None:
            segments = joined(segments)
        pending = next(segments, None)
        reported = 0
        while pending is not None:
            following = next(segments, None)
            if run.l1 is None:
                pieces = iter([(pending, self._records(pending, before, following))])
            else:
                after = (following.steps[0], following.schedules[0]) if following else None
                tail, self._tail = self._tail, None
                more = continued_records(run, tail, pending, after) if tail else None
                if more is not None:
                    pieces = iter([(pending, more)])
                else:
                    pieces = self._residency(pending, before, after)
            for piece, recs in _merged(pieces):
                self._piece(piece, recs)
            last = pending.steps[-1]
            before = (
                pending.step_at(pending.count - 1, len(pending.steps) - 1),
                pending.schedules[-1],
            )
            if progress is not None:
                tops = last.top - pending.steps[0].top + 1
                done = pending.steps[0].top + tops * pending.count
                if done - reported >= 4096 or following is None:
                    progress(done, total)
                    reported = done
            pending = following
        self._flush()
        # Write-backs are known once L2 has seen every step; then the steps are timed.
        steps = sum(len(recs) * count for recs, _, count, _, _ in self._untimed)
        flushed = run.l2.finish(steps)
        for recs, first, count, reads, rmws in self._untimed:
            writes = run.l2.writes_at(first, reads.size)
            traffic = np.stack([reads, writes, rmws], axis=1)
            self._time(recs, self.timing.transfers(traffic), count)
        self._untimed.clear()
        run.tally.events = self.oracle.events + self.zero.events
        run.tally.detailed_transitions = self.clocks[0].transitions.distinct
        run.tally.take_outcomes(self.oracle.outcomes)
        return self.clocks[0].end, flushed

    def _piece(self, piece: Segment, recs: list[StepRecord]) -> None:
        """Count a segment whose repetitions all have the records ``recs``, and keep it
        for the timing. Short segments wait to go through L2 together (one pass, the
        same per step)."""
        run = self.run
        if run.functional is not None:
            for step, schedules, rec in zip(piece.steps, piece.schedules, recs, strict=True):
                run.functional.step(run.tiles(step, schedules), rec)
        if self._short:
            last = self._short[-1][0]
            joins = last.steps[0].index + last.total == piece.steps[0].index
            if not joins or self._short_steps + piece.total > _JOINED_STEPS:
                self._flush()
        if piece.total > _JOINED_STEPS // 4:
            self._flush()
            self._l2([(piece, recs)])
            return
        self._short.append((piece, recs))
        self._short_steps += piece.total

    def _flush(self) -> None:
        """Account the waiting short segments."""
        if self._short:
            self._l2(self._short)
            self._short.clear()
        self._short_steps = 0

    def _l2(self, pieces: list[tuple[Segment, list[StepRecord]]]) -> None:
        """Consecutive segments through L2 in one pass; each counted with its own
        records."""
        run = self.run
        l2 = run.l2.blocks(
            pieces[0][0].steps[0].index,
            [
                (
                    [rec.footprints for rec in recs],
                    [step.base for step in piece.steps],
                    piece.delta,
                    piece.count,
                )
                for piece, recs in pieces
            ],
            run.geometry.tensor_dims,
        )
        if len(pieces) == 1:
            piece, recs = pieces[0]
            run.tally.add_segment(recs, piece.count, int(l2.misses.sum()), l2.rmw, l2.refetch)
            self._untimed.append((recs, piece.steps[0].index, piece.count, l2.reads(), l2.rmws))
            return
        reads = l2.reads()
        at = 0
        for piece, recs in pieces:
            span = slice(at, at + piece.total)
            misses, refetches = int(l2.misses[span].sum()), int(l2.refetches[span].sum())
            rmws = l2.rmws[span]
            run.tally.add_segment(recs, piece.count, misses, int(rmws.sum()), refetches)
            self._untimed.append((recs, piece.steps[0].index, piece.count, reads[span], rmws))
            at += piece.total

    def _residency(
        self,
        seg: Segment,
        before: tuple[Step, list[object]] | None,
        following: tuple[Step, list[object]] | None,
        nested: bool = False,
    ) -> Iterator[tuple[Segment, list[StepRecord]]]:
        """A segment under L1 residency, as pieces with their records. A repetition runs
        through the L1s as its inner loops' segments (:func:`_split`, recursively) or step
        by step; then the following repetitions go in bulk when they repeat it: when it
        started from the previous one's L1 state translated by a repetition and every
        later next-touch answer is translated too, else while they hit, miss and send home
        outputs after their last touch as it did and evict only what they held at their
        start (:func:`~metronome.sim.l1_bulk.bulk`); up to the last either way (the steps whose
        evicted outputs differ from its own, and the segment's last step, get their own
        records: :meth:`_bulk_pieces`)."""
        run = self.run
        l1 = run.l1
        assert l1 is not None
        m = len(seg.steps)
        shift = l1.space.shift_of(seg.delta)
        move = np.array([seg.delta.get(d, 0) for d in l1.space.dims[2]], dtype=np.int64)
        prev = before
        if l1.log is None:
            l1.log = []
        log = l1.log
        layout = _layout(seg)
        b = 0

        def items_at(r: int) -> list[tuple[Step, list[object]]]:
            return [(seg.step_at(r, j), seg.schedules[j]) for j in range(m)]

        while b < seg.count:
            after = following
            if b + 1 < seg.count:
                after = (seg.step_at(b + 1, 0), seg.schedules[0])
            start = l1.snapshot() if seg.count - 1 - b > 0 else None
            acted = run.l1_steps
            mark = len(log)
            recs: list[StepRecord] = []
            subs = _split(seg, b, layout)
            # The repetition's steps, built only when stepped.
            items = items_at(b) if subs is None else None
            if subs is None:
                assert items is not None
                for j, item in enumerate(items):
                    nxt = items[j + 1] if j + 1 < m else after
                    recs.append(run.residency_record(item, prev, nxt))
                    prev = item
                yield (
                    Segment(tuple(s for s, _ in items), seg.schedules, 1, seg.loop, seg.delta),
                    recs,
                )
            else:
                for i, sub in enumerate(subs):
                    nfollow = (
                        (subs[i + 1].steps[0], subs[i + 1].schedules[0])
                        if i + 1 < len(subs)
                        else after
                    )
                    for piece, precs in self._residency(sub, prev, nfollow, nested=True):
                        yield piece, precs
                        recs.extend(precs * piece.count)
                    prev = (sub.step_at(sub.count - 1, len(sub.steps) - 1), sub.schedules[-1])
            b += 1
            rep_log = log[mark:]
            times = seg.count - 1 - b
            ends = end_steps(rep_log, shift) if times >= 0 else None
            applied = 0
            varied: _Varied | None = None
            flat: tuple[np.ndarray, ...] | None = None
            if times >= 0:
                exact = 0
                if (
                    start is not None
                    and l1.repeats(start, shift, m)
                    and l1.touches.future_repeats(
                        *run.future_touches(seg, b - 1), shift, m, times + 1
                    )
                ):
                    # The last repetition too: only its last step's record can differ.
                    exact = min(times + 1, _exact_reach(l1, rep_log, start, move))
                if exact:
                    l1.advance(shift, m, exact)
                    applied = exact
                    # Continuing costs a few microseconds a step; worth it where the
                    # logged repetition needed the L1s at a tenth of its steps or more
                    # (each such step about ten times that: measured).
                    costly = (run.l1_steps - acted) * _CONTINUE_RATIO >= m
                    if not nested and exact == times + 1 and following is not None and costly:
                        assert start is not None
                        assert ends is not None
                        # The next segment may be one more repetition (:mod:`.continued`).
                        if exact_tail(run, seg, b - 1, following[0], rep_log, start, move):
                            self._tail = ExactTail(seg, b - 1, recs, ends, shift)
                else:
                    logged = l1.logged(rep_log, m)
                    if not nested:
                        # Only the flat copy is needed now (less peak memory).
                        del log[mark:]
                        rep_log = []
                    if logged is not None:
                        first = seg.steps[0].index + (b - 1) * m
                        # The last repetition too: only its last step's record can
                        # differ (its successor is the next segment's), built for it.
                        found = bulk_steady(l1, logged, shift, m, first, times + 1)
                        if found is None:
                            found = bulk(l1, logged, shift, m, first, times + 1)
                        applied, *evicted = found
                        if applied:
                            far = reach(l1, logged[5], move)
                            varied = _Varied(
                                logged, shift, m, first, applied, evicted, l1.space.span, far
                            )
                            flat = logged[:7] if nested else None
                        del evicted
                    del logged
            if applied:
                yield from self._bulk_pieces(seg, b, applied, recs, varied, following, ends)
                b += applied
                prev = (seg.step_at(b - 1, m - 1), seg.schedules[-1])
            if not nested:
                del log[mark:]
            elif applied and log_steps(rep_log) == m:
                if flat is None:
                    flat = flat_log(rep_log, m)
                got = varied.within(applied) if varied is not None else None
                log.append(LogBlock(flat, shift, m, applied, got, l1.space.span))
        if not nested:
            l1.log = None

    def _bulk_pieces(
        self,
        seg: Segment,
        b: int,
        applied: int,
        recs: list[StepRecord],
        varied: _Varied | None,
        following: tuple[Step, list[object]] | None,
        done: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    ) -> Iterator[tuple[Segment, list[StepRecord]]]:
        """Repetitions ``b`` .. ``b + applied - 1`` of ``seg``, applied in bulk after the
        logged one (records ``recs``): runs of repetitions that evicted the logged one's
        outputs, translated, reuse its records; a repetition whose evicted outputs differ
        gets its own records at the steps where they differ (the L1s hit as logged and
        sent home the outputs leaving after their last touch and the ones evicted), and so
        does the segment's last step (``following`` comes after it). In a
        :class:`KeyedSegment` a repetition whose end steps' keys differ from the logged
        one's gets those steps' records under its own keys (:meth:`_rekeyed`; ``done``:
        what the logged end steps did)."""
        m = len(seg.steps)
        scheds = seg.schedules
        bad = dict(varied.differing) if varied is not None else {}
        if b + applied == seg.count:
            ends = bad.get(applied, [])
            bad[applied] = ends if m - 1 in ends else [*ends, m - 1]
        memo = None
        if varied is not None and bad:
            l1 = self.run.l1
            assert l1 is not None
            move = np.array([seg.delta.get(d, 0) for d in l1.space.dims[2]], dtype=np.int64)
            memo = ReplayMemo(l1, seg, b - 1, int(varied.shift[2]), move)
        k = 1
        while k <= applied:
            if k not in bad:
                same = k
                while same <= applied and same not in bad:
                    same += 1
                steps = tuple(seg.step_at(b + k - 1, j) for j in range(m))
                mine = self._rekeyed(seg, b - 1, b + k - 1, recs, done, following)
                yield Segment(steps, scheds, same - k, seg.loop, seg.delta), mine
                k = same
                continue
            r = b + k - 1
            own = self._rekeyed(seg, b - 1, r, recs, done, following, bad[k])
            for j in bad[k]:
                own[j] = self._replayed(seg, b - 1, r, j, following, varied, done, memo)
            steps = tuple(seg.step_at(r, j) for j in range(m))
            yield Segment(steps, scheds, 1, seg.loop, seg.delta), own
            k += 1

    def _rekeyed(
        self,
        seg: Segment,
        logged: int,
        r: int,
        recs: list[StepRecord],
        ends: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None,
        following: tuple[Step, list[object]] | None,
        skip: list[int] | None = None,
    ) -> list[StepRecord]:
        """The records of repetition ``r`` of ``seg``, which repeats the logged repetition
        (``logged``, records ``recs``) translated: ``recs``, but where an end step's key
        differs from the logged one's (a :class:`KeyedSegment`), that step's record under
        its own key, built from what the logged step did (``ends``) translated: it hit and
        sent home the same, so its L1 outcome, and hence its record, is the one stepping
        it gives under its key. The steps in ``skip`` are left to the caller."""
        if not isinstance(seg, KeyedSegment):
            return list(recs) if skip is not None else recs
        mine, theirs = seg.ends(r), seg.ends(logged)
        if mine == theirs:
            return list(recs) if skip is not None else recs
        m = len(seg.steps)
        out = list(recs)
        for j, end in {0: 0, m - 1: 1}.items():
            if mine[end] != theirs[end] and j not in (skip or ()):
                out[j] = self._replayed(seg, logged, r, j, following, None, ends)
        return out

    def _replayed(
        self,
        seg: Segment,
        logged: int,
        r: int,
        j: int,
        following: tuple[Step, list[object]] | None,
        varied: _Varied | None,
        ends: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None,
        memo: ReplayMemo | None = None,
    ) -> StepRecord:
        """The record of step ``j`` of repetition ``r`` of ``seg``, which a bulk applied
        after the logged repetition ``logged``: the L1s hit as the logged step did and sent
        home what ``varied`` says, or (without it, an end step) what the logged step did
        (``ends``) translated (:meth:`StepOutcomes.replay`); with ``memo`` (and
        ``varied``), the record of an earlier repetition's step it repeats."""
        if varied is not None and memo is not None:
            key = memo.key(r, j, varied.evicted(r - logged, j))
            found = memo.get(key, r)
            if found is not None:
                return found
        item, prev, nxt = _around(seg, r, j, following)
        if varied is not None:
            replayed = varied.step(r - logged, j)
            if memo is not None:
                rec = self.run.residency_record(item, prev, nxt, replayed)
                memo.add(key, r, rec, replayed[1])
                return rec
        else:
            assert ends is not None
            assert j in (0, len(seg.steps) - 1)
            hit, outs, by = ends[-1 if j else 0]
            replayed = (hit, outs + (r - logged) * by)
        return self.run.residency_record(item, prev, nxt, replayed)

    def references(self) -> tuple[int, int]:
        """Runtimes on an instantaneous and on a contention-free NoC."""
        return self.clocks[2].end, self.clocks[1].end

    def _records(
        self,
        seg: Segment,
        before: tuple[Step, list[object]] | None,
        following: Segment | None,
    ) -> list[StepRecord]:
        """Records of the segment's block (built from the neighbouring steps' tiles
        where the key is new)."""
        run = self.run
        out = []
        m = len(seg.steps)
        for j, step in enumerate(seg.steps):
            rec = run.records.get(step.key)
            if rec is None:
                prev = (seg.steps[j - 1], seg.schedules[j - 1]) if j else before
                if j + 1 < m:
                    nxt: tuple[Step, list[object]] | None = (seg.steps[j + 1], seg.schedules[j + 1])
                elif seg.count > 1:
                    nxt = (seg.step_at(1, 0), seg.schedules[0])
                elif following is not None:
                    nxt = (following.steps[0], following.schedules[0])
                else:
                    nxt = None
                tiles = (
                    run.tiles(*prev) if prev is not None else None,
                    run.tiles(step, seg.schedules[j]),
                    run.tiles(*nxt) if nxt is not None else None,
                )
                # Keys that differ only in how the neighbours are classed often see the
                # same three tiles: such steps share one record.
                content = self._content(tiles, step)
                rec = self._by_content.get(content)
                if rec is None:
                    rec = self._by_content[content] = run.builder.build(
                        *tiles,
                        step.key[0],
                        step.inner,
                        step.base,
                    )
                run.records[step.key] = rec
            out.append(rec)
        return out

    def _content(
        self, tiles: tuple[StepTiles | None, StepTiles, StepTiles | None], step: Step
    ) -> tuple[object, ...]:
        """What a record is built from: the step's classes and inner index, and the three
        steps' tiles relative to the step's base."""
        dims = self.run.geometry.tensor_dims
        parts: list[object] = [step.key[0], step.inner]
        for st in tiles:
            if st is None:
                parts.append(None)
                continue
            for t, (lo, hi) in enumerate(st.tensors):
                off = np.array([step.base.get(d, 0) for d in dims[t]], dtype=np.int64)[:, None]
                parts.append((lo - off).tobytes() + (hi - off).tobytes())
            parts.append(st.active.tobytes() + st.macs.tobytes())
        return tuple(parts)

    def _time(self, recs: list[StepRecord], transfers: np.ndarray, count: int) -> None:
        """Time ``count`` repetitions of the block ``recs`` whose steps' off-chip
        memory costs are ``transfers`` (channel cycles, latency, read-modify-write port
        cycles; shape ``(steps, 3)``)."""
        m = len(recs)
        tally = self.run.tally
        actual, zero, ideal = self.clocks
        previous: tuple[object, ...] | None = None
        block: list[list[tuple[Transition, int]]] = []
        rows = transfers.reshape(count, 3 * m)
        b = 0
        while b < count:
            row = rows[b]
            state = (actual.sid, zero.sid, ideal.sid, self.pointers)
            if block and state == previous and np.array_equal(row, rows[b - 1]):
                same = np.all(rows[b:] == row, axis=1)
                times = count - b if same.all() else int(np.argmin(same))
                self._repeat(block, times)
                b += times
                continue
            previous = state
            moved = row.tolist()
            steps = list(zip(moved[0::3], moved[1::3], moved[2::3], strict=True))
            before = (actual.transitions.states[actual.sid], actual.ref)
            timed = actual.run(recs, steps, [self._actual(rec) for rec in recs])
            if (
                not self.round_robin
                and before[0] == zero.transitions.states[zero.sid]
                and all(self._uncontended(rec) for rec in recs)
            ):
                # Same state, same phase timings: the contention-free clock does the same.
                free = zero.follow(actual, timed, before[1])
            else:
                free = zero.run(recs, steps, [self._zero_load(rec) for rec in recs])
            block = [timed, free, ideal.run(recs, steps, [(IDEAL, IDEAL)] * m)]
            tally.add_repeats(block[0], 1, 0)
            b += 1

    def _repeat(self, block: list[list[tuple[Transition, int]]], times: int) -> None:
        """The last block, ``times`` more times (every clock is at a fixed point)."""
        for k, clock in enumerate(self.clocks):
            steps = block[k]
            shift = clock.ref - steps[0][1]
            last = max(ref + tr.end for tr, ref in steps) + times * shift
            clock.end = max(clock.end, last)
            clock.ref += times * shift
            if k == 0:
                self.run.tally.add_repeats(steps, times, shift)


class _Varied:
    """The repetitions a bulk applied after the logged one (``logged``: from
    :meth:`L1Residency.logged`, ``m`` steps the first at ``first``) with the outputs they
    evicted (``evicted``: keys, steps; the list is emptied): where those differ from the logged
    ones translated (as far as each logged one's translation stays inside the tensor:
    ``far``, :func:`reach`), and what each such step hit and sent home. Keys are below
    ``span``."""

    def __init__(
        self,
        logged: tuple[np.ndarray, ...],
        shift: np.ndarray,
        m: int,
        first: int,
        applied: int,
        evicted: list[np.ndarray],
        span: int,
        far: np.ndarray,
    ) -> None:
        keys, _, hit, done, local, out_keys, out_local = logged[:7]
        ev_keys, ev_steps = evicted
        evicted.clear()
        self.shift, self.m, self.span = shift, m, span
        reps = np.arange(1, applied + 1, dtype=np.int64)[:, None]
        moved = out_keys[None, :] + reps * shift[2]
        steps = out_local[None, :] + reps * m
        # Past its reach a logged output's flat translation is another element (or none):
        # its step differs.
        inside = reps <= far[None, :]
        want = steps[inside] * span + moved[inside]
        self.got = (ev_steps - first) * span + ev_keys
        del ev_keys, ev_steps
        self.got.sort(kind="stable")
        # Per repetition (1: the first after the logged one) its steps whose evicted
        # outputs are not the logged ones translated.
        self.differing: dict[int, list[int]] = {}
        off = np.union1d(np.setxor1d(self.got, want) // span, steps[~inside])
        for at in off.tolist():
            self.differing.setdefault(at // m, []).append(at % m)
        del want, moved, steps
        # Each logged step's slice of its hits and of its outputs leaving after their last
        # touch (the flat arrays go step by step).
        self.hit, self.bounds = hit, np.searchsorted(local, np.arange(m + 1))
        self.done_keys = keys[done]
        self.done_bounds = np.searchsorted(local[done], np.arange(m + 1))

    def within(self, applied: int) -> np.ndarray:
        """The evicted outputs' codes (``step * span + key``, steps from the logged
        repetition's first) of repetitions 1 .. ``applied``."""
        lo, hi = np.searchsorted(self.got, [self.m * self.span, (applied + 1) * self.m * self.span])
        return np.asarray(self.got[lo:hi], dtype=np.int64)

    def evicted(self, k: int, j: int) -> np.ndarray:
        """The outputs evicted at step ``j`` of repetition ``k``, sorted."""
        at = (k * self.m + j) * self.span
        lo, hi = np.searchsorted(self.got, [at, at + self.span])
        return np.asarray(self.got[lo:hi] - at, dtype=np.int64)

    def step(self, k: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Step ``j`` of repetition ``k``: its hits (the logged step's) and the outputs
        leaving (after their last touch, as logged, and evicted), sorted."""
        lo, hi = int(self.done_bounds[j]), int(self.done_bounds[j + 1])
        done = self.done_keys[lo:hi] + k * self.shift[2]
        hit = self.hit[int(self.bounds[j]) : int(self.bounds[j + 1])]
        return hit, np.sort(np.concatenate([done, self.evicted(k, j)]))


_Layout = tuple[int, list[tuple[int, int]], dict[str, int] | None, tuple[int, int]]

Item = tuple[Step, list[object]]


def _exact_reach(
    l1: L1Residency,
    log: list[LogEntry | LogBlock],
    start: tuple[np.ndarray, np.ndarray, np.ndarray],
    move: np.ndarray,
) -> int:
    """How many repetitions after the logged one (``log``; L1 state at its start
    ``start``) repeat its records when the L1 state repeats translated: as long as every
    output it evicted moves with the repetitions (:func:`reach`; when the log does not
    say, every output held at its start)."""
    out = evicted_outputs(log)
    if out is None:
        keys = start[0]
        out = keys[keys % l1.total >= l1.offsets[2]]
    far = reach(l1, out, move)
    return int(far.min()) if far.size else np.iinfo(np.int64).max


def exact_tail(
    run: RunContext,
    seg: Segment,
    logged: int,
    after: Step,
    log: list[LogEntry | LogBlock],
    start: tuple[np.ndarray, np.ndarray, np.ndarray],
    move: np.ndarray,
) -> bool:
    """Whether the exact repeat of ``seg`` after its ``logged`` repetition (``log``; L1
    state at its start ``start``), which reached the segment's end, holds one repetition
    further, where the step ``after`` it may start that repetition: every next-touch
    answer translated and every output it evicted still inside the tensor. The
    next-touch answers up to the segment's end were checked for that repeat: only the
    further repetition's are asked."""
    l1 = run.l1
    assert l1 is not None
    m = len(seg.steps)
    last = seg.step_at(seg.count - 1, 0)
    if after.index != last.index + m or len(after.positions) != len(last.positions):
        return False
    times = seg.count - logged
    return _exact_reach(l1, log, start, move) >= times and l1.touches.future_repeats(
        *run.future_touches(seg, logged), l1.space.shift_of(seg.delta), m, times, times
    )


def _around(
    seg: Segment, r: int, j: int, following: Item | None
) -> tuple[Item, Item | None, Item | None]:
    """Step ``j`` of repetition ``r`` of ``seg`` with the steps before and after it
    (``following``: the one after the segment)."""
    m, scheds = len(seg.steps), seg.schedules
    assert r or j
    item = (seg.step_at(r, j), scheds[j])
    prev = (seg.step_at(r, j - 1), scheds[j - 1]) if j else (seg.step_at(r - 1, m - 1), scheds[-1])
    nxt = (seg.step_at(r, j + 1), scheds[j + 1]) if j + 1 < m else following
    if j + 1 == m and r + 1 < seg.count:
        nxt = (seg.step_at(r + 1, 0), scheds[0])
    return item, prev, nxt


def _layout(seg: Segment) -> _Layout | None:
    """How a repetition of ``seg`` splits (the same for every repetition: they differ by
    a translation): the outermost top-level loop whose position changes inside it, its
    positions' step ranges, the middle positions' move per position when they repeat
    the first middle one translated (keys, schedules, a constant move), else ``None``, and
    the range of positions that repeat: the middle ones, or without the first and last of
    them when their neighbours' classes differ, unless only their end steps' keys do
    (:func:`widened`). ``None`` when no top-level loop moves inside."""
    steps = list(seg.steps)
    scheds = list(seg.schedules)
    loop = next(
        (
            i
            for i in range(len(steps[0].positions))
            if steps[0].positions[i] != steps[-1].positions[i]
        ),
        None,
    )
    if loop is None:
        return None
    cuts = [0] + [
        j for j in range(1, len(steps)) if steps[j].positions[loop] != steps[j - 1].positions[loop]
    ]
    cuts.append(len(steps))
    groups = [(cuts[g], cuts[g + 1]) for g in range(len(cuts) - 1)]
    delta = None
    for a in (1, 2):
        middle = groups[a:-a]
        if len(middle) >= 2 and _uniform(steps, scheds, middle, loop):
            delta = _moved(steps[middle[0][0]].base, steps[middle[1][0]].base)
            span = widened(steps, scheds, groups, loop, (a, len(groups) - a), delta)
            return loop, groups, delta, span
    return loop, groups, delta, (1, len(groups) - 1)


def _split(seg: Segment, b: int, layout: _Layout | None) -> list[Segment] | None:
    """Repetition ``b`` of ``seg`` as segments of its ``layout``'s loop: the positions
    that repeat one segment, every other position one each."""
    if layout is None:
        return None
    loop, groups, delta, (a, z) = layout
    scheds = seg.schedules

    def steps(lo: int, hi: int) -> tuple[Step, ...]:
        return tuple(seg.step_at(b, j) for j in range(lo, hi))

    def single(lo: int, hi: int) -> Segment:
        return Segment(steps(lo, hi), tuple(scheds[lo:hi]), 1, loop, {})

    if delta is None:
        return [single(lo, hi) for lo, hi in groups]
    lo, hi = groups[a]

    def ends(g: int) -> tuple[tuple[object, ...], tuple[object, ...]]:
        return (seg.step_at(b, groups[g][0]).key, seg.step_at(b, groups[g][1] - 1).key)

    mid = keyed(
        steps(lo, hi),
        tuple(scheds[lo:hi]),
        z - a,
        loop,
        delta,
        ends(min(a + 1, z - 1)),
        ends(z - 1),
    )
    return [single(*g) for g in groups[:a]] + [mid] + [single(*g) for g in groups[z:]]


def _moved(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """``b - a`` per dimension (absent: 0), zero moves left out."""
    out = {d: b.get(d, 0) - a.get(d, 0) for d in set(a) | set(b)}
    return {d: v for d, v in sorted(out.items()) if v}


def _bases_moved(every: list[Step], first: list[Step], move: dict[str, int]) -> bool:
    """Whether each group of ``every`` (groups the size of ``first``) has ``first``'s
    bases moved by ``move`` once per group, as the same dicts."""
    size = len(first)
    for g in range(1, len(every) // size):
        for x, y in zip(every[g * size : (g + 1) * size], first, strict=True):
            if x.base != moved_base(y.base, move, g):
                return False
    return True


def _uniform(
    steps: list[Step], scheds: list[list[object]], groups: list[tuple[int, int]], loop: int
) -> bool:
    """Whether every group repeats the first with the same keys and schedules, moved by a
    constant per group, one position further each."""
    lo0, hi0 = groups[0]
    size = hi0 - lo0
    if any(hi - lo != size for lo, hi in groups):
        return False
    # All groups' steps as lists against the first group's repeated (one comparison
    # each), the positions one further per group.
    n = len(groups)
    if all(y[0] == x[1] for x, y in itertools.pairwise(groups)):
        every, mine = steps[lo0 : groups[-1][1]], scheds[lo0 : groups[-1][1]]
    else:
        every = [steps[j] for lo, hi in groups for j in range(lo, hi)]
        mine = [scheds[j] for lo, hi in groups for j in range(lo, hi)]
    first = every[:size]
    if [s.key for s in every] != [s.key for s in first] * n:
        return False
    if [s.inner for s in every] != [s.inner for s in first] * n:
        return False
    places = [s.positions for s in first]
    moved = [(*p[:loop], p[loop] + g, *p[loop + 1 :]) for g in range(n) for p in places]
    if [s.positions for s in every] != moved:
        return False
    if not all(x is y or x == y for x, y in zip(mine, mine[:size] * n, strict=True)):
        return False
    # Every group's bases are the first group's moved by a constant per group: mostly
    # one dict comparison per step, else per dimension.
    move = _moved(first[0].base, every[size].base)
    if _bases_moved(every, first, move):
        return True
    dims = sorted(set().union(*(s.base for s in every)))
    values = len(every) * len(dims)
    bases = np.fromiter((s.base.get(d, 0) for s in every for d in dims), np.int64, values)
    bases = bases.reshape(len(groups), size, len(dims))
    delta = bases[1, 0] - bases[0, 0]
    ranks = np.arange(len(groups), dtype=np.int64)[:, None, None]
    return bool(np.all(bases - bases[:1] == ranks * delta))


def _merged(
    pieces: Iterator[tuple[Segment, list[StepRecord]]],
) -> Iterator[tuple[Segment, list[StepRecord]]]:
    """``pieces`` with consecutive single repetitions joined into one (fewer, longer L2
    and timing passes; the steps and records are the same)."""
    steps: list[Step] = []
    scheds: list[list[object]] = []
    recs: list[StepRecord] = []
    for piece, precs in pieces:
        if piece.count == 1:
            steps.extend(piece.steps)
            scheds.extend(piece.schedules)
            recs.extend(precs)
            continue
        if steps:
            yield Segment(tuple(steps), tuple(scheds), 1, 0, {}), recs
            steps, scheds, recs = [], [], []
        yield piece, precs
    if steps:
        yield Segment(tuple(steps), tuple(scheds), 1, 0, {}), recs
