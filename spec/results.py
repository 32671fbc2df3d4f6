"""The result schema both engines produce, so the harness can compare them key by key.

Declarative only: names, units and containers, no formulas. Every quantity carries its
unit in its name (``runtime_cycles``, ``l2_size_req_elems``,
``noc_bw_req_peak_elems_per_cycle``). Counts are in tensor elements.

Metrics every engine must report (the harness compares these):

===================================  =====================================================
key                                  meaning
===================================  =====================================================
``runtime_cycles``                   cycles from the first transfer to the last write-back
``macs``                             MACs performed (a MAC done twice counts twice)
``tensors.T.l1_reads`` ...           per tensor T: L1 reads/writes, L2 reads/writes
``l1_size_req_elems``                L1 capacity one PE needs (sum over tensors)
``l2_size_req_elems``                L2 capacity the mapping needs
``noc_bw_req_peak_elems_per_cycle``  peak NoC bandwidth needed to never stall
``noc_bw_req_avg_elems_per_cycle``   average NoC bandwidth needed
``offchip_bw_req_elems_per_cycle``   off-chip bandwidth needed
``energy_nj``                        activity-count energy (MAC + L1 + L2), nJ
``avg_active_pes``                   mean number of PEs doing MACs
``utilization``                      macs / (runtime_cycles * num_pes * simd_lanes)
===================================  =====================================================

Engines add their own keys (``macs_redundant``, ``offchip_reads_elems``, ...) to
``metrics``; the harness compares keys present in both and reports the rest.

Steady-state figures (:class:`SteadyState`, keys ``steady_*``; both engines fill them) are
the seed paper's Fig. 6 quantities: they cover only the *steady* steps of a layer, steps
where no loop of any level is at a clipped (edge) position and which are not the layer's
first step (definition and how each engine finds those steps: docs/paper.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .layer import TENSORS

__all__ = [
    "COMMON_METRICS",
    "SCHEMA_VERSION",
    "STEADY_METRICS",
    "LayerResult",
    "RunResult",
    "SteadyState",
    "TensorCounts",
]

SCHEMA_VERSION = 1

COMMON_METRICS: tuple[str, ...] = (
    "l1_size_req_elems",
    "l2_size_req_elems",
    "noc_bw_req_peak_elems_per_cycle",
    "noc_bw_req_avg_elems_per_cycle",
    "offchip_bw_req_elems_per_cycle",
    "energy_nj",
    "avg_active_pes",
    "utilization",
)
"""Keys of :attr:`LayerResult.metrics` that both engines fill."""

TENSOR_COUNTERS: tuple[str, ...] = ("l1_reads", "l1_writes", "l2_reads", "l2_writes")

STEADY_METRICS: tuple[str, ...] = (
    "steady_steps",
    "steady_noc_bw_req_elems_per_cycle",
    "steady_l2_bw_req_elems_per_cycle",
    "steady_l1_size_req_elems_all_pes",
    "steady_throughput_macs_per_cycle",
)
"""Keys of :attr:`LayerResult.metrics` filled from a :class:`SteadyState`."""

Number = int | float


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorCounts:
    """Accesses to one tensor: reads and writes of the PEs' L1 and of the shared L2."""

    l1_reads: int
    l1_writes: int
    l2_reads: int
    l2_writes: int

    def to_dict(self) -> dict[str, int]:
        """Plain dict in counter order."""
        return {name: getattr(self, name) for name in TENSOR_COUNTERS}


@dataclass(frozen=True, slots=True, kw_only=True)
class SteadyState:
    """Sums over a layer's steady steps (interior, not the first), from which the seed
    paper's Fig. 6 figures follow: bandwidths and throughput per compute cycle (the
    roofline: a step lasts its compute, no NoC or memory stall), L1 of all PEs at the
    fullest steady step."""

    steps: int = 0
    compute_cycles: int = 0
    macs: int = 0
    noc_elems: int = 0
    """Elements through the L2's NoC port, both ways (one per multicast; every PE's
    partial sum when they are not reduced on the way)."""
    l2_elems: int = 0
    """Elements read from L2 for the PEs and written to L2 from them."""
    l1_elems_all_pes: int = 0
    """Elements the current tiles of every PE take (input, weight, output), largest step."""

    def metrics(self) -> tuple[tuple[str, Number], ...]:
        """The ``steady_*`` metrics (all 0 when the layer has no steady step)."""
        cycles = self.compute_cycles

        def per_cycle(value: int) -> float:
            return round(value / cycles, 6) if cycles else 0.0

        return (
            ("steady_steps", self.steps),
            ("steady_noc_bw_req_elems_per_cycle", per_cycle(self.noc_elems)),
            ("steady_l2_bw_req_elems_per_cycle", per_cycle(self.l2_elems)),
            ("steady_l1_size_req_elems_all_pes", self.l1_elems_all_pes),
            ("steady_throughput_macs_per_cycle", per_cycle(self.macs)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerResult:
    """One engine's numbers for one layer."""

    engine: str
    network: str
    layer: str
    layer_index: int
    runtime_cycles: int
    macs: int
    tensors: tuple[tuple[str, TensorCounts], ...]
    metrics: tuple[tuple[str, Number], ...] = ()
    notes: tuple[str, ...] = ()

    def tensor(self, name: str) -> TensorCounts:
        """Counts of tensor ``name`` (input, weight or output)."""
        for key, counts in self.tensors:
            if key == name:
                return counts
        raise KeyError(name)

    def metric(self, name: str) -> Number:
        """A metric by key; KeyError if this engine does not report it."""
        for key, value in self.metrics:
            if key == name:
                return value
        raise KeyError(name)

    def flat(self) -> dict[str, Number]:
        """Every number under a dotted key: ``runtime_cycles``, ``tensors.input.l2_reads``..."""
        out: dict[str, Number] = {"runtime_cycles": self.runtime_cycles, "macs": self.macs}
        for name, counts in self.tensors:
            for counter, value in counts.to_dict().items():
                out[f"tensors.{name}.{counter}"] = value
        out.update(self.metrics)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the project's result schema)."""
        return {
            "engine": self.engine,
            "network": self.network,
            "layer": self.layer,
            "layer_index": self.layer_index,
            "runtime_cycles": self.runtime_cycles,
            "macs": self.macs,
            "tensors": {name: counts.to_dict() for name, counts in self.tensors},
            **dict(sorted(self.metrics)),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerResult:
        """Inverse of :meth:`to_dict`."""
        fixed = {
            "engine",
            "network",
            "layer",
            "layer_index",
            "runtime_cycles",
            "macs",
            "tensors",
            "notes",
        }
        return cls(
            engine=data["engine"],
            network=data["network"],
            layer=data["layer"],
            layer_index=data["layer_index"],
            runtime_cycles=data["runtime_cycles"],
            macs=data["macs"],
            tensors=tuple((t, TensorCounts(**data["tensors"][t])) for t in TENSORS),
            metrics=tuple(sorted((k, v) for k, v in data.items() if k not in fixed)),
            notes=tuple(data.get("notes", ())),
        )


def make_tensors(counts: dict[str, TensorCounts]) -> tuple[tuple[str, TensorCounts], ...]:
    """Tensor counts in canonical order (input, weight, output)."""
    return tuple((name, counts[name]) for name in TENSORS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """One engine's run over a network: per-layer results plus what produced them."""

    engine: str
    network: str
    source: str
    hardware: dict[str, Any]
    layers: tuple[LayerResult, ...]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with a schema version and network totals."""
        return {
            "schema_version": SCHEMA_VERSION,
            "engine": self.engine,
            "network": self.network,
            "source": self.source,
            "hardware": self.hardware,
            "info": self.info,
            "totals": self.totals(),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def totals(self) -> dict[str, Number]:
        """Network totals: sums of runtime, MACs, energy and every tensor counter."""
        total: dict[str, Number] = {"runtime_cycles": 0, "macs": 0, "energy_nj": 0.0}
        for layer in self.layers:
            total["runtime_cycles"] += layer.runtime_cycles
            total["macs"] += layer.macs
            flat = layer.flat()
            total["energy_nj"] += float(flat.get("energy_nj", 0.0))
            for key, value in flat.items():
                if key.startswith("tensors."):
                    total[key] = total.get(key, 0) + value
        return total
