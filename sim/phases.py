"""A step's NoC traffic as messages of hops on a topology graph.

Each step has two *phases*, one per plane of the NoC (:mod:`metronome.sim.noc`): the
*distribution* phase (plane 0) carries the step's tiles from L2 to the PEs and the
forwards between neighbours; the *collection* phase (plane 1) carries partial sums to
L2. A phase is a tuple of messages, all injected when the phase starts; a message is a
tree of hops, one per link, listed parents first:

* a multicast flow (:mod:`metronome.sim.flows`) is one message on the union of the routes from L2
  to its PEs, each link carrying the data once; a forward is a message on the route
  from one PE to its neighbour;
* a reduction flow is one message on the union of the routes from its PEs to L2. Where
  two of its streams meet (or a PE on the route adds its own), a node with an adder
  (``adder`` attribute, or any node under ``free_spatial_reduction``) waits for all of
  them, adds (``adder_latency_cycles``, or 0 when free) and sends the elements on once;
  a node without one sends both streams on together, and L2 adds what arrives
  separately with an adder tree (``ceil(log2 copies) * adder_latency_cycles``);
* on a broadcast medium (the bus) all of a phase's flows are one message: the L2 sends
  the step's data in one transaction that every involved PE listens to, and the PEs'
  partial sums go back in one transaction.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from math import ceil, log2

import networkx as nx

from metronome.spec.hardware import Hardware

from .flows import Flow
from .options import Policy
from .topology import L2, Router, is_pe, node_label, pe
from .traffic import StepRecord

__all__ = ["COLLECTION", "DISTRIBUTION", "Fabric", "Hop", "Message", "Phase", "PhaseBuilder"]

DISTRIBUTION = 0
COLLECTION = 1
PLANES = ("distribution", "collection")


@dataclass(frozen=True, slots=True)
class Hop:
    """One link of a message. ``parents`` index earlier hops of the same message;
    ``merge`` is ``None`` for a hop that streams on from its single parent (cut-through)
    or starts at the source, else the cycles a merge point adds after the last incoming
    stream has arrived. ``port`` is the node the flits enter the link from (round-robin
    arbitration rotates over ports); ``deliver`` lists PEs whose data this hop brings."""

    edge: int
    elems: int
    parents: tuple[int, ...]
    merge: int | None
    port: int
    deliver: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Message:
    """A tree of hops injected at the phase start; ``l2_adder_cycles`` is the adder tree
    L2 needs after the last hop into it (collection only)."""

    hops: tuple[Hop, ...]
    l2_adder_cycles: int = 0


@dataclass(frozen=True, slots=True)
class Phase:
    """The messages of one step on one plane; ``key`` identifies it for memoisation."""

    plane: int
    messages: tuple[Message, ...]
    key: int


class Fabric:
    """A topology graph flattened for simulation: numbered edges with bandwidth,
    latency, resource and energy hops, numbered nodes, and the header cycles every
    message pays on every link (:mod:`metronome.sim.noc`)."""

    def __init__(self, graph: nx.DiGraph, *, header_cycles: int = 0) -> None:
        self.graph = graph
        self.header_cycles = header_cycles
        self.name = str(graph.graph.get("name", "custom"))
        self.nodes = list(graph.nodes)
        self.node_id = {n: i for i, n in enumerate(self.nodes)}
        self.edges: list[tuple[Hashable, Hashable]] = list(graph.edges)
        self.edge_id = {e: i for i, e in enumerate(self.edges)}
        data = [graph.edges[e] for e in self.edges]
        self.bandwidth = [int(d["bandwidth"]) for d in data]
        self.latency = [int(d["latency"]) for d in data]
        self.energy_hops = [int(d.get("energy_hops", 1)) for d in data]
        names: dict[str, int] = {}
        self.resource = [names.setdefault(str(d["resource"]), len(names)) for d in data]
        self.resource_names = list(names)
        self.broadcast = bool(graph.graph.get("broadcast", False))
        # On a broadcast medium the links between it and the PEs are taps: the medium
        # itself, so they take no link time of their own.
        self.tap = [self.broadcast and (is_pe(a) or is_pe(b)) for a, b in self.edges]

    def label(self, edge: int) -> tuple[str, str]:
        """Printable (src, dst) of an edge."""
        a, b = self.edges[edge]
        return node_label(a), node_label(b)


class PhaseBuilder:
    """Builds (and caches per record) the two phases of each step."""

    def __init__(self, fabric: Fabric, hardware: Hardware, policy: Policy) -> None:
        self.fabric = fabric
        self.router = Router(fabric.graph)
        self.adder = hardware.adder_latency_cycles
        self.free = policy.free_spatial_reduction
        self._cache: dict[tuple[int, int], Phase] = {}
        self._keys: dict[tuple[Message, ...], int] = {}
        self._same: dict[int, int] = {}
        self._reductions: dict[tuple[Flow, ...], Message] = {}
        self._multicasts: dict[tuple[object, ...], Message] = {}

    def alias(self, rid: int, first: int) -> None:
        """Record ``rid`` is a copy of record ``first``: it has ``first``'s phases."""
        self._same[rid] = self._same.get(first, first)

    def phase(self, rec: StepRecord, plane: int) -> Phase:
        """The distribution or collection phase of ``rec``."""
        rid = self._same.get(rec.rid, rec.rid)
        cached = self._cache.get((rid, plane))
        if cached is None:
            if plane == DISTRIBUTION:
                messages = self._distribution(rec)
            else:
                messages = self._collection(rec)
            cached = self._cache[rid, plane] = self.make(plane, messages)
        return cached

    def make(self, plane: int, messages: tuple[Message, ...]) -> Phase:
        """A phase of these messages (phases with equal messages share a key)."""
        return Phase(plane, messages, self._keys.setdefault(messages, len(self._keys)))

    # -- distribution -----------------------------------------------------------------
    def _distribution(self, rec: StepRecord) -> tuple[Message, ...]:
        if self.fabric.broadcast:
            if not rec.bus_in_elems:
                return ()
            involved = tuple(p for p, flag in enumerate(rec.involved) if flag)
            loads: dict[int, int] = dict.fromkeys(involved, 0)
            for pes, n in rec.down_flows:
                for p in pes:
                    loads[p] += n
            return (self.multicast(L2, involved, rec.bus_in_elems, loads),)
        messages = [self.multicast(L2, pes, n, None) for pes, n in rec.down_flows]
        messages += [self.multicast(pe(q), (p,), n, None) for q, p, n in rec.forwards]
        return tuple(messages)

    def multicast(
        self, src: Hashable, dsts: Sequence[int], elems: int, taps: dict[int, int] | None
    ) -> Message:
        """A multicast from node ``src`` to PEs ``dsts``: every link of the tree carries
        ``elems`` (on a broadcast bus the tap into PE p carries ``taps[p]``; memoised:
        records built apart often send the same flows)."""
        key = (src, tuple(dsts), elems, None if taps is None else tuple(taps.items()))
        hit = self._multicasts.get(key)
        if hit is None:
            hit = self._multicasts[key] = self._multicast(src, dsts, elems, taps)
        return hit

    def _multicast(
        self, src: Hashable, dsts: Sequence[int], elems: int, taps: dict[int, int] | None
    ) -> Message:
        fabric = self.fabric
        targets = [pe(p) for p in dsts]
        edges = self.router.multicast(src, targets)
        into: dict[Hashable, int] = {}
        hops: list[Hop] = []
        wanted = set(targets)
        for a, b in edges:
            parent = into.get(a)
            came_from = a if parent is None else fabric.edges[hops[parent].edge][0]
            n = elems if taps is None or not is_pe(b) else taps[b[1]]  # type: ignore[index]
            hops.append(
                Hop(
                    edge=fabric.edge_id[a, b],
                    elems=n,
                    parents=() if parent is None else (parent,),
                    merge=None,
                    port=fabric.node_id[came_from],
                    deliver=(b[1],) if b in wanted else (),
                )
            )
            into[b] = len(hops) - 1
        return Message(tuple(hops))

    # -- collection -------------------------------------------------------------------
    def _collection(self, rec: StepRecord) -> tuple[Message, ...]:
        flows = rec.up_flows
        if not flows:
            return ()
        if self.fabric.broadcast:
            return (self.reduction(flows),)
        return tuple(self.reduction((flow,)) for flow in flows)

    def reduction(self, flows: Sequence[Flow]) -> Message:
        """Reduction flows ``(PEs, elems)`` towards L2 as one message (one flow, or all
        of a bus's; memoised: records built apart often send the same flows)."""
        key = tuple((tuple(pes), n) for pes, n in flows)
        hit = self._reductions.get(key)
        if hit is None:
            hit = self._reductions[key] = self._reduction(key)
        return hit

    def _reduction(self, flows: Sequence[Flow]) -> Message:
        fabric = self.fabric
        depth: dict[tuple[Hashable, Hashable], int] = {}
        per_flow: list[tuple[dict[Hashable, Hashable], set[Hashable], int]] = []
        for pes, n in flows:
            next_hop: dict[Hashable, Hashable] = {}
            for p in pes:
                route = self.router.route(pe(p), L2)
                for i, (a, b) in enumerate(route):
                    depth[a, b] = len(route) - i
                    next_hop[a] = b
            per_flow.append((next_hop, {pe(p) for p in pes}, n))
        # Farthest from L2 first: every hop comes after the hops feeding it.
        order = sorted(depth, key=lambda e: (-depth[e], fabric.edge_id[e]))
        loads = dict.fromkeys(order, 0)
        merges: dict[tuple[Hashable, Hashable], int] = {}
        l2_adder = 0
        for next_hop, sources, n in per_flow:
            copies: dict[Hashable, int] = {}  # unreduced copies arriving at each node
            inputs: dict[Hashable, int] = {}  # streams arriving at each node
            arriving = 0
            for edge in order:
                a, b = edge
                if next_hop.get(a) != b:
                    continue
                local = a in sources
                streams = inputs.get(a, 0) + local
                m = copies.get(a, 0) + local
                if streams >= 2:
                    adds = self.free or bool(fabric.graph.nodes[a].get("adder"))
                    if adds:
                        m = 1
                    latency = self.adder if adds and not self.free else 0
                    merges[edge] = max(merges.get(edge, 0), latency)
                loads[edge] += n * m
                copies[b] = copies.get(b, 0) + m
                inputs[b] = inputs.get(b, 0) + 1
            arriving = copies.get(L2, 0)
            if arriving > 1 and not self.free:
                l2_adder = max(l2_adder, ceil(log2(arriving)) * self.adder)
        index = {e: i for i, e in enumerate(order)}
        feeding: dict[Hashable, list[int]] = {}
        for edge in order:
            feeding.setdefault(edge[1], []).append(index[edge])
        hops = []
        for edge in order:
            a = edge[0]
            parents = tuple(feeding.get(a, ()))
            merge = merges.get(edge)
            if merge is None and len(parents) > 1:
                merge = 0
            cut_through = merge is None and len(parents) == 1
            hops.append(
                Hop(
                    edge=fabric.edge_id[edge],
                    elems=loads[edge],
                    parents=parents,
                    merge=merge,
                    port=fabric.node_id[order[parents[0]][0] if cut_through else a],
                    deliver=(),
                )
            )
        return Message(tuple(hops), l2_adder)
