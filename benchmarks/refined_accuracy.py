"""Accuracy, rank fidelity and speed of the analytic models against ``sim-realistic``.

Suites: ``default`` (what ``metronome validate`` runs with no arguments), ``random``
(``scenarios/random``), ``networks`` (``scenarios/networks``), ``congestion``
(``scenarios/congestion``, a subset of the bandwidths with ``--congestion-bw``),
``mappings`` (seeded random layers under the six shipped MAESTRO mapping styles, 4-16
PEs, bus, NoC 8 elements/cycle, hop latency 1, small layers and the same scaled up) and
``problems`` (seeded random small problems drawn like ``tests/sim/random_cases.py``: any
directive order, every topology, small buffers).

For every layer: runtime |error|, per-tensor L2 reads/writes and off-chip reads |error|
of each model, Kendall tau between the model's and the simulated runtimes over the
mappings of each layer and over the suite, and the in-process analytic time per layer.
Simulator results are cached (``--cache``) since they do not depend on the analytic
model.

    python benchmarks/refined_accuracy.py [--suites default,random,congestion,mappings]
        [--cache FILE] [--json OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import time
from dataclasses import asdict
from math import prod
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metronome import analytic  # noqa: E402
from metronome.spec.hardware import TOPOLOGIES, UNBOUNDED, Hardware  # noqa: E402
from metronome.spec.layer import Layer, LayerType, make_layer  # noqa: E402
from metronome.spec.mapping import ClusterDirective, MapDirective, Mapping  # noqa: E402
from metronome.spec.scenario import load_scenario  # noqa: E402
from metronome.spec.source import SpecError  # noqa: E402
from metronome.spec.templates import template  # noqa: E402
from metronome.validation.rank import kendall_tau  # noqa: E402
from metronome.validation.suite import expand  # noqa: E402

MODELS = ("maestro", "fixed", "refined")
STYLES = ("kcp_ws", "xp_ws", "yxp_os", "rs", "nlr", "ckp_ws")
TRAFFIC = (
    "tensors.input.l2_reads",
    "tensors.weight.l2_reads",
    "tensors.output.l2_writes",
    "tensors.input.l2_writes",
    "tensors.weight.l2_writes",
    "offchip_reads_elems",
)

Case = tuple[str, str, Layer, Mapping, Hardware]
"""(suite, label, layer, mapping, hardware); the label's text before ``|`` names the
group (one layer) whose mappings the per-layer Kendall tau ranks."""


def _scenario_cases(suite: str, targets: list[str], keep_bw: set[int] | None) -> list[Case]:
    out: list[Case] = []
    for path in expand(targets):
        try:
            scenario = load_scenario(path)
        except SpecError:
            continue
        if getattr(scenario, "kind", "") == "systolic":
            continue
        for vi, (label, hw) in enumerate(scenario.variants()):
            if keep_bw is not None and hw.noc_bw_elems_per_cycle not in keep_bw:
                continue
            for li, entry in enumerate(scenario.network.layers):
                if entry.mapping is None:
                    continue
                name = f"{scenario.name}[{label}]/{li}:{entry.name}|v{vi}"
                out.append((suite, name, entry.layer, entry.mapping, hw))
    return out


def _random_layer(rng: random.Random, scaled: bool) -> Layer:
    r = rng.choice((1, 3, 3, 5))
    stride = rng.choice((1, 1, 2))
    k, c = rng.randint(2, 16), rng.randint(2, 16)
    y, x = rng.randint(r + 2, r + 10), rng.randint(r + 2, r + 10)
    if scaled:
        k, c = k * rng.randint(2, 8), c * rng.randint(2, 8)
        y, x = y + rng.randint(8, 16), x + rng.randint(8, 16)
    sizes = {"K": k, "C": c, "R": r, "S": r, "Y": y, "X": x}
    return make_layer(
        name="L", type_=LayerType.CONV, declared=sizes, stride_y=stride, stride_x=stride
    )


def _mapping_cases(count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    out: list[Case] = []
    for n in range(count):
        scaled = n % 2 == 1
        layer = _random_layer(rng, scaled)
        hw = Hardware(
            num_pes=rng.randint(4, 16),
            noc_bw_elems_per_cycle=8,
            noc_latency_cycles=1,
            noc_hop_latency_cycles=1,
            topology="bus",
        )
        for style in STYLES:
            try:
                mapping = template(style, layer, hw)
            except SpecError:
                continue
            tag = "scaled" if scaled else "small"
            out.append(("mappings", f"{tag}{n}|{style}", layer, mapping, hw))
    return out


def _random_directive(rng: random.Random, layer: Layer, dim: str, spatial: bool) -> MapDirective:
    n = layer.size(dim)
    if dim in ("R", "S"):
        size = n if rng.random() < 0.5 else 1
        return MapDirective(spatial, dim, size, size)
    size = rng.randint(1, n)
    return MapDirective(spatial, dim, size, rng.randint(1, size))


def _random_level(rng: random.Random, layer: Layer) -> list[MapDirective]:
    outputs = rng.choice(["none", "Y'", "X'"])
    dims = ["K", "C", "R", "S", "Y" if outputs != "Y'" else "Y'", "X" if outputs != "X'" else "X'"]
    rng.shuffle(dims)
    spatial = rng.choice([d for d in dims if d not in ("R", "S")])
    return [_random_directive(rng, layer, d, d == spatial) for d in dims]


def _problem_cases(count: int, seed: int) -> list[Case]:
    """Seeded random problems drawn as ``tests/sim/random_cases.py`` draws them (every
    directive order, tile size, offset, stride, one or two levels, every topology, small
    L1/L2, finite off-chip), at most ``MAX_STEPS`` global steps."""
    from metronome.sim.loopnest import LoopNest

    rng = random.Random(seed)
    out: list[Case] = []
    tries = 0
    while len(out) < count and tries < 50 * count:
        tries += 1
        r, s_ = rng.randint(1, 3), rng.randint(1, 3)
        sizes = {
            "K": rng.randint(1, 4),
            "C": rng.randint(1, 4),
            "R": r,
            "S": s_,
            "Y": rng.randint(r, r + 4),
            "X": rng.randint(s_, s_ + 3),
        }
        layer = make_layer(
            name="p",
            type_=LayerType.CONV,
            declared=sizes,
            stride_y=rng.randint(1, 2),
            stride_x=rng.randint(1, 2),
        )
        directives: list[MapDirective | ClusterDirective] = list(_random_level(rng, layer))
        if rng.random() < 1 / 3:
            directives.append(ClusterDirective(rng.randint(2, 3)))
            directives += _random_level(rng, layer)
        mapping = Mapping(tuple(directives))
        small = [UNBOUNDED, rng.randint(1, 8)]
        hw = Hardware(
            num_pes=rng.randint(1, 9),
            simd_lanes=rng.randint(1, 3),
            l1_size_elems=rng.choice([UNBOUNDED, rng.randint(2, 60)]),
            l2_size_elems=rng.choice([UNBOUNDED, rng.randint(4, 120)]),
            noc_bw_elems_per_cycle=rng.choice(small),
            noc_hop_latency_cycles=rng.randint(0, 2),
            noc_latency_cycles=rng.randint(0, 2),
            offchip_bw_elems_per_cycle=rng.choice(small),
            offchip_latency_cycles=rng.randint(0, 6),
            adder_latency_cycles=rng.randint(0, 2),
            topology=rng.choice(TOPOLOGIES),
        )
        try:
            nest = LoopNest(layer, mapping, hw.num_pes)
            if prod(nest.top_trips) > 160:
                continue
            analytic.analyze(layer, mapping, hw, model="refined")
        except SpecError:
            continue
        out.append(("problems", f"p{len(out)}|{hw.topology}", layer, mapping, hw))
    return out


def _key(layer: Layer, mapping: Mapping, hw: Hardware) -> str:
    text = repr((layer.sizes, layer.stride_y, layer.stride_x, str(layer.type), str(mapping)))
    text += json.dumps(asdict(hw), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _simulate(layer: Layer, mapping: Mapping, hw: Hardware) -> dict[str, Any] | None:
    """The realistic simulation's numbers (None when it rejects the layer)."""
    from metronome import sim

    try:
        result = sim.simulate(layer, mapping, hw, sim.SimOptions(policy=sim.REALISTIC))
    except SpecError:
        return None
    return _flat(result.layer.to_dict())


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"runtime_cycles": d["runtime_cycles"]}
    for name, counts in d.get("tensors", {}).items():
        for k, v in counts.items():
            out[f"tensors.{name}.{k}"] = v
    out.update({k: v for k, v in d.items() if isinstance(v, int | float) and k != "layer_index"})
    return out


def _err(model: float, truth: float) -> float | None:
    if truth == 0:
        return 0.0 if model == 0 else None
    return abs(model - truth) / abs(truth)


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suites", default="default,random,congestion,mappings")
    ap.add_argument("--cache", default=str(ROOT / "benchmarks" / ".refined_sim_cache.json"))
    ap.add_argument("--congestion-bw", default="1,4,16,64,256")
    ap.add_argument("--mappings", type=int, default=24, help="random layers (x6 styles)")
    ap.add_argument("--problems", type=int, default=60, help="random small problems")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--json", default="")
    ap.add_argument("--worst", type=int, default=5)
    ap.add_argument("--cached-only", action="store_true", help="skip layers not simulated yet")
    args = ap.parse_args()
    os.chdir(ROOT)
    suites = args.suites.split(",")
    cases: list[Case] = []
    if "default" in suites:
        cases += _scenario_cases("default", [], None)
    if "random" in suites:
        cases += _scenario_cases("random", ["scenarios/random"], None)
    if "networks" in suites:
        cases += _scenario_cases("networks", ["scenarios/networks"], None)
    if "congestion" in suites:
        bws = {int(b) for b in args.congestion_bw.split(",")}
        cases += _scenario_cases("congestion", ["scenarios/congestion"], bws)
    if "mappings" in suites:
        cases += _mapping_cases(args.mappings, args.seed)
    if "problems" in suites:
        cases += _problem_cases(args.problems, args.seed)
    cache_path = Path(args.cache)
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    report: dict[str, Any] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for n, (suite, label, layer, mapping, hw) in enumerate(cases):
        key = _key(layer, mapping, hw)
        if key not in cache and args.cached_only:
            continue
        if key not in cache:
            started = time.perf_counter()
            cache[key] = _simulate(layer, mapping, hw)
            print(
                f"[{n + 1}/{len(cases)}] sim {suite} {label} {time.perf_counter() - started:.1f}s",
                file=sys.stderr,
                flush=True,
            )
            tmp = cache_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, sort_keys=True))
            tmp.replace(cache_path)
        truth = cache[key]
        if truth is None:
            continue
        row: dict[str, Any] = {"label": label, "truth": truth}
        for model in MODELS:
            try:
                started = time.perf_counter()
                res = analytic.analyze(layer, mapping, hw, model=model)
                row[f"{model}_s"] = time.perf_counter() - started
                row[model] = _flat(res.to_dict())
            except SpecError:
                row[model] = None
        rows.setdefault(suite, []).append(row)
    for suite, srows in rows.items():
        report[suite] = _summarise(srows, args.worst)
    _print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, sort_keys=True))
    return 0


def _summarise(rows: list[dict[str, Any]], worst: int) -> dict[str, Any]:
    out: dict[str, Any] = {"layers": len(rows)}
    for model in MODELS:
        ok = [r for r in rows if r.get(model)]
        signed = [
            ((r[model]["runtime_cycles"] - t) / t, r["label"])
            for r in ok
            for t in [r["truth"]["runtime_cycles"]]
            if t
        ]
        rt = sorted(((abs(e), e, lab) for e, lab in signed), reverse=True)
        entry: dict[str, Any] = {
            "runtime_median": _median([a for a, _, _ in rt]),
            "runtime_worst": rt[0][0] if rt else float("nan"),
            "worst": [f"{lab} {e:+.3f}" for _, e, lab in rt[:worst]],
            "ms_per_layer": 1000 * _median([r[f"{model}_s"] for r in ok]),
        }
        for metric in TRAFFIC:
            es = [
                e
                for r in ok
                if metric in r["truth"] and metric in r[model]
                for e in [_err(r[model][metric], r["truth"][metric])]
                if e is not None
            ]
            entry[metric] = _median(es)
            entry[metric + ":worst"] = max(es) if es else float("nan")
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in ok:
            groups.setdefault(r["label"].split("|")[0], []).append(r)
        group_taus = {
            name: t
            for name, g in groups.items()
            if len(g) >= 3
            for t in [
                kendall_tau(
                    [r[model]["runtime_cycles"] for r in g],
                    [r["truth"]["runtime_cycles"] for r in g],
                )
            ]
            if t is not None
        }
        taus = list(group_taus.values())
        entry["tau_per_layer_mean"] = statistics.fmean(taus) if taus else float("nan")
        entry["tau_per_layer_low"] = sorted((round(t, 3), name) for name, t in group_taus.items())[
            :3
        ]
        entry["tau_suite"] = kendall_tau(
            [r[model]["runtime_cycles"] for r in ok], [r["truth"]["runtime_cycles"] for r in ok]
        )
        out[model] = entry
    return out


def _print(report: dict[str, Any]) -> None:
    for suite, s in report.items():
        print(f"== {suite} ({s['layers']} layers)")
        for model in MODELS:
            e = s[model]
            traffic = " ".join(
                f"{m.split('.')[-2] if m.startswith('tensors') else 'offchip'}"
                f".{m.split('.')[-1][:6]}={e[m]:.3f}/{e[m + ':worst']:.3f}"
                for m in TRAFFIC
            )
            tau_suite = e["tau_suite"]
            print(
                f"  {model:8s} runtime median {e['runtime_median']:.3f}"
                f" worst {e['runtime_worst']:.3f} tau layer {e['tau_per_layer_mean']:.3f} suite "
                f"{tau_suite if tau_suite is None else round(tau_suite, 3)}"
                f" {e['ms_per_layer']:.2f} ms/layer"
            )
            print(f"           {traffic}")
            for w in e["worst"]:
                print(f"           worst: {w}")
            if e["tau_per_layer_low"]:
                print(f"           lowest per-layer tau: {e['tau_per_layer_low']}")


if __name__ == "__main__":
    raise SystemExit(main())
