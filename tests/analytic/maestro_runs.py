"""Replay MAESTRO's reference runs with ``analytic`` in compat mode and compare CSVs.

Each successful run of ``tests/data/maestro-reference/manifest.csv`` is translated flag
by flag (``--HW_file`` -> :func:`metronome.spec.maestro.parse_hw_file`, flags only ->
:meth:`metronome.spec.Hardware.maestro_flags`, boost's prefix flags such as ``--noc_bw`` resolved as
MAESTRO does), analysed, written as MAESTRO's CSV and compared with the reference CSV
column by column: integer columns exactly, floating-point columns within 0.1 %.
"""

from __future__ import annotations

import csv
import math
import shlex
from dataclasses import dataclass
from pathlib import Path

from metronome.analytic.api import analyze_layer
from metronome.analytic.csvout import maestro_csv_text, row_values
from metronome.analytic.engine import NocLevel
from metronome.spec.hardware import UNBOUNDED, Hardware
from metronome.spec.maestro import parse_hw_file, parse_mapping_file
from metronome.spec.results import LayerResult

DATA = Path(__file__).parent.parent / "data"
REFERENCE = DATA / "maestro-reference"
INPUTS = DATA / "maestro-inputs"

FLOAT_COLUMNS = frozenset({5, 6, 7, 8, 9, 11, 17, 18, 21, 23, 24, 25, 26, 31, 36, 41, 51, 52})
"""1-based MAESTRO columns printed as floating point; the others are integers."""
NAME_COLUMNS = frozenset({1, 2})
REL_TOL = 1e-3

_FLAGS = (
    "Mapping_file",
    "HW_file",
    "num_pes",
    "num_simd_lanes",
    "noc_bw_cstr",
    "noc_hop_latency",
    "noc_hops",
    "offchip_bw_cstr",
    "l1_size_cstr",
    "l2_size_cstr",
    "bw_sweep",
    "top_bw_only",
    "min_noc_bw",
    "max_noc_bw",
    "bw_tick",
)


def _resolve_flag(name: str) -> str:
    """boost::program_options prefix guessing: ``noc_bw`` -> ``noc_bw_cstr``."""
    if name in _FLAGS:
        return name
    matches = [f for f in _FLAGS if f.startswith(name)]
    return matches[0] if len(matches) == 1 else name


@dataclass(frozen=True)
class Run:
    name: str
    mapping: Path
    hardware: Hardware
    csv: Path
    sweep: tuple[int, ...] = ()


def _input_path(cwd: str, relative: str) -> Path:
    if cwd != ".":
        return INPUTS / cwd / relative
    if relative.startswith("data/"):
        return INPUTS / relative
    return REFERENCE / relative


def load_runs() -> list[Run]:
    """Every successful run of the manifest, translated."""
    runs = []
    with open(REFERENCE / "manifest.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["exit_code"] != "0":
                continue
            flags: dict[str, str] = {}
            for token in shlex.split(row["command"])[1:]:
                key, _, value = token.removeprefix("--").partition("=")
                flags[_resolve_flag(key)] = value
            lanes = int(flags.get("num_simd_lanes", "1"))
            if "HW_file" in flags:
                hardware = parse_hw_file(
                    _input_path(row["cwd"], flags["HW_file"]), simd_lanes=lanes
                )
            else:
                hardware = Hardware.maestro_flags(
                    num_pes=int(flags.get("num_pes", "7")),
                    l1_size=int(flags.get("l1_size_cstr", UNBOUNDED)),
                    l2_size=int(flags.get("l2_size_cstr", UNBOUNDED)),
                    noc_bw=int(flags.get("noc_bw_cstr", UNBOUNDED)),
                    noc_hops=int(flags.get("noc_hops", "1")),
                    noc_hop_latency=int(flags.get("noc_hop_latency", "0")),
                    offchip_bw=int(flags.get("offchip_bw_cstr", "70000")),
                    simd_lanes=lanes,
                )
            sweep: tuple[int, ...] = ()
            if flags.get("bw_sweep") == "true" and flags.get("top_bw_only") == "true":
                low, high = int(flags["min_noc_bw"]), int(flags["max_noc_bw"])
                sweep = tuple(range(low, high + 1, int(flags["bw_tick"])))
            runs.append(
                Run(
                    row["run_name"],
                    _input_path(row["cwd"], flags["Mapping_file"]),
                    hardware,
                    REFERENCE / row["csv_file"],
                    sweep,
                )
            )
    return runs


def analyze_run(run: Run) -> list[LayerResult]:
    """The run's layers in MAESTRO's CSV order (bandwidth sweeps: bandwidth-major)."""
    network = parse_mapping_file(run.mapping)
    results: list[LayerResult] = []
    settings = run.sweep or (None,)
    for bandwidth in settings:
        hardware = run.hardware
        nocs = None
        previous: tuple[int, ...] = (0,) * 6
        for index, entry in enumerate(network.layers):
            if bandwidth is not None:
                hardware = run.hardware.with_changes(noc_bw_elems_per_cycle=bandwidth)
                # MAESTRO hands NoC i to the i-th level counted from the innermost one.
                swept = NocLevel(bandwidth, run.hardware.noc_latency_cycles)
                levels = len(entry.require_mapping().cluster_sizes) + 1
                nocs = (*(NocLevel(70000, 1),) * (levels - 1), swept)
            result, previous = analyze_layer(
                entry.layer,
                entry.require_mapping(),
                hardware,
                maestro_compat=True,
                network=network.name,
                layer_index=index,
                previous_l1_counts=previous,
                nocs=nocs,
            )
            results.append(result)
    return results


def split_row(line: str) -> list[str]:
    return [field.strip() for field in line.rstrip("\n").split(",")]


def _number(text: str) -> float:
    return float(text.replace("-nan", "nan"))


def same(column: int, ours: str, theirs: str) -> bool:
    """Whether one field agrees (integers exactly, floats within 0.1 %)."""
    if column in NAME_COLUMNS:
        return True
    if column not in FLOAT_COLUMNS:
        return ours == theirs
    a, b = _number(ours), _number(theirs)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)


@dataclass(frozen=True)
class RowDiff:
    run: str
    row: int
    layer: str
    columns: tuple[tuple[int, str, str], ...]


def compare_run(run: Run) -> tuple[int, list[RowDiff], str]:
    """(rows compared, differing rows, our CSV text)."""
    results = analyze_run(run)
    text = maestro_csv_text(row_values(r) for r in results)
    ours = text.splitlines()[1:]
    theirs = run.csv.read_text().splitlines()[1:]
    diffs = []
    if len(ours) != len(theirs):
        raise AssertionError(f"{run.name}: {len(ours)} rows, MAESTRO has {len(theirs)}")
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        fa, fb = split_row(a), split_row(b)
        bad = tuple(
            (c, x, y) for c, (x, y) in enumerate(zip(fa, fb, strict=True), 1) if not same(c, x, y)
        )
        if bad:
            diffs.append(RowDiff(run.name, index, fb[1], bad))
    return len(theirs), diffs, text
