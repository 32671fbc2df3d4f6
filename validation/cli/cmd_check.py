"""``metronome check FILE...``: parse and validate inputs, one summary line per layer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metronome.spec.fused import is_fused_file
from metronome.spec.hardware import Hardware
from metronome.spec.lexer import read_source
from metronome.spec.loader import load_network, resolve_hardware
from metronome.spec.maestro import looks_like_hw_file, parse_hw_file
from metronome.spec.network import Network
from metronome.spec.source import Diagnostic, SpecError

from .cliargs import add_hardware_arguments, hardware_flags

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` subcommand."""
    parser = commands.add_parser(
        "check",
        help="parse and validate mapping, hardware, pragma and scenario files",
        description="Parse and validate each FILE; print one line per layer. Exit 2 on any"
        " error (every file is still checked).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    add_hardware_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check every file; 0 if all are valid, 2 otherwise."""
    failed = False
    flags = hardware_flags(args)
    explicit_hw = args.hw is not None or bool(flags.given())
    for name in args.files:
        try:
            _check_one(name, args.hw, flags, explicit_hw)
        except SpecError as exc:
            print(exc.render(), file=sys.stderr)
            failed = True
    return 2 if failed else 0


def _check_one(name: str, hw_file: str | None, flags: object, explicit_hw: bool) -> None:
    path = Path(name)
    if is_fused_file(path):
        from .cmd_fused import check_cli

        check_cli(name)
        return
    if path.suffix in (".yaml", ".yml"):
        from metronome.spec.scenario import load_scenario

        scenario = load_scenario(path)
        print(f"{name}: scenario '{scenario.name}', {len(scenario.network.layers)} layer(s)")
        print(f"  hardware: {scenario.hardware.describe()}")
        for label, _ in scenario.variants()[1:] if scenario.sweep else ():
            print(f"  variant: {label}")
        _print_network(scenario.network, scenario.hardware)
        return
    if path.suffix == ".m" and looks_like_hw_file(read_source(path)):
        hardware = parse_hw_file(path)
        print(f"{name}: hardware: {hardware.describe()}")
        return
    network = load_network(path)
    hardware = None
    if explicit_hw or network.hardware is not None:
        hardware = resolve_hardware(hw_file, flags, network)  # type: ignore[arg-type]
    print(f"{name}: network '{network.name}', {len(network.layers)} layer(s)")
    if hardware is not None:
        print(f"  hardware: {hardware.describe()}")
    _print_network(network, hardware)


def _print_network(network: Network, hardware: Hardware | None) -> None:
    problems: list[Diagnostic] = []
    width = max((len(e.name) for e in network.layers), default=0)
    for entry in network.layers:
        mapping = entry.mapping
        if mapping is None:
            detail = "no Dataflow (model only)"
        else:
            levels = len(mapping.level_directives())
            detail = f"{levels} level{'s' if levels > 1 else ''}"
            if hardware is not None:
                try:
                    units = mapping.units_per_level(hardware.num_pes)
                    used = 1
                    for u in units:
                        used *= u
                    detail += f", units {' x '.join(map(str, units))} = {used} PEs"
                except SpecError as exc:
                    problems.extend(exc.diagnostics)
                    detail += ", does not fit"
            if entry.mapping_inherited:
                detail += ", Dataflow inherited from the previous layer"
        print(f"  {entry.name:<{width}}  {entry.layer.describe()}  [{detail}]")
        for warning in entry.warnings:
            print(warning.render(), file=sys.stderr)
    if problems:
        raise SpecError(problems)
