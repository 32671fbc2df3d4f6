"""SimPy timelines of the simulator's parts, every event time derived by hand.

Each test builds the part alone (a :class:`PE` in a bare environment, :class:`L2Memory`
with hand-made footprints, a :class:`Machine` on a 2-PE bus fed hand-made step records)
so the times below follow from the rules in docs/simulator.md ("Timing model", "Link
timing" in sim/noc.py) and nothing else."""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import simpy

from metronome.sim.machine import Machine
from metronome.sim.memory import L2Memory, L2Step, OffchipTiming
from metronome.sim.options import REALISTIC
from metronome.sim.pe import PE, PEWork
from metronome.sim.phases import Fabric, PhaseBuilder
from metronome.sim.topology import build_topology
from metronome.sim.traffic import Footprint, StepRecord
from metronome.spec.hardware import Hardware


def _fire_at(env: simpy.Environment, event: simpy.Event, cycle: int) -> None:
    """Fire ``event`` (value: the cycle) at ``cycle``."""

    def proc() -> Generator[simpy.Event, object, None]:
        yield env.timeout(cycle)
        event.succeed(cycle)

    env.process(proc())


# -- PE -----------------------------------------------------------------------------------


def test_pe_waits_for_its_tile_computes_in_order_and_waits_for_a_drained_buffer() -> None:
    env = simpy.Environment()
    drained: dict[int, simpy.Event] = {0: env.event(), 1: env.event()}
    unit = PE(env, 0, drained)
    tile0, tile1, tile2 = env.event(), env.event(), env.event()
    _fire_at(env, tile0, 3)
    _fire_at(env, tile1, 4)
    _fire_at(env, tile2, 0)
    _fire_at(env, drained[0], 20)
    for step, tile, cycles in ((0, tile0, 5), (1, tile1, 5), (2, tile2, 2)):
        unit.inbox.put(PEWork(step, tile, cycles, egress=True))
    unit.inbox.put(None)
    env.run()
    # Step 0: its tile arrives at 3, no output buffer in use yet: computes 3..8.
    assert unit.done(0).value == 8
    # Step 1: its tile arrived at 4, the PE is free at 8; one buffer drains (step 0's),
    # the other is free: computes 8..13.
    assert unit.done(1).value == 13
    # Step 2: tile there at 0, but both buffers hold sums (steps 0 and 1); it reuses
    # step 0's, drained at 20: waits 13..20 (7 cycles), computes 20..22.
    assert unit.done(2).value == 22
    assert unit.drain_wait_cycles == 20 - 13
    assert unit.compute_cycles == 5 + 5 + 2


def test_pe_without_egress_never_waits_for_a_drain() -> None:
    env = simpy.Environment()
    unit = PE(env, 0, {})
    now = env.event().succeed(0)
    for step in range(3):
        unit.inbox.put(PEWork(step, now, 4, egress=False))
    unit.inbox.put(None)
    env.run()
    # No partial sums leave, so no buffer is ever held: back to back, 4 cycles each.
    assert [unit.done(s).value for s in range(3)] == [4, 8, 12]
    assert unit.drain_wait_cycles == 0


# -- L2 -----------------------------------------------------------------------------------

_DIMS = (("C",), ("K",), ("K",))


def _fp(*cells: int) -> Footprint:
    canvas = np.zeros(4, dtype=bool)
    canvas[list(cells)] = True
    return Footprint((0,), canvas)


def test_l2_evicts_lru_refetches_inputs_and_partial_sums_and_schedules_write_backs() -> None:
    # Three tensors of 4 elements (12 in all) in an L2 of 4: a step that leaves more
    # than 4 held evicts exactly the excess, least recently used first, ties to the lower
    # position (input before weight before output, lower index first).
    l2 = L2Memory(((4,), (4,), (4,)), 4)
    # Step 0: inputs 0,1 and weights 0,1 miss (4), output 0 is new (1): 5 > 4 held,
    # evict 1, all stamped 0, so the lowest position: input 0.
    assert l2.step(0, (_fp(0, 1), _fp(0, 1), _fp(0)), {}, _DIMS) == L2Step(4, 0, 0)
    # Step 1: input 0 misses again (evicted), input 1 and the weights hit; output 0 was
    # written and is held: one read-modify-write. 4 + 1 = 5: evict 1, all stamped 1:
    # input 0 again.
    assert l2.step(1, (_fp(0, 1), _fp(0, 1), _fp(0)), {}, _DIMS) == L2Step(1, 1, 0)
    # Step 2: weights 0,1 hit, outputs 1,2 are new: 4 + 2 = 6, evict 2. Stamps: input 1
    # and output 0 at 1, the rest at 2: input 1 and output 0 go, so output 0's partial
    # sum is written back with the next step's transfer (step 2 = its stamp 1 + 1).
    assert l2.step(2, (None, _fp(0, 1), _fp(1, 2)), {}, _DIMS) == L2Step(0, 0, 0)
    # Step 3: output 0 again: written before and not held, so it is fetched back (1)
    # and read for its read-modify-write (1); 4 + 1 = 5: evict 1 of those stamped 2
    # (weights 0,1, outputs 1,2): weight 0.
    assert l2.step(3, (None, None, _fp(0)), {}, _DIMS) == L2Step(0, 1, 1)
    # End of a 4-step run: outputs 1,2 (last updated at 2) go with step 3's transfer,
    # output 0 (last updated at 3) after the last step.
    assert l2.finish(4) == 1
    assert l2.writes_at(0, 4).tolist() == [0, 0, 1, 2]
    assert l2.offchip_reads == [2 + 1, 2, 1]
    assert l2.evictions == 1 + 1 + 2 + 1
    # Held before step 2's eviction: 4 + 2.
    assert l2.peak_occupancy == 6


# -- Machine ------------------------------------------------------------------------------


def _record(rid: int, sums: int = 16) -> StepRecord:
    """A step on 2 PEs: 4 elements to each (8 on the bus), 6 cycles of compute each,
    ``sums`` partial sums back from each; the next step's tiles fit beside these (double
    buffering)."""
    return StepRecord(
        rid=rid,
        compute_cycles=(6, 6),
        involved=(True, True),
        egress=(True, True),
        macs=12,
        active_pes=2,
        l1_writes=(0, 0, 0),
        l1_reads=(0, 0, 0),
        delivered=(8, 0),
        bus_in_elems=8,
        bus_out_elems=2 * sums,
        out_elems=2 * sums,
        down_flows=(((0,), 4), ((1,), 4)),
        forwards=(),
        forwarded=(0, 0),
        multicast_deliveries=8,
        up_flows=(((0,), sums), ((1,), sums)),
        footprints=(None, None, None),
        occupancy_peak=0,
        next_fits=True,
        l1_overflow=False,
    )


def test_machine_overlaps_distribution_compute_and_collection_with_two_buffers() -> None:
    # A bus of 4 elements/cycle and latency 1 each way; off-chip 8 elements/cycle, no
    # latency, one request in flight. Link rule (sim/noc.py): n elements starting at s
    # occupy the link until last = s + ceil(n/4) - 1, arrive at last + 1, and free the
    # plane at last + 1.
    hw = Hardware(num_pes=2, noc_bw_elems_per_cycle=4, noc_latency_cycles=1)
    fabric = Fabric(build_topology(hw))
    timing = OffchipTiming(latency_cycles=0, elems_per_cycle=8, max_outstanding=1)
    feed = [(_record(0), L2Step(8, 0, 0)), (_record(1), L2Step(0, 0, 0))]
    feed.append((_record(2), L2Step(0, 0, 0)))
    machine = Machine(2, timing, fabric, PhaseBuilder(fabric, hw, REALISTIC), iter(feed))
    runtime = machine.run()
    # Fetch of step 0: 8 misses / 8 per cycle = cycles 0..1.
    # Step 0 distributed at 1: last = 1 + 2 - 1 = 2, at the PEs at 3; they compute 3..9.
    # Step 1 (fetched at 1: nothing to move) distributed at 3 (plane free): at the PEs at
    #   5, but they compute step 0 until 9: 9..15.
    # Step 2 may be distributed once each PE finished step 0 (double buffering: the
    #   step before last), at 9: at the PEs at 11.
    # Collection of step 0 at 9: 2 x 16 sums over the bus's up link, 32 / 4 = 8 cycles:
    #   last = 16, landed (buffer drained) at 17.
    # Step 2 computes once step 0's buffer drained (both buffers hold sums, of steps 0
    #   and 1): the PEs are free at 15, wait 15..17, compute 17..23.
    # Collection of step 1 at 17 (plane busy until 17; ready at 15): landed at 25; of
    #   step 2 at 25 (ready at 23): last = 32, landed at 33, the end of the run.
    assert [machine.pes[0].done(s).value for s in (1, 2)] == [15, 23]
    assert runtime == 33
    assert [unit.drain_wait_cycles for unit in machine.pes] == [17 - 15, 17 - 15]
    assert [machine.drained[t].value for t in range(3)] == [17, 25, 33]
    stats = machine.stats
    # Distribution planes free at 3, 5 and 11.
    assert stats.compute_starts == [3, 5, 11]
    # Step 1 was ready at 1 (fetched; no buffer to wait for) and went at 3.
    assert stats.down_queue_cycles == 3 - 1
    assert stats.down_busy_cycles == 3 * 2
    # Collections of steps 1 and 2 each waited 2 cycles for the up link.
    assert stats.up_queue_cycles == (17 - 15) + (25 - 23)
    assert stats.up_busy_cycles == 3 * 8
    assert stats.offchip_busy_cycles == 1


def test_machine_waits_for_offchip_misses_refetches_and_read_modify_write_reads() -> None:
    # The same bus; off-chip 2 elements/cycle with 3 cycles of read latency, one request
    # in flight; L2's read port 1 element/cycle. Each PE sends back 2 sums (4 on the
    # bus's up link: one cycle).
    hw = Hardware(num_pes=2, noc_bw_elems_per_cycle=4, noc_latency_cycles=1)
    fabric = Fabric(build_topology(hw))
    timing = OffchipTiming(3, 2, max_outstanding=1, l2_read_elems_per_cycle=1)
    # Step 0 misses 4 elements; step 1 fetches back 2 evicted partial sums, writes 2
    # outputs off-chip and reads 2 old sums for its read-modify-write.
    feed = [
        (_record(0, sums=2), L2Step(misses=4, rmw_reads=0, output_refetches=0)),
        (_record(1, sums=2), L2Step(misses=0, rmw_reads=2, output_refetches=2, writes=2)),
    ]
    machine = Machine(2, timing, fabric, PhaseBuilder(fabric, hw, REALISTIC), iter(feed))
    runtime = machine.run()
    # Step 0: 4 elements on the channel [0, 2), read data 3 cycles later: fetched at 5;
    #   distributed at 5 (last 6), at the PEs at 7, computed 7..13.
    # Step 1's request goes out once step 0 started distributing (one in flight), at 5:
    #   2 refetched + 2 written = 4 elements [5, 7), its reads arrive at 10; distributed
    #   at 10, plane free at 12; the PEs finish step 0 at 13 and compute 13..19.
    assert machine.stats.compute_starts == [7, 12]
    assert machine.stats.offchip_busy_cycles == 2 + 2
    assert machine.pes[1].done(1).value == 19
    # Collection of step 0 at 13: one cycle, landed at 14 (no old sums to read).
    # Collection of step 1 at 19: landed at 20, but the 2 old sums take L2's read port
    # 2 cycles from 19: drained at 21, the end of the run.
    assert [machine.drained[t].value for t in range(2)] == [14, 21]
    assert runtime == 21
    assert machine.stats.down_queue_cycles == 0
