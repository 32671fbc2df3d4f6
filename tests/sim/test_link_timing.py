"""Pipelined link timing, every number derived by hand (rule, :mod:`metronome.sim.noc`): a hop of
n > 0 elements on a link of bandwidth B, latency L, with H header cycles, starting at s,
occupies the link [s, last + 1) where last = max(s + H + ceil(n/B) - 1, last of the hop
feeding it + that hop's L); its last element is received at tail = last + max(L, 1). A
cut-through hop may start L_parent cycles after its parent started. A phase is done (its
plane free) when every hop has released its link; its data may still be in flight."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.sim import MAESTRO, REALISTIC, SimOptions, simulate
from metronome.sim.noc import PhaseOracle, PhaseOutcome
from metronome.sim.options import Policy
from metronome.sim.phases import DISTRIBUTION, Fabric, Message, PhaseBuilder
from metronome.sim.topology import L2, build_topology, pe, prepare_graph
from metronome.spec.hardware import TOPOLOGIES, UNBOUNDED, Hardware
from metronome.spec.layer import Layer, LayerType, make_layer
from metronome.spec.mapping import MapDirective, Mapping

from .helpers import case, xc_hw


def _chain(links: list[tuple[int, int]], header: int = 0) -> PhaseBuilder:
    """L2 -> n1 -> ... -> pe0 with (bandwidth, latency) per link; pe0 -> L2 to close it."""
    graph = nx.DiGraph(name="chain")
    nodes = [L2, *(f"n{i}" for i in range(1, len(links))), pe(0)]
    for (a, b), (bw, lat) in zip(itertools.pairwise(nodes), links, strict=True):
        graph.add_edge(a, b, bandwidth=bw, latency=lat)
    graph.add_edge(pe(0), L2, bandwidth=1, latency=0)
    hw = Hardware(num_pes=1)
    return PhaseBuilder(Fabric(prepare_graph(graph, hw, 1), header_cycles=header), hw, REALISTIC)


def _run(builder: PhaseBuilder, messages: tuple[Message, ...]) -> PhaseOutcome:
    oracle = PhaseOracle(builder.fabric, round_robin=False, contention=True)
    return oracle.outcome(builder.make(DISTRIBUTION, messages))[0]


def _busy(outcome: PhaseOutcome, builder: PhaseBuilder) -> dict[tuple[str, str], int]:
    """(src, dst) -> busy cycles."""
    return {builder.fabric.label(e): busy for e, _n, busy, *_ in outcome.edges}


@pytest.mark.parametrize(
    ("latency", "tail"),
    [
        # 5 elements at 2/cycle: ser = 3, occupied [0, 3), last element enters at 2.
        (0, 3),  # L = 0: it crosses in the cycle it enters (2), received at its end: 3.
        (1, 3),  # MAESTRO: L + ceil(n/B) - 1 = 1 + 3 - 1.
        (2, 4),  # 2 + 3 - 1; the link is still free at 3, before the data arrive.
    ],
)
def test_one_link_occupies_its_serialisation_whatever_the_latency(latency: int, tail: int) -> None:
    builder = _chain([(2, latency)])
    outcome = _run(builder, (builder.multicast(L2, (0,), 5, None),))
    assert outcome.deliveries == ((0, tail),)
    assert outcome.done == 3
    assert _busy(outcome, builder) == {("L2", "pe0"): 3}


def test_a_one_element_message_takes_one_cycle_of_an_unbounded_zero_latency_link() -> None:
    """1 element, unbounded bandwidth, L = 0: MAESTRO's formula would give 0 + 1 - 1 = 0,
    but a transfer takes at least one cycle: the link is busy in cycle 0, free at 1, and
    the element is received at 1. With a header of 2 cycles the link is busy [0, 3) and
    the element enters last, at 2: received at 3."""
    builder = _chain([(UNBOUNDED, 0)])
    outcome = _run(builder, (builder.multicast(L2, (0,), 1, None),))
    assert (outcome.deliveries, outcome.done) == (((0, 1),), 1)
    builder = _chain([(UNBOUNDED, 0)], header=2)
    outcome = _run(builder, (builder.multicast(L2, (0,), 1, None),))
    assert (outcome.deliveries, outcome.done) == (((0, 3),), 3)


def test_a_three_hop_chain_pipelines_and_a_slow_middle_link_holds_the_next() -> None:
    """5 elements over three links of latency 1.
    Bandwidth 2 everywhere (ser 3): hop 1 [0, 3), last 2, tail 3; hop 2 starts 0+1 = 1,
    last max(1+2, 3) = 3, tail 4, free 4; hop 3 starts 2, last max(2+2, 4) = 4, tail 5
    (= 3 latencies + 3 - 1), free 5. Each link busy 3 cycles.
    Middle link at 1/cycle (ser 5): hop 2 [1, 6), last 5, tail 6; hop 3 starts 2 but is fed
    one element per cycle: last max(4, 6) = 6, tail 7, so it holds its link [2, 7), 5
    cycles, though its own serialisation is 3."""
    builder = _chain([(2, 1), (2, 1), (2, 1)])
    outcome = _run(builder, (builder.multicast(L2, (0,), 5, None),))
    assert (outcome.deliveries, outcome.done) == (((0, 5),), 5)
    assert set(_busy(outcome, builder).values()) == {3}
    builder = _chain([(2, 1), (1, 1), (2, 1)])
    outcome = _run(builder, (builder.multicast(L2, (0,), 5, None),))
    assert (outcome.deliveries, outcome.done) == (((0, 7),), 7)
    assert _busy(outcome, builder) == {("L2", "n1"): 3, ("n1", "n2"): 5, ("n2", "pe0"): 5}


def test_two_messages_back_to_back_on_one_link() -> None:
    """L2 -> PE0, bandwidth 2, latency 2. m0: 4 elements (ser 2) [0, 2), tail 1 + 2 = 3;
    m1: 2 elements (ser 1) queues 2 cycles, [2, 3), tail 2 + 2 = 4: PE0 has both at 4 and
    the link is free at 3 (holding it until the tail would have made m1 wait until 3).
    With a header of 1 cycle: m0 [0, 3), last 2, tail 4; m1 waits 3, [3, 5), last 4,
    tail 6; free at 5."""
    builder = _chain([(2, 2)])
    messages = (builder.multicast(L2, (0,), 4, None), builder.multicast(L2, (0,), 2, None))
    outcome = _run(builder, messages)
    assert (outcome.deliveries, outcome.done, outcome.queueing) == (((0, 4),), 3, 2)
    builder = _chain([(2, 2)], header=1)
    messages = (builder.multicast(L2, (0,), 4, None), builder.multicast(L2, (0,), 2, None))
    outcome = _run(builder, messages)
    assert (outcome.deliveries, outcome.done, outcome.queueing) == (((0, 6),), 5, 3)
    assert _busy(outcome, builder) == {("L2", "pe0"): 5}


def test_a_multicast_tree_streams_through_links_of_different_bandwidths() -> None:
    """4-PE fat tree, bandwidth 8 at the leaves and 16 on the two upper levels, hop latency
    1; 16 elements to every PE. L2 -> sw2 (ser 1) [0, 1), tail 1; sw2 -> sw1 (ser 1) start
    1, last max(1, 1) = 1, tail 2; sw1 -> PE (ser 2) start 2, last max(3, 2) = 3, tail 4,
    free 4. Each link carries the 16 elements once."""
    hw = Hardware(num_pes=4, topology="tree", noc_bw_elems_per_cycle=8, noc_hop_latency_cycles=1)
    builder = PhaseBuilder(Fabric(build_topology(hw)), hw, REALISTIC)
    outcome = _run(builder, (builder.multicast(L2, (0, 1, 2, 3), 16, None),))
    assert outcome.deliveries == ((0, 4), (1, 4), (2, 4), (3, 4))
    assert outcome.done == 4
    busy = _busy(outcome, builder)
    assert busy[L2, "sw2,0"] == busy["sw2,0", "sw1,0"] == 1
    assert busy["sw1,0", "pe0"] == 2
    assert {row[1] for row in outcome.edges} == {16}


def _k4c8(topology: str, bw: int) -> tuple[int, int]:
    """K4 C8 on 4 PEs, SpatialMap K, C in tiles of 4 (2 steps): each step sends the 4
    inputs to all PEs (one multicast) and 4 weights to each PE (one message each); the
    runtime and the busy cycles of the link out of L2."""
    dims = {"K": 4, "C": 8, "R": 1, "S": 1, "Y": 1, "X": 1}
    layer = make_layer(name="t", type_=LayerType.CONV, declared=dims)
    mapping = Mapping((MapDirective(True, "K", 1, 1), MapDirective(False, "C", 4, 4)))
    hardware = xc_hw(4, topology=topology, noc_bw_elems_per_cycle=bw)
    result = simulate(layer, mapping, hardware, SimOptions(policy=REALISTIC))
    out = next(x for x in result.noc["links"] if x["src"] == L2)
    return result.layer.runtime_cycles, out["busy_cycles"]


@pytest.mark.parametrize(("topology", "starved"), [("mesh", (50, 40)), ("tree", (34, 20))])
def test_a_starved_network_is_slower_than_an_unbounded_one(
    topology: str, starved: tuple[int, int]
) -> None:
    """K4 C8 (see _k4c8), hop latency 0, L2 at router (0,0) / the tree's root; messages
    leave L2 in the order w0, inputs, w1, w2, w3; the fetch takes [0, 1).
    Unbounded bandwidth, mesh and tree alike: every message takes one cycle per link,
    L2's link at 1, 2, 3, 4, 5: PE0 has its data at 3, PE1 4, PE2 5, PE3 6 (received a
    cycle after the last zero-latency link); 4 MACs each, PE3 ends at 10. Step 1 from 6
    (the plane is free): PE3 at 11, ends at 15. The 4 partial sums (one element each)
    share the link into L2 at 15, 16, 17, 18 (received 19) and the 4 outputs go off-chip in
    one more cycle: runtime 20, L2's link busy 10 cycles.
    Mesh at 1 element/cycle: each message takes 4 cycles of L2's link: [1, 21) for step
    0 (w3 last, PE3 at 21), [21, 41) for step 1 (PE3 at 41, computes [41, 45)); the sums
    leave at 45, 46, 47, 48, off-chip +1: runtime 50, L2's link busy 40.
    Tree at 1 element/cycle (2 on the links above the leaf switches): 2 cycles per
    message out of L2, [1, 11); w3 reaches PE3 over its leaf link [9, 13), received 13;
    step 1 from 13, PE3 at 25, computes [25, 29); the sums reach the root link at 29,
    30 (PE1 after PE0 on their switch's uplink) and leave at 29, 30, 31, 32, off-chip +1:
    runtime 34, L2's link busy 20."""
    assert _k4c8(topology, UNBOUNDED) == (20, 10)
    assert _k4c8(topology, 1) == starved


def test_x09_on_a_starved_mesh_pays_one_cycle_per_single_element_message() -> None:
    """x09 (8 PEs, K spatial over 4 clusters of 2 PEs, C spatial inside): every step sends
    8 multicasts of one element, so at any bandwidth each takes one cycle of the L2 link:
    the links are busy and bandwidth 1 costs nothing more than unbounded bandwidth."""
    layer, mapping = case("x09_two_level")
    runs = []
    for bw in (1, UNBOUNDED):
        hw = Hardware.maestro_flags(num_pes=8, noc_bw=bw).with_changes(topology="mesh")
        runs.append(simulate(layer, mapping, hw, SimOptions(policy=REALISTIC)).layer)
    assert runs[0].runtime_cycles == runs[1].runtime_cycles
    # Same messages, each one cycle on its link at either bandwidth: the same busy cycles
    # over the same runtime.
    busiest = [run.metric("noc_max_link_utilization") for run in runs]
    assert busiest[0] == busiest[1] != 0
    for plane in ("down", "up"):
        key = f"noc_{plane}_busy_cycles"
        assert runs[0].metric(key) == runs[1].metric(key)


@st.composite
def _networks(draw: st.DrawFn) -> tuple[Layer, Mapping, Hardware, Policy]:
    """A small layer, a mapping with one SpatialMap, and a NoC of any topology."""
    dims = {
        "K": draw(st.integers(1, 5)),
        "C": draw(st.integers(1, 5)),
        "R": 1,
        "S": 1,
        "Y": draw(st.integers(1, 3)),
        "X": draw(st.integers(1, 4)),
    }
    layer = make_layer(name="p", type_=LayerType.CONV, declared=dims)
    order = draw(st.permutations(["K", "C", "X", "Y"]))
    spatial = draw(st.sampled_from(order))
    directives = []
    for d in order:
        size = 1 if d == spatial else draw(st.integers(1, dims[d]))
        directives.append(MapDirective(d == spatial, d, size, size))
    latency = draw(st.integers(0, 3))
    hw = Hardware(
        num_pes=draw(st.sampled_from([2, 3, 4, 6, 8])),
        topology=draw(st.sampled_from(TOPOLOGIES)),
        noc_arbitration=draw(st.sampled_from(["fifo", "round_robin"])),
        noc_bw_elems_per_cycle=draw(st.sampled_from([1, 2, 3, 4, 8])),
        noc_hop_latency_cycles=latency,
        noc_latency_cycles=latency,
        noc_header_cycles=draw(st.integers(0, 3)),
        adder_latency_cycles=draw(st.integers(0, 2)),
        offchip_bw_elems_per_cycle=1000,
    )
    return layer, Mapping(tuple(directives)), hw, draw(st.sampled_from([MAESTRO, REALISTIC]))


def _runtime(layer: Layer, mapping: Mapping, hw: Hardware, policy: Policy) -> int:
    return simulate(layer, mapping, hw, SimOptions(policy=policy)).layer.runtime_cycles


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(_networks(), st.sampled_from(["bandwidth", "latency", "header"]))
def test_runtime_never_grows_with_a_better_network(network, better: str) -> None:
    """More bandwidth, less latency or a smaller header never slows a run down, on every
    topology, arbitration and policy."""
    layer, mapping, hw, policy = network
    if better == "bandwidth":
        improved = hw.with_changes(noc_bw_elems_per_cycle=2 * hw.noc_bw_elems_per_cycle)
    elif better == "latency":
        lat = max(0, hw.noc_hop_latency_cycles - 1)
        improved = hw.with_changes(noc_hop_latency_cycles=lat, noc_latency_cycles=lat)
    else:
        improved = hw.with_changes(noc_header_cycles=max(0, hw.noc_header_cycles - 1))
    assert _runtime(layer, mapping, improved, policy) <= _runtime(layer, mapping, hw, policy)
