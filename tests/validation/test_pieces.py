"""Unit tests of the harness's pieces: comparison rows, the baseline guard, scenario
discovery, the report document model, the congestion finding and the paper findings."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from metronome.spec.energy import energy_table
from metronome.spec.names import Engine
from metronome.spec.results import LayerResult, TensorCounts
from metronome.spec.source import SpecError
from metronome.validation import baseline, congestion, harness, paper, runner
from metronome.validation.cli.progress import ProgressBar
from metronome.validation.compare import MetricRow
from metronome.validation.document import (
    Heading,
    Image,
    Items,
    Paragraph,
    Table,
    to_html,
    to_markdown,
)
from metronome.validation.runner import HotLink, Probe, ProbeKind
from metronome.validation.suite import expand
from tests.conftest import REPO


def _row(model: float, truth: float, metric: str = "runtime_cycles") -> MetricRow:
    return MetricRow("s", "", "L", 0, "analytic~sim-realistic", metric, model, truth)


def test_relative_error_is_signed_and_defined_only_for_nonzero_truth() -> None:
    assert _row(12, 10).rel_error == pytest.approx(0.2)
    assert _row(8, 10).rel_error == pytest.approx(-0.2)
    assert _row(0, 0).rel_error == 0.0
    assert _row(3, 0).rel_error is None
    assert _row(1, 2).key == "s/0:L/analytic~sim-realistic/runtime_cycles"


def test_baseline_tolerance_and_undefined_errors(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    baseline.write(path, [_row(11, 10), _row(3, 0, "macs")], tolerance=0.01)
    stored = baseline.load(path)
    # 10% -> 10.5%: within the 1-point tolerance.
    assert baseline.check([_row(11.05, 10), _row(3, 0, "macs")], stored).ok
    # 10% -> 12%: a regression.
    result = baseline.check([_row(11.2, 10), _row(3, 0, "macs")], stored)
    assert [r.key for r in result.regressions] == ["s/0:L/analytic~sim-realistic/runtime_cycles"]
    # 10% -> exact: improved; undefined -> defined: improved.
    result = baseline.check([_row(10, 10), _row(0, 0, "macs")], stored)
    assert result.ok
    assert len(result.improved) == 2
    # A defined error that becomes undefined regresses.
    baseline.write(path, [_row(1, 1)], tolerance=0.01)
    assert not baseline.check([_row(1, 0)], baseline.load(path)).ok


def test_baseline_file_errors_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        baseline.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": \n')
    with pytest.raises(SpecError, match=r"broken\.json:2:1: error: invalid JSON"):
        baseline.load(broken)
    other = tmp_path / "other.json"
    other.write_text('{"schema": "something else"}')
    with pytest.raises(SpecError, match="not a Metronome baseline"):
        baseline.load(other)


def test_suite_expansion_follows_includes_without_duplicates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    default = expand([])
    assert Path("scenarios/crosscheck/x01_ws_kspatial__pe4.yaml") in default
    assert len(default) == len(set(default))
    again = expand(["scenarios/default.yaml", "scenarios/crosscheck"])
    assert again == default
    with pytest.raises(SpecError, match="not a scenario"):
        expand(["README.md"])


def test_markdown_and_html_carry_the_same_content() -> None:
    blocks = [
        Heading("Title", 1),
        Paragraph("a **bold** and `code` text"),
        Items(("one", "two")),
        Table(("k", "v"), (("a|b", "1"),), "lr"),
        Image("x.png", "a picture"),
    ]
    md = to_markdown(blocks)
    html = to_html(blocks, "t")
    assert "# Title" in md
    assert "| a\\|b | 1 |" in md
    assert "|---|---:|" in md
    assert "<b>bold</b>" in html
    assert "<code>code</code>" in html
    assert "<td class='r'>1</td>" in html
    assert "<img src='x.png'" in html


def _result(
    flow: str,
    layer: str,
    *,
    runtime: int,
    macs: int,
    l1: int,
    l2: int,
    pes: float,
    l1req: int,
    bw: int,
    steady: dict[str, float] | None = None,
) -> LayerResult:
    """Made-up results whose steady-state figures equal the whole-layer ones unless
    ``steady`` overrides some (``l1_read_accesses`` equals the scalar reads by default)."""
    figures = {
        "steady_l1_size_req_elems_all_pes": l1req * pes,
        "steady_noc_bw_req_elems_per_cycle": bw,
        "steady_throughput_macs_per_cycle": macs / runtime,
        "l1_read_accesses": l1,
        **(steady or {}),
    }
    counts = TensorCounts(l1_reads=l1, l1_writes=0, l2_reads=l2, l2_writes=0)
    zero = TensorCounts(l1_reads=0, l1_writes=0, l2_reads=0, l2_writes=0)
    return LayerResult(
        engine="test",
        network=flow,
        layer=layer,
        layer_index=0,
        runtime_cycles=runtime,
        macs=macs,
        tensors=(("input", counts), ("weight", zero), ("output", zero)),
        metrics=(
            ("avg_active_pes", pes),
            ("l1_size_req_elems", l1req),
            ("noc_bw_req_peak_elems_per_cycle", bw),
            *figures.items(),
        ),
    )


def test_paper_findings_verdicts_on_made_up_numbers() -> None:
    """A world built so that every finding holds: NLR needs the least L1 (3 PEs x 10),
    has the largest L2 share; NVDLA burns most on CONV1 and half as much on CONV11; RS is
    the most efficient; RS is slower than NVDLA on CONV1 and faster on CONV11; ShiDianNao
    needs the most L1."""
    spec = {
        # flow: (L2 CONV1, L2 CONV11, L1 req, PEs, runtime CONV1, runtime CONV11, bw1, bw11)
        "nlr": (400, 800, 10, 3, 100, 100, 5, 5),
        "ws": (300, 700, 20, 64, 100, 100, 5, 5),
        "shidiannao_os": (300, 700, 90, 64, 100, 100, 5, 5),
        "eyeriss_rs": (10, 10, 20, 63, 200, 40, 5, 5),
        "nvdla_ws": (900, 200, 20, 64, 100, 50, 5, 60),
    }
    results = {}
    for flow, (l2a, l2b, l1req, pes, rt1, rt11, bw1, bw11) in spec.items():
        l1 = 1 if flow == "nlr" else 1000
        results[flow] = {
            "VGG16_CONV1": _result(
                flow,
                "VGG16_CONV1",
                runtime=rt1,
                macs=1000,
                l1=l1,
                l2=l2a,
                pes=pes,
                l1req=l1req,
                bw=bw1,
            ),
            "VGG16_CONV11": _result(
                flow,
                "VGG16_CONV11",
                runtime=rt11,
                macs=1000,
                l1=l1,
                l2=l2b,
                pes=pes,
                l1req=l1req,
                bw=bw11,
            ),
        }
    verdicts = {f.key: r.holds for f, r in paper.evaluate(results, energy_table("maestro"))}
    assert verdicts == dict.fromkeys(verdicts, True)
    # Ties do not count: make WS's L1 as large as ShiDianNao's.
    for layer in paper.LAYERS:
        results["ws"][layer] = _result(
            "ws", layer, runtime=100, macs=1000, l1=1000, l2=300, pes=64, l1req=90, bw=5
        )
    verdicts = {
        f.key: (r.holds, r.evidence) for f, r in paper.evaluate(results, energy_table("maestro"))
    }
    assert verdicts["shi-most-l1"][0] is False
    assert "tied with WS" in verdicts["shi-most-l1"][1]


def test_paper_attribution_names_the_condition_a_verdict_hinges_on() -> None:
    """Every flow alike except: RS takes twice as long on CONV1 (worse than NVDLA either
    way) and beats NVDLA on CONV11 only in steady state; NVDLA reads its L1 16 elements
    per access."""
    results: dict[str, dict[str, LayerResult]] = {}
    for flow in paper.DATAFLOWS:
        results[flow] = {}
        for layer in paper.LAYERS:
            steady: dict[str, float] = {}
            runtime = 100
            if flow == "eyeriss_rs" and layer == "VGG16_CONV1":
                runtime = 200
            if flow == "eyeriss_rs" and layer == "VGG16_CONV11":
                steady["steady_throughput_macs_per_cycle"] = 20.0
            if flow == "nvdla_ws":
                steady["l1_read_accesses"] = 1000 // 16
            results[flow][layer] = _result(
                flow,
                layer,
                runtime=runtime,
                macs=1000,
                l1=1000,
                l2=0,
                pes=64,
                l1req=9,
                bw=5,
                steady=steady,
            )
    table = energy_table("maestro")
    verdicts = paper.attribute(results, table)
    # MACs/cycle: RS 1000/200 = 5 < NVDLA 10 on CONV1; on CONV11 10 = 10 on the whole
    # layer (not better) and 20 > 10 in steady state.
    assert verdicts["rs-vs-nvdla-throughput"] == (False, True, ("steady state",))
    # Energy in MAC energies: 1000 MACs + 1000 L1 reads x 1.68 = 2680 for every flow,
    # NVDLA with vectors 1000 + 62 x 1.68 = 1104.16: the others spend 2.43x NVDLA's
    # (>= 1.5x) only with vector reads.
    assert verdicts["nvdla-best-conv11"] == (False, True, ("vector L1 reads",))
    table_text = paper.verdict_table({"made-up": results}, table)
    assert "| nvdla-best-conv11: " in table_text
    assert "fails -> **holds** (hinges on vector L1 reads)" in table_text


def test_saturation_is_where_more_bandwidth_stops_helping() -> None:
    bandwidths = (1, 2, 4, 8, 16)
    # Halves until 8, then flat: more than 8 elements/cycle buys nothing.
    assert congestion.saturation(bandwidths, [800.0, 400.0, 200.0, 100.0, 99.0]) == 8
    # Flat from the start: the curve is bound by something other than link width.
    assert congestion.saturation(bandwidths, [700.0, 699.0, 698.0, 698.0, 698.0]) == 1
    # Still improving at the top of the sweep.
    assert congestion.saturation(bandwidths, [16.0, 8.0, 4.0, 2.0, 1.0]) == 16
    # A 6% bump below the flat part ends the flat part there.
    assert congestion.saturation(bandwidths, [500.0, 106.0, 100.0, 101.0, 100.0]) == 4


def test_progress_lines_start_again_for_a_second_phase() -> None:
    stream = io.StringIO()
    bar = ProgressBar("validate", stream=stream, delay_s=0.0)
    for phase_total in (4, 2):
        for done in range(1, phase_total + 1):
            bar(done, phase_total)
    lines = [line.split(" after")[0] for line in stream.getvalue().splitlines()]
    assert lines == [
        "validate: 1/4 (25%)",
        "validate: 2/4 (50%)",
        "validate: 3/4 (75%)",
        "validate: 4/4 (100%)",
        "validate: 1/2 (50%)",
        "validate: 2/2 (100%)",
    ]


def test_contention_is_attributed_from_the_simulators_zero_load_clock() -> None:
    """Closed form 100 cycles; the realistic simulation 180, of which its own clock on a
    contention-free network is 110: contention makes -70 of the -80 gap (88%)."""
    zero = TensorCounts(l1_reads=0, l1_writes=0, l2_reads=0, l2_writes=0)

    def result(engine: str, runtime: int, metrics: tuple[tuple[str, float], ...] = ()):  # type: ignore[no-untyped-def]
        tensors = (("input", zero), ("weight", zero), ("output", zero))
        return LayerResult(
            engine=engine,
            network="n",
            layer="L",
            layer_index=0,
            runtime_cycles=runtime,
            macs=8,
            tensors=tensors,
            metrics=metrics,
        )

    case = harness.CaseResult(
        scenario="s", path="s.yaml", variant="", layer="L", layer_index=0, tags=()
    )
    case.results = {
        Engine.ANALYTIC: result("analytic", 100),
        Engine.SIM_MAESTRO: result("sim-maestro", 170),
        Engine.SIM_REALISTIC: result(
            "sim-realistic", 180, (("runtime_noc_zero_load_cycles", 110),)
        ),
    }
    case.hottest_link = {Engine.SIM_REALISTIC: HotLink("L2", "r0,0", 0.9)}
    (contention,) = (a for a in harness._attribute(case, {}) if a.cause.startswith("contention"))
    assert (contention.delta, round(contention.share or 0, 3)) == (-70.0, 0.875)
    assert contention.cause.endswith("hottest link L2->r0,0 busy 90%")


@pytest.mark.parametrize(
    ("scenario", "reduces"),
    [
        # SpatialMap(1,1) K: each PE owns its own output channels.
        ("scenarios/crosscheck/x01_ws_kspatial__pe4.yaml", False),
        # SpatialMap(1,1) C: four PEs add partial sums of the same outputs.
        ("scenarios/crosscheck/x05_spatial_reduction__pe4.yaml", True),
        # GEMM with K (absent from the M x N output) spatial inside the cluster.
        ("scenarios/default/gemm_small.yaml", True),
    ],
)
def test_free_reduction_is_probed_only_where_pes_share_outputs(
    scenario: str, reduces: bool
) -> None:
    case = harness.CaseResult(
        scenario="s", path=str(REPO / scenario), variant="", layer="L", layer_index=0, tags=()
    )
    probe = Probe(ProbeKind.POLICY_SWITCH, "free_spatial_reduction", True)
    assert harness._can_matter(case, probe) is reduces


def test_identical_layers_share_one_run_under_their_own_names(tmp_path: Path) -> None:
    """Two layers that differ only in name have one content key, and the outcome run
    for one, relabelled, is exactly the outcome run for the other (every engine)."""
    layer = """  - name: {name}
    type: CONV
    dims: {{K: 4, C: 2, R: 2, S: 2, Y: 5, X: 5}}
    dataflow: |
      SpatialMap(1,1) C;
      TemporalMap(1,1) K;
      TemporalMap(2,1) Y;
      TemporalMap(2,1) X;
      TemporalMap(2,2) R;
      TemporalMap(2,2) S;
"""
    path = tmp_path / "twins.yaml"
    path.write_text(
        "name: twins\nlayers:\n"
        + layer.format(name="A")
        + layer.format(name="B")
        + "hardware: {num_pes: 2, noc_bw_elems_per_cycle: 2}\n"
    )
    runner.forget_scenarios()
    for engine in runner.ENGINES:
        a, b = (runner.Job(str(path), 0, i, engine) for i in (0, 1))
        assert runner.content_key(a) == runner.content_key(b)
        shared = runner._relabel(runner.run_job(a), b)
        assert shared == runner.run_job(b)
        assert isinstance(shared, runner.RunOutcome)
        assert (shared.result.layer, shared.result.layer_index) == ("B", 1)
    probe = runner.Probe(runner.ProbeKind.UNBOUNDED_NOC)
    assert runner.content_key(runner.Job(str(path), 0, 0, Engine.SIM_MAESTRO, probe)) != (
        runner.content_key(runner.Job(str(path), 0, 0, Engine.SIM_MAESTRO))
    )
