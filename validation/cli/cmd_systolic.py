"""Systolic mode of ``metronome simulate`` and ``metronome analyze``: SCALE-Sim's own
topology CSV and ``.cfg`` in, one line per layer out, ``--json`` with a ``scalesim``
object per layer named after SCALE-Sim's report columns."""

from __future__ import annotations

import argparse
import time

from metronome.spec.fileio import atomic_write_json
from metronome.spec.scalesim import (
    ScaleSimConfig,
    SystolicLayerResult,
    parse_config,
    parse_topology,
)
from metronome.spec.source import SpecError

__all__ = ["add_systolic_arguments", "run_systolic"]

_CONFLICTS: tuple[str, ...] = (
    "hw",
    "num_pes",
    "l1_size",
    "l2_size",
    "noc_bw",
    "noc_hops",
    "noc_hop_latency",
    "offchip_bw",
    "simd_lanes",
    "topology",
    "noc_arbitration",
    "mesh_l2_position",
    "adder_latency",
    "plot",
    "inputs",
    "save_outputs",
)


def add_systolic_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scalesim-config`` and ``--overlap-folds``."""
    group = parser.add_argument_group(
        "systolic mode",
        "with --scalesim-config, the positional file is a SCALE-Sim topology CSV and the"
        " layer runs on its systolic array, as SCALE-Sim v3 lowers it",
    )
    group.add_argument(
        "--scalesim-config",
        metavar="SCALE.cfg",
        help="a SCALE-Sim .cfg: array size, dataflow (os/ws/is), SRAM sizes",
    )
    group.add_argument(
        "--overlap-folds",
        action="store_true",
        help="issue each fold as soon as the array allows, its fill overlapping the previous"
        " fold's drain (SCALE-Sim runs folds strictly one after another)",
    )


def _check_flags(args: argparse.Namespace) -> None:
    given = [name for name in _CONFLICTS if getattr(args, name, None) is not None]
    given += [name for name in ("functional", "no_fast_forward") if getattr(args, name, False)]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise SpecError.at(
            None,
            f"{flag} does not apply with --scalesim-config (the .cfg describes the array)",
        )


def run_systolic(args: argparse.Namespace, engine: str) -> int:
    """Run ``engine`` ('sim' or 'analytic') on every selected layer; 0 on success."""
    if args.scalesim_config is None:
        raise SpecError.at(None, "--overlap-folds needs --scalesim-config")
    _check_flags(args)
    config = parse_config(args.scalesim_config)
    topology = parse_topology(args.mapping)
    layers = [
        (index, layer)
        for index, layer in enumerate(topology.layers)
        if not args.layer or layer.name in args.layer
    ]
    if not layers:
        raise SpecError.at(None, f"no layer of {args.mapping} is named {', '.join(args.layer)}")
    if engine == "sim":
        from metronome.sim.systolic import simulate_systolic as run_layer
    else:
        from metronome.analytic.systolic import analyze_systolic as run_layer
    print(f"{args.mapping}: {len(topology.layers)} layer(s), {engine}-systolic")
    print(f"  array: {config.describe()}" + (", overlapped folds" if args.overlap_folds else ""))
    print(
        f"  {'layer':<16} {'Total Cycles':>13} {'folds':>7} {'SRAM ifmap rd':>14}"
        f" {'SRAM filter rd':>15} {'SRAM ofmap wr':>14} {'util %':>7}"
    )
    results: list[SystolicLayerResult] = []
    for index, layer in layers:
        started = time.perf_counter()
        result = run_layer(layer, config, overlap=args.overlap_folds, layer_index=index)
        elapsed = time.perf_counter() - started
        s = result.scalesim
        print(
            f"  {layer.name:<16} {s.total_cycles:>13} {result.folds:>7} {s.sram_ifmap_reads:>14}"
            f" {s.sram_filter_reads:>15} {s.sram_ofmap_writes:>14} {s.compute_util_pct:>7.2f}"
        )
        if engine == "sim":
            print(f"  {layer.name}: simulated in {elapsed:.2f} s")
        results.append(result)
    if args.json:
        atomic_write_json(args.json, _payload(args.mapping, config, engine, results))
    return 0


def _payload(
    topology: str, config: ScaleSimConfig, engine: str, results: list[SystolicLayerResult]
) -> dict[str, object]:
    return {
        "engine": f"{engine}-systolic",
        "source": topology,
        "scalesim_config": config.path,
        "array_rows": config.array_rows,
        "array_cols": config.array_cols,
        "dataflow": config.dataflow,
        "layers": [r.to_dict() for r in results],
    }
