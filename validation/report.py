"""Rendering a validation run: report.md / report.html, results.json, results.csv, PNGs.

The first screen answers the three questions users run Metronome for: how accurate is
the closed form here, where does the network congest beyond the roofline, and did a
change make the model less accurate.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from spec.energy import energy_table
from spec.fileio import atomic_write_json, atomic_write_text
from spec.results import SCHEMA_VERSION

from . import paper, plots
from .baseline import BaselineCheck
from .compare import COMPARED_METRICS, MetricRow
from .congestion import CongestionFinding, congestion_findings
from .document import Block, Heading, Image, Items, Paragraph, Table, to_html, to_markdown
from .harness import RESIDUAL_CAUSE, CaseResult, ValidationRun, truth_label
from .maccount import MODELS, MacCheck, mac_check
from .model_plots import refined_scatter_blocks
from .rank import rank_blocks
from .refined_residuals import refined_residual_blocks
from .runner import Job, job_hardware, simulate_job
from .simview import draw_simulation, noc_summary

__all__ = ["write_report"]

MAIN_COMPARISON = "analytic~sim-realistic"
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("analytic~sim-realistic", "closed form vs the realistic simulation"),
    ("analytic~sim-maestro", "closed form vs its own assumptions executed"),
    ("analytic-refined~sim-realistic", "refined closed form vs the realistic simulation"),
    ("analytic-refined~sim-maestro", "refined closed form vs the maestro-policy simulation"),
    ("analytic-maestro~sim-realistic", "MAESTRO's numbers vs the realistic simulation"),
    ("analytic-maestro~sim-maestro", "MAESTRO's numbers vs its assumptions executed"),
    ("analytic-maestro~maestro", "our MAESTRO-compatible mode vs the MAESTRO binary"),
)


def fmt(value: float | int | None) -> str:
    """Numbers for tables: integers with separators, others with 4 significant digits."""
    if value is None:
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def pct(value: float | None) -> str:
    """A relative error as a signed percentage."""
    return "undefined" if value is None else f"{value:+.2%}"


def _abs(row: MetricRow) -> float | None:
    return None if row.rel_error is None else abs(row.rel_error)


def _summary_table(rows: list[MetricRow], comparison: str) -> Table | None:
    chosen = [r for r in rows if r.comparison == comparison]
    if not chosen:
        return None
    by_metric: dict[str, list[MetricRow]] = defaultdict(list)
    for r in chosen:
        by_metric[r.metric].append(r)
    out = []
    for metric in COMPARED_METRICS:
        group = by_metric.get(metric)
        if not group:
            continue
        defined = [r for r in group if r.rel_error is not None]
        errors = [abs(r.rel_error) for r in defined]  # type: ignore[arg-type]
        exact = sum(1 for r in group if r.model == r.truth)
        worst = max(defined, key=lambda r: abs(r.rel_error), default=None)  # type: ignore[arg-type]
        out.append(
            (
                metric,
                f"{exact}/{len(group)}",
                f"{statistics.median(errors):.2%}" if errors else "n/a",
                pct(worst.rel_error) if worst else "n/a",
                f"{worst.scenario}/{worst.layer}" if worst else "",
                str(len(group) - len(defined)),
            )
        )
    return Table(
        ("metric", "exact", "median abs error", "worst error", "worst case", "undefined"),
        tuple(out),
        "lrrrlr",
    )


def _largest_cause(case: CaseResult, gap: float) -> str:
    """The named cause with the largest runtime effect; the residual (analytic vs
    sim-maestro) only when no named cause covers at least half of the gap."""
    causes = sorted(
        (a for a in case.attributions if a.metric == "runtime_cycles"),
        key=lambda a: (-abs(a.delta), a.cause),
    )
    named = [a for a in causes if a.cause != RESIDUAL_CAUSE]
    if named and gap and abs(named[0].delta) >= abs(gap) / 2:
        best = named[0]
    elif causes:
        best = causes[0]
    else:
        return "-"
    share = f" ({best.delta / gap:.0%} of the gap)" if gap else ""
    return f"{best.cause}: {fmt(best.delta)} cycles{share}"


def _worst_cases(run: ValidationRun, n: int = 8) -> Table | None:
    scored = []
    for case in run.cases:
        model, truth = case.results.get("analytic"), case.results.get("sim-realistic")
        if model is None or truth is None or truth.runtime_cycles == 0:
            continue
        error = (model.runtime_cycles - truth.runtime_cycles) / truth.runtime_cycles
        why = _largest_cause(case, model.runtime_cycles - truth.runtime_cycles)
        scored.append((abs(error), case, error, why))
    scored.sort(key=lambda t: (-t[0], t[1].name))
    if not scored:
        return None
    rows = tuple(
        (
            case.name,
            fmt(case.results["analytic"].runtime_cycles),
            fmt(case.results["sim-realistic"].runtime_cycles),
            pct(err),
            why,
        )
        for _, case, err, why in scored[:n]
    )
    return Table(
        ("layer", "analytic cycles", "simulated cycles", "error", "largest cause"), rows, "lrrrl"
    )


def _case_blocks(case: CaseResult) -> list[Block]:
    engines = [
        e
        for e in ("analytic", "analytic-maestro", "sim-maestro", "sim-realistic")
        if e in case.results
    ]
    flats = {e: case.results[e].flat() for e in engines}
    header = ("metric", *engines, *(["MAESTRO"] if case.reference else []), "analytic vs realistic")
    rows = []
    for metric in COMPARED_METRICS:
        if not any(metric in f for f in flats.values()):
            continue
        values = [fmt(flats[e].get(metric)) for e in engines]
        ref = [fmt(case.reference.get(metric))] if case.reference else []
        a, s = flats.get("analytic", {}).get(metric), flats.get("sim-realistic", {}).get(metric)
        err = (
            pct((a - s) / abs(s))
            if a is not None and s not in (None, 0)
            else ("0" if a == s else "n/a")
        )
        rows.append((metric, *values, *ref, err))
    blocks: list[Block] = [
        Heading(case.name, 3),
        Table(header, tuple(rows), "l" + "r" * (len(header) - 1)),
    ]
    if case.attributions:
        items = []
        for a in case.attributions:
            share = f" ({a.share:.0%} of the gap)" if a.share is not None else ""
            items.append(f"`{a.metric}`: {a.cause}: {fmt(a.delta)}{share}")
        truth = truth_label(case).removeprefix("sim-")
        blocks.append(
            Paragraph(
                f"Where the difference between the closed form and the {truth}-policy simulation"
                " comes from (the simulator re-run with one assumption at a time set to"
                " MAESTRO's where it ran the realistic policy, its own contention-free clock,"
                " the closed form re-run with unbounded off-chip bandwidth and with each of"
                " its timing assumptions off; each line: the change and its share of the gap):"
            )
        )
        blocks.append(Items(tuple(items)))
    if case.maestro_bugs:
        items = [
            f"`{a.metric}`: {a.cause}: {fmt(a.delta)}"
            + (f" ({a.share:.0%} of MAESTRO's difference)" if a.share is not None else "")
            for a in case.maestro_bugs
        ]
        blocks.append(
            Paragraph(
                "Why MAESTRO's own numbers (analytic-maestro) differ from the fixed model"
                " (each bug switched back on alone):"
            )
        )
        blocks.append(Items(tuple(items)))
    notes = sorted({n for r in case.results.values() for n in r.notes})
    if notes:
        blocks.append(Items(tuple(f"note: {n}" for n in notes)))
    return blocks


def _paper_blocks(run: ValidationRun, out: Path) -> list[Block]:
    blocks: list[Block] = []
    for tag, title in (
        ("paper", "full-size VGG16 CONV1 and CONV11"),
        (
            "paper-small",
            "VGG16 CONV1 and CONV11 shrunk for speed (the findings are about full-size layers)",
        ),
    ):
        blocks += _paper_section(run, out, tag, title)
    return blocks


def _paper_section(run: ValidationRun, out: Path, tag: str, title: str) -> list[Block]:
    cases = [c for c in run.cases if tag in c.tags]
    flows = {c.scenario.split("_", 1)[1] for c in cases}
    if not set(paper.DATAFLOWS) <= flows:
        return []
    table = energy_table("maestro")
    blocks: list[Block] = [
        Heading(f"Seed paper findings (section 4): {title}", 2),
        Paragraph(
            "Under the paper's conditions (docs/paper.md): Fig. 6 figures of a steady step,"
            " Fig. 7 with vector L1 reads; 'whole layer' is the verdict on whole-layer"
            " figures with scalar reads; 'hinges on' names the conditions whose removal"
            f" alone flips the verdict. Paper units: {paper.WORD_BITS}-bit words,"
            f" {paper.CLOCK_GHZ:g} GHz."
        ),
    ]
    for engine in paper.ENGINES:
        results: dict[str, dict[str, Any]] = defaultdict(dict)
        for c in cases:
            if engine in c.results:
                results[c.scenario.split("_", 1)[1]][c.layer] = c.results[engine]
        try:
            findings = paper.evaluate(results, table)
        except KeyError:
            continue
        hinges = paper.attribute(results, table)
        rows = tuple(
            (
                f.claim,
                "holds" if r.holds else "does not hold",
                "holds" if hinges[f.key][0] else "does not hold",
                ", ".join(hinges[f.key][2]) or "-",
                r.evidence,
            )
            for f, r in findings
        )
        held = sum(1 for _, r in findings if r.holds)
        blocks.append(Paragraph(f"As measured by **{engine}**: {held} of {len(findings)} hold."))
        blocks.append(Table(("finding", "verdict", "whole layer", "hinges on", "numbers"), rows))
        values = {
            flow: {layer: _paper_values(results[flow][layer], table) for layer in paper.LAYERS}
            for flow in paper.DATAFLOWS
        }
        fig6, fig7 = out / f"{tag}_fig6_{engine}.png", out / f"{tag}_fig7_{engine}.png"
        plots.paper_figures(
            [paper.LABELS[f] for f in paper.DATAFLOWS],
            list(paper.LAYERS),
            {paper.LABELS[f]: v for f, v in values.items()},
            f"{engine} ({tag})",
            fig6,
            fig7,
            {
                "bw": (paper.gbps(1.0), f"Gbps ({paper.WORD_BITS}-bit, {paper.CLOCK_GHZ:g} GHz)"),
                "l1": (paper.kilobytes(1.0), f"KB ({paper.WORD_BITS}-bit words)"),
            },
        )
        blocks.append(Image(fig6.name, f"Fig. 6 of the seed paper, measured by {engine} ({tag})"))
        blocks.append(Image(fig7.name, f"Fig. 7 of the seed paper, measured by {engine} ({tag})"))
    return blocks


def _paper_values(result: Any, table: Any) -> dict[str, float]:
    parts = paper.energy_breakdown(result, table)
    return {
        "bw": paper.noc_bandwidth(result),
        "l1": paper.l1_all_pes(result),
        "throughput": paper.throughput(result),
        "mac": parts["mac"],
        "l1_energy": parts["l1"],
        "l2_energy": parts["l2"],
    }


def _hot_spot(
    run: ValidationRun, congestion: Sequence[CongestionFinding], out: Path
) -> list[Block]:
    """The network picture of the most congested case: the worst slowdown of a sweep,
    else the layer whose busiest link is busiest."""
    chosen: tuple[CaseResult, str] | None = None
    if congestion:
        worst = max(congestion, key=lambda f: (f.worst_ratio, f.scenario, f.layer))
        for case in run.cases:
            if (
                (case.scenario, case.layer) == (worst.scenario, worst.layer)
                and str(case.settings.get("topology", "bus")) == worst.topology
                and case.settings.get("noc_bw_elems_per_cycle") == worst.worst_bw
            ):
                chosen = (case, "sim-maestro")
    if chosen is None:
        busiest = [
            (float(c.results[e].flat().get("noc_max_link_utilization", 0)), c.name, c, e)
            for c in run.cases
            for e in ("sim-realistic", "sim-maestro")
            if e in c.results
        ]
        if busiest:
            _, _, case, engine = max(busiest, key=lambda t: (t[0], t[1]))
            chosen = (case, engine)
    if chosen is None:
        return []
    case, engine = chosen
    job = Job(case.path, case.variant_index, case.layer_index, engine)
    result = simulate_job(job)
    pictures = draw_simulation(out, "hot_spot", case.name, result, job_hardware(job))
    return [
        Heading("The hot spot", 2),
        Paragraph(f"{case.name} ({engine}): {noc_summary(result)}."),
        Image(pictures[0].name, f"Link utilisation of {case.name} ({engine})"),
        Image(pictures[1].name, f"PE utilisation and NoC occupancy over time, {case.name}"),
    ]


def _departure(f: CongestionFinding) -> str:
    if f.departs_below_bw is None:
        return "stays within 5% of the roofline"
    if f.departs_below_bw == 0:
        return f"departs at every bandwidth swept (up to {fmt(max(f.bandwidths))} elems/cycle)"
    return f"departs below {fmt(f.departs_below_bw)} elems/cycle"


def _congestion_blocks(findings: Sequence[CongestionFinding]) -> list[Block]:
    if not findings:
        return []
    rows = tuple(
        (
            f.scenario,
            f.layer,
            f.topology,
            _departure(f),
            f"{f.worst_ratio:.2f}x at {fmt(f.worst_bw)}",
            "n/a" if f.queueing_share_at_worst is None else f"{f.queueing_share_at_worst:.0%}",
            f"{fmt(f.sim_saturates_at_bw)} (roofline {fmt(f.roofline_saturates_at_bw)})",
        )
        for f in findings
    )
    return [
        Heading("Congestion beyond the roofline", 2),
        Paragraph(
            "Simulated runtime (maestro policy, so only the network differs from the closed"
            " form) against the analytic zero-load estimate over a NoC-bandwidth sweep. A"
            " topology *departs* at the bandwidth below which the simulation is more than 5%"
            " slower than the analytic roofline; the queueing share is the part of the"
            " simulated runtime spent queueing for busy links (contention), as opposed to"
            " computing or moving data at zero load. The last column is the bandwidth from"
            " which more bandwidth stops helping: where the simulated curve flattens well"
            " before the roofline does, the hottest link is bound by the number of messages"
            " it serialises (each holds the link at least one cycle plus its latency,"
            " whatever its width), so a wider network cannot recover the difference, only"
            " fewer messages (multicast, a gather or reduction network, another mapping)."
        ),
        Table(
            (
                "scenario",
                "layer",
                "topology",
                "against the roofline",
                "worst slowdown",
                "queueing share of runtime there",
                "stops improving at (elems/cycle)",
            ),
            rows,
            "lllrlrr",
        ),
    ]


def _functional_blocks(run: ValidationRun) -> list[Block]:
    checked = [c for c in run.cases if c.functional is not None]
    if not checked:
        return []
    rows = []
    for c in checked:
        f = c.functional or {}
        verdict = "equal" if f.get("ok") else f"{f.get('mismatched_elems')} differ"
        rows.append((c.name, fmt(f.get("output_elems")), verdict, fmt(f.get("max_abs_diff"))))
    return [
        Heading("Functional check", 2),
        Paragraph(
            "The simulator carried real int64 values through its data movement; its output is"
            " compared element by element with the layer computed directly by numpy."
        ),
        Table(("layer", "output elements", "vs numpy", "max |difference|"), tuple(rows), "lrlr"),
    ]


def _mac_blocks(check: MacCheck | None) -> list[Block]:
    if check is None:
        return []
    blocks: list[Block] = [
        Heading("MAC counts the simulator makes certain", 2),
        Paragraph(
            f"On {check.exact_layers} layer(s) the simulator performed every MAC exactly once"
            " (none missing, none redundant), so the layer's MAC count is certain there."
            + "".join(
                f" {name}: wrong on {check.wrong[name]}." for name in MODELS if name in check.wrong
            )
            + " Causes come from re-running the fixed model with one MAESTRO bug at a time"
            " switched on, or MAESTRO's model with one of them fixed."
        ),
    ]
    if check.cases:
        rows = tuple(
            (
                c.case,
                fmt(c.executed_macs),
                *(
                    f"{fmt(c.reported_macs[m])} ({(c.reported_macs[m] / c.executed_macs - 1):+.0%})"
                    if m in c.reported_macs
                    else "n/a"
                    for m in MODELS
                ),
                "; ".join(c.causes) or "not a MAESTRO bug the fixed model knows",
            )
            for c in check.cases
        )
        blocks.append(Table(("layer", "executed MACs", *MODELS, "why"), rows, "lrrrl"))
    return blocks


def _baseline_blocks(check: BaselineCheck | None) -> list[Block]:
    if check is None:
        return []
    verdict = "no regression" if check.ok else f"{len(check.regressions)} regression(s)"
    blocks: list[Block] = [
        Heading("Accuracy guard", 2),
        Paragraph(
            f"Against the stored baseline: **{verdict}**; {len(check.improved)} improved,"
            f" {len(check.new_keys)} new, {len(check.missing_keys)} missing."
        ),
    ]
    if check.regressions:
        blocks.append(Items(tuple(r.describe() for r in check.regressions[:50])))
    return blocks


def _plots(run: ValidationRun, out: Path) -> list[Block]:
    blocks: list[Block] = []
    main = [r for r in run.rows if r.comparison == MAIN_COMPARISON]
    scenarios = list(dict.fromkeys(r.scenario for r in main))
    metrics = [m for m in COMPARED_METRICS if any(r.metric == m for r in main)]
    if main:
        matrix = []
        for metric in metrics:
            line: list[float | None] = []
            for scenario in scenarios:
                errs = [_abs(r) for r in main if r.metric == metric and r.scenario == scenario]
                defined = [e for e in errs if e is not None]
                line.append(statistics.median(defined) if defined else None)
            matrix.append(line)
        plots.error_heatmap(
            matrix,
            metrics,
            scenarios,
            "analytic vs realistic simulation: median |error| per scenario",
            out / "error_heatmap.png",
        )
        blocks.append(
            Image(
                "error_heatmap.png",
                "Median |relative error| of the closed form against the realistic simulation,"
                " per metric and scenario",
            )
        )
    points = []
    for case in run.cases:
        for policy in ("realistic", "maestro"):
            a, s = case.results.get("analytic"), case.results.get(f"sim-{policy}")
            if a and s and a.runtime_cycles > 0 and s.runtime_cycles > 0:
                points.append((float(s.runtime_cycles), float(a.runtime_cycles), f"sim-{policy}"))
    if points:
        plots.runtime_scatter(
            points, "analytic vs simulated runtime, every layer", out / "runtime_scatter.png"
        )
        blocks.append(
            Image(
                "runtime_scatter.png",
                "Analytic against simulated runtime per layer"
                " (log-log; dashed: y = x, dotted: 2x off)",
            )
        )
    return blocks


def _results_json(
    run: ValidationRun,
    congestion: Sequence[CongestionFinding],
    check: BaselineCheck | None,
    macs: MacCheck | None,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "scenarios": [
            {
                "name": s.name,
                "path": s.path,
                "description": s.description,
                "tags": list(s.tags),
                "reference_source": s.reference_source,
            }
            for s in run.scenarios
        ],
        "cases": [
            {
                "scenario": c.scenario,
                "variant": c.variant,
                "layer": c.layer,
                "layer_index": c.layer_index,
                "results": {k: v.to_dict() for k, v in sorted(c.results.items())},
                "reference": c.reference,
                "functional": c.functional,
                "attributions": [asdict(a) for a in c.attributions],
                "maestro_bugs": [asdict(a) for a in c.maestro_bugs],
            }
            for c in run.cases
        ],
        "rows": [r.to_dict() for r in run.rows],
        "congestion": [f.to_dict() for f in congestion],
        "mac_counts": None if macs is None else macs.to_dict(),
        "baseline": None
        if check is None
        else {
            "ok": check.ok,
            "regressions": [r.describe() for r in check.regressions],
            "improved": list(check.improved),
            "new": list(check.new_keys),
            "missing": list(check.missing_keys),
        },
    }


def _results_csv(rows: list[MetricRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        (
            "scenario",
            "variant",
            "layer",
            "layer_index",
            "comparison",
            "metric",
            "model",
            "truth",
            "rel_error",
        )
    )
    for r in rows:
        error = "" if r.rel_error is None else repr(r.rel_error)
        writer.writerow(
            (
                r.scenario,
                r.variant,
                r.layer,
                r.layer_index,
                r.comparison,
                r.metric,
                repr(r.model),
                repr(r.truth),
                error,
            )
        )
    return buffer.getvalue()


def write_report(run: ValidationRun, out: Path, check: BaselineCheck | None = None) -> list[str]:
    """Write every report file into ``out``; returns the summary lines for the terminal."""
    out.mkdir(parents=True, exist_ok=True)
    congestion = congestion_findings(run, out)
    cases = len(run.cases)
    engine_runs = sum(len(c.results) for c in run.cases)
    blocks: list[Block] = [
        Heading("Metronome validation report", 1),
        Paragraph(
            f"{len(run.scenarios)} scenario(s), {cases} layer case(s), {engine_runs} engine runs"
            " (analytic model fixed and MAESTRO-compatible; simulator under the maestro and"
            " realistic policies). Relative error = (analytic - truth) / |truth|."
        ),
    ]
    summary: list[str] = [
        f"{len(run.scenarios)} scenarios, {cases} layer cases, {engine_runs} engine runs"
    ]
    for comparison, meaning in COMPARISONS:
        table = _summary_table(run.rows, comparison)
        if table is None:
            continue
        blocks += [Heading(f"{comparison}: {meaning}", 2), table]
        runtime = next((row for row in table.rows if row[0] == "runtime_cycles"), None)
        if runtime:
            summary.append(
                f"{comparison}: runtime exact {runtime[1]}, median |error| {runtime[2]},"
                f" worst {runtime[3]} ({runtime[4]})"
            )
    worst = _worst_cases(run)
    if worst:
        blocks += [Heading("Worst layers (runtime, analytic vs realistic)", 2), worst]
    blocks += rank_blocks(run.cases)
    blocks += refined_residual_blocks(run.cases)
    blocks += _congestion_blocks(congestion)
    for f in congestion:
        summary.append(
            f"congestion: {f.scenario}/{f.layer} on {f.topology} {_departure(f)},"
            f" worst {f.worst_ratio:.2f}x; stops improving at {fmt(f.sim_saturates_at_bw)}"
            f" elems/cycle (roofline {fmt(f.roofline_saturates_at_bw)})"
        )
    macs = mac_check(run)
    if macs is not None:
        summary.append(macs.summary())
    blocks += _functional_blocks(run)
    blocks += _mac_blocks(macs)
    blocks += _baseline_blocks(check)
    blocks += _plots(run, out)
    blocks += refined_scatter_blocks(run.cases, out)
    plotted: set[str] = set()
    for f in congestion:
        if f.plot and f.plot not in plotted:
            plotted.add(f.plot)
            blocks.append(Image(f.plot, f"Runtime vs NoC bandwidth, {f.scenario}/{f.layer}"))
    blocks += _hot_spot(run, congestion, out)
    blocks += _paper_blocks(run, out)
    blocks.append(Heading("Every layer", 2))
    for case in run.cases:
        blocks += _case_blocks(case)
    if run.warnings:
        blocks += [
            Heading("Input warnings", 2),
            Items(tuple(w.render().splitlines()[0] for w in run.warnings)),
        ]
    atomic_write_text(out / "report.md", to_markdown(blocks))
    atomic_write_text(out / "report.html", to_html(blocks, "Metronome validation report"))
    atomic_write_json(out / "results.json", _results_json(run, congestion, check, macs))
    atomic_write_text(out / "results.csv", _results_csv(run.rows))
    return summary
