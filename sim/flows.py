"""Who sends what to whom in one step: multicast flows from L2, forwarding between
neighbours, and partial-sum flows back to L2, derived exactly from the PEs' tiles.

A *flow* is a set of elements that travel together because they have the same
endpoints: every element a PE set needs from L2 (and no other PE needs) forms one
multicast flow to that set; every partial sum held by the same set of egressing PEs forms
one reduction flow from that set. Flows are found by partition refinement on a canvas of
the step's footprint: each PE's region splits the element classes it touches, so the
final classes are exactly the elements with identical PE sets (no hashing, no
per-element sets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Demand", "demand", "disjoint_flows", "reduction_flows", "refine"]

Flow = tuple[tuple[int, ...], int]
"""(PE indices, elements)."""


@dataclass(frozen=True, slots=True)
class Demand:
    """One tensor's traffic into the PEs at one step: multicast flows from L2
    (``(dests, elems)``), forwards ``(src PE, dst PE, elems)``, the elements L2 reads, and
    the canvas of those elements (corner, boolean mask) for L2 residency."""

    l2_flows: tuple[Flow, ...]
    forwards: tuple[tuple[int, int, int], ...]
    l2_reads: int
    forwarded: int
    canvas: tuple[np.ndarray, np.ndarray] | None


def refine(
    regions: Sequence[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]],
) -> tuple[list[Flow], tuple[np.ndarray, np.ndarray] | None]:
    """Partition the union of ``regions`` (``(member, lo, hi, mask)``: a box and an
    optional boolean mask over it) into classes of elements covered by the same members.
    Returns ``(members, count)`` per class, members in region order, and the union's
    canvas. Each element gets a bit per region covering it; the classes are the distinct
    bit sets, ordered as integers (the region sets compared from their last region)."""
    if not regions:
        return [], None
    los = np.array([r[1] for r in regions])
    his = np.array([r[2] for r in regions])
    corner = los.min(axis=0)
    shape = tuple(int(v) for v in his.max(axis=0) - corner)
    bits = np.zeros(((len(regions) + 63) // 64, *shape), dtype=np.uint64)
    boxes = zip((los - corner).tolist(), (his - corner).tolist(), strict=True)
    for i, ((lo, hi), region) in enumerate(zip(boxes, regions, strict=True)):
        box: tuple[int | slice, ...] = (i // 64, *map(slice, lo, hi))
        view = bits[box]
        bit = np.uint64(1 << (i % 64))
        if region[3] is None:
            view |= bit
        else:
            np.bitwise_or(view, bit, out=view, where=region[3])
    words = bits.reshape(len(bits), -1)
    covered = np.any(words, axis=0)
    keys = words[:, covered]
    if len(keys) == 1:
        classes, counts = np.unique(keys[0], return_counts=True)
        classes = classes[:, None]
    else:
        ordered = keys[:, np.lexsort(keys)]
        starts = np.flatnonzero(
            np.concatenate(([True], np.any(ordered[:, 1:] != ordered[:, :-1], axis=0)))
        )
        counts = np.diff(np.append(starts, ordered.shape[1]))
        classes = ordered[:, starts].T
    held = np.unpackbits(
        np.ascontiguousarray(classes, dtype="<u8").view(np.uint8), axis=1, bitorder="little"
    )
    rows, cols = np.nonzero(held)
    names = np.array([r[0] for r in regions])[cols].tolist()
    ends = [0, *np.cumsum(np.bincount(rows, minlength=len(counts))).tolist()]
    flows = [
        (tuple(names[a:b]), n) for a, b, n in zip(ends[:-1], ends[1:], counts.tolist(), strict=True)
    ]
    return flows, (corner, covered.reshape(shape))


def disjoint_flows(
    pes: np.ndarray, coords: np.ndarray
) -> tuple[list[Flow], tuple[np.ndarray, np.ndarray] | None] | None:
    """What :func:`refine` gives for one region per PE, each the tight box of that PE's
    elements (``pes``, ascending, and ``coords``, shape ``(dims, elements)``) masked to
    them, when no element is in two regions: one flow per PE, in PE order (a class of one
    region ``i`` is the bit set ``1 << i``), and the elements' canvas over the boxes'
    union (the elements' own bounding box: the boxes are tight); ``None`` when regions
    share an element (then :func:`refine` must class them)."""
    if not pes.size:
        return [], None
    corner = coords.min(axis=1)
    shape = tuple((coords.max(axis=1) + 1 - corner).tolist())
    flat = np.ravel_multi_index(tuple(coords - corner[:, None]), shape)
    covered = np.zeros(int(np.prod(shape)), dtype=bool)
    covered[flat] = True
    if int(np.count_nonzero(covered)) != flat.size:
        return None
    new = np.empty(pes.size, dtype=bool)
    new[0] = True
    np.not_equal(pes[1:], pes[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, pes.size))
    names = pes[starts].tolist()
    flows: list[Flow] = [((p,), n) for p, n in zip(names, counts.tolist(), strict=True)]
    return flows, (corner, covered.reshape(shape))


def _cut(
    mask: np.ndarray, lo: np.ndarray, cut_lo: np.ndarray, cut_hi: np.ndarray
) -> tuple[slice, ...]:
    """The slice of ``mask`` (a box starting at ``lo``) inside ``[cut_lo, cut_hi)``, or
    ``()`` when they do not meet."""
    a = np.maximum(cut_lo - lo, 0)
    b = np.minimum(cut_hi - lo, mask.shape)
    if np.any(b <= a):
        return ()
    return tuple(slice(int(x), int(y)) for x, y in zip(a, b, strict=True))


def demand(
    lo: np.ndarray,
    hi: np.ndarray,
    receivers: np.ndarray,
    held: tuple[np.ndarray, np.ndarray] | None,
    neighbours: Callable[[int], tuple[int, ...]] | None,
    multicast: bool,
    missing: Sequence[np.ndarray | None] | None = None,
) -> Demand:
    """Traffic of one tensor whose tiles are ``[lo, hi)`` (shape ``(dims, PEs)``) to the
    PEs in ``receivers``. Each PE lacks its tile minus what it ``held`` (its previous
    tile); with ``neighbours``, what a neighbour held comes from the first neighbour (in
    the router's order) that held it, the rest from L2. With ``missing`` (per PE, a mask
    over its tile), a PE lacks exactly those elements instead (its L1 residency)."""
    regions: list[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]] = []
    forwards: list[tuple[int, int, int]] = []
    unicast_reads = 0
    for p in np.flatnonzero(receivers).tolist():
        plo, phi = lo[:, p], hi[:, p]
        shape = tuple(int(v) for v in phi - plo)
        own = missing[p] if missing is not None else None
        mask = own.copy() if own is not None else np.full(shape, missing is None, dtype=bool)
        if held is not None and missing is None:
            box = _cut(mask, plo, held[0][:, p], held[1][:, p])
            if box:
                mask[box] = False
        if neighbours is not None and held is not None:
            for q in neighbours(p):
                box = _cut(mask, plo, held[0][:, q], held[1][:, q])
                if not box:
                    continue
                n = int(np.count_nonzero(mask[box]))
                if n:
                    forwards.append((q, p, n))
                    mask[box] = False
        need = int(np.count_nonzero(mask))
        if need:
            unicast_reads += need
            regions.append((p, plo, phi, None if need == mask.size else mask))
    flows, canvas = refine(regions)
    if not multicast:
        flows = [((r[0],), int(r[3].sum()) if r[3] is not None else _size(r)) for r in regions]
    l2_reads = sum(n for _, n in flows) if multicast else unicast_reads
    return Demand(
        l2_flows=tuple(flows),
        forwards=tuple(forwards),
        l2_reads=l2_reads,
        forwarded=sum(f[2] for f in forwards),
        canvas=canvas,
    )


def _size(region: tuple[int, np.ndarray, np.ndarray, np.ndarray | None]) -> int:
    return int(np.prod(region[2] - region[1]))


def reduction_flows(
    lo: np.ndarray, hi: np.ndarray, senders: np.ndarray
) -> tuple[list[Flow], tuple[np.ndarray, np.ndarray] | None]:
    """Partial sums leaving the PEs in ``senders`` (output tiles ``[lo, hi)``): one flow
    per set of PEs holding the same output elements, and the canvas of those elements."""
    regions = [
        (p, lo[:, p], hi[:, p], None)
        for p in np.flatnonzero(senders).tolist()
        if np.all(hi[:, p] > lo[:, p])
    ]
    return refine(regions)


def merge(flows: Sequence[Flow]) -> tuple[Flow, ...]:
    """Flows with the same PE set summed, ordered by PE set."""
    out: dict[tuple[int, ...], int] = {}
    for pes, n in flows:
        out[pes] = out.get(pes, 0) + n
    return tuple(sorted(out.items()))
