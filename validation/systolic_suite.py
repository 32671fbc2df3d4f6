"""Systolic scenarios (``kind: systolic`` YAML manifests, ``scenarios/systolic/``): the
closed form, the executed array and SCALE-Sim's own reports compared run by run.

A manifest lists runs, each a SCALE-Sim topology CSV and ``.cfg`` and optionally the
directory of SCALE-Sim's reports for them (paths relative to the manifest). ``metronome
validate`` hands such files here instead of to the MAESTRO-mapping harness.

The exact metrics (Total Cycles, the three SRAM counts, utilisation, mapping efficiency)
must be equal across all three; DRAM counts are shown side by side (a different model,
explained in docs/simulator.md, "Systolic mode").
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from metronome.spec.scalesim import SCALESIM_COLUMNS, parse_config, parse_topology
from metronome.spec.source import SourceSpan, SpecError

__all__ = [
    "EXACT",
    "SystolicCase",
    "SystolicRow",
    "compare_systolic",
    "is_systolic_manifest",
    "load_manifest",
    "render_markdown",
]

EXACT: tuple[str, ...] = (
    "total_cycles",
    "sram_ifmap_reads",
    "sram_filter_reads",
    "sram_ofmap_writes",
    "compute_util_pct",
    "mapping_eff_pct",
)
_REPORT_COLUMNS: dict[str, tuple[str, str]] = {
    "total_cycles": ("COMPUTE_REPORT.csv", "Total Cycles"),
    "compute_util_pct": ("COMPUTE_REPORT.csv", "Compute Util %"),
    "mapping_eff_pct": ("COMPUTE_REPORT.csv", "Mapping Efficiency %"),
    "sram_ifmap_reads": ("DETAILED_ACCESS_REPORT.csv", "SRAM IFMAP Reads"),
    "sram_filter_reads": ("DETAILED_ACCESS_REPORT.csv", "SRAM Filter Reads"),
    "sram_ofmap_writes": ("DETAILED_ACCESS_REPORT.csv", "SRAM OFMAP Writes"),
    "dram_ifmap_reads": ("DETAILED_ACCESS_REPORT.csv", "DRAM IFMAP Reads"),
    "dram_filter_reads": ("DETAILED_ACCESS_REPORT.csv", "DRAM Filter Reads"),
    "dram_ofmap_writes": ("DETAILED_ACCESS_REPORT.csv", "DRAM OFMAP Writes"),
}


@dataclass(frozen=True, slots=True)
class SystolicCase:
    """One run of a systolic manifest."""

    name: str
    topology: str
    config: str
    reference: str | None


@dataclass(frozen=True, slots=True)
class SystolicRow:
    """One metric of one layer: the three numbers and whether the exact ones agree."""

    run: str
    layer: str
    metric: str
    analytic: float
    sim: float
    scalesim: float | None

    @property
    def ok(self) -> bool:
        """Exact metrics: all present numbers equal (to 1e-9 relative for percentages)."""
        if self.metric not in EXACT:
            return True
        values = [self.analytic, self.sim] + ([self.scalesim] if self.scalesim is not None else [])
        return max(values) - min(values) <= 1e-9 * max(1.0, abs(max(values)))


def is_systolic_manifest(path: Path) -> bool:
    """Whether a YAML file declares ``kind: systolic``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r"^kind:\s*systolic\s*$", text, re.MULTILINE) is not None


def _span(path: Path, node: yaml.Node, lines: list[str]) -> SourceSpan:
    mark = node.start_mark
    text = lines[mark.line] if mark.line < len(lines) else ""
    return SourceSpan(str(path), mark.line + 1, mark.column + 1, 1, text)


def load_manifest(path: Path) -> list[SystolicCase]:
    """The runs of a manifest; :class:`SpecError` at the offending entry."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line if mark else 0
        raise SpecError.at(
            SourceSpan(str(path), line + 1, (mark.column if mark else 0) + 1, 1, ""),
            f"not valid YAML ({getattr(exc, 'problem', exc)})",
        ) from None
    if not isinstance(root, yaml.MappingNode):
        raise SpecError.at(SourceSpan(str(path), 1, 1, 1, lines[0] if lines else ""), "not a map")
    top = {k.value: v for k, v in root.value}
    runs = top.get("runs")
    if not isinstance(runs, yaml.SequenceNode) or not runs.value:
        raise SpecError.at(_span(path, root, lines), "a systolic manifest needs a list 'runs'")
    out = []
    for entry in runs.value:
        if not isinstance(entry, yaml.MappingNode):
            raise SpecError.at(_span(path, entry, lines), "each run is a map")
        fields = {k.value: v for k, v in entry.value}
        for key in fields:
            if key not in ("name", "topology", "config", "reference"):
                node = next(k for k, _ in entry.value if k.value == key)
                raise SpecError.at(_span(path, node, lines), f"unknown key '{key}' in a run")
        for key in ("name", "topology", "config"):
            if key not in fields:
                raise SpecError.at(_span(path, entry, lines), f"run has no '{key}'")

        def resolve(node: yaml.Node) -> str:
            target = path.parent / str(node.value)
            if not target.exists():
                raise SpecError.at(_span(path, node, lines), f"no such file: {node.value}")
            return str(target)

        out.append(
            SystolicCase(
                name=str(fields["name"].value),
                topology=resolve(fields["topology"]),
                config=resolve(fields["config"]),
                reference=resolve(fields["reference"]) if "reference" in fields else None,
            )
        )
    return out


def _reference(directory: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for key, (report, column) in _REPORT_COLUMNS.items():
        with (Path(directory) / report).open(encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        header = [h.strip() for h in rows[0]]
        values[key] = float(rows[1][header.index(column)])
    return values


def compare_systolic(cases: list[SystolicCase]) -> list[SystolicRow]:
    """Every layer of every run through both engines, against SCALE-Sim's reports."""
    from metronome.analytic.systolic import analyze_systolic
    from metronome.sim.systolic import simulate_systolic

    rows: list[SystolicRow] = []
    for case in cases:
        config = parse_config(case.config)
        layers = parse_topology(case.topology).layers
        reference = _reference(case.reference) if case.reference else None
        if reference is not None and len(layers) != 1:
            raise SpecError.at(None, f"{case.name}: a reference run has exactly one layer")
        for index, layer in enumerate(layers):
            ana = analyze_systolic(layer, config, layer_index=index).scalesim.to_dict()
            sim = simulate_systolic(layer, config, layer_index=index).scalesim.to_dict()
            for metric in SCALESIM_COLUMNS:
                rows.append(
                    SystolicRow(
                        run=case.name,
                        layer=layer.name,
                        metric=metric,
                        analytic=float(ana[metric]),
                        sim=float(sim[metric]),
                        scalesim=reference[metric] if reference else None,
                    )
                )
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"


def render_markdown(rows: list[SystolicRow]) -> str:
    """A table per run: analytic-systolic, sim-systolic, SCALE-Sim."""
    out = [
        "# Systolic mode: analytic-systolic, sim-systolic and SCALE-Sim",
        "",
        "Exact metrics must be equal in all three; DRAM counts are a different model"
        ' (docs/simulator.md, "Systolic mode").',
        "",
        "| run | layer | metric | analytic | sim | SCALE-Sim | |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        mark = "equal" if row.metric in EXACT and row.ok else ("" if row.ok else "**differs**")
        out.append(
            f"| {row.run} | {row.layer} | {row.metric} | {_fmt(row.analytic)} | {_fmt(row.sim)}"
            f" | {_fmt(row.scalesim)} | {mark} |"
        )
    return "\n".join(out) + "\n"
