"""Synthetic traffic on the simulator's NoC, to check it against network theory.

The same topologies (:mod:`metronome.sim.topology`), routes, links and routers
(:mod:`metronome.sim.noc`)
the accelerator runs on carry messages of ``message_elems`` elements in one of three
patterns:

* ``uniform``: every PE sends to a PE chosen uniformly among the others (on the bus,
  which has no PE-to-PE path over its medium, through L2: up the medium and down again);
* ``hotspot``: every PE sends to L2;
* ``broadcast``: L2 sends to every PE (one multicast per message).

Offered load is in elements per PE per cycle (for ``broadcast``: what each PE is
offered, so L2 sends that many elements per cycle). Each source injects a message in a
cycle with probability ``load / message_elems`` (Bernoulli, a seeded generator) into its
FIFO source queue; it keeps at most ``outstanding`` messages in the network (its network
interface's credits: a message leaves the queue when an earlier one has been received),
so past saturation the queues, not the routers, hold the excess and the traffic in the
network keeps the pattern's mix. A message's latency runs from its creation to its
reception (by the last PE for a broadcast), source queueing included. After
``warmup_cycles`` the driver measures, over ``cycles``: accepted throughput (elements
received per PE per cycle; for ``hotspot``, reaching L2 per source PE) and the mean
latency of the messages created in the window (those not received ``cycles`` after the
window closed are counted as unfinished: the network is saturated).

The theory it is checked against is computed from the same graph, not by simulation:
:func:`zero_load_latency` (a message alone on its route) and :func:`channel_load_bound`
(the offered load at which the busiest link is fully used).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass
from math import ceil

import numpy as np
import simpy

from metronome.spec.hardware import Hardware

from .noc import NoC, fired_at
from .options import REALISTIC
from .phases import DISTRIBUTION, Fabric, Hop, Message, Phase, PhaseBuilder
from .topology import L2, build_topology

__all__ = [
    "PATTERNS",
    "SyntheticTraffic",
    "TrafficResult",
    "channel_load_bound",
    "zero_load_latency",
]

PATTERNS: tuple[str, ...] = ("uniform", "hotspot", "broadcast")


@dataclass(frozen=True, slots=True)
class TrafficResult:
    """One run at one offered load."""

    pattern: str
    offered_elems_per_pe_per_cycle: float
    accepted_elems_per_pe_per_cycle: float
    mean_latency_cycles: float
    messages_measured: int
    messages_unfinished: int

    @property
    def saturated(self) -> bool:
        """Some message of the window was still in the network at the end."""
        return self.messages_unfinished > 0


class SyntheticTraffic:
    """A traffic pattern on the NoC that ``hardware`` describes."""

    def __init__(self, hardware: Hardware, pattern: str, *, message_elems: int = 4) -> None:
        if pattern not in PATTERNS:
            raise ValueError(f"unknown traffic pattern {pattern!r}: one of {', '.join(PATTERNS)}")
        if message_elems < 1:
            raise ValueError(f"message_elems must be >= 1, got {message_elems}")
        self.hardware = hardware
        self.pattern = pattern
        self.message_elems = message_elems
        self.num_pes = hardware.num_pes
        if pattern == "uniform" and self.num_pes < 2:
            raise ValueError("uniform PE-to-PE traffic needs at least 2 PEs")
        self.fabric = Fabric(build_topology(hardware), header_cycles=hardware.noc_header_cycles)
        self.builder = PhaseBuilder(self.fabric, hardware, REALISTIC)
        self._messages: dict[tuple[int, int], Message] = {}

    # -- routes ---------------------------------------------------------------------
    def sources(self) -> tuple[int, ...]:
        """Source indices: PEs, or the single L2 (index 0) for a broadcast."""
        return (0,) if self.pattern == "broadcast" else tuple(range(self.num_pes))

    def message(self, src: int, dst: int = -1) -> Message:
        """The message a source sends (``dst``: the receiving PE for ``uniform``)."""
        key = (src, dst)
        found = self._messages.get(key)
        if found is None:
            found = self._messages[key] = self._build(src, dst)
        return found

    def _build(self, src: int, dst: int) -> Message:
        b, n = self.builder, self.message_elems
        if self.pattern == "broadcast":
            return b.multicast(L2, tuple(range(self.num_pes)), n, None)
        if self.pattern == "hotspot":
            return b.reduction((((src,), n),))
        if not self.fabric.broadcast:
            return b.multicast(("pe", src), (dst,), n, None)
        return _through_l2(
            self.fabric, b.reduction((((src,), n),)), b.multicast(L2, (dst,), n, None)
        )

    def receivers(self, src: int, dst: int) -> tuple[int, ...]:
        """PEs whose reception ends a message (empty: it ends when it reaches L2)."""
        if self.pattern == "broadcast":
            return tuple(range(self.num_pes))
        return () if self.pattern == "hotspot" else (dst,)

    # -- simulation -----------------------------------------------------------------
    def latency(self, src: int, dst: int = -1) -> int:
        """Cycles a message takes alone on an idle network (simulated)."""
        env = simpy.Environment()
        noc = NoC(env, self.fabric)
        times: list[int] = []
        self._inject(noc, 0, src, dst, lambda _t, done: times.append(done), None)
        env.run()
        return times[0]

    def _inject(
        self,
        noc: NoC,
        now: int,
        src: int,
        dst: int,
        on_done: Callable[[int, int], None],
        on_elems: Callable[[int, int], None] | None,
    ) -> None:
        """Start one message now; ``on_done(created, received)`` when it is received,
        ``on_elems(time, elems)`` for every PE (or L2) that receives its elements."""
        run = noc.start(Phase(DISTRIBUTION, (self.message(src, dst),), 0))
        n = self.message_elems
        pes = self.receivers(src, dst)
        events = [run.delivered[p] for p in pes] if pes else [run.landed]
        pending = [len(events), now]

        def got(event: simpy.Event) -> None:
            when = fired_at(event)
            if on_elems is not None:
                on_elems(when, n)
            pending[0] -= 1
            pending[1] = max(pending[1], when)
            if not pending[0]:
                on_done(now, pending[1])

        for event in events:
            if event.triggered:
                got(event)
            else:
                event.callbacks.append(got)

    def run(
        self,
        load: float,
        *,
        cycles: int = 2000,
        warmup_cycles: int = 500,
        seed: int = 0,
        outstanding: int = 16,
    ) -> TrafficResult:
        """Offer ``load`` elements per PE per cycle; measure after the warm-up."""
        p = load / self.message_elems
        if not 0 < p <= 1:
            raise ValueError(
                f"offered load must be in (0, {self.message_elems}] elements/PE/cycle"
                f" for {self.message_elems}-element messages, got {load}"
            )
        rng = np.random.default_rng(seed)
        horizon = warmup_cycles + cycles
        injections: list[tuple[int, int, int]] = []
        for src in self.sources():
            times = np.flatnonzero(rng.random(horizon) < p)
            if self.pattern == "uniform":
                dsts = rng.integers(0, self.num_pes - 1, size=len(times))
                dsts = dsts + (dsts >= src)
            else:
                dsts = np.full(len(times), -1)
            injections += zip(times.tolist(), [src] * len(times), dsts.tolist(), strict=True)
        injections.sort()
        env = simpy.Environment()
        noc = NoC(env, self.fabric, round_robin=self.hardware.noc_arbitration == "round_robin")
        window = (warmup_cycles, horizon)
        latencies: list[int] = []
        received = [0]
        queues: dict[int, deque[tuple[int, int]]] = {s: deque() for s in self.sources()}
        in_flight = dict.fromkeys(queues, 0)

        def elems(when: int, n: int) -> None:
            if window[0] <= when < window[1]:
                received[0] += n

        def admit(src: int) -> None:
            queue = queues[src]
            while queue and in_flight[src] < outstanding:
                created, dst = queue.popleft()
                in_flight[src] += 1
                self._inject(noc, int(env.now), src, dst, finished(src, created), elems)

        def finished(src: int, created: int) -> Callable[[int, int], None]:
            def done(_start: int, when: int) -> None:
                if window[0] <= created < window[1]:
                    latencies.append(when - created)
                in_flight[src] -= 1
                admit(src)

            return done

        def injector() -> Generator[simpy.Event, object, None]:
            for t, src, dst in injections:
                if t > env.now:
                    yield env.timeout(t - int(env.now))
                queues[src].append((t, dst))
                admit(src)

        env.process(injector())
        env.run(until=horizon + cycles)
        created = sum(1 for t, _, _ in injections if window[0] <= t < window[1])
        receivers = self.num_pes
        return TrafficResult(
            pattern=self.pattern,
            offered_elems_per_pe_per_cycle=load,
            accepted_elems_per_pe_per_cycle=received[0] / (receivers * cycles),
            mean_latency_cycles=float(np.mean(latencies)) if latencies else float("nan"),
            messages_measured=len(latencies),
            messages_unfinished=created - len(latencies),
        )

    # -- theory ---------------------------------------------------------------------
    def pairs(self) -> list[tuple[int, int]]:
        """Every (source, destination) the pattern draws, equally likely."""
        if self.pattern == "uniform":
            n = self.num_pes
            return [(s, d) for s in range(n) for d in range(n) if d != s]
        return [(s, -1) for s in self.sources()]


def _through_l2(fabric: Fabric, up: Message, down: Message) -> Message:
    """``up`` into L2 followed, cut-through at L2, by ``down`` out of it."""
    into = next(i for i, h in enumerate(up.hops) if fabric.edges[h.edge][1] == L2)
    shift = len(up.hops)
    port = fabric.node_id[fabric.edges[up.hops[into].edge][0]]
    hops = list(up.hops)
    for h in down.hops:
        if h.parents:
            hops.append(
                Hop(
                    h.edge, h.elems, tuple(i + shift for i in h.parents), h.merge, h.port, h.deliver
                )
            )
        else:
            hops.append(Hop(h.edge, h.elems, (into,), None, port, h.deliver))
    return Message(tuple(hops))


def zero_load_latency(traffic: SyntheticTraffic, src: int, dst: int = -1) -> int:
    """A message alone on its route, in closed form. Along the route's links that take
    link time (not bus taps), with latencies ``L_1..L_k`` and bandwidths ``B_i``, a
    cut-through message of ``n`` elements and ``H`` header cycles has its last element
    on link ``k`` at ``H + max_i ceil(n / B_i) - 1 + L_1 + ... + L_{k-1}``, received
    ``max(L_k, 1)`` later; a broadcast ends at its slowest branch."""
    fabric, n = traffic.fabric, traffic.message_elems
    message = traffic.message(src, dst)
    ends = [i for i, h in enumerate(message.hops) if h.deliver or fabric.edges[h.edge][1] == L2]
    if traffic.pattern == "uniform" and fabric.broadcast:
        ends = [i for i in ends if message.hops[i].deliver]
    worst = 0
    for end in ends:
        path = [end]
        while message.hops[path[-1]].parents:
            path.append(message.hops[path[-1]].parents[0])
        links = [
            message.hops[i].edge for i in reversed(path) if not fabric.tap[message.hops[i].edge]
        ]
        ser = max(ceil(n / fabric.bandwidth[e]) for e in links)
        lat = [fabric.latency[e] for e in links]
        worst = max(worst, traffic.fabric.header_cycles + ser - 1 + sum(lat[:-1]) + max(lat[-1], 1))
    return worst


def channel_load_bound(traffic: SyntheticTraffic) -> tuple[float, Hashable]:
    """The offered load (elements/PE/cycle) at which the busiest link is fully used, and
    that link's (src, dst). Each link's load per unit of offered load is counted over the
    pattern's routes (uniform: each source spreads its load evenly over the other PEs; a
    broadcast, offered per PE, loads each link of its tree once); a link moves at most ``n / (H +
    ceil(n/B))`` elements per cycle of ``n``-element messages. Links sharing a resource
    add up; bus taps take no link time."""
    fabric, n = traffic.fabric, traffic.message_elems
    pairs = traffic.pairs()
    per_source = {s: sum(1 for a, _ in pairs if a == s) for s, _ in pairs}
    load: dict[int, float] = {}
    members: dict[int, int] = {}
    for s, d in pairs:
        for h in traffic.message(s, d).hops:
            if fabric.tap[h.edge]:
                continue
            r = fabric.resource[h.edge]
            load[r] = load.get(r, 0.0) + 1.0 / per_source[s]
            members[r] = h.edge
    best = float("inf")
    where: Hashable = None
    for r, v in load.items():
        e = members[r]
        capacity = n / (fabric.header_cycles + ceil(n / fabric.bandwidth[e]))
        bound = capacity / v
        if bound < best:
            best, where = bound, fabric.label(e)
    return best, where
