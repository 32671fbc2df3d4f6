"""MAESTRO's CSV: the exact 52-column header and rows as its C++ writer prints them.

Integers print as integers; floating-point values as C++ iostreams do by default
(``%g`` with 6 significant digits: ``1.21023e+10``, ``4.125``, ``0``), non-finite values
as glibc prints them (``inf``, ``-nan``). Field separators are MAESTRO's own mix of
``,`` and ``, ``, so notebooks that read MAESTRO's files read these unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from metronome.spec.fileio import atomic_write_text
from metronome.spec.results import LayerResult, RunResult

__all__ = [
    "COLUMN_KEYS",
    "MAESTRO_CSV_HEADER",
    "cpp_number",
    "format_row",
    "maestro_csv",
    "maestro_csv_text",
    "row_values",
    "write_maestro_csv",
]

MAESTRO_CSV_HEADER = (
    "Neural Network Name, Layer Number, NumPEs, Runtime (Cycles), Activity count-based"
    " Energy (nJ), Throughput (MACs/Cycle), Throughput Per Energy (GMACs/s*J), Area, Power,"
    " NoC BW Req (Elements/cycle), Avg BW Req, Peak BW Req, Vector Width, Offchip BW Req"
    " (Elements/cycle),  L2 SRAM Size Req (Bytes), L1 SRAM Size Req (Bytes), Multicasting"
    " Factor (Weight), Multicasting Factor (Input), Num Total Input Pixels, Num Total Weight"
    " Pixels, Ops/J, Num MACs, PE power, L1 power, L2 power, NOC power, input l1 read, input"
    " l1 write, input l2 read, input l2 write, input reuse factor,filter l1 read, filter l1"
    " write, filter l2 read, filter l2 write, filter reuse factor,output l1 read, output l1"
    " write, output l2 read, output l2 write, output reuse factor,Ingress Delay (Min),"
    " Ingress Delay (Max), Ingress Delay (Avg), Egress Delay (Min), Egress Delay (Max), "
    " Egress Delay (Avg),Compute Delay (Min), Compute Delay (Min), Compute Delay (Avg),Avg"
    " number of utilized PEs, Arithmetic Intensity"
)
"""MAESTRO's header line, odd spaces and the duplicated "Compute Delay (Min)" included."""

_NUMERIC_COLUMNS = 50
_HEAD = 26
"""Fields 1..26 are joined by ',' alone; the 15 tensor fields and the delays by ', '."""


def cpp_number(value: int | float | str) -> str:
    """``value`` as ``std::ostream << value`` prints it (default format, precision 6)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "-nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def format_row(values: Sequence[int | float | str]) -> str:
    """One CSV line (without the newline) from the 52 values in column order."""
    if len(values) != _NUMERIC_COLUMNS + 2:
        raise ValueError(f"a MAESTRO row has 52 fields, got {len(values)}")
    text = [cpp_number(v) for v in values]
    head = ",".join(text[:_HEAD])
    tensors = "".join(", ".join(text[i : i + 5]) + ", " for i in range(_HEAD, _HEAD + 15, 5))
    tail = ", ".join(text[_HEAD + 15 :])
    return f"{head},{tensors}{tail}"


def maestro_csv_text(rows: Iterable[Sequence[int | float | str]]) -> str:
    """A whole CSV file: header and one line per row, each ending in a newline."""
    lines = [MAESTRO_CSV_HEADER]
    lines.extend(format_row(row) for row in rows)
    return "\n".join(lines) + "\n"


COLUMN_KEYS: tuple[str, ...] = (
    "network",
    "layer",
    "num_pes",
    "runtime_cycles",
    "maestro_csv_energy_nj",
    "throughput_macs_per_cycle",
    "throughput_per_energy_macs_per_cycle_per_j",
    "area_um2",
    "power_mw",
    "noc_bw_req_elems_per_cycle",
    "noc_bw_req_avg_elems_per_cycle",
    "noc_bw_req_peak_elems_per_cycle",
    "simd_lanes",
    "offchip_bw_req_elems_per_cycle",
    "l2_size_req_elems",
    "l1_size_req_elems",
    "multicast_factor_weight_ratio",
    "multicast_factor_input_ratio",
    "input_tensor_elems",
    "weight_tensor_elems",
    "ops_per_j",
    "macs",
    "pe_power_mw",
    "l1_power_mw",
    "l2_power_mw",
    "noc_power_mw",
    *(
        key
        for tensor in ("input", "weight", "output")
        for key in (
            f"tensors.{tensor}.l1_reads",
            f"tensors.{tensor}.l1_writes",
            f"tensors.{tensor}.l2_reads",
            f"tensors.{tensor}.l2_writes",
            f"{tensor}_reuse_factor_ratio",
        )
    ),
    "ingress_delay_min_cycles",
    "ingress_delay_max_cycles",
    "ingress_delay_avg_cycles",
    "egress_delay_min_cycles",
    "egress_delay_max_cycles",
    "egress_delay_avg_cycles",
    "compute_delay_min_cycles",
    "compute_delay_max_cycles",
    "compute_delay_avg_cycles",
    "avg_active_pes",
    "arithmetic_intensity_macs_per_elem",
)
"""The result key behind each of MAESTRO's 52 columns, in column order."""

_NONFINITE = {"-nan": math.nan, "nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def row_values(result: LayerResult) -> tuple[int | float | str, ...]:
    """The 52 column values of one analytic :class:`LayerResult`.

    Metrics that are undefined for the layer (MAESTRO prints ``-nan``) are not stored
    as numbers in the result schema; their value is recorded in a note.
    """
    flat: dict[str, int | float | str] = dict(result.flat())
    flat["network"] = result.network
    flat["layer"] = result.layer
    for note in result.notes:
        if note.startswith("undefined: "):
            key, _, text = note.removeprefix("undefined: ").partition(" = ")
            flat[key] = _NONFINITE.get(text, math.nan)
    missing = [k for k in COLUMN_KEYS if k not in flat]
    if missing:
        raise KeyError(f"result of layer {result.layer!r} lacks {', '.join(missing)}")
    return tuple(flat[k] for k in COLUMN_KEYS)


def maestro_csv(run: RunResult) -> str:
    """MAESTRO's CSV for a whole run: header and one row per layer."""
    return maestro_csv_text(row_values(layer) for layer in run.layers)


def write_maestro_csv(run: RunResult, path: str | Path) -> None:
    """Write :func:`maestro_csv` of ``run`` to ``path`` atomically (replacing it; MAESTRO
    itself appends to an existing file)."""
    atomic_write_text(path, maestro_csv(run))
