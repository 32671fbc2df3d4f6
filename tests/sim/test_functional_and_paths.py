"""Functional output equals numpy on every shipped mapping (shrunk); the fast path equals
the full SimPy run; same inputs give the same result."""

from __future__ import annotations

import glob

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.sim import MAESTRO, REALISTIC, SimOptions, simulate
from metronome.sim.functional import check_inputs, reference_output
from metronome.spec.hardware import Hardware
from metronome.spec.layer import LayerType, make_layer
from metronome.spec.loader import load_network
from metronome.spec.mapping import MapDirective, Mapping
from metronome.spec.source import SpecError

from .helpers import DATA, covers_every_mac, random_values, shrink, stable, xc_hw

_FILES = sorted(
    glob.glob(str(DATA / "maestro-inputs" / "data" / "mapping" / "*.m"))
    + glob.glob(str(DATA / "maestro-inputs" / "validation" / "**" / "*.m"), recursive=True)
    + glob.glob(str(DATA.parent.parent / "scenarios" / "**" / "*.m"), recursive=True)
)


def _shipped_cases() -> list[tuple[str, object, object]]:
    seen: dict[tuple[object, ...], tuple[str, object, object]] = {}
    for path in _FILES:
        try:
            network = load_network(path)
        except SpecError:
            continue  # hardware files live beside the mappings in scenarios/
        for entry in network.layers:
            if entry.mapping is None:
                continue
            layer, mapping = shrink(entry.layer, entry.mapping)
            key = (layer.type, layer.sizes, layer.stride_y, layer.stride_x, str(mapping))
            seen.setdefault(key, (f"{path.split('/')[-1]}:{entry.name}", layer, mapping))
    return list(seen.values())


_CASES = _shipped_cases()


@pytest.mark.parametrize("item", _CASES, ids=[c[0] for c in _CASES])
def test_functional_output_equals_numpy_on_shipped_mappings(item) -> None:
    _name, layer, mapping = item
    pes = max(2, 2 * int(np.prod(mapping.cluster_sizes or (1,))))
    values = random_values(layer, seed=1)
    result = simulate(layer, mapping, Hardware(num_pes=pes), values=values)
    expected = reference_output(layer, *check_inputs(layer, values)[:2])
    complete = covers_every_mac(layer, mapping)
    # The simulator's own coverage report must agree with the independent count.
    assert (result.layer.metric("macs_missing") == 0) == complete
    if not complete:
        pytest.skip("the mapping leaves MACs out on the shrunk layer (counted independently)")
    assert np.array_equal(result.output, expected)


def _conv_k4_y5() -> object:
    # K=4 outputs channels, R=3 taps over Y=5 input rows: Y' = 5 - 3 + 1 = 3 outputs.
    return make_layer(
        name="t",
        type_=LayerType.CONV,
        declared={"N": 1, "K": 4, "C": 1, "R": 3, "S": 1, "Y": 5, "X": 1},
        stride_y=1,
        stride_x=1,
    )


@pytest.mark.parametrize(
    ("directives", "complete"),
    [
        # Rows 0-2, 1-3, 2-4 hold the windows of outputs 0, 1, 2: every MAC.
        (((True, "K", 1, 1), (False, "Y", 3, 1), (False, "R", 3, 3)), True),
        # Rows 0-2 and 3-4: only output 0 has all three taps in one tile.
        (((True, "K", 1, 1), (False, "Y", 3, 3), (False, "R", 3, 3)), False),
        # Channels 0 and 2 only: tiles start every 2, one long.
        (((True, "K", 1, 2), (False, "Y", 3, 1), (False, "R", 3, 3)), False),
    ],
)
def test_independent_coverage_count_agrees_with_hand_cases_and_the_simulator(
    directives: tuple[tuple[bool, str, int, int], ...], complete: bool
) -> None:
    layer = _conv_k4_y5()
    mapping = Mapping(tuple(MapDirective(*d) for d in directives))
    assert covers_every_mac(layer, mapping) is complete
    result = simulate(layer, mapping, Hardware(num_pes=4))
    assert (result.layer.metric("macs_missing") == 0) is complete


_MID = sorted(glob.glob(str(DATA / "maestro-reference" / "table2" / "*.m")))


_NOCS = {
    "bus": {},
    "mesh": {"topology": "mesh", "noc_hop_latency_cycles": 1},
    "tree": {"topology": "tree", "noc_hop_latency_cycles": 1, "adder_latency_cycles": 2},
    "systolic-rr": {
        "topology": "systolic",
        "noc_hop_latency_cycles": 2,
        "noc_arbitration": "round_robin",
    },
}


# The bus in `pytest -m "not slow"`; the other networks take seconds per mapping.
_PATHS = [
    pytest.param(
        noc, policy, id=f"{noc}-{policy.name}", marks=() if noc == "bus" else pytest.mark.slow
    )
    for noc in _NOCS
    for policy in (MAESTRO, REALISTIC)
    if noc != "systolic-rr" or policy is REALISTIC
]


@pytest.mark.parametrize("path", _MID, ids=[p.split("/")[-1] for p in _MID])
@pytest.mark.parametrize(("noc", "policy"), _PATHS)
def test_fast_path_equals_full_simpy_run(path: str, noc: str, policy) -> None:
    """Every counter, per-PE detail and per-link statistic of the fast path equals the
    full SimPy run, on the bus, a mesh, a fat tree, and a systolic array arbitrated
    round robin (whose phase outcomes depend on the arbiters' state)."""
    entry = load_network(path).layers[0]
    layer = make_layer(
        name="mid",
        type_=LayerType.CONV,
        declared={"K": 4, "C": 3, "R": 3, "S": 3, "Y": 12, "X": 12},
    )
    hw = xc_hw(16, noc_bw_elems_per_cycle=4, l2_size_elems=600, **_NOCS[noc])
    runs = [
        simulate(layer, entry.mapping, hw, SimOptions(policy=policy, fast_forward=ff))
        for ff in (True, False)
    ]
    fast, full = (stable(r.to_dict()) for r in runs)
    assert fast == full
    assert runs[0].link_utilization == runs[1].link_utilization
    assert runs[1].layer.metric("simpy_events") > 0


@pytest.mark.parametrize("topology", ["bus", "mesh", "tree"])
def test_same_inputs_give_identical_results(topology: str) -> None:
    entry = load_network(_MID[0]).layers[0]
    layer, mapping = shrink(entry.layer, entry.mapping)
    hw = xc_hw(16, topology=topology, noc_bw_elems_per_cycle=2, noc_hop_latency_cycles=1)
    first = simulate(layer, mapping, hw).to_dict()
    second = simulate(layer, mapping, hw).to_dict()
    assert first == second


@st.composite
def _problems(draw):
    r = draw(st.integers(1, 3))
    sizes = {
        "K": draw(st.integers(1, 3)),
        "C": draw(st.integers(1, 3)),
        "R": r,
        "S": 1,
        "Y": draw(st.integers(r, r + 3)),
        "X": draw(st.integers(1, 3)),
    }
    stride = draw(st.integers(1, 2))
    layer = make_layer(name="h", type_=LayerType.CONV, declared=sizes, stride_y=stride)
    dims = draw(st.permutations(["K", "C", "Y", "X", "R"]))
    spatial = draw(st.sampled_from(dims))
    directives = []
    for d in dims:
        n = layer.size(d)
        if d == "R":
            size = offset = n
        elif d == "Y":
            size = draw(st.integers(r, n))
            offset = draw(st.integers(1, max(1, size - r + 1)))
        else:
            size = draw(st.integers(1, n))
            offset = draw(st.integers(1, size))
        directives.append(MapDirective(d == spatial, d, size, offset))
    pes = draw(st.integers(1, 4))
    lanes = draw(st.integers(1, 3))
    policy = draw(st.sampled_from([MAESTRO, REALISTIC]))
    return layer, Mapping(tuple(directives)), Hardware(num_pes=pes, simd_lanes=lanes), policy


@pytest.mark.slow
@given(_problems())
def test_generated_layers_compute_the_right_output(problem) -> None:
    layer, mapping, hw, policy = problem
    values = random_values(layer)
    result = simulate(layer, mapping, hw, SimOptions(policy=policy), values=values)
    r = result.layer
    if r.metric("macs_missing") == 0:
        assert r.macs >= layer.macs
        expected = reference_output(layer, *check_inputs(layer, values)[:2])
        assert np.array_equal(result.output, expected)
    assert r.runtime_cycles * hw.num_pes * hw.simd_lanes >= r.macs
    for key, value in r.flat().items():
        assert value >= 0, key
        if key not in ("energy_nj", "utilization") and not key.endswith(
            ("per_cycle", "avg_active_pes", "_utilization")
        ):
            assert float(value).is_integer(), key


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(_problems(), st.integers(3, 40), st.sampled_from(["bus", "mesh", "tree", "systolic"]))
def test_generated_layers_fast_path_equals_simpy_under_l2_pressure(problem, l2, topology) -> None:
    """Small L2 capacities force evictions at every few steps: the fast path's batched
    residency, repeated-block timing and phase oracle still equal the SimPy run."""
    layer, mapping, hw, policy = problem
    hw = hw.with_changes(
        l2_size_elems=l2, topology=topology, noc_bw_elems_per_cycle=2, noc_hop_latency_cycles=1
    )
    fast, full = (
        stable(simulate(layer, mapping, hw, SimOptions(policy=policy, fast_forward=ff)).to_dict())
        for ff in (True, False)
    )
    assert fast == full


def test_segments_expand_to_the_step_stream() -> None:
    """The fast path walks segments (a block of steps repeated, translated per repeat);
    expanded, they are exactly the step-by-step stream: indices, positions, keys, bases."""
    from metronome.sim.loopnest import LoopNest
    from metronome.sim.schedule import StepStream

    mid = make_layer(
        name="mid",
        type_=LayerType.CONV,
        declared={"K": 4, "C": 3, "R": 3, "S": 3, "Y": 12, "X": 12},
    )
    problems = [
        (layer, m, max(2, 2 * int(np.prod(m.cluster_sizes or (1,))))) for _, layer, m in _CASES
    ]
    problems += [(mid, load_network(path).layers[0].mapping, 16) for path in _MID]
    checked = 0
    for layer, mapping, pes in problems:
        nest = LoopNest(layer, mapping, pes)
        per_step = [(s.index, s.positions, s.inner, s.key, s.base) for s, _ in StepStream(nest)]
        expanded = [
            (s.index, s.positions, s.inner, s.key, s.base)
            for seg in StepStream(nest).segments()
            for b in range(seg.count)
            for s in (seg.step_at(b, j) for j in range(len(seg.steps)))
        ]
        assert expanded == per_step
        checked += any(seg.count > 1 for seg in StepStream(nest).segments())
    # A block repeats only over loops of at least 5 trips (see StepStream._run_loop).
    assert checked >= 4
