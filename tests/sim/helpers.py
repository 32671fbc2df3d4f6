"""Shared helpers for simulator tests: loading cross-check cases and shrinking layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metronome.spec.hardware import Hardware
from metronome.spec.layer import Layer, LayerType, make_layer
from metronome.spec.loader import load_network
from metronome.spec.mapping import ClusterDirective, MapDirective, Mapping

DATA = Path(__file__).parent.parent / "data"
CROSSCHECK = DATA / "maestro-reference" / "crosscheck"
VOLATILE = {"simpy_events", "steps_timed_in_detail"}

# Bus bandwidth 64, latency 1, off-chip 1000 elements/cycle with no latency, big buffers.
XC = {
    "l1_size_elems": 1000,
    "l2_size_elems": 100000,
    "noc_bw_elems_per_cycle": 64,
    "noc_latency_cycles": 1,
    "offchip_bw_elems_per_cycle": 1000,
}


def xc_hw(num_pes: int, **changes: object) -> Hardware:
    """The cross-check hardware with ``num_pes`` PEs."""
    return Hardware(num_pes=num_pes, **{**XC, **changes})  # type: ignore[arg-type]


def case(name: str, layer: int = 0) -> tuple[Layer, Mapping]:
    """A layer and its mapping from ``crosscheck/NAME.m``."""
    entry = load_network(CROSSCHECK / f"{name}.m").layers[layer]
    assert entry.mapping is not None
    return entry.layer, entry.mapping


def stable(result_dict: dict[str, object]) -> dict[str, object]:
    """A result dict without the counters that differ between fast and full paths."""
    return {k: v for k, v in result_dict.items() if k not in VOLATILE}


def random_values(layer: Layer, seed: int = 0) -> dict[str, np.ndarray]:
    """Small random int64 operands for ``layer``."""
    rng = np.random.default_rng(seed)
    return {
        t: rng.integers(-4, 5, size=[layer.size(d) for d in layer.tensor(t).dims])
        for t in ("input", "weight")
    }


def shrink(layer: Layer, mapping: Mapping) -> tuple[Layer, Mapping]:
    """A small copy of ``layer`` whose mapping stays valid: filter sizes kept, other
    dimensions capped; a directive size or offset equal to its dimension's old size
    follows the new size, anything larger is capped to it."""
    if layer.type is LayerType.GEMM:
        new = {d: min(layer.size(d), 4) for d in ("M", "N", "K")}
    else:
        r, s = layer.size("R"), layer.size("S")
        new = {
            "N": 1,
            "K": min(layer.size("K"), 3),
            "C": min(layer.size("C"), 3),
            "R": r,
            "S": s,
            "Y": min(layer.size("Y"), r + 2 * layer.stride_y),
            "X": min(layer.size("X"), s + 2 * layer.stride_x),
        }
        if layer.type is LayerType.NGCONV:
            new["G"] = min(layer.size("G"), 2)
    small = make_layer(
        name=layer.name,
        type_=layer.type,
        declared=new,
        stride_y=layer.stride_y,
        stride_x=layer.stride_x,
    )
    directives = []
    for d in mapping.directives:
        if isinstance(d, ClusterDirective):
            directives.append(d)
            continue
        old, cap = layer.size(d.dim), small.size(d.dim)

        def fit(value: int, old: int = old, cap: int = cap) -> int:
            return cap if value == old or value > cap else value

        directives.append(MapDirective(d.spatial, d.dim, fit(d.size), fit(d.offset)))
    return small, Mapping(tuple(directives))
