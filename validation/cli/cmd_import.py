"""``metronome import MODEL``: an ONNX (or PyTorch) model as a mapped network.

Every node of the graph is listed (layer, operator, kind, dims, MACs) with the totals;
``-o net.m`` writes a MAESTRO network with a Dataflow per layer, ``-o net.yaml`` a
scenario ready for ``metronome validate``. Needs the optional ``onnx`` package
(``pip install 'metronome[onnx]'``); ``torchvision:NAME`` and ``module:function`` models
also need PyTorch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from metronome.spec.fileio import atomic_write_text
from metronome.spec.loader import resolve_hardware
from metronome.spec.onnx_import import ImportedModel, load_onnx
from metronome.spec.source import SpecError
from metronome.spec.templates import STYLES, template
from metronome.spec.writer import write_m_network, write_scenario

from .cliargs import add_hardware_arguments, hardware_flags, int_at_least

__all__ = ["register"]


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 3,224,224, got {text!r}") from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return dims


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``import`` subcommand."""
    parser = commands.add_parser(
        "import",
        help="turn an ONNX or PyTorch model into a mapped network or scenario",
        description="Read MODEL (an .onnx file; with PyTorch installed also"
        " torchvision:NAME or module:function returning an nn.Module), list every node"
        " with its dims and MACs, and write it with a dataflow per layer. Exit 2 on bad"
        " input.",
    )
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument(
        "--dataflow",
        default="kcp_ws",
        metavar="STYLE",
        help=f"dataflow style for every layer: {', '.join(STYLES)} (default kcp_ws)",
    )
    add_hardware_arguments(parser)
    parser.add_argument("-o", "--output", metavar="OUT", help="write OUT.m or OUT.yaml")
    parser.add_argument(
        "--maestro-dims",
        action="store_true",
        help="MAESTRO's conventions: unpadded input sizes, residual adds as 1x1 DSCONV",
    )
    parser.add_argument("--batch", type=int_at_least(1), metavar="N", help="batch size")
    parser.add_argument(
        "--input-shape",
        type=_shape,
        default=(3, 224, 224),
        metavar="C,H,W",
        help="input shape for PyTorch models, without the batch (default 3,224,224)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Import, print the table and write the output; 0 on success."""
    if args.dataflow not in STYLES:
        raise SpecError.at(
            None, f"unknown dataflow style '{args.dataflow}'", hint="one of " + ", ".join(STYLES)
        )
    suffix = Path(args.output).suffix if args.output else ""
    if args.output and suffix not in (".m", ".yaml", ".yml"):
        raise SpecError.at(None, f"-o {args.output}: write a .m network or a .yaml scenario")
    model = _load(args)
    hardware = resolve_hardware(args.hw, hardware_flags(args))
    mapped = [(layer, template(args.dataflow, layer, hardware)) for layer in model.layers]
    print(_table(model))
    if not args.output:
        return 0
    if not mapped:
        raise SpecError.at(None, f"{args.model}: no node performs MACs; nothing to write")
    header = [
        f"Imported from {args.model} by metronome import"
        f" ({'MAESTRO dims' if args.maestro_dims else 'padded dims'}, batch {model.batch},"
        f" dataflow {args.dataflow}, {hardware.num_pes} PEs).",
        *_skipped_lines(model),
    ]
    if suffix == ".m":
        text = write_m_network(model.name, list(mapped), header)
    else:
        body = write_scenario(model.name, header[0], mapped, hardware)
        text = "".join(f"# {line}\n" for line in header) + body
    atomic_write_text(args.output, text)
    print(f"wrote {args.output}: {len(mapped)} layer(s)")
    return 0


def _load(args: argparse.Namespace) -> ImportedModel:
    if Path(args.model).suffix == ".onnx" or Path(args.model).exists():
        return load_onnx(args.model, batch=args.batch, maestro_dims=args.maestro_dims)
    if ":" in args.model:
        from metronome.spec.torch_export import export_torch

        return export_torch(
            args.model, args.input_shape, batch=args.batch, maestro_dims=args.maestro_dims
        )
    raise SpecError.at(
        None,
        f"{args.model}: no such file",
        hint="give an .onnx file, torchvision:NAME or module:function",
    )


def _skipped_lines(model: ImportedModel) -> list[str]:
    """The nodes left out of the network: counts per operator, and each one whose cost
    is not modelled by name."""
    counts: dict[str, int] = {}
    for op in model.ops:
        if op.layer is None and op.kind != "not modelled":
            counts[op.op_type] = counts.get(op.op_type, 0) + 1
    lines = []
    if counts:
        shown = ", ".join(f"{n} {op_type}" for op_type, n in sorted(counts.items()))
        lines.append(f"Without MACs (not in the network): {shown}.")
    lines += [f"Not modelled: {op.name} ({op.op_type}): {op.note}." for op in model.not_modelled]
    return lines


def _table(model: ImportedModel) -> str:
    rows = [("layer", "op", "kind", "dims", "MACs", "note")]
    for op in model.ops:
        dims = op.layer.describe() if op.layer is not None else "x".join(map(str, op.output_shape))
        rows.append((op.name, op.op_type, op.kind, dims, f"{op.macs:,}", op.note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"{model.name}: {len(model.ops)} node(s), batch {model.batch}"]
    for row in rows:
        cells = [row[i].ljust(widths[i]) if i != 4 else row[i].rjust(widths[i]) for i in range(5)]
        lines.append("  " + "  ".join(cells) + ("  " + row[5] if row[5] else ""))
    skipped = model.not_modelled
    lines.append(
        f"total: {len(model.layers)} layer(s) with MACs, {model.total_macs:,} MACs;"
        f" {len(skipped)} node(s) not modelled"
        + (": " + ", ".join(f"{op.name} ({op.op_type})" for op in skipped) if skipped else "")
    )
    return "\n".join(lines)
