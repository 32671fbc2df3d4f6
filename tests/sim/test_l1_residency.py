"""Element-exact L1 residency under the ``realistic`` policy: every count derived by hand.

Hardware: the flags' defaults (NoC unbounded with no latency, off-chip 70000 elements/cycle)
unless a test says otherwise.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.sim import MAESTRO, REALISTIC, SimOptions, simulate
from metronome.sim.context import RunContext
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_mapping_text

from .helpers import stable
from .test_functional_and_paths import _problems

# K spatial over 16 PEs, C in tiles of 4, a 3x3 window sliding over Y then X.
MONO = """Network mono { Layer L { Type: CONV
Dimensions { K: 16, C: 8, R: 3, S: 3, Y: 10, X: 10 }
Dataflow { SpatialMap(1,1) K; TemporalMap(4,4) C; TemporalMap(Sz(R),1) Y;
  TemporalMap(Sz(S),1) X; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S; } } }"""
# One output row x of 8, reduced over C in the outer loop.
PSUM = """Network p { Layer L { Type: CONV
Dimensions { K: 1, C: 8, R: 1, S: 1, Y: 1, X: 8 }
Dataflow { TemporalMap(1,1) K; TemporalMap(1,1) C; SpatialMap(1,1) Y; TemporalMap(1,1) X;
  TemporalMap(1,1) R; TemporalMap(1,1) S; } } }"""
# Two output channels, each sweeping all 64 inputs (X outer, C inner).
SWEEP = """Network s { Layer L { Type: CONV
Dimensions { K: 2, C: 8, R: 1, S: 1, Y: 1, X: 8 }
Dataflow { TemporalMap(1,1) K; TemporalMap(1,1) X; TemporalMap(1,1) C; SpatialMap(1,1) Y;
  TemporalMap(1,1) R; TemporalMap(1,1) S; } } }"""


def _run(text: str, policy=REALISTIC, fast: bool = True, eviction: str = "lru", **hw):
    entry = parse_mapping_text(text).layers[0]
    assert entry.mapping is not None
    options = SimOptions(policy=policy, fast_forward=fast, l1_eviction=eviction)
    return simulate(entry.layer, entry.mapping, Hardware(**hw), options)


# -- the sliding window (MONO): per PE, 128 steps (2 C tiles x 8 Y x 8 X) of 36 MACs; each
# step's tiles are 36 inputs (4 c x 3 rows x 3 cols), 36 weights and 1 output: 73. All 16
# PEs need the same inputs at the same step (multicast: one L2 read serves 16 PEs).


@pytest.mark.slow
def test_large_l1_fills_each_input_once_per_pe() -> None:
    # Each PE needs the layer's 800 inputs (8 c x 10 x 10) once: 16 x 800 = 12,800 L1 writes,
    # 800 L2 reads. Weights: 72 per PE (8 c x 9), 1,152. Each PE's 64 outputs (8 x 8) stay
    # in L1 across both C tiles and leave once complete: 1,024 L2 writes, no RMW reads.
    r = _run(MONO, num_pes=16, l1_size_elems=100_000).layer
    assert r.tensor("input").l1_writes == 12_800
    assert r.tensor("input").l2_reads == 800
    assert r.tensor("weight").l1_writes == 1_152
    assert r.tensor("output").l2_writes == 1_024
    assert r.tensor("output").l2_reads == 0
    assert r.metric("l1_size_req_elems") == 73
    # Compute alone is 128 x 36 = 4,608 cycles; nothing arrives later than under the maestro
    # policy (4,612, below).
    assert r.runtime_cycles <= 4_612


@pytest.mark.slow
def test_l1_holding_three_rows_keeps_the_window_across_y() -> None:
    # L1 = 210. An input (c, row, col) last used at Y position y is next used at y+1; in
    # between a PE touches at most the 3 rows of y (120), the next row (40), the 36
    # weights and the 8 outputs of one X sweep: 204 < 210 elements, so LRU keeps it and
    # every input is filled once per PE: 12,800. Between C tiles an output sees the whole
    # 400-input C tile in between (> 210): it is evicted after each C tile, 2 x 64 x 16 =
    # 2,048 L2 writes, of which the second C tile's 1,024 are read-modify-writes.
    r = _run(MONO, num_pes=16, l1_size_elems=210).layer
    assert r.tensor("input").l1_writes == 12_800
    assert r.tensor("input").l2_reads == 800
    assert r.tensor("output").l2_writes == 2_048
    assert r.tensor("output").l2_reads == 1_024


@pytest.mark.slow
def test_l1_smaller_than_the_window_refetches_rows() -> None:
    # L1 = 100. Within an X sweep a column is reused at the next step (hit). Across Y the
    # element at column j was last used at X position min(j, 7); before its next use at
    # Y+1 the PE touches at least the 3 rows of 7 further columns (84 inputs), 36
    # weights and the outputs: > 100, so LRU has evicted it. Every Y position refills
    # its 3 rows: 3 x 10 x 4 c x 8 Y x 2 C tiles = 1,920 per PE, 30,720 in all (1,920 L2
    # reads, multicast).
    r = _run(MONO, num_pes=16, l1_size_elems=100).layer
    assert r.tensor("input").l1_writes == 30_720
    assert r.tensor("input").l2_reads == 1_920


def test_maestro_policy_keeps_only_the_current_tile() -> None:
    # MAESTRO: L1 holds the current tile; X slides by one column (12 new of 36 after the
    # first step of each row). Counts pinned from the simulator before residency existed.
    # Runtime: the first fetch (1 cycle) and bus transfer (1 cycle: latency 0 still takes
    # one), 128 x 36 = 4,608 cycles of compute with every later step's data in time, the
    # last outputs up the bus (1) and off-chip (1): 4,612.
    r = _run(MONO, MAESTRO, num_pes=16, l1_size_elems=100_000).layer
    assert r.tensor("input").l1_writes == 30_720
    assert r.tensor("output").l2_writes == 2_048
    assert r.runtime_cycles == 4_612


# -- partial sums (PSUM): 64 steps of 1 MAC on 1 PE; output x is touched once per c.


def test_partial_sums_accumulate_in_l1() -> None:
    # With room for the 8 outputs (each output's reuse distance is 8 inputs + 1 weight +
    # 7 outputs < 1,000,000), each output leaves once, complete: 8 L2 writes, 0 RMW reads
    # (sending every step's partial sum to L2 would be 64 writes and 56 reads).
    r = _run(
        PSUM,
        num_pes=1,
        l1_size_elems=1_000_000,
        noc_bw_elems_per_cycle=1,
        noc_hop_latency_cycles=1,
        noc_latency_cycles=1,
    ).layer
    assert r.tensor("output").l2_writes == 8
    assert r.tensor("output").l2_reads == 0
    assert r.tensor("input").l1_writes == 64
    assert r.tensor("weight").l1_writes == 8
    # The run is bound by the distribution plane (64 inputs + 8 weights at 1 element per
    # cycle), not by the partial sums' plane, so it stays at 75 cycles (simulator value,
    # the same before partial sums stayed in L1; `metronome simulate ... --noc-bw 1
    # --noc-hop-latency 1` gives this latency of 1), plus 1 for the 8 outputs' final
    # write to off-chip: 76.
    assert r.runtime_cycles == 76


def test_partial_sums_leave_every_step_when_l1_holds_one_step() -> None:
    # L1 = 3 holds exactly one step (input, weight, output): every output is evicted by
    # the next step's, so all 64 partial sums leave; 64 - 8 = 56 find one in L2.
    r = _run(
        PSUM, num_pes=1, l1_size_elems=3, noc_bw_elems_per_cycle=1, noc_hop_latency_cycles=1
    ).layer
    assert r.tensor("output").l2_writes == 64
    assert r.tensor("output").l2_reads == 56
    assert r.metric("l1_overflow_steps") == 0


# -- reuse only when it fits (SWEEP): 128 steps of 1 MAC on 1 PE; input (c, x) is used
# once per k, 64 steps apart.


@pytest.mark.slow
def test_reuse_is_not_granted_when_l1_is_too_small() -> None:
    # L1 = 68: between two uses of an input the PE touches the 63 other inputs, at least
    # 8 weights and some outputs: > 68, so LRU evicts every input before its reuse and
    # all 128 uses fill it (L1 writes 128, L2 reads 128). Weight (k, c) is reused 8 steps
    # later (< 68 elements in between): 16 fills. Outputs accumulate 8 steps and leave
    # once: 16 writes.
    small = _run(SWEEP, num_pes=1, l1_size_elems=68).layer
    assert small.tensor("input").l1_writes == 128
    assert small.tensor("input").l2_reads == 128
    assert small.tensor("weight").l1_writes == 16
    assert small.tensor("output").l2_writes == 16
    assert small.tensor("output").l2_reads == 0
    big = _run(SWEEP, num_pes=1, l1_size_elems=1000).layer
    assert big.tensor("input").l1_writes == 64
    assert small.runtime_cycles >= big.runtime_cycles


@pytest.mark.slow
def test_optimal_eviction_keeps_the_inputs_reused_soonest() -> None:
    # Furthest-next-use eviction at L1 = 68. After step 55 (x = 6 done, its output gone)
    # the L1 holds 8 weights + 56 inputs = 64. Steps 56..63 (x = 7) add 8 inputs and
    # out(0, 7): 73, so 5 evictions, from step 59 on; weight (0, c) is dead after step
    # 56 + c (never touched again), and dead elements go first: only weights leave. In
    # k = 1 the dead weights and used inputs make room: all 64 inputs hit, 64 fills (the
    # minimum). LRU at the same size fills 128.
    r = _run(SWEEP, num_pes=1, l1_size_elems=68, eviction="optimal").layer
    assert r.tensor("input").l1_writes == 64
    assert r.tensor("weight").l1_writes == 16


# -- a step larger than L1 (OVER): 4 steps on 1 PE, step k touches inputs c = 0, 1, weights
# (k, 0), (k, 1) and output k: 5 elements, 2 MACs.
OVER = """Network o { Layer L { Type: CONV
Dimensions { K: 4, C: 2, R: 1, S: 1, Y: 1, X: 1 }
Dataflow { TemporalMap(1,1) K; TemporalMap(2,2) C; SpatialMap(1,1) Y; TemporalMap(1,1) X;
  TemporalMap(1,1) R; TemporalMap(1,1) S; } } }"""


def test_a_step_larger_than_l1_streams_and_stalls() -> None:
    # L1 = 3 < 5: every step overflows (4 in the table's column). After step k output k
    # leaves (last touch) and 4 remain, 1 over: all were touched at k, so the lowest
    # (tensor, element) goes, input c = 0. Step k + 1 misses input 0 again (input 1 hits):
    # input fills 2 + 3 x 1 = 5 (L1 = 5 keeps both: 2). Weights are new every step: 8;
    # each output leaves once: 4.
    kw = {"num_pes": 1, "noc_bw_elems_per_cycle": 1, "noc_hop_latency_cycles": 1}
    over = _run(OVER, l1_size_elems=3, **kw).layer
    assert over.metric("l1_overflow_steps") == 4
    assert over.tensor("input").l1_writes == 5
    assert over.tensor("weight").l1_writes == 8
    assert over.tensor("output").l2_writes == 4
    # L1 = 5 holds a step but not two (W(k) u W(k+1) = 2 + 4 + 2 = 8 > 5): no double
    # buffering there either, 21 cycles (simulator value). The overflowing run also has
    # no double buffering and delivers 3 more elements, one per cycle on this bus, each
    # before its step can compute: 21 + 3 = 24.
    fits = _run(OVER, l1_size_elems=5, **kw).layer
    assert fits.metric("l1_overflow_steps") == 0
    assert fits.tensor("input").l1_writes == 2
    assert fits.runtime_cycles == 21
    assert over.runtime_cycles == 24
    full = _run(OVER, l1_size_elems=3, fast=False, **kw)
    assert stable(full.to_dict()) == stable(_run(OVER, l1_size_elems=3, **kw).to_dict())


# -- properties


def _moved(r) -> int:
    return sum(
        r.tensor(t).l1_writes + r.tensor(t).l2_reads + r.tensor(t).l2_writes
        for t in ("input", "weight", "output")
    )


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(_problems(), st.integers(2, 30), st.integers(1, 30))
def test_larger_l1_is_never_slower_nor_moves_more(problem, l1, extra) -> None:
    """LRU is a stack algorithm: a larger L1 holds a superset, so fewer fills and
    write-backs; double buffering (both steps' tiles fit) only switches on."""
    layer, mapping, hw, _policy = problem
    hw = hw.with_changes(noc_bw_elems_per_cycle=2, noc_hop_latency_cycles=1)
    entry = (layer, mapping)
    runs = [
        simulate(*entry, hw.with_changes(l1_size_elems=size), SimOptions(policy=REALISTIC)).layer
        for size in (l1, l1 + extra)
    ]
    if runs[0].metric("l1_overflow_steps"):
        return
    assert _moved(runs[1]) <= _moved(runs[0])
    assert runs[1].runtime_cycles <= runs[0].runtime_cycles


@settings(max_examples=30, deadline=None)
@given(
    _problems(),
    st.integers(3, 30),
    st.sampled_from(["bus", "mesh", "tree", "systolic"]),
    st.sampled_from(["lru", "optimal"]),
)
def test_fast_path_equals_simpy_under_l1_pressure(problem, l1, topology, eviction) -> None:
    layer, mapping, hw, _policy = problem
    hw = hw.with_changes(
        l1_size_elems=l1,
        l2_size_elems=40,
        topology=topology,
        noc_bw_elems_per_cycle=2,
        noc_hop_latency_cycles=1,
    )
    fast, full = (
        stable(
            simulate(
                layer,
                mapping,
                hw,
                SimOptions(policy=REALISTIC, fast_forward=ff, l1_eviction=eviction),
            ).to_dict()
        )
        for ff in (True, False)
    )
    assert fast == full


@pytest.mark.slow
@pytest.mark.parametrize("size", [100, 210, 100_000])
def test_mono_fast_path_equals_simpy(size: int) -> None:
    fast, full = (
        stable(_run(MONO, num_pes=16, l1_size_elems=size, fast=ff).to_dict())
        for ff in (True, False)
    )
    assert fast == full


def _reference_lru(layer, mapping, hw) -> tuple[int, int, int]:
    """Input and weight L1 fills and output L2 writes of the documented LRU L1, one
    element at a time in plain Python (an independent check of :mod:`metronome.sim.l1`)."""
    from metronome.sim.geometry import Geometry
    from metronome.sim.loopnest import LoopNest
    from metronome.sim.schedule import StepStream

    nest = LoopNest(layer, mapping, hw.num_pes)
    geometry = Geometry(layer, nest.dims)
    steps = []
    for step, schedules in StepStream(nest, memo=False):
        tiles = geometry.tiles(nest.pe_ranges(step.positions, step.inner, schedules))
        work = {}
        for p in np.flatnonzero(tiles.active).tolist():
            elems = set()
            for t in range(3):
                lo, hi = tiles.tensors[t]
                ranges = [range(int(a), int(b)) for a, b in zip(lo[:, p], hi[:, p], strict=True)]
                elems |= {(t, c) for c in itertools.product(*ranges)}
            work[p] = elems
        steps.append(work)
    last: dict[tuple[int, object], int] = {}
    for i, work in enumerate(steps):
        for p, elems in work.items():
            for e in elems:
                if e[0] == 2:
                    last[p, e] = i
    cache: dict[int, dict[object, int]] = {}
    fills = [0, 0]
    writes = 0
    for i, work in enumerate(steps):
        leaving = set()
        for p, elems in work.items():
            held = cache.setdefault(p, {})
            for e in elems:
                if e[0] < 2 and e not in held:
                    fills[e[0]] += 1
                held[e] = i
            for e in [e for e in elems if e[0] == 2 and last[p, e] == i]:
                leaving.add(e)
                del held[e]
            over = len(held) - hw.l1_size_elems
            # Least recently touched first, ties by (tensor, element); the step's own
            # elements (touched last) go too when they alone exceed L1.
            victims = sorted((s, e) for e, s in held.items())[: max(0, over)]
            for _, e in victims:
                del held[e]
                if e[0] == 2:
                    leaving.add(e)
        writes += len(leaving)
    return fills[0], fills[1], writes


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(_problems(), st.integers(2, 40))
def test_lru_equals_a_plain_python_cache(problem, l1) -> None:
    layer, mapping, hw, _policy = problem
    hw = hw.with_changes(l1_size_elems=l1)
    r = simulate(layer, mapping, hw, SimOptions(policy=REALISTIC)).layer
    fills_in, fills_w, writes = _reference_lru(layer, mapping, hw)
    assert r.tensor("input").l1_writes == fills_in
    assert r.tensor("weight").l1_writes == fills_w
    assert r.tensor("output").l2_writes == writes


# Output stationary per step, as ShiDianNao on VGG16: K and C outer, Y over 2 PEs, the
# window sliding over X. Each partial sum comes back once per C pass, a whole Y x X sweep
# later: a small L1 evicts it in between (a partial sum leaves and is read back from L2).
OS_SWEEP = """Network o { Layer L { Type: CONV
Dimensions { K: 2, C: 3, R: 3, S: 3, Y: %d, X: %d }
Dataflow { TemporalMap(1,1) K; TemporalMap(1,1) C; SpatialMap(Sz(R),1) Y;
  TemporalMap(Sz(S),1) X; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S; } } }"""


@pytest.mark.parametrize("steady", [True, False])
@pytest.mark.parametrize(("y", "x", "size"), [(8, 24, 40), (12, 34, 100)])
def test_fast_path_equals_simpy_with_bulk_repetitions_evicting_partial_sums(
    monkeypatch: pytest.MonkeyPatch, y: int, x: int, size: int, steady: bool
) -> None:
    """With the stale-steady-state bulk (:mod:`metronome.sim.l1_steady`) tried first, and
    without it (every bulk through ``bulk_calm``)."""
    from metronome.sim import fast as fast_module
    from metronome.sim import l1_bulk
    from metronome.sim.l1_outcome import StepOutcomes

    bulk, replay = l1_bulk.bulk_calm, StepOutcomes.replay
    bulk_steady = fast_module.bulk_steady
    evicting, replayed = [], []

    def counted(self, rep, *args):  # type: ignore[no-untyped-def]
        applied, agreed, evicted = bulk(self, rep, *args)
        evicting.append(applied > 0 and evicted[0].size > 0)
        return applied, agreed, evicted

    def counted_steady(l1, rep, *args):  # type: ignore[no-untyped-def]
        found = bulk_steady(l1, rep, *args) if steady else None
        evicting.append(found is not None and found[1].size > 0)
        return found

    def replays(self, *args):  # type: ignore[no-untyped-def]
        replayed.append(1)
        return replay(self, *args)

    monkeypatch.setattr(l1_bulk, "bulk_calm", counted)
    monkeypatch.setattr(fast_module, "bulk_steady", counted_steady)
    monkeypatch.setattr(StepOutcomes, "replay", replays)
    fast = _run(OS_SWEEP % (y, x), num_pes=2, l1_size_elems=size)
    # The cases this checks: repetitions that evict partial sums went in bulk, some
    # evicting other outputs than the logged repetition's translated (own records).
    assert any(evicting)
    assert replayed
    full = _run(OS_SWEEP % (y, x), num_pes=2, l1_size_elems=size, fast=False)
    assert stable(fast.to_dict()) == stable(full.to_dict())


def _same_next_touches(layer, mapping, hw, eviction: str) -> None:
    """The next-touch table the fast path builds from each geometry key's first keys,
    grouped (``record_future_steps``), equals the same table fed step by step."""
    run = RunContext(layer, mapping, hw, SimOptions(policy=REALISTIC, l1_eviction=eviction))
    assert run.l1 is not None
    grouped = run.l1.touches.table.copy()
    none = np.zeros(3, dtype=np.int64)
    blocks = [(s.index, run.future_keys((s, sch)), none, 1, 1) for s, sch in run.stream]
    run.l1.touches.record_future(blocks, len(blocks))
    assert np.array_equal(grouped, run.l1.touches.table)


@pytest.mark.parametrize("eviction", ["lru", "optimal"])
@pytest.mark.parametrize("text", [MONO, SWEEP, PSUM])
def test_next_touches_from_memoised_keys_on_repeated_segments(text: str, eviction: str) -> None:
    # MONO and SWEEP repeat segments moving their outputs, PSUM ones that do not.
    entry = parse_mapping_text(text).layers[0]
    hw = Hardware(num_pes=16, l1_size_elems=100)
    _same_next_touches(entry.layer, entry.mapping, hw, eviction)


@settings(max_examples=40, deadline=None)
@given(_problems(), st.integers(3, 30), st.sampled_from(["lru", "optimal"]))
def test_next_touches_from_memoised_keys_equal_step_by_step(problem, l1, eviction) -> None:
    layer, mapping, hw, _policy = problem
    _same_next_touches(layer, mapping, hw.with_changes(l1_size_elems=l1), eviction)


@pytest.mark.parametrize(("y", "x", "size"), [(8, 24, 40), (12, 34, 100)])
def test_replay_signature_is_the_replayed_steps_signature(
    monkeypatch: pytest.MonkeyPatch, y: int, x: int, size: int
) -> None:
    """A replayed step's record is looked up by :meth:`StepOutcomes.replay_signature`,
    built from :meth:`StepOutcomes.replay`: both must give the same signature, and steps
    sending home different outputs different ones."""
    from metronome.sim.l1_outcome import StepOutcomes

    signature = StepOutcomes.replay_signature
    seen: list[bytes] = []

    def checked(self, wk, nk, hit, out_keys, out_base):  # type: ignore[no-untyped-def]
        sig = signature(self, wk, nk, hit, out_keys, out_base)
        assert sig == StepOutcomes.replay(self, wk, nk, hit, out_keys, out_base).signature
        seen.append(sig)
        return sig

    monkeypatch.setattr(StepOutcomes, "replay_signature", checked)
    fast = _run(OS_SWEEP % (y, x), num_pes=2, l1_size_elems=size)
    # Steps were replayed, with different outcomes.
    assert len(set(seen)) > 1
    full = _run(OS_SWEEP % (y, x), num_pes=2, l1_size_elems=size, fast=False)
    assert stable(fast.to_dict()) == stable(full.to_dict())


@pytest.mark.parametrize("joined", [1, 8, 64])
@pytest.mark.parametrize("text", [MONO, OS_SWEEP % (8, 24)])
def test_short_segments_through_l2_together_equal_simpy(
    monkeypatch: pytest.MonkeyPatch, text: str, joined: int
) -> None:
    """Short consecutive segments go through L2 in one pass (:meth:`L2Memory.blocks`),
    longer ones alone, in step order: with the join limit ``joined`` steps (segments of
    more than a quarter alone), under L1 residency and an L2 small enough to evict, the
    fast path equals SimPy; some passes joined several segments and some went alone."""
    from metronome.sim import fast as fast_module
    from metronome.sim.memory import L2Memory

    blocks = L2Memory.blocks
    sizes: list[int] = []

    def counted(self, first, parts, dims):  # type: ignore[no-untyped-def]
        sizes.append(len(parts))
        return blocks(self, first, parts, dims)

    monkeypatch.setattr(fast_module, "_JOINED_STEPS", joined)
    monkeypatch.setattr(L2Memory, "blocks", counted)
    hw = {"num_pes": 2 if text != MONO else 16, "l1_size_elems": 60, "l2_size_elems": 50}
    fast = _run(text, **hw)
    assert max(sizes) > 1 or joined == 1
    assert min(sizes) == 1
    full = _run(text, fast=False, **hw)
    assert stable(fast.to_dict()) == stable(full.to_dict())
