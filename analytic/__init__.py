"""Closed-form cost model of DNN accelerators with MAESTRO's semantics (MICRO 2019).

Reads only :mod:`spec` objects. ``analyze`` / ``analyze_network`` return the project's
result schema; ``maestro_csv`` / ``write_maestro_csv`` give MAESTRO's 52-column CSV and
``render_table`` a readable terminal table. ``model="maestro"`` (or
``maestro_compat=True``) reproduces MAESTRO 4eb08d17's numbers, quirks included; the
default ``model="fixed"`` fixes the bugs listed in :data:`DEVIATIONS` (see
docs/maestro-deviations.md); ``model="refined"`` replaces MAESTRO's reuse, off-chip and
network assumptions with what the realistic machine does (docs/refined-model.md).
"""

from __future__ import annotations

from .api import ENGINE_COMPAT, ENGINE_DEFAULT, ENGINE_REFINED, MODELS, analyze, analyze_network
from .assumptions import MAESTRO_ASSUMPTIONS, REFINED_ASSUMPTIONS, Assumptions
from .csvout import MAESTRO_CSV_HEADER, maestro_csv, write_maestro_csv
from .deviations import DEVIATIONS, Deviation
from .table import render_table

__all__ = [
    "DEVIATIONS",
    "ENGINE_COMPAT",
    "ENGINE_DEFAULT",
    "ENGINE_REFINED",
    "MAESTRO_ASSUMPTIONS",
    "MAESTRO_CSV_HEADER",
    "MODELS",
    "REFINED_ASSUMPTIONS",
    "Assumptions",
    "Deviation",
    "analyze",
    "analyze_network",
    "maestro_csv",
    "render_table",
    "write_maestro_csv",
]
