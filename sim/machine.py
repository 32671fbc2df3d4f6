"""Wires the SimPy machine: off-chip fetcher, L2 distributor, PEs, collector, and the NoC.

Processes, in creation order (which fixes SimPy's tie-breaking):

* ``fetcher``: before step ``t`` may be distributed, brings its L2 misses from off-chip
  (one step ahead of the distributor: it starts once step ``t-1`` started distributing);
* ``distributor``: waits for the fetch and for buffer room in every PE of the step (its
  step-before-last finished computing when double buffering fits in L1, else its last),
  then sends the step's new tiles as one multicast over the NoC;
* one process per PE (:mod:`sim.pe`);
* ``collector``: once every PE whose partial sums leave at step ``t`` has computed it,
  sends them to L2 over the NoC, where an adder tree may add latency before they land.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

import simpy

from .memory import L2Step
from .noc import L2_NODE, Bus, BusTiming
from .pe import PE, PEWork
from .traffic import StepRecord

__all__ = ["Machine", "MachineStats"]


class CountingEnvironment(simpy.Environment):
    """An environment that counts the events it schedules."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled = 0

    def schedule(self, event: simpy.Event, priority: int = 1, delay: int = 0) -> None:  # type: ignore[override]
        self.scheduled += 1
        super().schedule(event, priority, delay)  # type: ignore[arg-type]


@dataclass(slots=True)
class MachineStats:
    """What the SimPy run measured (absolute times)."""

    offchip_busy_cycles: int = 0
    down_queue_cycles: int = 0
    up_queue_cycles: int = 0
    compute_starts: list[int] = field(default_factory=list)
    end: int = 0


class Machine:
    """One layer's run on the bus machine, fed step by step."""

    def __init__(
        self, n_pes: int, timing: BusTiming, feed: Iterator[tuple[StepRecord, L2Step]]
    ) -> None:
        self.env = CountingEnvironment()
        self.timing = timing
        self.bus = Bus(self.env, timing)
        self.offchip = simpy.Resource(self.env, capacity=1)
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
        """Fetch each step's L2 misses from off-chip, one step ahead of distribution."""
        for t, (rec, l2) in enumerate(self._feed):
            self._steps[t] = (rec, l2)
            if t > 0:
                yield self._event(self._started, t - 1)
            fetched = self._event(self._fetched, t)
            if l2.misses:
                cycles = self.timing.offchip_cycles(l2.misses)
                with self.offchip.request() as req:
                    yield req
                    self.stats.offchip_busy_cycles += cycles
                    yield self.env.timeout(cycles)
            fetched.succeed(self.env.now)

    def distributor(self) -> Generator[simpy.Event, object, None]:
        """Send every step's tiles once the fetch and the PEs' buffers allow it."""
        history: list[list[int]] = [[] for _ in self.pes]
        t = 0
        prev_fits = False
        prev_start = 0
        # The fetcher registers step t (or ends the feed) before it fires fetched[t-1].
        while t in self._steps:
            rec, _l2 = self._steps[t]
            fetched = self._event(self._fetched, t)
            waits = [fetched]
            for p, pe in enumerate(self.pes):
                depth = 2 if prev_fits else 1
                if rec.involved[p] and len(history[p]) >= depth:
                    waits.append(pe.done(history[p][-depth]))
            yield simpy.AllOf(self.env, waits)
            ready = max([prev_start, *(int(e.value) for e in waits)])  # type: ignore[call-overload]
            delivered = self.env.event()
            started = self._event(self._started, t)
            start = self.env.now
            prev_start = start
            if rec.bus_in_elems:
                self.stats.down_queue_cycles += start - ready
            started.succeed(start)
            if rec.bus_in_elems:
                yield self.env.process(
                    self.bus.transfer(L2_NODE, _pes(rec.involved), rec.bus_in_elems)
                )
            delivered.succeed()
            self.stats.compute_starts.append(int(self.env.now))
            egress = tuple(p for p, e in enumerate(rec.egress) if e)
            if egress:
                self._event(self.drained, t)
            for p, pe in enumerate(self.pes):
                if rec.involved[p]:
                    pe.inbox.put(PEWork(t, delivered, rec.compute_cycles[p], rec.egress[p]))
                    history[p].append(t)
                    if len(history[p]) > 2:
                        pe.forget(history[p].pop(0))
            if egress:
                self._outbox.put((t, [self.pes[p].done(t) for p in egress], rec))
            prev_fits = rec.next_fits
            self._steps.pop(t)
            self._fetched.pop(t, None)
            self._started.pop(t - 1, None)
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
            t, done, rec = item  # type: ignore[misc]
            yield simpy.AllOf(self.env, done)
            ready = max(int(e.value) for e in done)  # type: ignore[arg-type]
            self.stats.up_queue_cycles += self.env.now - ready
            yield self.env.process(self.bus.transfer("PEs", (L2_NODE,), rec.bus_out_elems))
            self.env.process(self._land(t, rec.adder_cycles))

    def _land(self, t: int, adder_cycles: int) -> Generator[simpy.Event, object, None]:
        yield self.env.timeout(adder_cycles)
        self.drained[t].succeed(self.env.now)


def _pes(involved: tuple[bool, ...]) -> tuple[int, ...]:
    return tuple(p for p, flag in enumerate(involved) if flag)
