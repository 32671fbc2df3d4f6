"""Hand-written cases where the fast path could disagree with the full SimPy run, or
where a cost could miss the clock. Each is small enough to reason about by hand."""

from __future__ import annotations

import pytest

from metronome.sim import MAESTRO, REALISTIC, SimOptions, simulate
from metronome.spec.hardware import Hardware
from metronome.spec.layer import Layer
from metronome.spec.maestro import parse_mapping_text
from metronome.spec.mapping import Mapping

from .helpers import stable

_DIMS_1A = "K: 4, C: 100, R: 1, S: 1, Y: 4, X: 4"
_MAP_1A = (
    "TemporalMap(1,1) K; TemporalMap(1,1) Y; TemporalMap(1,1) X; SpatialMap(1,1) C;"
    " TemporalMap(1,1) R; TemporalMap(1,1) S;"
)


def load(dims: str, dataflow: str, stride: str = "") -> tuple[Layer, Mapping]:
    """One CONV layer in MAESTRO's syntax."""
    block = f"  Stride {{ {stride} }}\n" if stride else ""
    text = (
        f"Network t {{\nLayer L {{\n  Type: CONV\n{block}  Dimensions {{ {dims} }}\n"
        f"  Dataflow {{\n    {dataflow}\n  }}\n}}\n}}\n"
    )
    entry = parse_mapping_text(text).layers[0]
    return entry.layer, entry.require_mapping()


def both(layer: Layer, mapping: Mapping, hw: Hardware, policy=REALISTIC):
    """The fast path's and the full SimPy run's results."""
    return tuple(
        simulate(layer, mapping, hw, SimOptions(policy=policy, fast_forward=ff))
        for ff in (True, False)
    )


@pytest.mark.slow
def test_partial_last_fold_sends_its_partial_sums() -> None:
    """C=100 over 32 PEs: 4 folds, the last holding C 96..99 on PEs 0-3 only. PEs 4-31
    finish their output tile at fold 2 and must send their sums when the next step's
    fold (the partial one) leaves them idle."""
    layer, mapping = load(_DIMS_1A, _MAP_1A)
    hw = Hardware.maestro_flags(num_pes=32, noc_bw=64, noc_hop_latency=1)
    fast, full = both(layer, mapping, hw)
    # Every PE that computed an output's partial sum sends it: 64 outputs x 32 PEs
    # for folds 0-2 (each PE's sums leave once per output, at fold 2 for PEs 4-31 and
    # at fold 3 for PEs 0-3) = 2048 elements collected.
    assert full.layer.metric("noc_up_elems") == 2048
    assert stable(fast.to_dict()) == stable(full.to_dict())


def test_double_buffering_before_a_partial_last_tile() -> None:
    """C=7 in tiles of 2: the step before the partial tile (C 6) sees a smaller next
    tile, so double buffering fits where it does not before a full one."""
    layer, mapping = load(
        "K: 1, C: 7, R: 1, S: 1, Y: 1, X: 64",
        "TemporalMap(1,1) K; TemporalMap(1,1) X; TemporalMap(2,2) C; SpatialMap(1,1) Y;"
        " TemporalMap(1,1) R; TemporalMap(1,1) S;",
    )
    hw = Hardware.maestro_flags(num_pes=1, l1_size=8, noc_bw=1, noc_hop_latency=1)
    fast, full = both(layer, mapping, hw)
    assert stable(fast.to_dict()) == stable(full.to_dict())


def test_collector_hand_off_matches_the_machine() -> None:
    """Strided layer on a mesh with slow links: the collection of a step starts no
    earlier than its distribution phase ended, in both paths."""
    layer, mapping = load(
        "K: 6, C: 8, R: 1, S: 1, Y: 4, X: 2",
        "TemporalMap(1,1) K; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(3,3) C;"
        " TemporalMap(Sz(S),Sz(S)) S; TemporalMap(3,4) Y; SpatialMap(1,2) X;",
        stride="X: 2, Y: 2",
    )
    hw = Hardware.maestro_flags(num_pes=8, noc_bw=1, noc_hop_latency=2, simd_lanes=4).with_changes(
        topology="mesh", adder_latency_cycles=0
    )
    fast, full = both(layer, mapping, hw, MAESTRO)
    assert stable(fast.to_dict()) == stable(full.to_dict())


@pytest.mark.slow
def test_every_offchip_transfer_takes_time() -> None:
    """L2 of 64 elements, off-chip 1 element/cycle: partial sums evicted and fetched
    back, and every off-chip write, share the channel with the misses."""
    layer, mapping = load(
        "K: 1, C: 8, R: 1, S: 1, Y: 1, X: 64",
        "TemporalMap(1,1) K; TemporalMap(1,1) C; SpatialMap(1,1) Y; TemporalMap(1,1) X;"
        " TemporalMap(1,1) R; TemporalMap(1,1) S;",
    )
    hw = Hardware.maestro_flags(num_pes=1, l2_size=64, offchip_bw=1)
    fast, full = both(layer, mapping, hw)
    for result in (fast, full):
        r = result.layer
        moved = r.metric("offchip_reads_elems") + r.metric("offchip_writes_elems")
        assert r.runtime_cycles >= moved  # 1 element/cycle
    assert stable(fast.to_dict()) == stable(full.to_dict())


@pytest.mark.parametrize(
    "topology",
    ["bus", "crossbar", "mesh", "tree", "systolic"],
)
def test_l2_ports_are_shared_whatever_the_topology(topology: str) -> None:
    """16 PEs, L2 read and write ports 1 element/cycle: every element leaving or
    entering L2 passes one port, whatever the number of links at L2."""
    layer, mapping = load(
        "K: 16, C: 16, R: 1, S: 1, Y: 1, X: 1",
        "SpatialMap(1,1) K; TemporalMap(16,16) C; TemporalMap(1,1) Y; TemporalMap(1,1) X;"
        " TemporalMap(1,1) R; TemporalMap(1,1) S;",
    )
    hw = Hardware(
        num_pes=16,
        topology=topology,
        l2_read_bw_elems_per_cycle=1,
        l2_write_bw_elems_per_cycle=1,
        noc_hop_latency_cycles=1,
    )
    fast, full = both(layer, mapping, hw)
    for result in (fast, full):
        r = result.layer
        assert r.runtime_cycles >= r.metric("noc_down_elems")
        assert r.runtime_cycles >= r.metric("noc_up_elems")
    assert stable(fast.to_dict()) == stable(full.to_dict())


@pytest.mark.slow
@pytest.mark.parametrize(("outstanding", "cycles"), [(1, 6468), (16, 423), (64, 168)])
def test_offchip_latency_is_pipelined(outstanding: int, cycles: int) -> None:
    """64 one-element steps with an off-chip latency of 100 (unbounded bandwidth: each
    transfer takes 1 cycle). Hand-derived: with k requests in flight, request t goes out
    when step t-k started; group g of k steps has its data in L2 at 101*(g+1) + (its
    index in the group), on the PE one bus cycle later (latency 0 still takes a cycle),
    computes 1 cycle; the last output crosses the collection bus in 1 cycle and the 64
    outputs leave for off-chip in 1 cycle at the end.
    k=64: step t's data at t+102, the last step ends at 63+103 = 166, +1+1 = 168.
    k=16: group 3's data from 405, step 63 ends 405+15+1 = 421, +1+1 = 423.
    k=1: each step waits for its own request (its bus cycle overlaps the next request):
    64*101 + 1 + 1 + 1 + 1 = 6468."""
    layer, mapping = load(
        "K: 1, C: 1, R: 1, S: 1, Y: 1, X: 64",
        "TemporalMap(1,1) K; TemporalMap(1,1) C; SpatialMap(1,1) Y; TemporalMap(1,1) X;"
        " TemporalMap(1,1) R; TemporalMap(1,1) S;",
    )
    hw = Hardware(
        num_pes=1, offchip_latency_cycles=100, offchip_max_outstanding_requests=outstanding
    )
    fast, full = both(layer, mapping, hw)
    assert full.layer.runtime_cycles == cycles
    assert stable(fast.to_dict()) == stable(full.to_dict())


@pytest.mark.parametrize(("read_bw", "cycles"), [(1, 36), (2, 27)])
def test_read_modify_write_reads_use_the_l2_read_port(read_bw: int, cycles: int) -> None:
    """8 outputs (K=8) accumulated over C=2 on one PE, maestro (partial sums to L2 every
    step), bus latency 1, no adder latency, everything else unbounded; L2's read port
    moves ``read_bw`` elements/cycle. By hand with B = read_bw, n = 9 elements per step
    (1 input, 8 weights) through the port, compute 8 cycles per step:
    step 0 fetched at 1 (1 off-chip cycle); its 9 elements enter 1..1+ceil(9/B)-1 and
    arrive one cycle later (B=1: 10, B=2: 6), the plane free then too; computes 8 cycles
    (to 18 / 14). Step 1 distributed when the plane is free: arrives at 19 / 11; computes
    from max(arrival, 18 / 14) to 27 / 22. Its collection starts then, the sums land one
    cycle later, but L2 first reads their 8 old values through the port from the
    collection's start: ceil(8/B) = 8 / 4 cycles, to 35 / 26 (without that read: 28 /
    23). The 8 final outputs go off-chip after the last step: +1 cycle, 36 / 27."""
    layer, mapping = load(
        "K: 8, C: 2, R: 1, S: 1, Y: 1, X: 1",
        "TemporalMap(8,8) K; TemporalMap(1,1) C; SpatialMap(1,1) Y; TemporalMap(1,1) X;"
        " TemporalMap(1,1) R; TemporalMap(1,1) S;",
    )
    hw = Hardware(l2_read_bw_elems_per_cycle=read_bw, noc_latency_cycles=1, adder_latency_cycles=0)
    for result in both(layer, mapping, hw, MAESTRO):
        assert result.layer.tensor("output").l2_reads == 8
        assert result.layer.runtime_cycles == cycles


@pytest.mark.parametrize(("read_bw", "cycles"), [(1, 62), (2, 44)])
def test_read_modify_write_reads_and_distribution_share_the_l2_read_port(
    read_bw: int, cycles: int
) -> None:
    """The case above over C=4: steps 1-3 read 8 old sums each (24), and the port also
    carries 9 elements per distribution (36): 60 elements, so at 1 element/cycle no
    run is shorter than 60 cycles (each timed at the port's full bandwidth, it took 54).
    The port serves distribution t+1, then step t's read-modify-write reads, then
    distribution t+2. By hand, with B = read_bw, a distribution holding the port
    d = ceil(9/B) cycles (9 / 5) and its data arriving one cycle after its last element
    entered, reads r = ceil(8/B) cycles (8 / 4), compute 8, sums landing 1 cycle after
    their collection starts:
    step 0: fetched at 1, distributed 1, arrives 1+d (10 / 6), computes to 18 / 14.
    step 1: distributed when the plane is free (10 / 6), arrives 19 / 11, computes from
    max(19 / 11, 18 / 14) to 27 / 22; its collection starts then, its reads wait.
    step 2: may start once step 0 computed (double buffering) and the plane is free:
    19 / 14; holds the port to 28 / 19, so step 1's reads run max(27, 28) = 28 to 36
    (B=2: 22 to 26); step 2 computes from max(arrival 28 / 19, 27 / 22) to 36 / 30,
    its collection starts then.
    step 3: waits for step 1's reads (36 / 26; B=1: 8 cycles after the plane was free
    at 28), holds the port to 45 / 31, so step 2's reads run 45-53 / 31-35; it arrives
    45 / 31, computes to 53 / 39; the last reads run from its collection's start
    (53 / 39, the port free) to 61 / 43, the 8 outputs go off-chip in 1 cycle: 62 / 44
    (with the reads timed alone: 54 / 43)."""
    layer, mapping = load(
        "K: 8, C: 4, R: 1, S: 1, Y: 1, X: 1",
        "TemporalMap(8,8) K; TemporalMap(1,1) C; SpatialMap(1,1) Y; TemporalMap(1,1) X;"
        " TemporalMap(1,1) R; TemporalMap(1,1) S;",
    )
    hw = Hardware(l2_read_bw_elems_per_cycle=read_bw, noc_latency_cycles=1, adder_latency_cycles=0)
    fast, full = both(layer, mapping, hw, MAESTRO)
    for result in (fast, full):
        r = result.layer
        assert r.tensor("output").l2_reads == 24
        assert r.metric("noc_down_elems") == 36
        assert r.runtime_cycles == cycles
        assert r.runtime_cycles * read_bw >= 24 + 36
    assert stable(fast.to_dict()) == stable(full.to_dict())
