"""MAESTRO's CSV format: header text, C++ iostream number formatting, separators."""

from __future__ import annotations

import math

import pytest

from metronome.analytic.csvout import COLUMN_KEYS, MAESTRO_CSV_HEADER, cpp_number, format_row
from tests.conftest import MAESTRO_REFERENCE


def test_header_is_maestros_byte_for_byte() -> None:
    reference = (MAESTRO_REFERENCE / "runs" / "x01_ws_kspatial__pe4.csv").read_text()
    assert reference.splitlines()[0] == MAESTRO_CSV_HEADER
    assert len(COLUMN_KEYS) == 52


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12102300000.0, "1.21023e+10"),
        (4.125, "4.125"),
        (0.293793, "0.293793"),
        (1.0, "1"),
        (0.0, "0"),
        (100000.0, "100000"),
        (1000000.0, "1e+06"),
        (0.0001234567, "0.000123457"),
        (math.nan, "-nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (3633610752, "3633610752"),
        (-(2**63), "-9223372036854775808"),
    ],
)
def test_numbers_print_as_cpp_iostreams_do(value: float, text: str) -> None:
    """Golden strings: MAESTRO's CSVs (e.g. x01: 1.21023e+10, 4.125; FC1000: -nan)."""
    assert cpp_number(value) == text


def test_row_separators_follow_maestros_writer() -> None:
    """26 fields joined by ',', then the 15 tensor fields and the rest by ', '."""
    reference = (MAESTRO_REFERENCE / "runs" / "x01_ws_kspatial__pe4.csv").read_text()
    line = reference.splitlines()[1]
    values = [int(v) if v.strip().lstrip("-").isdigit() else v.strip() for v in line.split(",")]
    assert format_row(values) == line


def test_row_needs_52_fields() -> None:
    with pytest.raises(ValueError, match="52 fields"):
        format_row([1, 2, 3])
