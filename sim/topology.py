"""Network-on-chip topologies as networkx graphs, with routing and multicast trees.

A topology is an ``nx.DiGraph`` whose nodes are the L2 (``"L2"``), the PEs
(``("pe", i)``) and, where the topology has them, routers or switches. Every directed
edge is a link with

* ``bandwidth`` – elements per cycle,
* ``latency`` – cycles per hop,
* ``resource`` – the name of the physical medium it uses; links sharing a resource
  serialise (all the links of a bus share one medium), others run in parallel.

Nodes carry ``pos`` (x, y) for drawing. The graph attribute ``name`` is the topology's
name and ``pe_links`` says whether PEs have links to each other (which forwarding needs).

Routes are computed once per (source, destination) and cached by :class:`Router`: XY
(dimension-ordered) routing on meshes, the unique tree path on trees, and networkx
shortest paths elsewhere. A multicast follows the union of its unicast routes, so each
link carries the data once.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable
from math import ceil, log2, sqrt

import networkx as nx

from spec.hardware import UNBOUNDED, Hardware

__all__ = ["L2", "Router", "build_topology", "mesh_shape", "pe"]

L2 = "L2"
Edge = tuple[Hashable, Hashable]


def pe(index: int) -> tuple[str, int]:
    """The node of PE ``index``."""
    return ("pe", index)


def mesh_shape(num_pes: int) -> tuple[int, int]:
    """(columns, rows) of the most square grid holding ``num_pes`` PEs."""
    cols = ceil(sqrt(num_pes))
    return cols, ceil(num_pes / cols)


def _link(
    graph: nx.DiGraph, a: Hashable, b: Hashable, bw: int, latency: int, resource: str
) -> None:
    graph.add_edge(a, b, bandwidth=bw, latency=latency, resource=resource)


def _both(graph: nx.DiGraph, a: Hashable, b: Hashable, bw: int, latency: int) -> None:
    _link(graph, a, b, bw, latency, f"{a}->{b}")
    _link(graph, b, a, bw, latency, f"{b}->{a}")


def _bus(hw: Hardware, n: int) -> nx.DiGraph:
    """One shared medium: every transfer, in either direction, holds the whole bus."""
    g = nx.DiGraph(name="bus", pe_links=False)
    g.add_node(L2, pos=(n / 2 - 0.5, 1.5))
    g.add_node("bus", pos=(n / 2 - 0.5, 0.75))
    bw, latency = hw.noc_bw_elems_per_cycle, hw.noc_latency_cycles
    _link(g, L2, "bus", bw, latency, "bus")
    _link(g, "bus", L2, bw, 0, "bus")
    for i in range(n):
        g.add_node(pe(i), pos=(i, 0.0))
        _link(g, "bus", pe(i), UNBOUNDED, 0, "bus")
        _link(g, pe(i), "bus", UNBOUNDED, 0, "bus")
    return g


def _crossbar(hw: Hardware, n: int) -> nx.DiGraph:
    """L2 port into a crossbar with one output link per PE: contention only at ports."""
    g = nx.DiGraph(name="crossbar", pe_links=False)
    g.add_node(L2, pos=(n / 2 - 0.5, 2.0))
    g.add_node("xbar", pos=(n / 2 - 0.5, 1.0))
    bw, hop = hw.noc_bw_elems_per_cycle, hw.noc_hop_latency_cycles
    _both(g, L2, "xbar", bw, hop)
    for i in range(n):
        g.add_node(pe(i), pos=(i, 0.0))
        _both(g, "xbar", pe(i), bw, hop)
    return g


def _mesh(hw: Hardware, n: int) -> nx.DiGraph:
    """2-D mesh of routers, one PE per router, L2 attached at a corner or mid-edge."""
    cols, rows = mesh_shape(n)
    g = nx.DiGraph(name="mesh", pe_links=True, shape=(cols, rows))
    bw, hop = hw.noc_bw_elems_per_cycle, hw.noc_hop_latency_cycles
    for i in range(n):
        x, y = i % cols, i // cols
        g.add_node(("r", x, y), pos=(x, -y))
        g.add_node(pe(i), pos=(x + 0.3, -y - 0.3))
        _both(g, ("r", x, y), pe(i), bw, 0)
    for i in range(n):
        x, y = i % cols, i // cols
        for nx_, ny in ((x + 1, y), (x, y + 1)):
            if nx_ < cols and ny * cols + nx_ < n:
                _both(g, ("r", x, y), ("r", nx_, ny), bw, hop)
    attach = (0, 0) if hw.mesh_l2_position == "corner" else (cols // 2, 0)
    g.add_node(L2, pos=(attach[0], 1.0))
    _both(g, L2, ("r", *attach), bw, hop)
    g.graph["l2_router"] = ("r", *attach)
    return g


def _tree(hw: Hardware, n: int) -> nx.DiGraph:
    """Binary fat tree: L2 at the root, PEs at the leaves, link bandwidth doubling at
    each level towards the root (so a level never carries less than the one below)."""
    g = nx.DiGraph(name="tree", pe_links=False)
    depth = max(1, ceil(log2(n))) if n > 1 else 1
    bw, hop = hw.noc_bw_elems_per_cycle, hw.noc_hop_latency_cycles
    leaves = 2**depth
    level_nodes: list[Hashable] = []
    for i in range(n):
        g.add_node(pe(i), pos=(i * (leaves / n), 0.0))
        level_nodes.append(pe(i))
    level = 0
    while len(level_nodes) > 1:
        level += 1
        parents: list[Hashable] = []
        for j in range(0, len(level_nodes), 2):
            node = ("sw", level, j // 2)
            kids = level_nodes[j : j + 2]
            xs = [g.nodes[k]["pos"][0] for k in kids]
            g.add_node(node, pos=(sum(xs) / len(xs), float(level)))
            link_bw = min(UNBOUNDED, bw * 2 ** (level - 1))
            for kid in kids:
                _both(g, node, kid, link_bw, hop)
            parents.append(node)
        level_nodes = parents
    root = level_nodes[0]
    g.add_node(L2, pos=(g.nodes[root]["pos"][0], float(level + 1)))
    _both(g, L2, root, min(UNBOUNDED, bw * 2 ** max(0, level - 1)), hop)
    g.graph["root"] = root
    return g


def _systolic(hw: Hardware, n: int) -> nx.DiGraph:
    """2-D array of PEs with links only to the right and downward neighbours; L2 injects
    at the left column (rows) and at the top row (columns)."""
    cols, rows = mesh_shape(n)
    g = nx.DiGraph(name="systolic", pe_links=True, shape=(cols, rows))
    bw, hop = hw.noc_bw_elems_per_cycle, hw.noc_hop_latency_cycles
    g.add_node(L2, pos=(-1.5, 1.0))
    for i in range(n):
        g.add_node(pe(i), pos=(i % cols, -(i // cols)))
    for i in range(n):
        x, y = i % cols, i // cols
        if x + 1 < cols and i + 1 < n:
            _link(g, pe(i), pe(i + 1), bw, hop, f"{pe(i)}->{pe(i + 1)}")
        if i + cols < n:
            _link(g, pe(i), pe(i + cols), bw, hop, f"{pe(i)}->{pe(i + cols)}")
        if x == 0:
            _link(g, L2, pe(i), bw, hop, f"L2->row{y}")
        elif y == 0:
            _link(g, L2, pe(i), bw, hop, f"L2->col{x}")
        # Outputs drain from the last column and bottom row back to L2.
        if x == cols - 1 or i + 1 == n or i + cols >= n:
            _link(g, pe(i), L2, bw, hop, f"{pe(i)}->L2")
    return g


_BUILDERS = {
    "bus": _bus,
    "crossbar": _crossbar,
    "mesh": _mesh,
    "tree": _tree,
    "systolic": _systolic,
}


def build_topology(hardware: Hardware, num_pes: int | None = None) -> nx.DiGraph:
    """The NoC graph named by ``hardware.topology`` for ``num_pes`` PEs (default: all)."""
    n = hardware.num_pes if num_pes is None else num_pes
    return _BUILDERS[hardware.topology](hardware, n)


class Router:
    """Routes on a topology graph, computed once per pair and cached.

    A custom graph works too: any ``nx.DiGraph`` with the node names and edge
    attributes above; it is routed by shortest paths (fewest hops, ties broken by the
    graph's insertion order, so routes are deterministic).
    """

    def __init__(self, graph: nx.DiGraph) -> None:
        self.graph = graph
        self._routes: dict[tuple[Hashable, Hashable], tuple[Edge, ...]] = {}
        self._trees: dict[tuple[Hashable, tuple[Hashable, ...]], tuple[Edge, ...]] = {}

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
        if self.graph.graph.get("name") == "mesh":
            return self._xy_path(src, dst)
        try:
            return list(nx.shortest_path(self.graph, src, dst))
        except (nx.NetworkXNoPath, nx.NodeNotFound) as exc:
            raise ValueError(
                f"no route from {src} to {dst} in {self.graph.graph.get('name')}"
            ) from exc

    def _xy_path(self, src: Hashable, dst: Hashable) -> list[Hashable]:
        """Dimension-ordered routing: along X to the destination column, then along Y."""

        def router_of(node: Hashable) -> tuple[str, int, int]:
            if node == L2:
                return self.graph.graph["l2_router"]
            cols = self.graph.graph["shape"][0]
            index = node[1]  # type: ignore[index]
            return ("r", index % cols, index // cols)

        start, end = router_of(src), router_of(dst)
        path: list[Hashable] = [src, start]
        x, y = start[1], start[2]
        while x != end[1]:
            x += 1 if end[1] > x else -1
            path.append(("r", x, y))
        while y != end[2]:
            y += 1 if end[2] > y else -1
            path.append(("r", x, y))
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
