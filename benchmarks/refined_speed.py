"""Speed of the refined analytic model against the fixed one.

1. In-process CPU time per layer on ``data/hw/accelerator_1.m`` for the ResNet50 and
   MobileNetV2 mappings: each layer analysed ``--repeats`` times, its fastest run taken
   (this machine is shared: process time, not wall time, so other jobs' slices do not
   count), then the median and maximum over the layers, per model, and the refined
   model's slowest layers.
2. Wall time of ``metronome analyze Resnet50_kcp_ws.m --model M`` (process start
   included), median of ``--runs`` runs, per model, and refined / fixed.

Targets: refined <= 2 ms per layer in-process; ``metronome analyze --model refined`` on
Resnet50_kcp_ws.m within 1.5x of the fixed model's wall time.
Run: ``.venv/bin/python benchmarks/refined_speed.py``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
INPUTS = REPO / "tests" / "data" / "maestro-inputs" / "data"
HW = INPUTS / "hw" / "accelerator_1.m"
NETWORKS = ("Resnet50_kcp_ws", "Resnet50_rs", "Resnet50_yxp_os", "MobileNetV2_kcp_ws")
MODELS = ("fixed", "refined")


def in_process(repeats: int) -> dict[str, dict[str, float]]:
    """Fastest CPU seconds per layer (by network/index/name), per model, over every
    layer of :data:`NETWORKS`."""
    from metronome import analytic
    from metronome.spec.loader import load_network
    from metronome.spec.maestro import parse_hw_file
    from metronome.spec.source import SpecError

    out: dict[str, dict[str, float]] = {m: {} for m in MODELS}
    hardware = parse_hw_file(HW)
    for name in NETWORKS:
        network = load_network(str(INPUTS / "mapping" / f"{name}.m"))
        for index, entry in enumerate(network.layers):
            mapping = entry.mapping
            if mapping is None:
                continue
            for model in MODELS:
                best = float("inf")
                try:
                    for _ in range(repeats):
                        started = time.process_time()
                        analytic.analyze(entry.layer, mapping, hardware, model=model)
                        best = min(best, time.process_time() - started)
                except SpecError:
                    continue
                out[model][f"{name}/{index}/{entry.layer.name}"] = best
    return out


def _cli_seconds(model: str) -> float:
    """Wall seconds of one CLI run on Resnet50_kcp_ws.m under ``model``, process start
    included."""
    exe = REPO / ".venv" / "bin" / "metronome"
    cmd = [
        str(exe),
        "analyze",
        str(INPUTS / "mapping" / "Resnet50_kcp_ws.m"),
        "--hw",
        str(HW),
        "--model",
        model,
    ]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def wall(runs: int) -> dict[str, float]:
    """Median wall seconds of the CLI per model, the models' runs interleaved so that a
    change in the machine's load falls on both alike."""
    times: dict[str, list[float]] = {m: [] for m in MODELS}
    for _ in range(runs):
        for model in MODELS:
            times[model].append(_cli_seconds(model))
    return {m: statistics.median(t) for m, t in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    per_layer = in_process(args.repeats)
    for model, by_layer in per_layer.items():
        secs = list(by_layer.values())
        print(
            f"{model:8s} in-process: {len(secs)} layers, median"
            f" {1000 * statistics.median(secs):.3f} ms, max {1000 * max(secs):.3f} ms per layer"
            f" (CPU), {sum(s >= 0.002 for s in secs)} at or above 2 ms"
        )
    slowest = sorted(per_layer["refined"].items(), key=lambda kv: -kv[1])[:5]
    print("refined  slowest: " + ", ".join(f"{k} {1000 * s:.2f} ms" for k, s in slowest))
    walls = wall(args.runs)
    for model, wall_s in walls.items():
        print(f"{model:8s} metronome analyze Resnet50_kcp_ws.m: {wall_s:.3f} s")
    print(f"refined / fixed wall time: {walls['refined'] / walls['fixed']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
