"""Metronome's discrete-event simulator: executes a mapping on SimPy PEs, L1s, an L2,
off-chip memory and a NoC, deriving every tile, transfer and MAC from ``spec`` objects."""

from __future__ import annotations

from .options import MAESTRO, POLICIES, REALISTIC, Policy, SimOptions
from .simulate import SimResult, simulate, simulate_network

__all__ = [
    "MAESTRO",
    "POLICIES",
    "REALISTIC",
    "Policy",
    "SimOptions",
    "SimResult",
    "simulate",
    "simulate_network",
]
