"""What SCALE-Sim's strictly serial folds cost: VGG16 and ResNet50 (CONV layers, from
scenarios/systolic/topologies) on square systolic arrays, every dataflow, each layer
executed on the array with serial folds and with ``--overlap-folds``, checked against
the closed form, totalled per network.

Usage: python benchmarks/systolic_fold_overlap.py [--sizes 8,32,128] [--dataflows os,ws,is]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from metronome.analytic.systolic import analyze_systolic
from metronome.sim.systolic import simulate_systolic
from metronome.spec.scalesim import parse_config, parse_topology

ROOT = Path(__file__).parent.parent
TOPOLOGIES = ROOT / "scenarios" / "systolic" / "topologies"
BASE_CFG = ROOT / "tests" / "data" / "scalesim" / "runs" / "vgg_conv1_os_32x32" / "scale.cfg"


def main() -> int:
    """Print one line per (network, array, dataflow); 1 if sim and closed form differ."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8,32,128")
    parser.add_argument("--dataflows", default="os,ws,is")
    args = parser.parse_args()
    base = parse_config(str(BASE_CFG))
    mismatches = 0
    print(
        f"{'network':<9} {'array':>7} {'df':>3} {'serial cycles':>14} {'overlapped':>12}"
        f" {'serial/ovl':>10} {'saved':>6}  {'worst layer':<18} {'sim s':>6}"
    )
    for net in ("vgg16", "resnet50"):
        layers = parse_topology(str(TOPOLOGIES / f"{net}.csv")).layers
        for size in (int(s) for s in args.sizes.split(",")):
            for dataflow in args.dataflows.split(","):
                config = dataclasses.replace(
                    base, array_rows=size, array_cols=size, dataflow=dataflow
                )
                serial = overlapped = 0
                worst = (0.0, "")
                started = time.perf_counter()
                for index, layer in enumerate(layers):
                    pair = []
                    for overlap in (False, True):
                        sim = simulate_systolic(layer, config, overlap=overlap, layer_index=index)
                        ana = analyze_systolic(layer, config, overlap=overlap, layer_index=index)
                        if sim.runtime_cycles != ana.runtime_cycles:
                            mismatches += 1
                            print(
                                f"  MISMATCH {layer.name}: sim {sim.runtime_cycles}"
                                f" closed form {ana.runtime_cycles}",
                                file=sys.stderr,
                            )
                        pair.append(sim.runtime_cycles)
                    serial += pair[0]
                    overlapped += pair[1]
                    worst = max(worst, (pair[0] / pair[1], layer.name))
                wall = time.perf_counter() - started
                print(
                    f"{net:<9} {size:>3}x{size:<3} {dataflow:>3} {serial:>14} {overlapped:>12}"
                    f" {serial / overlapped:>9.2f}x {100 * (1 - overlapped / serial):>5.1f}%"
                    f"  {worst[1]:<10} {worst[0]:>5.2f}x {wall:>6.1f}"
                )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
