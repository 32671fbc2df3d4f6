"""The sliding-window relation of a convolution, in one place.

A filter of ``window`` rows (``R`` or ``S``) slides at ``stride`` over input rows
(``Y`` or ``X``) without padding; output row ``o`` (``Y'`` or ``X'``) reads input rows
``o * stride + tap`` for filter taps ``tap`` in ``0 .. window - 1``. Every engine derives
extents, tiles and ranges from these functions, so the relation cannot drift between
them. They work on Python integers and elementwise on NumPy integer arrays alike.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy.typing as npt

__all__ = [
    "FILTER_OF",
    "INPUT_OF",
    "OUTPUT_OF",
    "SLIDING_PAIRS",
    "WINDOW_OF",
    "input_row",
    "outputs_within",
    "whole_windows_tile",
    "window_rows",
    "windows",
]

SLIDING_PAIRS: tuple[tuple[str, str, str], ...] = (("Y", "R", "Y'"), ("X", "S", "X'"))
"""(input dim, filter dim, output dim) for the two sliding windows of a convolution."""

FILTER_OF: dict[str, str] = {"Y": "R", "X": "S"}
"""The filter dimension that slides over each input dimension."""

OUTPUT_OF: dict[str, str] = {"Y": "Y'", "X": "X'"}
"""The output dimension each input dimension produces."""

INPUT_OF: dict[str, str] = {"Y'": "Y", "X'": "X"}
"""The input dimension each output dimension is read from."""

WINDOW_OF: dict[str, str] = {dim: f for i, f, o in SLIDING_PAIRS for dim in (i, o)}
"""The filter dimension of each sliding dimension, input (``Y``) or output (``Y'``)."""

Rows = TypeVar("Rows", int, npt.NDArray[Any])


def windows(rows: Rows, window: int | Rows, stride: int) -> Rows:
    """Outputs of a ``window``-row filter sliding at ``stride`` over ``rows`` input rows:
    ``(rows - window) // stride + 1``, which is 0 or less when ``rows < window``."""
    return (rows - window) // stride + 1


def window_rows(outputs: Rows, window: int | Rows, stride: int) -> Rows:
    """Input rows that ``outputs`` consecutive outputs read: ``(outputs - 1) * stride +
    window``, the inverse of :func:`windows` for ``outputs >= 1``."""
    return (outputs - 1) * stride + window


def whole_windows_tile(rows: int, window: int, stride: int) -> tuple[int, int]:
    """Size and offset of a strided tile of ``rows >= window`` input rows cut to the whole
    windows it holds, so that consecutive tiles hold consecutive windows: the windows'
    rows, and ``windows * stride`` to the next tile's first window."""
    count = windows(rows, window, stride)
    return window_rows(count, window, stride), count * stride


def input_row(output: Rows, tap: int | Rows, stride: int) -> Rows:
    """Input row that output row ``output`` reads at filter tap ``tap``."""
    return output * stride + tap


def outputs_within(
    first_row: Rows, rows: Rows, first_tap: Rows, taps: Rows, stride: int
) -> tuple[Rows, Rows]:
    """First and last output whose taps ``first_tap .. first_tap + taps - 1`` all fall in
    the input rows ``first_row .. first_row + rows - 1`` (``last < first`` when none
    does); unclamped, so the first may be negative and the last past the layer's end."""
    first = -((first_tap - first_row) // stride)
    last = (first_row + rows - taps - first_tap) // stride
    return first, last
