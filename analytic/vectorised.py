"""The fixed analytic model evaluated over many hardware points at once (numpy).

For one layer, mapping and PE count the case structure of every cluster level (which
cases occur, how often, their NoC ingress/egress, MACs, buffer needs) does not depend
on the rest of the hardware. Only five quantities do: the compute delay (SIMD lanes, and
below the top level the runtime of the level underneath), the NoC delays (bandwidth and
latency), the off-chip floor of a top-level step (off-chip bandwidth), and what is
derived from those (runtime, bandwidth requirements, delay statistics). L1/L2 sizes
and the topology change nothing in the closed form.

:class:`VectorModel` traces the structure once, with the engine's own case
enumeration and traffic functions, and re-evaluates only the hardware-dependent
formulas of :mod:`metronome.analytic.engine` on arrays. :meth:`VectorModel.level_result` gives
the engine's :class:`~metronome.analytic.engine.LevelResult` of one design, which the tests
compare with :func:`metronome.analytic.analyze` metric by metric.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from metronome.spec.hardware import Hardware
from metronome.spec.layer import Layer
from metronome.spec.mapping import Mapping

from .api import run_problem
from .assumptions import MAESTRO_ASSUMPTIONS
from .cases import enumerate_cases
from .context import Delays, LevelResult, NocLevel, _case_model, _Context, _Totals, level_states
from .deviations import FIXED
from .engine import _buffer_sizes, _level_models
from .traffic import changing_directive, output_traffic, spatial_ingress, sub_level_dims

__all__ = ["HardwareArrays", "TopArrays", "VectorModel"]

_Key = tuple[int, tuple[tuple[str, int], ...]]


@dataclass(frozen=True, slots=True)
class HardwareArrays:
    """The hardware quantities the closed form reads, one entry per design (int64)."""

    noc_bw_elems_per_cycle: np.ndarray
    noc_latency_cycles: np.ndarray
    offchip_bw_elems_per_cycle: np.ndarray
    simd_lanes: np.ndarray

    def __len__(self) -> int:
        return len(self.simd_lanes)


@dataclass(frozen=True, slots=True)
class TopArrays:
    """The hardware-dependent fields of the top level's result, one entry per design."""

    runtime: np.ndarray
    peak_bw: np.ndarray
    avg_bw: np.ndarray
    offchip_req: np.ndarray
    ingress: tuple[np.ndarray, np.ndarray, np.ndarray]
    egress: tuple[np.ndarray, np.ndarray, np.ndarray]
    compute: tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True, slots=True)
class _Case:
    """One group of identical counted cases of a level (``count`` of them, ``occ`` steps
    each): everything its step needs, independent of the hardware."""

    occ: int
    count: int
    ingress: int
    egress: int
    serial_fill: bool
    psums: int
    subs: tuple[_Key, ...]
    in_req: int
    out_req: int


def _trace(ctx: _Context, traces: dict[_Key, tuple[_Case, ...]], key: _Key) -> None:
    """Record the counted cases of level ``key`` (and the levels below) into ``traces``,
    following :func:`metronome.analytic.engine._analyze_level` in the fixed mode."""
    if key in traces:
        return
    index, dims_key = key
    model = ctx.models[index]
    dims, per_directive = level_states(model, dims_key, ctx.quirks)
    totals = _Totals()
    groups: dict[tuple[int, int, int, bool, int, tuple[_Key, ...], int, int], int] = {}
    sized = False
    for states, occ in enumerate_cases(per_directive):
        changing = changing_directive(states)
        case_model = _case_model(ctx, model, states)
        if not sized:
            sized = True
            _buffer_sizes(ctx, case_model, dims, states, changing, totals)
        egress, psums, _ = output_traffic(case_model, states)
        if psums <= 0:
            continue
        ingress = sum(
            spatial_ingress(case_model, states, changing, view) for view in case_model.inputs
        )
        subs: tuple[_Key, ...] = ()
        if not case_model.innermost:
            state = states[case_model.first_spatial]
            partial = state.is_edge and state.partial_last_unit
            wanted = [True] if partial else [False]
            if partial and case_model.edge_units - 1 > 0:
                wanted.append(False)
            subs = tuple((index + 1, sub_level_dims(case_model, states, p)) for p in wanted)
            for sub in subs:
                _trace(ctx, traces, sub)
            psums = 0
        serial = changing < 0 and (index == 0 or ctx.assumptions.nested_fill_serialised)
        in_req = totals.l2_size[0] + totals.l2_size[1] if index == 0 else 0
        out_req = totals.l2_size[-1] if index == 0 else 0
        group = (occ, ingress, egress, serial, psums, subs, in_req, out_req)
        groups[group] = groups.get(group, 0) + 1
    traces[key] = tuple(
        _Case(occ, count, ingress, egress, serial, psums, subs, in_req, out_req)
        for (occ, ingress, egress, serial, psums, subs, in_req, out_req), count in groups.items()
    )


class _Evaluation:
    """One vectorised evaluation: memoised per level, per NoC delay and per compute."""

    def __init__(self, model: VectorModel, hw: HardwareArrays) -> None:
        self.model = model
        self.hw = hw
        self.runtimes: dict[_Key, np.ndarray] = {}
        self.delays: dict[tuple[int, int], np.ndarray] = {}
        self.computes: dict[int, np.ndarray] = {}

    def delay(self, level: int, elems: int) -> np.ndarray:
        """``NocLevel.delay`` on arrays: latency + ceil(elems / bandwidth) - 1."""
        key = (level, elems)
        found = self.delays.get(key)
        if found is None:
            if level > 0 and not self.model.nested_noc_charged:
                found = np.zeros(len(self.hw), dtype=np.int64)
            else:
                bw = self.hw.noc_bw_elems_per_cycle
                sends = elems // bw + (elems % bw != 0)
                found = self.hw.noc_latency_cycles + sends - 1
            self.delays[key] = found
        return found

    def innermost_compute(self, psums: int) -> np.ndarray:
        """``ceil(psums / simd_lanes)`` as the engine computes it (a float quotient)."""
        found = self.computes.get(psums)
        if found is None:
            found = np.ceil(psums / self.hw.simd_lanes).astype(np.int64)
            self.computes[psums] = found
        return found

    def compute(self, case: _Case) -> np.ndarray:
        if not case.subs:
            return self.innermost_compute(case.psums)
        out = self.runtime(case.subs[0])
        for sub in case.subs[1:]:
            out = np.maximum(out, self.runtime(sub))
        return out

    def step(self, level: int, case: _Case, compute: np.ndarray) -> np.ndarray:
        step_in = self.delay(level, case.ingress)
        if case.serial_fill:
            serial: np.ndarray = compute + step_in
            return serial
        overlapped: np.ndarray = np.maximum(
            np.maximum(self.delay(level, case.egress), compute), step_in
        )
        return overlapped

    def offchip_floor(self, case: _Case) -> np.ndarray:
        bw = self.hw.offchip_bw_elems_per_cycle
        floor: np.ndarray = np.maximum((case.in_req // bw) // 2, (case.out_req // bw) // 2)
        return floor

    def runtime(self, key: _Key) -> np.ndarray:
        """Runtime of a level below the top (only that is needed from it)."""
        found = self.runtimes.get(key)
        if found is None:
            level = key[0]
            found = np.zeros(len(self.hw), dtype=np.int64)
            for case in self.model.traces[key]:
                found += (case.occ * case.count) * self.step(level, case, self.compute(case))
            self.runtimes[key] = found
        return found

    def top(self) -> TopArrays:
        """Every hardware-dependent field of the top level."""
        n = len(self.hw)
        zero = np.zeros(n, dtype=np.int64)
        runtime, peak, weighted, offchip_max = zero.copy(), zero.copy(), zero.copy(), zero.copy()
        # Per delay: [lowest or None, highest or None, weighted sum].
        stats: dict[str, list[Any]] = {
            name: [None, None, zero.copy()] for name in ("ingress", "egress", "compute")
        }
        total = 0
        for case in self.model.traces[self.model.top_key]:
            compute = self.compute(case)
            step = np.maximum(self.step(0, case, compute), self.offchip_floor(case))
            case_req = np.maximum(case.out_req // compute, case.in_req // compute)
            offchip_max = np.maximum(offchip_max, case_req)
            weight = case.occ * case.count
            runtime += weight * step
            busy = np.maximum(compute, 1)
            biggest = max(case.ingress, case.egress)
            peak = np.maximum(peak, biggest // busy)
            weighted += case.count * ((case.occ * biggest) // busy)
            values = {
                "ingress": self.delay(0, case.ingress),
                "egress": self.delay(0, case.egress),
                "compute": busy,
            }
            for name, value in values.items():
                low, high, acc = stats[name]
                stats[name][0] = value if low is None else np.minimum(low, value)
                stats[name][1] = value if high is None else np.maximum(high, value)
                acc += weight * value
            total += weight
        out = {}
        for name, (low, high, acc) in stats.items():
            if total == 0:
                out[name] = (zero, zero, zero)
            else:
                # C division truncates toward zero (a delay is -1 for an empty transfer).
                mean = np.where(acc < 0, -((-acc) // total), acc // total)
                out[name] = (low, high, mean)
        return TopArrays(
            runtime=runtime,
            peak_bw=peak,
            avg_bw=weighted / total if total else np.full(n, np.nan),
            offchip_req=offchip_max // 2,
            ingress=out["ingress"],
            egress=out["egress"],
            compute=out["compute"],
        )


class VectorModel:
    """One layer under one mapping on ``num_pes`` PEs, ready to evaluate any number of
    (NoC bandwidth, NoC latency, off-chip bandwidth, SIMD lanes) points. Fixed mode only.

    Raises :class:`metronome.spec.SpecError` exactly when :func:`metronome.analytic.analyze` would
    for every
    such point (the mapping does not fit the PEs, or no unit computes an output).
    """

    def __init__(self, layer: Layer, mapping: Mapping, num_pes: int) -> None:
        probe = Hardware(num_pes=num_pes)
        problem, self.base = run_problem(layer, mapping, probe, FIXED)
        self.layer = layer
        self.num_pes = num_pes
        self.nested_noc_charged = MAESTRO_ASSUMPTIONS.nested_noc_charged
        ctx = _Context(
            problem=problem,
            models=_level_models(problem, FIXED),
            nocs=(NocLevel(1, 0),) * len(problem.levels),
            simd_lanes=1,
            offchip_bw=1,
            quirks=FIXED,
            strides=dict(problem.strides),
            assumptions=MAESTRO_ASSUMPTIONS,
        )
        self.top_key: _Key = (0, problem.level_dims[0])
        self.traces: dict[_Key, tuple[_Case, ...]] = {}
        _trace(ctx, self.traces, self.top_key)

    def evaluate(self, hw: HardwareArrays) -> TopArrays:
        """The hardware-dependent top-level fields for every point of ``hw``."""
        return _Evaluation(self, hw).top()

    def level_result(self, arrays: TopArrays, i: int) -> LevelResult:
        """The engine's top-level result of design ``i`` of an evaluation."""

        def delays(triple: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Delays:
            return Delays(int(triple[0][i]), int(triple[1][i]), int(triple[2][i]))

        return replace(
            self.base,
            runtime=int(arrays.runtime[i]),
            peak_bw=int(arrays.peak_bw[i]),
            avg_bw=float(arrays.avg_bw[i]),
            offchip_req=int(arrays.offchip_req[i]),
            ingress=delays(arrays.ingress),
            egress=delays(arrays.egress),
            compute=delays(arrays.compute),
        )
