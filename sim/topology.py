"""Network-on-chip topologies as networkx graphs, with routing and multicast trees.

A topology is an ``nx.DiGraph`` whose nodes are the L2 (``"L2"``), the PEs
(``("pe", i)``) and, where the topology has them, routers or switches. Every directed
edge is a link with

* ``bandwidth`` – elements per cycle (links leaving L2 are capped by the L2 read port,
  links entering it by the write port; several links at L2 that together outrun the
  port share it as one resource),
* ``latency`` – cycles per hop,
* ``resource`` – the name of the physical medium it uses; links sharing a resource
  serialise, others run in parallel,
* ``energy_hops`` – how many NoC hops of energy an element pays on it (a PE's local
  port into its router costs none).

Nodes carry ``pos`` (x, y) for drawing and ``adder`` (it can add partial sums that meet
there: mesh routers, tree switches, systolic PEs). Graph attributes: ``name``;
``pe_links`` (PEs can forward to neighbours); ``broadcast`` (a shared medium: every
transfer reaches every PE, so a step's data moves as one transaction — the bus).

Routes are computed once and cached by :class:`Router`: XY (dimension-ordered) routing
on meshes, and otherwise networkx shortest paths taken from one breadth-first tree per
L2 direction (so the routes from L2 form a tree, and so do the routes into it). A
multicast follows the union of its unicast routes, so each link carries the data once.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable
from math import ceil, log2, sqrt

import networkx as nx

from metronome.spec.hardware import UNBOUNDED, Hardware
from metronome.spec.source import SpecError

__all__ = [
    "L2",
    "Router",
    "build_topology",
    "mesh_shape",
    "node_label",
    "pe",
    "prepare_graph",
    "utilization_by_edge",
]

L2 = "L2"
Edge = tuple[Hashable, Hashable]


def pe(index: int) -> tuple[str, int]:
    """The node of PE ``index``."""
    return ("pe", index)


def is_pe(node: Hashable) -> bool:
    """Whether ``node`` is a PE."""
    return isinstance(node, tuple) and len(node) == 2 and node[0] == "pe"


def node_label(node: Hashable) -> str:
    """A short stable name for a node: ``L2``, ``pe3``, ``r1,0``, ``sw2,1``, ``bus``."""
    if isinstance(node, tuple) and node and isinstance(node[0], str):
        return node[0] + ",".join(str(x) for x in node[1:])
    return str(node)


def utilization_by_edge(
    graph: nx.DiGraph, rows: Iterable[tuple[str, str, float]]
) -> dict[Edge, float]:
    """Link utilisation keyed by ``graph``'s (src, dst) nodes from the ``[src, dst,
    utilisation]`` rows of a result's ``noc.link_utilization`` (node labels), e.g. to
    redraw a run on ``build_topology(hardware)``."""
    nodes = {node_label(n): n for n in graph.nodes}
    return {(nodes[a], nodes[b]): float(u) for a, b, u in rows}


def mesh_shape(num_pes: int) -> tuple[int, int]:
    """(columns, rows) of the most square grid holding ``num_pes`` PEs."""
    cols = ceil(sqrt(num_pes))
    return cols, ceil(num_pes / cols)


def _link(
    graph: nx.DiGraph,
    a: Hashable,
    b: Hashable,
    bw: int,
    latency: int,
    resource: str | None = None,
    energy_hops: int = 1,
) -> None:
    graph.add_edge(
        a,
        b,
        bandwidth=bw,
        latency=latency,
        resource=resource or f"{node_label(a)}->{node_label(b)}",
        energy_hops=energy_hops,
    )


def _both(
    graph: nx.DiGraph, a: Hashable, b: Hashable, bw: int, latency: int, energy_hops: int = 1
) -> None:
    _link(graph, a, b, bw, latency, energy_hops=energy_hops)
    _link(graph, b, a, bw, latency, energy_hops=energy_hops)


def _bus(hw: Hardware, n: int, shape: tuple[int, int]) -> nx.DiGraph:
    """A full-duplex shared bus: one medium per direction carrying the whole transfer
    latency (MAESTRO's ``L``); every PE taps both (taps are free and never contend)."""
    g = nx.DiGraph(name="bus", pe_links=False, broadcast=True)
    g.add_node(L2, pos=(n / 2 - 0.5, 1.5), adder=False)
    g.add_node("bus", pos=(n / 2 - 0.5, 0.75), adder=False)
    bw, latency = hw.noc_bw_elems_per_cycle, hw.noc_latency_cycles
    _link(g, L2, "bus", bw, latency, "bus:down", energy_hops=hw.noc_hops)
    _link(g, "bus", L2, bw, latency, "bus:up", energy_hops=hw.noc_hops)
    for i in range(n):
        g.add_node(pe(i), pos=(i, 0.0), adder=False)
        _both(g, "bus", pe(i), UNBOUNDED, 0, energy_hops=0)
    return g


def _crossbar(hw: Hardware, n: int, shape: tuple[int, int]) -> nx.DiGraph:
    """L2 port into a crossbar with one output link per PE: contention only at ports."""
    g = nx.DiGraph(name="crossbar", pe_links=False, broadcast=False)
    g.add_node(L2, pos=(n / 2 - 0.5, 2.0), adder=False)
    g.add_node("xbar", pos=(n / 2 - 0.5, 1.0), adder=False)
    bw, hop = hw.noc_bw_elems_per_cycle, hw.noc_hop_latency_cycles
    _both(g, L2, "xbar", bw, hop)
    for i in range(n):
        g.add_node(pe(i), pos=(i, 0.0), adder=False)
        _both(g, "xbar", pe(i), bw, hop)
    return g


def _mesh(hw: Hardware, n: int, shape: tuple[int, int]) -> nx.DiGraph:
    """2-D mesh of routers, one PE per router, L2 attached at a corner or mid-edge.
    Routers add partial sums that meet there (the attached PE's adder)."""
    cols, rows = shape
    g = nx.DiGraph(name="mesh", pe_links=True, broadcast=False, shape=(cols, rows))
    bw, hop = hw.noc_bw_elems_per_cycle, hw.noc_hop_latency_cycles
    for i in range(n):
        x, y = i % cols, i // cols
        g.add_node(("r", x, y), pos=(x, -y), adder=True)
        g.add_node(pe(i), pos=(x + 0.3, -y - 0.3), adder=False)
        _both(g, ("r", x, y), pe(i), bw, 0, energy_hops=0)
    for i in range(n):
        x, y = i % cols, i // cols
        for nx_, ny in ((x + 1, y), (x, y + 1)):
            if nx_ < cols and ny * cols + nx_ < n:
                _both(g, ("r", x, y), ("r", nx_, ny), bw, hop)
    attach = (0, 0) if hw.mesh_l2_position == "corner" else (cols // 2, 0)
    g.add_node(L2, pos=(attach[0], 1.0), adder=False)
    _both(g, L2, ("r", *attach), bw, hop)
    g.graph["l2_router"] = ("r", *attach)
    return g


def _tree(hw: Hardware, n: int, shape: tuple[int, int]) -> nx.DiGraph:
    """Binary fat tree: L2 at the root, PEs at the leaves, link bandwidth doubling at
    each level towards the root (so a level never carries less than the one below).
    Switches add partial sums that meet there (a reduction tree)."""
    g = nx.DiGraph(name="tree", pe_links=False, broadcast=False)
    depth = max(1, ceil(log2(n))) if n > 1 else 1
    bw, hop = hw.noc_bw_elems_per_cycle, hw.noc_hop_latency_cycles
    leaves = 2**depth
    level_nodes: list[Hashable] = []
    for i in range(n):
        g.add_node(pe(i), pos=(i * (leaves / n), 0.0), adder=False)
        level_nodes.append(pe(i))
    level = 0
    while len(level_nodes) > 1:
        level += 1
        parents: list[Hashable] = []
        for j in range(0, len(level_nodes), 2):
            node = ("sw", level, j // 2)
            kids = level_nodes[j : j + 2]
            xs = [g.nodes[k]["pos"][0] for k in kids]
            g.add_node(node, pos=(sum(xs) / len(xs), float(level)), adder=True)
            link_bw = min(UNBOUNDED, bw * 2 ** (level - 1))
            for kid in kids:
                _both(g, node, kid, link_bw, hop)
            parents.append(node)
        level_nodes = parents
    root = level_nodes[0]
    g.add_node(L2, pos=(g.nodes[root]["pos"][0], float(level + 1)), adder=False)
    _both(g, L2, root, min(UNBOUNDED, bw * 2 ** max(0, level - 1)), hop)
    g.graph["root"] = root
    return g


def _systolic(hw: Hardware, n: int, shape: tuple[int, int]) -> nx.DiGraph:
    """2-D array of PEs with links only between neighbours (both directions: sliding
    windows hand data from PE i+1 to PE i, the other direction carries partial sums
    out); L2 injects at the left column and the top row and drains from the right
    column and the bottom row. PEs add partial sums passing through them."""
    cols, rows = shape
    g = nx.DiGraph(name="systolic", pe_links=True, broadcast=False, shape=(cols, rows))
    bw, hop = hw.noc_bw_elems_per_cycle, hw.noc_hop_latency_cycles
    g.add_node(L2, pos=(-1.5, 1.0), adder=False)
    for i in range(n):
        g.add_node(pe(i), pos=(i % cols, -(i // cols)), adder=True)
    for i in range(n):
        x, y = i % cols, i // cols
        if x + 1 < cols and i + 1 < n:
            _both(g, pe(i), pe(i + 1), bw, hop)
        if i + cols < n:
            _both(g, pe(i), pe(i + cols), bw, hop)
    for i in range(n):
        x, y = i % cols, i // cols
        if x == 0:
            _link(g, L2, pe(i), bw, hop, f"L2->row{y}")
        elif y == 0:
            _link(g, L2, pe(i), bw, hop, f"L2->col{x}")
        if x == cols - 1 or i + 1 == n or i + cols >= n:
            _link(g, pe(i), L2, bw, hop)
    return g


_BUILDERS = {
    "bus": _bus,
    "crossbar": _crossbar,
    "mesh": _mesh,
    "tree": _tree,
    "systolic": _systolic,
}


def build_topology(
    hardware: Hardware, num_pes: int | None = None, *, shape: tuple[int, int] | None = None
) -> nx.DiGraph:
    """The NoC graph named by ``hardware.topology`` for ``num_pes`` PEs (default: all),
    with the L2 ports' bandwidth applied to the links at L2. ``shape`` (columns, rows)
    lays out a mesh or systolic array (default: the most square grid)."""
    n = hardware.num_pes if num_pes is None else num_pes
    if shape is None:
        shape = mesh_shape(n)
    elif shape[0] * shape[1] < n or shape[0] * (shape[1] - 1) >= n:
        raise ValueError(f"a {shape[0]}x{shape[1]} grid does not fit {n} PEs row by row")
    graph = _BUILDERS[hardware.topology](hardware, n, shape)
    _cap_l2_ports(graph, hardware)
    return graph


def _cap_l2_ports(graph: nx.DiGraph, hw: Hardware) -> None:
    """No link at L2 is faster than its port, and where the links together are faster
    than the port (several links, as in a systolic array) they share it: one server,
    one hop at a time."""
    ports = (
        ("L2:read", graph.out_edges(L2, data=True), hw.l2_read_bw_elems_per_cycle),
        ("L2:write", graph.in_edges(L2, data=True), hw.l2_write_bw_elems_per_cycle),
    )
    for name, edges, bw in ports:
        links = [data for _, _, data in edges]
        shared = len(links) > 1 and sum(d["bandwidth"] for d in links) > bw
        for data in links:
            data["bandwidth"] = min(data["bandwidth"], bw)
            if shared:
                data["resource"] = name


def prepare_graph(graph: nx.DiGraph, hardware: Hardware, num_pes: int) -> nx.DiGraph:
    """A checked copy of a user's graph: missing link attributes take the hardware's NoC
    bandwidth and hop latency (own resource, one energy hop), missing node attributes
    no adder and a spring layout; every PE must be reachable from L2 and reach it."""
    g = graph.copy()
    g.graph.setdefault("name", "custom")
    g.graph.setdefault("broadcast", False)
    problems = []
    if L2 not in g:
        problems.append("has no node 'L2'")
    missing = [i for i in range(num_pes) if pe(i) not in g]
    if missing:
        problems.append(f"lacks PE nodes ('pe', i) for i in {missing[:5]}")
    if problems:
        raise SpecError.at(None, "NoC graph " + " and ".join(problems))
    for a, b, data in g.edges(data=True):
        data.setdefault("bandwidth", hardware.noc_bw_elems_per_cycle)
        data.setdefault("latency", hardware.noc_hop_latency_cycles)
        data.setdefault("resource", f"{node_label(a)}->{node_label(b)}")
        data.setdefault("energy_hops", 1)
        for key in ("bandwidth", "latency", "energy_hops"):
            value = data[key]
            if not isinstance(value, int) or value < (1 if key == "bandwidth" else 0):
                raise SpecError.at(
                    None, f"NoC link {a}->{b}: {key} must be an integer, got {value}"
                )
    g.graph.setdefault("pe_links", any(is_pe(a) and is_pe(b) for a, b in g.edges))
    layout = None
    for node in g.nodes:
        g.nodes[node].setdefault("adder", False)
        if "pos" not in g.nodes[node]:
            layout = layout or nx.spring_layout(g, seed=0)
            g.nodes[node]["pos"] = tuple(float(v) for v in layout[node])
    unreachable = [
        i for i in range(num_pes) if not (nx.has_path(g, L2, pe(i)) and nx.has_path(g, pe(i), L2))
    ]
    if unreachable:
        raise SpecError.at(None, f"NoC graph: PEs {unreachable[:5]} cannot exchange data with L2")
    _cap_l2_ports(g, hardware)
    return g


class Router:
    """Routes on a topology graph, computed once and cached.

    A custom graph works too: any ``nx.DiGraph`` with the node names and edge
    attributes above; it is routed by shortest paths (fewest hops, ties broken by the
    graph's insertion order, so routes are deterministic).
    """

    def __init__(self, graph: nx.DiGraph) -> None:
        self.graph = graph
        self._routes: dict[tuple[Hashable, Hashable], tuple[Edge, ...]] = {}
        self._trees: dict[tuple[Hashable, tuple[Hashable, ...]], tuple[Edge, ...]] = {}
        self._from_l2: dict[Hashable, list[Hashable]] | None = None
        self._to_l2: dict[Hashable, list[Hashable]] | None = None
        self._neighbours: dict[int, tuple[int, ...]] = {}

    def route(self, src: Hashable, dst: Hashable) -> tuple[Edge, ...]:
        """The links from ``src`` to ``dst``, in order."""
        key = (src, dst)
        cached = self._routes.get(key)
        if cached is None:
            nodes = self._path(src, dst)
            cached = tuple(itertools.pairwise(nodes))
            self._routes[key] = cached
        return cached

    def _path(self, src: Hashable, dst: Hashable) -> list[Hashable]:
        if src not in self.graph or dst not in self.graph:
            raise ValueError(f"no route from {src} to {dst} in {self.graph.graph.get('name')}")
        if self.graph.graph.get("name") == "mesh":
            return self._xy_path(src, dst)
        if src == L2 or dst == L2:
            # One breadth-first tree per direction: routes from L2 share their prefixes,
            # routes into L2 their suffixes, so multicasts and reductions are trees.
            if src == L2:
                if self._from_l2 is None:
                    self._from_l2 = nx.single_source_shortest_path(self.graph, L2)
                paths = self._from_l2
                node = dst
            else:
                if self._to_l2 is None:
                    self._to_l2 = nx.single_target_shortest_path(self.graph, L2)
                paths = self._to_l2
                node = src
            if node not in paths:
                raise ValueError(f"no route from {src} to {dst} in {self.graph.graph.get('name')}")
            return list(paths[node])
        try:
            return list(nx.shortest_path(self.graph, src, dst))
        except nx.NetworkXNoPath as exc:
            raise ValueError(
                f"no route from {src} to {dst} in {self.graph.graph.get('name')}"
            ) from exc

    def _xy_path(self, src: Hashable, dst: Hashable) -> list[Hashable]:
        """Dimension-ordered routing: along X to the destination column, then along Y."""

        def router_of(node: Hashable) -> tuple[str, int, int]:
            if node == L2:
                l2_router: tuple[str, int, int] = self.graph.graph["l2_router"]
                return l2_router
            if not is_pe(node):
                return node  # type: ignore[return-value]
            cols = self.graph.graph["shape"][0]
            index = node[1]  # type: ignore[index]
            return ("r", index % cols, index // cols)

        start, end = router_of(src), router_of(dst)
        path: list[Hashable] = [src] if src == start else [src, start]
        x, y = start[1], start[2]
        while x != end[1]:
            x += 1 if end[1] > x else -1
            path.append(("r", x, y))
        while y != end[2]:
            y += 1 if end[2] > y else -1
            path.append(("r", x, y))
        if dst != end:
            path.append(dst)
        if not all(self.graph.has_edge(a, b) for a, b in itertools.pairwise(path)):
            # A partial last mesh row can break pure XY; fall back to a shortest path.
            return list(nx.shortest_path(self.graph, src, dst))
        return path

    def multicast(self, src: Hashable, dsts: Iterable[Hashable]) -> tuple[Edge, ...]:
        """Links of the tree from ``src`` to every destination, each link once, in the
        order they are first used."""
        key = (src, tuple(dsts))
        cached = self._trees.get(key)
        if cached is None:
            seen: dict[Edge, None] = {}
            for dst in key[1]:
                for edge in self.route(src, dst):
                    seen.setdefault(edge, None)
            cached = tuple(seen)
            self._trees[key] = cached
        return cached

    def hops(self, src: Hashable, dst: Hashable) -> int:
        """Number of links between two nodes."""
        return len(self.route(src, dst))

    def neighbours(self, index: int) -> tuple[int, ...]:
        """PEs that can forward data to PE ``index`` over a PE-to-PE link (direct, or
        between adjacent mesh routers), nearest first, then by index; none unless the
        graph has ``pe_links``."""
        cached = self._neighbours.get(index)
        if cached is not None:
            return cached
        g = self.graph
        found: list[tuple[int, int]] = []
        if g.graph.get("pe_links"):
            me = pe(index)
            if g.graph.get("name") == "mesh":
                router = next(iter(g.predecessors(me)))
                for other in g.predecessors(router):
                    if isinstance(other, tuple) and other[0] == "r":
                        for node in g.successors(other):
                            if is_pe(node):
                                found.append((3, node[1]))
            else:
                found = [(1, node[1]) for node in g.predecessors(me) if is_pe(node)]
        cached = tuple(q for _, q in sorted(found) if q != index)
        self._neighbours[index] = cached
        return cached
