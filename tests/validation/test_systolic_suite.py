"""``metronome validate scenarios/systolic``: the closed form, the executed array and
SCALE-Sim's reports agree on every shared run; manifests with bad entries are rejected
at the offending line."""

from __future__ import annotations

from pathlib import Path

import pytest

from metronome.validation.cli import main
from metronome.validation.systolic_suite import EXACT, compare_systolic, load_manifest

REPO = Path(__file__).parents[2]
MANIFEST = REPO / "scenarios" / "systolic" / "scalesim_reference.yaml"


def test_three_way_comparison_on_every_shared_run() -> None:
    cases = load_manifest(MANIFEST)
    assert len(cases) == 21
    rows = compare_systolic(cases)
    exact = [r for r in rows if r.metric in EXACT]
    assert len(exact) == 21 * len(EXACT)
    assert all(r.scalesim is not None and r.ok for r in exact)


def test_validate_hook_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(MANIFEST), "--report", str(tmp_path)]) == 0
    assert "126/126 exact metrics equal" in capsys.readouterr().out
    assert "**differs**" not in (tmp_path / "systolic.md").read_text(encoding="utf-8")


def test_bad_manifest_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: systolic\nruns:\n  - name: x\n    topology: missing.csv\n    config: y.cfg\n",
        encoding="utf-8",
    )
    assert main(["validate", str(bad), "--report", str(tmp_path / "r")]) == 2
    assert f"{bad}:4:15: error: no such file: missing.csv" in capsys.readouterr().err
