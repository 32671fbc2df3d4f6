"""Metric-by-metric comparison of two engines' results for the same layer.

A comparison pairs a *model* (the analytic engine) with a *truth* (the simulator under
one policy, or the MAESTRO binary's reference numbers). Every metric both report becomes
one :class:`MetricRow` with the signed relative error ``(model - truth) / |truth|``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from metronome.spec.results import COMMON_METRICS, TENSOR_COUNTERS, LayerResult

__all__ = ["COMPARED_METRICS", "MetricRow", "compare_layer", "compare_values"]

COMPARED_METRICS: tuple[str, ...] = (
    "runtime_cycles",
    "macs",
    *(f"tensors.{t}.{c}" for t in ("input", "weight", "output") for c in TENSOR_COUNTERS),
    *COMMON_METRICS,
)
"""Metrics the harness compares, in report order."""


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One metric of one layer under one comparison."""

    scenario: str
    variant: str
    layer: str
    layer_index: int
    comparison: str
    metric: str
    model: float
    truth: float

    @property
    def rel_error(self) -> float | None:
        """(model - truth) / |truth|; 0 when both are 0; None when only truth is 0."""
        if self.truth == 0:
            return 0.0 if self.model == 0 else None
        return (self.model - self.truth) / abs(self.truth)

    @property
    def key(self) -> str:
        """Stable identifier used by the baseline."""
        variant = f"[{self.variant}]" if self.variant else ""
        where = f"{self.scenario}{variant}/{self.layer_index}:{self.layer}"
        return f"{where}/{self.comparison}/{self.metric}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "scenario": self.scenario,
            "variant": self.variant,
            "layer": self.layer,
            "layer_index": self.layer_index,
            "comparison": self.comparison,
            "metric": self.metric,
            "model": self.model,
            "truth": self.truth,
            "rel_error": self.rel_error,
        }


def compare_values(
    *,
    scenario: str,
    variant: str,
    layer: str,
    layer_index: int,
    comparison: str,
    model: dict[str, float],
    truth: dict[str, float],
    metrics: Iterable[str] = COMPARED_METRICS,
) -> list[MetricRow]:
    """Rows for every metric present on both sides, in ``metrics`` order."""
    return [
        MetricRow(
            scenario, variant, layer, layer_index, comparison, m, float(model[m]), float(truth[m])
        )
        for m in metrics
        if m in model and m in truth
    ]


def compare_layer(
    scenario: str, variant: str, comparison: str, model: LayerResult, truth: LayerResult
) -> list[MetricRow]:
    """Rows comparing two engines' results for the same layer."""
    return compare_values(
        scenario=scenario,
        variant=variant,
        layer=model.layer,
        layer_index=model.layer_index,
        comparison=comparison,
        model={k: float(v) for k, v in model.flat().items()},
        truth={k: float(v) for k, v in truth.flat().items()},
    )
