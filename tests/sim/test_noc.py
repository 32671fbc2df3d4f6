"""The NoC as a graph: contention, multicast, forwarding, reduction and arbitration,
each derived by hand (link rule, :mod:`metronome.sim.noc`: a hop of n elements on a link of
bandwidth B, latency L, header H starting at s: its last element enters at last = max(s
+ H + ceil(n/B) - 1, last of the hop feeding it + that hop's L), is received at tail =
last + max(L, 1), and the link takes the next message at last + 1; cut-through: the next
link may start L cycles after this one started; a merge waits for every incoming tail,
plus the adder latency; bus taps take no link time)."""

from __future__ import annotations

import networkx as nx
import pytest

from metronome.sim import MAESTRO, REALISTIC, SimOptions, simulate
from metronome.sim.noc import PhaseOracle
from metronome.sim.phases import COLLECTION, DISTRIBUTION, Fabric, Hop, Message, PhaseBuilder
from metronome.sim.topology import L2, build_topology, pe, prepare_graph
from metronome.spec.hardware import TOPOLOGIES, Hardware
from metronome.spec.layer import Layer, LayerType, make_layer
from metronome.spec.loader import load_network
from metronome.spec.mapping import MapDirective, Mapping
from metronome.spec.source import SpecError

from .helpers import stable, xc_hw


def _builder(hw: Hardware, policy=REALISTIC, graph: nx.DiGraph | None = None) -> PhaseBuilder:
    return PhaseBuilder(Fabric(graph or build_topology(hw)), hw, policy)


def _links(outcome, fabric: Fabric) -> dict[tuple[str, str], tuple[int, ...]]:
    """(src, dst) -> (elements, busy, queueing, max queueing, hops)."""
    return {fabric.label(e): tuple(row) for e, *row in outcome.edges}


def _layer(**dims: int):
    sizes = {"K": 1, "C": 1, "R": 1, "S": 1, "Y": 1, "X": 1} | dims
    return make_layer(name="t", type_=LayerType.CONV, declared=sizes)


def test_two_transfers_sharing_a_mesh_link_the_second_waits_one_serialisation() -> None:
    """2x2 mesh, L2 at router (0,0), bandwidth 2, hop latency 1. A: 6 elements to PE 1
    (L2 -> r00 -> r10 -> PE1), B: 6 elements to PE 3 (L2 -> r00 -> r10 -> r11 -> PE3),
    both injected at 0, A first. ser = 3.
    A: L2->r00 occupied [0, 3), last 2; r00->r10 starts 0+1 = 1, last max(1+2, 2+1) = 3,
       free at 4; r10->PE1 (local port, L 0) starts 2, last max(2+2, 3+1) = 4, received
       at 4 + max(0, 1) = 5, free at 5: PE 1 has its data at 5.
    B: waits for L2->r00 until A releases it at 3 (queueing 3 = one serialisation),
       last 5; r00->r10 ready 4 = A's release, last max(6, 6) = 6; r10->r11 ready 5,
       last 7; r11->PE3 ready 6, last 8, received at 9, free at 9: PE 3 at 9 (6 without
       A: last 2, 3, 4, 5 on the four links)."""
    hw = Hardware(num_pes=4, topology="mesh", noc_bw_elems_per_cycle=2, noc_hop_latency_cycles=1)
    builder = _builder(hw)
    a = builder.multicast(L2, (1,), 6, None)
    b = builder.multicast(L2, (3,), 6, None)
    oracle = PhaseOracle(builder.fabric, round_robin=False, contention=True)
    outcome, _ = oracle.outcome(builder.make(DISTRIBUTION, (a, b)))
    assert outcome.deliveries == ((1, 5), (3, 9))
    assert outcome.done == 9
    links = _links(outcome, builder.fabric)
    assert links["L2", "r0,0"] == (12, 6, 3, 3, 2)
    assert links["r0,0", "r1,0"] == (12, 6, 0, 0, 2)
    assert links["r1,0", "r1,1"] == (6, 3, 0, 0, 1)
    assert outcome.peaks == ((builder.fabric.resource[builder.fabric.edge_id[L2, ("r", 0, 0)]], 1),)
    alone, _ = oracle.outcome(builder.make(DISTRIBUTION, (b,)))
    assert alone.deliveries == ((3, 6),)
    zero_load = PhaseOracle(builder.fabric, round_robin=False, contention=False)
    assert zero_load.outcome(builder.make(DISTRIBUTION, (a, b)))[0].deliveries == ((1, 5), (3, 6))


def test_one_step_on_a_2x2_mesh_end_to_end() -> None:
    """K4 C2 on a 2x2 mesh (bandwidth 2, hop latency 1): SpatialMap K, each PE its own
    2 weights, the 2 inputs multicast to all. The off-chip fetch takes [0, 1). Messages
    by PE set: w0 (0), inputs (0,1,2,3), w1 (1), w2 (2), w3 (3), 2 elements each (one
    cycle on every link): they take L2 -> r00 at 1, 2, 3, 4, 5, so it queues
    0+1+2+3+4 = 10 cycles (4 hops waiting at once). A message entering L2 -> r00 at t
    takes each next link one cycle later (latency 1; the local port r -> PE, latency 0,
    in the same cycle as it reaches the router) and is received one cycle after its last
    link: w0 at PE0 at 3, inputs at PE0 4, PE1 and PE2 5, PE3 6; w1 at 6 (r00 -> r10 at
    4, after the inputs), w2 at 7, w3 at 9 (L2 at 5, r00 -> r10 6, r10 -> r11 7, the
    port 8). 2 MACs each: PE3 computes [9, 11). The four partial sums (one message each,
    all injected at 11) go up XY (PE3: r11 -> r01 -> r00) and take r00 -> L2 at 11
    (PE0), 12 (PE1), 13 (PE2, asked at 12, waits 1) and 14 (PE3, asked at 13, waits 1),
    one cycle each: the last is received at 15. The four outputs then go off-chip
    in one more cycle: 16."""
    layer = _layer(K=4, C=2)
    mapping = Mapping((MapDirective(True, "K", 1, 1), MapDirective(False, "C", 2, 2)))
    hw = xc_hw(4, topology="mesh", noc_hop_latency_cycles=1, noc_bw_elems_per_cycle=2)
    result = simulate(layer, mapping, hw, SimOptions(policy=REALISTIC))
    r = result.layer
    assert r.runtime_cycles == 16
    links = {(x["plane"], x["src"], x["dst"]): x for x in result.noc["links"]}
    injection = links["distribution", "L2", "r0,0"]
    assert (injection["elems"], injection["queueing_cycles"]) == (10, 10)
    assert (injection["max_queueing_delay_cycles"], injection["peak_queue_len"]) == (4, 4)
    assert links["distribution", "r0,0", "r1,0"]["elems"] == 2 + 2 + 2  # inputs, w1, w3
    ejection = links["collection", "r0,0", "L2"]
    assert (ejection["elems"], ejection["queueing_cycles"]) == (4, 2)
    assert r.metric("noc_link_queueing_cycles") == 12
    assert r.metric("noc_multicast_deliveries_elems") == 2 * 4
    # Zero-load: every hop starts when its data is there; without queueing every message
    # leaves L2 at 1 and PE3 has its data at 5 instead of 9, so queueing is part of it.
    split = [r.metric(f"runtime_split_{k}_cycles") for k in ("compute", "transfer", "queueing")]
    assert sum(split) == 16
    # Instantaneous NoC: fetch [0, 1), compute [1, 3), outputs off-chip [3, 4): 4.
    # Contention-free: PE3's weights at 5 (above), it computes [5, 7); its sum, injected
    # at 7, reaches r00 at 9 (r11 -> r01 -> r00, a cycle each) and L2 at 10; off-chip
    # 11. So transfer 11 - 4 = 7 and queueing 16 - 11 = 5.
    assert split == [4, 11 - 4, 16 - 11]


def test_multicast_to_four_pes_on_a_tree_uses_each_link_once() -> None:
    """4-PE fat tree, bandwidth 8 (16 on the two links at the root), hop latency 1. One
    multicast of 8 elements from L2 to every PE uses the 7 links of the tree once each
    (4 unicasts would use 12 links): every link carries 8 elements, one hop. Timing:
    L2 -> sw2 tail 0+1-1+1 = 1; sw2 -> sw1 starts 1, tail 2; sw1 -> PE starts 2, tail 3."""
    hw = Hardware(num_pes=4, topology="tree", noc_bw_elems_per_cycle=8, noc_hop_latency_cycles=1)
    builder = _builder(hw)
    message = builder.multicast(L2, (0, 1, 2, 3), 8, None)
    oracle = PhaseOracle(builder.fabric, round_robin=False, contention=True)
    outcome, _ = oracle.outcome(builder.make(DISTRIBUTION, (message,)))
    links = _links(outcome, builder.fabric)
    assert len(links) == 7
    assert {row[0] for row in links.values()} == {8}
    assert {row[4] for row in links.values()} == {1}
    assert outcome.deliveries == ((0, 3), (1, 3), (2, 3), (3, 3))


def test_multicast_in_a_mapping_reads_l2_once_and_crosses_each_tree_link_once() -> None:
    """K4 C3 on the 4-PE tree, SpatialMap K: the 3 inputs go to every PE (one multicast),
    each PE gets its own 3 weights. Distribution link loads: L2 -> root 3 + 4*3 = 15,
    root -> each level-1 switch 3 + 2*3 = 9, each switch -> PE 3 + 3 = 6; the inputs
    cross the 7 links once: 21 element-hops instead of 36 for four unicasts."""
    layer = _layer(K=4, C=3)
    mapping = Mapping((MapDirective(True, "K", 1, 1), MapDirective(False, "C", 3, 3)))
    result = simulate(layer, mapping, xc_hw(4, topology="tree"), SimOptions(policy=MAESTRO))
    loads = {
        (x["src"], x["dst"]): x["elems"]
        for x in result.noc["links"]
        if x["plane"] == "distribution"
    }
    assert loads == {
        ("L2", "sw2,0"): 15,
        ("sw2,0", "sw1,0"): 9,
        ("sw2,0", "sw1,1"): 9,
        ("sw1,0", "pe0"): 6,
        ("sw1,0", "pe1"): 6,
        ("sw1,1", "pe2"): 6,
        ("sw1,1", "pe3"): 6,
    }
    assert result.layer.tensor("input").l2_reads == 3
    assert result.layer.metric("noc_multicast_deliveries_elems") == 12


def _systolic_row() -> tuple[Layer, Mapping, Hardware, nx.DiGraph]:
    layer = _layer(S=3, X=6)
    mapping = Mapping((MapDirective(True, "X'", 1, 1), MapDirective(False, "S", 1, 1)))
    hw = xc_hw(4, topology="systolic", noc_hop_latency_cycles=1, noc_bw_elems_per_cycle=1)
    return layer, mapping, hw, build_topology(hw, shape=(4, 1))


def test_forwarding_on_a_1x4_systolic_row_replaces_l2_reads() -> None:
    """1-D convolution X=6, S=3 -> X'=4 on a 1x4 systolic row (a user graph): PE p
    computes output p, one filter column s per step, so it needs input p+s. At step s+1
    PE p needs what PE p+1 held at step s: with forwarding PEs 0..2 take it from their
    right neighbour and only PE 3 reads L2. Inputs from L2: 4 + 1 + 1 = 6 instead of 12;
    6 forwarded, 2 on each link PE(p+1) -> PE p. Weights: one per step for every PE.

    Timing (bandwidth 1, hop latency 1, every PE has its own L2 link, fetch 1 cycle):
    step 0 at 1: the weight and each PE's input share its L2 link, tails 2 and 3; compute
    [3, 4). Step 1 at 3: the weight (tail 4), PE3's input after it (tail 5), forwards tail
    4: PEs 0..2 compute [4, 5), PE3 [5, 6). Step 2 likewise from 5: PE3 computes [7, 8);
    the 4 outputs (accumulated over S) leave at 8 on the PEs' own links: land at 9."""
    layer, mapping, hw, graph = _systolic_row()
    result = simulate(layer, mapping, hw, SimOptions(policy=REALISTIC, noc_graph=graph))
    full = simulate(
        layer, mapping, hw, SimOptions(policy=REALISTIC, noc_graph=graph, fast_forward=False)
    )
    assert stable(full.to_dict()) == stable(result.to_dict())
    r = result.layer
    assert r.tensor("input").l2_reads == 6
    assert r.tensor("input").l1_writes == 12
    assert r.metric("noc_forwarded_elems") == 6
    assert r.tensor("weight").l2_reads == 3
    assert r.runtime_cycles == 9 + 1  # + the outputs' off-chip write-back (1 cycle)
    forwards = {
        (x["src"], x["dst"]): x["elems"]
        for x in result.noc["links"]
        if x["plane"] == "distribution" and x["src"] != "L2"
    }
    assert forwards == {("pe1", "pe0"): 2, ("pe2", "pe1"): 2, ("pe3", "pe2"): 2}
    # MAESTRO's assumption (every tile from L2), or the switch alone, reads all 12.
    for policy in (MAESTRO, REALISTIC.with_switch(forwarding=False)):
        off = simulate(layer, mapping, hw, SimOptions(policy=policy, noc_graph=graph)).layer
        assert off.tensor("input").l2_reads == 12
        assert off.metric("noc_forwarded_elems") == 0


def test_reduction_tree_latency() -> None:
    """4 PEs each send 2 partial sums of the same outputs. Tree, hop latency 2, adder 3:
    PE -> sw1 tail 0+0+2 = 2; sw1 adds its two streams: ready 2+3 = 5, sw1 -> root tail
    7; the root adds: ready 10, root -> L2 tail 12, and every link carries 2 elements
    once. Free reduction (MAESTRO): the same without adders: 2, 4, 6. On the bus
    (latency 2, no adders): the 4 copies (8 elements) cross in one transaction, tail
    0+0+2 = 2, then L2's adder tree ceil(log2 4) * 3 = 6: lands at 8."""
    flows = (((0, 1, 2, 3), 2),)
    landed = {}
    for topology, policy in (("tree", REALISTIC), ("tree", MAESTRO), ("bus", REALISTIC)):
        hw = Hardware(
            num_pes=4,
            topology=topology,
            noc_bw_elems_per_cycle=8,
            noc_hop_latency_cycles=2,
            noc_latency_cycles=2,
            adder_latency_cycles=3,
        )
        builder = _builder(hw, policy)
        oracle = PhaseOracle(builder.fabric, round_robin=False, contention=True)
        outcome, _ = oracle.outcome(builder.make(COLLECTION, (builder.reduction(flows),)))
        landed[topology, policy.name] = outcome.landed
        if topology == "tree":
            assert {row[0] for row in _links(outcome, builder.fabric).values()} == {2}
    assert landed == {("tree", "realistic"): 12, ("tree", "maestro"): 6, ("bus", "realistic"): 8}


def test_reduction_in_a_mapping_on_a_tree() -> None:
    """C4 on 4 PEs (SpatialMap C): one output, four partial sums. Tree, bandwidth 64,
    hop latency 2, adder 3. Fetch [0, 1); each PE's input+weight (2 elements) is its own
    message, one cycle on each link (pipelined: latency does not hold the link). Message
    i takes L2 -> root at 1+i; root -> sw1 at 3+i (msg 1 follows msg 0 on sw1,0, msg 3
    msg 2 on sw1,1, one cycle later, in time); sw1 -> PE at 5+i, tail 7+i: PEs get their
    data at 7, 8, 9, 10. The last PE computes [10, 11); the reduction then takes 12
    cycles (previous test): 23, and the output goes off-chip in one more
    cycle: 24. L2 receives one element, not four."""
    layer = _layer(C=4)
    mapping = Mapping((MapDirective(True, "C", 1, 1),))
    hw = xc_hw(4, topology="tree", noc_hop_latency_cycles=2, adder_latency_cycles=3)
    r = simulate(layer, mapping, hw, SimOptions(policy=REALISTIC)).layer
    assert r.runtime_cycles == 24
    assert r.metric("noc_up_elems") == 1


def test_round_robin_takes_turns_between_input_ports() -> None:
    """Custom graph: pe0 -> hub (latency 3), pe1 -> hub (latency 1), hub -> L2 (bandwidth
    1), bandwidth 4 elsewhere. Messages: m0 4 elements from PE1, m1 1 from PE1, m2 1 from
    PE0. hub -> L2: m0 arrives at 1 and holds it until 1+3+1 = 5; m1 waits from 2 (it
    left PE1 at 1), m2 from 3. FIFO serves m1 (5..6) then m2 (6..7): waits 3 and 3. Round
    robin last served PE1's port, so PE0's goes first: m2 (5..6), m1 (6..7): waits 2, 4."""
    graph = nx.DiGraph(name="hub")
    graph.add_edge(pe(0), "hub", bandwidth=4, latency=3)
    graph.add_edge(pe(1), "hub", bandwidth=4, latency=1)
    graph.add_edge("hub", L2, bandwidth=1, latency=1)
    graph.add_edge(L2, "hub", bandwidth=4, latency=1)
    graph.add_edge("hub", pe(0), bandwidth=4, latency=1)
    graph.add_edge("hub", pe(1), bandwidth=4, latency=1)
    hw = Hardware(num_pes=2)
    fabric = Fabric(prepare_graph(graph, hw, 2))
    builder = PhaseBuilder(fabric, hw, REALISTIC)

    def up(p: int, n: int) -> Message:
        return builder.reduction((((p,), n),))

    phase = builder.make(COLLECTION, (up(1, 4), up(1, 1), up(0, 1)))
    hub = fabric.edge_id["hub", L2]
    delays = {}
    for rr in (False, True):
        outcome, _ = PhaseOracle(fabric, round_robin=rr, contention=True).outcome(phase)
        row = next(row for e, *row in outcome.edges if e == hub)
        delays[rr] = (row[2], row[3])
        assert outcome.landed == 7
    assert delays == {False: (6, 3), True: (6, 4)}


@pytest.mark.slow
@pytest.mark.parametrize("policy", [MAESTRO, REALISTIC.with_switch(forwarding=False)])
def test_unlimited_zero_latency_noc_still_takes_a_cycle_per_message(policy) -> None:
    """Unbounded bandwidth, every latency (bus, hop, adder) 0, forwarding off. Counts do
    not depend on timing: every topology reads the same elements from L2. A message still
    occupies a link for one cycle (and is received a cycle after it is sent): the bus
    sends a phase as one transaction, hidden behind computation except the first step's
    distribution and the last step's collection, so it takes at most 2 cycles more than
    an instantaneous NoC (exactly 2 when the outputs went off-chip after the last step;
    written back during the run, their one-cycle transfers sit between the steps of the
    instantaneous run too and may cost it a cycle: simulator, 434 -> 435 cycles for
    t2_eyeriss_rs), and as long as a contention-free one, while crossbar, mesh and tree
    send one message per multicast flow over their single L2 link, one per cycle, and
    take longer."""
    from .test_functional_and_paths import _MID

    layer = make_layer(
        name="mid", type_=LayerType.CONV, declared={"K": 4, "C": 3, "R": 3, "S": 3, "Y": 8, "X": 8}
    )
    for path in _MID:
        mapping = load_network(path).layers[0].mapping
        runtimes, reads = {}, set()
        for topology in TOPOLOGIES:
            hw = Hardware(
                num_pes=16,
                topology=topology,
                l1_size_elems=1000,
                l2_size_elems=600,
                adder_latency_cycles=0,
                offchip_bw_elems_per_cycle=1000,
            )
            r = simulate(layer, mapping, hw, SimOptions(policy=policy)).layer
            reads.add(tuple(r.tensor(t).l2_reads for t in ("input", "weight", "output")))
            runtimes[topology] = r.runtime_cycles
            if topology == "bus":
                exposed = r.runtime_cycles - r.metric("runtime_split_compute_cycles")
                assert 1 <= exposed <= 2
                assert r.runtime_cycles == r.metric("runtime_noc_zero_load_cycles")
        assert len(reads) == 1, (path, reads)
        assert min(runtimes[t] for t in ("crossbar", "mesh", "tree")) > runtimes["bus"]


def test_a_user_graph_must_connect_every_pe_to_l2() -> None:
    graph = nx.DiGraph()
    graph.add_edge(L2, pe(0))
    graph.add_edge(pe(0), L2)
    layer = _layer(K=2)
    mapping = Mapping((MapDirective(True, "K", 1, 1),))
    with pytest.raises(SpecError, match="lacks PE nodes"):
        simulate(layer, mapping, Hardware(num_pes=2), SimOptions(noc_graph=graph))
    graph.add_edge(L2, pe(1))
    with pytest.raises(SpecError, match=r"PEs \[1\] cannot exchange data with L2"):
        simulate(layer, mapping, Hardware(num_pes=2), SimOptions(noc_graph=graph))
    graph.add_edge(pe(1), pe(0))
    r = simulate(layer, mapping, Hardware(num_pes=2), SimOptions(noc_graph=graph))
    assert r.noc["topology"] == "custom"
    # One step, K spatial: the input (1 element, to both PEs) and one weight per PE are
    # fetched in [0, 1); every link takes 1 cycle per message (unbounded bandwidth,
    # latency 0, received one cycle after entering). Instantaneous NoC: compute [1, 2),
    # the 2 outputs off-chip [2, 3): 3. Contention-free: data at 2, compute [2, 3), PE0's
    # sum and PE1's (pe1 -> pe0 -> L2, cut through) at L2 at 4, off-chip [4, 5): 5.
    # Real: the two links out of L2 share its read port (prepare_graph), one hop a cycle
    # from 1: the input to PE0, w0, the input to PE1, w1 (FIFO order, ties as the
    # simulator queues them), so PE0 computes [3, 4) and PE1 [5, 6); the sums leave at 6,
    # PE1's waits a cycle for pe0 -> L2 behind PE0's and lands at 8; off-chip [8, 9).
    split = [r.layer.metric(f"runtime_split_{k}_cycles") for k in ("compute", "transfer")]
    assert split == [3, 5 - 3]
    assert r.layer.runtime_cycles == 9


def test_hop_list_is_parents_first() -> None:
    """A reduction's hops come farthest from L2 first, so every hop's parents precede it."""
    hw = Hardware(num_pes=16, topology="mesh")
    builder = _builder(hw)
    message = builder.reduction(((tuple(range(16)), 1),))
    for i, hop in enumerate(message.hops):
        assert isinstance(hop, Hop)
        assert all(p < i for p in hop.parents)
    # 16 PEs merge into one stream at the routers: one element on every link.
    assert {hop.elems for hop in message.hops} == {1}
