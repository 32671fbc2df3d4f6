"""``metronome sweep``: the vectorised sweep equals ``metronome.analytic.analyze`` design by
design, the Pareto front is the brute-force one, outputs resume and do not depend on
the executor, and bad spaces fail at file:line:col with exit 2."""

from __future__ import annotations

import json
import random
import shlex
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.analytic import analyze
from metronome.analytic.report import hardware_cost
from metronome.spec.loader import load_network
from metronome.spec.source import SpecError
from metronome.spec.space import load_space
from metronome.validation.cli import main
from metronome.validation.sweep import INFEASIBLE_REASONS, chunk_count, evaluate_chunk, pareto_mask
from metronome.validation.sweep_run import (
    Executor,
    _design_hardware,
    comparable,
    kendall_tau,
    run_sweep,
)
from tests.conftest import REPO

MAPS = REPO / "tests/data/maestro-inputs/data/mapping"

SPACE = f"""\
name: tiny
network:
  file: {MAPS}/Resnet50_kcp_ws.m
  layers: [CONV2_1_2, CONV3_1_1]
  shrink: {{Y: 16, X: 16}}
axes:
  pes: [32, 64, 96]
  noc_bw: [1, 3, 16, 2147483647]
  hop_latency: [0, 2]
  offchip_bw: [5, 70000]
  lanes: [1, 3]
  l1: [40, 60, 2147483647]
  l2: [2000, 20000]
  topology: [bus, mesh]
constraints:
  - l1 * pes + l2 <= 10000000 or pes < 50
chunk_designs: 700
"""

TEMPLATE = f"""\
name: mapped
network:
  file: {MAPS}/Resnet50_kcp_ws.m
  layers: [CONV2_1_2]
  shrink: {{Y: 12, X: 12}}
axes:
  pes: [16, 64]
  noc_bw: [2, 64]
  l1: [2147483647]
mapping:
  style: kcp_ws
  params:
    c_tile: [8, 64]
    cluster: [4, 16, 128]
chunk_designs: 5
"""


def _space(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _all_designs(space_path: Path) -> dict[int, dict[str, object]]:
    """Every design's result from the chunks: the rows the prefilter keeps plus counts."""
    space = load_space(space_path)
    return {i: evaluate_chunk(space, i) for i in range(chunk_count(space))}


@pytest.mark.parametrize("text", [SPACE, TEMPLATE])
def test_front_designs_equal_the_scalar_model(tmp_path: Path, text: str) -> None:
    """Every front row (and a sample of the front's commands) against analyze()."""
    space = load_space(_space(tmp_path, text))
    out = tmp_path / "out"
    run_sweep(space, out, Executor(), plots=False, progress=lambda *a: None)
    lines = (out / "front.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(",", len(header) - 1), strict=True)) for line in lines[1:]]
    assert rows
    for row in random.Random(1).sample(rows, min(12, len(rows))):
        values = space.design_values(int(row["design"]))
        argv = shlex.split(row["command"])
        network = load_network(argv[2])
        hardware = _design_hardware(values)
        results = [analyze(e.layer, e.require_mapping(), hardware) for e in network.layers]
        assert int(row["runtime_cycles"]) == sum(r.runtime_cycles for r in results)
        energy = 0.0
        for r in results:
            energy += r.metric("energy_nj")
        assert float(row["energy_nj"]) == energy
        assert int(row["macs"]) == sum(r.macs for r in results)
        for key in (
            "l1_size_req_elems",
            "l2_size_req_elems",
            "noc_bw_req_peak_elems_per_cycle",
            "offchip_bw_req_elems_per_cycle",
        ):
            assert int(row[key]) == max(r.metric(key) for r in results), key
        if len(results) == 1:
            assert float(row["utilization"]) == results[0].metric("utilization")
        cost = hardware_cost(
            hardware.num_pes,
            hardware.simd_lanes,
            min(hardware.noc_bw_elems_per_cycle, 2**31 - 1),
            hardware.l1_size_elems,
            hardware.l2_size_elems,
        )
        assert float(row["chip_area_um2"]) == cost.area_um2


def test_every_design_is_counted_and_classified(tmp_path: Path) -> None:
    """Feasibility of every design of the small space, recomputed one by one."""
    path = _space(tmp_path, SPACE)
    space = load_space(path)
    results = _all_designs(path)
    feasible = sum(int(r["feasible"][0]) for r in results.values())
    reasons = sum(r["reasons"] for r in results.values())
    expected_reasons = dict.fromkeys(INFEASIBLE_REASONS, 0)
    expected_feasible = 0
    needs: dict[tuple[object, ...], tuple[int, int, int] | None] = {}
    best = {a.name: [None] * len(a.values) for a in space.axes}
    for design in range(space.designs):
        values = space.design_values(design)
        key = tuple(values[n] for n in ("pes", "noc_bw", "hop_latency", "offchip_bw", "lanes"))
        if key not in needs:
            hardware = _design_hardware(values)
            try:
                res = [
                    analyze(e.layer, e.require_mapping(), hardware) for e in space.network.layers
                ]
            except SpecError:
                needs[key] = None
            else:
                needs[key] = (
                    max(r.metric("l1_size_req_elems") for r in res),
                    max(r.metric("l2_size_req_elems") for r in res),
                    sum(r.runtime_cycles for r in res),
                )
        need = needs[key]
        if need is None:
            expected_reasons["mapping"] += 1
            continue
        l1, l2, runtime = need
        if l1 > int(values["l1"]):
            expected_reasons["l1"] += 1
        elif l2 > int(values["l2"]):
            expected_reasons["l2"] += 1
        elif not (
            int(values["l1"]) * int(values["pes"]) + int(values["l2"]) <= 10000000
            or int(values["pes"]) < 50
        ):
            expected_reasons["constraints"] += 1
        else:
            expected_feasible += 1
            for axis in space.axes:
                at = axis.values.index(values[axis.name])
                seen = best[axis.name][at]
                best[axis.name][at] = runtime if seen is None else min(seen, runtime)
    assert feasible == expected_feasible
    for axis in space.axes:
        counts = sum(r[f"count.{axis.name}"] for r in results.values())
        assert int(counts.sum()) == feasible
        fastest = np.minimum.reduce([r[f"best.{axis.name}"] for r in results.values()])
        nothing = np.iinfo(np.int64).max
        assert [None if v == nothing else int(v) for v in fastest] == best[axis.name]
    assert dict(zip(INFEASIBLE_REASONS, reasons.tolist(), strict=True)) == expected_reasons
    assert all(expected_reasons.values())


def _brute_front(points: list[tuple[float, float, float]]) -> list[bool]:
    def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    return [not any(dominates(q, p) for q in points) for p in points]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*(st.integers(0, 6),) * 3), max_size=40))
def test_pareto_mask_is_the_brute_force_front(points: list[tuple[int, int, int]]) -> None:
    arrays = [np.asarray([p[i] for p in points], dtype=np.float64) for i in range(3)]
    got = pareto_mask(arrays[0].astype(np.int64), arrays[1], arrays[2])
    assert got.tolist() == _brute_front([tuple(map(float, p)) for p in points])


def test_kendall_tau_hand_values() -> None:
    # Identical order: all 3 pairs concordant -> 1; reversed -> -1.
    assert kendall_tau([1, 2, 3], [10, 20, 30]) == 1.0
    assert kendall_tau([1, 2, 3], [30, 20, 10]) == -1.0
    # Pairs (1,2) C, (1,3) C, (2,3) D -> (2 - 1) / 3.
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)


@pytest.mark.slow
def test_resume_and_executors_give_identical_files(tmp_path: Path) -> None:
    path = _space(tmp_path, SPACE)
    space = load_space(path)
    quiet = {"progress": lambda *a: None}
    first = run_sweep(space, tmp_path / "a", Executor(), **quiet)
    reference = (tmp_path / "a" / "front.csv").read_bytes()
    # Lose two chunks: the re-run evaluates just those and writes the same files.
    chunks = sorted((tmp_path / "a" / "chunks").glob("chunk-*.npz"))
    for lost in chunks[1:3]:
        lost.unlink()
    again = run_sweep(space, tmp_path / "a", Executor(), **quiet)
    assert again.summary["designs_evaluated"] == space.designs
    assert (tmp_path / "a" / "front.csv").read_bytes() == reference
    assert comparable(again.summary) == comparable(first.summary)
    run_sweep(space, tmp_path / "b", Executor(jobs=2), **quiet)
    assert (tmp_path / "b" / "front.csv").read_bytes() == reference.replace(
        str(tmp_path / "a").encode(), str(tmp_path / "b").encode()
    )


def test_dask_local_cluster_gives_identical_files(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    path = _space(tmp_path, SPACE)
    space = load_space(path)
    quiet = {"progress": lambda *a: None, "plots": False}
    first = run_sweep(space, tmp_path / "a", Executor(), **quiet)
    second = run_sweep(space, tmp_path / "b", Executor(jobs=2, dask=True), **quiet)
    a = (tmp_path / "a" / "front.csv").read_bytes()
    b = (tmp_path / "b" / "front.csv").read_bytes()
    assert b == a.replace(str(tmp_path / "a").encode(), str(tmp_path / "b").encode())
    assert comparable(first.summary) == comparable(second.summary)


def test_cli_writes_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _space(tmp_path, TEMPLATE)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["designs_evaluated"] == 2 * 2 * 2 * 3
    # cluster 128 does not fit 16 or 64 PEs: 2 c_tiles x 2 pes x 2 noc_bw designs.
    assert summary["infeasible"]["mapping"] == 8
    for name in ("front.csv", "pareto.png", "sensitivity.png"):
        assert (out / name).stat().st_size > 0
    assert "on the Pareto front" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            f"network: {{file: {MAPS}/vgg16_nlr.m}}\naxes:\n  pes: [1, 2]\n  l9: [3]\n",
            ":4:3:",
            "unknown key 'l9'",
        ),
        (
            f"network: {{file: {MAPS}/vgg16_nlr.m}}\naxes:\n  pes: [4, 4]\n",
            ":3:12:",
            "value 4 is repeated",
        ),
        (
            f"network: {{file: {MAPS}/vgg16_nlr.m}}\nconstraints:\n  - l1 * pez <= 3\n",
            ":3:10:",
            "unknown name 'pez'",
        ),
        (
            f"network: {{file: {MAPS}/vgg16_nlr.m}}\nconstraints:\n  - \"l1 + __import__('os')\"\n",
            ":3:11:",
            "cannot use",
        ),
        (
            f"network: {{file: {MAPS}/vgg16_nlr.m}}\naxes:\n  noc_bw: {{from: 1, to: 8}}\n",
            ":3:11:",
            "needs one of 'step' or 'factor'",
        ),
        (
            f"network: {{file: {MAPS}/vgg16_nlr.m}}\nmapping:\n  style: kcp_ws\n"
            "  params:\n    c_tyle: [1]\n",
            ":5:5:",
            "parameter 'c_tyle' is not used",
        ),
    ],
)
def test_bad_space_points_at_the_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str, message: str
) -> None:
    path = _space(tmp_path, text)
    with pytest.raises(SpecError):
        load_space(path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{path}{where} error:" in err, err
    assert message in err, err
    assert not (tmp_path / "o").exists()


def test_fingerprint_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """A re-run in a new process must recognise its chunks (set order varies by seed)."""
    import subprocess
    import sys

    path = _space(tmp_path, SPACE)
    code = (
        f"from metronome.spec.space import load_space; print(load_space({str(path)!r}).fingerprint)"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(seen) == 1


@pytest.mark.slow
def test_simulate_top_checks_the_front_against_the_simulator(tmp_path: Path) -> None:
    """The simulated runtimes are the simulator's own (re-run here one design at a time)."""
    from metronome import sim

    text = f"""\
name: simtop
network:
  file: {MAPS}/Resnet50_kcp_ws.m
  layers: [CONV2_1_2, CONV2_1_3]
  shrink: {{Y: 6, X: 6, K: 8, C: 8}}
axes:
  pes: [8, 16]
  noc_bw: [1, 2, 8]
  offchip_bw: [2, 64]
mapping:
  style: kcp_ws
  params:
    c_tile: [8]
    cluster: [4, 8]
"""
    space = load_space(_space(tmp_path, text))
    out = tmp_path / "out"
    outcome = run_sweep(
        space, out, Executor(), simulate_top=2, plots=False, progress=lambda *a: None
    )
    check = outcome.summary["simulation"]
    lines = (out / "simulated.csv").read_text().splitlines()[1:]
    assert check["designs_simulated"] == len(lines) == min(4, outcome.front_rows)
    analytic, simulated = [], []
    for line in lines:
        design, _, a, s, _ = line.split(",", 4)
        hardware = _design_hardware(space.design_values(int(design)))
        network = space.network_for(int(design) // (space.designs // space.mappings))
        expected = sum(
            sim.simulate(e.layer, e.require_mapping(), hardware).layer.runtime_cycles
            for e in network.layers
        )
        assert int(s) == expected
        analytic.append(int(a))
        simulated.append(int(s))
    assert check["kendall_tau"] == round(kendall_tau(analytic, simulated), 6)
    fastest = min(zip(simulated, map(int, (ln.split(",")[0] for ln in lines)), strict=True))
    assert check["simulated_winner"] == fastest[1]
    picked = min(zip(analytic, map(int, (ln.split(",")[0] for ln in lines)), strict=True))
    picked_sim = simulated[[int(ln.split(",")[0]) for ln in lines].index(picked[1])]
    assert check["analytic_winner_regret"] == round(picked_sim / fastest[0] - 1, 6)


def test_a_scenario_gives_the_layers(tmp_path: Path) -> None:
    scenario = REPO / "scenarios/crosscheck/x01_ws_kspatial__pe4.yaml"
    text = f"scenario: {scenario}\naxes:\n  pes: [2, 4]\n  noc_bw: [1, 64]\n"
    space = load_space(_space(tmp_path, text))
    assert [e.name for e in space.network.layers] == ["L"]
    outcome = run_sweep(space, tmp_path / "o", Executor(), plots=False, progress=lambda *a: None)
    assert outcome.summary["designs_evaluated"] == 4


def test_validate_on_a_dask_cluster_gives_the_same_results(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    scenario = str(REPO / "scenarios/crosscheck/x05_spatial_reduction__pe4.yaml")
    assert main(["validate", scenario, "--report", str(tmp_path / "a"), "--jobs", "1"]) == 0
    argv = ["validate", scenario, "--report", str(tmp_path / "b"), "--jobs", "2", "--dask"]
    assert main(argv) == 0
    for name in ("results.json", "results.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_dask_options_need_dask_or_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_dask(name: str, *args: object, **kwargs: object) -> object:
        if name == "dask" or name.startswith("dask."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    path = _space(tmp_path, TEMPLATE)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--dask"]) == 2
    assert "pip install 'metronome[dask]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("style", ["kcp_ws", "xp_ws", "yxp_os", "nlr", "rs"])
def test_style_defaults_reproduce_the_shipped_mapping(style: str) -> None:
    from metronome.spec.space import STYLES, _parse_template, instantiate

    template, defaults = STYLES[style]
    entry = load_network(MAPS / f"Resnet50_{style}.m").layer("CONV2_1_2")
    text = instantiate(template, {k: v[0] for k, v in defaults.items()})
    mapping = _parse_template(text, entry.layer, None)
    assert mapping.directives == entry.require_mapping().directives
