"""Wires the SimPy machine: off-chip fetcher, L2 distributor, PEs, collector, and the NoC.

Processes, in creation order (which fixes SimPy's tie-breaking):

* ``fetcher``: before step ``t`` may be distributed, moves its off-chip traffic over the
  channel (requests up to ``max_outstanding`` steps ahead of the distributor, in order;
  reads arrive after the off-chip latency);
* ``distributor``: waits for the fetch and for buffer room in every PE of the step (its
  step-before-last finished computing when double buffering fits in L1, else its last),
  then injects the step's distribution phase (multicasts from L2, forwards between
  neighbours) into the NoC's distribution plane and waits until that plane is free; each
  PE may compute once its own data has arrived;
* one process per PE (:mod:`metronome.sim.pe`);
* ``collector``: once every PE whose partial sums leave at step ``t`` has computed it,
  injects the step's collection phase into the collection plane; the partial sums land
  when every message has reached L2 and been added there (the old values of
  read-modify-writes read through L2's read port, from the phase's start).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import cast

import simpy

from .memory import L2Step, OffchipTiming
from .noc import CountingEnvironment, NoC, fired_at
from .pe import PE, PEWork
from .phases import COLLECTION, DISTRIBUTION, Fabric, PhaseBuilder
from .traffic import StepRecord

__all__ = ["Machine", "MachineStats"]


@dataclass(slots=True)
class MachineStats:
    """What the SimPy run measured (absolute times)."""

    offchip_busy_cycles: int = 0
    down_queue_cycles: int = 0
    up_queue_cycles: int = 0
    down_busy_cycles: int = 0
    up_busy_cycles: int = 0
    compute_starts: list[int] = field(default_factory=list)
    phase_busy_at: dict[int, list[dict[tuple[int, int], int]]] = field(default_factory=dict)
    end: int = 0


class Machine:
    """One layer's run, fed step by step."""

    def __init__(
        self,
        n_pes: int,
        timing: OffchipTiming,
        fabric: Fabric,
        phases: PhaseBuilder,
        feed: Iterator[tuple[StepRecord, L2Step]],
        *,
        round_robin: bool = False,
    ) -> None:
        self.env = CountingEnvironment()
        self.timing = timing
        self.noc = NoC(self.env, fabric, round_robin=round_robin)
        self.phases = phases
        self.stats = MachineStats()
        self._feed = feed
        self._fetched: dict[int, simpy.Event] = {}
        self._started: dict[int, simpy.Event] = {}
        self.drained: dict[int, simpy.Event] = {}
        self._steps: dict[int, tuple[StepRecord, L2Step]] = {}
        self._outbox: simpy.Store = simpy.Store(self.env)
        self.env.process(self.fetcher())
        self.env.process(self.distributor())
        self.pes = [PE(self.env, i, self.drained) for i in range(n_pes)]
        self.env.process(self.collector())

    def _event(self, table: dict[int, simpy.Event], step: int) -> simpy.Event:
        event = table.get(step)
        if event is None:
            event = table[step] = self.env.event()
        return event

    def run(self) -> int:
        """Run to completion; returns the runtime in cycles."""
        self.env.run()
        self.stats.end = int(self.env.now)
        return self.stats.end

    def fetcher(self) -> Generator[simpy.Event, object, None]:
        """Move each step's off-chip traffic (L2 misses and output refetches in, evicted
        outputs out) over the channel, in step order. The request for step ``t`` goes
        out once step ``t - max_outstanding`` started distributing, so up to
        ``max_outstanding`` requests are in flight; a read's data arrives
        ``latency_cycles`` after its transfer."""
        ahead = self.timing.max_outstanding
        for t, (rec, l2) in enumerate(self._feed):
            self._steps[t] = (rec, l2)
            if t >= ahead:
                yield self._event(self._started, t - ahead)
            fetched = self._event(self._fetched, t)
            cycles, latency, _ = self.timing.transfer(*l2.traffic)
            if cycles:
                self.stats.offchip_busy_cycles += cycles
                yield self.env.timeout(cycles)
            if latency:
                self.env.process(self._arrive(latency, fetched))
            else:
                fetched.succeed(int(self.env.now))

    def _arrive(self, delay: int, event: simpy.Event) -> Generator[simpy.Event, object, None]:
        """Fire ``event`` (value: its time) ``delay`` cycles from now."""
        yield self.env.timeout(delay)
        event.succeed(int(self.env.now))

    def distributor(self) -> Generator[simpy.Event, object, None]:
        """Send every step's tiles once the fetch and the PEs' buffers allow it."""
        history: list[list[int]] = [[] for _ in self.pes]
        t = 0
        prev_fits = False
        prev_start = 0
        # The fetcher registers step t (or ends the feed) before it fires fetched[t-1].
        while t in self._steps:
            rec, l2 = self._steps[t]
            fetched = self._event(self._fetched, t)
            waits = [fetched]
            for p, pe in enumerate(self.pes):
                depth = 2 if prev_fits else 1
                if rec.involved[p] and len(history[p]) >= depth:
                    waits.append(pe.done(history[p][-depth]))
            yield simpy.AllOf(self.env, waits)
            ready = max([prev_start, *(fired_at(e) for e in waits)])
            started = self._event(self._started, t)
            start = int(self.env.now)
            prev_start = start
            phase = self.phases.phase(rec, DISTRIBUTION)
            if phase.messages:
                self.stats.down_queue_cycles += start - ready
            started.succeed(start)
            run = self.noc.start(phase)
            now = self.env.event().succeed()
            egress = tuple(p for p, e in enumerate(rec.egress) if e)
            if egress:
                self._event(self.drained, t)
            for p, pe in enumerate(self.pes):
                if rec.involved[p]:
                    delivered = run.delivered.get(p, now)
                    pe.inbox.put(PEWork(t, delivered, rec.compute_cycles[p], rec.egress[p]))
                    history[p].append(t)
                    if len(history[p]) > 2:
                        pe.forget(history[p].pop(0))
            yield run.done
            self.stats.down_busy_cycles += int(self.env.now) - int(start)
            self.stats.compute_starts.append(int(self.env.now))
            self._busy(t, DISTRIBUTION, run.edge_busy)
            if egress:
                self._outbox.put((t, [self.pes[p].done(t) for p in egress], rec, l2))
            prev_fits = rec.next_fits
            self._steps.pop(t)
            self._fetched.pop(t, None)
            self._started.pop(t - self.timing.max_outstanding, None)
            t += 1
        for pe in self.pes:
            pe.inbox.put(None)
        self._outbox.put(None)

    def collector(self) -> Generator[simpy.Event, object, None]:
        """Bring partial sums back to L2 in step order."""
        while True:
            item = yield self._outbox.get()
            if item is None:
                return
            t, done, rec, l2 = cast("tuple[int, list[simpy.Event], StepRecord, L2Step]", item)
            yield simpy.AllOf(self.env, done)
            ready = max(fired_at(e) for e in done)
            self.stats.up_queue_cycles += int(self.env.now) - ready
            start = int(self.env.now)
            run = self.noc.start(self.phases.phase(rec, COLLECTION))
            rmw_cycles = self.timing.transfer(0, 0, l2.rmw_reads)[2]
            self.env.process(self._land(t, run.landed, start + rmw_cycles))
            yield run.done
            self.stats.up_busy_cycles += int(self.env.now) - start
            self._busy(t, COLLECTION, run.edge_busy)

    def _land(self, t: int, landed: simpy.Event, read: int) -> Generator[simpy.Event, object, None]:
        """Partial sums of step ``t`` are in L2 (added) when ``landed`` fired and L2's
        read port has read their old values (at ``read``: the read-modify-write reads
        start with the collection and move at the port's bandwidth)."""
        yield landed
        if self.env.now < read:
            yield self.env.timeout(read - int(self.env.now))
        self.drained[t].succeed(self.env.now)

    def _busy(self, t: int, plane: int, edge_busy: dict[int, int]) -> None:
        """Remember the link-busy cycles of step ``t``'s phase on ``plane``."""
        table = {(plane, e): busy for e, busy in edge_busy.items()}
        self.stats.phase_busy_at.setdefault(t, []).append(table)
