"""``metronome import`` end to end: the table, the .m and YAML outputs (which ``check``
and ``validate`` accept), determinism, and bad input (exit 2, no traceback, nothing
written)."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
import pytest

from metronome.spec.maestro import parse_mapping_file
from metronome.spec.scenario import load_scenario
from metronome.validation.cli import main
from tests.spec.onnx_nets import Builder


def _small_net(path: Path) -> Path:
    # conv 3x3 (pad 1) 3 -> 4 on 6x6, ReLU, 2x2 max pool, global pool, FC 4 -> 5.
    b = Builder("small", input_shape=(1, 3, 6, 6))
    x = b.relu("relu", b.conv("conv", "x", 4, 3))
    x = b.maxpool("pool", x, 2, 2, 0)
    b.gap_fc("gap", "fc", x, 5)
    onnx.save(b.model(), path)
    return path


def test_table_lists_every_node_and_the_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _small_net(tmp_path / "small.onnx")
    assert main(["import", str(model), "--num-pes", "16"]) == 0
    out = capsys.readouterr().out
    for name in ("conv", "relu", "pool", "gap", "gap_flatten", "fc"):
        assert f"  {name} " in out
    # conv: 4*3*9*36 = 3888 MACs; fc: 4*5 = 20.
    assert "total: 2 layer(s) with MACs, 3,908 MACs; 0 node(s) not modelled" in out


def test_yaml_output_is_a_valid_scenario_and_deterministic(tmp_path: Path) -> None:
    model = _small_net(tmp_path / "small.onnx")
    out = tmp_path / "net.yaml"
    argv = ["import", str(model), "--dataflow", "yxp_os", "--num-pes", "16", "-o", str(out)]
    assert main(argv) == 0
    first = out.read_bytes()
    assert main(argv) == 0
    assert out.read_bytes() == first
    scenario = load_scenario(out)
    assert [e.name for e in scenario.network.layers] == ["conv", "fc"]
    assert scenario.hardware.num_pes == 16
    assert scenario.network.layers[0].layer.size("Y") == 8  # 6 + 2 padding rows


def test_m_output_passes_check(tmp_path: Path) -> None:
    model = _small_net(tmp_path / "small.onnx")
    out = tmp_path / "net.m"
    assert main(["import", str(model), "--dataflow", "rs", "--num-pes", "16", "-o", str(out)]) == 0
    assert main(["check", str(out), "--num-pes", "16"]) == 0
    network = parse_mapping_file(out)
    assert [e.layer.macs for e in network.layers] == [3888, 20]
    assert out.read_text().startswith("// Imported from")


@pytest.mark.slow
def test_import_then_validate_end_to_end(tmp_path: Path) -> None:
    model = _small_net(tmp_path / "small.onnx")
    out = tmp_path / "net.yaml"
    assert main(["import", str(model), "--num-pes", "16", "-o", str(out)]) == 0
    report = tmp_path / "report"
    assert main(["validate", str(out), "--report", str(report), "--jobs", "1"]) == 0
    assert (report / "report.md").stat().st_size > 0


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "net.yaml"
    garbage = tmp_path / "bad.onnx"
    garbage.write_bytes(b"\x00\x01\x02garbage")
    err = _fails(["import", str(garbage), "-o", str(out)], capsys)
    assert f"{garbage}:1:1: error:" in err
    model = _small_net(tmp_path / "small.onnx")
    err = _fails(["import", str(model), "--dataflow", "ws", "-o", str(out)], capsys)
    assert "unknown dataflow style 'ws'" in err
    err = _fails(["import", str(model), "-o", str(tmp_path / "net.txt")], capsys)
    assert "write a .m network or a .yaml scenario" in err
    err = _fails(["import", str(tmp_path / "nope.onnx")], capsys)
    assert "no such file" in err
    # An L1 too small for a 3x3 window: 2 x (9 + 9 + 1) = 38 elements needed.
    err = _fails(["import", str(model), "--l1-size", "20", "-o", str(out)], capsys)
    assert "needs 38 L1 elements per PE" in err
    assert not out.exists()
    assert sorted(tmp_path.iterdir()) == sorted([garbage, model])


def test_missing_optional_packages_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _small_net(tmp_path / "small.onnx")
    monkeypatch.setitem(sys.modules, "torch", None)
    err = _fails(["import", "torchvision:resnet18"], capsys)
    assert "PyTorch models need the 'torch' package" in err
    assert "metronome[torch]" in err
    monkeypatch.setitem(sys.modules, "onnx", None)
    err = _fails(["import", str(model)], capsys)
    assert "needs the 'onnx' package" in err
    assert "metronome[onnx]" in err
