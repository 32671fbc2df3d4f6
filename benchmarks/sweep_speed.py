"""Speed and memory of ``metronome sweep`` on the shipped design spaces.

1. The hardware sweep of one ResNet50 layer (``scenarios/sweeps/resnet50_conv2_hw.yaml``,
   11,354,112 designs): wall time of the whole ``metronome sweep --jobs 2`` process
   (start-up, evaluation, front, summary, plots), designs/s, peak memory of the process
   and its workers. Target: >= 1,000,000 designs/s on 2 cores, < 1 GiB.
2. The mapping-and-hardware sweep of every ResNet50 layer
   (``scenarios/sweeps/resnet50_all_layers.yaml``) with ``--simulate-top 10``: wall
   time. Target: <= 5 minutes on 2 cores, < 1 GiB.

Each run starts from an empty output directory (no resumed chunks). CPU seconds (user +
system, children included) are printed too: on a shared machine they say more than the
wall time. Run: ``.venv/bin/python benchmarks/sweep_speed.py [--skip-simulation]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPACES = REPO / "scenarios" / "sweeps"
METRONOME = Path(sys.executable).with_name("metronome")


def _run(space: str, extra: list[str]) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            [str(METRONOME), "sweep", str(SPACES / space), "--out", str(out), *extra],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary = json.loads((out / "summary.json").read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "designs": summary["designs_evaluated"],
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mib": after.ru_maxrss / 1024,
        "front": summary["designs_on_front"],
        "simulation": summary.get("simulation"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-simulation", action="store_true", help="only the first run")
    args = parser.parse_args()
    first = _run("resnet50_conv2_hw.yaml", ["--jobs", "2"])
    rate = first["designs"] / first["wall_s"]
    print(
        f"resnet50_conv2_hw: {first['designs']:,} designs in {first['wall_s']:.2f} s wall"
        f" ({first['cpu_s']:.2f} s CPU): {rate:,.0f} designs/s for the whole process;"
        f" front {first['front']}; peak RSS of one process {first['peak_rss_mib']:.0f} MiB"
        f" [target >= 1,000,000 designs/s, < 1024 MiB]"
    )
    if args.skip_simulation:
        return 0
    second = _run("resnet50_all_layers.yaml", ["--jobs", "2", "--simulate-top", "10"])
    sim = second["simulation"] or {}
    print(
        f"resnet50_all_layers: {second['designs']:,} designs + {sim.get('designs_simulated')}"
        f" simulated ({sim.get('layer_simulations')} layer runs) in {second['wall_s']:.1f} s"
        f" wall ({second['cpu_s']:.1f} s CPU); Kendall tau {sim.get('kendall_tau')};"
        f" analytic winner is simulated winner: {sim.get('analytic_winner_is_simulated_winner')};"
        f" peak RSS {second['peak_rss_mib']:.0f} MiB [target <= 300 s, < 1024 MiB]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
