"""Functional check: the simulator carries real values through its data movement, and
its output must equal the layer computed directly with numpy.

The reference here is written independently of the simulator's own (einsum over
strided windows), so a shared mistake is unlikely.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from metronome.spec.layer import Layer

__all__ = ["FunctionalCheck", "make_inputs", "reference"]


@dataclass(frozen=True, slots=True)
class FunctionalCheck:
    """Outcome of one functional run."""

    output_elems: int
    mismatched_elems: int
    max_abs_diff: int

    @property
    def ok(self) -> bool:
        """True when every output element equals the reference."""
        return self.mismatched_elems == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self) | {"ok": self.ok}


def make_inputs(layer: Layer, label: str) -> dict[str, np.ndarray]:
    """Deterministic small-integer inputs in the layer's canonical layouts, seeded by
    ``label`` (the same scenario and layer always get the same values)."""
    rng = np.random.default_rng(zlib.crc32(label.encode("utf-8")))
    return {
        name: rng.integers(-8, 9, size=tuple(layer.size(d) for d in layer.tensor(name).dims))
        for name in ("input", "weight")
    }


def reference(layer: Layer, values: dict[str, np.ndarray]) -> np.ndarray:
    """The layer's output computed directly (layouts of ``layer.tensors``)."""
    inp, weight = values["input"].astype(np.int64), values["weight"].astype(np.int64)
    if not layer.type.is_conv:
        return np.einsum("mk,kn->mn", inp, weight)
    yo, xo, sy, sx = layer.size("Y'"), layer.size("X'"), layer.stride_y, layer.stride_x
    rows = (np.arange(yo) * sy)[:, None] + np.arange(layer.size("R"))[None, :]
    cols = (np.arange(xo) * sx)[:, None] + np.arange(layer.size("S"))[None, :]
    # patches[..., y', r, x', s] = input[..., y'*sy + r, x'*sx + s]
    patches = inp[..., rows[:, :, None, None], cols[None, None, :, :]]
    kind = layer.type.value
    if kind == "DSCONV":
        return np.einsum("ncyrxs,crs->ncyx", patches, weight)
    if kind == "NGCONV":
        return np.einsum("ngcyrxs,gkcrs->ngkyx", patches, weight)
    return np.einsum("ncyrxs,kcrs->nkyx", patches, weight)


def compare(output: np.ndarray, expected: np.ndarray) -> FunctionalCheck:
    """Element-wise comparison of a simulated output with the reference."""
    if output.shape != expected.shape:
        return FunctionalCheck(int(expected.size), int(expected.size), -1)
    diff = np.abs(output.astype(np.int64) - expected)
    return FunctionalCheck(
        int(expected.size), int(np.count_nonzero(diff)), int(diff.max(initial=0))
    )
