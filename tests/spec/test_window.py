"""The sliding-window relation every engine uses, against hand-derived cases."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from metronome.spec.window import (
    input_row,
    outputs_within,
    whole_windows_tile,
    window_rows,
    windows,
)


def test_windows_and_rows_by_hand() -> None:
    """Y=9, R=3, stride 2: windows start at rows 0, 2, 4, 6 (6 + 3 = 9 ends the input),
    so Y' = (9 - 3) // 2 + 1 = 4, and 4 outputs read (4 - 1) * 2 + 3 = 9 rows."""
    assert windows(9, 3, 2) == 4
    assert window_rows(4, 3, 2) == 9
    assert windows(2, 3, 2) == 0  # (2 - 3) // 2 + 1: no window fits in 2 rows
    assert input_row(3, 2, 2) == 8  # output 3 at tap 2: 3 * 2 + 2


def test_whole_windows_tile_by_hand() -> None:
    """6 rows, R=3, stride 2: windows at 0 and 2 fit (4 + 3 > 6), they cover rows 0..4
    (5 rows), and the next tile's first window is the third, at row 2 * 2 = 4."""
    assert whole_windows_tile(6, 3, 2) == (5, 4)
    assert whole_windows_tile(3, 3, 1) == (3, 1)


def test_outputs_within_by_hand() -> None:
    """Rows 2..6 (first 2, 5 rows) with taps 0..2 at stride 2: output o reads rows
    2o..2o+2, inside when 2o >= 2 and 2o + 2 <= 6, so outputs 1 and 2. With taps 1..2
    only (first tap 1, 2 taps): 2o + 1 >= 2 and 2o + 2 <= 6 give o = 1, 2 as well; with
    rows 3..4 none does: the first output starting at or after row 3 is 2
    (ceil(3 / 2)), the last ending by row 4 is 1 ((3 + 2 - 3) // 2)."""
    assert outputs_within(2, 5, 0, 3, 2) == (1, 2)
    assert outputs_within(2, 5, 1, 2, 2) == (1, 2)
    assert outputs_within(3, 2, 0, 3, 2) == (2, 1)


def test_outputs_within_is_elementwise_on_arrays() -> None:
    first, last = outputs_within(
        np.array([2, 3]), np.array([5, 2]), np.array([0, 0]), np.array([3, 3]), 2
    )
    assert first.tolist() == [1, 2]
    assert last.tolist() == [2, 1]


@given(outputs=st.integers(1, 50), window=st.integers(1, 9), stride=st.integers(1, 5))
def test_window_rows_inverts_windows(outputs: int, window: int, stride: int) -> None:
    """The rows ``outputs`` windows read hold exactly those windows, and one row fewer
    holds one window fewer."""
    rows = window_rows(outputs, window, stride)
    assert windows(rows, window, stride) == outputs
    assert windows(rows - 1, window, stride) == outputs - 1
