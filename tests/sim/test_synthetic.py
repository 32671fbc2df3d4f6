"""The NoC against network theory: synthetic traffic on the simulator's links and routers
compared with the zero-load latency and the channel-load bound computed from the graph,
and those with closed forms derived by hand for how the topologies are built."""

from __future__ import annotations

from math import ceil, isclose

import pytest

from metronome.sim.synthetic import (
    PATTERNS,
    SyntheticTraffic,
    channel_load_bound,
    zero_load_latency,
)
from metronome.spec.hardware import Hardware

NETWORKS = ("bus", "crossbar", "mesh", "tree")


def _hw(topology: str, pes: int = 8, bw: int = 2, latency: int = 1, header: int = 0) -> Hardware:
    return Hardware(
        num_pes=pes,
        topology=topology,
        noc_bw_elems_per_cycle=bw,
        noc_hop_latency_cycles=latency,
        noc_latency_cycles=latency,
        noc_header_cycles=header,
    )


@pytest.mark.parametrize("topology", NETWORKS)
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize(("latency", "header"), [(1, 0), (0, 2), (3, 1)])
def test_a_lone_message_takes_exactly_the_zero_load_latency(
    topology: str, pattern: str, latency: int, header: int
) -> None:
    """Every source/destination pair, simulated alone, against the closed form."""
    traffic = SyntheticTraffic(_hw(topology, latency=latency, header=header), pattern)
    for src, dst in traffic.pairs():
        assert traffic.latency(src, dst) == zero_load_latency(traffic, src, dst), (src, dst)


def test_zero_load_latency_on_the_mesh_by_hand() -> None:
    """4x4 mesh, bandwidth 2, hop latency 1, header 1, 4-element messages (ser 2). PE to
    PE: local port in (latency 0, same cycle), D router hops, local port out, received a
    cycle after it entered: H + ser - 1 + D*L + 1 = 1 + 2 + D. PE0 (0,0) -> PE15 (3,3):
    D = 6, 9 cycles. PE5 -> L2 at router (0,0): D = 2 router hops, then the L2 link
    (latency 1): H + ser - 1 + 3*L = 5."""
    traffic = SyntheticTraffic(_hw("mesh", pes=16, header=1), "uniform")
    assert traffic.latency(0, 15) == zero_load_latency(traffic, 0, 15) == 9
    assert traffic.latency(5, 6) == 1 + 2 + 1
    hotspot = SyntheticTraffic(_hw("mesh", pes=16, header=1), "hotspot")
    assert hotspot.latency(5) == 5


@pytest.mark.parametrize(("k", "bw"), [(4, 2), (4, 4), (6, 2)])
def test_uniform_mesh_bound_is_the_bisection_channel_load(k: int, bw: int) -> None:
    """k x k mesh (k even), XY routing, uniform traffic to the other k^2 - 1 PEs: the
    links across the middle column cut carry, per row and direction, what the k/2
    sources on one side send to the k^2/2 destinations on the other: (k/2) * lambda *
    (k^2/2) / (k^2 - 1). With 4-element messages a link moves B elements per cycle
    (ser = 4/B whole cycles), so lambda <= 4B/k * (k^2 - 1)/k^2."""
    traffic = SyntheticTraffic(_hw("mesh", pes=k * k, bw=bw), "uniform")
    bound, _ = channel_load_bound(traffic)
    assert isclose(bound, 4 * bw / k * (k * k - 1) / (k * k))


def test_hotspot_and_broadcast_bounds_by_hand() -> None:
    """8 PEs, bandwidth 2, 4-element messages. Hotspot: every PE's load crosses the
    link into L2, 8 * lambda <= 2 on bus, crossbar and mesh: 0.25; the fat tree's root
    link has 2 * 2^(3-1) = 8 elements/cycle but a 4-element message still takes a whole
    cycle of it, so it moves 4 elements/cycle: 4 / 8 = 0.5. Broadcast: every link of the
    multicast tree carries each message once, the narrowest has bandwidth 2: 2. With a
    header of 2 cycles a message takes 2 + 2 cycles of a bandwidth-2 link: 1 element
    per cycle, the hotspot bound halves to 0.125."""
    for topology in ("bus", "crossbar", "mesh"):
        assert channel_load_bound(SyntheticTraffic(_hw(topology), "hotspot"))[0] == 0.25
    assert channel_load_bound(SyntheticTraffic(_hw("tree"), "hotspot"))[0] == 0.5
    for topology in NETWORKS:
        assert channel_load_bound(SyntheticTraffic(_hw(topology), "broadcast"))[0] == 2
    slow = SyntheticTraffic(_hw("mesh", header=2), "hotspot")
    assert channel_load_bound(slow)[0] == 0.125


def test_uniform_bounds_on_bus_crossbar_and_tree_by_hand() -> None:
    """8 PEs, bandwidth 2, 4-element messages. Bus: PE to PE goes through L2, all 8
    sources share each direction of the medium: 2 / 8. Crossbar: each PE's own link
    carries its lambda: 2. Fat tree (3 levels, bandwidth 2, 4, 8 from the leaves): the
    link from a half's switch to the root carries what 4 PEs send to the 4 others of 7
    (4 * lambda * 4/7) and moves min(8, 4) = 4 elements/cycle of 4-element messages:
    lambda <= 4 * 7 / 16 = 1.75; the leaf links carry lambda <= 2 and the middle ones
    2 * lambda * 6/7 <= 4 (lambda <= 2.33): the root links decide."""
    expected = {"bus": 0.25, "crossbar": 2.0, "tree": 1.75}
    for topology, bound in expected.items():
        got, _ = channel_load_bound(SyntheticTraffic(_hw(topology), "uniform"))
        assert isclose(got, bound), topology


@pytest.mark.slow
@pytest.mark.parametrize("topology", NETWORKS)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_accepted_throughput_stays_under_the_bound_and_saturates_near_it(
    topology: str, pattern: str
) -> None:
    """Offered below, at and beyond the channel-load bound: what the network accepts
    never exceeds the bound, and past it the network still delivers at least 60 % of it
    (in practice 90-100 %: only the sources' credits and head-of-line blocking in their
    queues keep the bottleneck link from being busy every cycle). The bound is on the
    long-run rate of the pattern's mix; a window of W cycles may also deliver what was
    already in the network when it opened, and its random draws may hold a little less
    of the bottleneck's share: at most sources x credits messages, n elements each, over
    N PEs and W cycles (0.11 elements/PE/cycle here; the largest excess seen is 0.023,
    uniform traffic on the tree)."""
    traffic = SyntheticTraffic(_hw(topology), pattern)
    bound, _ = channel_load_bound(traffic)
    limit, cycles, credits = traffic.message_elems, 600, 16
    window = len(traffic.sources()) * credits * limit / (traffic.num_pes * cycles)
    for factor in (0.5, 1.0, 1.5):
        load = min(limit, factor * bound)
        result = traffic.run(load, cycles=cycles, warmup_cycles=200, seed=1, outstanding=credits)
        assert result.accepted_elems_per_pe_per_cycle <= bound + window, factor
        if factor == 1.5:
            assert result.accepted_elems_per_pe_per_cycle >= 0.6 * bound
        if factor == 0.5:
            # Well below saturation everything offered gets through (up to the window's
            # randomness) and the latency stays near the zero-load one.
            assert result.accepted_elems_per_pe_per_cycle >= 0.8 * load
            zero = max(zero_load_latency(traffic, s, d) for s, d in traffic.pairs())
            assert result.mean_latency_cycles < 4 * zero


@pytest.mark.slow
def test_latency_grows_with_load_and_runs_are_deterministic() -> None:
    traffic = SyntheticTraffic(_hw("mesh", pes=16), "uniform")
    bound, _ = channel_load_bound(traffic)
    runs = [traffic.run(f * bound, cycles=500, warmup_cycles=200, seed=3) for f in (0.2, 0.95)]
    assert runs[0].mean_latency_cycles < runs[1].mean_latency_cycles
    assert traffic.run(0.2 * bound, cycles=500, warmup_cycles=200, seed=3) == runs[0]
    zero = [zero_load_latency(traffic, s, d) for s, d in traffic.pairs()]
    # At 20 % of the bound the mean latency is within a few cycles of the zero-load mean.
    assert runs[0].mean_latency_cycles >= min(zero)
    assert runs[0].mean_latency_cycles < sum(zero) / len(zero) + ceil(4 / 2) * 2


def test_bad_patterns_and_loads_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown traffic pattern"):
        SyntheticTraffic(_hw("mesh"), "tornado")
    traffic = SyntheticTraffic(_hw("mesh"), "uniform")
    for load in (0.0, -1.0, 5.0):
        with pytest.raises(ValueError, match="offered load"):
            traffic.run(load)
