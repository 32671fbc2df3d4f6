"""``metronome check|analyze|simulate|validate`` on fused scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metronome.validation.cli import main

TWO = "scenarios/fused/two_convs.yaml"


def test_check_analyze_simulate_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each command takes a fused scenario; analyze and simulate write the same schema,
    equal on the exact metrics; validate reports every metric of both engines."""
    assert main(["check", TWO]) == 0
    assert "group g: c1..c2, tile 4x4" in capsys.readouterr().out
    a_json, s_json = tmp_path / "a.json", tmp_path / "s.json"
    assert main(["analyze", TWO, "--json", str(a_json)]) == 0
    assert main(["simulate", TWO, "--functional", "--json", str(s_json)]) == 0
    assert "fused output equals numpy's" in capsys.readouterr().out
    a, s = json.loads(a_json.read_text()), json.loads(s_json.read_text())
    assert (a["engine"], s["engine"]) == ("analytic", "sim")
    for key in ("offchip_reads", "offchip_writes", "onchip_buffer_req_elems", "macs"):
        assert a["groups"][0][key] == s["groups"][0][key]
    assert a["groups"][0]["tensors"] == s["groups"][0]["tensors"]
    report = tmp_path / "report"
    assert main(["validate", TWO, "--report", str(report), "--jobs", "1"]) == 0
    text = (report / "fused.md").read_text()
    assert "| g | c1/onchip_buffer_req_elems | 93 | 93 | equal |" in text
    # c1 (derived): 3 output channels x 8 x 8 outputs (padding 1) x 2 input channels x 3 x 3
    # = 3,456 MACs, none recomputed (c1 is retained), with separators like the report's.
    assert "| g | c1/macs | 3,456 | 3,456 | equal |" in text
    assert "Functional output: equals numpy." in text


def test_bad_fused_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad fused scenario: file:line:col, exit 2, no traceback, nothing written."""
    bad = tmp_path / "bad.yaml"
    text = Path(TWO).read_text().replace("tile: {P: 4, Q: 4}", "tile: {P: 4, Q: 0}")
    bad.write_text(text)
    line = text.splitlines().index("    tile: {P: 4, Q: 0}") + 1
    out = tmp_path / "o.json"
    for command in (["check"], ["analyze", "--json", str(out)], ["simulate"]):
        assert main([command[0], str(bad), *command[1:]]) == 2
        err = capsys.readouterr().err
        assert f"{bad}:{line}:" in err
        assert "Traceback" not in err
    assert not out.exists()
    assert main(["analyze", TWO, "--maestro-compat"]) == 2
    assert main(["simulate", TWO, "--inputs", "x.npz"]) == 2


TILE = "tile: {P: 4, Q: 4}"
ORDER = "order: [P, Q]"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({TILE: "tile: {P: 4, Q: 4, K: 5}"}, "tile K 5 is larger than the 2"),
        ({ORDER: "order: [P, K, Q]"}, "K only when the tile gives K"),
        ({TILE: "tile: {P: 4, Q: 4, K: 1}", ORDER: "order: [P, Q, P]"}, "K once"),
    ],
)
def test_bad_channel_tiles_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, str], message: str
) -> None:
    """Illegal channel tiles and loop orders: file:line:col with the message, exit 2."""
    bad = tmp_path / "bad.yaml"
    text = Path(TWO).read_text()
    for old, new in changes.items():
        text = text.replace(old, new)
    bad.write_text(text)
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:" in err
    assert ": error: " in err
    assert message in err
    assert "Traceback" not in err
