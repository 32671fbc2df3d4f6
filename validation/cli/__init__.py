"""The ``metronome`` command: ``check``, ``analyze``, ``simulate``, ``validate``, ``import`` and
``sweep``.

Bad input (a :class:`metronome.spec.SpecError`) prints ``file:line:col: error: ...`` with the source
line and a caret, and exits 2 without a traceback. Each subcommand lives in its own
``cmd_*`` module, which imports its engine only when it runs, so ``metronome check`` and
``metronome analyze`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from metronome.spec.source import SpecError

__all__ = ["build_parser", "main"]

COMMANDS: tuple[str, ...] = ("check", "analyze", "simulate", "validate", "import", "sweep")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="metronome",
        description="Keep analytic models of DNN accelerators honest: a MAESTRO-semantics"
        " cost model, a cycle-level simulator, and the harness that compares them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"metronome.validation.cli.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"metronome.validation.cli.cmd_{name}":
                raise
            continue
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    if hasattr(signal, "SIGPIPE"):
        # `metronome ... | head` should stop quietly, as other command-line tools do.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SpecError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
