"""Broken inputs: each file in ``bad/`` must be rejected by ``metronome check`` with exit
code 2, no traceback, and exactly the first diagnostic line stored in its ``.err`` file
(``file:line:col: error: message``). A first-line comment ``// args: ...`` gives extra
command-line arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from metronome.validation.cli import main

BAD = Path(__file__).parent / "bad"
CASES = sorted(p for p in BAD.iterdir() if p.suffix != ".err")


def _extra_args(path: Path) -> list[str]:
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", errors="replace")
    marker = "// args:"
    return first.split(marker, 1)[1].split() if marker in first else []


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert all(p.with_suffix(".err").exists() for p in CASES)


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_bad_input_gives_exact_diagnostic(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    code = main(["check", path.name, *_extra_args(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    expected = path.with_suffix(".err").read_text(encoding="utf-8").strip()
    assert err.splitlines()[0] == expected
    # The source line and a caret follow the message (except for whole-file errors).
    lines = err.splitlines()
    assert lines[2].strip().startswith("^")


def test_process_exit_code_is_2_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "metronome.validation", "check", "unknown_dim.m", "zero_size.m"],
        cwd=BAD,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count(": error: ") == 2


def test_missing_file_is_an_error_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(BAD / "does-not-exist.m")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err
    assert "Traceback" not in err
