"""``metronome validate``: both engines on scenarios, compared, explained, guarded."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..dask_exec import add_dask_arguments, dask_target
from ..fused import FusedOutcome

__all__ = ["register"]

DEFAULT_BASELINE = Path("validation") / "baseline.json"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` subcommand."""
    parser = commands.add_parser(
        "validate",
        help="run both engines on scenarios, compare them, explain and report",
        description="Run the analytic model and the simulator on every scenario, compare"
        " them metric by metric, explain the differences and write a report. With no"
        " scenario, runs the default suite (scenarios/default.yaml). Exit 1 when an error"
        " grew beyond the baseline's tolerance, or when a fused group's off-chip transfers or"
        " MACs differ between the engines or another of its differences has no known cause;"
        " 2 on bad input.",
    )
    parser.add_argument("targets", nargs="*", metavar="SCENARIO_OR_DIR")
    parser.add_argument(
        "--report",
        default="validation-report",
        metavar="DIR",
        help="report directory (default: validation-report)",
    )
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="compare every error with this baseline; exit 1 on regression",
    )
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help=f"(re)write the baseline (--baseline FILE, default {DEFAULT_BASELINE}) from this run",
    )
    parser.add_argument(
        "--jobs", type=int, default=2, metavar="N", help="worker processes (default 2)"
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="run every engine again instead of reusing cached results",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where results are cached (default $XDG_CACHE_HOME/metronome/results,"
        " ~/.cache/metronome/results when unset)",
    )
    add_dask_arguments(parser)
    parser.set_defaults(run=run)


def run_systolic_manifests(paths: list[Path], report: Path) -> int:
    """Compare the systolic manifests' runs (``kind: systolic``); 1 if an exact metric
    differs between the closed form, the executed array and SCALE-Sim."""
    from metronome.spec.fileio import atomic_write_text

    from ..systolic_suite import EXACT, compare_systolic, load_manifest, render_markdown

    rows = compare_systolic([case for path in paths for case in load_manifest(path)])
    atomic_write_text(report / "systolic.md", render_markdown(rows))
    bad = [r for r in rows if not r.ok]
    runs = len({r.run for r in rows})
    checked = sum(1 for r in rows if r.metric in EXACT)
    print(f"systolic: {runs} run(s), {checked - len(bad)}/{checked} exact metrics equal")
    for row in bad:
        print(
            f"  {row.run} {row.layer} {row.metric}: analytic {row.analytic:g},"
            f" sim {row.sim:g}, SCALE-Sim {row.scalesim}",
            file=sys.stderr,
        )
    print(f"report: {report / 'systolic.md'}")
    return 1 if bad else 0


def validate_fused(paths: list[Path]) -> list[FusedOutcome]:
    """Both engines on every fused scenario; one line each, and every difference the
    harness cannot explain on stderr."""
    from ..fused import run_fused_paths

    outcomes = run_fused_paths(paths)
    for o in outcomes:
        exact = [r for r in o.rows if r.exact]
        explained = sum(1 for r in o.rows if r.status == "explained")
        print(
            f"fused {o.scenario.name}: {sum(r.equal for r in exact)}/{len(exact)} exact metrics"
            f" equal, {explained} difference(s) explained, {len(o.failures)} not"
            + ("" if o.functional is None else f", functional {'ok' if o.functional else 'FAILED'}")
        )
        for row in o.failures:
            print(
                f"  {row.group} {row.metric}: analytic {row.analytic:g}, sim {row.sim:g}"
                f" ({row.status})",
                file=sys.stderr,
            )
    return outcomes


def run(args: argparse.Namespace) -> int:
    """Validate; 0 when nothing regressed, 1 on regression."""
    from metronome.spec.fused import is_fused_file

    from .. import baseline
    from ..cache import ResultCache, default_cache_dir
    from ..harness import run_validation
    from ..report import write_report
    from ..suite import expand
    from ..systolic_suite import is_systolic_manifest
    from .progress import ProgressBar

    paths = expand(args.targets)
    dask = dask_target(args, max(1, args.jobs))
    started = time.monotonic()
    fused_paths = [p for p in paths if is_fused_file(p)]
    paths = [p for p in paths if p not in fused_paths]
    fused = validate_fused(fused_paths)
    code = 1 if any(not o.ok for o in fused) else 0
    systolic = [p for p in paths if is_systolic_manifest(p)]
    if systolic:
        paths = [p for p in paths if p not in systolic]
        code = max(code, run_systolic_manifests(systolic, Path(args.report)))
        if not paths and not fused:
            return code
    cache = None
    if not args.no_cache:
        cache = ResultCache(Path(args.cache_dir) if args.cache_dir else default_cache_dir())
    bar = ProgressBar("validate")
    try:
        result = run_validation(
            paths, processes=max(1, args.jobs), progress=bar, dask=dask, cache=cache
        )
    finally:
        bar.close()
    rows = result.rows + [row for o in fused for row in o.metric_rows()]
    check = None
    if args.baseline and not args.update_baseline:
        check = baseline.check(rows, baseline.load(args.baseline))
    summary = write_report(result, Path(args.report), check, fused)
    for line in summary:
        print(line)
    if cache is not None and (cache.hits or cache.misses):
        print(f"cache {cache.root}: {cache.hits} reused, {cache.misses} run")
    print(f"report: {Path(args.report) / 'report.md'} ({time.monotonic() - started:.0f} s)")
    if args.update_baseline:
        target = Path(args.baseline) if args.baseline else DEFAULT_BASELINE
        baseline.write(target, rows)
        print(f"baseline written: {target} ({len(rows)} rows)")
        return code
    if check is not None:
        if not check.ok:
            print(f"accuracy regressed on {len(check.regressions)} row(s):", file=sys.stderr)
            for regression in check.regressions[:30]:
                print(f"  {regression.describe()}", file=sys.stderr)
            return 1
        print(f"baseline {args.baseline}: no regression ({len(check.improved)} improved)")
    return code
