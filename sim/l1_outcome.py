"""What the L1s did at one step, as the rest of the simulator reads it: which tiles each
PE lacked, which outputs leave it, whether the next step's working sets fit beside its
own, and a translation-invariant signature of all of it (records of steps are kept and
looked up by it).

:class:`StepOutcomes` builds these from a step's hits and leaving outputs, whether the
L1s stepped it (:meth:`~metronome.sim.l1.L1Residency.step`) or a bulk repetition applied
it (:meth:`StepOutcomes.replay`); it never reads or changes what the L1s hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .l1_keys import KeySpace, WorkingKeys

__all__ = ["StepL1", "StepOutcomes"]

# Leaving outputs' signatures and fits kept for replayed steps (cleared when full).
_HEADS_KEPT = 1 << 14


@dataclass(frozen=True, slots=True)
class StepL1:
    """What the L1s did at one step. ``missing[t][p]``: PE ``p``'s mask of tensor ``t``'s
    tile (input, weight) it lacked, ``None`` when it lacked nothing or is idle.
    ``egress[p]``: output elements leaving PE ``p`` after the step as ``(lo, hi, mask)``
    (absolute coordinates; mask ``None``: the whole box), or ``None``. ``signature``
    identifies all of it relative to the PEs' tiles (translation-invariant). ``leaving``:
    the leaving outputs' keys, sorted (of the simulated PEs)."""

    missing: tuple[list[np.ndarray | None], list[np.ndarray | None]]
    egress: list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None]
    working: np.ndarray
    next_fits: bool
    overflow: bool
    signature: bytes
    leaving: np.ndarray


class StepOutcomes:
    """A step's :class:`StepL1` from its hits and leaving outputs, with the memos of
    leaving outputs' signatures and of fits that replayed steps reuse."""

    def __init__(self, space: KeySpace, capacity: int) -> None:
        self.space = space
        self.n_pes, self.total, self.offsets = space.n_pes, space.total, space.offsets
        self.capacity = capacity
        self._heads: dict[bytes, tuple[bytes, np.ndarray, np.ndarray]] = {}
        self._fits: dict[tuple[object, ...], tuple[bool, bool]] = {}

    def forget_fits(self) -> None:
        """Drop the memoised fits (the working keys they were memoised on changed)."""
        self._fits.clear()

    def replay(
        self,
        wk: WorkingKeys,
        nk: WorkingKeys | None,
        hit: np.ndarray,
        out_keys: np.ndarray,
        out_base: np.ndarray,
    ) -> StepL1:
        """What :meth:`~metronome.sim.l1.L1Residency.step` returns for a step touching
        ``wk`` (``nk`` next) that hit as ``hit`` says and sent home the outputs
        ``out_keys`` (sorted), without touching the L1s: for a step a bulk repetition
        applied."""
        sig: list[bytes] = []
        missing = self.missing(wk, hit, sig)
        egress = self.egress(out_keys, out_base, sig)
        sizes = np.bincount(wk.keys // self.total, minlength=self.n_pes)
        return self.ended(wk, nk, sizes, missing, egress, sig, out_keys)

    def replay_signature(
        self,
        wk: WorkingKeys,
        nk: WorkingKeys | None,
        hit: np.ndarray,
        out_keys: np.ndarray,
        out_base: np.ndarray,
    ) -> bytes:
        """The signature :meth:`replay` gives, without building its masks and boxes
        (a replayed step's record is mostly one built before under this signature)."""
        sig: list[bytes] = []
        self.missing(wk, hit, sig, masks=False)
        if out_keys.size:
            sig.append(self._leaving_head(out_keys, out_base))
        sizes = np.bincount(wk.keys // self.total, minlength=self.n_pes)
        sig.append(bytes(self._fit_of(wk, nk, sizes)))
        return b"|".join(sig)

    def missing(
        self, wk: WorkingKeys, hit: np.ndarray, sig: list[bytes], masks: bool = True
    ) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """Per input and weight PE its mask of the tile it lacked (``hit``: per sorted
        key; all ``None`` without ``masks``); their signature appended to ``sig``."""
        missing: tuple[list[np.ndarray | None], list[np.ndarray | None]] = (
            [None] * self.n_pes,
            [None] * self.n_pes,
        )
        offset = 0
        for t, ps, shape, rows in wk.groups:
            offset += rows.size
            if t == 2:
                continue
            lacking = ~hit[wk.rank[offset - rows.size : offset]].reshape(rows.shape)
            for i in np.flatnonzero(lacking.any(axis=1)).tolist() if masks else ():
                p = int(ps[i])
                missing[t][p] = lacking[i].reshape(shape)
            sig.append(np.array([t, *shape], dtype=np.int64).tobytes() + ps.tobytes())
            sig.append(np.packbits(lacking).tobytes())
        return missing

    def leaving_boxes(
        self, out_keys: np.ndarray, out_base: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None]:
        """The outputs leaving (``out_keys``, sorted) per PE as :class:`StepL1` has them
        (``out_base``: the step's base in output coordinates)."""
        return self.egress(out_keys, out_base, [])

    def egress(
        self, out_keys: np.ndarray, out_base: np.ndarray, sig: list[bytes]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None]:
        """The outputs leaving (``out_keys``, sorted) per PE as ``(lo, hi, mask)``; their
        signature relative to ``out_base`` appended to ``sig``."""
        egress: list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None] = [None] * self.n_pes
        if not out_keys.size:
            return egress
        ps, lo, hi, starts, counts, coords, head = self._leaving(out_keys, out_base)
        sig.append(head)
        full = counts == np.multiply.reduce(hi - lo, axis=0)
        for i, p in enumerate(ps.tolist()):
            mask = None
            if not full[i]:
                mine = coords[:, starts[i] : starts[i] + counts[i]] - lo[:, i : i + 1]
                mask = np.zeros(tuple(int(v) for v in hi[:, i] - lo[:, i]), dtype=np.bool_)
                mask[tuple(mine)] = True
            egress[p] = (lo[:, i], hi[:, i], mask)
        return egress

    def _leaving(
        self, out_keys: np.ndarray, out_base: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bytes]:
        """The leaving outputs (``out_keys``, sorted, not empty) per PE run: the PEs, each
        one's box (``lo``, ``hi``), its run's start and size among the keys, every key's
        coordinates, and the signature: the PEs, boxes relative to ``out_base`` and each
        output's place in its box (in order: what the boxes' masks say)."""
        pe_o = out_keys // self.total
        flat = out_keys - pe_o * self.total - self.offsets[2]
        coords = flat[None, :] // self.space.strides[2][:, None] % self.space.out_shape
        # Keys are sorted: each PE's outputs are one run.
        new = np.empty(out_keys.size, dtype=bool)
        new[0] = True
        np.not_equal(pe_o[1:], pe_o[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        ps = pe_o[starts]
        lo = np.minimum.reduceat(coords, starts, axis=1)
        hi = np.maximum.reduceat(coords, starts, axis=1) + 1
        counts = np.append(starts[1:], out_keys.size) - starts
        ext = hi - lo
        run = np.repeat(np.arange(ps.size, dtype=np.int64), counts)
        rel = coords - lo[:, run]
        place = rel[0]
        for d in range(1, rel.shape[0]):
            place = place * ext[d, run] + rel[d]
        place = np.sort(place + run * int(np.multiply.reduce(ext, axis=0).max()))
        head = np.concatenate([[ps.size], ps, (lo - out_base[:, None]).ravel(), ext.ravel(), place])
        return ps, lo, hi, starts, counts, coords, b"o" + head.astype(np.int64).tobytes()

    def _leaving_head(self, out_keys: np.ndarray, out_base: np.ndarray) -> bytes:
        """The signature :meth:`_leaving` gives, memoised on the keys translated by
        ``out_base``'s flat offset: equal translated keys whose boxes, moved by the
        difference of the bases, stay inside the tensor are the same outputs moved alike
        (so their boxes relative to the base and places agree)."""
        rel = out_keys - int(out_base @ self.space.strides[2])
        key = rel.tobytes()
        hit = self._heads.get(key)
        if hit is not None:
            head, lo_rel, hi_rel = hit
            if (lo_rel + out_base[:, None] >= 0).all() and (
                hi_rel + out_base[:, None] <= self.space.out_shape
            ).all():
                return head
        _, lo, hi, _, _, _, head = self._leaving(out_keys, out_base)
        if len(self._heads) >= _HEADS_KEPT:
            self._heads.clear()
        self._heads[key] = (head, lo - out_base[:, None], hi - out_base[:, None])
        return head

    def ended(
        self,
        wk: WorkingKeys,
        nk: WorkingKeys | None,
        sizes: np.ndarray,
        missing: tuple[list[np.ndarray | None], list[np.ndarray | None]],
        egress: list[tuple[np.ndarray, np.ndarray, np.ndarray | None] | None],
        sig: list[bytes],
        out_keys: np.ndarray,
    ) -> StepL1:
        """The step's outcome, with whether it overflows and whether the next step's
        working sets fit beside it (double buffering)."""
        fits, overflow = self._fit(wk, nk, sizes)
        sig.append(bytes((fits, overflow)))
        return StepL1(missing, egress, sizes, fits, overflow, b"|".join(sig), out_keys)

    def _fit_of(
        self, wk: WorkingKeys, nk: WorkingKeys | None, sizes: np.ndarray
    ) -> tuple[bool, bool]:
        """:meth:`_fit`, memoised on both steps' geometry keys and the difference of
        their translations (what decides which keys they share; each PE's counts move
        with the keys)."""
        if wk.origin is None or (nk is not None and nk.origin is None):
            return self._fit(wk, nk, sizes)
        key: tuple[object, ...] = (wk.origin[0],)
        if nk is not None:
            assert nk.origin is not None
            key = (wk.origin[0], nk.origin[0], (nk.origin[1] - wk.origin[1]).tobytes())
        hit = self._fits.get(key)
        if hit is None:
            if len(self._fits) >= _HEADS_KEPT:
                self._fits.clear()
            hit = self._fits[key] = self._fit(wk, nk, sizes)
        return hit

    def _fit(self, wk: WorkingKeys, nk: WorkingKeys | None, sizes: np.ndarray) -> tuple[bool, bool]:
        """Whether the next step's working sets (``nk``) fit beside the step's (``wk``,
        per PE ``sizes``), and whether the step's overflow."""
        cap, touched = self.capacity, wk.keys
        overflow = bool((sizes > cap).any())
        fits = True
        if nk is not None:
            at = np.minimum(np.searchsorted(nk.keys, touched), max(0, nk.keys.size - 1))
            both = nk.keys[at] == touched if nk.keys.size else np.zeros(touched.size, bool)
            shared = np.bincount(touched[both] // self.total, minlength=self.n_pes)
            nsizes = np.bincount(nk.keys // self.total, minlength=self.n_pes)
            union = sizes + nsizes - shared
            fits = bool((union[sizes > 0] <= cap).all())
        return fits, overflow
