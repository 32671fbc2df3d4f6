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
  read-modify-writes read through L2's read port, in the order below).

L2's read port serves the distributions' reads (until a distribution's last hop out of
L2 released its link) and the read-modify-write reads one at a time, in the order
distribution ``t+1``, read-modify-write reads of ``t``, distribution ``t+2`` ...: a
distribution waits for the reads of the step before last, and a step's reads wait for
the next distribution's (:func:`metronome.sim.timing.step` gives the same times).
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
        # Per step: L2's read port is free of its distribution's reads (_port), of its
        # read-modify-write reads (_rmw_done; steps with such reads only).
        self._port: dict[int, simpy.Event] = {}
        self._rmw_done: dict[int, simpy.Event] = {}
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
        reads: list[int] = []  # steps with read-modify-write reads, up to the previous one
        # The fetcher registers step t (or ends the feed) before it fires fetched[t-1].
        while t in self._steps:
            rec, l2 = self._steps[t]
            fetched = self._event(self._fetched, t)
            waits = [fetched]
            for p, pe in enumerate(self.pes):
                depth = 2 if prev_fits else 1
                if rec.involved[p] and len(history[p]) >= depth:
                    waits.append(pe.done(history[p][-depth]))
            # The read-modify-write reads scheduled before this distribution: the last
            # such step before the previous one.
            before = [s for s in reads[-2:] if s <= t - 2]
            if before:
                waits.append(self._event(self._rmw_done, before[-1]))
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
            if reads and reads[-1] == t - 1:
                # The previous step's read-modify-write reads wait for this one's.
                self._relay(run.port, self._event(self._port, t))
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
                if self.timing.transfer(0, 0, l2.rmw_reads)[2]:
                    reads.append(t)
                    del reads[:-3]
            prev_fits = rec.next_fits
            self._steps.pop(t)
            self._fetched.pop(t, None)
            self._started.pop(t - self.timing.max_outstanding, None)
            t += 1
        if reads and reads[-1] == t - 1:
            # No distribution follows the last step: its reads wait for nothing more.
            self._event(self._port, t).succeed(int(self.env.now))
        for pe in self.pes:
            pe.inbox.put(None)
        self._outbox.put(None)

    @staticmethod
    def _relay(source: simpy.Event, target: simpy.Event) -> None:
        """Fire ``target`` (with ``source``'s time) when ``source`` fires."""

        def fire(event: simpy.Event) -> None:
            target.succeed(fired_at(event))

        if source.callbacks is None:
            target.succeed(fired_at(source))
        else:
            source.callbacks.append(fire)

    def collector(self) -> Generator[simpy.Event, object, None]:
        """Bring partial sums back to L2 in step order."""
        last_reads = -1
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
            if rmw_cycles:
                self.env.process(self._read_and_land(t, run.landed, rmw_cycles, last_reads))
                last_reads = t
            else:
                self._relay(run.landed, self.drained[t])
            yield run.done
            self.stats.up_busy_cycles += int(self.env.now) - start
            self._busy(t, COLLECTION, run.edge_busy)

    def _read_and_land(
        self, t: int, landed: simpy.Event, cycles: int, before: int
    ) -> Generator[simpy.Event, object, None]:
        """Step ``t``'s read-modify-write reads: from now (the collection's start), once
        the next step's distribution and the previous such reads (step ``before``) are
        off L2's read port, they hold it ``cycles`` cycles; its partial sums are added
        (``drained``) when they are done and the sums ``landed``."""
        waits = [self._event(self._port, t + 1)]
        if before >= 0:
            waits.append(self._event(self._rmw_done, before))
        yield simpy.AllOf(self.env, waits)
        yield self.env.timeout(cycles)
        self._event(self._rmw_done, t).succeed(int(self.env.now))
        self._port.pop(t + 1, None)
        self._rmw_done.pop(before, None)
        yield landed
        self.drained[t].succeed(int(self.env.now))

    def _busy(self, t: int, plane: int, edge_busy: dict[int, int]) -> None:
        """Remember the link-busy cycles of step ``t``'s phase on ``plane``."""
        table = {(plane, e): busy for e, busy in edge_busy.items()}
        self.stats.phase_busy_at.setdefault(t, []).append(table)
