"""Design-space study of fused-layer schedules (LoopTree's case study), in the closed form.

Enumerates, for the Alwani VGG19 group (conv1_1..conv3_1 with pool1 and pool2) and for
a MobileNetV2 bottleneck (1x1 expand 24 -> 144, 3x3 depthwise, 1x1 project 144 -> 24 on
56x56), every combination of tile sizes (P x Q), retain/recompute/spill for each
intermediate and retain/reread for the group input, with weights resident. For each
design it records the feature-map buffer peak (on-chip total minus the resident
weights) and the feature-map off-chip transfers (the weights add the same amount to
every design), draws the Pareto fronts (PNG) with the prior-work subspaces marked —
tile-and-retain only (Alwani et al.: every intermediate and the input retained) and
recompute only (every intermediate recomputed, the input re-read per tile) — and checks
LoopTree's claim that the joint space needs up to 10x less buffer for the same off-chip
transfers: for every design of a prior subspace, the smallest buffer of any design that
moves no more, and the largest ratio.

    python benchmarks/fused_dse.py [--out fused-dse] [--jobs 2]

Writes OUT/fused_dse.json (the fronts and ratios; byte-identical on every run) and
OUT/fused_dse.png; prints the figures and the time.
Targets: >= 10,000 VGG19 designs in <= 60 s on 2 cores; <= 5 ms per design.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metronome.analytic.fused import analyze_group  # noqa: E402
from metronome.spec.fileio import atomic_write_bytes, atomic_write_text  # noqa: E402
from metronome.spec.fused import FusedScenario, load_fused  # noqa: E402

VGG_TILES = ((1, 1), (2, 2), (4, 4), (7, 7), (14, 14), (56, 56), (1, 56), (4, 56))
"""Square tiles from one output pixel to the whole map, and row strips."""
MOBILENET_TILES = tuple(itertools.product((1, 2, 4, 7, 8, 14, 28, 56), (1, 2, 4, 7, 8, 14, 28, 56)))


@dataclass(frozen=True, slots=True)
class Design:
    """One schedule of a single-group scenario (weights resident)."""

    tile: tuple[int, int]
    choices: tuple[str, ...]
    input_choice: str


def designs(scenario: FusedScenario, tiles: tuple[tuple[int, int], ...]) -> list[Design]:
    """Every tile shape x intermediate choices x input choice of the single group."""
    inner = len(scenario.groups[0].choices) - 1
    return [
        Design(tile, choices, inp)
        for tile in tiles
        for choices in itertools.product(("retain", "recompute", "spill"), repeat=inner)
        for inp in ("retain", "reread")
    ]


_SCENARIO: FusedScenario | None = None


def _init(path: str) -> None:
    global _SCENARIO
    _SCENARIO = _load(path)


def _load(path: str) -> FusedScenario:
    return load_fused(path)


def _evaluate(chunk: list[Design]) -> tuple[list[tuple[int, int, int, int]], float]:
    """(feature-map buffer, feature-map off-chip, MACs, recomputed MACs) per design,
    and the CPU seconds the chunk took."""
    cpu = time.process_time()
    scenario = _SCENARIO
    assert scenario is not None
    group = scenario.groups[0]
    weights = sum(layer.weight_elems for layer in scenario.group_layers(group))
    out = []
    for design in chunk:
        schedule = dataclasses.replace(
            group,
            tile=design.tile,
            choices=(*design.choices, "spill"),
            input_choice=design.input_choice,
            weights="resident",
            buffer_elems=None,
        )
        g = analyze_group(scenario, schedule)
        out.append(
            (
                g.onchip_buffer_req_elems - weights,
                g.offchip_reads + g.offchip_writes - weights,
                g.macs,
                g.macs_recomputed,
            )
        )
    return out, time.process_time() - cpu


def pareto(points: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both columns (lower is better)."""
    order = np.lexsort((points[:, 0], points[:, 1]))
    best = np.inf
    keep = []
    for i in order:
        if points[i, 0] < best:
            keep.append(i)
            best = points[i, 0]
    return np.array(keep, dtype=np.int64)


def best_ratio(prior: np.ndarray, full: np.ndarray) -> tuple[float, int, int]:
    """Largest (prior buffer / smallest joint-space buffer moving no more off-chip)
    over the points of a prior subspace's Pareto front; with the two buffers."""
    order = np.argsort(full[:, 1], kind="stable")
    transfers = full[order, 1]
    running = np.minimum.accumulate(full[order, 0])
    best = (1.0, 0, 0)
    for buf, xfer in prior:
        idx = np.searchsorted(transfers, xfer, side="right") - 1
        if idx >= 0 and running[idx] > 0:
            ratio = buf / running[idx]
            if ratio > best[0]:
                best = (float(ratio), int(buf), int(running[idx]))
    return best


@dataclass(slots=True)
class Study:
    """One scenario's enumerated space: every design's figures (elements), the fronts
    (indices into the designs) and the buffer ratios."""

    name: str
    space: list[Design]
    points: np.ndarray
    width: int
    fronts: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    ratios: dict[str, tuple[float, int, int]]
    seconds: float
    cpu_ms_per_design: float

    def describe(self, i: int) -> dict[str, object]:
        """One design and its figures, for the JSON."""
        design = self.space[i]
        return {
            "tile": list(design.tile),
            "intermediates": list(design.choices),
            "input": design.input_choice,
            "buffer_kib": round(float(self.points[i, 0]) * self.width / 1024, 2),
            "offchip_mib": round(float(self.points[i, 1]) * self.width / 2**20, 4),
            "macs": int(self.points[i, 2]),
            "macs_recomputed": int(self.points[i, 3]),
        }

    def to_json(self) -> dict[str, object]:
        """The fronts and ratios (no timings: the file is byte-identical run to run)."""
        return {
            "name": self.name,
            "designs": len(self.space),
            "fronts": {k: [self.describe(int(i)) for i in v] for k, v in self.fronts.items()},
            "ratio_vs": {
                key: {
                    "buffer_ratio": round(r, 2),
                    "prior_buffer_kib": round(a * self.width / 1024, 2),
                    "joint_buffer_kib": round(b * self.width / 1024, 2),
                }
                for key, (r, a, b) in self.ratios.items()
            },
        }


def study(name: str, path: str, tiles: tuple[tuple[int, int], ...], jobs: int) -> Study:
    """Enumerate one scenario's space; the points, the fronts and the ratios."""
    scenario = _load(path)
    space = designs(scenario, tiles)
    chunks = [space[i : i + 500] for i in range(0, len(space), 500)]
    started = time.perf_counter()
    with ProcessPoolExecutor(jobs, initializer=_init, initargs=(path,)) as pool:
        parts = list(pool.map(_evaluate, chunks))
    seconds = time.perf_counter() - started
    points = np.array([r for part, _ in parts for r in part], dtype=np.float64)
    masks = {
        "tile_and_retain": np.array(
            [all(c == "retain" for c in d.choices) and d.input_choice == "retain" for d in space]
        ),
        "recompute_only": np.array(
            [all(c == "recompute" for c in d.choices) and d.input_choice == "reread" for d in space]
        ),
    }
    xy = points[:, :2]
    fronts = {"full": pareto(xy)}
    fronts.update({k: np.flatnonzero(m)[pareto(xy[m])] for k, m in masks.items()})
    ratios = {key: best_ratio(xy[fronts[key]], xy) for key in masks}
    # The same, with the joint space held to at most 10 % extra MACs from recomputation.
    cheap = points[:, 3] <= 0.1 * (points[:, 2] - points[:, 3])
    ratios.update(
        {f"{key}_recompute_le_10pct": best_ratio(xy[fronts[key]], xy[cheap]) for key in masks}
    )
    width = scenario.hardware.bytes_per_elem
    return Study(
        name=name,
        space=space,
        points=points,
        width=width,
        fronts=fronts,
        masks=masks,
        ratios=ratios,
        seconds=round(seconds, 2),
        cpu_ms_per_design=round(1000 * sum(c for _, c in parts) / len(space), 3),
    )


def plot(results: list[Study], target: Path) -> None:
    """Buffer vs off-chip, one panel per study, the prior subspaces marked."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6.5 * len(results), 5))
    for ax, res in zip(np.atleast_1d(axes), results, strict=True):
        kib = res.points[:, 0] * res.width / 1024
        mib = res.points[:, 1] * res.width / 2**20
        ax.scatter(kib, mib, s=2, c="0.8", label="all designs")
        for key, colour, label in (
            ("tile_and_retain", "tab:blue", "tile-and-retain only (Alwani)"),
            ("recompute_only", "tab:orange", "recompute only"),
        ):
            mask = res.masks[key]
            ax.scatter(kib[mask], mib[mask], s=6, c=colour, label=label)
        front = res.fronts["full"]
        order = front[np.argsort(kib[front])]
        ax.step(kib[order], mib[order], where="post", c="tab:red", label="Pareto front (joint)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("feature-map buffer (KiB)")
        ax.set_ylabel("feature-map off-chip transfers (MiB)")
        ax.set_title(f"{res.name}: {len(res.space)} designs")
        ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    atomic_write_bytes(target, buffer.getvalue())


def main() -> int:
    """Run both studies, write the JSON and the PNG, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="fused-dse", help="output directory")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    out = Path(args.out)
    vgg = str(ROOT / "scenarios" / "fused" / "alwani_vgg19.yaml")
    mobilenet = str(ROOT / "scenarios" / "fused" / "mobilenetv2_bottleneck.yaml")
    results = [
        study("VGG19 conv1_1..conv3_1", vgg, VGG_TILES, args.jobs),
        study("MobileNetV2 bottleneck", mobilenet, MOBILENET_TILES, args.jobs),
    ]
    plot(results, out / "fused_dse.png")
    public = [r.to_json() for r in results]
    atomic_write_text(out / "fused_dse.json", json.dumps(public, indent=1) + "\n")
    for res in results:
        print(
            f"{res.name}: {len(res.space)} designs in {res.seconds} s"
            f" ({res.cpu_ms_per_design} CPU ms per design)"
        )
        for key, (ratio, prior, joint) in res.ratios.items():
            if not joint:
                print(f"  vs {key}: no joint design needs less buffer for no more off-chip")
                continue
            print(
                f"  vs {key}: up to {ratio:.2f}x less buffer for no more off-chip"
                f" ({prior * res.width / 1024:.1f} KiB -> {joint * res.width / 1024:.1f} KiB)"
            )
        front = res.fronts["full"]
        print(f"  Pareto front: {len(front)} designs; ends:")
        for end in (front[0], front[-1]):
            print(f"    {res.describe(int(end))}")
    print(f"wrote {out / 'fused_dse.json'} and {out / 'fused_dse.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
