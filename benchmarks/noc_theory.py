"""The simulator's NoC against network theory: latency vs offered load for uniform,
hotspot (to L2) and broadcast (from L2) traffic on bus, crossbar, mesh and tree, with the
zero-load latency and the channel-load bound on the same axes.

Usage: python benchmarks/noc_theory.py [--pes 16] [--bw 2] [--latency 1] [--header 0]
[--message 4] [--cycles 2000] [--out noc_theory.png] [--json noc_theory.json]

Each point is one run of :class:`metronome.sim.synthetic.SyntheticTraffic` (seeded, so the figure
and the table are byte-identical run to run). Prints, per topology and pattern, the
zero-load latency (mean over the pattern's pairs, closed form), the channel-load bound
and its link, and the highest accepted throughput as a share of the bound. Exit 1 when a
run accepts more than the bound (beyond the window allowance the tests explain) or
saturates below 60 % of it.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from metronome.sim.synthetic import (
    PATTERNS,
    SyntheticTraffic,
    channel_load_bound,
    zero_load_latency,
)
from metronome.spec.fileio import atomic_write_bytes, atomic_write_json
from metronome.spec.hardware import Hardware

TOPOLOGIES = ("bus", "crossbar", "mesh", "tree")
FACTORS = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1, 1.3)
CREDITS = 16


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _natural(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pes", type=_positive, default=16)
    parser.add_argument("--bw", type=_positive, default=2, help="elements/cycle per link")
    parser.add_argument("--latency", type=_natural, default=1, help="cycles per hop")
    parser.add_argument("--header", type=_natural, default=0, help="header cycles/message")
    parser.add_argument("--message", type=_positive, default=4, help="elements/message")
    parser.add_argument("--cycles", type=_positive, default=2000, help="measured cycles")
    parser.add_argument("--out", default="noc_theory.png")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    ok = True
    fig, axes = plt.subplots(
        len(PATTERNS), len(TOPOLOGIES), figsize=(16, 10), squeeze=False, layout="constrained"
    )
    print(f"{'topology':<9} {'pattern':<10} {'zero-load':>9} {'bound':>8}  bottleneck link")
    for col, topology in enumerate(TOPOLOGIES):
        hw = Hardware(
            num_pes=args.pes,
            topology=topology,
            noc_bw_elems_per_cycle=args.bw,
            noc_hop_latency_cycles=args.latency,
            noc_latency_cycles=args.latency,
            noc_header_cycles=args.header,
        )
        for row, pattern in enumerate(PATTERNS):
            traffic = SyntheticTraffic(hw, pattern, message_elems=args.message)
            pairs = traffic.pairs()
            zero = sum(zero_load_latency(traffic, s, d) for s, d in pairs) / len(pairs)
            bound, link = channel_load_bound(traffic)
            allowance = len(traffic.sources()) * CREDITS * args.message / (args.pes * args.cycles)
            points = []
            for factor in FACTORS:
                load = min(args.message, factor * bound)
                r = traffic.run(
                    load, cycles=args.cycles, warmup_cycles=args.cycles // 4, outstanding=CREDITS
                )
                points.append(r)
            best = max(p.accepted_elems_per_pe_per_cycle for p in points)
            share = best / bound
            ok &= best <= bound + allowance and share >= 0.6
            print(
                f"{topology:<9} {pattern:<10} {zero:>9.2f} {bound:>8.4f}  {link[0]}->{link[1]}"
                f"  accepted up to {100 * share:.1f}% of the bound"
            )
            rows.append(
                {
                    "topology": topology,
                    "pattern": pattern,
                    "zero_load_latency_cycles": zero,
                    "channel_load_bound_elems_per_pe_per_cycle": bound,
                    "bottleneck": list(link),
                    "points": [
                        {
                            "offered": p.offered_elems_per_pe_per_cycle,
                            "accepted": p.accepted_elems_per_pe_per_cycle,
                            "mean_latency_cycles": p.mean_latency_cycles,
                        }
                        for p in points
                    ],
                }
            )
            ax = axes[row][col]
            ax.plot(
                [p.offered_elems_per_pe_per_cycle for p in points],
                [p.mean_latency_cycles for p in points],
                "o-",
                label="simulated",
            )
            ax.axhline(zero, color="green", linestyle=":", label="zero-load latency")
            ax.axvline(bound, color="red", linestyle="--", label="channel-load bound")
            ax.set_yscale("log")
            ax.set_title(f"{topology}, {pattern}", fontsize=10)
            ax.set_xlabel("offered load (elements/PE/cycle)")
            ax.set_ylabel("mean latency (cycles)")
            if row == 0 and col == 0:
                ax.legend(fontsize=8)
    fig.suptitle(
        f"{args.pes} PEs, {args.bw} elements/cycle per link, hop latency {args.latency},"
        f" header {args.header}, {args.message}-element messages"
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(Path(args.out), buffer.getvalue())
    if args.json:
        atomic_write_json(args.json, rows)
    print(f"wrote {args.out}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
