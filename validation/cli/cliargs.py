"""Command-line options shared by several subcommands: hardware and layer selection."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from metronome.spec.loader import HardwareFlags

__all__ = ["add_hardware_arguments", "add_layer_argument", "hardware_flags", "int_at_least"]

_HW_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("num_pes", "--num-pes", "number of PEs (MAESTRO's flag default: 7)"),
    ("l1_size", "--l1-size", "L1 size per PE, elements (default unbounded)"),
    ("l2_size", "--l2-size", "shared L2 size, elements (default unbounded)"),
    ("noc_bw", "--noc-bw", "NoC bandwidth, elements/cycle (default unbounded)"),
    ("noc_hops", "--noc-hops", "average NoC hops (default 1)"),
    ("noc_hop_latency", "--noc-hop-latency", "cycles per hop (default 0; latency = hops x this)"),
    ("offchip_bw", "--offchip-bw", "off-chip bandwidth, elements/cycle (default 70000)"),
    ("simd_lanes", "--simd-lanes", "MAC lanes per PE (default 1)"),
)


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` that accepts integers >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


_positive_int = int_at_least(0)


def add_hardware_arguments(parser: argparse.ArgumentParser) -> None:
    """``--hw FILE`` or individual hardware flags, with MAESTRO's two modes."""
    group = parser.add_argument_group(
        "hardware",
        "a MAESTRO hardware file (--hw; NoC latency = its NoC_NumHops, default 1) or flags"
        " (NoC latency = hops x hop latency, default 0), as MAESTRO itself does",
    )
    group.add_argument("--hw", metavar="HW.m", help="MAESTRO hardware file")
    for dest, flag, text in _HW_FLAGS:
        group.add_argument(flag, dest=dest, type=_positive_int, metavar="N", help=text)


def hardware_flags(args: argparse.Namespace) -> HardwareFlags:
    """The hardware flags the user gave."""
    return HardwareFlags(**{dest: getattr(args, dest) for dest, _, _ in _HW_FLAGS})


def add_layer_argument(parser: argparse.ArgumentParser) -> None:
    """``--layer NAME`` (repeatable) to run only some layers."""
    parser.add_argument(
        "--layer",
        action="append",
        metavar="NAME",
        help="run only this layer (repeat for several; every layer of that name)",
    )
