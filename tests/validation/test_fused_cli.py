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
    assert "functional output: equals numpy." in text
    assert "| g | runtime_cycles | 2,880 | 2,965 | explained |" in text


def test_validate_puts_fused_groups_in_report_and_guard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fused groups enter report.md (answer line, table, link to the fused page),
    results.csv and the accuracy guard: an explained runtime gap passes, the same gap
    grown past the stored error fails (exit 1), like a single layer's."""
    report = tmp_path / "report"
    baseline = tmp_path / "baseline.json"
    assert (
        main(
            [
                "validate",
                TWO,
                "--report",
                str(report),
                "--update-baseline",
                "--baseline",
                str(baseline),
            ]
        )
        == 0
    )
    text = (report / "report.md").read_text()
    assert "## Fused-layer groups: closed form vs executed schedule" in text
    assert "fused: 1 scenario(s), 1 group(s): off-chip transfers and MACs equal on 1/1" in text
    assert "every difference explained" in text
    assert "](fused.md)" in text
    assert (report / "fused.html").exists()
    # two_convs (simulated, tests/validation/test_fused.py): 2,880 analytic vs 2,965
    # simulated cycles; the split re-runs both engines without dataflows.
    assert "| two_convs/g | 4 | 364 | 6,912 | 297 | 2,880 | 2,965 | -2.87% |" in text
    csv = (report / "results.csv").read_text()
    assert "two_convs,,g,0,fused:analytic~sim,runtime_cycles,2880.0,2965.0," in csv
    data = json.loads(baseline.read_text())
    key = "two_convs/0:g/fused:analytic~sim/runtime_cycles"
    assert data["errors"][key] == pytest.approx(85 / 2965)
    capsys.readouterr()
    assert main(["validate", TWO, "--report", str(report), "--baseline", str(baseline)]) == 0
    data["errors"][key] = 0.0
    baseline.write_text(json.dumps(data))
    assert main(["validate", TWO, "--report", str(report), "--baseline", str(baseline)]) == 1
    assert key in capsys.readouterr().err


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
    report = tmp_path / "report"
    assert main(["validate", str(bad), TWO, "--report", str(report)]) == 2
    assert f"{bad}:{line}:" in capsys.readouterr().err
    assert not report.exists()
    assert main(["analyze", TWO, "--maestro-compat"]) == 2
    assert main(["simulate", TWO, "--inputs", "x.npz"]) == 2


def test_validate_exits_1_on_a_transfer_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An off-chip count that differs between the engines is never explained: exit 1,
    the row on stderr and MISMATCH in the report."""
    import dataclasses

    from metronome.sim import fused as sim_fused

    real = sim_fused.simulate_fused

    def one_read_more(scenario: object, **kwargs: object) -> sim_fused.FusedRun:
        run = real(scenario, **kwargs)  # type: ignore[arg-type]
        g = run.result.groups[0]
        wrong = dataclasses.replace(g, offchip_reads=g.offchip_reads + 1)
        return dataclasses.replace(run, result=dataclasses.replace(run.result, groups=(wrong,)))

    monkeypatch.setattr(sim_fused, "simulate_fused", one_read_more)
    report = tmp_path / "report"
    assert main(["validate", TWO, "--report", str(report)]) == 1
    # reads (derived): the 2 x 8 x 8 = 128 input elements once, each layer's weights once
    # (c1 3 x 2 x 3 x 3 = 54, c2 2 x 3 x 3 x 3 = 54): 236; the patched simulator says 237.
    assert "g offchip_reads: analytic 236, sim 237 (MISMATCH)" in capsys.readouterr().err
    assert "offchip_reads MISMATCH" in (report / "report.md").read_text()


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
