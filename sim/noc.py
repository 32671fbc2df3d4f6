"""The network-on-chip as SimPy processes: pipelined links that accept one message at a time.

The NoC has two planes of the same topology (:mod:`metronome.sim.topology`), one for
distribution (tiles from L2, forwards between neighbours) and one for collection
(partial sums to L2), as accelerators with separate distribution and reduction networks
have; a plane runs one step's phase (:mod:`metronome.sim.phases`) at a time.

Link timing. A hop of ``n > 0`` elements on a link of bandwidth ``B`` and latency ``L``
*occupies* the link for ``H + ceil(n / B)`` cycles: ``H`` header cycles (the fabric's
``header_cycles``, paid by every message on every link) and the payload's serialisation,
so at least one cycle whatever ``L`` is. ``L`` is pipeline delay, not occupancy: an
element that enters the link in cycle ``c`` is at the far node at ``c + L`` (``L = 0``:
a wire without a register, the element is there in the cycle it enters). The hop may
start once its head reaches the link's source node: at the phase start for a source hop,
``L_parent`` cycles after its parent started for a hop that streams on (cut-through),
and once every incoming stream has fully arrived plus the merge point's adder latency
for a merge. Its last element enters at ``last = max(start + H + ceil(n/B) - 1, last of
the feeding hop + its L)`` (a link fed more slowly than its own bandwidth waits for its
last element), is received (by a PE, L2 or an adder) at ``tail = last + max(L, 1)``
(MAESTRO's ``L + ceil(n/B) - 1`` on a single link with ``H = 0`` and ``L >= 1``; with
``L = 0`` an element crosses within the cycle it enters, and can be sent on over the
next link in that cycle, but a transfer still takes at least one cycle), and the link
accepts the next message at ``last + 1`` (never after the data it carried are received).
A link serves one hop at a time, the others queue (FIFO by arrival, or round robin over
the nodes they come from, FIFO within one). Links with the same ``resource`` share one
server. A hop of no elements, or on a bus tap (the medium itself), occupies nothing and
adds nothing: its tail is ``max(max(start, feed) + L, tail of the feeding hop)``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import cast

import simpy

from .phases import Fabric, Hop, Message, Phase
from .topology import L2

__all__ = [
    "CountingEnvironment",
    "LinkServer",
    "LinkStats",
    "NoC",
    "PhaseOracle",
    "PhaseOutcome",
    "PhaseRun",
]

_STAT_FIELDS = 5  # elements, busy cycles, queueing cycles, max queueing, requests


def fired_at(event: simpy.Event) -> int:
    """The cycle a fired timing event carries: every such event succeeds with its cycle."""
    return int(cast(int, event.value))


class CountingEnvironment(simpy.Environment):
    """An environment that counts the events it schedules."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled = 0

    def schedule(self, event: simpy.Event, priority: int = 1, delay: int = 0) -> None:  # type: ignore[override]
        self.scheduled += 1
        super().schedule(event, priority, delay)  # type: ignore[arg-type]


class LinkServer:
    """One resource of one plane: grants one hop at a time, FIFO or round robin."""

    def __init__(self, env: simpy.Environment, round_robin: bool, last_port: int = -1) -> None:
        self.env = env
        self.round_robin = round_robin
        self.last_port = last_port
        self.busy = False
        self.waiting: list[tuple[int, simpy.Event]] = []
        self.waits: list[tuple[int, int]] = []

    def request(self, port: int) -> simpy.Event:
        """An event granted when this hop (entering from node ``port``) holds the link."""
        event = self.env.event()
        if self.busy:
            self.waiting.append((port, event))
        else:
            self.busy = True
            self.last_port = port
            event.succeed()
        return event

    def release(self) -> None:
        """Hand the link to the next waiting hop."""
        if not self.waiting:
            self.busy = False
            return
        pick = 0
        if self.round_robin:
            after = self.last_port

            def turn(i: int) -> tuple[bool, int, int]:
                port = self.waiting[i][0]
                return (port <= after, port, i)

            pick = min(range(len(self.waiting)), key=turn)
        port, event = self.waiting.pop(pick)
        self.last_port = port
        event.succeed()

    def peak_queue(self) -> int:
        """Most hops ever waiting for this link at once (for a positive time)."""
        changes = sorted([(s, -1) for _, s in self.waits] + [(a, 1) for a, _ in self.waits])
        peak = length = 0
        for _, step in changes:
            length += step
            peak = max(peak, length)
        return peak


@dataclass(slots=True)
class LinkStats:
    """Per edge of one plane: ``[elements, busy cycles, queueing cycles, max queueing
    cycles, hops served]``."""

    edges: dict[int, list[int]] = field(default_factory=dict)

    def add_hop(self, edge: int, elems: int, busy: int, wait: int) -> None:
        """Count one hop."""
        row = self.edges.get(edge)
        if row is None:
            row = self.edges[edge] = [0] * _STAT_FIELDS
        row[0] += elems
        row[1] += busy
        row[2] += wait
        row[3] = max(row[3], wait)
        row[4] += 1


@dataclass(frozen=True, slots=True)
class PhaseOutcome:
    """What one phase did, times relative to its start: when each receiving PE has all
    its data, when every link is free again (``done``: the plane may take the next
    phase; data can still be in flight), when the partial sums are added in L2
    (``landed``), when its last hop out of L2 released its link (``port``: L2's read
    port is free again), total busy (occupied) and queueing cycles, and per-link
    statistics."""

    oid: int
    plane: int
    deliveries: tuple[tuple[int, int], ...]
    done: int
    landed: int
    port: int
    busy: int
    queueing: int
    edges: tuple[tuple[int, ...], ...]
    peaks: tuple[tuple[int, int], ...]
    empty: bool


class PhaseRun:
    """One phase in flight: per-PE delivery events, ``done`` (all links released),
    ``landed`` (every message's partial sums added in L2) and ``port`` (every hop out of
    L2 released its link)."""

    def __init__(self, env: simpy.Environment, fabric: Fabric, phase: Phase) -> None:
        self.env = env
        self.start = int(env.now)
        self.delivered: dict[int, simpy.Event] = {}
        self._pending_pe: dict[int, int] = {}
        self._last_pe: dict[int, int] = {}
        self._into_l2: list[int] = []
        for msg in phase.messages:
            for hop in msg.hops:
                for p in hop.deliver:
                    self._pending_pe[p] = self._pending_pe.get(p, 0) + 1
            self._into_l2.append(sum(1 for h in msg.hops if fabric.edges[h.edge][1] == L2))
        for p in self._pending_pe:
            self.delivered[p] = env.event()
        self._hops_left = sum(len(m.hops) for m in phase.messages)
        self._port_left = sum(
            1 for m in phase.messages for h in m.hops if fabric.edges[h.edge][0] == L2
        )
        self.port = env.event()
        if not self._port_left:
            self.port.succeed(self.start)
        self._landing = [self.start] * len(phase.messages)
        self._messages_left = sum(1 for n in self._into_l2 if n)
        self.done = env.event()
        self.landed = env.event()
        self._landed_at = self.start
        self.busy = 0
        self.queueing = 0
        self.edge_busy: dict[int, int] = {}
        if not self._hops_left:
            self.done.succeed(self.start)
        if not self._messages_left:
            self.landed.succeed(self.start)

    def _at(self, when: int, event: simpy.Event) -> None:
        delay = when - int(self.env.now)
        if delay <= 0:
            event.succeed(when)
            return
        timer = self.env.timeout(delay)

        def fire(_: simpy.Event) -> None:
            event.succeed(when)

        timer.callbacks.append(fire)

    def granted(self, m: int, msg: Message, hop: Hop, tail: int, into_l2: bool) -> None:
        """Hop ``hop`` of message ``m`` started; its last element arrives at ``tail``."""
        for p in hop.deliver:
            self._pending_pe[p] -= 1
            self._last_pe[p] = max(self._last_pe.get(p, tail), tail)
            if not self._pending_pe[p]:
                self._at(self._last_pe[p], self.delivered[p])
        if into_l2:
            self._landing[m] = max(self._landing[m], tail)
            self._into_l2[m] -= 1
            if not self._into_l2[m]:
                self._landed_at = max(self._landed_at, self._landing[m] + msg.l2_adder_cycles)
                self._messages_left -= 1
                if not self._messages_left:
                    self._at(self._landed_at, self.landed)

    def released(self, from_l2: bool) -> None:
        """One hop (out of L2 or not) released its link."""
        if from_l2:
            self._port_left -= 1
            if not self._port_left:
                self.port.succeed(int(self.env.now))
        self._hops_left -= 1
        if not self._hops_left:
            self.done.succeed(int(self.env.now))


class NoC:
    """Both planes of the network: link servers, hop processes and statistics.

    ``contention=False`` gives the zero-load network (every hop starts as soon as its
    data is there), used to split the runtime."""

    def __init__(
        self,
        env: simpy.Environment,
        fabric: Fabric,
        *,
        round_robin: bool = False,
        contention: bool = True,
        pointers: tuple[dict[int, int], dict[int, int]] | None = None,
    ) -> None:
        self.env = env
        self.fabric = fabric
        self.round_robin = round_robin
        self.contention = contention
        self.servers: tuple[dict[int, LinkServer], dict[int, LinkServer]] = ({}, {})
        self._pointers = pointers or ({}, {})
        self.stats = (LinkStats(), LinkStats())

    def server(self, plane: int, resource: int) -> LinkServer:
        """The server of ``resource`` on ``plane`` (created on first use)."""
        found = self.servers[plane].get(resource)
        if found is None:
            last = self._pointers[plane].get(resource, -1)
            found = LinkServer(self.env, self.round_robin, last)
            self.servers[plane][resource] = found
        return found

    def pointers(self, plane: int) -> dict[int, int]:
        """Round-robin state: the last port each server of ``plane`` granted."""
        out = dict(self._pointers[plane])
        out.update({r: s.last_port for r, s in self.servers[plane].items()})
        return out

    def peaks(self, plane: int) -> dict[int, int]:
        """Peak queue length of every server of ``plane`` used so far."""
        peaks = {r: s.peak_queue() for r, s in self.servers[plane].items()}
        return {r: p for r, p in peaks.items() if p}

    def start(self, phase: Phase) -> PhaseRun:
        """Inject every message of ``phase`` now."""
        run = PhaseRun(self.env, self.fabric, phase)
        for m, msg in enumerate(phase.messages):
            events = [self.env.event() for _ in msg.hops]
            for h in range(len(msg.hops)):
                self.env.process(self._hop(run, phase.plane, m, msg, h, events))
        return run

    def _hop(
        self, run: PhaseRun, plane: int, m: int, msg: Message, h: int, events: list[simpy.Event]
    ) -> Generator[simpy.Event, object, None]:
        """One hop: wait for its head, hold the link until its last element entered."""
        env, fabric = self.env, self.fabric
        hop = msg.hops[h]
        feed = inherited = -1
        if hop.parents:
            if hop.merge is None:
                parent = hop.parents[0]
                head = yield events[parent]
                p_start, feed, inherited = cast("tuple[int, int, int]", head)
                ready = p_start + fabric.latency[msg.hops[parent].edge]
            else:
                joined = yield simpy.AllOf(env, [events[i] for i in hop.parents])
                got = cast(simpy.events.ConditionValue, joined)
                ready = max(v[2] for v in got.values()) + hop.merge
            if ready > env.now:
                yield env.timeout(ready - int(env.now))
        asked = int(env.now)
        server = self.server(plane, fabric.resource[hop.edge])
        if self.contention:
            yield server.request(hop.port)
        start = int(env.now)
        if start > asked:
            server.waits.append((asked, start))
        latency = fabric.latency[hop.edge]
        if hop.elems and not fabric.tap[hop.edge]:
            occupy = fabric.header_cycles + -(-hop.elems // fabric.bandwidth[hop.edge])
            last = max(start + occupy - 1, feed)
            release = last + 1
            tail = last + max(latency, 1)
        else:
            last = max(start, feed)
            release = start
            tail = max(last + latency, inherited)
        events[h].succeed((start, last + latency, tail))
        run.granted(m, msg, hop, tail, fabric.edges[hop.edge][1] == L2)
        self.stats[plane].add_hop(hop.edge, hop.elems, release - start, start - asked)
        run.busy += release - start
        run.edge_busy[hop.edge] = run.edge_busy.get(hop.edge, 0) + release - start
        run.queueing += start - asked
        if release > env.now:
            yield env.timeout(release - int(env.now))
        if self.contention:
            server.release()
        run.released(fabric.edges[hop.edge][0] == L2)


class PhaseOracle:
    """Phase outcomes for the fast path: each distinct phase (and round-robin state) is
    run once through the same SimPy processes on an otherwise idle plane, then looked up.

    This is exact because a plane runs one phase at a time: the next phase on a plane
    starts no earlier than ``done``, when every hop of this one has released its link
    (its last element has entered it; hops still to start are waiting for data of the
    same phase, so ``done`` comes after them too). Elements still in flight then hold no
    link (latency is pipeline delay, not occupancy), so the next phase finds its plane as
    idle as the oracle's, and what this phase still delivers after ``done`` (deliveries
    and landing, which may come up to a path latency later) are offsets from its own
    start that nothing later can change. A phase's outcome depends only on its messages
    and the round-robin pointers."""

    def __init__(self, fabric: Fabric, *, round_robin: bool, contention: bool) -> None:
        self.fabric = fabric
        self.round_robin = round_robin and contention
        self.contention = contention
        self.outcomes: list[PhaseOutcome] = []
        self._memo: dict[tuple[int, int, int], tuple[PhaseOutcome, int]] = {}
        self._states: list[tuple[tuple[int, int], ...]] = [()]
        self._state_ids: dict[tuple[tuple[int, int], ...], int] = {(): 0}
        self.events = 0

    def outcome(self, phase: Phase, pointers: int = 0) -> tuple[PhaseOutcome, int]:
        """The outcome of ``phase`` from round-robin state ``pointers``, and the state
        after it."""
        key = (phase.key, phase.plane, pointers)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._run(phase, pointers)
        return hit

    def _run(self, phase: Phase, pointers: int) -> tuple[PhaseOutcome, int]:
        env = CountingEnvironment()
        seed = dict(self._states[pointers])
        plane = phase.plane
        seeds: tuple[dict[int, int], dict[int, int]] = ({}, {})
        seeds[plane].update(seed)
        noc = NoC(
            env,
            self.fabric,
            round_robin=self.round_robin,
            contention=self.contention,
            pointers=seeds,
        )
        run = noc.start(phase)
        env.run()
        self.events += env.scheduled
        after = pointers
        if self.round_robin:
            state = tuple(sorted(noc.pointers(plane).items()))
            after = self._state_ids.setdefault(state, len(self._states))
            if after == len(self._states):
                self._states.append(state)
        outcome = PhaseOutcome(
            oid=len(self.outcomes),
            plane=plane,
            deliveries=tuple(sorted((p, fired_at(e)) for p, e in run.delivered.items())),
            done=fired_at(run.done),
            landed=fired_at(run.landed),
            port=fired_at(run.port),
            busy=run.busy,
            queueing=run.queueing,
            edges=tuple((e, *row) for e, row in sorted(noc.stats[plane].edges.items())),
            peaks=tuple(sorted(noc.peaks(plane).items())),
            empty=not phase.messages,
        )
        self.outcomes.append(outcome)
        return outcome, after
