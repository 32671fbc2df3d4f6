"""From a top-level analysis to the project's result schema and MAESTRO's 52 columns.

Energy, area and power follow MAESTRO's cost tables (``BASE_constants.hpp``,
``DSE_cost-database.hpp``, ``DSE_scaling-coefficients.hpp``):

* CSV energy (nJ) = 0.00023 x [18.61 x (input, weight L2 reads and writes + output L2
  writes) + 1.68 x (all six L1 counts)] (no MAC energy, no output L2 reads);
* ``energy_nj`` (the metric both engines share) = the chosen :mod:`metronome.spec.energy` table's
  price of :func:`access_counts`: MACs, the six L1 counts (reads as ``l1_read_accesses``:
  ceil(reads / ``Hardware.l1_read_width_elems``) per tensor), the six L2 counts, NoC
  element-hops and off-chip accesses, counted as the simulator counts them;
* area = P x (283 x lanes + 0.104 x L1) + 0.104 x L2 + 101.7938 x (14.662 P + 28.895) x BW
  + max(1, 1.2886 P^2 + 5.5814 P - 23.711) x 395.473 (um^2);
* power = P x (1.2223 x lanes + 0.00345 x L1) + 0.00345 x L2
  + 0.8 x (14.662 P + 28.895) / 1000 x BW + 0.34 x max(1, (1.2886 P^2 + ...) / 1000) (mW);

with P the configured PEs, L1/L2 the size requirements in elements and BW the NoC
bandwidth (an unbounded NoC makes both astronomically large, as in MAESTRO).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from metronome.spec.energy import AccessCounts, EnergyTable, l1_read_accesses
from metronome.spec.hardware import Hardware
from metronome.spec.results import LayerResult, TensorCounts, make_tensors

from .cint import fdiv
from .engine import LevelResult

__all__ = [
    "L1_ACCESS_MAC_UNITS",
    "L2_ACCESS_MAC_UNITS",
    "MAC_ENERGY_NJ",
    "HardwareCost",
    "hardware_cost",
    "layer_result",
]

MAC_ENERGY_NJ = 0.00023
L1_ACCESS_MAC_UNITS = 1.68
L2_ACCESS_MAC_UNITS = 18.61

_MAC_AREA, _MAC_POWER = 283.0, 1.2223
_SRAM_AREA, _SRAM_POWER = 0.104, 0.00345
_BUS_AREA, _BUS_POWER = 101.7938, 0.8
_ARBITER_AREA, _ARBITER_POWER = 395.473, 0.34
_ARBITER_C2, _ARBITER_C1, _ARBITER_C0 = 1.2886, 5.5814, -23.711
_BUS_C1, _BUS_C0 = 14.662, 28.895

_TENSOR_ORDER = ("input", "weight", "output")


@dataclass(frozen=True, slots=True)
class HardwareCost:
    """Area (um^2) and power (mW) of the accelerator MAESTRO's DSE model describes."""

    area_um2: float
    power_mw: float
    pe_power_mw: float
    l1_power_mw: float
    l2_power_mw: float
    noc_power_mw: float


def hardware_cost(num_pes: int, lanes: int, noc_bw: int, l1: int, l2: int) -> HardwareCost:
    """MAESTRO's area/power model for P PEs, L1/L2 sizes (elements) and NoC bandwidth."""
    l1_cells = float(l1 or 1)
    l2_cells = float(l2 or 1)
    pes = float(num_pes)
    bus_scale = _BUS_C1 * pes + _BUS_C0
    arbiter_scale = _ARBITER_C2 * pes**2 + _ARBITER_C1 * pes + _ARBITER_C0
    pe_area = _MAC_AREA * lanes + _SRAM_AREA * l1_cells
    bus_area = _BUS_AREA * bus_scale * noc_bw
    arbiter_area = max(_ARBITER_AREA * arbiter_scale, _ARBITER_AREA)
    area = pe_area * num_pes + _SRAM_AREA * l2_cells + (bus_area + arbiter_area)
    pe_power = _MAC_POWER * lanes * num_pes
    l1_power = _SRAM_POWER * l1_cells * num_pes
    l2_power = _SRAM_POWER * l2_cells
    bus_power = _BUS_POWER * bus_scale / 1000 * noc_bw
    arbiter_power = max(_ARBITER_POWER * arbiter_scale / 1000, _ARBITER_POWER)
    noc_power = bus_power + arbiter_power
    power = (_MAC_POWER * lanes + _SRAM_POWER * l1_cells) * num_pes + l2_power + noc_power
    return HardwareCost(area, power, pe_power, l1_power, l2_power, noc_power)


def _i32(value: int) -> int:
    """``value`` stored in a C ``int`` (MAESTRO keeps the buffer sizes in one)."""
    return (value + 2**31) % 2**32 - 2**31


def csv_energy_nj(top: LevelResult, l1_counts: tuple[int, ...], multilevel: bool) -> float:
    """MAESTRO's CSV energy (col 5), adding terms in MAESTRO's order."""
    energy = 0.0
    l2_terms = (
        top.l2_reads[0],
        top.l2_writes[0],
        top.l2_reads[1],
        top.l2_writes[1],
        top.l2_writes[2],
    )

    def add_l2() -> None:
        nonlocal energy
        for count in l2_terms:
            energy += count * L2_ACCESS_MAC_UNITS

    def add_l1() -> None:
        nonlocal energy
        for count in l1_counts:
            energy += count * L1_ACCESS_MAC_UNITS

    if multilevel:
        add_l1()
        add_l2()
    else:
        add_l2()
        add_l1()
    return energy * MAC_ENERGY_NJ


def l1_counts_of(top: LevelResult) -> tuple[int, ...]:
    """The six top-level L1 counts in MAESTRO's energy order (reads then writes)."""
    return (*top.l1_reads, *top.l1_writes)


def offchip_counts(top: LevelResult, output_elems: int) -> tuple[int, int]:
    """Elements read from and written to off-chip memory: L2 is filled from off-chip
    with every input and weight element it is written (its input and weight writes),
    and each output element leaves once (the model's L2 holds what a step needs)."""
    return top.l2_writes[0] + top.l2_writes[1], output_elems


def noc_elem_hops(top: LevelResult, noc_hops: int) -> int:
    """Elements the NoC moves times the hops each pays: every input and weight element
    L2 sends to the PEs and every output element the PEs send back (output L2 reads are
    L2's own read-modify-write, not NoC traffic)."""
    return noc_hops * (top.l2_reads[0] + top.l2_reads[1] + top.l2_writes[2])


def l1_read_access_count(top: LevelResult, width: int) -> int:
    """L1 read accesses with ``width`` elements per read
    (:func:`metronome.spec.energy.l1_read_accesses`)."""
    return sum(l1_read_accesses(reads, width) for reads in top.l1_reads)


def access_counts(
    top: LevelResult, noc_hops: int, output_elems: int, l1_read_width: int = 1
) -> AccessCounts:
    """What the model counts, in the kinds an energy table prices."""
    return AccessCounts(
        macs=top.macs,
        l1_accesses=l1_read_access_count(top, l1_read_width) + sum(top.l1_writes),
        l2_accesses=sum(top.l2_reads) + sum(top.l2_writes),
        noc_elem_hops=noc_elem_hops(top, noc_hops),
        offchip_accesses=sum(offchip_counts(top, output_elems)),
    )


def layer_result(
    *,
    engine: str,
    network: str,
    layer_name: str,
    layer_index: int,
    top: LevelResult,
    hardware: Hardware,
    input_elems: int,
    weight_elems: int,
    output_elems: int,
    multilevel: bool,
    energy_l1_counts: tuple[int, ...],
    table: EnergyTable,
    int32_sizes: bool,
    extra_metrics: tuple[tuple[str, int | float], ...] = (),
) -> LayerResult:
    """The result schema entry of one layer (every MAESTRO column is a metric, and
    each of ``extra_metrics``)."""
    runtime, macs = top.runtime, top.macs
    l2_total = sum(top.l2_size_req)
    l1_total = sum(top.innermost_l1_size_req)
    if int32_sizes:
        l2_total, l1_total = _i32(l2_total), _i32(l1_total)
    noc_bw = min(hardware.noc_bw_elems_per_cycle, 2**31 - 1)
    cost = hardware_cost(hardware.num_pes, hardware.simd_lanes, noc_bw, l1_total, l2_total)
    energy_csv = csv_energy_nj(top, energy_l1_counts, multilevel)
    l1_accesses = l1_read_access_count(top, hardware.l1_read_width_elems)
    elem_hops = noc_elem_hops(top, hardware.noc_hops)
    offchip = offchip_counts(top, output_elems)
    throughput = fdiv(macs, runtime)
    perf_per_energy = fdiv(fdiv(macs, runtime), energy_csv) * 1e9
    ops_per_j = fdiv(macs, energy_csv) * 1e9
    mc_weight = fdiv(top.l1_writes[1], top.l2_reads[1])
    mc_input = fdiv(top.l1_writes[0], top.l2_reads[0])
    reuse = [fdiv(top.l1_reads[t], top.l1_writes[t]) for t in range(3)]
    capacity = runtime * hardware.num_pes * hardware.simd_lanes
    metrics: dict[str, int | float] = {
        "l1_size_req_elems": l1_total,
        "l2_size_req_elems": l2_total,
        "noc_bw_req_peak_elems_per_cycle": top.peak_bw,
        "noc_bw_req_avg_elems_per_cycle": top.avg_bw,
        "offchip_bw_req_elems_per_cycle": top.offchip_req,
        "energy_nj": table.energy_nj(
            access_counts(top, hardware.noc_hops, output_elems, hardware.l1_read_width_elems)
        ),
        "l1_read_accesses": l1_accesses,
        "noc_traversals_elem_hops": elem_hops,
        "offchip_reads_elems": offchip[0],
        "offchip_writes_elems": offchip[1],
        "avg_active_pes": top.avg_active,
        "utilization": fdiv(macs, capacity),
        "num_pes": hardware.num_pes,
        "simd_lanes": hardware.simd_lanes,
        "maestro_csv_energy_nj": energy_csv,
        "throughput_macs_per_cycle": throughput,
        "throughput_per_energy_macs_per_cycle_per_j": perf_per_energy,
        "ops_per_j": ops_per_j,
        "area_um2": cost.area_um2,
        "power_mw": cost.power_mw,
        "pe_power_mw": cost.pe_power_mw,
        "l1_power_mw": cost.l1_power_mw,
        "l2_power_mw": cost.l2_power_mw,
        "noc_power_mw": cost.noc_power_mw,
        "noc_bw_req_elems_per_cycle": top.peak_bw,
        "multicast_factor_weight_ratio": mc_weight,
        "multicast_factor_input_ratio": mc_input,
        "input_tensor_elems": input_elems,
        "weight_tensor_elems": weight_elems,
        "ingress_delay_min_cycles": top.ingress.min,
        "ingress_delay_max_cycles": top.ingress.max,
        "ingress_delay_avg_cycles": top.ingress.avg,
        "egress_delay_min_cycles": top.egress.min,
        "egress_delay_max_cycles": top.egress.max,
        "egress_delay_avg_cycles": top.egress.avg,
        "compute_delay_min_cycles": top.compute.min,
        "compute_delay_max_cycles": top.compute.max,
        "compute_delay_avg_cycles": top.compute.avg,
        "arithmetic_intensity_macs_per_elem": top.arithmetic_intensity,
    }
    if top.offchip_reads >= 0:
        metrics["offchip_reads_elems"] = top.offchip_reads
        metrics["offchip_writes_elems"] = top.offchip_writes
    for t, name in enumerate(_TENSOR_ORDER):
        metrics[f"{name}_reuse_factor_ratio"] = reuse[t]
        metrics[f"{name}_l2_size_req_elems"] = top.l2_size_req[t]
        metrics[f"{name}_l1_size_req_elems"] = top.innermost_l1_size_req[t]
    metrics.update(extra_metrics)
    notes: list[str] = []
    finite = sorted(metrics.items())
    # A sum of the floats is finite only if each is (one that overflows takes the
    # long way too).
    if not math.isfinite(sum([v for v in metrics.values() if isinstance(v, float)])):
        finite = []
        for key, value in sorted(metrics.items()):
            if isinstance(value, float) and not math.isfinite(value):
                notes.append(f"undefined: {key} = {_nonfinite_text(value)}")
            else:
                finite.append((key, value))
    tensors = make_tensors(
        {
            name: TensorCounts(
                l1_reads=top.l1_reads[t],
                l1_writes=top.l1_writes[t],
                l2_reads=top.l2_reads[t],
                l2_writes=top.l2_writes[t],
            )
            for t, name in enumerate(_TENSOR_ORDER)
        }
    )
    result = LayerResult(
        engine=engine,
        network=network,
        layer=layer_name,
        layer_index=layer_index,
        runtime_cycles=runtime,
        macs=macs,
        tensors=tensors,
        metrics=tuple(finite),
        notes=tuple(notes),
    )
    return result


def _nonfinite_text(value: float) -> str:
    """How C++ iostreams print a non-finite double on x86 (NaNs from 0/0 are negative)."""
    if math.isnan(value):
        return "-nan"
    return "inf" if value > 0 else "-inf"
