"""NoC speed targets, one case per subprocess: the Table-2 dataflows on VGG16
CONV1 with 64 PEs on a mesh and on a fat tree (each <= 60 s), and ResNet50 layers on a
1024-PE mesh (each <= 5 minutes). Usage: python benchmarks/noc_speed.py [--only TEXT]"""

from __future__ import annotations

import argparse
import sys

from sim_speed import measure, resnet_cases, table2_cases

BIG_MESH_LAYERS = ("CONV1", "CONV2_1_2", "CONV2_1_3", "CONV5_1_2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    conv1 = [c for c in table2_cases() if c[2] == "VGG16_CONV1" and args.only in c[0]]
    ok = True
    for topology in ("mesh", "tree"):
        if conv1:
            ok &= measure(conv1, topology, 60.0)
            print()
    big = [c for c in resnet_cases(1024, BIG_MESH_LAYERS) if args.only in c[0]]
    if big:
        ok &= measure(big, "mesh", 300.0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
