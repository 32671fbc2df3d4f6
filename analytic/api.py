"""Public entry points: one layer, or a whole network, on one piece of hardware."""

from __future__ import annotations

from dataclasses import asdict
from math import prod

from metronome.spec.energy import energy_table
from metronome.spec.hardware import Hardware
from metronome.spec.layer import Layer
from metronome.spec.mapping import Mapping
from metronome.spec.names import Engine
from metronome.spec.network import Network
from metronome.spec.results import LayerResult, RunResult
from metronome.spec.source import SpecError

from .assumptions import MAESTRO_ASSUMPTIONS, REFINED_ASSUMPTIONS, Assumptions
from .deviations import COMPAT, DEVIATIONS, FIXED, Quirks
from .engine import LevelResult, NocLevel, analyze_problem
from .groups import exact_counts
from .problem import Problem, build_problem, tensor_size
from .report import l1_counts_of, layer_result
from .steady import steady_state

__all__ = [
    "ENGINE_COMPAT",
    "ENGINE_DEFAULT",
    "ENGINE_REFINED",
    "MODELS",
    "analyze",
    "analyze_layer",
    "analyze_network",
    "run_problem",
]

ENGINE_DEFAULT = Engine.ANALYTIC
ENGINE_COMPAT = Engine.ANALYTIC_MAESTRO
ENGINE_REFINED = Engine.ANALYTIC_REFINED
MODELS: tuple[str, ...] = ("fixed", "refined", "maestro")
"""The analytic models: ``fixed`` (MAESTRO's closed form, its bugs fixed; the default),
``refined`` (the fixed form with each measured MAESTRO assumption replaced by what the
realistic machine does, docs/refined-model.md) and ``maestro`` (MAESTRO's numbers, bugs
included)."""
_NO_L1: tuple[int, ...] = (0, 0, 0, 0, 0, 0)


def _tensor_elems(problem: Problem, layer: Layer, compat: bool) -> tuple[int, int]:
    """Columns 19/20: MAESTRO multiplies the *declared* dimensions of each tensor."""
    inputs, weights = problem.inputs
    if compat:
        declared = {d: v for d, v in layer.sizes if d in layer.declared}
        return (
            prod(declared[d] for d in inputs.dims if d in declared),
            prod(declared[d] for d in weights.dims if d in declared),
        )
    return tensor_size(problem, inputs), tensor_size(problem, weights)


def _resolve_model(model: str | None, maestro_compat: bool) -> str:
    """The model a call asks for (``maestro_compat`` is ``model="maestro"``)."""
    if model is None:
        return "maestro" if maestro_compat else "fixed"
    if model not in MODELS:
        raise SpecError.at(
            None, f"unknown analytic model '{model}'", hint="one of " + ", ".join(MODELS)
        )
    return model


def _engine_name(model: str) -> str:
    return {"fixed": ENGINE_DEFAULT, "refined": ENGINE_REFINED, "maestro": ENGINE_COMPAT}[model]


def run_problem(
    layer: Layer,
    mapping: Mapping,
    hardware: Hardware,
    quirks: Quirks,
    nocs: tuple[NocLevel, ...] | None = None,
    assumptions: Assumptions = MAESTRO_ASSUMPTIONS,
    refined: bool = False,
) -> tuple[Problem, LevelResult]:
    """The completed levels and the top level's raw result under explicit ``quirks``
    (one deviation can be switched on its own, as the deviation tests do)."""
    problem = build_problem(layer, mapping, hardware.num_pes, quirks)
    if nocs is None:
        noc = NocLevel(hardware.noc_bw_elems_per_cycle, hardware.noc_latency_cycles)
        nocs = (noc,) * len(problem.levels)
    if not assumptions.nested_noc_charged:
        nocs = nocs[:1] + tuple(NocLevel(n.bandwidth, n.latency, free=True) for n in nocs[1:])
    top = analyze_problem(
        problem,
        nocs=nocs,
        simd_lanes=hardware.simd_lanes,
        offchip_bw=hardware.offchip_bw_elems_per_cycle,
        quirks=quirks,
        assumptions=assumptions,
        hardware=hardware if refined else None,
        exact=exact_counts(layer, mapping, hardware.num_pes, hardware.simd_lanes)
        if refined
        else None,
    )
    return problem, top


def analyze_layer(
    layer: Layer,
    mapping: Mapping,
    hardware: Hardware,
    *,
    maestro_compat: bool = False,
    energy: str = "maestro",
    network: str = "",
    layer_index: int = 0,
    previous_l1_counts: tuple[int, ...] = _NO_L1,
    nocs: tuple[NocLevel, ...] | None = None,
    quirks: Quirks | None = None,
    assumptions: Assumptions | None = None,
    model: str | None = None,
) -> tuple[LayerResult, tuple[int, ...]]:
    """:func:`analyze` plus the layer's own top-level L1 counts (which MAESTRO's CSV
    energy of the *next* layer uses when that one has clusters), and two knobs the
    MAESTRO replay needs: the previous layer's L1 counts and per-level NoCs
    (``--bw_sweep`` gives level 0 its own bandwidth). ``quirks`` overrides the mode's
    set of reproduced MAESTRO bugs (the harness turns them on one at a time);
    ``assumptions`` changes a modelling assumption that is not a bug (the harness flips
    them to attribute differences from the simulator); ``model`` picks one of
    :data:`MODELS` (``maestro_compat`` is ``model="maestro"``)."""
    model = _resolve_model(model, maestro_compat)
    maestro_compat = model == "maestro"
    refined = model == "refined"
    if assumptions is None:
        assumptions = REFINED_ASSUMPTIONS if refined else MAESTRO_ASSUMPTIONS
    if quirks is None:
        quirks = COMPAT if maestro_compat else FIXED
    try:
        table = energy_table(energy)
    except KeyError as exc:
        raise SpecError.at(None, str(exc.args[0])) from None
    problem, top = run_problem(layer, mapping, hardware, quirks, nocs, assumptions, refined)
    multilevel = top.levels_analyzed > 1
    own_l1 = l1_counts_of(top)
    energy_l1 = (
        previous_l1_counts if (multilevel and quirks.energy_uses_previous_layer_l1) else own_l1
    )
    inputs, weights = _tensor_elems(problem, layer, maestro_compat)
    result = layer_result(
        engine=_engine_name(model),
        network=network,
        layer_name=layer.name,
        layer_index=layer_index,
        top=top,
        hardware=hardware,
        input_elems=inputs,
        weight_elems=weights,
        output_elems=prod(layer.size(d) for d in layer.tensor("output").dims),
        multilevel=multilevel,
        energy_l1_counts=energy_l1,
        table=table,
        int32_sizes=quirks.int32_overflow,
        # The ``steady_*`` metrics of :mod:`metronome.analytic.steady`.
        extra_metrics=steady_state(
            problem, simd_lanes=hardware.simd_lanes, quirks=quirks
        ).metrics(),
    )
    return result, own_l1


def analyze(
    layer: Layer,
    mapping: Mapping,
    hardware: Hardware,
    *,
    maestro_compat: bool = False,
    energy: str = "maestro",
    network: str = "",
    layer_index: int = 0,
    quirks: Quirks | None = None,
    assumptions: Assumptions | None = None,
    model: str | None = None,
) -> LayerResult:
    """Analyse one layer under ``mapping`` on ``hardware``.

    ``model`` picks the closed form (:data:`MODELS`: ``fixed`` by default, ``refined``,
    ``maestro``); ``maestro_compat`` (the same as ``model="maestro"``) reproduces
    MAESTRO's numbers, quirks included (on its own, a Cluster mapping's CSV energy is
    computed as for the first layer of a file);
    ``quirks`` picks exactly which MAESTRO bugs to reproduce instead (see
    :mod:`metronome.analytic.deviations`); ``assumptions`` flips modelling assumptions that are
    not bugs (:mod:`metronome.analytic.assumptions`); ``energy`` names a
    :mod:`metronome.spec.energy` table for
    ``energy_nj``. Raises :class:`SpecError` for mappings that do not fit the hardware or
    cannot be analysed.
    """
    result, _ = analyze_layer(
        layer,
        mapping,
        hardware,
        maestro_compat=maestro_compat,
        energy=energy,
        network=network,
        layer_index=layer_index,
        quirks=quirks,
        assumptions=assumptions,
        model=model,
    )
    return result


def analyze_network(
    network: Network,
    hardware: Hardware,
    *,
    maestro_compat: bool = False,
    energy: str = "maestro",
    layers: list[str] | tuple[str, ...] | None = None,
    model: str | None = None,
) -> RunResult:
    """Analyse every layer of ``network`` (or the named ``layers``) in file order under
    ``model`` (:data:`MODELS`; ``maestro_compat`` is ``model="maestro"``)."""
    model = _resolve_model(model, maestro_compat)
    maestro_compat = model == "maestro"
    chosen = {id(e) for e in network.select(layers).layers}
    try:
        table = energy_table(energy)
    except KeyError as exc:
        raise SpecError.at(None, str(exc.args[0])) from None
    results: list[LayerResult] = []
    previous = _NO_L1
    for index, entry in enumerate(network.layers):
        wanted = id(entry) in chosen
        if not wanted and not (maestro_compat and _next_is_chosen(network, index, chosen)):
            continue
        mapping = entry.require_mapping()
        try:
            result, own = analyze_layer(
                entry.layer,
                mapping,
                hardware,
                maestro_compat=maestro_compat,
                energy=energy,
                network=network.name,
                layer_index=index,
                previous_l1_counts=previous,
                model=model,
            )
        except SpecError:
            if wanted:
                raise
            previous = _NO_L1
            continue
        previous = own
        if wanted:
            results.append(result)
    quirks = COMPAT if maestro_compat else FIXED
    return RunResult(
        engine=_engine_name(model),
        network=network.name,
        source=network.path,
        hardware=asdict(hardware),
        layers=tuple(results),
        info={
            "energy_table": table.to_dict(),
            "mode": {"maestro": "maestro-compat", "fixed": "default", "refined": "refined"}[model],
            "deviations_from_maestro": [d.ident for d in DEVIATIONS if not getattr(quirks, d.flag)],
        },
    )


def _next_is_chosen(network: Network, index: int, chosen: set[int]) -> bool:
    """Whether layer ``index + 1`` is selected (its CSV energy may need this layer)."""
    return index + 1 < len(network.layers) and id(network.layers[index + 1]) in chosen
