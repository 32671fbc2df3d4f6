"""Traffic and work of one iteration case at one cluster level.

Per-unit volumes (MAESTRO's reuse analysis):

* *Ingress* of an input/weight tensor T. In the all-Init case every unit loads its whole
  tile. Otherwise let d* be the changing directive (the innermost one not at Init). If
  T has no dimension on d*, T is stationary and nothing is fetched. If it has, the tile
  is re-fetched whole when a T-dimension after d* sits at Init without covering its
  dimension (the tile was reset); otherwise only the new part is fetched: d*'s extent
  becomes ``unique(d*) = min(m, o)`` (sliding-window reuse).
* *Spatial distribution.* If T has no dimension on a SpatialMap it is multicast: one
  tile for all units. Otherwise the first unit pays its full tile and each other unit
  only the part it does not share with its neighbour (``unique``) on the spatial
  dimension when that dimension is changing or was reset, else its full tile.
* *Egress* of the output: the output tile (``Y'``/``X'`` extents) of the first unit
  plus, when an output dimension is spatially mapped, the other units' unique tiles.
  Units that differ only in a reduction dimension are reduced for free: one tile.
* *MACs*: per-unit MACs = extents of all non-output directives x the output tile.

At a spatial edge only ``E`` units are active (E from the level's static dimensions);
when the last one is only partly filled it gets edge extents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter

from metronome.spec.window import OUTPUT_OF

from .cases import EDGE, INIT, STEADY, State
from .deviations import Quirks
from .problem import LevelDirective, Tensor
from .tiles import Tiles

__all__ = [
    "WRAP_KEPT",
    "WRAP_LOST",
    "LevelModel",
    "TensorView",
    "case_codes",
    "changing_directive",
    "full_unit_tile",
    "mapped_volume",
    "output_traffic",
    "spatial_ingress",
    "sub_level_dims",
    "tile_refetched",
    "unit_new_part",
    "unit_tile",
]


WRAP_KEPT, WRAP_LOST = 1, 2
"""What a unit holds of a tile its inner loops wrapped back to (see ``spatial_ingress``)."""


@dataclass(frozen=True, slots=True)
class TensorView:
    """A tensor seen from one level: which directives index it, in two orders."""

    tensor: Tensor
    coupled: tuple[int, ...]
    """Indices of the directives on the tensor's dimensions, in directive order."""
    by_tensor_dim: tuple[tuple[str, int, str], ...]
    """(dimension, its directive index, counted dimension) in tensor order; the counted
    dimension is ``Y'``/``X'`` for the output's ``Y``/``X``."""
    order: tuple[int, ...]
    """The directive indices of ``by_tensor_dim``."""


@dataclass(frozen=True, slots=True)
class LevelModel:
    """One cluster level, ready for case-by-case analysis."""

    index: int
    units: int
    edge_units: int
    directives: tuple[LevelDirective, ...]
    dims: dict[str, int]
    tiles: Tiles
    inputs: tuple[TensorView, ...]
    output: TensorView
    first_spatial: int
    spatial: tuple[int, ...]
    non_output: tuple[int, ...]
    """Directives on dimensions that do not index the output (reductions)."""
    innermost: bool
    quirks: Quirks


def _spatial_info(
    model: LevelModel, states: tuple[State, ...], indices: tuple[int, ...]
) -> tuple[bool, State | None, bool]:
    """(spatially mapped, state of the last spatial directive seen, any at an edge)."""
    mapped, last, edge = False, None, False
    for i in indices:
        if model.directives[i].spatial:
            mapped, last = True, states[i]
            edge = edge or last.is_edge
    return mapped, last, edge


def _pe_mapped(
    model: LevelModel, states: tuple[State, ...], view: TensorView, first: bool, ee: bool
) -> int:
    """The whole tile of ``view`` held by one unit."""
    t, e_units = model.tiles, model.edge_units
    ret = 1
    for i in view.coupled:
        d, st = model.directives[i], states[i]
        if not d.spatial:
            ret *= t.mapped_edge[d.dim] if st.is_edge else t.mapped[d.dim]
        elif st.is_edge:
            if e_units == 1 and (first or ee):
                ret *= t.mapped_edge[d.dim]
            elif e_units > 1:
                ret *= t.mapped_edge[d.dim] if ee else t.mapped[d.dim]
        else:
            ret *= t.mapped[d.dim]
    return ret


def _pe_ingress(
    model: LevelModel,
    states: tuple[State, ...],
    changing: int,
    view: TensorView,
    first: bool,
    ee: bool,
    wrap: int = 0,
    kept: tuple[bool, ...] = (),
) -> int:
    """Elements of ``view`` one unit fetches in this case (see the module docstring;
    ``wrap`` says what a unit still holds of the tile its inner loops wrapped back to;
    ``kept[i]``: the unit still holds what it touched at temporal directive ``i``'s
    previous position, so an outer directive that advanced adds only its new part)."""
    if changing < 0:
        whole = _pe_mapped(model, states, view, first, ee)
        return _halo_shared(model, view, whole, ee) if kept and not first else whole
    if changing not in view.coupled:
        refetched = tile_refetched(states, changing, view, wrap)
        return _pe_mapped(model, states, view, first, ee) if refetched else 0
    return _pe_ingress_pair(model, states, changing, view, ee, wrap, kept)[0 if first else 1]


def tile_refetched(states: tuple[State, ...], changing: int, view: TensorView, wrap: int) -> bool:
    """Whether a unit fetches its whole tile of ``view`` again although the changing
    loop does not index it: a loop inside it over the tensor wrapped back to its first
    position (not one that covers its dimension) and the unit lost what it held."""
    return wrap == WRAP_LOST and _wrapped(states, changing, view)


def _wrapped(states: tuple[State, ...], changing: int, view: TensorView) -> bool:
    """Whether a loop inside the changing one over the tensor went back to its first
    position (one that covers its dimension does not move)."""
    for i in view.coupled:
        if i > changing:
            state = states[i]
            if state.position == INIT and not state.unrolled:
                return True
    return False


def _pe_ingress_pair(
    model: LevelModel,
    states: tuple[State, ...],
    changing: int,
    view: TensorView,
    ee: bool,
    wrap: int = 0,
    kept: tuple[bool, ...] = (),
) -> tuple[int, int]:
    """:func:`_pe_ingress` of the first unit and of a further one, in one pass."""
    if changing < 0:
        whole = _pe_mapped(model, states, view, True, ee)
        other = _pe_mapped(model, states, view, False, ee)
        return whole, _halo_shared(model, view, other, ee) if kept else other
    coupled = view.coupled
    if changing not in coupled:
        if tile_refetched(states, changing, view, wrap):
            return _pe_mapped(model, states, view, True, ee), _pe_mapped(
                model, states, view, False, ee
            )
        return 0, 0
    reset = wrap != WRAP_KEPT and _wrapped(states, changing, view)
    t = model.tiles
    mapped, mapped_edge, directives = t.mapped, t.mapped_edge, model.directives
    full_edge_tile = model.quirks.temporal_edge_ingress_full_tile
    first = other = 1
    for i in coupled:
        d, st = directives[i], states[i]
        dim, pos = d.dim, st.position
        if not d.spatial:
            if pos == INIT:
                f = mapped_edge[dim] if st.is_edge else mapped[dim]
            elif pos == EDGE and not full_edge_tile:
                if (i == changing and not reset) or (i < changing and kept and kept[i]):
                    f = max(t.unique_edge[dim], 1)
                else:
                    f = mapped_edge[dim]
            elif (i == changing and not reset) or (i < changing and kept and kept[i]):
                f = max(t.unique[dim], 1)
            else:
                f = mapped[dim]
            first *= f
            other *= f
            continue
        full = mapped_edge[dim] if ee else mapped[dim]
        part = t.unique_edge[dim] if ee else t.unique[dim]
        if kept and dim in _SLIDING_DIMS and 0 < d.offset < full and part > 0:
            # Units fetching in one step share one multicast of their overlap: a further
            # unit adds what its neighbour does not hold; a fold that moved adds, at the
            # first unit, only the rows past the previous fold's last unit.
            moved = i == changing and not reset
            first *= part if moved else full
            other *= part
        else:
            first *= full
            if pos == INIT:
                other *= full if i <= changing else part
            else:
                other *= part if (i == changing and not reset) else full
    return first, other


_SLIDING_DIMS = ("Y", "X")


def _halo_shared(model: LevelModel, view: TensorView, whole: int, ee: bool) -> int:
    """A further unit's first tile without the rows its neighbour's tile already
    brings (the same multicast) along an overlapping sliding spatial map."""
    t = model.tiles
    for i in view.coupled:
        d = model.directives[i]
        full = t.mapped_edge[d.dim] if ee else t.mapped[d.dim]
        part = t.unique_edge[d.dim] if ee else t.unique[d.dim]
        if d.spatial and d.dim in _SLIDING_DIMS and 0 < d.offset < full and part > 0:
            return whole // full * part
    return whole


def _pe_egress(
    model: LevelModel,
    states: tuple[State, ...],
    psums: bool,
    first: bool,
    ee: bool,
    reuse_at_edge: bool = True,
) -> int:
    """One unit's output tile (``psums``: times its reduction extents, i.e. its MACs)."""
    ret = _pe_output_tile(model, states, first, ee, reuse_at_edge)
    return ret * _pe_reduction_extent(model, states, first, ee) if psums else ret


def _pe_reduction_extent(
    model: LevelModel, states: tuple[State, ...], first: bool, ee: bool
) -> int:
    """One unit's extents of the reduction dimensions (its MACs per output)."""
    t, e_units, directives = model.tiles, model.edge_units, model.directives
    ret = 1
    for i in model.non_output:
        d, st = directives[i], states[i]
        dim = d.dim
        if not d.spatial:
            ret *= t.mapped_edge[dim] if st.is_edge else t.mapped[dim]
            continue
        ret *= _spatial_extent(t, e_units, st, dim, dim, first, ee, psum_edge=True)
    return ret


def _pe_output_tile(
    model: LevelModel, states: tuple[State, ...], first: bool, ee: bool, reuse_at_edge: bool
) -> int:
    """One unit's output tile in output coordinates."""
    t, e_units, directives = model.tiles, model.edge_units, model.directives
    ret = 1
    for dim, i, counted in model.output.by_tensor_dim:
        d, st = directives[i], states[i]
        if not d.spatial:
            pos = st.position
            if pos == INIT:
                ret *= t.mapped_edge.get(counted, 0) if st.is_edge else t.mapped.get(counted, 0)
            elif pos == STEADY:
                ret *= t.mapped.get(counted, 0)
            else:
                ret *= t.mapped_edge.get(counted, 0)
            continue
        if st.position == EDGE and e_units == 1 and (first or ee):
            slip = model.quirks.edge_output_uses_input_extent
            ret *= t.mapped_edge.get(dim if slip else counted, 0)
            continue
        ret *= _spatial_extent(
            t, e_units, st, counted, counted, first, ee, psum_edge=False, reuse=reuse_at_edge
        )
    return ret


def _spatial_extent(
    t: Tiles,
    e_units: int,
    st: State,
    dim: str,
    counted: str,
    first: bool,
    ee: bool,
    *,
    psum_edge: bool,
    reuse: bool = True,
) -> int:
    """Extent of a spatially mapped dimension in one unit's output/MAC tile."""
    unique = t.unique.get(counted, 0)
    rest = unique if unique != 0 else 1
    if st.position == INIT:
        if st.is_edge and ee:
            if e_units == 1:
                return t.mapped_edge.get(counted, 0)
            if e_units > 1:
                if psum_edge or not reuse:
                    return t.mapped_edge.get(counted, 0)
                return t.unique_edge.get(counted, 0)
            return 1
        return t.mapped.get(counted, 0) if first else rest
    if st.position == STEADY:
        return t.mapped.get(counted, 0) if first else rest
    if e_units == 1 and (first or ee):
        return t.mapped_edge.get(dim, 0)
    if e_units > 1:
        if ee:
            return t.unique_edge.get(counted, 0)
        return t.mapped.get(counted, 0) if first else rest
    return 1


def changing_directive(states: tuple[State, ...]) -> int:
    """Index of the innermost directive not at Init, or -1 in the all-Init case."""
    for i in range(len(states) - 1, -1, -1):
        if states[i].position != INIT:
            return i
    return -1


def _over_units(
    model: LevelModel,
    sp_state: State | None,
    at_edge: bool,
    unit: Callable[[bool, bool], int],
    *,
    others_as_first: bool = False,
    partial_unit: Callable[[], int] | None = None,
) -> int:
    """Sum ``unit(first, partial)`` over the units active in this case.

    No spatial dimension: one unit (multicast). Otherwise the first unit plus the other
    ``U - 1``; at a spatial edge only E units are active and, when the last one is only
    partly filled, it is counted with edge extents (``unit(False, True)``, or
    ``partial_unit()``); a lone edge unit that is partial is the first unit itself.
    """
    if sp_state is None:
        return unit(True, False)
    if not at_edge:
        if others_as_first:
            return model.units * unit(True, False)
        ret = unit(True, False)
        if model.units > 1:
            ret += (model.units - 1) * unit(False, False)
        return ret
    has_partial = sp_state.partial_last_unit
    e_units = model.edge_units
    ret = unit(True, e_units == 1 and has_partial)
    if e_units > 1:
        n_partial = 1 if has_partial else 0
        n_full = max(e_units - n_partial - 1, 0)
        if n_full:
            ret += n_full * unit(others_as_first, False)
        if n_partial:
            ret += partial_unit() if partial_unit is not None else unit(False, True)
    return ret


def spatial_ingress(
    model: LevelModel,
    states: tuple[State, ...],
    changing: int,
    view: TensorView,
    wrap: int = 0,
    kept: tuple[bool, ...] = (),
) -> int:
    """Elements of an input/weight tensor sent from the upper buffer to all units.

    ``wrap`` is what happens when loops inside the changing one over the tensor's
    dimensions wrapped back to their first position: MAESTRO's rule (0: the tile is
    refetched whole when the changing loop indexes the tensor, else nothing is fetched),
    ``WRAP_KEPT`` (the unit still holds what it touched one inner sweep ago: only the
    changing loop's new part is fetched) or ``WRAP_LOST`` (it holds none of it: the whole
    tile is fetched). ``kept`` is per directive whether the units still hold what they
    touched at its previous position (see ``_pe_ingress``).
    """
    if (
        changing >= 0
        and changing not in view.coupled
        and not tile_refetched(states, changing, view, wrap)
    ):
        # A loop that does not index the tensor advanced: nothing moves unless its
        # inner loops over the tensor wrapped and the units lost their tile.
        return 0
    # (Not memoised: a key of the tensor's directive states costs a quarter of the
    # computation and the cases of a level rarely repeat one.)
    mapped, sp_state, edge = _spatial_info(model, states, view.order)
    if not edge:
        first, others = _pe_ingress_pair(model, states, changing, view, False, wrap, kept)
        return first + (model.units - 1) * others if mapped and model.units > 1 else first
    return _over_units(
        model,
        sp_state,
        edge,
        lambda first, ee: _pe_ingress(model, states, changing, view, first, ee, wrap, kept),
    )


def case_codes(states: tuple[State, ...]) -> tuple[int, ...]:
    """Per directive, what the per-case memos read of its state, as one small integer:
    at its Edge position, at its edge tile, a partly filled last unit, unrolled (an
    Init off the edge and a Steady state have the same code)."""
    return tuple(
        [
            (st.position == EDGE) | st.is_edge << 1 | st.partial_last_unit << 2 | st.unrolled << 3
            for st in states
        ]
    )


def output_traffic(
    model: LevelModel, states: tuple[State, ...], codes: tuple[int, ...] | None = None
) -> tuple[int, int, int]:
    """(egress of all units, MACs of the busiest unit, MACs of all units) of a case
    (``codes``: its :func:`case_codes`, where the caller has them).

    The busiest unit is the first one (or the lone, partly filled edge unit); its MACs
    set the compute delay. For the MAC total every active unit counts a full tile.
    """
    # Memoised: it reads of each directive's state only whether it is at its edge (at
    # the Edge position, or an Init that overruns) and has a partly filled last unit
    # (an Init off the edge counts as Steady), which its code holds; a term reading
    # more must join the key.
    key = (id(model), codes if codes is not None else case_codes(states))
    seen = _traffic_seen.get(key)
    if seen is not None:
        return seen[2]
    mapped, sp_state, edge = _spatial_info(model, states, model.output.order)
    # A full unit's tile and MACs, shared by the sums below (integer products).
    out_first = _pe_output_tile(model, states, True, False, True)
    first_macs = out_first * _pe_reduction_extent(model, states, True, False)
    if not edge:
        egress = out_first
        if mapped and model.units > 1:
            egress += (model.units - 1) * _pe_output_tile(model, states, False, False, True)
        busiest = first_macs
    else:
        egress = _over_units(
            model,
            sp_state if mapped else None,
            edge,
            lambda first, ee: (
                out_first if (first and not ee) else _pe_egress(model, states, False, first, ee)
            ),
        )
        if mapped:
            assert sp_state is not None
            busiest = _pe_egress(
                model, states, True, True, model.edge_units == 1 and sp_state.partial_last_unit
            )
        else:
            busiest = first_macs
    for i in model.spatial:
        sp_state = states[i]
        edge = edge or sp_state.is_edge
    if not edge:
        macs = model.units * first_macs
    else:
        macs = _over_units(
            model,
            sp_state,
            edge,
            lambda first, ee: (
                first_macs if (first and not ee) else _pe_egress(model, states, True, first, ee)
            ),
            others_as_first=True,
            partial_unit=lambda: _pe_egress(model, states, True, False, True, reuse_at_edge=False),
        )
    if len(_traffic_seen) >= 4096:
        _traffic_seen.clear()
    _traffic_seen[key] = (model, states, (egress, busiest, macs))
    return egress, busiest, macs


_traffic_seen: dict[
    tuple[object, ...], tuple[LevelModel, tuple[State, ...], tuple[int, int, int]]
] = {}
"""Recent cases' output traffic by the identity of their level model and what of their
states it reads (each entry holds the model, so the identity stays its): a layer's
cases differing only in which loops sit at Init or Steady, its buffer sizing and
steady-state figures ask for the same."""


def full_unit_tile(model: LevelModel, states: tuple[State, ...], view: TensorView) -> int:
    """A full unit's tile of ``view`` in this case."""
    return _pe_mapped(model, states, view, True, False)


def unit_new_part(
    model: LevelModel, states: tuple[State, ...], changing: int, view: TensorView
) -> int:
    """Elements of a unit's tile of ``view`` in this case that its previous step's tile
    does not hold: the changing loop's new part if it indexes the tensor, the whole tile
    if loops inside it over the tensor wrapped, else nothing."""
    return _pe_ingress(model, states, changing, view, False, False, WRAP_LOST)


def unit_tile(model: LevelModel, states: tuple[State, ...], view: TensorView) -> int:
    """The first unit's tile of ``view`` in this case: edge tiles where the case's
    states are at an edge, the output in output coordinates (``Y'``, ``X'``)."""
    if view is model.output:
        return _pe_egress(model, states, False, True, False)
    return _pe_mapped(model, states, view, True, False)


def mapped_volume(model: LevelModel, view: TensorView) -> int:
    """A unit's steady tile of a tensor (for the L1 size): product of map sizes."""
    ret = 1
    for dim in view.tensor.dims:
        size = model.tiles.mapped.get(dim)
        if size is not None:
            ret *= size
    return ret


def sub_level_dims(
    model: LevelModel, states: tuple[State, ...], partial_unit: bool
) -> tuple[tuple[str, int], ...]:
    """Dimensions the level below works on in this case (one unit's tile)."""
    # Memoised: it reads of each directive's state only whether it takes the edge tile
    # (a state at the Edge position is at an edge).
    at_edge = tuple(map(_IS_EDGE, states))
    key = (id(model), partial_unit, at_edge)
    seen = _sub_dims_seen.get(key)
    if seen is not None:
        return seen[1]
    mapped, mapped_edge = model.tiles.mapped, model.tiles.mapped_edge
    edge_size = model.edge_units == 1 or partial_unit
    dims: dict[str, int] = {}
    for d, edge in zip(model.directives, at_edge, strict=True):
        if d.dim in dims:
            continue
        if not edge:
            size = mapped[d.dim]
        elif not d.spatial:
            size = mapped_edge[d.dim]
        else:
            size = mapped_edge[d.dim] if edge_size else mapped[d.dim]
        dims[d.dim] = size
    for ref, out in OUTPUT_OF.items():
        if ref in dims:
            filt = "R" if ref == "Y" else "S"
            extent = dims[ref] - dims.get(filt, 0) + 1
            dims.setdefault(out, extent if model.quirks.steps_past_the_end else max(extent, 0))
    value = tuple(sorted(dims.items()))
    if len(_sub_dims_seen) >= 4096:
        _sub_dims_seen.clear()
    _sub_dims_seen[key] = (model, value)
    return value


_IS_EDGE = attrgetter("is_edge")

_sub_dims_seen: dict[tuple[object, ...], tuple[LevelModel, tuple[tuple[str, int], ...]]] = {}
"""Recent nested levels' dimensions by the identity of their level model and which
directives take their edge tile (each entry holds the model, so the identity stays its)."""
