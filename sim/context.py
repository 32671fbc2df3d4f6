"""The context of one layer's run (:class:`RunContext`): what the SimPy machine's feed,
the fast path and the result assembly share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from metronome.spec.hardware import Hardware
from metronome.spec.layer import Layer
from metronome.spec.mapping import Mapping

from .budget import check_budget
from .flows import disjoint_flows
from .functional import Functional
from .geometry import Geometry, StepTiles
from .l1 import EVICTIONS, L1Residency
from .l1_outcome import StepL1
from .loopnest import LoopNest
from .memory import L2Memory, L2Step
from .options import SimOptions
from .outcomes import KeptOutcome, kept_outcome, kept_outcome_at
from .phases import Fabric, PhaseBuilder
from .schedule import Segment, Step, StepStream
from .tally import Tally
from .topology import Router, build_topology, prepare_graph
from .traffic import RecordBuilder, StepRecord
from .twins import Twins

if TYPE_CHECKING:
    from .l1_keys import WorkingKeys

__all__ = ["Progress", "RunContext"]

Progress = Callable[[int, int], None]
"""Called with (top-level steps done, total)."""

_FIRSTS_KEPT = 4096
"""Most first steps' tiles kept between the L1 classes and the next-touch table."""
_KEY_TILES_KEPT = 1024
"""Most geometry keys whose tiles are kept to build records from (translated)."""


class RunContext:
    """Everything one layer's run shares between its parts, built once from the layer,
    mapping, hardware and options: the loop nest and its geometry, the NoC fabric and
    phase builder, the record builder, the step stream, the step records built so far
    (by geometry key), L2, the L1s under residency, the tally and, when values are
    carried, the functional model. :func:`metronome.sim.simulate` builds it and hands it to the
    SimPy machine's feed (:meth:`feed`) or to :class:`metronome.sim.fast.FastPath`;
    :func:`metronome.sim.stats.build_result` reads the tally and L2 from it."""

    def __init__(self, layer: Layer, mapping: Mapping, hw: Hardware, options: SimOptions) -> None:
        self.layer = layer
        self.hw = hw
        self.options = options
        check_budget(mapping, hw, options.noc_graph)
        self.nest = LoopNest(layer, mapping, hw.num_pes)
        self.geometry = Geometry(layer, self.nest.dims)
        n_pes = self.nest.num_pes
        if options.noc_graph is not None:
            graph = prepare_graph(options.noc_graph, hw, n_pes)
        else:
            graph = build_topology(hw, n_pes)
        self.fabric = Fabric(graph, header_cycles=hw.noc_header_cycles)
        self.phases = PhaseBuilder(self.fabric, hw, options.policy)
        router = self.phases.router
        self.builder = RecordBuilder(
            self.nest, self.geometry, hw, options.policy, _neighbours(router)
        )
        self.stream = StepStream(self.nest, memo=options.fast_forward)
        self.records: dict[tuple[object, ...], StepRecord] = {}
        self.twins = Twins(self.builder, self.phases)
        shapes = self.geometry.tensor_sizes
        self.l2 = L2Memory(shapes, hw.l2_size_elems)
        self.tally = Tally(self.nest.num_pes)
        self.functional: Functional | None = None
        self._recent: dict[int, StepTiles] = {}
        self._key_tiles: dict[object, tuple[dict[str, int], StepTiles]] = {}
        self._recent_keys: dict[int, WorkingKeys] = {}
        self._signatures: dict[int, bytes] = {}
        # Steps the L1s acted on or replayed (:meth:`residency_record`).
        self.l1_steps = 0
        self._outcomes: dict[bytes, KeptOutcome] = {}
        # The first steps' tiles, kept from the L1 classes to the next-touch table.
        self._firsts: dict[int, StepTiles] = {}
        self.l1: L1Residency | None = None
        self.segments: list[Segment] | None = None
        policy = options.policy
        if policy.l1_keeps_reusable_data:
            if options.l1_eviction not in EVICTIONS:
                raise ValueError(f"l1_eviction must be one of {EVICTIONS}")
            self.l1 = L1Residency(
                shapes,
                n_pes,
                hw.l1_size_elems,
                options.l1_eviction,
                psum_every_step=policy.psum_writeback_every_step,
                dims=self.geometry.tensor_dims,
                memo=options.fast_forward,
            )
            l1 = self.l1
            if options.fast_forward:
                self.segments = list(self.stream.segments())
                l1.classify(self._first_tiles(self.segments))
                steps = sum(len(seg.steps) * seg.count for seg in self.segments)
                l1.touches.record_future_steps(
                    (
                        item
                        for seg in self.segments
                        for item in zip(seg.steps, seg.schedules, strict=True)
                    ),
                    self._tiles_of,
                    (
                        (len(seg.steps), l1.space.shift_of(seg.delta), len(seg.steps), seg.count)
                        for seg in self.segments
                    ),
                    steps,
                )
                self._firsts.clear()
            else:
                none = np.zeros(3, dtype=np.int64)
                blocks = [
                    (step.index, self.future_keys((step, sched)), none, 1, 1)
                    for step, sched in self.stream
                ]
                l1.touches.record_future(blocks, blocks[-1][0] + 1 if blocks else 0)

    def tiles(self, step: Step, schedules: list[object]) -> StepTiles:
        """The tiles of every PE at ``step``."""
        ranges = self.nest.pe_ranges(step.positions, step.inner, schedules)  # type: ignore[arg-type]
        return self.geometry.tiles(ranges)

    def _first_tiles(self, segments: list[Segment]) -> Iterator[StepTiles]:
        """The tiles of each geometry key's first step, in order (a segment's
        repetitions have its first repetition's keys)."""
        seen: set[object] = set()
        for seg in segments:
            for step, schedules in zip(seg.steps, seg.schedules, strict=True):
                if step.key not in seen:
                    seen.add(step.key)
                    tiles = self.tiles(step, schedules)
                    if len(self._firsts) < _FIRSTS_KEPT:
                        self._firsts[step.index] = tiles
                    yield tiles

    def _tiles_of(self, item: tuple[Step, list[object]]) -> StepTiles:
        """Tiles of a step, remembering the last few (each is asked for up to 3 times)."""
        step = item[0]
        hit = self._recent.get(step.index)
        if hit is None:
            hit = self._firsts.get(step.index)
        if hit is None:
            if len(self._recent) > 4:
                self._recent.clear()
            hit = self._recent[step.index] = self.tiles(*item)
        return hit

    def _record_tiles(self, item: tuple[Step, list[object]]) -> StepTiles:
        """Tiles of a step to build its record from: on the fast path the first tiles
        asked for its geometry key, translated (:meth:`Geometry.moved`: equal on the
        active PEs; the builder reads an idle PE's ranges only as empty)."""
        step = item[0]
        hit = self._recent.get(step.index)
        if hit is not None or not self.options.fast_forward:
            return hit if hit is not None else self._tiles_of(item)
        first = self._key_tiles.get(step.key)
        if first is None:
            tiles = self._tiles_of(item)
            if len(self._key_tiles) < _KEY_TILES_KEPT:
                self._key_tiles[step.key] = (step.base, tiles)
            return tiles
        base, tiles = first
        by = {d: step.base.get(d, 0) - base.get(d, 0) for d in {*step.base, *base}}
        return self.geometry.moved(tiles, by)

    def _keys(self, item: tuple[Step, list[object]]) -> WorkingKeys:
        """The L1 working keys of a step (memoised per geometry key on the fast path)."""
        assert self.l1 is not None
        step = item[0]
        # A step's keys are asked for as the next step's, then as its own.
        hit = self._recent_keys.get(step.index)
        if hit is None:
            if len(self._recent_keys) > 2:
                self._recent_keys.clear()
            hit = self.l1.space.keys_of(step.key, step.base, self.lazy(item))
            self._recent_keys[step.index] = hit
        return hit

    def future_keys(self, item: tuple[Step, list[object]]) -> np.ndarray:
        """The keys of a step the L1s' next-touch queries ask about."""
        assert self.l1 is not None
        step = item[0]
        return self.l1.touches.future_keys(step.key, step.base, self.lazy(item))

    def future_touches(self, seg: Segment, b: int) -> tuple[np.ndarray, np.ndarray]:
        """The keys of repetition ``b`` of ``seg`` the L1s' next-touch queries ask about,
        with each one's step (:meth:`L1Residency.future_touches`)."""
        assert self.l1 is not None
        l1 = self.l1
        steps = (
            (s.key, s.base, self.lazy((s, sched)), s.index)
            for s, sched in zip(seg.steps, seg.schedules, strict=True)
        )
        return l1.touches.future_touches(
            steps, b * l1.space.shift_of(seg.delta), b * len(seg.steps)
        )

    def lazy(self, item: tuple[Step, list[object]]) -> Callable[[], StepTiles]:
        """The tiles of ``item``, computed when called (the last few remembered)."""
        return lambda: self._tiles_of(item)

    def residency_record(
        self,
        item: tuple[Step, list[object]],
        prev: tuple[Step, list[object]] | None,
        nxt: tuple[Step, list[object]] | None,
        replayed: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> StepRecord:
        """Step ``item``'s record under L1 residency: the L1s act, and the record is
        memoised on the geometry key and what the L1s did (relative to the tiles), and
        copied from an earlier one built alike (:class:`Twins`: the same tiles relative
        to the base, the same L1 outcome). ``replayed``: a bulk repetition applied the
        step, its touches hit and the outputs left as this (hits, output keys) says; the
        L1s do not act (:meth:`StepOutcomes.replay`)."""
        assert self.l1 is not None
        self.l1_steps += 1
        step = item[0]
        out_base = np.array([step.base.get(d, 0) for d in self.geometry.tensor_dims[2]])
        following = self._keys(nxt) if nxt is not None else None
        memo = self.options.fast_forward
        l1: StepL1 | None = None
        if replayed is None:
            l1 = self.l1.step(step.index, self._keys(item), following, out_base)
            signature = l1.signature
        elif memo:
            # Most replayed steps' records exist: their signature alone finds them.
            signature = self.l1.outcomes.replay_signature(
                self._keys(item), following, *replayed, out_base
            )
        else:
            l1 = self.l1.outcomes.replay(self._keys(item), following, *replayed, out_base)
            signature = l1.signature
        rec = self.record_of(item, prev, signature) if memo else None
        if rec is None:
            if l1 is None:
                assert replayed is not None
                l1 = self.l1.outcomes.replay(self._keys(item), following, *replayed, out_base)
            rec = self._built(item, prev, l1, signature if memo else None)
            if memo and signature not in self._outcomes:
                self._outcomes[signature] = kept_outcome(l1, out_base)
        return rec

    def _built(
        self,
        item: tuple[Step, list[object]],
        prev: tuple[Step, list[object]] | None,
        l1: StepL1,
        sig: bytes | None,
    ) -> StepRecord:
        """Step ``item``'s record (after ``prev``) built from the L1s' outcome ``l1``
        (of the simulated PEs); with ``sig`` (the fast path), memoised under its key and
        ``sig`` and kept to copy for its twins."""
        assert self.l1 is not None
        step = item[0]
        # Under residency the builder reads the previous step only where PEs forward
        # (what a neighbour held) and the next one not at all (the L1s' double-buffering
        # answer stands for it): their tiles are computed only then.
        forwards = self.builder.neighbours is not None
        pes, coords = self.l1.space.leaving_coords(l1.leaving)
        flows = disjoint_flows(pes, coords)
        up = None
        if flows is not None:
            up = (np.bincount(pes, minlength=self.l1.n_pes), *flows)
        rec = self.builder.build(
            self._record_tiles(prev) if prev is not None and forwards else None,
            self._record_tiles(item),
            None,
            step.key[0],
            step.inner,
            step.base,
            self.l1.space.expand(l1, leaving=up is None),
            first=prev is None,
            up=up,
        )
        if sig is not None:
            self.records[step.key, sig] = rec
            self.twins.add(self._twin(item, prev, sig), rec)
            self._signatures[rec.rid] = sig
        return rec

    def record_as(
        self, item: tuple[Step, list[object]], prev: tuple[Step, list[object]] | None, sig: bytes
    ) -> StepRecord:
        """On the fast path, step ``item``'s record (after ``prev``) when the L1s' outcome
        has signature ``sig``, one a step has had before (:meth:`knows`): memoised, a
        twin's copy, or built from that step's outcome translated (the signature says
        what was lacked relative to the tiles and which outputs left relative to the
        step's base, so only the leaving boxes move)."""
        rec = self.record_of(item, prev, sig)
        if rec is not None:
            return rec
        assert self.l1 is not None
        step = item[0]
        out_base = np.array([step.base.get(d, 0) for d in self.geometry.tensor_dims[2]])
        l1 = kept_outcome_at(self.l1, self._outcomes[sig], out_base)
        return self._built(item, prev, l1, sig)

    def knows(self, sig: bytes) -> bool:
        """Whether a step had L1 outcome ``sig`` on the fast path (:meth:`record_as`)."""
        return sig in self._outcomes

    def _twin(
        self, item: tuple[Step, list[object]], prev: tuple[Step, list[object]] | None, sig: bytes
    ) -> tuple[object, ...]:
        """The :class:`Twins` key of step ``item`` (after ``prev``) with L1 signature
        ``sig``."""
        step = item[0]
        before = self.lazy(prev) if prev is not None else None
        return self.twins.key(step.key, sig, self.lazy(item), step.base, before)

    def record_of(
        self, item: tuple[Step, list[object]], prev: tuple[Step, list[object]] | None, sig: bytes
    ) -> StepRecord | None:
        """On the fast path, step ``item``'s record (after ``prev``) when the L1s' outcome
        has signature ``sig``: the one memoised under its key and ``sig``, or a copy of a
        twin's; ``None`` when it must be built."""
        key = (item[0].key, sig)
        rec = self.records.get(key)
        if rec is None:
            rec = self.twins.copy(self._twin(item, prev, sig))
            if rec is not None:
                self.records[key] = rec
                self._signatures[rec.rid] = sig
        return rec

    def signature_of(self, rec: StepRecord) -> bytes | None:
        """The L1 signature the fast path memoised ``rec`` under, if it did."""
        return self._signatures.get(rec.rid)

    def feed(self, progress: Progress | None) -> Iterator[tuple[StepRecord, L2Step]]:
        """Records and L2 outcomes of every step, in order."""
        memo = self.options.fast_forward
        it = iter(self.stream)
        cur = next(it, None)
        prev_tiles: StepTiles | None = None
        cur_tiles: StepTiles | None = None
        prev_item: tuple[Step, list[object]] | None = None
        dims = self.geometry.tensor_dims
        total = self.stream.top_steps
        while cur is not None:
            nxt = next(it, None)
            step, schedules = cur
            rec = self.records.get(step.key) if memo and self.l1 is None else None
            if self.l1 is not None:
                rec = self.residency_record(cur, prev_item, nxt)
            elif rec is None:
                if cur_tiles is None:
                    cur_tiles = self.tiles(step, schedules)
                if prev_tiles is None and prev_item is not None:
                    prev_tiles = self.tiles(*prev_item)
                nxt_tiles = self.tiles(*nxt) if nxt is not None else None
                rec = self.builder.build(
                    prev_tiles,
                    cur_tiles,
                    nxt_tiles,
                    step.key[0],
                    step.inner,
                    step.base,
                )
                if memo:
                    self.records[step.key] = rec
                prev_tiles, cur_tiles = cur_tiles, nxt_tiles
            else:
                prev_tiles = cur_tiles = None
            if self.functional is not None:
                self.functional.step(self.tiles(step, schedules), rec)
            l2 = self.l2.step(step.index, rec.footprints, step.base, dims)
            self.tally.add_step(rec, l2)
            if progress is not None and step.index % 4096 == 0:
                progress(step.top, total)
            yield rec, l2
            prev_item, cur = cur, nxt


def _neighbours(router: Router) -> Callable[[int], tuple[int, ...]] | None:
    if not router.graph.graph.get("pe_links"):
        return None
    return router.neighbours
