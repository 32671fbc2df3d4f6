"""A readable per-layer report of a run for the terminal, with network totals.

Three blocks share the layer column: performance (runtime, MACs, utilisation, active
PEs, energy), traffic (L1 and L2 reads/writes per tensor) and requirements (buffer
sizes, NoC and off-chip bandwidth). Totals sum counts and take the maximum of
requirements, which is what a network needs of one accelerator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from metronome.spec.results import LayerResult, RunResult

__all__ = ["render_table"]

_TENSORS = (("in", "input"), ("wt", "weight"), ("out", "output"))


def _int(value: float) -> str:
    return f"{int(value):,}"


def _float(value: float) -> str:
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _metric(layer: LayerResult, key: str) -> float | None:
    try:
        return float(layer.metric(key))
    except KeyError:
        return None


def _show(value: float | None, fmt: Callable[[float], str]) -> str:
    return "n/a" if value is None else fmt(value)


def _grid(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in rows[:-1]]
    return "\n".join([title, line(header), rule, *body, rule, line(rows[-1])])


def render_table(run: RunResult) -> str:
    """The report of ``run`` as plain text (no trailing newline)."""
    layers = run.layers
    pes = int(run.hardware.get("num_pes", 1)) * int(run.hardware.get("simd_lanes", 1))
    total_runtime = sum(layer.runtime_cycles for layer in layers)
    total_macs = sum(layer.macs for layer in layers)
    energies = [_metric(layer, "energy_nj") or 0.0 for layer in layers]

    perf = [
        [
            layer.layer,
            _int(layer.runtime_cycles),
            _int(layer.macs),
            _show(_metric(layer, "utilization"), lambda v: f"{100 * v:.1f}%"),
            _show(_metric(layer, "avg_active_pes"), _float),
            _float(energy),
        ]
        for layer, energy in zip(layers, energies, strict=True)
    ]
    capacity = total_runtime * pes
    util = f"{100 * total_macs / capacity:.1f}%" if capacity else "n/a"
    perf.append(["total", _int(total_runtime), _int(total_macs), util, "", _float(sum(energies))])

    traffic_header = ["layer"]
    for short, _ in _TENSORS:
        traffic_header += [f"L1 rd {short}", f"L1 wr {short}", f"L2 rd {short}", f"L2 wr {short}"]
    traffic: list[list[str]] = []
    sums = [0] * 12
    for layer in layers:
        row = [layer.layer]
        values = [
            getattr(layer.tensor(name), counter)
            for _, name in _TENSORS
            for counter in ("l1_reads", "l1_writes", "l2_reads", "l2_writes")
        ]
        sums = [a + b for a, b in zip(sums, values, strict=True)]
        traffic.append(row + [_int(v) for v in values])
    traffic.append(["total", *(_int(v) for v in sums)])

    req_keys = (
        ("L1 req", "l1_size_req_elems", _int),
        ("L2 req", "l2_size_req_elems", _int),
        ("NoC peak", "noc_bw_req_peak_elems_per_cycle", _float),
        ("NoC avg", "noc_bw_req_avg_elems_per_cycle", _float),
        ("off-chip", "offchip_bw_req_elems_per_cycle", _float),
    )
    reqs: list[list[str]] = []
    maxima: list[float | None] = [None] * len(req_keys)
    for layer in layers:
        row = [layer.layer]
        for i, (_, key, fmt) in enumerate(req_keys):
            value = _metric(layer, key)
            row.append(_show(value, fmt))
            if value is not None:
                current = maxima[i]
                maxima[i] = value if current is None else max(current, value)
        reqs.append(row)
    reqs.append(["max", *(_show(m, f) for m, (_, _, f) in zip(maxima, req_keys, strict=True))])

    title = (
        f"{run.network} on {run.hardware.get('num_pes')} PEs"
        f" ({run.engine}, energy table {run.info.get('energy_table', {}).get('name', '?')})"
    )
    return "\n\n".join(
        [
            title,
            _grid(
                "performance",
                ["layer", "runtime (cycles)", "MACs", "util", "avg PEs", "energy (nJ)"],
                perf,
            ),
            _grid("traffic (elements)", traffic_header, traffic),
            _grid(
                "requirements (elements, elements/cycle)",
                ["layer", *(name for name, _, _ in req_keys)],
                reqs,
            ),
        ]
    )
