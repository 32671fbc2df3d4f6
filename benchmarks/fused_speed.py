"""Fused-layer speed: the closed form per design and the tile executor at full size.

* analytic: CPU time of one fused-group evaluation (``metronome.analytic.fused.analyze_group``)
  on the Alwani VGG19 group with several schedules (some tiling conv3_1's output
  channels, the channel loop inner, outer or between the spatial loops); target <= 5 ms
  per design, for the slowest schedule.
* simulator: the Alwani design (``scenarios/fused/alwani_vgg19.yaml``, 224x224, 3136
  tiles) executed in a subprocess, so the peak RSS is its own; targets <= 120 s and
  <= 2 GiB.

Usage: python benchmarks/fused_speed.py   (exit 1 when a target is missed)
"""

from __future__ import annotations

import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ALWANI = ROOT / "scenarios" / "fused" / "alwani_vgg19.yaml"
GIB = 1024**3
MIXED = ("recompute", "retain", "spill", "recompute", "retain", "retain")
SCHEDULES: tuple[tuple[tuple[int, int], tuple[str, ...], int | None, tuple[str, ...]], ...] = (
    ((1, 1), ("retain",) * 6, None, ("P", "Q")),
    ((4, 4), MIXED, None, ("P", "Q")),
    ((14, 14), ("recompute",) * 6, None, ("P", "Q")),
    ((1, 56), ("spill",) * 6, None, ("P", "Q")),
    ((1, 1), MIXED, 64, ("P", "Q", "K")),
    ((1, 1), MIXED, 64, ("K", "P", "Q")),
    ((1, 1), MIXED, 64, ("P", "K", "Q")),
)


def analytic_ms(repeats: int = 30) -> tuple[float, float]:
    """Mean CPU milliseconds of one design evaluation over the schedules, and of the
    slowest schedule."""
    from metronome.analytic.fused import analyze_group
    from metronome.spec.fused import load_fused

    scenario = load_fused(ALWANI)
    designs = [
        dataclasses.replace(
            scenario.groups[0], tile=tile, choices=(*choices, "spill"), tile_k=k, order=order
        )
        for tile, choices, k, order in SCHEDULES
    ]
    times = []
    for design in designs:
        started = time.process_time()
        for _ in range(repeats):
            analyze_group(scenario, design)
        times.append(1000 * (time.process_time() - started) / repeats)
    return sum(times) / len(times), max(times)


def _simulate_child() -> None:
    from metronome.sim.fused import simulate_fused
    from metronome.spec.fused import load_fused

    started = time.perf_counter()
    result = simulate_fused(load_fused(ALWANI)).result
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    group = result.groups[0]
    print(json.dumps({"seconds": seconds, "rss": rss, "tiles": group.tiles}))


def main() -> int:
    """Measure both, print against the targets."""
    if sys.argv[1:] == ["--child"]:
        _simulate_child()
        return 0
    ms, slowest = analytic_ms()
    child = subprocess.run(
        [sys.executable, __file__, "--child"], capture_output=True, text=True, check=True
    )
    sim = json.loads(child.stdout.strip().splitlines()[-1])
    ok_a = slowest <= 5.0
    ok_s = sim["seconds"] <= 120 and sim["rss"] <= 2 * GIB
    verdict = "ok" if ok_a else "MISSED"
    print(
        f"analytic: {ms:.2f} CPU ms per fused-group design, slowest schedule {slowest:.2f}"
        f" (target <= 5 ms) {verdict}"
    )
    print(
        f"simulator: Alwani VGG19 pyramid, {sim['tiles']} tiles: {sim['seconds']:.1f} s,"
        f" peak RSS {sim['rss'] / 2**20:.0f} MiB (targets <= 120 s, <= 2 GiB)"
        f" {'ok' if ok_s else 'MISSED'}"
    )
    return 0 if ok_a and ok_s else 1


if __name__ == "__main__":
    raise SystemExit(main())
