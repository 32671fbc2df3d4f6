"""``metronome sweep SPACE.yaml``: design-space exploration with the vectorised closed
form, and the simulator's check of its winners (``--simulate-top K``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..dask_exec import add_dask_arguments, dask_target
from .cliargs import _positive_int

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sweep`` subcommand."""
    parser = commands.add_parser(
        "sweep",
        help="explore a design space with the closed form; simulate the winners",
        description="Evaluate every design of SPACE.yaml (hardware and mapping axes,"
        " constraints) with the vectorised fixed analytic model, in chunks; write the"
        " Pareto front over runtime, energy and chip area (front.csv), summary.json and"
        " plots into --out. Re-running resumes from the finished chunks. Exit 2 on bad"
        " input.",
    )
    parser.add_argument("space", metavar="SPACE.yaml", help="design-space file")
    parser.add_argument("--out", metavar="DIR", help="output directory (default sweep-NAME)")
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="local worker processes (default 1)",
    )
    add_dask_arguments(parser)
    parser.add_argument(
        "--simulate-top",
        type=_positive_int,
        default=0,
        metavar="K",
        help="simulate the K fastest front designs and K random others; report whether"
        " the closed form ranks them as the simulator does",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Sweep, print where the results are and the best design; 0 on success."""
    from metronome.spec.space import load_space

    from ..sweep_run import Executor, run_sweep

    space = load_space(args.space)
    jobs = max(1, args.jobs)
    target = dask_target(args, jobs)
    out = Path(args.out or f"sweep-{space.name}")
    executor = Executor(
        jobs=jobs, dask=target is not None, scheduler=target.scheduler if target else None
    )
    outcome = run_sweep(
        space, out, executor, simulate_top=args.simulate_top, plots=not args.no_plots
    )
    s = outcome.summary
    print(
        f"{space.name}: {s['designs_evaluated']:,} designs, {s['designs_feasible']:,} feasible,"
        f" {s['designs_on_front']} on the Pareto front; {s['wall_time_s']} s"
        f" ({s['designs_per_s']:,} designs/s this run, {executor.describe()})"
    )
    best = s.get("best_runtime")
    if best:
        print(f"fastest: design {best['design']}, {best['runtime_cycles']:,} cycles")
    simulation = s.get("simulation")
    if simulation:
        verdict = "is" if simulation["analytic_winner_is_simulated_winner"] else "is NOT"
        print(
            f"simulated {simulation['designs_simulated']} front designs"
            f" ({simulation['policy']} policy): Kendall tau {simulation['kendall_tau']};"
            f" the analytic winner {verdict} the simulated winner"
            f" (design {simulation['analytic_winner']} vs {simulation['simulated_winner']},"
            f" {simulation['analytic_winner_regret']:.2%} slower in simulation)"
        )
    print(f"results in {out}/ (front.csv, summary.json)", file=sys.stderr)
    return 0
