"""NoC graphs: shapes, link attributes, routes and multicast trees, derived by hand."""

from __future__ import annotations

import networkx as nx
import pytest

from metronome.sim.topology import L2, Router, build_topology, mesh_shape, pe
from metronome.spec.hardware import TOPOLOGIES, Hardware


def _hw(topology: str, pes: int = 4, **extra: object) -> Hardware:
    return Hardware(
        num_pes=pes,
        topology=topology,
        noc_bw_elems_per_cycle=8,
        noc_hop_latency_cycles=2,
        noc_latency_cycles=3,
        **extra,  # type: ignore[arg-type]
    )


def test_mesh_shape_is_as_square_as_possible() -> None:
    assert mesh_shape(4) == (2, 2)
    assert mesh_shape(6) == (3, 2)
    assert mesh_shape(64) == (8, 8)
    assert mesh_shape(1) == (1, 1)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_every_pe_is_reachable_from_l2_and_back(topology: str) -> None:
    graph = build_topology(_hw(topology, pes=7))
    router = Router(graph)
    for i in range(7):
        assert router.route(L2, pe(i))[0][0] == L2
        assert router.route(pe(i), L2)[-1][1] == L2
    assert all(graph.nodes[n]["pos"] is not None for n in graph.nodes)


def test_bus_is_one_medium_per_direction_with_the_transfer_latency() -> None:
    """The bus is full duplex (tiles down and partial sums up never wait for each
    other), so each direction is its own medium; the PE taps carry no latency, unbounded
    bandwidth, and never hold a medium."""
    graph = build_topology(_hw("bus"))
    assert graph.edges[L2, "bus"]["resource"] == "bus:down"
    assert graph.edges["bus", L2]["resource"] == "bus:up"
    taps = [d for a, b, d in graph.edges(data=True) if L2 not in (a, b)]
    assert all(d["latency"] == 0 and d["energy_hops"] == 0 for d in taps)
    # The whole transfer latency sits on the L2 <-> bus links (MAESTRO's L), both ways.
    router = Router(graph)
    assert sum(graph.edges[e]["latency"] for e in router.route(L2, pe(3))) == 3
    assert sum(graph.edges[e]["latency"] for e in router.route(pe(3), L2)) == 3
    assert graph.graph["broadcast"]


def test_links_at_l2_are_capped_by_its_ports() -> None:
    graph = build_topology(_hw("mesh", l2_read_bw_elems_per_cycle=3, l2_write_bw_elems_per_cycle=5))
    assert graph.edges[L2, ("r", 0, 0)]["bandwidth"] == 3
    assert graph.edges[("r", 0, 0), L2]["bandwidth"] == 5
    assert graph.edges[("r", 0, 0), ("r", 1, 0)]["bandwidth"] == 8


def test_mesh_xy_route_goes_along_x_then_y() -> None:
    """2x2 mesh, L2 at the corner router (0,0): to PE 3 at (1,1) the route is
    L2 -> r(0,0) -> r(1,0) -> r(1,1) -> PE 3: X first, then Y (4 links)."""
    router = Router(build_topology(_hw("mesh")))
    assert router.route(L2, pe(3)) == (
        (L2, ("r", 0, 0)),
        (("r", 0, 0), ("r", 1, 0)),
        (("r", 1, 0), ("r", 1, 1)),
        (("r", 1, 1), pe(3)),
    )
    # Back from PE 2 at (0,1): r(0,1) -> r(0,0) -> L2.
    assert router.hops(pe(2), L2) == 3


def test_mesh_l2_on_the_edge_attaches_mid_row() -> None:
    graph = build_topology(_hw("mesh", pes=16, mesh_l2_position="edge"))
    assert graph.graph["l2_router"] == ("r", 2, 0)
    assert Router(graph).hops(L2, pe(0)) == 1 + 2 + 1


def test_multicast_on_a_tree_uses_each_link_once() -> None:
    """4 PEs: L2 -> root s(2,0) -> s(1,0) -> PE0/PE1 and s(1,1) -> PE2/PE3. A multicast to
    all four uses the 7 links of the tree once each (4 unicasts would use 12)."""
    router = Router(build_topology(_hw("tree")))
    tree = router.multicast(L2, [pe(i) for i in range(4)])
    assert len(tree) == 7
    assert len(set(tree)) == 7
    assert sum(len(router.route(L2, pe(i))) for i in range(4)) == 12


def test_fat_tree_bandwidth_doubles_towards_the_root() -> None:
    graph = build_topology(_hw("tree", pes=8))
    assert graph.edges[("sw", 1, 0), pe(0)]["bandwidth"] == 8
    assert graph.edges[("sw", 2, 0), ("sw", 1, 0)]["bandwidth"] == 16
    assert graph.edges[("sw", 3, 0), ("sw", 2, 0)]["bandwidth"] == 32
    assert graph.edges[L2, ("sw", 3, 0)]["bandwidth"] == 32


def test_systolic_array_has_only_neighbour_links_and_edge_injection() -> None:
    """2x2 array: PE0 PE1 / PE2 PE3. Neighbour links only, in both directions (in
    MAESTRO's mappings a sliding window hands PE i what PE i+1 held, i.e. leftwards, so
    a right/down-only array could never forward); L2
    injects into the left column (PE0, PE2) and the top row (PE1) and drains from the
    right column and the bottom row (PE1, PE2, PE3)."""
    graph = build_topology(_hw("systolic"))
    pe_links = {(a, b) for a, b in graph.edges if a != L2 and b != L2}
    right_down = {(pe(0), pe(1)), (pe(0), pe(2)), (pe(1), pe(3)), (pe(2), pe(3))}
    assert pe_links == right_down | {(b, a) for a, b in right_down}
    assert sorted(b for a, b in graph.edges if a == L2) == [pe(0), pe(1), pe(2)]
    assert sorted(a for a, b in graph.edges if b == L2) == [pe(1), pe(2), pe(3)]
    router = Router(graph)
    assert router.hops(L2, pe(3)) == 2
    assert router.neighbours(0) == (1, 2)
    assert all(graph.nodes[pe(i)]["adder"] for i in range(4))


def test_mesh_neighbours_are_pes_at_adjacent_routers() -> None:
    """3x3 mesh: PE 4 sits in the middle, its neighbours are PEs 1, 3, 5, 7; a corner
    PE has two. Trees and buses have no PE-to-PE links, so nothing is forwarded."""
    router = Router(build_topology(_hw("mesh", pes=9)))
    assert router.neighbours(4) == (1, 3, 5, 7)
    assert router.neighbours(0) == (1, 3)
    assert router.route(pe(1), pe(4)) == (
        (pe(1), ("r", 1, 0)),
        (("r", 1, 0), ("r", 1, 1)),
        (("r", 1, 1), pe(4)),
    )
    assert Router(build_topology(_hw("tree"))).neighbours(1) == ()


def test_routes_into_l2_form_a_tree() -> None:
    """Every node's route to L2 continues along its next node's route (one breadth-first
    tree), so streams that meet never split again: what a reduction needs."""
    for topology in ("systolic", "crossbar", "tree"):
        graph = build_topology(_hw(topology, pes=9))
        router = Router(graph)
        for i in range(9):
            route = router.route(pe(i), L2)
            for k, (a, _b) in enumerate(route[1:], start=1):
                if a[0] == "pe":
                    assert router.route(a, L2) == route[k:]


def test_custom_graph_is_routed_by_shortest_paths() -> None:
    graph = nx.DiGraph(name="ring")
    nodes = [L2, pe(0), pe(1), pe(2)]
    for a, b in zip(nodes, nodes[1:] + nodes[:1], strict=True):
        graph.add_edge(a, b, bandwidth=4, latency=1, resource=f"{a}->{b}")
    router = Router(graph)
    assert router.route(L2, pe(2)) == ((L2, pe(0)), (pe(0), pe(1)), (pe(1), pe(2)))
    with pytest.raises(ValueError, match="no route"):
        router.route(pe(2), pe(7))
