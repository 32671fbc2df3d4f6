"""``metronome simulate/analyze TOPOLOGY.csv --scalesim-config CFG``: the JSON's
``scalesim`` object, byte-identical outputs, and flags that do not apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metronome.spec.scalesim import SCALESIM_COLUMNS
from metronome.validation.cli import main

RUN = Path(__file__).parents[1] / "data" / "scalesim" / "runs" / "tiny_in10_ws_8x8"


@pytest.mark.parametrize("command", ["simulate", "analyze"])
def test_json_has_the_scalesim_object_and_is_deterministic(command: str, tmp_path: Path) -> None:
    outs = []
    for name in ("a.json", "b.json"):
        out = tmp_path / name
        args = [command, str(RUN / "topology.csv"), "--scalesim-config", str(RUN / "scale.cfg")]
        assert main([*args, "--json", str(out)]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    (layer,) = json.loads(outs[0])["layers"]
    assert sorted(layer["scalesim"]) == sorted(SCALESIM_COLUMNS)
    # SCALE-Sim's COMPUTE_REPORT for this run: Total Cycles 257 (3 folds of 86 cycles,
    # minus one: its last cycle's index).
    assert layer["scalesim"]["total_cycles"] == 257 == 3 * 86 - 1
    assert layer["runtime_cycles"] == 258


def test_overlap_folds_shortens_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", str(RUN / "topology.csv"), "--scalesim-config", str(RUN / "scale.cfg")]
    assert main([*args, "--overlap-folds"]) == 0
    out = capsys.readouterr().out
    # WS on 8x8, T = 64: streams every max(T, R) = 64 cycles after the first at R = 8;
    # the last of 3 folds ends 64 + 8 + 8 - 2 = 78 cycles after its stream began:
    # 8 + 2 * 64 + 78 = 214 cycles, Total Cycles 213.
    assert " 213 " in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--overlap-folds"], "--overlap-folds needs --scalesim-config"),
        (["--num-pes", "4", "--scalesim-config", "x.cfg"], "--num-pes does not apply"),
    ],
)
def test_flags_that_do_not_apply(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(RUN / "topology.csv"), *extra]) == 2
    assert message in capsys.readouterr().err
