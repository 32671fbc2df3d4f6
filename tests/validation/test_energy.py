"""Both engines price their counts with one function, so equal counts give equal energy.

Golden energies are hand-derived from counts; the counts are the MAESTRO reference
numbers of ``scenarios/crosscheck/x01_ws_kspatial__pe4.yaml`` (analytic) and the
simulator's own counts, derived by hand below (simulator).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metronome.analytic.api import analyze
from metronome.sim import MAESTRO, REALISTIC, Policy, SimOptions, simulate
from metronome.spec.energy import AccessCounts, energy_table
from metronome.spec.maestro import parse_hw_file, parse_mapping_file
from metronome.spec.results import LayerResult

CROSS = Path(__file__).parent.parent.parent / "scenarios" / "crosscheck"
EYERISS = energy_table("eyeriss65")
MAC_NJ = 0.00023
CASES = [
    ("x01_ws_kspatial", "xc_pe4_bw64"),
    ("x05_spatial_reduction", "xc_pe4_bw64"),
    ("x07_stride2", "xc_pe1_bw64"),
    ("x12_gemm", "xc_pe4_bw64"),
]


def _engines(map_name: str, hw_name: str, policy: Policy) -> tuple[LayerResult, LayerResult]:
    entry = parse_mapping_file(CROSS / "maps" / f"{map_name}.m").layers[0]
    hardware = parse_hw_file(CROSS / "hw" / f"{hw_name}.m")
    mapping = entry.require_mapping()
    ours = analyze(entry.layer, mapping, hardware, energy="eyeriss65")
    options = SimOptions(policy=policy, energy_table="eyeriss65")
    return ours, simulate(entry.layer, mapping, hardware, options).layer


def test_energy_nj_prices_each_kind_once() -> None:
    """2 MACs x 1 + 3 L1 x 1 + 5 L2 x 6 + 7 hops x 2 + 11 off-chip x 200 = 2249 MAC
    energies of eyeriss65 (Chen et al.'s normalised costs)."""
    counts = AccessCounts(
        macs=2, l1_accesses=3, l2_accesses=5, noc_elem_hops=7, offchip_accesses=11
    )
    assert EYERISS.energy_nj(counts) == pytest.approx(2249 * MAC_NJ, rel=1e-12)
    assert EYERISS.breakdown_nj(counts)["noc"] == pytest.approx(14 * MAC_NJ, rel=1e-12)


def test_analytic_energy_of_x01_by_hand() -> None:
    """x01 (K=4 spatial over 4 PEs, X=8 temporal) with MAESTRO's counts: 32 MACs;
    L1 = input 32+8, weight 32+4, output 32+32 = 140; L2 = input 8+8, weight 4+4,
    output 32+32 = 88; NoC = 1 hop x (8 input + 4 weight L2 reads + 32 output L2
    writes) = 44; off-chip = 8 + 4 L2 fills + 32 outputs = 44. Energy = 0.00023 x
    (32 + 140 + 6 x 88 + 2 x 44 + 200 x 44) = 0.00023 x 9588 nJ."""
    ours, _ = _engines("x01_ws_kspatial", "xc_pe4_bw64", MAESTRO)
    assert AccessCounts.of(ours) == AccessCounts(
        macs=32, l1_accesses=140, l2_accesses=88, noc_elem_hops=44, offchip_accesses=44
    )
    assert ours.metric("energy_nj") == pytest.approx(9588 * MAC_NJ, rel=1e-12)


def test_simulator_energy_of_x01_by_hand() -> None:
    """The simulator (maestro policy) on x01: L1 = input 32 reads + 32 writes (a fresh
    column every step on each PE), weight 32 + 4, output 32 + 32 = 164; L2 = input
    8+8, weight 4+4, output 0 reads + 32 writes = 56; on the bus 12 elements go down
    and 32 come up, 1 hop each = 44; off-chip 12 fills + 32 outputs = 44. Energy =
    0.00023 x (32 + 164 + 6 x 56 + 2 x 44 + 200 x 44) = 0.00023 x 9420 nJ."""
    _, sim = _engines("x01_ws_kspatial", "xc_pe4_bw64", MAESTRO)
    assert AccessCounts.of(sim) == AccessCounts(
        macs=32, l1_accesses=164, l2_accesses=56, noc_elem_hops=44, offchip_accesses=44
    )
    assert sim.metric("energy_nj") == pytest.approx(9420 * MAC_NJ, rel=1e-9)


@pytest.mark.parametrize("policy", [MAESTRO, REALISTIC], ids=lambda p: p.name)
@pytest.mark.parametrize(("map_name", "hw_name"), CASES)
def test_engines_agree_on_every_kind_whose_count_agrees(
    map_name: str, hw_name: str, policy: Policy
) -> None:
    """Each engine's energy is the table's price of the counts it reports, and a kind
    of action both engines count alike costs both the same. Off-chip traffic and MACs
    agree on every case here (each input and weight element is fetched once, each
    output written once), so those parts must be equal."""
    ours, sim = _engines(map_name, hw_name, policy)
    counts = {"analytic": AccessCounts.of(ours), "sim": AccessCounts.of(sim)}
    assert ours.metric("energy_nj") == pytest.approx(
        EYERISS.energy_nj(counts["analytic"]), rel=1e-12
    )
    assert sim.metric("energy_nj") == pytest.approx(EYERISS.energy_nj(counts["sim"]), abs=1e-9)
    assert counts["analytic"].offchip_accesses == counts["sim"].offchip_accesses
    assert counts["analytic"].macs == counts["sim"].macs
    parts = {name: EYERISS.breakdown_nj(c) for name, c in counts.items()}
    for kind, field in (
        ("mac", "macs"),
        ("l1", "l1_accesses"),
        ("l2", "l2_accesses"),
        ("noc", "noc_elem_hops"),
        ("offchip", "offchip_accesses"),
    ):
        if getattr(counts["analytic"], field) == getattr(counts["sim"], field):
            assert parts["analytic"][kind] == parts["sim"][kind], kind
