"""Physical bounds every run obeys, as properties over random problems
(:mod:`tests.sim.random_cases`): no resource moves more than its bandwidth allows in the
runtime, and elements are conserved between L2, the NoC and the L1s."""

from __future__ import annotations

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from metronome.sim import MAESTRO, SimOptions, SimResult, simulate
from metronome.sim.topology import L2, node_label
from metronome.spec.hardware import UNBOUNDED, Hardware
from metronome.spec.layer import LayerType, make_layer
from metronome.spec.mapping import MapDirective, Mapping
from metronome.spec.source import SpecError

from .random_cases import Problem, problems


def _run(problem: Problem, **changes: object) -> SimResult | None:
    hw = problem.hardware.with_changes(**changes) if changes else problem.hardware
    try:
        return simulate(problem.layer, problem.mapping, hw, SimOptions(policy=problem.policy))
    except SpecError:
        return None


def _links(result: SimResult) -> list[tuple[dict[str, object], dict[str, object]]]:
    """Every used (plane, link) of the run with its graph attributes."""
    graph = result.graph
    assert graph is not None
    edges = {(node_label(a), node_label(b)): data for a, b, data in graph.edges(data=True)}
    return [(link, edges[link["src"], link["dst"]]) for link in result.noc["links"]]


@pytest.mark.slow
@given(problems())
def test_runtime_covers_the_macs(problem: Problem) -> None:
    note(repr(problem))
    result = _run(problem)
    if result is None:
        return
    r, hw = result.layer, problem.hardware
    assert r.runtime_cycles * hw.num_pes * hw.simd_lanes >= r.macs
    per_pe = result.per_pe["compute_cycles"]
    assert r.runtime_cycles >= max(per_pe, default=0)  # type: ignore[type-var]


@pytest.mark.slow
@given(problems())
def test_runtime_covers_the_offchip_traffic(problem: Problem) -> None:
    note(repr(problem))
    result = _run(problem)
    if result is None:
        return
    r, bw = result.layer, problem.hardware.offchip_bw_elems_per_cycle
    moved = r.metric("offchip_reads_elems") + r.metric("offchip_writes_elems")
    assert r.runtime_cycles * bw >= moved
    assert r.runtime_cycles >= r.metric("offchip_busy_cycles")


@pytest.mark.slow
@given(problems())
def test_runtime_covers_the_l2_ports_and_every_link(problem: Problem) -> None:
    note(repr(problem))
    result = _run(problem)
    if result is None:
        return
    r, hw = result.layer, problem.hardware
    port_in = port_out = 0
    for link, data in _links(result):
        # A link of one plane serves one hop at a time at its bandwidth.
        assert r.runtime_cycles * int(data["bandwidth"]) >= int(link["elems"])
        if link["src"] == L2:
            port_out += int(link["elems"])
        if link["dst"] == L2:
            port_in += int(link["elems"])
    # L2's read port also reads the old values of read-modify-writes.
    port_out += r.tensor("output").l2_reads
    assert r.runtime_cycles * hw.l2_read_bw_elems_per_cycle >= port_out
    assert r.runtime_cycles * hw.l2_write_bw_elems_per_cycle >= port_in


def test_a_link_without_latency_keeps_to_its_bandwidth() -> None:
    """1-D convolution X=2, S=2 (2 outputs from Y=2) on a bus without latency whose L2
    read port moves 1 element/cycle: a hop of n elements holds a link of latency 0 for
    ceil(n/B) cycles, so 10 elements cannot leave L2 in a run of 9 cycles (holding it
    ceil(n/B) - 1 cycles would let them)."""
    layer = make_layer(
        name="p", type_=LayerType.CONV, declared={"K": 1, "C": 1, "R": 1, "S": 2, "Y": 2, "X": 2}
    )
    order = [(True, "K"), (False, "C"), (False, "R"), (False, "S"), (False, "Y"), (False, "X")]
    mapping = Mapping(tuple(MapDirective(sp, d, 1, 1) for sp, d in order))
    hw = Hardware(l2_read_bw_elems_per_cycle=1, adder_latency_cycles=0)
    result = simulate(layer, mapping, hw, SimOptions(policy=MAESTRO))
    out = sum(int(x["elems"]) for x in result.noc["links"] if x["src"] == L2)
    assert out == 10
    assert result.layer.runtime_cycles >= out


@pytest.mark.slow
@given(problems())
def test_elements_are_conserved(problem: Problem) -> None:
    """Each element a PE writes into its L1 came from L2 (once per multicast) or from a
    neighbour; L2 reads for the NoC leave on the links at L2; every output element
    reaches L2 at least once when no MAC is missing."""
    note(repr(problem))
    result = _run(problem)
    if result is None:
        return
    r = result.layer
    l1 = r.tensor("input").l1_writes + r.tensor("weight").l1_writes
    l2_reads = r.tensor("input").l2_reads + r.tensor("weight").l2_reads
    forwarded = r.metric("noc_forwarded_elems")
    multicast = r.metric("noc_multicast_deliveries_elems")
    assert l2_reads == r.metric("noc_down_elems")
    # L1 writes = unicast deliveries + multicast deliveries + forwards, and the L2 reads
    # are the unicast ones plus one per multicast element.
    unicast = l1 - forwarded - multicast
    assert 0 <= unicast <= l2_reads <= l1 - forwarded
    out_of_l2 = sum(
        int(link["elems"])
        for link in result.noc["links"]
        if link["src"] == L2 and link["plane"] == "distribution"
    )
    assert out_of_l2 >= l2_reads
    if r.metric("macs_missing") == 0 and r.macs:
        outputs = problem.layer.tensor("output")
        size = 1
        for d in outputs.dims:
            size *= problem.layer.size(d)
        assert r.tensor("output").l2_writes >= size
        assert r.metric("noc_up_elems") >= r.tensor("output").l2_writes or (
            problem.policy.free_spatial_reduction
        )


_MORE = {
    "noc_bw_elems_per_cycle": lambda hw: hw.noc_bw_elems_per_cycle * 2,
    "offchip_bw_elems_per_cycle": lambda hw: hw.offchip_bw_elems_per_cycle * 2,
    "l2_read_bw_elems_per_cycle": lambda hw: hw.l2_read_bw_elems_per_cycle * 2,
    "l2_write_bw_elems_per_cycle": lambda hw: hw.l2_write_bw_elems_per_cycle * 2,
    "offchip_latency_cycles": lambda hw: max(0, hw.offchip_latency_cycles - 1),
    "noc_hop_latency_cycles": lambda hw: max(0, hw.noc_hop_latency_cycles - 1),
    "noc_latency_cycles": lambda hw: max(0, hw.noc_latency_cycles - 1),
    "adder_latency_cycles": lambda hw: max(0, hw.adder_latency_cycles - 1),
    "offchip_max_outstanding_requests": lambda hw: hw.offchip_max_outstanding_requests * 2,
    "l1_size_elems": lambda hw: hw.l1_size_elems * 2,
}
"""A larger L2 has its own property: test_a_larger_l2_is_never_slower."""


@pytest.mark.slow
@pytest.mark.parametrize("field", sorted(_MORE))
@given(problem=problems(), data=st.data())
def test_more_resources_are_never_slower(field: str, problem: Problem, data) -> None:
    note(repr(problem))
    hw = problem.hardware
    better = min(UNBOUNDED, _MORE[field](hw))
    base = _run(problem)
    if base is None or better == getattr(hw, field):
        return
    more = _run(problem, **{field: better})
    assert more is not None
    assert more.layer.runtime_cycles <= base.layer.runtime_cycles


@given(problem=problems(), data=st.data())
def test_a_larger_l2_is_never_slower(problem: Problem, data: st.DataObject) -> None:
    """An L2 larger by any amount (one element, or unbounded) holds, after every step,
    every element the smaller one holds (each keeps its capacity's most recently used
    elements, by the same last-use order: LRU evicting exactly the excess is a stack
    algorithm), so each step misses and fetches back no more; write-backs go out after
    the step that last updated the output, whatever the capacity, and the larger one's
    stays are unions of the smaller one's. So never more traffic, and never slower."""
    note(repr(problem))
    small = problem.hardware.l2_size_elems
    if small >= UNBOUNDED:
        return
    larger = data.draw(
        st.one_of(st.just(UNBOUNDED), st.just(small + 1), st.integers(small + 1, 2 * small + 1))
    )
    base = _run(problem)
    if base is None:
        return
    more = _run(problem, l2_size_elems=larger)
    assert more is not None
    a, b = base.layer, more.layer
    for metric in ("offchip_reads_elems", "offchip_writes_elems", "offchip_output_refetch_elems"):
        assert b.metric(metric) <= a.metric(metric), metric
    assert b.runtime_cycles <= a.runtime_cycles


def test_a_larger_l2_writes_outputs_back_at_the_same_time() -> None:
    """Found by the property above when evicted outputs were written with the evicting
    step and the rest after the last step: a 1-D convolution X=3, S=2, stride 2 over 1 PE
    (every map (1,1), X spatial), maestro policy, bus latency 1, took 13 cycles with an L2
    of 4 elements (its outputs left during the run) and 14 with 8 (they left after the
    last step). Each output now leaves after the step that last updated it: 13 cycles
    both (simulator), the smaller L2 with more traffic (17 reads and 4 writes against 8
    and 2: it evicts and fetches back)."""
    layer = make_layer(
        name="p",
        type_=LayerType.CONV,
        declared={"K": 1, "C": 1, "R": 1, "S": 2, "Y": 2, "X": 3},
        stride_x=2,
    )
    order = [(True, "X"), (False, "C"), (False, "R"), (False, "S"), (False, "Y"), (False, "K")]
    mapping = Mapping(tuple(MapDirective(sp, d, 1, 1) for sp, d in order))
    runs = [
        simulate(
            layer,
            mapping,
            Hardware(l2_size_elems=l2, noc_latency_cycles=1, adder_latency_cycles=0),
            SimOptions(policy=MAESTRO),
        ).layer
        for l2 in (4, 8)
    ]
    assert [r.runtime_cycles for r in runs] == [13, 13]
    assert [r.metric("offchip_reads_elems") for r in runs] == [15, 8]
    assert [r.metric("offchip_writes_elems") for r in runs] == [4, 2]
