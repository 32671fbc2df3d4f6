"""C integer and floating-point semantics the MAESTRO-compatible arithmetic relies on."""

from __future__ import annotations

import math

__all__ = ["cdiv", "fdiv"]


def cdiv(a: int, b: int) -> int:
    """``a / b`` on C integers: the quotient truncated toward zero (``b != 0``)."""
    if a >= 0 and b > 0:
        return a // b
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def fdiv(a: float, b: float) -> float:
    """IEEE division: ``x/0`` is +-inf and ``0/0`` is NaN instead of an exception."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b
