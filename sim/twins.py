"""Records under L1 residency that would be built alike: built once, copied after.

A record under residency is memoised on the step's geometry key and what the L1s did
(:meth:`RunContext.residency_record`). Steps whose keys differ give equal records
whenever their own tiles are one translation of each other's and the L1s did the same:
under residency the builder reads the next step only through the L1s' double-buffering
answer (part of what they did), the previous step only for forwarding between
neighbouring PEs (and whether there is one), and neither the classes nor the inner
index. So such a record is a copy of the first one built alike, with its own id (the id
building it would have given), and its NoC phases are the first one's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .geometry import StepTiles
from .phases import PhaseBuilder
from .traffic import RecordBuilder, StepRecord

__all__ = ["Twins"]


class Twins:
    """The first record built per :meth:`key`, to copy for the next ones."""

    def __init__(self, builder: RecordBuilder, phases: PhaseBuilder) -> None:
        self.builder = builder
        self.phases = phases
        self._first: dict[tuple[object, ...], StepRecord] = {}
        self._own: dict[tuple[object, ...], int] = {}
        self._contents: dict[bytes, int] = {}

    def key(
        self,
        geometry: tuple[object, ...],
        signature: bytes,
        tiles: Callable[[], StepTiles],
        base: dict[str, int],
        before: Callable[[], StepTiles] | None,
    ) -> tuple[object, ...]:
        """What a residency record is built from, up to translation: the step's own
        tiles relative to its ``base``, where PEs forward between neighbours its
        predecessor's tiles (``before``) relative to it too (both read once per
        geometry key: a key's tiles are its first occurrence's translated), whether it
        has a predecessor, and what the L1s did."""
        own = self._own.get(geometry)
        if own is None:
            dims = self.builder.geometry.tensor_dims
            content = _relative(tiles(), base, dims)
            if self.builder.neighbours is not None and before is not None:
                content += b"#" + _relative(before(), base, dims, tensors_only=True)
            own = self._own[geometry] = self._contents.setdefault(content, len(self._contents))
        return (own, geometry[3] is None, signature)

    def copy(self, key: tuple[object, ...]) -> StepRecord | None:
        """A copy of the record built for ``key`` with the next id, or ``None``."""
        first = self._first.get(key)
        if first is None:
            return None
        rec = self.builder.copy(first)
        self.phases.alias(rec.rid, first.rid)
        return rec

    def add(self, key: tuple[object, ...], rec: StepRecord) -> None:
        """Remember ``rec``, just built for ``key``."""
        self._first.setdefault(key, rec)


def _relative(
    tiles: StepTiles,
    base: dict[str, int],
    dims: tuple[tuple[str, ...], ...],
    *,
    tensors_only: bool = False,
) -> bytes:
    """``tiles`` relative to ``base``, as bytes: each tensor's ranges and (unless
    ``tensors_only``) the activity, the MACs and the MAC boxes' extents."""
    parts = []
    if not tensors_only:
        parts = [tiles.active.tobytes(), tiles.macs.tobytes()]
        parts.append((tiles.mac_hi - tiles.mac_lo).tobytes())
    for (lo, hi), names in zip(tiles.tensors, dims, strict=True):
        off = np.array([base.get(d, 0) for d in names], dtype=np.int64)[:, None]
        parts.append((lo - off).tobytes() + b"|" + (hi - off).tobytes())
    return b"/".join(parts)
