"""The step-to-step timing recurrence the SimPy machine realises, on a relative state.

The machine's processes (:mod:`metronome.sim.machine`) each use their NoC plane in step order, so
every time they produce is a max of earlier times plus a duration. Within a step, a
plane's phase is a function of the step's messages alone (:class:`metronome.sim.noc.PhaseOracle`):
it gives each PE's delivery offset, when the plane is free again and when partial sums
land. This module writes the recurrence on a state expressed relative to the moment the
distribution plane becomes free; times that can no longer matter are clamped. Two steps
with the same record, off-chip misses, phase outcomes and relative state therefore evolve
identically, which the fast path exploits by memoising transitions
(:class:`Transitions`). Tests run both and compare every counter.
"""

from __future__ import annotations

from dataclasses import dataclass

from .memory import OffchipTiming
from .noc import PhaseOutcome
from .traffic import StepRecord

__all__ = ["Transition", "Transitions", "initial_state"]

# State layout: (up_free, prev_fits, channel_free, port_free, rmw_from, rmw_cycles,
# rmw_pes, issue..., ce1..., ce2..., d1..., d2...), where issue holds the distribution
# starts of the last ``max_outstanding`` steps (the request for the next step is issued
# when the oldest of them started), port_free is when L2's read port finished the last
# read-modify-write reads scheduled, and rmw_* describe the previous step's
# read-modify-write reads, not yet scheduled (they follow this step's distribution on
# the port): from when, how many port cycles, and the bit mask of the PEs whose output
# buffers drain once they are done (their d1 holds when the sums landed).
_HEAD = 7


def initial_state(n_pes: int, outstanding: int = 1) -> tuple[int, ...]:
    """State before the first step: everything free at time 0 (the reference)."""
    return (0,) * _HEAD + (0,) * outstanding + (0,) * (4 * n_pes)


@dataclass(frozen=True, slots=True)
class Transition:
    """Effect of one step on the relative state: the next state, how far the reference
    moved, and the step's statistics (times relative to the old reference)."""

    state: tuple[int, ...]
    shift: int
    compute_start: int
    down_cycles: int
    up_cycles: int
    offchip_cycles: int
    down_queue: int
    up_queue: int
    drain_waits: tuple[int, ...] | None
    end: int
    down: int
    up: int


def step(
    state: tuple[int, ...],
    rec: StepRecord,
    transfer: tuple[int, int, int],
    timing: OffchipTiming,
    n_pes: int,
    down: PhaseOutcome,
    up: PhaseOutcome,
) -> Transition:
    """Advance the relative state by one step whose memory costs are ``transfer``
    (off-chip channel cycles, latency before its reads arrive, L2 read port cycles of
    its read-modify-write reads; :meth:`OffchipTiming.transfer`) and whose phases have
    these outcomes.

    L2's read port serves the distributions' reads (from a distribution's start until
    its last hop out of L2 released its link, ``down.port``) and the read-modify-write
    reads (``rmw`` port cycles each) one at a time, in a fixed order with the
    distribution one step ahead: ... distribution ``t+1``, read-modify-write reads of
    ``t``, distribution ``t+2`` ... . So a step's reads are scheduled when the next step
    is, and the next step's distribution waits for the reads of the step before."""
    up_free, prev_fits, channel_free, port_free = state[0], state[1], state[2], state[3]
    rmw_from, rmw_cycles_before, rmw_pes = state[4], state[5], state[6]
    k = timing.max_outstanding
    issue = state[_HEAD : _HEAD + k]
    head = _HEAD + k
    ce1 = state[head : head + n_pes]
    ce2 = state[head + n_pes : head + 2 * n_pes]
    d1 = list(state[head + 2 * n_pes : head + 3 * n_pes])
    d2 = state[head + 3 * n_pes : head + 4 * n_pes]
    off, latency, rmw_cycles = transfer
    # The request goes out once the step max_outstanding before started distributing,
    # in step order; the channel moves one transfer at a time, and a read's data
    # follows its transfer after the latency.
    channel_free = max(issue[0], channel_free) + off
    fetched = channel_free + latency
    # The distributor looks at a step no earlier than it started the previous one, and
    # after L2's read port finished the read-modify-write reads scheduled before it.
    ready = max(issue[-1], fetched, port_free)
    involved = rec.involved
    for p in range(n_pes):
        if involved[p]:
            slot = ce2[p] if prev_fits else ce1[p]
            ready = max(ready, slot)
    start = max(0, ready)
    down_cycles = down.done
    down_queue = start - ready if not down.empty else 0
    dist_end = start + down_cycles
    end = dist_end
    if rmw_cycles_before:
        # The previous step's read-modify-write reads follow this distribution's reads
        # on the port; its PEs' output buffers drain once both they and the sums are in.
        port_free = max(rmw_from, start + down.port, port_free) + rmw_cycles_before
        end = max(end, port_free)
        for p in range(n_pes):
            if rmw_pes >> p & 1:
                d1[p] = max(d1[p], port_free)
    arrive = dict(down.deliveries)
    new_ce1, new_ce2, new_d1, new_d2 = list(ce1), list(ce2), list(d1), list(d2)
    waits = [0] * n_pes
    ready_out = 0
    any_egress = False
    for p in range(n_pes):
        if not involved[p]:
            continue
        begin = max(start + arrive.get(p, 0), ce1[p])
        if d2[p] > begin:
            waits[p] = d2[p] - begin
            begin = d2[p]
        finish = begin + rec.compute_cycles[p]
        new_ce2[p], new_ce1[p] = ce1[p], finish
        end = max(end, finish)
        if rec.egress[p]:
            any_egress = True
            ready_out = max(ready_out, finish)
    up_cycles = up_queue = up_start = 0
    new_up_free = up_free
    pending = (0, 0, 0)
    if any_egress:
        up_cycles = up.done
        # The collector takes a step once its distribution phase is over (the machine
        # hands it over then), its egressing PEs finished and the plane is free.
        up_start = max(up_free, ready_out, dist_end)
        up_queue = up_start - ready_out
        new_up_free = up_start + up_cycles
        # The sums land; L2 reads their old values through its read port after the next
        # step's distribution reads (scheduled with the next step), from the collection's
        # start; a sum is added once both are in. Without a next step they start once the
        # port is free: that is when they end here.
        landed = up_start + up.landed
        mask = 0
        for p in range(n_pes):
            if involved[p] and rec.egress[p]:
                new_d2[p], new_d1[p] = d1[p], landed
                mask |= 1 << p
        end = max(end, landed)
        if rmw_cycles:
            pending = (up_start, rmw_cycles, mask)
            end = max(end, max(up_start, port_free) + rmw_cycles)
    shift = dist_end
    floor = start - shift

    # Times before this step's start can no longer decide anything: clamp them.
    def rel(values: list[int]) -> tuple[int, ...]:
        return tuple(v - shift if v - shift > floor else floor for v in values)

    window = (*issue[1:], start)
    new_state = (
        new_up_free - shift if new_up_free > shift else 0,
        int(rec.next_fits),
        # The channel is never used before the next request goes out.
        max(channel_free, window[0]) - shift,
        port_free - shift if port_free - shift > floor else floor,
        pending[0] - shift if pending[1] else 0,
        pending[1],
        pending[2],
        *(v - shift for v in window),
        *rel(new_ce1),
        *rel(new_ce2),
        *rel(new_d1),
        *rel(new_d2),
    )
    return Transition(
        state=new_state,
        shift=shift,
        compute_start=dist_end,
        down_cycles=down_cycles,
        up_cycles=up_cycles,
        offchip_cycles=off,
        down_queue=down_queue,
        up_queue=up_queue,
        drain_waits=tuple(waits) if any(waits) else None,
        end=end,
        down=down.oid,
        up=up.oid if any_egress else -1,
    )


_Key = tuple[int, tuple[int, int, int], int, int, int]
"""A transition's memo key: record, memory costs, state, phase outcomes."""


class Transitions:
    """Memoised :func:`step`: states are interned to small integers, so a repeated
    (record, misses, state) costs one dictionary look-up."""

    def __init__(self, timing: OffchipTiming, n_pes: int) -> None:
        self.timing = timing
        self.n_pes = n_pes
        self.states: list[tuple[int, ...]] = []
        self._state_ids: dict[tuple[int, ...], int] = {}
        self._memo: dict[_Key, tuple[int, Transition]] = {}
        # The same transitions keyed by what :func:`step` reads of a record (its kind)
        # instead of its id: records built or copied alike share them.
        self._by_kind: dict[_Key, tuple[int, Transition]] = {}
        self._kinds: dict[tuple[object, ...], int] = {}
        self._kind_of: dict[int, int] = {}
        self.records: dict[int, StepRecord] = {}
        self.misses_memo = 0

    @property
    def distinct(self) -> int:
        """How many distinct transitions were computed."""
        return len(self._memo)

    def intern(self, state: tuple[int, ...]) -> int:
        """The id of ``state``."""
        sid = self._state_ids.get(state)
        if sid is None:
            sid = len(self.states)
            self._state_ids[state] = sid
            self.states.append(state)
        return sid

    def advance(
        self,
        sid: int,
        rec: StepRecord,
        transfer: tuple[int, int, int],
        down: PhaseOutcome,
        up: PhaseOutcome,
    ) -> tuple[int, Transition]:
        """Next state id and the transition of ``rec`` from state ``sid``. Every
        distinct (record id, costs, state, outcomes) counts as timed in detail
        (:attr:`distinct`); a record of a kind seen before takes that kind's transition."""
        key = (rec.rid, transfer, sid, down.oid, up.oid)
        hit = self._memo.get(key)
        if hit is None:
            self.misses_memo += 1
            kind_key = (self.kind(rec), transfer, sid, down.oid, up.oid)
            hit = self._by_kind.get(kind_key)
            if hit is None:
                trans = step(self.states[sid], rec, transfer, self.timing, self.n_pes, down, up)
                hit = self._by_kind[kind_key] = (self.intern(trans.state), trans)
            self._memo[key] = hit
            self.records[rec.rid] = rec
        return hit

    def kind(self, rec: StepRecord) -> int:
        """The id of the fields of ``rec`` that :func:`step` reads: records equal in
        them make the same transition from the same state, costs and outcomes."""
        found = self._kind_of.get(rec.rid)
        if found is None:
            fields = (rec.involved, rec.compute_cycles, rec.egress, rec.next_fits)
            found = self._kinds.setdefault(fields, len(self._kinds))
            self._kind_of[rec.rid] = found
        return found


IDEAL = PhaseOutcome(
    oid=-2,
    plane=0,
    deliveries=(),
    done=0,
    landed=0,
    port=0,
    busy=0,
    queueing=0,
    edges=(),
    peaks=(),
    empty=True,
)
"""An instantaneous NoC: every phase takes no time (for the runtime split)."""


class Clock:
    """One timing recurrence run by the fast path: its memo, state and absolute times."""

    def __init__(self, timing: OffchipTiming, n_pes: int) -> None:
        self.transitions = Transitions(timing, n_pes)
        self.sid = self.transitions.intern(initial_state(n_pes, timing.max_outstanding))
        self.ref = 0
        self.end = 0

    def run(
        self,
        recs: list[StepRecord],
        transfers: list[tuple[int, int, int]],
        outcomes: list[tuple[PhaseOutcome, PhaseOutcome]],
    ) -> list[tuple[Transition, int]]:
        """:meth:`advance` over consecutive steps; their transitions and references."""
        memo = self.transitions._memo
        sid, ref, end = self.sid, self.ref, self.end
        out = []
        for rec, transfer, (down, up) in zip(recs, transfers, outcomes, strict=True):
            hit = memo.get((rec.rid, transfer, sid, down.oid, up.oid))
            if hit is None:
                hit = self.transitions.advance(sid, rec, transfer, down, up)
            sid, tr = hit
            if ref + tr.end > end:
                end = ref + tr.end
            out.append((tr, ref))
            ref += tr.shift
        self.sid, self.ref, self.end = sid, ref, end
        return out

    def follow(
        self, other: Clock, block: list[tuple[Transition, int]], ref: int
    ) -> list[tuple[Transition, int]]:
        """Take the transitions ``other`` just made from ``ref`` on, from the same state:
        this clock's own times are offset by the difference of the references."""
        offset = self.ref - ref
        out = [(tr, r + offset) for tr, r in block]
        self.end = max(self.end, max((r + tr.end for tr, r in out), default=0))
        self.ref = other.ref + offset
        self.sid = self.transitions.intern(other.transitions.states[other.sid])
        return out

    def advance(
        self, rec: StepRecord, transfer: tuple[int, int, int], down: PhaseOutcome, up: PhaseOutcome
    ) -> tuple[Transition, int]:
        """Advance by one step; returns its transition and the reference it is relative to."""
        self.sid, tr = self.transitions.advance(self.sid, rec, transfer, down, up)
        ref = self.ref
        if ref + tr.end > self.end:
            self.end = ref + tr.end
        self.ref = ref + tr.shift
        return tr, ref
