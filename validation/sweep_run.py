"""``metronome sweep``'s run: chunks on an executor (in-process, local processes or
Dask), resumable per chunk, with the front, summary and plots rewritten atomically as
chunks finish, and the simulator's verdict on the front's best designs.

Files in the output directory:

* ``front.csv``: the Pareto front over runtime, energy and chip area, one column per
  axis and metric and a ``command`` that reproduces the design with ``metronome
  analyze`` (mapping files in ``maps/``);
* ``summary.json``: designs evaluated, feasible, on the front, why the others are
  infeasible, the best design, and (with ``--simulate-top``) the simulation check;
* ``simulated.csv``: analytic and simulated runtime of the simulated designs;
* ``pareto.png``, ``sensitivity.png``;
* ``chunks/``: one ``.npz`` per finished chunk (what a re-run resumes from).
"""

from __future__ import annotations

import io
import itertools
import os
import random
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metronome.analytic.cint import fdiv
from metronome.spec.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text
from metronome.spec.hardware import Hardware
from metronome.spec.names import PolicyName
from metronome.spec.space import HARDWARE_AXES, SweepSpace, maestro_text

from .cli.progress import ProgressBar
from .dask_exec import DaskTarget, dask_map
from .sweep import (
    FRONT_COLUMNS,
    INFEASIBLE_REASONS,
    Layout,
    chunk_count,
    evaluate_chunk,
    merge_fronts,
)

__all__ = [
    "Executor",
    "SweepOutcome",
    "kendall_tau",
    "run_sweep",
    "simulate_front",
]

_FLAGS = {name: flag for name, flag, _ in HARDWARE_AXES}
_ANALYZE_FLAGS = tuple(n for n, _, _ in HARDWARE_AXES if n != "topology")
_METRIC_COLUMNS = (
    "runtime_cycles",
    "energy_nj",
    "chip_area_um2",
    "utilization",
    "macs",
    "l1_size_req_elems",
    "l2_size_req_elems",
    "noc_bw_req_peak_elems_per_cycle",
    "offchip_bw_req_elems_per_cycle",
)
_TIMING_KEYS = ("wall_time_s", "designs_per_s", "executor", "simulation_wall_time_s")
"""Summary keys that depend on the run, not on the space (left out of comparisons)."""


@dataclass(frozen=True, slots=True)
class Executor:
    """Where chunks run: ``jobs`` local processes, a Dask LocalCluster with ``jobs``
    workers, or the Dask scheduler at ``scheduler``."""

    jobs: int = 1
    dask: bool = False
    scheduler: str | None = None

    def describe(self) -> str:
        """For the summary and messages."""
        if self.dask or self.scheduler:
            return DaskTarget(self.jobs, self.scheduler).describe()
        return f"{self.jobs} local process{'es' if self.jobs > 1 else ''}"


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    """What the run wrote, for the command line's last lines."""

    summary: dict[str, Any]
    front_rows: int


# ---------------------------------------------------------------------------- executors

_WORKER_SPACE: SweepSpace | None = None


def _init_worker(space: SweepSpace) -> None:
    global _WORKER_SPACE
    _WORKER_SPACE = space


def _worker_chunk(index: int) -> tuple[int, dict[str, np.ndarray]]:
    assert _WORKER_SPACE is not None
    return index, evaluate_chunk(_WORKER_SPACE, index)


def _dask_chunk(space: SweepSpace, index: int) -> tuple[int, dict[str, np.ndarray]]:
    return index, evaluate_chunk(space, index)


def _run_chunks(
    space: SweepSpace, todo: list[int], executor: Executor
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Each chunk's result as it finishes (in any order)."""
    if not todo:
        return
    if executor.dask or executor.scheduler:
        target = DaskTarget(executor.jobs, executor.scheduler)
        yield from dask_map(target, _dask_chunk, todo, space)
        return
    if executor.jobs <= 1 or len(todo) == 1:
        for index in todo:
            yield index, evaluate_chunk(space, index)
        return
    import multiprocessing

    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(
        max_workers=min(executor.jobs, len(todo)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(space,),
    ) as pool:
        # A bounded window of submitted chunks keeps memory constant in their number.
        pending = iter(todo)
        window = {
            pool.submit(_worker_chunk, i) for i in itertools.islice(pending, 4 * executor.jobs)
        }
        while window:
            done, window = wait(window, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: f.result()[0]):
                yield future.result()
                for index in itertools.islice(pending, 1):
                    window.add(pool.submit(_worker_chunk, index))


# ------------------------------------------------------------------------------ chunks


def _chunk_path(out: Path, index: int) -> Path:
    return out / "chunks" / f"chunk-{index:06d}.npz"


def _prepare(out: Path, space: SweepSpace) -> None:
    """Keep finished chunks only if they belong to this very space."""
    chunks = out / "chunks"
    stamp = chunks / "space.txt"
    expected = f"{space.fingerprint} {space.chunk_designs}\n"
    if stamp.is_file() and stamp.read_text() == expected:
        return
    if chunks.is_dir():
        stale = sorted(chunks.glob("chunk-*.npz"))
        if stale:
            sys.stderr.write(
                f"sweep: {out} holds {len(stale)} chunks of another space; starting over\n"
            )
        for path in stale:
            path.unlink()
    atomic_write_text(stamp, expected)


def _save_chunk(out: Path, index: int, result: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **result)
    atomic_write_bytes(_chunk_path(out, index), buffer.getvalue())


def _load_chunk(out: Path, index: int) -> dict[str, np.ndarray] | None:
    try:
        with np.load(_chunk_path(out, index), allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError):
        return None


class _Totals:
    """Everything merged from the finished chunks (a front and per-axis sums)."""

    def __init__(self, space: SweepSpace) -> None:
        self.space = space
        self.chunks = 0
        self.designs = 0
        self.feasible = 0
        self.reasons = np.zeros(len(INFEASIBLE_REASONS), dtype=np.int64)
        self.front: dict[str, np.ndarray] | None = None
        self.best = {a.name: np.full(len(a.values), np.iinfo(np.int64).max) for a in space.axes}
        self.count = {a.name: np.zeros(len(a.values), dtype=np.int64) for a in space.axes}
        self.errors: dict[int, str] = {}

    def add(self, index: int, result: dict[str, np.ndarray]) -> None:
        self.chunks += 1
        self.designs += int(result["designs"][0])
        self.feasible += int(result["feasible"][0])
        self.reasons += result["reasons"]
        chunk_front = {c: result[f"front.{c}"] for c in FRONT_COLUMNS}
        parts = [chunk_front] if self.front is None else [self.front, chunk_front]
        self.front = merge_fronts(parts)
        for axis in self.space.axes:
            self.best[axis.name] = np.minimum(self.best[axis.name], result[f"best.{axis.name}"])
            self.count[axis.name] += result[f"count.{axis.name}"]
        if str(result["error"][0]):
            self.errors[index] = str(result["error"][0])
            if len(self.errors) > 5:  # constant memory: the first few are enough
                del self.errors[max(self.errors)]


# ----------------------------------------------------------------------------- outputs


def _map_path(out: Path, mapping_index: int) -> Path:
    return out / "maps" / f"mapping-{mapping_index:06d}.m"


def _design_hardware(values: dict[str, int | str]) -> Hardware:
    """The hardware ``metronome analyze`` builds from the design's flags (+ topology)."""
    return Hardware.maestro_flags(
        num_pes=int(values["pes"]),
        l1_size=int(values["l1"]),
        l2_size=int(values["l2"]),
        noc_bw=int(values["noc_bw"]),
        noc_hops=int(values["noc_hops"]),
        noc_hop_latency=int(values["hop_latency"]),
        offchip_bw=int(values["offchip_bw"]),
        simd_lanes=int(values["lanes"]),
    ).with_changes(topology=str(values["topology"]))


def _mapping_index(space: SweepSpace, design: int) -> int:
    return design // (Layout.of(space).designs // space.mappings)


def _command(space: SweepSpace, out: Path, design: int) -> str:
    values = space.design_values(design)
    parts = ["metronome", "analyze", str(_map_path(out, _mapping_index(space, design)))]
    for name in _ANALYZE_FLAGS:
        parts += [_FLAGS[name], str(values[name])]
    return shlex.join(parts)


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return " ".join(str(value).splitlines())


def _front_rows(space: SweepSpace, front: dict[str, np.ndarray]) -> list[dict[str, object]]:
    rows = []
    for i in range(len(front["design"])):
        design = int(front["design"][i])
        values = space.design_values(design)
        row: dict[str, object] = {"design": design, **values}
        for column in FRONT_COLUMNS[1:]:
            row[column] = front[column][i].item()
        capacity = int(row["runtime_cycles"]) * int(values["pes"]) * int(values["lanes"])
        row["utilization"] = fdiv(int(row["macs"]), capacity)
        rows.append(row)
    return rows


def _write_front(space: SweepSpace, out: Path, totals: _Totals) -> list[dict[str, object]]:
    front = totals.front
    rows = _front_rows(space, front) if front is not None else []
    header = ["design", *(a.name for a in space.axes), *_METRIC_COLUMNS, "command"]
    lines = [",".join(header)]
    for row in rows:
        design = int(row["design"])  # type: ignore[call-overload]
        path = _map_path(out, _mapping_index(space, design))
        if not path.is_file():
            network = space.network_for(_mapping_index(space, design))
            atomic_write_text(path, maestro_text(network))
        cells = [_cell(row[c]) for c in header[:-1]]
        cells.append(_command(space, out, design))
        lines.append(",".join(_csv_quote(c) for c in cells))
    atomic_write_text(out / "front.csv", "\n".join(lines) + "\n")
    return rows


def _csv_quote(cell: str) -> str:
    if any(ch in cell for ch in ',"\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _summary(
    space: SweepSpace,
    totals: _Totals,
    rows: list[dict[str, object]],
    total_chunks: int,
    wall: float,
    evaluated_now: int,
    executor: Executor,
) -> dict[str, Any]:
    layout = Layout.of(space)
    summary: dict[str, Any] = {
        "space": space.name,
        "space_file": space.path,
        "layers": [e.name for e in space.network.layers],
        "axes": {a.name: list(a.values) for a in space.axes if len(a.values) > 1},
        "designs_in_space": layout.designs,
        "designs_evaluated": totals.designs,
        "designs_feasible": totals.feasible,
        "infeasible": {r: int(n) for r, n in zip(INFEASIBLE_REASONS, totals.reasons, strict=True)},
        "designs_on_front": len(rows),
        "chunks": {"done": totals.chunks, "total": total_chunks},
        "complete": totals.chunks == total_chunks,
        "mapping_errors": [{"chunk": i, "message": m} for i, m in sorted(totals.errors.items())],
        "best_runtime": _plain(rows[0]) if rows else None,
        "wall_time_s": round(wall, 3),
        "designs_per_s": round(evaluated_now / wall) if wall > 0 else 0,
        "executor": executor.describe(),
    }
    return summary


def _plain(row: dict[str, object]) -> dict[str, object]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}


def _plots(space: SweepSpace, out: Path, totals: _Totals) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = totals.front
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    if front is not None and len(front["design"]):
        points = ax.scatter(
            front["runtime_cycles"],
            front["chip_area_um2"],
            c=front["energy_nj"],
            s=14,
            cmap="viridis",
        )
        fig.colorbar(points, ax=ax, label="energy (nJ)")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("runtime (cycles)")
    ax.set_ylabel("chip area (um^2, MAESTRO's model)")
    ax.set_title(f"{space.name}: Pareto front ({0 if front is None else len(front['design'])})")
    _save(fig, out / "pareto.png")
    plt.close(fig)
    swept = [a for a in space.axes if len(a.values) > 1]
    cols = min(3, max(1, len(swept)))
    rows_n = max(1, -(-len(swept) // cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.2 * rows_n), squeeze=False)
    for k, axis in enumerate(swept):
        sub = axes[k // cols][k % cols]
        best = totals.best[axis.name]
        found = best < np.iinfo(np.int64).max
        x = np.arange(len(axis.values))
        sub.plot(x[found], best[found], marker="o")
        sub.set_xticks(x, [str(v)[:12] for v in axis.values], rotation=60, fontsize=6)
        sub.set_title(axis.name, fontsize=9)
        sub.tick_params(axis="y", labelsize=7)
        sub.set_ylabel("best runtime (cycles)", fontsize=7)
    for k in range(len(swept), rows_n * cols):
        axes[k // cols][k % cols].axis("off")
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12, top=0.94, wspace=0.35, hspace=0.6)
    _save(fig, out / "sensitivity.png")
    plt.close(fig)


def _save(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------------- the run


def run_sweep(
    space: SweepSpace,
    out: Path,
    executor: Executor,
    *,
    simulate_top: int = 0,
    progress: Callable[[int, int, object], None] | None = None,
    plots: bool = True,
) -> SweepOutcome:
    """Evaluate every unfinished chunk of ``space`` and write the outputs into ``out``."""
    started = time.perf_counter()
    total_chunks = chunk_count(space)
    out.mkdir(parents=True, exist_ok=True)
    _prepare(out, space)
    totals = _Totals(space)
    todo = []
    for index in range(total_chunks):
        found = _load_chunk(out, index) if _chunk_path(out, index).is_file() else None
        if found is None:
            todo.append(index)
        else:
            totals.add(index, found)
    bar = progress or ProgressBar(f"sweep {space.name}")
    evaluated_now = 0
    last_write = time.perf_counter()
    rows: list[dict[str, object]] = []
    for index, result in _run_chunks(space, todo, executor):
        _save_chunk(out, index, result)
        totals.add(index, result)
        evaluated_now += int(result["designs"][0])
        bar(totals.chunks, total_chunks, f"{totals.designs:,} designs")
        if time.perf_counter() - last_write > 5.0 and totals.chunks < total_chunks:
            rows = _write_front(space, out, totals)
            wall = time.perf_counter() - started
            atomic_write_json(
                out / "summary.json",
                _summary(space, totals, rows, total_chunks, wall, evaluated_now, executor),
            )
            last_write = time.perf_counter()
    if isinstance(bar, ProgressBar):
        bar.close()
    rows = _write_front(space, out, totals)
    wall = time.perf_counter() - started
    summary = _summary(space, totals, rows, total_chunks, wall, evaluated_now, executor)
    if simulate_top > 0 and rows:
        summary["simulation"] = simulate_front(space, out, rows, simulate_top, executor)
    if plots:
        _plots(space, out, totals)
    atomic_write_json(out / "summary.json", summary)
    return SweepOutcome(summary, len(rows))


# ------------------------------------------------------------------------- simulation


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b between two rankings (ties in either are allowed)."""
    n = len(a)
    concordant = discordant = ties_a = ties_b = 0
    for i in range(n):
        for j in range(i + 1, n):
            da = (a[i] > a[j]) - (a[i] < a[j])
            db = (b[i] > b[j]) - (b[i] < b[j])
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif da == db:
                concordant += 1
            else:
                discordant += 1
    pairs_a = concordant + discordant + ties_b
    pairs_b = concordant + discordant + ties_a
    if pairs_a == 0 or pairs_b == 0:
        return float("nan")
    return (concordant - discordant) / (pairs_a * pairs_b) ** 0.5


def _simulate_layer(task: tuple[Any, Any, Hardware, PolicyName]) -> int:
    """Simulated runtime of one layer under one mapping on one hardware."""
    from metronome import sim

    layer, mapping, hardware, policy = task
    result = sim.simulate(layer, mapping, hardware, sim.SimOptions(policy=sim.POLICIES[policy]))
    return result.layer.runtime_cycles


def _layer_key(entry: Any, hardware: Hardware) -> tuple[object, ...]:
    """Identical layers (ResNet repeats its blocks) are simulated once per hardware."""
    layer = entry.layer
    return (
        layer.type,
        layer.sizes,
        layer.stride_x,
        layer.stride_y,
        str(entry.require_mapping()),
        hardware,
    )


def simulate_front(
    space: SweepSpace,
    out: Path,
    rows: list[dict[str, object]],
    k: int,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Simulate the ``k`` fastest designs of the front and ``k`` others drawn from it
    (seeded), and say whether the closed form ranks them as the simulator does."""
    started = time.perf_counter()
    best = rows[:k]
    others = rows[k:]
    drawn = random.Random(space.fingerprint).sample(others, min(k, len(others)))
    chosen = best + sorted(drawn, key=lambda r: int(r["design"]))  # type: ignore[call-overload]
    tasks: dict[tuple[object, ...], tuple[Any, Any, Hardware, PolicyName]] = {}
    per_design: list[list[tuple[object, ...]]] = []
    for row in chosen:
        design = int(row["design"])  # type: ignore[call-overload]
        hardware = _design_hardware(space.design_values(design))
        keys = []
        for entry in space.network_for(_mapping_index(space, design)).layers:
            key = _layer_key(entry, hardware)
            tasks.setdefault(
                key, (entry.layer, entry.require_mapping(), hardware, space.simulate_policy)
            )
            keys.append(key)
        per_design.append(keys)
    runtimes = _run_simulations(tasks, executor or Executor())
    report = []
    for n, (row, keys) in enumerate(zip(chosen, per_design, strict=True), 1):
        design = int(row["design"])  # type: ignore[call-overload]
        report.append(
            {
                "design": design,
                "picked": "top" if n <= len(best) else "random",
                "analytic_runtime_cycles": int(row["runtime_cycles"]),  # type: ignore[call-overload]
                "simulated_runtime_cycles": sum(runtimes[key] for key in keys),
                "command": _command(space, out, design),
            }
        )
    analytic_rt = [float(r["analytic_runtime_cycles"]) for r in report]
    simulated_rt = [float(r["simulated_runtime_cycles"]) for r in report]
    tau = kendall_tau(analytic_rt, simulated_rt)
    analytic_winner = min(report, key=lambda r: (r["analytic_runtime_cycles"], r["design"]))
    simulated_winner = min(report, key=lambda r: (r["simulated_runtime_cycles"], r["design"]))
    header = [
        "design",
        "picked",
        "analytic_runtime_cycles",
        "simulated_runtime_cycles",
        "ratio",
        "command",
    ]
    lines = [",".join(header)]
    for r in report:
        ratio = fdiv(r["simulated_runtime_cycles"], r["analytic_runtime_cycles"])
        cells = [str(r[h]) if h != "ratio" else repr(ratio) for h in header]
        lines.append(",".join(_csv_quote(c) for c in cells))
    atomic_write_text(out / "simulated.csv", "\n".join(lines) + "\n")
    return {
        "policy": space.simulate_policy,
        "layer_simulations": len(tasks),
        "designs_simulated": len(report),
        "kendall_tau": None if tau != tau else round(tau, 6),
        "analytic_winner": analytic_winner["design"],
        "simulated_winner": simulated_winner["design"],
        "analytic_winner_is_simulated_winner": analytic_winner["design"]
        == simulated_winner["design"],
        "analytic_winner_simulated_runtime_cycles": analytic_winner["simulated_runtime_cycles"],
        "simulated_winner_runtime_cycles": simulated_winner["simulated_runtime_cycles"],
        # How much slower (simulated) the closed form's pick is than the best one found.
        "analytic_winner_regret": round(
            fdiv(
                analytic_winner["simulated_runtime_cycles"],
                simulated_winner["simulated_runtime_cycles"],
            )
            - 1.0,
            6,
        ),
        "simulation_wall_time_s": round(time.perf_counter() - started, 3),
    }


def _run_simulations(
    tasks: dict[tuple[object, ...], tuple[Any, Any, Hardware, str]], executor: Executor
) -> dict[tuple[object, ...], int]:
    """Every task's simulated runtime, on local processes when ``executor`` has them."""
    keys = list(tasks)
    bar = ProgressBar("simulating front designs (layers)", delay_s=1.0)
    out: dict[tuple[object, ...], int] = {}
    if executor.jobs <= 1 or len(keys) <= 1:
        for n, key in enumerate(keys, 1):
            out[key] = _simulate_layer(tasks[key])
            bar(n, len(keys))
    else:
        import multiprocessing

        start = "fork" if sys.platform.startswith("linux") else "spawn"
        context = multiprocessing.get_context(start)
        with ProcessPoolExecutor(max_workers=executor.jobs, mp_context=context) as pool:
            futures = {pool.submit(_simulate_layer, tasks[key]): key for key in keys}
            for n, future in enumerate(as_completed(futures), 1):
                out[futures[future]] = future.result()
                bar(n, len(keys))
    bar.close()
    return out


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` without what depends on the run (timings, executor)."""
    out = {k: v for k, v in summary.items() if k not in _TIMING_KEYS}
    if isinstance(out.get("simulation"), dict):
        out["simulation"] = {k: v for k, v in out["simulation"].items() if k not in _TIMING_KEYS}
    return out


def cpu_count() -> int:
    """Cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
