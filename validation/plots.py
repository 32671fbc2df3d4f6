"""The report's pictures (matplotlib, Agg backend, PNG files written atomically).

Each function takes plain data, draws one figure and writes it; none of them computes
anything a reader could not find in ``results.json``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import networkx as nx
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.ticker import NullFormatter

from metronome.spec.fileio import atomic_write_bytes

__all__ = [
    "congestion_curves",
    "error_heatmap",
    "link_utilization",
    "paper_figures",
    "pe_timeline",
    "runtime_scatter",
]

_METADATA = {"Software": None}
_HEAT = LinearSegmentedColormap.from_list("err", ["#f7fbff", "#fdd49e", "#fc8d59", "#b30000"])


def _save(fig: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata=_METADATA)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def error_heatmap(
    matrix: Sequence[Sequence[float | None]],
    metrics: Sequence[str],
    scenarios: Sequence[str],
    title: str,
    path: Path,
) -> None:
    """Median |relative error| per (metric, scenario); grey where undefined."""
    rows, cols = len(metrics), len(scenarios)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * cols + 3), max(4.0, 0.32 * rows + 1.5)))
    shown = [[(v * 100 if v is not None else math.nan) for v in row] for row in matrix]
    image = ax.imshow(
        shown, cmap=_HEAT, vmin=0, vmax=min(100.0, max(5.0, _finite_max(shown))), aspect="auto"
    )
    ax.set_xticks(range(cols), labels=scenarios, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(rows), labels=metrics, fontsize=8)
    for r in range(rows):
        for c in range(cols):
            value = shown[r][c]
            text = (
                "n/a" if math.isnan(value) else (f"{value:.0f}" if value >= 10 else f"{value:.1f}")
            )
            ax.text(c, r, text, ha="center", va="center", fontsize=6.5, color="black")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="median |relative error| (%), saturating at 100", shrink=0.8)
    _save(fig, path)


def _finite_max(values: Sequence[Sequence[float]]) -> float:
    finite = [v for row in values for v in row if not math.isnan(v)]
    return max(finite, default=0.0)


def runtime_scatter(points: Sequence[tuple[float, float, str]], title: str, path: Path) -> None:
    """Analytic vs simulated runtime per layer (log-log) with the y = x line;
    ``points`` are (simulated, analytic, group) and each group gets a colour."""
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    groups = sorted({g for _, _, g in points})
    cmap = plt.get_cmap("tab10")
    for i, group in enumerate(groups):
        xs = [s for s, _, g in points if g == group]
        ys = [a for _, a, g in points if g == group]
        ax.scatter(xs, ys, s=22, alpha=0.8, color=cmap(i % 10), label=group)
    values = [v for s, a, _ in points for v in (s, a) if v > 0]
    lo, hi = (min(values), max(values)) if values else (1.0, 10.0)
    ax.plot([lo / 1.5, hi * 1.5], [lo / 1.5, hi * 1.5], color="black", lw=1, ls="--", label="y = x")
    for factor in (2.0, 0.5):
        ax.plot(
            [lo / 1.5, hi * 1.5],
            [lo / 1.5 * factor, hi * 1.5 * factor],
            color="grey",
            lw=0.6,
            ls=":",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("simulated runtime (cycles)")
    ax.set_ylabel("analytic runtime (cycles)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", ncol=1 if len(groups) < 8 else 2)
    _save(fig, path)


def congestion_curves(
    bandwidths: Sequence[int],
    analytic: Sequence[float],
    simulated: Mapping[str, Sequence[float]],
    title: str,
    path: Path,
) -> None:
    """Runtime vs NoC bandwidth: the analytic (zero-load roofline) curve and one
    simulated curve per topology."""
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    ax.plot(
        bandwidths, analytic, color="black", lw=2.2, marker="s", ms=4, label="analytic (zero-load)"
    )
    markers = "ovD^<>"
    for i, (topology, runtimes) in enumerate(sorted(simulated.items())):
        ax.plot(
            bandwidths,
            runtimes,
            marker=markers[i % len(markers)],
            ms=4,
            lw=1.4,
            label=f"simulated, {topology}",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("NoC bandwidth (elements / cycle)")
    ax.set_ylabel("runtime (cycles)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


_LINKS = LinearSegmentedColormap.from_list(
    "links", ["#d9d9d9", "#fdd49e", "#fc8d59", "#d7301f", "#67000d"]
)


def link_utilization(
    graph: nx.DiGraph,
    utilization: Mapping[tuple[Hashable, Hashable], float],
    title: str,
    path: Path,
    notes: Sequence[str] = (),
) -> None:
    """The network with every link coloured by its utilisation (busy cycles / runtime):
    idle links thin and grey, busy ones thick and dark red, the three hottest labelled;
    ``notes`` go in a box under the drawing. Large graphs draw each pair of opposite
    links as one line (the busier direction)."""
    pos = {n: graph.nodes[n]["pos"] for n in graph.nodes}
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1.0)
    size = min(12.0, max(6.5, 0.35 * span + 5))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    collapse = graph.number_of_edges() > 300
    if collapse:
        merged: dict[tuple[Hashable, Hashable], float] = {}
        for a, b in graph.edges:
            key = (a, b) if (b, a) not in merged else (b, a)
            merged[key] = max(merged.get(key, 0.0), utilization.get((a, b), 0.0))
        edges, values = list(merged), list(merged.values())
    else:
        edges = list(graph.edges)
        values = [utilization.get(e, 0.0) for e in edges]
    order = sorted(range(len(edges)), key=lambda i: values[i])  # hottest drawn last
    edges = [edges[i] for i in order]
    values = [values[i] for i in order]
    widths = [0.4 + 6.0 * v for v in values]
    pe_nodes = [n for n in graph.nodes if isinstance(n, tuple) and n and n[0] == "pe"]
    other = [n for n in graph.nodes if n not in pe_nodes and n != "L2"]
    small = 900 / max(30, len(pe_nodes))
    nx.draw_networkx_nodes(
        graph, pos, nodelist=pe_nodes, node_size=small * 2, node_color="#9ecae1", ax=ax
    )
    nx.draw_networkx_nodes(graph, pos, nodelist=other, node_size=small, node_color="#bdbdbd", ax=ax)
    nx.draw_networkx_edges(
        graph,
        pos,
        edgelist=edges,
        edge_color=values,
        edge_cmap=_LINKS,
        edge_vmin=0.0,
        edge_vmax=1.0,
        width=widths,
        arrows=not collapse,
        node_size=small * 2,
        ax=ax,
        **({} if collapse else {"connectionstyle": "arc3,rad=0.15", "arrowsize": 7}),
    )
    nx.draw_networkx_nodes(
        graph, pos, nodelist=["L2"], node_size=160, node_color="#2ca02c", ax=ax, node_shape="s"
    )
    placed: list[tuple[float, float]] = []
    for value, (a, b) in sorted(zip(values, edges, strict=True), key=lambda t: -t[0])[:3]:
        if value <= 0:
            continue
        (xa, ya), (xb, yb) = pos[a], pos[b]
        # Beside the link, on the side its arc bends to (opposite links get opposite sides).
        length = max(math.hypot(xb - xa, yb - ya), 1e-9)
        side = (0.0, 0.0) if collapse else ((yb - ya) / length, -(xb - xa) / length)
        at = ((xa + xb) / 2 + 0.12 * side[0], (ya + yb) / 2 + 0.12 * side[1])
        if any(math.hypot(at[0] - x, at[1] - y) < 0.06 * span for x, y in placed):
            continue
        placed.append(at)
        ax.annotate(
            f"{value:.0%}",
            at,
            xytext=(14 * side[0], 14 * side[1]),
            textcoords="offset points",
            ha="center",
            va="center",
            fontsize=9,
            color="#67000d",
            weight="bold",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "#67000d", "alpha": 0.85},
        )
    ax.annotate("L2", pos["L2"], xytext=(0, 9), textcoords="offset points", ha="center", fontsize=9)
    mappable = plt.cm.ScalarMappable(cmap=_LINKS, norm=plt.Normalize(0, 1))
    fig.colorbar(mappable, ax=ax, label="link utilisation (busy cycles / runtime)", shrink=0.7)
    ax.set_title(title, fontsize=10)
    if notes:
        ax.text(
            0.0,
            -0.02,
            "\n".join(notes),
            transform=ax.transAxes,
            va="top",
            fontsize=8,
            family="monospace",
        )
    ax.set_axis_off()
    _save(fig, path)


def pe_timeline(
    cycles: Sequence[int],
    active_pes: Sequence[float],
    noc_busy: Sequence[float],
    num_pes: int,
    title: str,
    path: Path,
    hot_link: Sequence[float] | None = None,
    hot_label: str = "hottest link",
) -> None:
    """PE utilisation and NoC occupancy over time (one sample per window); with
    ``hot_link`` the busy fraction of the hottest link is drawn over the mean."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.0, 4.8), sharex=True)
    top.fill_between(cycles, active_pes, step="post", alpha=0.6, color="#4c72b0")
    top.set_ylim(0, max(num_pes, 1) * 1.05)
    top.set_ylabel("active PEs")
    top.axhline(num_pes, color="grey", ls=":", lw=1)
    bottom.fill_between(
        cycles, noc_busy, step="post", alpha=0.6, color="#dd8452", label="mean over used links"
    )
    if hot_link is not None:
        bottom.step(cycles, hot_link, where="post", color="#67000d", lw=1.5, label=hot_label)
        bottom.legend(fontsize=8, loc="lower right")
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("NoC busy (fraction)")
    bottom.set_xlabel("cycle")
    top.set_title(title, fontsize=10)
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    _save(fig, path)


def paper_figures(
    dataflows: Sequence[str],
    layers: Sequence[str],
    values: Mapping[str, Mapping[str, Mapping[str, float]]],
    engine: str,
    fig6_path: Path,
    fig7_path: Path,
    paper_units: Mapping[str, tuple[float, str]] | None = None,
) -> None:
    """The seed paper's Fig. 6 (NoC bandwidth and whole-array L1 requirement, roofline
    throughput) and Fig. 7 (MAC/L1/L2 energy normalised to NLR's MAC energy), one group
    of bars per layer. ``values[flow][layer]`` holds ``bw``, ``l1``, ``throughput``,
    ``mac``, ``l1_energy``, ``l2_energy``. ``paper_units`` maps a Fig. 6 key to (factor,
    label) of a second axis in the paper's unit (Gbps, KB) beside ours."""
    paper_units = paper_units or {}
    colors = plt.get_cmap("tab10")
    width = 0.8 / len(dataflows)
    fig, axes = plt.subplots(1, 3, figsize=(15.0, 4.4))
    panels = (
        ("bw", "steady-state NoC bandwidth (elements/cycle)"),
        ("l1", "steady-state L1, all PEs (elements)"),
        ("throughput", "steady-state roofline throughput (MACs/cycle)"),
    )
    for ax, (key, label) in zip(axes, panels, strict=True):
        if key in paper_units:
            scale, unit = paper_units[key]
            ax.secondary_yaxis(
                "right", functions=(lambda v, s=scale: v * s, lambda v, s=scale: v / s)
            ).set_ylabel(unit)
        for i, flow in enumerate(dataflows):
            xs = [j + (i - (len(dataflows) - 1) / 2) * width for j in range(len(layers))]
            ax.bar(
                xs,
                [values[flow][layer][key] for layer in layers],
                width,
                label=flow,
                color=colors(i),
            )
        ax.set_xticks(range(len(layers)), labels=layers)
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.subplots_adjust(wspace=0.6)
    fig.suptitle(f"Fig. 6 (seed paper) as measured by {engine}: 64 PEs, VGG16", fontsize=11)
    _save(fig, fig6_path)

    fig, axes = plt.subplots(1, len(layers), figsize=(6.0 * len(layers), 4.4))
    parts = (
        ("mac", "MAC", "#4c72b0"),
        ("l1_energy", "L1", "#55a868"),
        ("l2_energy", "L2", "#c44e52"),
    )
    for ax, layer in zip(axes, layers, strict=True):
        base = values[dataflows[0]][layer]["mac"] or 1.0
        bottom = [0.0] * len(dataflows)
        for key, label, color in parts:
            heights = [values[f][layer][key] / base for f in dataflows]
            ax.bar(range(len(dataflows)), heights, 0.6, bottom=bottom, label=label, color=color)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set_xticks(range(len(dataflows)), labels=dataflows, rotation=20)
        ax.set_ylabel(f"energy / MAC energy of {dataflows[0]}")
        ax.set_title(layer)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Fig. 7 (seed paper) as measured by {engine}: energy breakdown", fontsize=11)
    _save(fig, fig7_path)
