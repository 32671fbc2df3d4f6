"""Rendering a validation run: report.md / report.html, results.json, results.csv, PNGs.

The report renders what the harness found (:mod:`metronome.validation.findings`); it computes
nothing. Its first page answers the questions users run Metronome for: how accurate is
each closed form, what the largest causes of its error are, which layers are worst,
where the network congests, and whether a change made the model less accurate.
Everything else is one click away: ``details`` (every metric, every finding in full)
and one page per scenario under ``scenarios/`` (every layer).
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from metronome.spec.fileio import atomic_write_json, atomic_write_text
from metronome.spec.names import Engine
from metronome.spec.results import SCHEMA_VERSION

from . import paper, plots
from .baseline import BaselineCheck
from .compare import COMPARED_METRICS, MetricRow
from .congestion import CongestionFinding, plot_congestion
from .document import Block, Heading, Image, Items, Paragraph, Table, to_html, to_markdown
from .findings import Cause, Findings, HotSpot, PaperVerdicts
from .fused import FusedOutcome, fused_blocks, fused_page, fused_summary
from .harness import CaseResult, ValidationRun, truth_label
from .maccount import MODELS, MacCheck
from .model_plots import model_scatter_blocks
from .rank import rank_blocks
from .refined_residuals import refined_residual_blocks
from .runner import ENGINES
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


def _case_blocks(case: CaseResult) -> list[Block]:
    engines = [e for e in ENGINES if e in case.results]
    flats = {e: case.results[e].flat() for e in engines}
    header = ("metric", *engines, *(["MAESTRO"] if case.reference else []), "analytic vs realistic")
    rows = []
    for metric in COMPARED_METRICS:
        if not any(metric in f for f in flats.values()):
            continue
        values = [fmt(flats[e].get(metric)) for e in engines]
        ref = [fmt(case.reference.get(metric))] if case.reference else []
        a = flats.get(Engine.ANALYTIC, {}).get(metric)
        s = flats.get(Engine.SIM_REALISTIC, {}).get(metric)
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
        f = c.functional
        assert f is not None
        verdict = "equal" if f.ok else f"{f.mismatched_elems} differ"
        rows.append((c.name, fmt(f.output_elems), verdict, fmt(f.max_abs_diff)))
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
        for engine in (Engine.SIM_REALISTIC, Engine.SIM_MAESTRO):
            a, s = case.results.get(Engine.ANALYTIC), case.results.get(engine)
            if a and s and a.runtime_cycles > 0 and s.runtime_cycles > 0:
                points.append((float(s.runtime_cycles), float(a.runtime_cycles), engine.value))
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
    findings: Findings,
    check: BaselineCheck | None,
    fused: Sequence[FusedOutcome],
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
                "functional": None if c.functional is None else c.functional.to_dict(),
                "attributions": [asdict(a) for a in c.attributions],
                "maestro_bugs": [asdict(a) for a in c.maestro_bugs],
            }
            for c in run.cases
        ],
        "rows": [r.to_dict() for r in run.rows],
        "fused": [o.to_dict() for o in fused],
        "congestion": [f.to_dict() for f in findings.congestion],
        "mac_counts": None if findings.macs is None else findings.macs.to_dict(),
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


def _page(name: str) -> str:
    """A file-name-safe page name for a scenario."""
    return "scenarios/" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _headline_blocks(findings: Findings) -> list[Block]:
    if not findings.headlines:
        return []
    rows = tuple(
        (
            f"`{h.comparison}`",
            h.meaning,
            str(h.cases),
            str(h.exact),
            "n/a" if h.median_abs_error is None else f"{h.median_abs_error:.2%}",
            pct(h.worst_error),
            h.worst_case,
        )
        for h in findings.headlines
    )
    return [
        Heading("Runtime error per model", 2),
        Table(
            ("comparison", "meaning", "layers", "exact", "median abs error", "worst", "worst case"),
            rows,
            "llrrrrl",
        ),
    ]


def _cause_blocks(findings: Findings) -> list[Block]:
    if not findings.causes:
        return []
    return [
        Heading("The three largest causes of the closed form's runtime error", 2),
        Paragraph(
            "Each explained layer's runtime gap (analytic - simulated) is put down to its"
            " largest cause (as in the worst-layers table); a cause's share is the part of"
            " the summed |gap| of every explained layer that it is the largest cause of."
        ),
        _cause_table(findings.causes[:3]),
    ]


def _cause_table(causes: Sequence[Cause]) -> Table:
    rows = tuple((c.cause, str(c.cases), fmt(c.abs_gap_cycles), f"{c.share:.0%}") for c in causes)
    return Table(("largest cause", "layers", "their |gap| (cycles)", "share"), rows, "lrrr")


def _worst_blocks(run: ValidationRun, findings: Findings) -> list[Block]:
    if not findings.worst:
        return []
    pages = {c.name: _page(c.scenario) for c in run.cases}
    rows = tuple(
        (
            f"[{w.case}]({pages[w.case]})",
            fmt(w.analytic_cycles),
            fmt(w.simulated_cycles),
            pct(w.error),
            w.largest_cause,
        )
        for w in findings.worst
    )
    return [
        Heading("Worst layers (runtime, analytic vs realistic)", 2),
        Table(
            ("layer", "analytic cycles", "simulated cycles", "error", "largest cause"),
            rows,
            "lrrrl",
        ),
    ]


def _paper_blocks(sections: Sequence[PaperVerdicts], out: Path) -> list[Block]:
    blocks: list[Block] = []
    for tag in dict.fromkeys(s.tag for s in sections):
        chosen = [s for s in sections if s.tag == tag]
        blocks.append(Heading(f"Seed paper findings (section 4): {chosen[0].title}", 2))
        blocks.append(
            Paragraph(
                "Under the paper's conditions (docs/paper.md): Fig. 6 figures of a steady step,"
                " Fig. 7 with vector L1 reads; 'whole layer' is the verdict on whole-layer"
                " figures with scalar reads; 'hinges on' names the conditions whose removal"
                f" alone flips the verdict. Paper units: {paper.WORD_BITS}-bit words,"
                f" {paper.CLOCK_GHZ:g} GHz."
            )
        )
        for s in chosen:
            held = sum(1 for v in s.verdicts if v[1])
            blocks.append(
                Paragraph(f"As measured by **{s.engine}**: {held} of {len(s.verdicts)} hold.")
            )
            rows = tuple(
                (
                    claim,
                    "holds" if holds else "does not hold",
                    "holds" if whole else "does not hold",
                    ", ".join(hinges) or "-",
                    evidence,
                )
                for claim, holds, whole, hinges, evidence in s.verdicts
            )
            blocks.append(
                Table(("finding", "verdict", "whole layer", "hinges on", "numbers"), rows)
            )
            fig6, fig7 = out / f"{tag}_fig6_{s.engine}.png", out / f"{tag}_fig7_{s.engine}.png"
            plots.paper_figures(
                list(s.values),
                list(paper.LAYERS),
                s.values,
                f"{s.engine} ({tag})",
                fig6,
                fig7,
                {
                    "bw": (
                        paper.gbps(1.0),
                        f"Gbps ({paper.WORD_BITS}-bit, {paper.CLOCK_GHZ:g} GHz)",
                    ),
                    "l1": (paper.kilobytes(1.0), f"KB ({paper.WORD_BITS}-bit words)"),
                },
            )
            blocks.append(
                Image(fig6.name, f"Fig. 6 of the seed paper, measured by {s.engine} ({tag})")
            )
            blocks.append(
                Image(fig7.name, f"Fig. 7 of the seed paper, measured by {s.engine} ({tag})")
            )
    return blocks


def _paper_summary(sections: Sequence[PaperVerdicts]) -> list[str]:
    return [
        f"seed paper findings ({s.tag}) as measured by {s.engine}:"
        f" {sum(1 for v in s.verdicts if v[1])} of {len(s.verdicts)} hold"
        for s in sections
    ]


def _hot_spot_blocks(spot: HotSpot | None, out: Path) -> list[Block]:
    if spot is None:
        return []
    pictures = draw_simulation(out, "hot_spot", spot.case, spot.result, spot.hardware)
    return [
        Heading("The hot spot", 2),
        Paragraph(f"{spot.case} ({spot.engine}): {noc_summary(spot.result)}."),
        Image(pictures[0].name, f"Link utilisation of {spot.case} ({spot.engine})"),
        Image(pictures[1].name, f"PE utilisation and NoC occupancy over time, {spot.case}"),
    ]


def _congestion_lines(findings: Sequence[CongestionFinding]) -> list[str]:
    return [
        f"congestion: {f.scenario}/{f.layer} on {f.topology} {_departure(f)},"
        f" worst {f.worst_ratio:.2f}x; stops improving at {fmt(f.sim_saturates_at_bw)}"
        f" elems/cycle (roofline {fmt(f.roofline_saturates_at_bw)})"
        for f in findings
    ]


def _functional_line(run: ValidationRun) -> str | None:
    checked = [c.functional for c in run.cases if c.functional is not None]
    if not checked:
        return None
    wrong = sum(1 for f in checked if not f.ok)
    verdict = "all equal to numpy's" if not wrong else f"{wrong} differ from numpy's"
    return f"functional check: {len(checked)} layer(s) carried real values, {verdict}"


def _scenario_pages(run: ValidationRun) -> dict[str, list[Block]]:
    pages: dict[str, list[Block]] = {}
    for scenario in run.scenarios:
        cases = [c for c in run.cases if c.path == scenario.path]
        blocks: list[Block] = [
            Heading(f"Scenario {scenario.name}", 1),
            Paragraph(f"[back to the report](../report) · `{scenario.path}`"),
        ]
        if scenario.description:
            blocks.append(Paragraph(scenario.description.strip()))
        for case in cases:
            blocks += _case_blocks(case)
        pages[_page(scenario.name)] = blocks
    return pages


def _details_page(run: ValidationRun, findings: Findings, out: Path) -> list[Block]:
    blocks: list[Block] = [
        Heading("Metronome validation report: details", 1),
        Paragraph("[back to the report](report)"),
    ]
    for comparison, meaning in COMPARISONS:
        table = _summary_table(run.rows, comparison)
        if table is not None:
            blocks += [Heading(f"{comparison}: {meaning}", 2), table]
    blocks += rank_blocks(run.cases)
    blocks += refined_residual_blocks(run.cases)
    if findings.causes:
        blocks += [
            Heading("Every largest cause of the closed form's runtime error", 2),
            _cause_table(findings.causes),
        ]
    blocks += _congestion_blocks(findings.congestion)
    blocks += _functional_blocks(run)
    blocks += _mac_blocks(findings.macs)
    blocks += _paper_blocks(findings.paper, out)
    if run.warnings:
        blocks += [
            Heading("Input warnings", 2),
            Items(tuple(w.render().splitlines()[0] for w in run.warnings)),
        ]
    return blocks


def _write_page(out: Path, page: str, blocks: list[Block], title: str) -> None:
    atomic_write_text(out / f"{page}.md", to_markdown(blocks))
    atomic_write_text(out / f"{page}.html", to_html(blocks, title))


def write_report(
    run: ValidationRun,
    out: Path,
    check: BaselineCheck | None = None,
    fused: Sequence[FusedOutcome] = (),
) -> list[str]:
    """Write every report file into ``out``; returns the summary lines for the terminal.
    ``fused``: the fused scenarios validated alongside (their section, page and rows)."""
    assert run.findings is not None, "the harness draws the findings"
    findings = run.findings
    out.mkdir(parents=True, exist_ok=True)
    cases = len(run.cases)
    engine_runs = sum(len(c.results) for c in run.cases)
    summary: list[str] = (
        [f"{len(run.scenarios)} scenarios, {cases} layer cases, {engine_runs} engine runs"]
        if run.scenarios or not fused
        else []
    )
    summary += [
        f"{h.comparison}: runtime exact {h.exact}/{h.cases}, median |error| "
        + ("n/a" if h.median_abs_error is None else f"{h.median_abs_error:.2%}")
        + f", worst {pct(h.worst_error)} ({h.worst_case})"
        for h in findings.headlines
    ]
    if fused:
        summary.append(fused_summary(list(fused)))
    summary += _congestion_lines(findings.congestion)
    if findings.macs is not None:
        summary.append(findings.macs.summary())
    functional = _functional_line(run)
    pages = _scenario_pages(run)
    intro = (
        f"{len(run.scenarios)} scenario(s), {cases} layer case(s), {engine_runs} engine runs"
        f" ({', '.join(f'`{e}`' for e in ENGINES)}). Relative error = (analytic - truth)"
        " / |truth|. [Every metric and finding in full](details); every layer on its"
        " scenario's page (listed at the end)."
    )
    if fused:
        intro = (
            f"{intro} {len(fused)} fused scenario(s) besides: [every fused metric](fused)."
            if run.scenarios
            else f"{len(fused)} fused scenario(s): [every fused metric](fused)."
        )
    blocks: list[Block] = [Heading("Metronome validation report", 1), Paragraph(intro)]
    blocks += _headline_blocks(findings)
    blocks += _cause_blocks(findings)
    blocks += _baseline_blocks(check)
    blocks += _worst_blocks(run, findings)
    blocks += fused_blocks(list(fused))
    facts = [*_congestion_lines(findings.congestion)]
    if findings.macs is not None:
        facts.append(findings.macs.summary())
    if functional:
        facts.append(functional)
    facts += _paper_summary(findings.paper)
    if fused:
        facts.append(fused_summary(list(fused)))
    if facts:
        blocks += [Heading("Findings", 2), Items(tuple(facts))]
    blocks += _plots(run, out)
    blocks += model_scatter_blocks(run.cases, out)
    captions = {
        f.plot: f"Runtime vs NoC bandwidth, {f.scenario}/{f.layer}" for f in findings.congestion
    }
    blocks += [Image(name, captions[name]) for name in plot_congestion(findings.congestion, out)]
    blocks += _hot_spot_blocks(findings.hot_spot, out)
    details = _details_page(run, findings, out)
    blocks += [
        Heading("Per scenario", 2),
        Items(tuple(f"[{s.name}]({_page(s.name)})" for s in run.scenarios)),
    ]
    for page, page_blocks in pages.items():
        _write_page(out, page, page_blocks, page.removeprefix("scenarios/"))
    _write_page(out, "details", details, "Metronome validation report: details")
    if fused:
        _write_page(out, "fused", fused_page(list(fused)), "Metronome: fused-layer scenarios")
    _write_page(out, "report", blocks, "Metronome validation report")
    atomic_write_json(out / "results.json", _results_json(run, findings, check, fused))
    fused_rows = [row for o in fused for row in o.metric_rows()]
    atomic_write_text(out / "results.csv", _results_csv(run.rows + fused_rows))
    return summary
