"""Functional mode: carry real int64 values through the simulated data movement.

Each step every active PE copies its input and weight tiles from L2 into its L1, performs
its MACs from those copies into a partial-sum buffer for its output tile, and adds that
buffer into L2's output when its partial sums leave (per the step record). A MAC already
performed by an earlier PE-step is skipped, so a redundant MAC is never added twice.

Array layouts follow the tensor table (:attr:`metronome.spec.layer.Layer.tensors`); for the
convolution family the batch dimension ``N`` may be left out when ``N = 1``:
CONV/TRCONV input ``(N,)C,Y,X``, weight ``K,C,R,S``, output ``(N,)K,Y',X'``; DSCONV weight
``C,R,S``, output ``(N,)C,Y',X'``; NGCONV input ``(N,)G,C,Y,X``, weight ``G,K,C,R,S``,
output ``(N,)G,K,Y',X'``; GEMM input ``M,K``, weight ``K,N``, output ``M,N``.
"""

from __future__ import annotations

import numpy as np

from metronome.spec.layer import Layer
from metronome.spec.source import SpecError
from metronome.spec.window import SLIDING_PAIRS, input_row

from .geometry import StepTiles
from .traffic import StepRecord

__all__ = ["Functional", "check_inputs", "reference_output"]

_SLIDING = {in_dim: (out, filt) for in_dim, filt, out in SLIDING_PAIRS}


def _expected(layer: Layer, tensor: str) -> tuple[int, ...]:
    return tuple(layer.size(d) for d in layer.tensor(tensor).dims)


def check_inputs(
    layer: Layer, inputs: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate ``input``/``weight`` arrays; returns them in canonical layout and whether
    the batch dimension was left out. Raises :class:`SpecError` with what was expected."""
    arrays = []
    squeezed = False
    for name in ("input", "weight"):
        if name not in inputs:
            raise SpecError.at(
                None, f"inputs have no array '{name}'", hint="give arrays 'input' and 'weight'"
            )
        array = np.asarray(inputs[name])
        if array.dtype.kind not in "iu":
            raise SpecError.at(None, f"array '{name}' has dtype {array.dtype}; expected int64")
        shape = _expected(layer, name)
        dims = layer.tensor(name).dims
        if dims[0] == "N" and layer.type.is_conv and array.shape == shape[1:]:
            array = array[None, ...]
            squeezed = True
        if array.shape != shape:
            raise SpecError.at(
                None,
                f"array '{name}' has shape {array.shape}; layer '{layer.name}' needs"
                f" {','.join(dims)} = {shape}",
            )
        arrays.append(array.astype(np.int64))
    return arrays[0], arrays[1], squeezed


def reference_output(layer: Layer, inp: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The layer computed directly with numpy (canonical layouts)."""
    if not layer.type.is_conv:
        product: np.ndarray = inp @ weight
        return product
    sy, sx = layer.stride_y, layer.stride_x
    yo, xo = layer.size("Y'"), layer.size("X'")
    out = np.zeros(_expected(layer, "output"), dtype=np.int64)
    for r in range(layer.size("R")):
        for s in range(layer.size("S")):
            window = inp[..., r : r + (yo - 1) * sy + 1 : sy, s : s + (xo - 1) * sx + 1 : sx]
            w = weight[..., r, s]
            if layer.type.value == "DSCONV":
                out += window * w[None, :, None, None]
            elif layer.type.value == "NGCONV":
                out += np.einsum("ngcyx,gkc->ngkyx", window, w)
            else:
                out += np.einsum("ncyx,kc->nkyx", window, w)
    return out


class Functional:
    """Executes the MACs of each step on values copied through L1."""

    def __init__(self, layer: Layer, inp: np.ndarray, weight: np.ndarray) -> None:
        self.layer = layer
        self.l2 = {"input": inp, "weight": weight}
        self.output = np.zeros(_expected(layer, "output"), dtype=np.int64)
        self.done = np.zeros(tuple(layer.size(d) for d in layer.loop_dims), dtype=bool)
        self.loop_index = {d: i for i, d in enumerate(layer.loop_dims)}
        self.psums: dict[int, tuple[tuple[int, ...], np.ndarray]] = {}
        self.tensor_dims = [t.dims for t in layer.tensors]

    def _coords(self, dims: tuple[str, ...], grid: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for d in dims:
            if d in self.loop_index:
                out.append(grid[self.loop_index[d]])
            else:
                o_dim, f_dim = _SLIDING[d]
                o, f = grid[self.loop_index[o_dim]], grid[self.loop_index[f_dim]]
                out.append(input_row(o, f, self.layer.stride(d)))
        return out

    def step(self, tiles: StepTiles, rec: StepRecord) -> None:
        """Run every PE's MACs of one step and drain the partial sums that leave."""
        for p in np.flatnonzero(tiles.macs):
            box = tuple(
                slice(int(a), int(b))
                for a, b in zip(tiles.mac_lo[:, p], tiles.mac_hi[:, p], strict=True)
            )
            fresh = ~self.done[box]
            self.done[box] = True
            grid = [
                np.arange(s.start, s.stop)[(slice(None),) + (None,) * (len(box) - 1 - i)]
                for i, s in enumerate(box)
            ]
            grid = [np.broadcast_to(g, fresh.shape)[fresh] for g in grid]
            operands = []
            for t in range(2):
                lo = tiles.tensors[t][0][:, p]
                hi = tiles.tensors[t][1][:, p]
                l1 = self.l2[("input", "weight")[t]][
                    tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
                ].copy()
                coords = self._coords(self.tensor_dims[t], grid)
                operands.append(l1[tuple(c - int(o) for c, o in zip(coords, lo, strict=True))])
            o_lo = tuple(int(v) for v in tiles.tensors[2][0][:, p])
            o_hi = tuple(int(v) for v in tiles.tensors[2][1][:, p])
            held = self.psums.get(int(p))
            if held is None or held[0] != (*o_lo, *o_hi):
                self._drain(int(p))
                shape = tuple(b - a for a, b in zip(o_lo, o_hi, strict=True))
                held = ((*o_lo, *o_hi), np.zeros(shape, dtype=np.int64))
                self.psums[int(p)] = held
            coords = self._coords(self.tensor_dims[2], grid)
            np.add.at(
                held[1],
                tuple(c - o for c, o in zip(coords, o_lo, strict=True)),
                operands[0] * operands[1],
            )
        for p in np.flatnonzero(np.asarray(rec.egress)):
            self._drain(int(p))

    def _drain(self, p: int) -> None:
        held = self.psums.pop(p, None)
        if held is None:
            return
        key, values = held
        half = len(key) // 2
        box = tuple(slice(a, b) for a, b in zip(key[:half], key[half:], strict=True))
        self.output[box] += values

    def finish(self) -> np.ndarray:
        """Drain what is left and return the output tensor (canonical layout)."""
        for p in sorted(self.psums):
            self._drain(p)
        return self.output
