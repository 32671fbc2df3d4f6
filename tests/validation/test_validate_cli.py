"""``metronome validate`` end to end on small scenarios: report files, determinism, and
the accuracy guard that fails (exit 1, culprit named) when an error grows."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metronome.validation.cli import main
from tests.conftest import REPO

SCENARIOS = [
    str(REPO / "scenarios/crosscheck/x04_psum_writeback__pe1.yaml"),
    str(REPO / "scenarios/crosscheck/x05_spatial_reduction__pe4.yaml"),
    str(REPO / "scenarios/default/gemm_small.yaml"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert main(["validate", *SCENARIOS, "--report", str(out), "--jobs", "1"]) == 0
    return out


@pytest.mark.slow
def test_report_has_every_file(report: Path) -> None:
    for name in (
        "report.md",
        "report.html",
        "results.json",
        "results.csv",
        "error_heatmap.png",
        "runtime_scatter.png",
        "runtime_scatter_refined.png",
        "runtime_scatter_maestro.png",
    ):
        assert (report / name).stat().st_size > 0, name
    text = (report / "report.md").read_text()
    # One runtime scatter per closed form, each shown in the report.
    for plot in (
        "runtime_scatter.png",
        "runtime_scatter_refined.png",
        "runtime_scatter_maestro.png",
    ):
        assert f"({plot})" in text, plot
    assert text.startswith("# Metronome validation report")
    assert "## Runtime error per model" in text
    assert "[gemm_inline](scenarios/gemm_inline.md)" in text
    details = (report / "details.md").read_text()
    assert "## analytic~sim-realistic" in details
    assert "## Functional check" in details
    assert "| gemm_inline/GEMM1 | 128 | equal | 0 |" in details
    page = (report / "scenarios" / "gemm_inline.html").read_text()
    assert "<a href='../report.html'>back to the report</a>" in page
    assert "<h3>gemm_inline/GEMM1</h3>" in page


@pytest.mark.slow
def test_results_hold_every_engine_and_the_maestro_reference(report: Path) -> None:
    data = json.loads((report / "results.json").read_text())
    case = next(c for c in data["cases"] if c["scenario"] == "x04_psum_writeback__pe1")
    assert set(case["results"]) == {
        "analytic",
        "analytic-maestro",
        "analytic-refined",
        "sim-maestro",
        "sim-realistic",
    }
    # MAESTRO's own numbers for this case (NOTES (e) 2): runtime 17, weight L2 reads 13.
    assert case["reference"]["runtime_cycles"] == 17
    assert case["results"]["analytic-maestro"]["runtime_cycles"] == 17
    assert case["results"]["analytic-maestro"]["tensors"]["weight"]["l2_reads"] == 13
    # The realistic simulator keeps the 4 weights in L1 across the X loop.
    assert case["results"]["sim-realistic"]["tensors"]["weight"]["l2_reads"] == 4
    # So does the refined closed form (the X sweep's footprint fits L1).
    assert case["results"]["analytic-refined"]["tensors"]["weight"]["l2_reads"] == 4
    causes = {a["cause"] for a in case["attributions"] if a["metric"] == "tensors.weight.l2_reads"}
    assert any("l1_keeps_reusable_data" in c for c in causes)


@pytest.mark.slow
def test_nested_fill_is_attributed_to_its_cluster_directive(report: Path) -> None:
    data = json.loads((report / "results.json").read_text())
    case = next(c for c in data["cases"] if c["layer"] == "GEMM1")
    (cause,) = (
        a["cause"]
        for a in case["attributions"]
        if a["metric"] == "runtime_cycles" and "nested cluster" in a["cause"]
    )
    assert "(from Cluster(8,P) at " in cause
    assert cause.endswith("scenarios/default/gemm_small.yaml:11:7)")


REPORT_FILES = (
    "results.json",
    "results.csv",
    "report.md",
    "report.html",
    "details.md",
    "details.html",
    "scenarios/gemm_inline.md",
)


@pytest.mark.slow
def test_same_inputs_give_byte_identical_results(report: Path, tmp_path: Path) -> None:
    """Run again with two processes and the cache the first run filled, then without
    the cache: every file is the same."""
    for folder, extra in (("cached", []), ("fresh", ["--no-cache"])):
        out = tmp_path / folder
        assert main(["validate", *SCENARIOS, "--report", str(out), "--jobs", "2", *extra]) == 0
        for name in REPORT_FILES:
            assert (out / name).read_bytes() == (report / name).read_bytes(), (folder, name)


SMALL = """name: small
layers:
  - name: L
    type: CONV
    dims: {K: 4, C: 2, R: 2, S: 2, Y: 4, X: 4}
    dataflow: |
      SpatialMap(1,1) K;
      TemporalMap(1,1) C;
      TemporalMap(2,1) Y;
      TemporalMap(2,1) X;
      TemporalMap(2,2) R;
      TemporalMap(2,2) S;
hardware:
  num_pes: 4
  noc_bw_elems_per_cycle: 4
"""


def _counts(out: str) -> tuple[int, int]:
    (hits, runs), *_ = re.findall(r": (\d+) reused, (\d+) run", out)
    return int(hits), int(runs)


def test_cache_reruns_only_what_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scenario whose hardware changes runs again; the untouched one comes from the
    cache, and the results equal a run without the cache."""
    cache = tmp_path / "cache"
    changed = tmp_path / "small.yaml"
    changed.write_text(SMALL)
    argv = ["validate", SCENARIOS[0], str(changed), "--jobs", "1", "--cache-dir", str(cache)]
    assert main([*argv, "--report", str(tmp_path / "a")]) == 0
    hits, jobs = _counts(capsys.readouterr().out)
    assert hits == 0
    assert main([*argv, "--report", str(tmp_path / "b")]) == 0
    assert _counts(capsys.readouterr().out) == (jobs, 0)
    changed.write_text(SMALL.replace("noc_bw_elems_per_cycle: 4", "noc_bw_elems_per_cycle: 2"))
    assert main([*argv, "--report", str(tmp_path / "c")]) == 0
    hits, runs = _counts(capsys.readouterr().out)
    # Every job is either reused or run; the untouched scenario's are reused, the changed
    # one's (its one layer, every engine) run again.
    assert hits + runs == jobs
    assert 0 < runs < jobs
    assert main([*argv, "--report", str(tmp_path / "d"), "--no-cache"]) == 0
    for name in ("results.json", "report.md", "scenarios/small.md"):
        assert (tmp_path / "c" / name).read_bytes() == (tmp_path / "d" / name).read_bytes()


def test_installed_command_runs_with_its_cache_outside_the_repository(tmp_path: Path) -> None:
    """The console script, started outside the checkout (so the folders are importable
    only by their installed ``metronome.*`` names), validates a scenario with its
    result cache: every module the cache digests is found under the installed names."""
    script = Path(sys.executable).with_name("metronome")
    scenario = REPO / "scenarios" / "crosscheck" / "x01_ws_kspatial__cli_pe4_bw1.yaml"
    argv = [str(script), "validate", str(scenario), "--report", str(tmp_path / "report")]
    done = subprocess.run(
        [*argv, "--cache-dir", str(tmp_path / "cache")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "0 reused, 9 run" in done.stdout + done.stderr


@pytest.mark.slow
def test_baseline_passes_then_catches_a_perturbed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    out = tmp_path / "rep"
    assert (
        main(
            [
                "validate",
                *SCENARIOS[:1],
                "--report",
                str(out),
                "--baseline",
                str(baseline),
                "--update-baseline",
            ]
        )
        == 0
    )
    assert (
        main(["validate", *SCENARIOS[:1], "--report", str(out), "--baseline", str(baseline)]) == 0
    )
    data = json.loads(baseline.read_text())
    culprit = next(
        k
        for k, v in data["errors"].items()
        if k.endswith("analytic~sim-realistic/tensors.weight.l2_reads")
    )
    assert data["errors"][culprit] > 1.0
    data["errors"][culprit] -= 1.0  # pretend the model used to be much more accurate here
    baseline.write_text(json.dumps(data))
    capsys.readouterr()
    assert (
        main(["validate", *SCENARIOS[:1], "--report", str(out), "--baseline", str(baseline)]) == 1
    )
    err = capsys.readouterr().err
    assert "accuracy regressed on 1 row(s)" in err
    assert culprit in err


def test_bad_scenario_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "layers:\n  - name: L\n    type: CONV\n    dims: {K: 0}\n"
        "    dataflow: x\nhardware: {num_pes: 1}\n"
    )
    assert main(["validate", str(bad), "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:4:" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_unknown_target_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path / "nothing.yaml")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


_PROBE = """<script>
window.__errors = [];
window.addEventListener("error", (e) => {
  const where = e.target && e.target.src ? " " + e.target.src : "";
  window.__errors.push((e.message || "failed to load") + where);
}, true);
const realError = console.error;
console.error = (...args) => { window.__errors.push(args.join(" ")); realError(...args); };
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.src);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images: images.length, broken, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _headless(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_report_opens_in_a_browser_with_every_image(report: Path) -> None:
    """report.html in headless Chromium: every image loads, the console stays free of
    errors, every link leads to a written page; the screenshot is kept beside it."""
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed")
    page = (report / "report.html").read_text()
    probe = report / "report.probe.html"
    probe.write_text(page.replace("<head>", "<head>" + _PROBE, 1))
    shown = _headless(browser, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    found = re.search(r"<pre id=\"probe\">(.*?)</pre>", shown.stdout, re.S)
    assert found is not None, shown.stderr[-2000:]
    state = json.loads(html.unescape(found.group(1)))
    assert state["broken"] == []
    assert state["errors"] == []
    assert state["images"] >= 3  # the heat map, the scatter plot, the hot spot's two
    plain = _headless(
        browser, "--enable-logging=stderr", "--v=0", "--dump-dom", (report / "report.html").as_uri()
    )
    assert ":CONSOLE" not in plain.stderr
    shot = report / "report.png"
    taken = _headless(
        browser,
        f"--screenshot={shot}",
        "--window-size=1280,2400",
        (report / "report.html").as_uri(),
    )
    assert shot.stat().st_size > 10_000, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for target in re.findall(r"href='([^']+)'", page):
        assert (report / target).is_file(), target
