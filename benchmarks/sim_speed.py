"""Simulator speed on full-size layers: prints wall time, peak RSS, simulated cycles/s,
PE-steps/s and SimPy events/s per case. Usage: python benchmarks/sim_speed.py [--quick]"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from sim import SimOptions, simulate
from spec.loader import load_network
from spec.maestro import parse_hw_file

REF = Path(__file__).parent.parent / "tests" / "data"
HW64 = REF / "maestro-reference" / "hw" / "table2_pe64_bw64.m"
RESNET = REF / "maestro-inputs" / "data" / "mapping" / "Resnet50_kcp_ws.m"
RESNET_LAYERS = ("CONV1", "CONV2_1_2", "CONV3_1_2", "CONV5_1_1")


def cases() -> list[tuple[str, object, object, object]]:
    out = []
    hw64 = parse_hw_file(HW64)
    for path in sorted((REF / "maestro-reference" / "table2").glob("*.m")):
        for entry in load_network(path).layers:
            out.append((f"{path.stem}:{entry.name}", entry.layer, entry.mapping, hw64))
    hw256 = hw64.with_changes(num_pes=256)
    network = load_network(RESNET)
    for name in RESNET_LAYERS:
        entry = network.layer(name)
        out.append((f"resnet50_kcp_ws:{name}", entry.layer, entry.mapping, hw256))
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    print(
        f"{'case':<36} {'wall s':>8} {'RSS MiB':>8} {'cycles':>12} {'cyc/s':>12}"
        f" {'PE-steps/s':>12} {'events/s':>10}"
    )
    for name, layer, mapping, hw in cases()[: 2 if quick else None]:
        started = time.perf_counter()
        result = simulate(layer, mapping, hw, SimOptions())  # type: ignore[arg-type]
        wall = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lr = result.layer
        cycles = lr.runtime_cycles
        print(
            f"{name:<36} {wall:>8.1f} {rss:>8.0f} {cycles:>12} {cycles / wall:>12.0f}"
            f" {lr.metric('pe_steps') / wall:>12.0f} {lr.metric('simpy_events') / wall:>10.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
