"""Hardware description shared by both engines.

All sizes and bandwidths are in tensor *elements* (MAESTRO has no data width; its
"Bytes" labels mean elements). ``UNBOUNDED`` (MAESTRO's ``INT_MAX``) stands for "no
constraint". Each engine reads the fields its model covers; the simulator-only fields
(topology, ports, latencies of L2 and off-chip memory) are ignored by the analytic model,
and the validation report lists them.

MAESTRO has two ways to give hardware, with different defaults, and both are reproduced
so any MAESTRO run can be repeated by translating its flags one to one:

* a hardware file (``--HW_file``): missing keys default to 1 PE and unbounded sizes
  and bandwidths, and the NoC latency of a transfer is ``NoC_NumHops`` (default 1);
* flags only: 7 PEs (MAESTRO's default), off-chip bandwidth 70000, and the NoC latency
  is ``noc_hops * noc_hop_latency`` (defaults 1 and 0, so latency 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from .source import Diagnostic, SpecError

__all__ = ["TOPOLOGIES", "UNBOUNDED", "Hardware"]

UNBOUNDED = 2**31 - 1
"""MAESTRO's INT_MAX: a size or bandwidth that constrains nothing."""

TOPOLOGIES: tuple[str, ...] = ("bus", "crossbar", "mesh", "tree", "systolic")
ARBITRATIONS: tuple[str, ...] = ("fifo", "round_robin")
L2_POSITIONS: tuple[str, ...] = ("corner", "edge")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hardware:
    """An accelerator: PEs with L1 buffers, a shared L2, a NoC and off-chip memory."""

    num_pes: int = 1
    simd_lanes: int = 1
    l1_size_elems: int = UNBOUNDED
    l2_size_elems: int = UNBOUNDED
    noc_bw_elems_per_cycle: int = UNBOUNDED
    noc_hops: int = 1
    noc_hop_latency_cycles: int = 0
    noc_latency_cycles: int = 0
    offchip_bw_elems_per_cycle: int = UNBOUNDED
    multicast: bool = True
    bytes_per_elem: int = 1
    # Elements one L1 read returns, for energy only (metronome.spec.energy.l1_read_accesses).
    l1_read_width_elems: int = 1
    # Simulator-only fields below: the analytic model has no notion of them.
    topology: str = "bus"
    noc_arbitration: str = "fifo"
    mesh_l2_position: str = "corner"
    l2_read_bw_elems_per_cycle: int = UNBOUNDED
    l2_write_bw_elems_per_cycle: int = UNBOUNDED
    offchip_latency_cycles: int = 0
    # Steps whose off-chip requests may be in flight at once (the fetcher's lookahead).
    offchip_max_outstanding_requests: int = 16
    adder_latency_cycles: int = 1
    noc_header_cycles: int = 0
    source: str = field(default="defaults", compare=False)

    def __post_init__(self) -> None:
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("_elems", "_per_cycle", "_requests")) or f.name in (
                "num_pes",
                "simd_lanes",
                "bytes_per_elem",
            ):
                if not isinstance(value, int) or value <= 0:
                    problems.append(
                        Diagnostic(f"hardware {f.name} must be an integer > 0, got {value!r}")
                    )
            elif (f.name.endswith("_cycles") or f.name == "noc_hops") and (
                not isinstance(value, int) or value < 0
            ):
                problems.append(
                    Diagnostic(f"hardware {f.name} must be an integer >= 0, got {value!r}")
                )
        if self.topology not in TOPOLOGIES:
            problems.append(
                Diagnostic(
                    f"unknown topology {self.topology!r}", hint="one of " + ", ".join(TOPOLOGIES)
                )
            )
        if self.noc_arbitration not in ARBITRATIONS:
            problems.append(
                Diagnostic(
                    f"unknown NoC arbitration {self.noc_arbitration!r}",
                    hint="one of " + ", ".join(ARBITRATIONS),
                )
            )
        if self.mesh_l2_position not in L2_POSITIONS:
            problems.append(
                Diagnostic(
                    f"unknown mesh L2 position {self.mesh_l2_position!r}",
                    hint="one of " + ", ".join(L2_POSITIONS),
                )
            )
        if problems:
            raise SpecError(problems)

    @classmethod
    def maestro_hw_file(
        cls,
        *,
        num_pes: int = 1,
        l1_size_cstr: int = UNBOUNDED,
        l2_size_cstr: int = UNBOUNDED,
        noc_bw_cstr: int = UNBOUNDED,
        offchip_bw_cstr: int = UNBOUNDED,
        noc_num_hops: int = 1,
        simd_lanes: int = 1,
        source: str = "hardware file",
    ) -> Hardware:
        """Hardware as MAESTRO builds it from ``--HW_file`` (latency = NoC_NumHops)."""
        return cls(
            num_pes=num_pes,
            simd_lanes=simd_lanes,
            l1_size_elems=l1_size_cstr,
            l2_size_elems=l2_size_cstr,
            noc_bw_elems_per_cycle=noc_bw_cstr,
            noc_hops=noc_num_hops,
            noc_hop_latency_cycles=1,
            noc_latency_cycles=noc_num_hops,
            offchip_bw_elems_per_cycle=offchip_bw_cstr,
            source=source,
        )

    @classmethod
    def maestro_flags(
        cls,
        *,
        num_pes: int = 7,
        l1_size: int = UNBOUNDED,
        l2_size: int = UNBOUNDED,
        noc_bw: int = UNBOUNDED,
        noc_hops: int = 1,
        noc_hop_latency: int = 0,
        offchip_bw: int = 70000,
        simd_lanes: int = 1,
        source: str = "command-line flags",
    ) -> Hardware:
        """Hardware as MAESTRO builds it from flags alone (latency = hops x hop latency)."""
        return cls(
            num_pes=num_pes,
            simd_lanes=simd_lanes,
            l1_size_elems=l1_size,
            l2_size_elems=l2_size,
            noc_bw_elems_per_cycle=noc_bw,
            noc_hops=noc_hops,
            noc_hop_latency_cycles=noc_hop_latency,
            noc_latency_cycles=noc_hops * noc_hop_latency,
            offchip_bw_elems_per_cycle=offchip_bw,
            source=source,
        )

    def with_changes(self, **changes: object) -> Hardware:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def describe(self) -> str:
        """One line summary for reports."""

        def show(value: int) -> str:
            return "unbounded" if value >= UNBOUNDED else str(value)

        return (
            f"{self.num_pes} PEs x {self.simd_lanes} lanes, L1 {show(self.l1_size_elems)},"
            f" L2 {show(self.l2_size_elems)} elems, NoC {show(self.noc_bw_elems_per_cycle)}"
            f" elems/cycle latency {self.noc_latency_cycles}, off-chip"
            f" {show(self.offchip_bw_elems_per_cycle)} elems/cycle, {self.topology} NoC"
            f" ({self.source})"
        )
