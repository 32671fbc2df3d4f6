"""Closed-form cost model of DNN accelerators with MAESTRO's semantics (MICRO 2019).

Reads only :mod:`spec` objects. ``analyze`` / ``analyze_network`` return the project's
result schema; ``maestro_csv`` / ``write_maestro_csv`` give MAESTRO's 52-column CSV and
``render_table`` a readable terminal table. ``maestro_compat=True`` reproduces MAESTRO
4eb08d17's numbers, quirks included; the default mode fixes the bugs listed in
:data:`DEVIATIONS` (see docs/maestro-deviations.md).
"""

from __future__ import annotations

from .api import ENGINE_COMPAT, ENGINE_DEFAULT, analyze, analyze_network
from .assumptions import MAESTRO_ASSUMPTIONS, Assumptions
from .csvout import MAESTRO_CSV_HEADER, maestro_csv, write_maestro_csv
from .deviations import DEVIATIONS, Deviation
from .table import render_table

__all__ = [
    "DEVIATIONS",
    "ENGINE_COMPAT",
    "ENGINE_DEFAULT",
    "MAESTRO_ASSUMPTIONS",
    "MAESTRO_CSV_HEADER",
    "Assumptions",
    "Deviation",
    "analyze",
    "analyze_network",
    "maestro_csv",
    "render_table",
    "write_maestro_csv",
]
