"""Dask as an executor for ``metronome sweep`` and ``metronome validate``: a
``dask.distributed`` LocalCluster or an existing scheduler. Dask is an optional extra
(``pip install 'metronome[dask]'``); without it these options fail with a clear message."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from metronome.spec.source import SpecError

__all__ = ["DaskTarget", "add_dask_arguments", "dask_map", "dask_target"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class DaskTarget:
    """A LocalCluster with ``workers`` single-threaded worker processes, or the running
    cluster whose scheduler is at ``scheduler``."""

    workers: int = 1
    scheduler: str | None = None

    def describe(self) -> str:
        """For summaries and messages."""
        if self.scheduler:
            return f"dask scheduler {self.scheduler}"
        return f"dask LocalCluster with {self.workers} workers"


def add_dask_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dask`` and ``--dask-scheduler ADDR``."""
    parser.add_argument(
        "--dask",
        action="store_true",
        help="run on a dask.distributed LocalCluster with --jobs workers",
    )
    parser.add_argument(
        "--dask-scheduler",
        metavar="ADDR",
        help="run on an existing Dask cluster (e.g. tcp://host:8786)",
    )


def dask_target(args: argparse.Namespace, workers: int) -> DaskTarget | None:
    """The Dask target the options ask for, if any."""
    if args.dask and args.dask_scheduler:
        raise SpecError.at(None, "give --dask or --dask-scheduler, not both")
    if not (args.dask or args.dask_scheduler):
        return None
    _require_dask()
    if args.dask_scheduler:
        return DaskTarget(workers, args.dask_scheduler)
    return DaskTarget(workers)


def _require_dask() -> None:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        raise SpecError.at(
            None,
            "--dask and --dask-scheduler need dask.distributed, which is not installed",
            hint="pip install 'metronome[dask]' (or: pip install 'dask[distributed]')",
        ) from None


def _client(target: DaskTarget) -> Any:
    _require_dask()
    from dask.distributed import Client, LocalCluster

    if target.scheduler:
        try:
            return Client(target.scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise SpecError.at(
                None, f"cannot reach the Dask scheduler at {target.scheduler}: {exc}"
            ) from None
    cluster = LocalCluster(
        n_workers=target.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=40,
    )
    return Client(cluster)


def dask_map(
    target: DaskTarget, function: Callable[..., R], items: Iterable[T], *shared: object
) -> Iterator[R]:
    """``function(*shared, item)`` for every item on the cluster, yielded as each
    finishes (the ``shared`` arguments are sent to every worker once)."""
    pending = iter(items)
    first = list(itertools.islice(pending, 1))
    if not first:
        return
    client = _client(target)
    try:
        from dask.distributed import as_completed

        scattered = [client.scatter(s, broadcast=True) for s in shared]

        def submit(item: T) -> Any:
            return client.submit(function, *scattered, item, pure=False)

        # A bounded window of submitted items keeps memory constant in their number.
        width = 4 * max(1, len(client.scheduler_info().get("workers", {})), target.workers)
        running = as_completed([submit(first[0])])
        for item in itertools.islice(pending, width - 1):
            running.add(submit(item))
        for future in running:
            yield future.result()
            for item in itertools.islice(pending, 1):
                running.add(submit(item))
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()
