"""Evaluation of a design space in chunks: the vectorised fixed model, constraints,
and each chunk's Pareto front over runtime, energy and chip area.

A design is a mapping variant, a PE count, the hardware the closed form reads (NoC
bandwidth, hops, hop latency, off-chip bandwidth, SIMD lanes: the "relevant" axes) and
what it does not read (L1, L2, topology: the "inner" axes, varying fastest). For one
mapping variant and PE count (a *structure*) :class:`metronome.analytic.vectorised.VectorModel`
evaluates every relevant combination at once; the inner axes only decide feasibility
(the mapping's L1/L2 needs must fit) and the chip area, per design.

Metrics of a design over several layers are network totals: runtime, energy and MACs
summed in layer order, buffer and bandwidth needs the worst layer's.
``chip_area_um2`` is MAESTRO's area model (:func:`metronome.analytic.report.hardware_cost`) of the
configured chip: its PEs, lanes, NoC bandwidth, L1 and L2 *sizes*.

Every chunk result depends only on the space and the chunk's index, so the merged
front is the same whatever runs the chunks.
"""

from __future__ import annotations

import ast
from collections import OrderedDict
from dataclasses import dataclass
from math import prod

import numpy as np

from metronome.analytic.report import (
    _ARBITER_AREA,
    _ARBITER_C0,
    _ARBITER_C1,
    _ARBITER_C2,
    _BUS_AREA,
    _BUS_C0,
    _BUS_C1,
    _MAC_AREA,
    _SRAM_AREA,
    access_counts,
)
from metronome.analytic.vectorised import HardwareArrays, TopArrays, VectorModel
from metronome.spec.energy import energy_table
from metronome.spec.hardware import UNBOUNDED
from metronome.spec.source import SpecError
from metronome.spec.space import SweepSpace

__all__ = [
    "FRONT_COLUMNS",
    "INFEASIBLE_REASONS",
    "Layout",
    "evaluate_chunk",
    "merge_fronts",
    "pareto_mask",
]

RELEVANT = ("noc_bw", "noc_hops", "hop_latency", "offchip_bw", "lanes")
INNER = ("l1", "l2", "topology")
FRONT_COLUMNS: tuple[str, ...] = (
    "design",
    "runtime_cycles",
    "energy_nj",
    "chip_area_um2",
    "macs",
    "l1_size_req_elems",
    "l2_size_req_elems",
    "noc_bw_req_peak_elems_per_cycle",
    "offchip_bw_req_elems_per_cycle",
)
"""Columns of a front (design index first)."""
INFEASIBLE_REASONS: tuple[str, ...] = ("mapping", "l1", "l2", "constraints")
"""Why a design is infeasible, first that applies: the mapping cannot run on its PEs
(SpecError), its L1 or L2 needs exceed the configured size, a constraint fails."""
_NO_RUNTIME = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class Layout:
    """Sizes of the mixed-radix design index: mapping variants, PE counts, relevant
    combinations, inner combinations."""

    mappings: int
    pes: int
    relevant: int
    inner: int

    @classmethod
    def of(cls, space: SweepSpace) -> Layout:
        """The layout of ``space``."""
        sizes = {a.name: len(a.values) for a in space.hardware_axes}
        return cls(
            mappings=space.mappings,
            pes=sizes["pes"],
            relevant=prod(sizes[n] for n in RELEVANT),
            inner=prod(sizes[n] for n in INNER),
        )

    @property
    def designs(self) -> int:
        """Designs in the space."""
        return self.mappings * self.pes * self.relevant * self.inner


@dataclass(frozen=True, slots=True)
class _Structure:
    """One mapping variant on one PE count, over every relevant combination."""

    error: str
    runtime: np.ndarray
    peak_bw: np.ndarray
    offchip_req: np.ndarray
    energy_nj: float
    macs: int
    l1_req: int
    l2_req: int


def _relevant_hardware(space: SweepSpace) -> HardwareArrays:
    """Every relevant combination in index order (lanes fastest)."""
    values = [np.asarray(space.axis(n).values, dtype=np.int64) for n in RELEVANT]
    grids = np.meshgrid(*values, indexing="ij")
    bw, hops, hop_latency, offchip, lanes = (g.ravel() for g in grids)
    return HardwareArrays(
        noc_bw_elems_per_cycle=bw,
        noc_latency_cycles=hops * hop_latency,
        offchip_bw_elems_per_cycle=offchip,
        simd_lanes=lanes,
    )


def _structure(space: SweepSpace, mapping_index: int, num_pes: int) -> _Structure:
    hw = _relevant_hardware(space)
    n = len(hw)
    empty = np.zeros(n, dtype=np.int64)
    table = energy_table("maestro")
    try:
        network = space.network_for(mapping_index)
        runtime, peak, offchip = empty.copy(), empty.copy(), empty.copy()
        energy, macs, l1_req, l2_req = 0.0, 0, 0, 0
        seen: dict[tuple[object, ...], tuple[VectorModel, TopArrays]] = {}
        for entry in network.layers:
            layer = entry.layer
            # Repeated blocks (ResNet's) are the same problem: evaluate it once.
            key = (layer.type, layer.sizes, layer.stride_x, layer.stride_y, str(entry.mapping))
            if key not in seen:
                model = VectorModel(layer, entry.require_mapping(), num_pes)
                seen[key] = (model, model.evaluate(hw))
            model, arrays = seen[key]
            runtime += arrays.runtime
            peak = np.maximum(peak, arrays.peak_bw)
            offchip = np.maximum(offchip, arrays.offchip_req)
            base = model.base
            # The maestro table prices no NoC hop, so a design's hops cannot change this.
            outputs = prod(layer.size(d) for d in layer.tensor("output").dims)
            energy += table.energy_nj(access_counts(base, 1, outputs))
            macs += base.macs
            l1_req = max(l1_req, sum(base.innermost_l1_size_req))
            l2_req = max(l2_req, sum(base.l2_size_req))
    except SpecError as exc:
        return _Structure(exc.first.message, empty, empty, empty, 0.0, 0, 0, 0)
    return _Structure("", runtime, peak, offchip, energy, macs, l1_req, l2_req)


class _Cache:
    """The structures a worker evaluated last (chunks are contiguous, so a few)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, int, int], _Structure] = OrderedDict()

    def get(self, space: SweepSpace, mapping_index: int, num_pes: int) -> _Structure:
        key = (space.fingerprint, mapping_index, num_pes)
        found = self.items.get(key)
        if found is None:
            found = _structure(space, mapping_index, num_pes)
            self.items[key] = found
            if len(self.items) > self.size:
                self.items.popitem(last=False)
        else:
            self.items.move_to_end(key)
        return found


_CACHE = _Cache()


def _area_terms(space: SweepSpace) -> dict[str, np.ndarray]:
    """Per-value terms of MAESTRO's area model, in :func:`hardware_cost`'s order."""
    l1 = np.asarray(space.axis("l1").values, dtype=np.float64)
    l2 = np.asarray(space.axis("l2").values, dtype=np.float64)
    return {"l1": _SRAM_AREA * l1, "l2": _SRAM_AREA * l2}


def _outer_area(pes: np.ndarray, noc_bw: np.ndarray) -> np.ndarray:
    """Bus plus arbiter area of each design (``hardware_cost``'s last term)."""
    p = pes.astype(np.float64)
    bw = np.minimum(noc_bw, UNBOUNDED)
    bus_scale = _BUS_C1 * p + _BUS_C0
    arbiter_scale = _ARBITER_C2 * p**2 + _ARBITER_C1 * p + _ARBITER_C0
    bus_area = _BUS_AREA * bus_scale * bw
    arbiter_area = np.maximum(_ARBITER_AREA * arbiter_scale, _ARBITER_AREA)
    return bus_area + arbiter_area


class _Outer:
    """Per outer index (mapping, PEs, relevant combination) of a chunk: the structure's
    numbers and the relevant hardware."""

    def __init__(self, space: SweepSpace, layout: Layout, lo: int, hi: int) -> None:
        relevant = _relevant_hardware(space)
        pes_values = space.axis("pes").values
        parts: dict[str, list[np.ndarray]] = {
            k: []
            for k in (
                "ok",
                "runtime",
                "peak",
                "offchip",
                "energy",
                "macs",
                "l1_req",
                "l2_req",
                "pes",
                "rel",
            )
        }
        self.errors: list[str] = []
        o = lo
        while o < hi:
            s, rel = divmod(o, layout.relevant)
            stop = min(hi, (s + 1) * layout.relevant)
            take = slice(rel, rel + stop - o)
            m, pi = divmod(s, layout.pes)
            pes = int(pes_values[pi])
            st = _CACHE.get(space, m, pes)
            count = stop - o
            if st.error:
                self.errors.append(st.error)
            parts["ok"].append(np.full(count, not st.error))
            parts["runtime"].append(st.runtime[take])
            parts["peak"].append(st.peak_bw[take])
            parts["offchip"].append(st.offchip_req[take])
            parts["energy"].append(np.full(count, st.energy_nj))
            parts["macs"].append(np.full(count, st.macs, dtype=np.int64))
            parts["l1_req"].append(np.full(count, st.l1_req, dtype=np.int64))
            parts["l2_req"].append(np.full(count, st.l2_req, dtype=np.int64))
            parts["pes"].append(np.full(count, pes, dtype=np.int64))
            parts["rel"].append(np.arange(take.start, take.stop, dtype=np.int64))
            o = stop
        joined = {k: np.concatenate(v) for k, v in parts.items()}
        self.ok = joined["ok"]
        self.runtime = joined["runtime"]
        self.peak = joined["peak"]
        self.offchip = joined["offchip"]
        self.energy = joined["energy"]
        self.macs = joined["macs"]
        self.l1_req = joined["l1_req"]
        self.l2_req = joined["l2_req"]
        self.pes = joined["pes"]
        rel = joined["rel"]
        self.lanes = relevant.simd_lanes[rel]
        self.noc_bw = relevant.noc_bw_elems_per_cycle[rel]
        self.relevant_index = rel
        self.lanes_area = _MAC_AREA * self.lanes
        self.bus_arbiter_area = _outer_area(self.pes, self.noc_bw)


def _constraint_value(node: ast.AST, names: dict[str, np.ndarray]) -> np.ndarray:
    """Evaluate a checked constraint expression elementwise."""
    if isinstance(node, ast.Expression):
        return _constraint_value(node.body, names)
    if isinstance(node, ast.Constant):
        return np.asarray(node.value)
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.UnaryOp):
        value = _constraint_value(node.operand, names)
        if isinstance(node.op, ast.Not):
            return ~value.astype(bool)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        a, b = _constraint_value(node.left, names), _constraint_value(node.right, names)
        op = type(node.op)
        if op is ast.Add:
            return a + b
        if op is ast.Sub:
            return a - b
        if op is ast.Mult:
            return a * b
        if op is ast.Div:
            return np.true_divide(a, b)
        if op is ast.FloorDiv:
            return np.floor_divide(a, b)
        if op is ast.Mod:
            return np.mod(a, b)
        return np.power(a, b)
    if isinstance(node, ast.BoolOp):
        values = [_constraint_value(v, names).astype(bool) for v in node.values]
        out = values[0]
        for v in values[1:]:
            out = (out & v) if isinstance(node.op, ast.And) else (out | v)
        return out
    assert isinstance(node, ast.Compare)
    left = _constraint_value(node.left, names)
    result: np.ndarray | None = None
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _constraint_value(right_node, names)
        kind = type(op)
        if kind is ast.Lt:
            part = left < right
        elif kind is ast.LtE:
            part = left <= right
        elif kind is ast.Gt:
            part = left > right
        elif kind is ast.GtE:
            part = left >= right
        elif kind is ast.Eq:
            part = left == right
        else:
            part = left != right
        result = part if result is None else result & part
        left = right
    assert result is not None
    return result


def _used_names(space: SweepSpace) -> set[str]:
    return {n.id for c in space.constraints for n in ast.walk(c.tree) if isinstance(n, ast.Name)}


def _outer_digits(space: SweepSpace, layout: Layout, outer: np.ndarray) -> dict[str, np.ndarray]:
    """The value index of every mapping, PE and relevant axis for outer indices."""
    out: dict[str, np.ndarray] = {}
    rest = outer
    for axis in reversed(space.axes):
        if axis.name in INNER:
            continue
        rest, out[axis.name] = np.divmod(rest, len(axis.values))
    return out


def chunk_range(space: SweepSpace, index: int) -> tuple[int, int]:
    """Outer indices ``[lo, hi)`` of chunk ``index``: whole outer groups, about
    ``chunk_designs`` designs (at least one group)."""
    layout = Layout.of(space)
    groups = max(1, space.chunk_designs // layout.inner)
    outers = layout.designs // layout.inner
    return index * groups, min(outers, (index + 1) * groups)


def chunk_count(space: SweepSpace) -> int:
    """How many chunks ``space`` is evaluated in."""
    layout = Layout.of(space)
    groups = max(1, space.chunk_designs // layout.inner)
    return -(-(layout.designs // layout.inner) // groups)


def evaluate_chunk(space: SweepSpace, index: int) -> dict[str, np.ndarray]:
    """Chunk ``index`` of ``space``: counts, infeasibility reasons, sensitivity per axis
    value (best runtime and feasible designs) and the chunk's Pareto front.

    Arrays are (outer index, inner index): designs ``o * inner + j``.
    """
    layout = Layout.of(space)
    o_lo, o_hi = chunk_range(space, index)
    outer = _Outer(space, layout, o_lo, o_hi)
    n_l1, n_l2, n_top = (len(space.axis(n).values) for n in INNER)
    inner_shape = (n_l1, n_l2, n_top)
    l1_values = np.asarray(space.axis("l1").values, dtype=np.int64)
    l2_values = np.asarray(space.axis("l2").values, dtype=np.int64)
    # Inner value indices in design order (topology fastest), as (1, inner) rows.
    l1_i = np.repeat(np.arange(n_l1), n_l2 * n_top)[None, :]
    l2_i = np.tile(np.repeat(np.arange(n_l2), n_top), n_l1)[None, :]
    terms = _area_terms(space)
    col = np.s_[:, None]
    area = (outer.lanes_area[col] + terms["l1"][l1_i]) * outer.pes[col] + terms["l2"][l2_i]
    area += outer.bus_arbiter_area[col]
    n_designs = area.size
    ok = np.broadcast_to(outer.ok[col], area.shape)
    fits_l1 = outer.l1_req[col] <= l1_values[l1_i]
    fits_l2 = outer.l2_req[col] <= l2_values[l2_i]
    reasons = np.zeros(len(INFEASIBLE_REASONS), dtype=np.int64)
    n_ok = int(outer.ok.sum()) * layout.inner
    reasons[0] = n_designs - n_ok
    feasible = ok & fits_l1
    n_fit1 = int(feasible.sum())
    reasons[1] = n_ok - n_fit1
    feasible &= fits_l2
    n_fit2 = int(feasible.sum())
    reasons[2] = n_fit1 - n_fit2
    used = _used_names(space)
    if used:
        digits = _outer_digits(space, layout, np.arange(o_lo, o_hi, dtype=np.int64))
        inner_digits = {"l1": l1_i, "l2": l2_i}
        names: dict[str, np.ndarray] = {}
        for name in used:
            if name == "runtime_cycles":
                names[name] = outer.runtime[col]
            elif name == "energy_nj":
                names[name] = outer.energy[col]
            elif name == "chip_area_um2":
                names[name] = area
            elif name == "l1_size_req_elems":
                names[name] = outer.l1_req[col]
            elif name == "l2_size_req_elems":
                names[name] = outer.l2_req[col]
            else:
                values = np.asarray(space.axis(name).values, dtype=np.int64)
                if name in inner_digits:
                    names[name] = values[inner_digits[name]]
                else:
                    names[name] = values[digits[name]][col]
        for constraint in space.constraints:
            feasible &= _constraint_value(constraint.tree, names).astype(bool)
        reasons[3] = n_fit2 - int(feasible.sum())
    # Designs of one outer index share runtime and energy: only its smallest feasible
    # chip can be on the front.
    masked = np.where(feasible, area, np.inf)
    smallest = masked.min(axis=1)
    o_rows, j_cols = np.nonzero(feasible & (masked == smallest[col]))
    front = {
        "design": (o_lo + o_rows) * layout.inner + j_cols,
        "runtime_cycles": outer.runtime[o_rows],
        "energy_nj": outer.energy[o_rows],
        "chip_area_um2": area[o_rows, j_cols],
        "macs": outer.macs[o_rows],
        "l1_size_req_elems": outer.l1_req[o_rows],
        "l2_size_req_elems": outer.l2_req[o_rows],
        "noc_bw_req_peak_elems_per_cycle": outer.peak[o_rows],
        "offchip_bw_req_elems_per_cycle": outer.offchip[o_rows],
    }
    keep = pareto_mask(front["runtime_cycles"], front["energy_nj"], front["chip_area_um2"])
    result = {f"front.{k}": v[keep] for k, v in front.items()}
    result["designs"] = np.asarray([n_designs], dtype=np.int64)
    result["feasible"] = np.asarray([int(feasible.sum())], dtype=np.int64)
    result["reasons"] = reasons
    per_value = feasible.reshape(len(outer.ok), *inner_shape)
    result.update(_sensitivity(space, layout, o_lo, o_hi, outer.runtime, per_value))
    first_error = outer.errors[0] if outer.errors else ""
    result["error"] = np.asarray([first_error])
    return result


def _sensitivity(
    space: SweepSpace,
    layout: Layout,
    o_lo: int,
    o_hi: int,
    runtime: np.ndarray,
    feasible: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per axis and value: the best feasible runtime and how many designs are feasible
    (``feasible`` shaped (outer, l1, l2, topology))."""
    out = {}
    per_outer = feasible.sum(axis=(1, 2, 3))
    reached = np.where(per_outer > 0, runtime, _NO_RUNTIME)
    digits = _outer_digits(space, layout, np.arange(o_lo, o_hi, dtype=np.int64))
    for axis in space.axes:
        k = len(axis.values)
        if axis.name in INNER:
            position = 1 + INNER.index(axis.name)
            others = tuple(a for a in (1, 2, 3) if a != position)
            counts = feasible.sum(axis=(0, *others))
            any_here = np.moveaxis(feasible.any(axis=others), 0, 0)
            best = np.where(any_here, runtime[:, None], _NO_RUNTIME).min(axis=0)
        else:
            best = np.full(k, _NO_RUNTIME, dtype=np.int64)
            np.minimum.at(best, digits[axis.name], reached)
            counts = np.bincount(digits[axis.name], weights=per_outer, minlength=k)
        out[f"best.{axis.name}"] = best.astype(np.int64)
        out[f"count.{axis.name}"] = counts.astype(np.int64)
    return out


def pareto_mask(runtime: np.ndarray, energy: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Which points no other point dominates (no worse in all three, better in one);
    identical points are all kept. O(n log n) per distinct energy value."""
    n = len(runtime)
    if n == 0:
        return np.zeros(0, dtype=bool)
    r = runtime.astype(np.float64)
    order = np.lexsort((area, r, energy))
    r_s, e_s, a_s = r[order], energy[order], area[order]
    keep = np.zeros(n, dtype=bool)
    starts = np.flatnonzero(np.r_[True, e_s[1:] != e_s[:-1]])
    ends = np.r_[starts[1:], n]
    stair_r = np.zeros(0)
    stair_a = np.zeros(0)
    for s, t in zip(starts, ends, strict=True):
        gr, ga = r_s[s:t], a_s[s:t]
        new_block = np.r_[True, (gr[1:] != gr[:-1]) | (ga[1:] != ga[:-1])]
        block = np.cumsum(new_block) - 1
        block_start = np.flatnonzero(new_block)
        running = np.minimum.accumulate(ga)
        before = np.where(block_start > 0, running[np.maximum(block_start - 1, 0)], np.inf)
        ok = before[block] > ga
        if stair_r.size:
            j = np.searchsorted(stair_r, gr, side="right") - 1
            ok &= ~((j >= 0) & (stair_a[np.maximum(j, 0)] <= ga))
        keep[s:t] = ok
        if ok.any():
            cand_r = np.r_[stair_r, gr[ok]]
            cand_a = np.r_[stair_a, ga[ok]]
            o = np.lexsort((cand_a, cand_r))
            cand_r, cand_a = cand_r[o], cand_a[o]
            prior = np.r_[np.inf, np.minimum.accumulate(cand_a)[:-1]]
            step = cand_a < prior
            stair_r, stair_a = cand_r[step], cand_a[step]
    out = np.zeros(n, dtype=bool)
    out[order] = keep
    return out


def merge_fronts(fronts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The Pareto front of several fronts, sorted by runtime, energy, area, design."""
    joined = {c: np.concatenate([f[c] for f in fronts]) for c in FRONT_COLUMNS}
    keep = pareto_mask(joined["runtime_cycles"], joined["energy_nj"], joined["chip_area_um2"])
    kept = {c: v[keep] for c, v in joined.items()}
    order = np.lexsort(
        (kept["design"], kept["chip_area_um2"], kept["energy_nj"], kept["runtime_cycles"])
    )
    return {c: v[order] for c, v in kept.items()}
