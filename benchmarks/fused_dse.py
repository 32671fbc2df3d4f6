"""Design-space study of fused-layer schedules (LoopTree's case study), in the closed form.

Enumerates, for the Alwani VGG19 group (conv1_1..conv3_1 with pool1 and pool2) and for a
MobileNetV2 bottleneck (1x1 expand 24 -> 144, 3x3 depthwise, 1x1 project 144 -> 24 on
56x56), every combination of

* tile shape: rows x columns of the last output per tile, each a divisor of the output
  extent (``--tiles divisors``, the default), or every size from 1 to the extent
  (``--tiles all``); for VGG19 the default pairs every divisor as a square tile and as a
  full-width strip, ``--exhaustive`` pairs every row size with every column size;
* tile loop order: rows outer (P, Q) or columns outer (Q, P). The chains here are
  symmetric in rows and columns (square input, windows, strides and padding), so
  columns-outer with tile ``a x b`` is rows-outer with tile ``b x a`` transposed: the
  study enumerates rows-outer and checks that equivalence on samples;
* retain / recompute / spill for each intermediate, retain / reread for the group input;
* weights resident (all on chip, read once) or re-read per tile (one layer's on chip).
  Weights change neither the feature maps' traffic nor their buffer, so each design is
  evaluated once with weights re-read and its resident twin derived from it (resident:
  ``W_i`` once each, all on chip; re-read: ``W_i`` per tile using layer ``i``, the largest
  on chip); the study checks the derivation against the model on samples.

Two views, each with its Pareto front of buffer vs off-chip transfers (lower is better)
and the prior-work subspaces marked: *tile-and-retain only* (every intermediate and the
input retained; Alwani et al.) and *recompute only* (every intermediate recomputed, the
input re-read per tile):

* ``feature_maps``: weights resident, buffer and transfers of feature maps only (the
  weights add the same to every design);
* ``all_data``: weights included and their choice free in every subspace.

For every point of a prior subspace's front, the smallest buffer of any joint-space
design that moves no more off-chip data, and the largest ratio (LoopTree: "up to 10x").

    python benchmarks/fused_dse.py [--out fused-dse] [--jobs 2] [--exhaustive]

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
from metronome.spec.fused import FusedGroup, FusedScenario, load_fused  # noqa: E402

CHOICES = ("retain", "recompute", "spill")
WEIGHTS = ("resident", "reread")
COLUMNS = ("buffer", "offchip", "macs", "macs_recomputed")
"""Per design and view: elements on chip (peak), off-chip elements, MACs, recomputed."""


def divisors(n: int) -> list[int]:
    """Every divisor of ``n``, ascending."""
    return [d for d in range(1, n + 1) if n % d == 0]


def tile_shapes(height: int, width: int, mode: str) -> list[tuple[int, int]]:
    """Tile shapes (rows, columns): ``pairs`` every divisor of the height with every
    divisor of the width; ``all`` every size with every size; ``square+strips`` each
    divisor as a square tile and as a full-width strip."""
    if mode == "all":
        return list(itertools.product(range(1, height + 1), range(1, width + 1)))
    rows, cols = divisors(height), divisors(width)
    if mode == "pairs":
        return list(itertools.product(rows, cols))
    shapes = {(d, d) for d in rows if d in cols} | {(d, width) for d in rows}
    return sorted(shapes)


@dataclass(frozen=True, slots=True)
class Schedule:
    """One evaluated schedule of a single-group scenario (rows outer, weights re-read)."""

    tile: tuple[int, int]
    choices: tuple[str, ...]
    input_choice: str


def schedules(scenario: FusedScenario, tiles: list[tuple[int, int]]) -> list[Schedule]:
    """Every tile shape x intermediate choices x input choice of the single group."""
    inner = len(scenario.groups[0].choices) - 1
    return [
        Schedule(tile, choices, inp)
        for tile in tiles
        for choices in itertools.product(CHOICES, repeat=inner)
        for inp in ("retain", "reread")
    ]


def _group(scenario: FusedScenario, s: Schedule, weights: str, order: str = "PQ") -> FusedGroup:
    return dataclasses.replace(
        scenario.groups[0],
        tile=s.tile,
        order=tuple(order),
        choices=(*s.choices, "spill"),
        input_choice=s.input_choice,
        weights=weights,
        buffer_elems=None,
    )


_SCENARIO: FusedScenario | None = None


def _init(path: str) -> None:
    global _SCENARIO
    _SCENARIO = load_fused(path)


def _weights(scenario: FusedScenario) -> list[int]:
    return [layer.weight_elems for layer in scenario.group_layers(scenario.groups[0])]


def _evaluate(chunk: list[Schedule]) -> tuple[list[tuple[int, ...]], float]:
    """Per schedule (feature-map buffer, feature-map off-chip, MACs, recomputed MACs,
    weight reads when re-read per tile), and the CPU seconds the chunk took."""
    cpu = time.process_time()
    scenario = _SCENARIO
    assert scenario is not None
    largest = max(_weights(scenario))
    out = []
    for s in chunk:
        g = analyze_group(scenario, _group(scenario, s, "reread"))
        weight_reads = sum(t.offchip_reads for t in g.tensors if t.tensor.endswith(".weight"))
        out.append(
            (
                g.onchip_buffer_req_elems - largest,
                g.offchip_reads + g.offchip_writes - weight_reads,
                g.macs,
                g.macs_recomputed,
                weight_reads,
            )
        )
    return out, time.process_time() - cpu


def derive(raw: np.ndarray, weights: list[int]) -> dict[str, np.ndarray]:
    """Both weight choices' (buffer, off-chip, MACs, recomputed) from the re-read
    evaluation: resident adds every layer's weights once to both; re-read adds the
    largest layer's to the buffer and the per-tile reads to the transfers."""
    resident = raw[:, :4].copy()
    resident[:, 0] += sum(weights)
    resident[:, 1] += sum(weights)
    reread = raw[:, :4].copy()
    reread[:, 0] += max(weights)
    reread[:, 1] += raw[:, 4]
    return {"resident": resident, "reread": reread}


def check_model(scenario: FusedScenario, sample: list[Schedule], raw: np.ndarray) -> None:
    """The derivations the study relies on, against the model on ``sample``: the resident
    twin, and columns-outer order equal to the transposed tile rows-outer."""
    derived = derive(raw, _weights(scenario))
    index = {s: i for i, s in enumerate(sample)}
    for s, i in index.items():
        g = analyze_group(scenario, _group(scenario, s, "resident"))
        direct = (g.onchip_buffer_req_elems, g.offchip_reads + g.offchip_writes, g.macs)
        if direct != tuple(int(v) for v in derived["resident"][i, :3]):
            raise SystemExit(f"resident weights not derivable for {s}: the model changed")
        swapped = dataclasses.replace(s, tile=s.tile[::-1])
        a = analyze_group(scenario, _group(scenario, s, "reread"))
        b = analyze_group(scenario, _group(scenario, swapped, "reread", "QP"))
        if (a.onchip_buffer_req_elems, a.offchip_reads, a.offchip_writes, a.macs) != (
            b.onchip_buffer_req_elems,
            b.offchip_reads,
            b.offchip_writes,
            b.macs,
        ):
            raise SystemExit(f"loop order is not a transposition for {s}: enumerate both")


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


def best_ratio(prior: np.ndarray, full: np.ndarray) -> tuple[float, int, int, int]:
    """Largest (prior buffer / smallest joint-space buffer moving no more off-chip)
    over the points of a prior subspace's Pareto front; with the two buffers and the
    prior point's off-chip transfers."""
    order = np.argsort(full[:, 1], kind="stable")
    transfers = full[order, 1]
    running = np.minimum.accumulate(full[order, 0])
    best = (1.0, 0, 0, 0)
    for buf, xfer in prior:
        idx = np.searchsorted(transfers, xfer, side="right") - 1
        if idx >= 0 and running[idx] > 0:
            ratio = buf / running[idx]
            if ratio > best[0]:
                best = (float(ratio), int(buf), int(running[idx]), int(xfer))
    return best


@dataclass(frozen=True, slots=True)
class Design:
    """One design of the study: a schedule and its weight choice."""

    schedule: Schedule
    weights: str


@dataclass(slots=True)
class View:
    """One view of a study: its designs' figures, fronts and ratios."""

    designs: list[Design]
    points: np.ndarray
    masks: dict[str, np.ndarray]
    fronts: dict[str, np.ndarray]
    ratios: dict[str, tuple[float, int, int, int]]


def make_view(designs: list[Design], points: np.ndarray) -> View:
    """Fronts and ratios of a set of designs (points: COLUMNS)."""
    masks = {
        "tile_and_retain": np.array(
            [
                all(c == "retain" for c in d.schedule.choices)
                and d.schedule.input_choice == "retain"
                for d in designs
            ]
        ),
        "recompute_only": np.array(
            [
                all(c == "recompute" for c in d.schedule.choices)
                and d.schedule.input_choice == "reread"
                for d in designs
            ]
        ),
    }
    xy = points[:, :2]
    fronts = {"joint": pareto(xy)}
    fronts.update({k: np.flatnonzero(m)[pareto(xy[m])] for k, m in masks.items()})
    ratios = {key: best_ratio(xy[fronts[key]], xy) for key in masks}
    # The same, with the joint space held to at most 10 % extra MACs from recomputation.
    cheap = points[:, 3] <= 0.1 * (points[:, 2] - points[:, 3])
    ratios.update(
        {f"{key}_recompute_le_10pct": best_ratio(xy[fronts[key]], xy[cheap]) for key in masks}
    )
    return View(designs, points, masks, fronts, ratios)


def per_tile(view: View) -> list[tuple[tuple[int, int], int, int, int, int]]:
    """For each tile-and-retain design: its tile, buffer and transfers, the smallest
    buffer of any design moving no more, and of any with the same tile shape."""
    xy = view.points[:, :2]
    tiles = np.array([d.schedule.tile for d in view.designs])
    out = []
    for i in np.flatnonzero(view.masks["tile_and_retain"]):
        fits = xy[:, 1] <= xy[i, 1]
        same = fits & np.all(tiles == tiles[i], axis=1)
        out.append(
            (
                view.designs[i].schedule.tile,
                int(xy[i, 0]),
                int(xy[i, 1]),
                int(xy[fits, 0].min()),
                int(xy[same, 0].min()),
            )
        )
    return sorted(out)


@dataclass(slots=True)
class Study:
    """One scenario's enumerated space in both views."""

    name: str
    tiles: str
    shapes: int
    evaluations: int
    views: dict[str, View]
    width: int
    seconds: float
    cpu_ms_per_evaluation: float

    def describe(self, view: View, i: int) -> dict[str, object]:
        """One design and its figures, for the JSON."""
        d = view.designs[i]
        return {
            "tile": list(d.schedule.tile),
            "intermediates": list(d.schedule.choices),
            "input": d.schedule.input_choice,
            "weights": d.weights,
            "buffer_kib": round(float(view.points[i, 0]) * self.width / 1024, 2),
            "offchip_mib": round(float(view.points[i, 1]) * self.width / 2**20, 4),
            "macs": int(view.points[i, 2]),
            "macs_recomputed": int(view.points[i, 3]),
        }

    def to_json(self) -> dict[str, object]:
        """The fronts and ratios (no timings: the file is byte-identical run to run)."""
        return {
            "name": self.name,
            "tiles": self.tiles,
            "tile_shapes": self.shapes,
            "evaluations": self.evaluations,
            "views": {
                name: {
                    "designs": len(view.designs),
                    "fronts": {
                        k: [self.describe(view, int(i)) for i in v] for k, v in view.fronts.items()
                    },
                    "ratio_vs": {
                        key: {
                            "buffer_ratio": round(r, 2),
                            "prior_buffer_kib": round(a * self.width / 1024, 2),
                            "joint_buffer_kib": round(b * self.width / 1024, 2),
                            "at_offchip_mib": round(x * self.width / 2**20, 4),
                        }
                        for key, (r, a, b, x) in view.ratios.items()
                    },
                }
                for name, view in self.views.items()
            },
            "tile_and_retain_per_tile": [
                {
                    "tile": list(tile),
                    "buffer_kib": round(buf * self.width / 1024, 2),
                    "offchip_mib": round(xfer * self.width / 2**20, 4),
                    "joint_buffer_kib": round(joint * self.width / 1024, 2),
                    "same_tile_joint_buffer_kib": round(same * self.width / 1024, 2),
                }
                for tile, buf, xfer, joint, same in per_tile(self.views["feature_maps"])
            ],
        }


def study(name: str, path: str, tiles: str, jobs: int) -> Study:
    """Enumerate one scenario's space; both views with their fronts and ratios."""
    scenario = load_fused(path)
    _, height, width = scenario.layers[scenario.groups[0].last].out_shape
    shapes = tile_shapes(height, width, tiles)
    space = schedules(scenario, shapes)
    chunks = [space[i : i + 500] for i in range(0, len(space), 500)]
    started = time.perf_counter()
    with ProcessPoolExecutor(jobs, initializer=_init, initargs=(path,)) as pool:
        parts = list(pool.map(_evaluate, chunks))
    seconds = time.perf_counter() - started
    raw = np.array([r for part, _ in parts for r in part], dtype=np.float64)
    sample = list(range(0, len(space), max(1, len(space) // 12)))
    check_model(scenario, [space[i] for i in sample], raw[sample])
    derived = derive(raw, _weights(scenario))
    resident = [Design(s, "resident") for s in space]
    feature_maps = derived["resident"].copy()
    feature_maps[:, :2] -= sum(_weights(scenario))
    everything = resident + [Design(s, "reread") for s in space]
    views = {
        "feature_maps": make_view(resident, feature_maps),
        "all_data": make_view(everything, np.vstack([derived["resident"], derived["reread"]])),
    }
    return Study(
        name=name,
        tiles=tiles,
        shapes=len(shapes),
        evaluations=len(space),
        views=views,
        width=scenario.hardware.bytes_per_elem,
        seconds=round(seconds, 2),
        cpu_ms_per_evaluation=round(1000 * sum(c for _, c in parts) / len(space), 3),
    )


def plot(results: list[Study], target: Path) -> None:
    """Buffer vs off-chip, one panel per study and view, the prior subspaces marked."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    views = ("feature_maps", "all_data")
    fig, axes = plt.subplots(
        len(views), len(results), figsize=(6.5 * len(results), 5 * len(views)), squeeze=False
    )
    for col, res in enumerate(results):
        for row, name in enumerate(views):
            ax, view = axes[row][col], res.views[name]
            kib = view.points[:, 0] * res.width / 1024
            mib = view.points[:, 1] * res.width / 2**20
            ax.scatter(kib, mib, s=2, c="0.8", label="all designs", rasterized=True)
            for key, colour, label in (
                ("tile_and_retain", "tab:blue", "tile-and-retain only (Alwani)"),
                ("recompute_only", "tab:orange", "recompute only"),
            ):
                mask = view.masks[key]
                ax.scatter(kib[mask], mib[mask], s=6, c=colour, label=label)
            front = view.fronts["joint"]
            order = front[np.argsort(kib[front])]
            ax.step(kib[order], mib[order], where="post", c="tab:red", label="Pareto front (joint)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            what = "feature-map" if name == "feature_maps" else "total (weights included)"
            ax.set_xlabel(f"{what} buffer (KiB)")
            ax.set_ylabel(f"{what} off-chip transfers (MiB)")
            ax.set_title(f"{res.name}: {len(view.designs):,} designs ({name})")
            ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    atomic_write_bytes(target, buffer.getvalue())


def main() -> int:
    """Run both studies, write the JSON and the PNG, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="fused-dse", help="output directory")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--exhaustive",
        action="store_true",
        help="VGG19: every divisor pair of tile sizes (not squares and strips);"
        " MobileNetV2: every size from 1 to 56 per axis",
    )
    args = parser.parse_args()
    out = Path(args.out)
    vgg = str(ROOT / "scenarios" / "fused" / "alwani_vgg19.yaml")
    mobilenet = str(ROOT / "scenarios" / "fused" / "mobilenetv2_bottleneck.yaml")
    results = [
        study(
            "VGG19 conv1_1..conv3_1",
            vgg,
            "pairs" if args.exhaustive else "square+strips",
            args.jobs,
        ),
        study(
            "MobileNetV2 bottleneck", mobilenet, "all" if args.exhaustive else "pairs", args.jobs
        ),
    ]
    plot(results, out / "fused_dse.png")
    public = [r.to_json() for r in results]
    atomic_write_text(out / "fused_dse.json", json.dumps(public, indent=1) + "\n")
    for res in results:
        total = sum(len(v.designs) for v in res.views.values()) - res.evaluations
        print(
            f"{res.name}: {res.shapes} tile shapes ({res.tiles}), {res.evaluations:,}"
            f" evaluations = {total:,} designs with both weight choices, in {res.seconds} s"
            f" ({res.cpu_ms_per_evaluation} CPU ms per evaluation)"
        )
        for name, view in res.views.items():
            print(f"  {name}:")
            for key, (ratio, prior, joint, xfer) in view.ratios.items():
                if not joint:
                    print(f"    vs {key}: no joint design needs less buffer for no more off-chip")
                    continue
                print(
                    f"    vs {key}: up to {ratio:.2f}x less buffer for no more off-chip"
                    f" ({prior * res.width / 1024:.1f} KiB -> {joint * res.width / 1024:.1f} KiB"
                    f" at {xfer * res.width / 2**20:.2f} MiB)"
                )
            front = view.fronts["joint"]
            if name == "feature_maps":
                print("    tile-and-retain per tile shape: buffer -> joint (any tile, same tile):")
                for tile, buf, _, joint, same in per_tile(view):
                    print(
                        f"      {tile[0]}x{tile[1]}: {buf * res.width / 1024:.1f} KiB ->"
                        f" {joint * res.width / 1024:.1f} ({buf / joint:.1f}x),"
                        f" {same * res.width / 1024:.1f} ({buf / same:.1f}x)"
                    )
            print(f"    Pareto front: {len(front)} designs; ends:")
            for end in (front[0], front[-1]):
                print(f"      {res.describe(view, int(end))}")
    vgg_study = results[0]
    designs = sum(len(v.designs) for v in vgg_study.views.values()) - vgg_study.evaluations
    cpu = vgg_study.cpu_ms_per_evaluation * vgg_study.evaluations / 1000
    verdict = "met" if designs >= 10_000 and cpu / 2 <= 60 else "MISSED"
    print(
        f"target >= 10,000 VGG19 designs in <= 60 s on 2 cores: {verdict} ({designs:,} designs,"
        f" {cpu:.1f} CPU s = {cpu / 2:.1f} s on 2 free cores; {vgg_study.seconds} s wall here)"
    )
    print(f"wrote {out / 'fused_dse.json'} and {out / 'fused_dse.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
