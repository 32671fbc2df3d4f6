"""``metronome simulate MAPPING``: run the cycle-level simulator, print a per-layer table."""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from metronome.spec.fileio import atomic_write_bytes, atomic_write_json
from metronome.spec.fused import is_fused_file
from metronome.spec.hardware import ARBITRATIONS, L2_POSITIONS, TOPOLOGIES, Hardware
from metronome.spec.loader import load_network, resolve_hardware
from metronome.spec.names import Engine, PolicyName
from metronome.spec.source import SpecError

from ..simview import draw_simulation, noc_summary
from .cliargs import add_hardware_arguments, add_layer_argument, hardware_flags
from .cmd_systolic import add_systolic_arguments, run_systolic
from .progress import ProgressBar

if TYPE_CHECKING:
    import numpy as np

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` subcommand."""
    parser = commands.add_parser(
        "simulate",
        help="run the SimPy cycle-level simulator on a mapping",
        description="Execute each layer's mapping on simulated PEs, L1s, L2, off-chip memory"
        " and a NoC (bus, crossbar, mesh, fat tree or systolic array); print one line per"
        " layer.",
    )
    parser.add_argument(
        "mapping", metavar="MAPPING", help="MAESTRO .m, 2018 pragma, or (systolic) topology CSV"
    )
    add_hardware_arguments(parser)
    add_layer_argument(parser)
    parser.add_argument(
        "--policy", choices=[p.value for p in PolicyName], default=PolicyName.REALISTIC.value
    )
    parser.add_argument("--json", metavar="OUT.json", help="write the result schema here")
    parser.add_argument(
        "--no-fast-forward",
        action="store_true",
        help="run every step through the SimPy processes (slow; same results)",
    )
    parser.add_argument(
        "--l1-eviction",
        choices=("lru", "optimal"),
        default="lru",
        help="what a full L1 evicts under the realistic policy: least recently used"
        " (default) or furthest next use (the upper bound on reuse)",
    )
    noc = parser.add_argument_group("network-on-chip (simulator only)")
    noc.add_argument("--topology", choices=TOPOLOGIES, help="NoC topology (default: bus)")
    noc.add_argument(
        "--noc-arbitration", choices=ARBITRATIONS, help="link arbitration (default: fifo)"
    )
    noc.add_argument(
        "--mesh-l2-position", choices=L2_POSITIONS, help="where L2 joins a mesh (default: corner)"
    )
    noc.add_argument(
        "--adder-latency", type=int, metavar="N", help="cycles per reduction adder (default 1)"
    )
    noc.add_argument(
        "--noc-header-cycles",
        type=int,
        metavar="H",
        help="cycles every message occupies each link before its payload (default 0)",
    )
    parser.add_argument(
        "--offchip-outstanding",
        type=int,
        metavar="N",
        help="off-chip requests in flight at once, one per step (default 16; simulator only)",
    )
    noc.add_argument(
        "--plot",
        metavar="DIR",
        help="draw each layer's network (links coloured by utilisation) and a timeline of"
        " PE utilisation and NoC occupancy into DIR",
    )
    parser.add_argument("--functional", action="store_true", help="carry real values")
    parser.add_argument("--inputs", metavar="IN.npz", help="arrays 'input' and 'weight'")
    parser.add_argument("--save-outputs", metavar="OUT.npz", help="write array 'output'")
    add_systolic_arguments(parser)
    parser.set_defaults(run=run)


def _load_npz(path: str) -> dict[str, np.ndarray]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise SpecError.at(None, f"{path}: not a readable .npz file ({exc})") from None


def run(args: argparse.Namespace) -> int:
    """Simulate the selected layers; 0 on success, 2 on bad input."""
    if is_fused_file(args.mapping):
        from .cmd_fused import simulate_cli

        if args.inputs or args.scalesim_config:
            raise SpecError.at(
                None,
                "--inputs and --scalesim-config do not apply to fused scenarios",
                hint="a fused --functional run makes its own inputs and checks against numpy",
            )
        return simulate_cli(args.mapping, args.json, args.functional, args.save_outputs)
    if args.scalesim_config or args.overlap_folds:
        return run_systolic(args, "sim")
    from metronome.sim import POLICIES, SimOptions, simulate
    from metronome.sim.budget import check_budget
    from metronome.sim.simulate import hardware_dict

    if args.functional and not (args.inputs and args.save_outputs):
        raise SpecError.at(None, "--functional needs --inputs IN.npz and --save-outputs OUT.npz")
    if (args.inputs or args.save_outputs) and not args.functional:
        raise SpecError.at(None, "--inputs/--save-outputs need --functional")
    network = load_network(args.mapping).select(args.layer)
    hardware = _noc_flags(resolve_hardware(args.hw, hardware_flags(args), network), args)
    values = _load_npz(args.inputs) if args.functional else None
    if values is not None and len(network.layers) != 1:
        raise SpecError.at(
            None,
            f"--functional runs one layer; {args.mapping} selects {len(network.layers)}",
            hint="choose it with --layer NAME",
        )
    options = SimOptions(
        policy=POLICIES[PolicyName(args.policy)],
        fast_forward=not args.no_fast_forward,
        l1_eviction=args.l1_eviction,
    )
    for entry in network.layers:
        check_budget(entry.require_mapping(), hardware)
    print(f"{args.mapping}: network '{network.name}', policy {args.policy}")
    print(f"  hardware: {hardware.describe()}")
    header = (
        f"  {'layer':<16} {'runtime':>12} {'MACs':>14} {'util':>7} {'L2 rd':>11} {'off-chip':>10}"
        f" {'L1 overflow':>11}"
    )
    print(header)
    layers = []
    outputs = None
    for index, entry in enumerate(network.layers):
        mapping = entry.require_mapping()
        bar = ProgressBar(entry.name)
        result = simulate(
            entry.layer,
            mapping,
            hardware,
            options,
            network=network.name,
            layer_index=index,
            progress=bar,
            values=values,
        )
        bar.close()
        lr = result.layer
        l2_reads = sum(lr.tensor(t).l2_reads for t in ("input", "weight", "output"))
        util, offchip = lr.metric("utilization"), lr.metric("offchip_reads_elems")
        print(
            f"  {entry.name:<16} {lr.runtime_cycles:>12} {lr.macs:>14}"
            f" {util:>7.3f} {l2_reads:>11} {offchip:>10} {lr.metric('l1_overflow_steps'):>11}"
        )
        for note in lr.notes[1:]:
            print(f"  {entry.name}: {note}", file=sys.stderr)
        print(f"  {entry.name}: {noc_summary(result)}", file=sys.stderr)
        if args.plot:
            stem = f"{index:02d}_{''.join(c if c.isalnum() else '_' for c in entry.name)}"
            draw_simulation(Path(args.plot), stem, entry.name, result, hardware)
        print(f"  {entry.name}: simulated in {result.wall_seconds:.2f} s", file=sys.stderr)
        layers.append(result)
        outputs = result.output
    if args.json:
        from metronome.spec.results import RunResult

        payload = RunResult(
            engine=Engine.sim(args.policy),
            network=network.name,
            source=args.mapping,
            hardware=hardware_dict(hardware),
            layers=tuple(r.layer for r in layers),
            info={"policy": args.policy, "fast_forward": options.fast_forward},
        ).to_dict()
        for entry, result in zip(payload["layers"], layers, strict=True):
            entry["per_pe"] = result.per_pe
            entry["noc"] = result.noc
        atomic_write_json(args.json, payload)
    if args.functional and outputs is not None:
        import numpy as np

        buffer = io.BytesIO()
        np.savez(buffer, output=outputs)
        atomic_write_bytes(Path(args.save_outputs), buffer.getvalue())
    return 0


def _noc_flags(hardware: Hardware, args: argparse.Namespace) -> Hardware:
    """The hardware with the simulator-only NoC flags applied."""
    changes = {
        "topology": args.topology,
        "noc_arbitration": args.noc_arbitration,
        "mesh_l2_position": args.mesh_l2_position,
        "adder_latency_cycles": args.adder_latency,
        "noc_header_cycles": args.noc_header_cycles,
        "offchip_max_outstanding_requests": args.offchip_outstanding,
    }
    given = {k: v for k, v in changes.items() if v is not None}
    return hardware.with_changes(**given) if given else hardware
