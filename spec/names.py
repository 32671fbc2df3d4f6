"""The names of the engines and of the simulator's policies, in one place.

Both are :class:`~enum.StrEnum`: a member *is* its string (``Engine.SIM_MAESTRO ==
"sim-maestro"``), so JSON files, CSV columns and command-line values stay the plain
strings users know, while code names them once.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Engine", "PolicyName"]


class PolicyName(StrEnum):
    """The simulator's named modelling policies (:data:`metronome.sim.POLICIES`)."""

    MAESTRO = "maestro"
    REALISTIC = "realistic"


class Engine(StrEnum):
    """An engine whose per-layer results the validation compares.

    ``analytic*`` members are closed forms (:mod:`analytic`), ``sim-*`` members the
    simulator under the policy named after the dash. Adding a member adds the engine to
    every validation run.
    """

    ANALYTIC = "analytic"
    ANALYTIC_MAESTRO = "analytic-maestro"
    ANALYTIC_REFINED = "analytic-refined"
    SIM_MAESTRO = "sim-maestro"
    SIM_REALISTIC = "sim-realistic"

    @property
    def is_analytic(self) -> bool:
        """Whether the engine is a closed form."""
        return self.value.startswith("analytic")

    @property
    def policy(self) -> PolicyName:
        """The simulator policy of a ``sim-*`` engine (ValueError for a closed form)."""
        return PolicyName(self.value.removeprefix("sim-"))

    @classmethod
    def sim(cls, policy: str) -> Engine:
        """The simulator engine under ``policy``."""
        return cls(f"sim-{PolicyName(policy)}")
