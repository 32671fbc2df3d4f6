"""SCALE-Sim's own input files: good ones parse as SCALE-Sim reads them; each broken one
in ``bad_scalesim/`` is rejected by ``metronome analyze`` and ``simulate`` with exit 2,
no traceback and exactly the first line stored in its ``.err`` file."""

from __future__ import annotations

from pathlib import Path

import pytest

from metronome.spec.scalesim import lower, parse_config, parse_topology
from metronome.validation.cli import main

BAD = Path(__file__).parent / "bad_scalesim"
CASES = sorted(p for p in BAD.iterdir() if p.suffix in (".csv", ".cfg") and p.stem != "good")


def _args(path: Path) -> list[str]:
    if path.suffix == ".csv":
        return [path.name, "--scalesim-config", "good.cfg"]
    return ["good.csv", "--scalesim-config", path.name]


@pytest.mark.parametrize("command", ["analyze", "simulate"])
@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_bad_scalesim_input_gives_exact_diagnostic(
    path: Path, command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    code = main([command, *_args(path), "--json", "never.json"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.splitlines()[0] == path.with_suffix(".err").read_text(encoding="utf-8").strip()
    assert err.splitlines()[2].strip().startswith("^")
    assert not (BAD / "never.json").exists()


def test_conv_rows_as_scalesim_reads_them(tmp_path: Path) -> None:
    topo = tmp_path / "net.csv"
    topo.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,"
        " Num Filter, Strides,\n\n"
        "conv1, 226, 226, 3, 3, 3, 64, 1,\n"
        "s2 ,9,9,3,3,2,5,2, 1:1,\n",
        encoding="utf-8",
    )
    first, second = parse_topology(str(topo)).layers
    assert (first.name, first.ofmap_h, first.window, first.macs) == ("conv1", 224, 27, 86_704_128)
    # (9 - 3) // 2 + 1 = 4 outputs per side; windows start at 0, 2, 4, 6 and end at 8:
    # every one of the 9 rows/columns is read, 9 * 9 * 2 = 162 IFMAP words.
    assert (second.name, second.ofmap_h, second.ifmap_words) == ("s2", 4, 162)


def test_depthwise_rows_split_per_channel_as_scalesim_does(tmp_path: Path) -> None:
    topo = tmp_path / "dw.csv"
    topo.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,"
        " Num Filter, Strides,\nconv_DP1, 8, 8, 3, 3, 3, 1, 1,\n",
        encoding="utf-8",
    )
    layers = parse_topology(str(topo)).layers
    assert [layer.name for layer in layers] == [f"conv_DP1Channel_{i}" for i in range(3)]
    assert {layer.channels for layer in layers} == {1}


def test_gemm_rows_become_scalesims_conv(tmp_path: Path) -> None:
    topo = tmp_path / "g.csv"
    topo.write_text("Layer, M, N, K,\ngemm64, 64, 32, 16,\n", encoding="utf-8")
    parsed = parse_topology(str(topo))
    (layer,) = parsed.layers
    assert parsed.gemm
    # SCALE-Sim: IFMAP M x K, filter 1 x K, one channel, N filters -> M x 1 outputs.
    assert (layer.ifmap_h, layer.ifmap_w, layer.filter_w, layer.num_filters) == (64, 16, 16, 32)
    assert (layer.ofmap_px, layer.window, layer.macs) == (64, 16, 64 * 32 * 16)


def test_config_and_lowering() -> None:
    config = parse_config(str(BAD / "good.cfg"))
    assert (config.array_rows, config.array_cols, config.dataflow) == (8, 8, "os")
    assert config.bandwidth_words_per_cycle == (10,)
    (layer,) = parse_topology(str(BAD / "good.csv")).layers
    # tiny_in10: 8 x 8 = 64 output pixels, window 3 * 3 * 2 = 18, 4 filters.
    low = lower(layer, config)
    assert (low.sr, low.sc, low.t, low.folds) == (64, 4, 18, 8)
