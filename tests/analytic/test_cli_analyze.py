"""``metronome analyze``: table, MAESTRO CSV, JSON schema, errors, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from metronome.spec.results import LayerResult
from metronome.validation.cli import main
from tests.conftest import MAESTRO_INPUTS, MAESTRO_REFERENCE, REPO

X01 = str(MAESTRO_REFERENCE / "crosscheck" / "x01_ws_kspatial.m")
X09 = str(MAESTRO_REFERENCE / "crosscheck" / "x09_two_level.m")
PE4 = str(MAESTRO_REFERENCE / "hw" / "xc_pe4_bw64.m")
PE8 = str(MAESTRO_REFERENCE / "hw" / "xc_pe8_bw64.m")
ACC1 = str(MAESTRO_INPUTS / "data" / "hw" / "accelerator_1.m")


def test_compat_csv_is_byte_identical_to_maestros(tmp_path: Path) -> None:
    out = tmp_path / "x09.csv"
    assert main(["analyze", X09, "--hw", PE8, "--maestro-compat", "--csv", str(out)]) == 0
    assert out.read_bytes() == (MAESTRO_REFERENCE / "runs" / "x09_two_level__pe8.csv").read_bytes()


def test_table_lists_layers_and_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", X09, "--hw", PE8]) == 0
    out = capsys.readouterr().out
    for text in ("performance", "traffic", "requirements", "runtime (cycles)", "total", "max"):
        assert text in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("A ", "B "))]
    assert [r[0] for r in rows[:2]] == ["A", "B"]
    assert rows[0][1:3] == ["13", "64"]


def test_json_follows_the_result_schema(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    assert main(["analyze", X09, "--hw", PE8, "--json", str(out), "--energy", "eyeriss65"]) == 0
    data = json.loads(out.read_text())
    assert data["schema_version"] == 1
    assert data["engine"] == "analytic"
    assert data["info"]["energy_table"]["name"] == "eyeriss65"
    assert "Eyeriss" in data["info"]["energy_table"]["source"]
    assert data["hardware"]["num_pes"] == 8
    layer = data["layers"][0]
    for key in ("network", "layer", "runtime_cycles", "macs", "energy_nj", "utilization"):
        assert key in layer
    assert set(layer["tensors"]) == {"input", "weight", "output"}
    assert set(layer["tensors"]["output"]) == {"l1_reads", "l1_writes", "l2_reads", "l2_writes"}
    assert LayerResult.from_dict(layer).to_dict() == layer
    assert data["totals"]["runtime_cycles"] == 26


def test_hardware_flags_use_maestros_command_line_latency(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Flags only: NoC latency hops x hop latency = 0, so x01 takes 8 cycles, not 9."""
    assert main(["analyze", X01, "--num-pes", "4", "--noc-bw", "64", "--maestro-compat"]) == 0
    line = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("L "))
    assert line.split()[1] == "8"


def test_layer_selection(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    assert main(["analyze", X09, "--hw", PE8, "--layer", "B", "--json", str(out)]) == 0
    layers = json.loads(out.read_text())["layers"]
    assert [(x["layer"], x["layer_index"]) for x in layers] == [("B", 1)]


def test_compat_layer_selection_keeps_the_previous_layer_energy(tmp_path: Path) -> None:
    """MAESTRO's CSV energy of a Cluster layer depends on the layer before it (D3), even
    when only that layer is selected."""
    out = tmp_path / "b.csv"
    args = ["analyze", X09, "--hw", PE8, "--layer", "B", "--maestro-compat", "--csv", str(out)]
    assert main(args) == 0
    assert out.read_text().splitlines()[1].split(",")[4] == "0.453707"


def test_outputs_are_deterministic(tmp_path: Path) -> None:
    mapping = str(MAESTRO_INPUTS / "data" / "mapping" / "vgg16_ckp_ws.m")
    texts = []
    for i in range(2):
        csv, js = tmp_path / f"{i}.csv", tmp_path / f"{i}.json"
        assert main(["analyze", mapping, "--hw", ACC1, "--csv", str(csv), "--json", str(js)]) == 0
        texts.append((csv.read_bytes(), js.read_bytes()))
    assert texts[0] == texts[1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            [str(MAESTRO_INPUTS / "data" / "mapping" / "vgg16_rs.m"), "--hw", ACC1],
            "vgg16_rs.m:2:8: error: layer 'CONV1': no unit ever computes a complete output",
        ),
        ([X01, "--hw", PE4, "--energy", "nope"], "error: unknown energy table 'nope'"),
        ([X01, "--hw", PE4, "--layer", "Z"], "error: network 'x01' has no layer named 'Z'"),
        ([X09, "--num-pes", "1"], "error: Cluster size 2 needs 2 PEs, but the hardware has 1"),
        ([PE4], "is a MAESTRO hardware file, not a mapping"),
    ],
    ids=["sigfpe_in_maestro", "energy", "layer", "cluster", "hw_as_mapping"],
)
def test_bad_input_is_a_diagnostic_and_exit_2(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", *args]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err


def test_failed_run_writes_no_file(tmp_path: Path) -> None:
    out = tmp_path / "never.csv"
    mapping = str(MAESTRO_INPUTS / "data" / "mapping" / "vgg16_rs.m")
    assert main(["analyze", mapping, "--hw", ACC1, "--csv", str(out)]) == 2
    assert not out.exists()


def test_check_does_not_import_the_engine() -> None:
    code = (
        "import sys\n"
        "from metronome.validation.cli import main\n"
        f"main(['check', {X01!r}])\n"
        "print(sorted(m for m in sys.modules if 'analytic' in m.split('.')[:2]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_console_script_runs_analyze() -> None:
    script = Path(sys.executable).with_name("metronome")
    if not script.exists():
        pytest.skip("the metronome console script is not installed in this environment")
    out = subprocess.run(
        [str(script), "analyze", X01, "--hw", PE4], capture_output=True, text=True, check=True
    )
    assert "x01 on 4 PEs" in out.stdout
