"""The NoC graph must not change the previous issue's bus: results pinned in
``data/bus_issue4.json`` (written by the issue-4 simulator, commit df165df, before the NoC
work) are reproduced key by key. New keys may be added; no pinned value may change,
except the timing of the bus with latency 3: a transfer held the medium until its tail
(``ceil(n/B) + 2`` cycles) and now only for its serialisation (``ceil(n/B)``, pipelined
links), so those runs keep every count but may only get faster. With latency 1 both
rules hold the medium ``ceil(n/B)`` cycles: nothing changes."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest

from sim import MAESTRO, REALISTIC, SimOptions, simulate
from spec.layer import LayerType, make_layer
from spec.loader import load_network

from .helpers import DATA, case, stable, xc_hw

PINNED = json.loads((Path(__file__).parent / "data" / "bus_issue4.json").read_text())
_POLICIES = {"maestro": MAESTRO, "realistic": REALISTIC}
_MID = make_layer(
    name="mid",
    type_=LayerType.CONV,
    declared={"K": 4, "C": 3, "R": 3, "S": 3, "Y": 12, "X": 12},
)


def _rerun(key: str) -> dict[str, object]:
    parts = key.split("|")
    policy = _POLICIES[parts[1]]
    if parts[0].endswith(".m"):
        entry = load_network(DATA / "maestro-reference" / "table2" / parts[0]).layers[0]
        lat, bw = (int(x) for x in parts[2][3:].split("bw"))
        hw = xc_hw(
            16,
            noc_bw_elems_per_cycle=bw,
            noc_latency_cycles=lat,
            l2_size_elems=600,
            adder_latency_cycles=2,
        )
        return stable(simulate(_MID, entry.mapping, hw, SimOptions(policy=policy)).to_dict())
    pes = {"x04_psum_writeback": 1, "x01_ws_kspatial": 4, "x06_halo": 6}
    pes |= {"x09_two_level": 8, "x12_gemm": 4}
    layer, mapping = case(parts[0])
    return stable(
        simulate(layer, mapping, xc_hw(pes[parts[0]]), SimOptions(policy=policy)).to_dict()
    )


def test_pinned_cases_cover_both_policies_and_every_table2_dataflow() -> None:
    assert len(PINNED) == 30
    assert len(glob.glob(str(DATA / "maestro-reference" / "table2" / "*.m"))) == 5


@pytest.mark.parametrize("key", sorted(PINNED))
def test_bus_results_equal_the_previous_issue(key: str) -> None:
    now = _rerun(key)
    old = PINNED[key]
    free = _PIPELINED if "lat3" in key else {"notes"}
    changed = {k: (old[k], now.get(k)) for k in old if k not in free and now.get(k) != old[k]}
    assert not changed
    if "lat3" in key:
        assert now["runtime_cycles"] == _LAT3_RUNTIMES[key]
        assert now["runtime_cycles"] <= old["runtime_cycles"]


_PIPELINED = {
    "notes",
    "runtime_cycles",
    "utilization",
    "avg_active_pes",
    "per_pe",
    "pe_wait_data_cycles_total",
    "pe_wait_drain_cycles_total",
    "noc_bw_req_avg_elems_per_cycle",
    "offchip_bw_req_elems_per_cycle",
    "noc_down_busy_cycles",
    "noc_up_busy_cycles",
    "noc_queueing_cycles",
}
"""Keys that depend on how long a transfer holds the bus."""

_LAT3_RUNTIMES = {
    # From the simulator with pipelined links (old pinned value in the comment).
    "t2_eyeriss_rs.m|maestro|lat3bw2": 1811,  # 2289
    "t2_eyeriss_rs.m|realistic|lat3bw2": 2072,  # 2425
    "t2_nlr.m|maestro|lat3bw2": 3945,  # 3945
    "t2_nlr.m|realistic|lat3bw2": 3722,  # 3722
    "t2_nvdla_ws.m|maestro|lat3bw2": 1886,  # 1886
    "t2_nvdla_ws.m|realistic|lat3bw2": 1886,  # 1886
    "t2_shidiannao_os.m|maestro|lat3bw2": 2174,  # 2234
    "t2_shidiannao_os.m|realistic|lat3bw2": 1349,  # 1364
    "t2_ws.m|maestro|lat3bw2": 1289,  # 1289
    "t2_ws.m|realistic|lat3bw2": 1145,  # 1145
}
