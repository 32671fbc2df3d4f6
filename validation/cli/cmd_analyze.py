"""``metronome analyze MAPPING``: run the analytic model and report per layer.

Prints a table (runtime, MACs, utilisation, traffic per tensor, buffer and bandwidth
needs, energy, network totals); ``--csv`` writes MAESTRO's 52-column CSV and ``--json``
the project's result schema. ``--model`` picks the closed form: ``fixed`` (the default:
MAESTRO's model with the bugs listed in ``docs/maestro-deviations.md`` fixed),
``refined`` (what the realistic machine does, ``docs/refined-model.md``) or ``maestro``
(MAESTRO's numbers, quirks included; ``--maestro-compat`` is the same).
"""

from __future__ import annotations

import argparse
import sys

from metronome.spec.energy import ENERGY_TABLES
from metronome.spec.fileio import atomic_write_json
from metronome.spec.fused import is_fused_file
from metronome.spec.loader import load_network, resolve_hardware
from metronome.spec.source import SpecError

from .cliargs import add_hardware_arguments, add_layer_argument, hardware_flags
from .cmd_systolic import add_systolic_arguments, run_systolic

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``analyze`` subcommand."""
    parser = commands.add_parser(
        "analyze",
        help="run the analytic (MAESTRO-semantics) cost model on a mapping",
        description="Analyse every layer of MAPPING (or those named with --layer) with the"
        " closed-form model and print a per-layer table. Exit 2 on bad input.",
    )
    parser.add_argument(
        "mapping", metavar="MAPPING", help="MAESTRO .m, 2018 pragma, or (systolic) topology CSV"
    )
    add_hardware_arguments(parser)
    add_layer_argument(parser)
    parser.add_argument(
        "--model",
        choices=("fixed", "refined", "maestro"),
        default=None,
        help="closed form: fixed (default; MAESTRO's bugs fixed), refined (the realistic"
        " machine's reuse, off-chip and network terms) or maestro (MAESTRO's numbers)",
    )
    parser.add_argument(
        "--maestro-compat",
        action="store_true",
        help="reproduce MAESTRO's numbers exactly, its bugs included (= --model maestro)",
    )
    parser.add_argument(
        "--energy",
        default="maestro",
        metavar="TABLE",
        help=f"energy table for energy_nj: {', '.join(ENERGY_TABLES)} (default maestro)",
    )
    parser.add_argument("--csv", metavar="OUT.csv", help="write MAESTRO's 52-column CSV")
    parser.add_argument("--json", metavar="OUT.json", help="write the result schema as JSON")
    add_systolic_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Analyse, print the table, write the requested files; 0 on success."""
    if is_fused_file(args.mapping):
        from .cmd_fused import analyze_cli

        if args.csv or args.maestro_compat or args.model or args.scalesim_config:
            raise SpecError.at(
                None,
                "--csv, --model, --maestro-compat and --scalesim-config do not apply to fused"
                " scenarios",
            )
        return analyze_cli(args.mapping, args.json)
    if args.maestro_compat and args.model not in (None, "maestro"):
        raise SpecError.at(
            None, f"--maestro-compat is --model maestro; it contradicts --model {args.model}"
        )
    model = "maestro" if args.maestro_compat else (args.model or "fixed")
    if args.scalesim_config or args.overlap_folds:
        if args.csv or model != "fixed":
            raise SpecError.at(
                None, "--csv and --model/--maestro-compat do not apply to systolic mode"
            )
        return run_systolic(args, "analytic")
    if args.energy not in ENERGY_TABLES:
        raise SpecError.at(
            None,
            f"unknown energy table '{args.energy}'",
            hint="one of " + ", ".join(ENERGY_TABLES),
        )
    network = load_network(args.mapping)
    hardware = resolve_hardware(args.hw, hardware_flags(args), network)
    selected = network.select(args.layer)
    for entry in selected.layers:
        for warning in entry.warnings:
            print(warning.render(), file=sys.stderr)

    from metronome import analytic

    result = analytic.analyze_network(
        network,
        hardware,
        energy=args.energy,
        layers=args.layer,
        model=model,
    )
    if args.csv:
        analytic.write_maestro_csv(result, args.csv)
    if args.json:
        atomic_write_json(args.json, result.to_dict())
    print(analytic.render_table(result))
    return 0
