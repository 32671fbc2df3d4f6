"""``metronome simulate`` with the NoC flags: topology, arbitration, L2 position, plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metronome.validation.cli import main

from .helpers import CROSSCHECK


def test_simulate_on_a_mesh_writes_the_noc_section_and_both_pictures(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "r.json"
    code = main(
        [
            "simulate",
            str(CROSSCHECK / "x01_ws_kspatial.m"),
            "--num-pes",
            "4",
            "--noc-bw",
            "2",
            "--noc-hop-latency",
            "1",
            "--topology",
            "mesh",
            "--mesh-l2-position",
            "edge",
            "--noc-arbitration",
            "round_robin",
            "--plot",
            str(tmp_path / "plots"),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "NoC mesh: runtime = compute" in err
    layer = json.loads(out.read_text())["layers"][0]
    noc = layer["noc"]
    assert noc["topology"] == "mesh"
    assert noc["arbitration"] == "round_robin"
    assert {"src", "dst", "plane", "utilization", "peak_queue_len"} <= set(noc["links"][0])
    assert noc["hottest_links"][0]["utilization"] == layer["noc_max_link_utilization"]
    split = sum(layer[f"runtime_split_{k}_cycles"] for k in ("compute", "transfer", "queueing"))
    assert split == layer["runtime_cycles"]
    pictures = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pictures == ["00_L_noc.png", "00_L_timeline.png"]
    assert all((tmp_path / "plots" / p).stat().st_size > 10_000 for p in pictures)


def test_noc_flags_apply_on_top_of_a_hardware_file(tmp_path: Path, capsys) -> None:
    hw = tmp_path / "hw.m"
    hw.write_text("num_pes: 4\nnoc_bw_cstr: 2\n")
    code = main(
        ["simulate", str(CROSSCHECK / "x01_ws_kspatial.m"), "--hw", str(hw), "--topology", "tree"]
    )
    assert code == 0
    assert "NoC tree" in capsys.readouterr().err


def test_json_link_utilisation_redraws_on_the_rebuilt_topology(tmp_path: Path) -> None:
    """The harness only has the JSON and the hardware: rebuilding the topology and
    mapping the labelled rows back gives the run's utilisation on the graph's edges."""
    from metronome.sim import SimOptions, simulate
    from metronome.sim.topology import build_topology, utilization_by_edge

    from .helpers import case, xc_hw

    layer, mapping = case("x01_ws_kspatial")
    hw = xc_hw(4, topology="mesh", noc_bw_elems_per_cycle=2, noc_hop_latency_cycles=1)
    result = simulate(layer, mapping, hw, SimOptions())
    rows = json.loads(json.dumps(result.to_dict()))["noc"]["link_utilization"]
    graph = build_topology(hw)
    assert utilization_by_edge(graph, rows) == result.link_utilization
    assert set(result.link_utilization) <= set(graph.edges)


def test_header_cycles_flag_slows_small_messages_and_rejects_bad_values(capsys) -> None:
    """x09 on an 8-PE mesh sends one-element messages: a 2-cycle header makes each take
    3 cycles of a link instead of 1, so the run is slower; a negative or non-integer
    value is refused with exit 2 and nothing run."""
    args = ["simulate", str(CROSSCHECK / "x09_two_level.m"), "--num-pes", "8"]
    args += ["--topology", "mesh", "--layer", "A"]
    runtimes = []
    for header in ("0", "2"):
        assert main([*args, "--noc-header-cycles", header]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if x.split()[:1] == ["A"])
        runtimes.append(int(line.split()[1]))
    assert runtimes[1] > runtimes[0]
    assert main([*args, "--noc-header-cycles", "-1"]) == 2
    assert "noc_header_cycles must be an integer >= 0, got -1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*args, "--noc-header-cycles", "x"])
    assert exc.value.code == 2


def test_header_cycles_is_a_yaml_hardware_key_checked_at_its_line(tmp_path: Path) -> None:
    from metronome.spec.scenario import load_scenario
    from metronome.spec.source import SpecError

    def scenario(value: str) -> Path:
        path = tmp_path / f"s{value}.yaml"
        path.write_text(
            f"name: h\nnetwork:\n  file: {CROSSCHECK / 'x09_two_level.m'}\n"
            f"hardware:\n  num_pes: 8\n  topology: mesh\n  noc_header_cycles: {value}\n"
        )
        return path

    assert load_scenario(scenario("3")).hardware.noc_header_cycles == 3
    with pytest.raises(SpecError) as exc:
        load_scenario(scenario("-1"))
    assert f"{tmp_path / 's-1.yaml'}:7:22: error:" in exc.value.render()


def test_offchip_outstanding_flag_reaches_the_hardware_and_rejects_zero(
    tmp_path: Path, capsys
) -> None:
    """``--offchip-outstanding N`` sets how many off-chip requests may be in flight (the
    JSON echoes the hardware); 0 is refused with exit 2 and no file written."""
    out = tmp_path / "r.json"
    args = ["simulate", str(CROSSCHECK / "x01_ws_kspatial.m"), "--num-pes", "4"]
    assert main([*args, "--offchip-outstanding", "3", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["hardware"]["offchip_max_outstanding_requests"] == 3
    out.unlink()
    assert main([*args, "--offchip-outstanding", "0", "--json", str(out)]) == 2
    assert "offchip_max_outstanding_requests must be an integer > 0, got 0" in (
        capsys.readouterr().err
    )
    assert not out.exists()
