"""The vectorised fixed model equals :func:`metronome.analytic.analyze` design by design.

The oracle is the scalar engine itself: for sampled hardware points every metric of the
result schema (runtime, tensor counts, every ``metrics`` entry, notes) must be equal,
floats bit for bit.
"""

from __future__ import annotations

import random
from dataclasses import replace
from math import prod
from pathlib import Path

import numpy as np
import pytest

from metronome.analytic import analyze
from metronome.analytic.api import analyze_layer
from metronome.analytic.report import layer_result
from metronome.analytic.vectorised import HardwareArrays, VectorModel
from metronome.spec.energy import energy_table
from metronome.spec.hardware import Hardware
from metronome.spec.loader import load_network
from metronome.spec.results import STEADY_METRICS
from metronome.spec.source import SpecError

MAPPINGS = Path(__file__).parents[1] / "data" / "maestro-inputs" / "data" / "mapping"
FILES = (
    "Resnet50_kcp_ws.m",
    "Resnet50_rs.m",
    "Resnet50_yxp_os.m",
    "Resnet50_xp_ws.m",
    "vgg16_nlr.m",
    "MobileNetV2_kcp_ws.m",
    "GEMM_Example.m",
)


def _cases() -> list[tuple[str, int]]:
    out = []
    for name in FILES:
        network = load_network(MAPPINGS / name)
        picks = list(range(len(network.layers)))
        random.Random(name).shuffle(picks)
        out.extend((name, i) for i in sorted(picks[:3]))
    return out


@pytest.mark.parametrize(("name", "index"), _cases())
def test_every_metric_equals_the_scalar_model(name: str, index: int) -> None:
    network = load_network(MAPPINGS / name)
    entry = network.layers[index]
    rng = np.random.default_rng(index)
    n = 12
    hw = HardwareArrays(
        noc_bw_elems_per_cycle=rng.choice([1, 2, 3, 7, 16, 64, 1000, 2**31 - 1], n),
        noc_latency_cycles=rng.choice([0, 1, 2, 5], n),
        offchip_bw_elems_per_cycle=rng.choice([1, 5, 32, 70000, 2**31 - 1], n),
        simd_lanes=rng.choice([1, 2, 3, 4, 8], n),
    )
    table = energy_table("maestro")
    for num_pes in (16, 256):
        mapping = entry.require_mapping()
        try:
            analyze(entry.layer, mapping, Hardware(num_pes=num_pes))
        except SpecError as exc:
            with pytest.raises(SpecError) as caught:
                VectorModel(entry.layer, mapping, num_pes)
            message = exc.render()
            assert caught.value.render() == message
            continue
        model = VectorModel(entry.layer, mapping, num_pes)
        arrays = model.evaluate(hw)
        for i in range(n):
            hardware = Hardware(
                num_pes=num_pes,
                noc_bw_elems_per_cycle=int(hw.noc_bw_elems_per_cycle[i]),
                noc_latency_cycles=int(hw.noc_latency_cycles[i]),
                offchip_bw_elems_per_cycle=int(hw.offchip_bw_elems_per_cycle[i]),
                simd_lanes=int(hw.simd_lanes[i]),
            )
            expected, own_l1 = analyze_layer(entry.layer, mapping, hardware)
            # The steady-state figures come from metronome.analytic.steady, not from the top
            # level's result, which is what the vectorised model reproduces.
            expected = replace(
                expected,
                metrics=tuple((k, v) for k, v in expected.metrics if k not in STEADY_METRICS),
            )
            top = model.level_result(arrays, i)
            got = layer_result(
                engine=expected.engine,
                network="",
                layer_name=entry.layer.name,
                layer_index=0,
                top=top,
                hardware=hardware,
                input_elems=expected.metric("input_tensor_elems"),
                weight_elems=expected.metric("weight_tensor_elems"),
                output_elems=prod(entry.layer.size(d) for d in entry.layer.tensor("output").dims),
                multilevel=top.levels_analyzed > 1,
                energy_l1_counts=own_l1,
                table=table,
                int32_sizes=False,
            )
            assert got == expected, (name, entry.layer.name, num_pes, hardware)
