"""A processing element: waits for its tiles, computes, hands partial sums to the NoC."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import simpy

__all__ = ["PE", "PEWork"]


@dataclass(frozen=True, slots=True)
class PEWork:
    """One step of one PE: when its tiles arrive, how long it computes, whether its
    partial sums leave afterwards."""

    step: int
    delivered: simpy.Event
    compute_cycles: int
    egress: bool


class PE:
    """One PE process. ``done(step)`` fires when its compute of ``step`` ends; before
    computing it waits until the output buffer it is about to reuse has drained
    (two output buffers: one accumulating, one draining)."""

    def __init__(self, env: simpy.Environment, index: int, drained: dict[int, simpy.Event]) -> None:
        self.env = env
        self.index = index
        self.inbox: simpy.Store = simpy.Store(env)
        self._done: dict[int, simpy.Event] = {}
        self._drained = drained
        self._egress: list[int] = []
        self.compute_cycles = 0
        self.drain_wait_cycles = 0
        env.process(self.run())

    def done(self, step: int) -> simpy.Event:
        """Event fired (value: its time) when this PE finishes computing ``step``."""
        event = self._done.get(step)
        if event is None:
            event = self._done[step] = self.env.event()
        return event

    def forget(self, step: int) -> None:
        """Drop the event of a step nobody will wait for again."""
        self._done.pop(step, None)

    def run(self) -> Generator[simpy.Event, object, None]:
        """Take work in step order; a ``None`` item ends the process."""
        while True:
            work = yield self.inbox.get()
            if work is None:
                return
            assert isinstance(work, PEWork)
            yield work.delivered
            if len(self._egress) >= 2:
                gate = self._drained[self._egress[-2]]
                if not gate.processed:
                    waited_from = int(self.env.now)
                    yield gate
                    self.drain_wait_cycles += int(self.env.now) - waited_from
            yield self.env.timeout(work.compute_cycles)
            self.compute_cycles += work.compute_cycles
            if work.egress:
                self._egress.append(work.step)
                del self._egress[:-2]
            self.done(work.step).succeed(self.env.now)
