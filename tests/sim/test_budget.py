"""Hardware too large to simulate is refused up front, with the estimate and the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from metronome.sim import SimOptions, simulate
from metronome.sim.budget import (
    BYTES_PER_LINK,
    BYTES_PER_PE,
    MEMORY_LIMIT_BYTES,
    estimate_bytes,
)
from metronome.spec.hardware import Hardware
from metronome.spec.loader import load_network
from metronome.spec.source import SpecError
from metronome.validation.cli import main

from .helpers import CROSSCHECK

TWO_LEVEL = CROSSCHECK / "x09_two_level.m"


def test_estimate_counts_links_and_per_pe_state() -> None:
    # A bus has 2 directed links per PE (bus->pe, pe->bus): 10 PEs cost
    # 10 * 2 * BYTES_PER_LINK + 10 * BYTES_PER_PE.
    hw = Hardware(num_pes=10)
    assert estimate_bytes(hw, 10) == 20 * BYTES_PER_LINK + 10 * BYTES_PER_PE


def test_cli_refuses_a_hundred_million_pes_before_printing_or_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code = main(["simulate", str(TWO_LEVEL), "--num-pes", "100000000", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert not out.exists()
    # Cluster(2) leaves 10^8 // 2 clusters of 2 PEs: 10^8 PEs; a bus: 2 links each.
    need = 100_000_000 * (2 * BYTES_PER_LINK + BYTES_PER_PE)
    assert (
        "error: the simulator would build 100000000 PEs on a bus NoC,"
        f" estimated {need / 2**30:.1f} GiB" in captured.err
    )
    assert f"the limit is {MEMORY_LIMIT_BYTES / 2**30:.1f} GiB" in captured.err
    assert "Traceback" not in captured.err


def test_library_callers_are_refused_too() -> None:
    entry = load_network(str(TWO_LEVEL)).layers[0]
    with pytest.raises(SpecError, match="the limit is"):
        simulate(entry.layer, entry.require_mapping(), Hardware(num_pes=10**8), SimOptions())


def test_a_run_just_under_the_limit_is_not_refused_by_the_check() -> None:
    from metronome.sim.budget import check_budget

    # The largest PE count whose bus estimate fits: limit // (2 links * 700 + 11,000).
    fits = MEMORY_LIMIT_BYTES // (2 * BYTES_PER_LINK + BYTES_PER_PE)
    mapping = load_network(str(TWO_LEVEL)).layers[0].require_mapping()
    # x09's clusters hold 2 PEs, so an even count is used whole.
    even = fits - fits % 2
    check_budget(mapping, Hardware(num_pes=even))
    with pytest.raises(SpecError):
        check_budget(mapping, Hardware(num_pes=even + 2))
