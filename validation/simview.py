"""Pictures and one-line summaries of one simulated layer, shared by
``metronome simulate --plot`` and the validation report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from metronome.spec.hardware import Hardware

if TYPE_CHECKING:
    from metronome.sim import SimResult

__all__ = ["draw_simulation", "noc_summary"]


def noc_summary(result: SimResult) -> str:
    """Where the time went and the hottest link, in one line."""
    lr = result.layer
    split = [lr.metric(f"runtime_split_{k}_cycles") for k in ("compute", "transfer", "queueing")]
    runtime = max(1, lr.runtime_cycles)
    parts = ", ".join(
        f"{name} {value / runtime:.0%}"
        for name, value in zip(("compute", "zero-load transfer", "queueing"), split, strict=True)
    )
    hot = result.noc.get("hottest_links") or []
    where = ""
    if hot:
        top = hot[0]
        where = (
            f"; hottest link {top['src']}->{top['dst']} ({top['plane']}) busy"
            f" {top['utilization']:.0%}, queue peak {top['peak_queue_len']}"
        )
    return f"NoC {result.noc.get('topology')}: runtime = {parts}{where}"


def draw_simulation(
    folder: Path, stem: str, name: str, result: SimResult, hardware: Hardware
) -> list[Path]:
    """The network coloured by link utilisation and the PE/NoC timeline of one layer;
    returns the two PNG paths."""
    from .plots import link_utilization, pe_timeline

    lr = result.layer
    runtime = lr.runtime_cycles
    hot = result.noc.get("hottest_links") or []
    title = (
        f"{name}: {result.noc.get('topology')}, {hardware.num_pes} PEs, link bandwidth"
        f" {hardware.noc_bw_elems_per_cycle} elems/cycle, {runtime} cycles"
    )
    notes = [noc_summary(result).split(": ", 1)[1].split(";")[0]]
    notes += [
        f"{x['src']:>7} -> {x['dst']:<7} {x['plane']:<12} busy {x['utilization']:>6.1%}"
        f"  {x['elems']} elems, queue peak {x['peak_queue_len']},"
        f" mean wait {x['mean_queueing_delay_cycles']:.1f} cycles"
        for x in hot[:3]
    ]
    link_utilization(
        result.graph, result.link_utilization, title, folder / f"{stem}_noc.png", notes
    )
    util = result.per_pe["utilization_series"]
    busy = result.noc.get("busy_series") or [0.0] * len(util)
    bins = max(1, len(util))
    width = -(-max(runtime, 1) // bins)
    pes = lr.metric("pes_used")
    hot_label = f"{hot[0]['src']} -> {hot[0]['dst']} ({hot[0]['plane']})" if hot else ""
    pe_timeline(
        [i * width for i in range(len(util))],
        [u * pes for u in util],
        busy,
        int(pes),
        f"{name}: PE utilisation and NoC occupancy ({runtime} cycles)",
        folder / f"{stem}_timeline.png",
        hot_link=result.noc.get("hottest_link_busy_series") if hot else None,
        hot_label=f"hottest link {hot_label}",
    )
    return [folder / f"{stem}_noc.png", folder / f"{stem}_timeline.png"]
