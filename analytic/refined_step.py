"""The refined model's step of a case: its cost from compute, distribution, collection
and drains (:class:`_StepCost`), shared by the cases of a level that read alike
(:class:`_CaseStep`; equations in docs/refined-model.md, section 5)."""

from __future__ import annotations

import math
from typing import NamedTuple

from .cases import State
from .context import LevelResult, NocLevel, _Context, replace
from .refined import LevelReuse, Machine
from .refined_network import _carried, _drains, _refined_delays, _split_case
from .refined_reuse import _held_over, _pe_held_over
from .traffic import LevelModel

FILLED = ("tree", "mesh")
"""Topologies whose phases hold their plane for a fill beyond their serialisation."""


class _CaseStep(NamedTuple):
    """What a refined case's step comes to, shared by the cases of a level analysis
    alike in what it reads (:func:`_refined_case`)."""

    compute: int
    """(A float where only part of the nested steps receive the new tile.)"""
    active: float
    below: list[LevelResult]
    """The analyses of its units' nests."""
    cost: _StepCost
    step: float
    base: float
    idle_step: float
    """The step's cost without compute (innermost nested level: its slack)."""
    inner_steps: int
    inner_compute: float
    shrink: tuple[tuple[int, float, float], ...]
    """The slack of its busiest unit's nest."""


class _StepCost:
    """A refined step's cost given its compute, with its traffic times a spread and
    each plane's fill times a factor (docs/refined-model.md, "A step" and "Exact
    counts"): the case's network delays, reuse shares and drains, taken once per case
    (the exact counts ask again for every case)."""

    __slots__ = (
        "ctx",
        "drains",
        "egress",
        "gathered",
        "gathering",
        "in_bare",
        "in_busy",
        "in_fill",
        "leaving",
        "machine",
        "model",
        "noc",
        "out_bare",
        "out_busy",
        "out_fill",
        "out_share",
        "raw",
        "reuse",
        "serial",
        "split",
        "start_compute",
        "states",
        "step_in",
        "step_out",
        "unit_share",
        "volumes",
    )

    def __init__(
        self, ctx: _Context, machine: Machine, noc: NocLevel, model: LevelModel, reuse: LevelReuse
    ) -> None:
        self.ctx, self.machine, self.noc, self.model, self.reuse = ctx, machine, noc, model, reuse

    def derive(
        self,
        dims: dict[str, int],
        states: tuple[State, ...],
        changing: int,
        codes: tuple[int, ...],
        volumes: list[int],
        sent: tuple[int, ...],
        egress: int,
        gathered: list[tuple[float, tuple[int, ...]]],
        serial_fill: bool,
        raw: float,
        compute: float,
    ) -> None:
        """The terms of the case at ``states`` (over the level's ``dims``; its
        changing loop and codes): ``volumes`` (``sent``: as a tuple) and ``egress`` its
        traffic, ``gathered`` the tiers of gathered steps (:attr:`_Totals.gathered`,
        filled later), ``raw`` the nested runtime without its collections and
        ``compute`` the case's compute."""
        ctx, machine, noc, model = self.ctx, self.machine, self.noc, self.model
        self.states = states
        reuse, split = _split_case(ctx, model, states, self.reuse)
        self.reuse = reuse
        # Where every unit's partial sums travel (no adders in the network), each unit
        # sends its own once: the groups finishing apart are among those copies.
        carried = _carried(ctx, machine, model)
        in_busy, step_in, out_busy, step_out = _refined_delays(
            ctx, machine, noc, model, states, sent, egress, reuse
        )
        if noc.free and changing < 0:
            # A nested level's first tiles came with the level above's step (charged
            # there, and fetched only where L1 lacked them).
            in_busy = step_in = 0
        # The part of each phase's busy time that does not grow with its volume (the
        # route's fill, the adders), which the exact counts spread by phases, not by
        # volume (:func:`_exact_runtime`).
        in_bare, out_bare = in_busy, out_busy
        if model.index == 0 and ctx.exact is not None and machine.topology in FILLED:
            bare = ctx.bare
            if bare is None:
                bare = ctx.bare = replace(machine, hop_latency=0, adder_latency=0)
            in_bare, _, out_bare, _ = _refined_delays(
                ctx, bare, noc, model, states, sent, egress, reuse
            )
        self.in_busy, self.step_in, self.out_busy, self.step_out = (
            in_busy,
            step_in,
            out_busy,
            step_out,
        )
        self.in_bare, self.out_bare = in_bare, out_bare
        self.in_fill, self.out_fill = in_busy - in_bare, out_busy - out_bare
        self.serial = (
            serial_fill
            or (model.innermost and not _held_over(ctx, machine, model, states, changing, codes))
            or (
                model.index == 0
                and not model.innermost
                and not _pe_held_over(ctx, model, states, changing, codes)
            )
        )
        self.out_share = reuse.distinct * (reuse.unit_share if carried else reuse.output_share)
        # Two output buffers: a unit computes once its egress before the latest has
        # drained, so two egress intervals take the drain plus the unit's computes in
        # between.
        self.drains = _drains(ctx, noc, model, dims, states, reuse, egress)
        self.split = split and not model.innermost
        self.leaving = reuse.leaving
        self.unit_share = reuse.unit_share
        self.raw, self.start_compute = raw, compute
        self.volumes, self.egress, self.gathered = volumes, egress, gathered
        self.gathering: dict[float, tuple[float, float, float, float]] | None = None

    def gather(self, spread: float) -> tuple[float, float, float, float]:
        """The step's delays where it gathers ``spread`` of the enumeration's receiving
        steps: one transfer carries their tiles (``totals.gathered``'s tiers, else each
        tensor's times ``spread``): the links' serialisation grows, the route's fills,
        holds and adders stay."""
        gathering = self.gathering
        if gathering is None:
            gathering = self.gathering = {}
        if spread not in gathering:
            tiers = self.gathered or [(1.0, tuple(math.ceil(v * spread) for v in self.volumes))]
            mixed = [0.0, 0.0, 0.0, 0.0]
            for share, scaled in tiers:
                tier = _refined_delays(
                    self.ctx,
                    self.machine,
                    self.noc,
                    self.model,
                    self.states,
                    scaled,
                    self.egress,
                    self.reuse,
                )
                mixed = [m + share * d for m, d in zip(mixed, tier, strict=True)]
            gathering[spread] = (mixed[0], mixed[1], mixed[2], mixed[3])
        return gathering[spread]

    def paced(
        self, compute: float, spread: float = 1.0, fills: tuple[float, float] | None = (1.0, 1.0)
    ) -> tuple[float, float]:
        """(The step's cost, the same without what this level's collections add) given
        its compute, with its traffic times ``spread`` and each plane's fill times
        ``fills``, or gathered into one transfer where ``fills`` is None."""
        if fills is None and self.model.innermost:
            ib, si, ob, so = self.gather(spread)
        else:
            fill_in, fill_out = fills or (1.0, 1.0)
            ib = self.in_bare * spread + self.in_fill * fill_in
            ob = self.out_bare * spread + self.out_fill * fill_out
            si, so = self.step_in - self.in_busy + ib, self.step_out - self.out_busy + ob
        nested = self.raw + compute - self.start_compute
        split = self.split
        if self.serial:
            # Where the partial sums leave at a reduction loop's last two positions
            # (``reuse.split``), this level's cases say which steps send: the nested
            # runtime's collections, spread over every step, are not a bound.
            serial_step = max(ib, ob, (nested if split else compute) + si)
            return serial_step, serial_step
        # Two buffers per PE: a step's data may arrive (its outputs must have drained)
        # once the step before the previous one finished, so the delays and the
        # compute share two steps; each plane carries one phase at a time. Partial
        # sums leave in a share ``leaving`` of the steps; within those, a unit sends
        # every ``leaving / unit_share`` steps, so one collection overlaps that many
        # steps of its compute, and the plane carries every group's. Extra compute
        # (exact counts) lengthens the nested runtime alike.
        base = max(ib, nested, (si + nested) / 2)
        step = base if split else max(ib, compute, (si + compute) / 2)
        leaving = self.leaving
        if leaving > 0:
            unit_share = self.unit_share
            per_step = max(
                self.out_share / leaving * ob,
                *(unit_share / leaving * (so + d + a * nested) / 2 for d, a in self.drains),
            )
            if per_step > base:
                step = max(step, base + leaving * (per_step - base))
        return step, base

    def step_of(
        self, compute: float, spread: float = 1.0, fills: tuple[float, float] | None = (1.0, 1.0)
    ) -> float:
        """The step's cost given its compute, traffic spread and fills."""
        return self.paced(compute, spread, fills)[0]


def _raw_runtime(below: list[LevelResult]) -> float:
    """The slowest nested unit's runtime without its collections' cost."""
    return below[0].runtime_base if len(below) == 1 else max(r.runtime_base for r in below)
