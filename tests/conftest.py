"""Shared test configuration: hypothesis profiles and paths to the bundled data."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

DATA = Path(__file__).parent / "data"
MAESTRO_INPUTS = DATA / "maestro-inputs"
MAESTRO_REFERENCE = DATA / "maestro-reference"
REPO = Path(__file__).parent.parent

# CI and local runs see the same examples (derandomize); "big" explores afresh each run.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "big", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
