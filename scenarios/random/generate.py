"""Write ``random_mappings.m``: random *valid* CONV mappings, for the MAC-count check.

A mapping is kept when the spec accepts it without a warning and the simulator, which
executes the loop nest, performs every MAC of the layer exactly once (no MAC missing,
none redundant). On such a mapping the layer's MAC count is known for certain, so any
engine that reports another number is wrong. The draw is seeded: running this script
again writes the same file (a test checks it).

Usage: python scenarios/random/generate.py [--count N] [--seed S] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from metronome import sim
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_mapping_text
from metronome.spec.source import SpecError

HERE = Path(__file__).parent
HARDWARE = Hardware(num_pes=16, noc_bw_elems_per_cycle=64, noc_latency_cycles=1)
"""What the scenario runs on (random_mappings.yaml says the same)."""

FILTER_OF = {"Y": "R", "X": "S"}


def _map(kind: str, dim: str, dims: dict[str, int], stride: int, rng: np.random.Generator) -> str:
    """One directive whose tiles follow each other without gap or overlap."""
    if dim in ("R", "S"):
        return f"TemporalMap(Sz({dim}),Sz({dim})) {dim};"
    if dim in FILTER_OF:
        window = dims[FILTER_OF[dim]]
        outputs = (dims[dim] - window) // stride + 1
        n = int(rng.integers(1, outputs + 1))
        return f"{kind}({(n - 1) * stride + window},{n * stride}) {dim};"
    size = int(rng.integers(1, dims[dim] + 1))
    return f"{kind}({size},{size}) {dim};"


def _level(dims: dict[str, int], stride: int, rng: np.random.Generator) -> list[str]:
    spatial = str(rng.choice(["K", "C", "Y", "X"]))
    order = [str(d) for d in rng.permutation(["K", "C", "Y", "X", "R", "S"])]
    return [
        _map("SpatialMap" if d == spatial else "TemporalMap", d, dims, stride, rng) for d in order
    ]


def candidate(index: int, rng: np.random.Generator) -> str:
    """One random CONV layer with a one- or two-level mapping, as a MAESTRO layer block."""
    r = int(rng.choice([1, 3]))
    s = r if rng.random() < 0.7 else int(rng.choice([1, 3]))
    stride = int(rng.choice([1, 1, 2]))
    dims = {"K": int(rng.integers(1, 9)), "C": int(rng.integers(1, 9)), "R": r, "S": s}
    dims["Y"] = r + int(rng.integers(0, 9))
    dims["X"] = s + int(rng.integers(0, 9))
    lines = _level(dims, stride, rng)
    if rng.random() < 0.4:
        lines.append(f"Cluster({int(rng.integers(2, 5))},P);")
        lines += _level(dims, stride, rng)
    stride_block = f"  Stride {{ X: {stride}, Y: {stride} }}\n" if stride > 1 else ""
    shape = ", ".join(f"{d}: {v}" for d, v in dims.items())
    body = "\n".join(f"    {line}" for line in lines)
    return (
        f"Layer R{index:02d} {{\n  Type: CONV\n{stride_block}  Dimensions {{ {shape} }}\n"
        f"  Dataflow {{\n{body}\n  }}\n}}\n"
    )


def is_valid(block: str) -> bool:
    """Accepted by the spec without warning, and executed with every MAC exactly once."""
    try:
        (entry,) = parse_mapping_text(f"Network random {{\n{block}}}\n").layers
    except SpecError:
        return False
    if entry.warnings:
        return False
    try:
        result = sim.simulate(entry.layer, entry.require_mapping(), HARDWARE)
    except SpecError:
        return False
    flat = result.layer.flat()
    return flat["macs_missing"] == 0 and flat["macs_redundant"] == 0


def generate(count: int, seed: int) -> tuple[str, int]:
    """The .m text of the first ``count`` valid candidates, and how many were drawn."""
    rng = np.random.default_rng(seed)
    blocks: list[str] = []
    drawn = 0
    while len(blocks) < count:
        drawn += 1
        block = candidate(len(blocks) + 1, rng)
        if is_valid(block):
            blocks.append(block)
    header = (
        f"// {count} random valid CONV mappings (seed {seed}; {drawn} drawn), written by\n"
        "// scenarios/random/generate.py: each passes the spec's checks and, executed by\n"
        "// the simulator on 16 PEs, performs every MAC of its layer exactly once.\n"
    )
    return header + "Network random {\n" + "".join(blocks) + "}\n", drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=HERE / "random_mappings.m")
    args = parser.parse_args(argv)
    text, drawn = generate(args.count, args.seed)
    args.out.write_text(text)
    print(f"{args.out}: {args.count} valid mappings out of {drawn} drawn", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
