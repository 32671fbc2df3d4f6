"""A rows x cols systolic array executed register by register, SCALE-Sim's way.

Every PE has registers that take their neighbour's value each cycle: operands move one PE
right (from the left edge) or down (from the top edge) per cycle, and each edge port
carries one word per row or column per cycle. The array runs a schedule of *folds* (one
``rows x cols`` tile of the lowered GEMM) and reports the cycle each fold's last output
left it, the SRAM words that entered and left at its edges, and the MACs it did. Nothing
here computes a cycle count from a formula: cycles are the count of executed cycles, and
an issue time is the earliest one for which executing the array meets no hazard.

Two machines cover SCALE-Sim's three dataflows:

* **output stationary** (OS): A words (GEMM rows) enter the left edge, B words (GEMM
  columns) the top edge, with the systolic skew (row ``i`` / column ``j`` delayed ``i``
  / ``j`` cycles); each PE accumulates its output and, after ``T`` MACs, puts it on its
  column's output bus (one word per column per cycle).
* **stationary operand** (WS: weights, IS: inputs): the stationary words enter the top
  edge of each column, one per cycle (skewed by column), shifting down a load chain and
  latched into the PEs' shadow registers; the streaming words enter the left edge with
  the skew and carry the swap of shadow into active register; partial sums start at zero
  in the top row, move down, and leave the bottom edge, one word per column per cycle.

Rows and columns a fold does not use carry null words (SCALE-Sim pads its demand
matrices with ``-1``), so a fold's wavefront always crosses the whole array.

Hazards (a port carrying two words in a cycle, an accumulator or shadow register still
holding another fold's value, a streaming word reaching a PE before its stationary
value, misaligned operands, two outputs on one bus) stop execution: the scheduler then
tries a later issue. Steady stretches (the array's state equal to the previous cycle's
up to the advance of time, no port opening or closing, no accumulator completing) are
advanced in one step, which gives the same state and counts as executing them cycle by
cycle because the register transfers are time-invariant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from metronome.spec.scalesim import (
    ScaleSimConfig,
    ScaleSimCounts,
    ScaleSimLayer,
    SystolicLayerResult,
    lower,
)

__all__ = [
    "ENGINE_SYSTOLIC",
    "ArrayRun",
    "FoldShape",
    "Hazard",
    "LayerExecution",
    "Schedule",
    "execute_folds",
    "execute_layer",
    "schedule_layer",
    "simulate_systolic",
]

_EMPTY = -1


class Hazard(Exception):
    """A structural or data hazard met while executing a schedule."""

    def __init__(self, cycle: int, what: str) -> None:
        super().__init__(f"cycle {cycle}: {what}")
        self.cycle = cycle
        self.what = what


@dataclass(frozen=True, slots=True, order=True)
class FoldShape:
    """What distinguishes one fold's execution: rows and columns it uses, and ``T``."""

    rows_used: int
    cols_used: int
    t: int


@dataclass(frozen=True, slots=True)
class ArrayRun:
    """What executing a schedule produced.

    ``ends`` are the cycles each fold's last output (or null) left the array; ``cycles``
    is the number of cycles run (last end + 1). ``left_reads`` counts real words entering
    the left edge, ``top_reads`` real words entering the top edge (operands in OS,
    stationary words otherwise), ``out_writes`` real outputs leaving, ``pes_used`` per
    fold the PEs that did at least one real MAC.
    """

    cycles: int
    ends: tuple[int, ...]
    left_reads: int
    top_reads: int
    out_writes: int
    macs: int
    fold_macs: tuple[int, ...]
    pes_used: tuple[int, ...]
    executed_cycles: int


@dataclass
class _State:
    """The registers of every PE (``rows x cols`` arrays; fold ``-1`` = empty)."""

    rows: int
    cols: int
    h_f: np.ndarray = field(init=False)
    h_t: np.ndarray = field(init=False)
    h_r: np.ndarray = field(init=False)
    v_f: np.ndarray = field(init=False)
    v_t: np.ndarray = field(init=False)
    v_r: np.ndarray = field(init=False)
    acc_f: np.ndarray = field(init=False)
    acc_n: np.ndarray = field(init=False)
    ld_f: np.ndarray = field(init=False)
    ld_k: np.ndarray = field(init=False)
    sh_f: np.ndarray = field(init=False)
    sh_r: np.ndarray = field(init=False)
    ac_f: np.ndarray = field(init=False)
    ac_r: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        shape = (self.rows, self.cols)
        for name in ("h_f", "v_f", "acc_f", "ld_f", "sh_f", "ac_f"):
            setattr(self, name, np.full(shape, _EMPTY, dtype=np.int64))
        for name in ("h_t", "v_t", "acc_n", "ld_k"):
            setattr(self, name, np.zeros(shape, dtype=np.int64))
        for name in ("h_r", "v_r", "sh_r", "ac_r"):
            setattr(self, name, np.zeros(shape, dtype=bool))

    def signature(self, cycle: int) -> bytes:
        """The state up to the advance of time: token indices relative to ``cycle``."""
        parts = []
        for f, rel in ((self.h_f, self.h_t), (self.v_f, self.v_t), (self.acc_f, self.acc_n)):
            parts.append(f.tobytes())
            parts.append(np.where(f >= 0, rel - cycle, 0).tobytes())
        parts.append(np.where(self.ld_f >= 0, self.ld_k - cycle, 0).tobytes())
        for array in (self.h_r, self.v_r, self.ld_f, self.sh_f, self.sh_r, self.ac_f, self.ac_r):
            parts.append(array.tobytes())
        return b"".join(parts)

    def advance(self, k: int) -> None:
        """Move every live token's time index ``k`` cycles on (a steady stretch)."""
        self.h_t += np.where(self.h_f >= 0, k, 0)
        self.v_t += np.where(self.v_f >= 0, k, 0)
        self.acc_n += np.where(self.acc_f >= 0, k, 0)
        self.ld_k += np.where(self.ld_f >= 0, k, 0)


def _shift_right(a: np.ndarray, fill: np.ndarray) -> None:
    a[:, 1:] = a[:, :-1]
    a[:, 0] = fill


def _shift_down(a: np.ndarray, fill: np.ndarray) -> None:
    a[1:, :] = a[:-1, :]
    a[0, :] = fill


class _Machine:
    """One execution of a schedule on the array."""

    def __init__(
        self,
        rows: int,
        cols: int,
        stationary: bool,
        folds: Sequence[FoldShape],
        stream: Sequence[int],
        load: Sequence[int],
        fast_forward: bool = True,
    ) -> None:
        self.rows, self.cols, self.stationary = rows, cols, stationary
        self.fast_forward = fast_forward
        self.folds, self.stream, self.load = list(folds), list(stream), list(load)
        self.t_of = np.array([f.t for f in self.folds] + [1], dtype=np.int64)
        self.state = _State(rows, cols)
        self.ri = np.arange(rows)
        self.cj = np.arange(cols)
        per_fold_outputs = [(f.t * cols if stationary else rows * cols) for f in self.folds]
        self.remaining = np.array(per_fold_outputs, dtype=np.int64)
        self.ends = [-1] * len(self.folds)
        self.pe_real = [np.zeros((rows, cols), dtype=bool) for _ in self.folds]
        # left reads, top reads, out writes, MACs, then MACs per fold
        self.counts = np.zeros(4 + len(self.folds), dtype=np.int64)
        self.executed = 0

    # ----- edge ports ---------------------------------------------------------------
    def _inject(
        self, cycle: int, starts: Sequence[int], lanes: np.ndarray, port: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Words entering a port this cycle: (fold, t, real) per lane, ``-1`` = none.

        Lane ``x`` of fold ``f`` carries word ``t = cycle - start - x`` for
        ``0 <= t < T`` (the systolic skew)."""
        n = lanes.size
        fold = np.full(n, _EMPTY, dtype=np.int64)
        tidx = np.zeros(n, dtype=np.int64)
        real = np.zeros(n, dtype=bool)
        for f, start in enumerate(starts):
            length = self.folds[f].t if port != "load" else self.rows
            if cycle < start or cycle > start + n - 1 + length - 1:
                continue
            t = cycle - start - lanes
            live = (t >= 0) & (t < length)
            if not live.any():
                continue
            if (live & (fold >= 0)).any():
                raise Hazard(cycle, f"{port} port carries two words (folds {fold.max()}, {f})")
            fold[live] = f
            tidx[live] = t[live]
            shape = self.folds[f]
            if port == "left":
                real[live] = lanes[live] < shape.rows_used
            elif port in ("top", "psum"):
                real[live] = lanes[live] < shape.cols_used
            else:  # stationary word k of column j is destined for row rows-1-k
                real[live] = (lanes[live] < shape.cols_used) & (
                    self.rows - 1 - t[live] < shape.rows_used
                )
        return fold, tidx, real

    # ----- one cycle ----------------------------------------------------------------
    def step(self, cycle: int) -> tuple[np.ndarray, dict[int, int]]:
        """Execute one cycle; returns the count deltas and outputs per fold."""
        s = self.state
        before = self.counts.copy()
        done: dict[int, int] = {}
        f, t, r = self._inject(cycle, self.stream, self.ri, "left")
        self.counts[0] += int(r.sum())
        _shift_right(s.h_f, f)
        _shift_right(s.h_t, t)
        _shift_right(s.h_r, r)
        if self.stationary:
            self._step_stationary(cycle, done)
        else:
            self._step_os(cycle, done)
        self.executed += 1
        return self.counts - before, done

    def _step_os(self, cycle: int, done: dict[int, int]) -> None:
        s = self.state
        f, t, r = self._inject(cycle, self.stream, self.cj, "top")
        self.counts[1] += int(r.sum())
        _shift_down(s.v_f, f)
        _shift_down(s.v_t, t)
        _shift_down(s.v_r, r)
        here = s.h_f >= 0
        if not np.array_equal(here, s.v_f >= 0) or (
            here.any() and not (np.array_equal(s.h_f[here], s.v_f[here]))
        ):
            raise Hazard(cycle, "A and B words of different folds meet")
        if here.any() and not np.array_equal(s.h_t[here], s.v_t[here]):
            raise Hazard(cycle, "A and B words of different steps meet")
        if not here.any():
            return
        busy = here & (s.acc_f >= 0) & (s.acc_f != s.h_f)
        if busy.any():
            raise Hazard(cycle, "accumulator still holds the previous fold")
        s.acc_f[here] = s.h_f[here]
        s.acc_n[here] += 1
        real = here & s.h_r & s.v_r
        self.counts[3] += int(real.sum())
        self._mark_used(real, s.h_f)
        complete = here & (s.acc_n == self.t_of[s.acc_f])
        if complete.any():
            real_out = complete & s.h_r & s.v_r
            if (real_out.sum(axis=0) > 1).any():
                raise Hazard(cycle, "two outputs on one column bus")
            self.counts[2] += int(real_out.sum())
            for fold in np.unique(s.acc_f[complete]).tolist():
                done[fold] = int((s.acc_f[complete] == fold).sum())
            s.acc_f[complete] = _EMPTY
            s.acc_n[complete] = 0

    def _step_stationary(self, cycle: int, done: dict[int, int]) -> None:
        s = self.state
        f, t, r = self._inject(cycle, self.stream, self.cj, "psum")
        _shift_down(s.v_f, f)
        _shift_down(s.v_t, t)
        _shift_down(s.v_r, r)
        here = s.h_f >= 0
        if here.any():
            swap = here & (s.ac_f != s.h_f)
            if swap.any():
                if not np.array_equal(s.sh_f[swap], s.h_f[swap]):
                    raise Hazard(cycle, "a streaming word reached a PE before its stationary word")
                s.ac_f[swap] = s.sh_f[swap]
                s.ac_r[swap] = s.sh_r[swap]
                s.sh_f[swap] = _EMPTY
                s.sh_r[swap] = False
            if not np.array_equal(here, s.v_f >= 0) or not (
                np.array_equal(s.h_f[here], s.v_f[here])
                and np.array_equal(s.h_t[here], s.v_t[here])
            ):
                raise Hazard(cycle, "a streaming word met the wrong partial sum")
            real = here & s.h_r & s.ac_r
            self.counts[3] += int(real.sum())
            self._mark_used(real, s.h_f)
        out = s.v_f[-1] >= 0
        if out.any():
            self.counts[2] += int((out & s.v_r[-1]).sum())
            for fold in np.unique(s.v_f[-1][out]).tolist():
                done[fold] = int((s.v_f[-1][out] == fold).sum())
        # The load chain: stationary words shift down; a column whose chain is full
        # latches it into the shadow registers at the end of the cycle.
        f, k, r = self._inject(cycle, self.load, self.cj, "load")
        self.counts[1] += int(r.sum())
        _shift_down(s.ld_f, f)
        _shift_down(s.ld_k, k)
        full = (s.ld_f[0] >= 0) & (s.ld_k[0] == self.rows - 1)
        if full.any():
            cols = np.flatnonzero(full)
            if (s.sh_f[:, cols] >= 0).any():
                raise Hazard(cycle, "shadow registers still hold an unused stationary fold")
            expect = (self.rows - 1 - self.ri)[:, None]
            if not (s.ld_k[:, cols] == expect).all():
                raise Hazard(cycle, "load chain out of order")
            for c in cols.tolist():
                fold = int(s.ld_f[0, c])
                shape = self.folds[fold]
                s.sh_f[:, c] = fold
                s.sh_r[:, c] = (self.ri < shape.rows_used) & (c < shape.cols_used)
            s.ld_f[:, cols] = _EMPTY
            s.ld_k[:, cols] = 0

    def _mark_used(self, real: np.ndarray, folds: np.ndarray) -> None:
        if real.any():
            for fold in np.unique(folds[real]).tolist():
                mine = real & (folds == fold)
                self.pe_real[fold] |= mine
                self.counts[4 + fold] += int(mine.sum())

    # ----- the run ------------------------------------------------------------------
    def _next_event(self, cycle: int) -> int:
        """The first cycle after ``cycle`` at which the array's behaviour may change: a
        port opening or closing lane by lane, a fold's first or last words crossing the
        array, a stationary chain filling, or an accumulator completing."""
        spans: list[tuple[int, int]] = []
        reach = self.rows + self.cols - 2
        for f, shape in enumerate(self.folds):
            if self.ends[f] >= 0:
                continue
            a = self.stream[f]
            spans += [(a, a + reach), (a + shape.t, a + shape.t + reach)]
            if self.stationary:
                ell = self.load[f]
                spans += [(ell, ell + self.cols - 1), (ell + self.rows - 1, ell + reach + 1)]
        best = math.inf
        for lo, hi in spans:
            if hi > cycle:
                best = min(best, max(lo, cycle + 1))
        s = self.state
        if not self.stationary:
            live = s.acc_f >= 0
            if live.any():
                left = self.t_of[s.acc_f[live]] - s.acc_n[live]
                best = min(best, cycle + int(left.min()))
        return int(best) if best != math.inf else cycle + 1

    def run(self, horizon: int) -> ArrayRun:
        """Execute until every fold's outputs have left (or ``horizon`` cycles)."""
        cycle = min(min(self.stream, default=0), min(self.load, default=0))
        prev_sig: bytes | None = None
        prev_delta: np.ndarray | None = None
        prev_done: dict[int, int] | None = None
        while (self.remaining > 0).any():
            if cycle > horizon:
                raise Hazard(cycle, "schedule did not finish")
            delta, done = self.step(cycle)
            for fold, n in done.items():
                self.remaining[fold] -= n
                if self.remaining[fold] == 0:
                    self.ends[fold] = cycle
                elif self.remaining[fold] < 0:
                    raise Hazard(cycle, f"fold {fold} produced too many outputs")
            sig = self.state.signature(cycle) if self.fast_forward else b""
            if (
                self.fast_forward
                and prev_sig == sig
                and prev_delta is not None
                and np.array_equal(prev_delta, delta)
                and prev_done == done
            ):
                target = self._next_event(cycle) - 1
                if done:
                    for fold, n in done.items():
                        if n > 0:
                            target = min(target, cycle + int(self.remaining[fold] // n) - 1)
                k = target - cycle
                if k > 0:
                    self.state.advance(k)
                    self.counts += delta * k
                    for fold, n in done.items():
                        self.remaining[fold] -= n * k
                    cycle += k
                    sig = self.state.signature(cycle)
            prev_sig, prev_delta, prev_done = sig, delta, done
            cycle += 1
        left, top, out, macs = (int(x) for x in self.counts[:4])
        return ArrayRun(
            cycles=max(self.ends) + 1,
            ends=tuple(self.ends),
            left_reads=left,
            top_reads=top,
            out_writes=out,
            macs=macs,
            fold_macs=tuple(int(x) for x in self.counts[4:]),
            pes_used=tuple(int(p.sum()) for p in self.pe_real),
            executed_cycles=self.executed,
        )


def execute_folds(
    rows: int,
    cols: int,
    stationary: bool,
    folds: Sequence[FoldShape],
    stream: Sequence[int],
    load: Sequence[int] = (),
    fast_forward: bool = True,
) -> ArrayRun:
    """Execute ``folds`` issued at the given cycles; raise :class:`Hazard` on a conflict.

    ``stream[f]`` is the cycle fold ``f``'s first streaming word enters row 0 (and, in
    OS, column 0); ``load[f]`` the cycle its first stationary word enters column 0.
    ``fast_forward=False`` executes every cycle (same result, slower).
    """
    if stationary and len(load) != len(folds):
        raise ValueError("a stationary dataflow needs a load cycle per fold")
    machine = _Machine(
        rows, cols, stationary, folds, stream, load if stationary else [], fast_forward
    )
    longest = max(stream) + max(f.t for f in folds) + 2 * (rows + cols) + 4
    if stationary:
        longest += max(load) + rows
    return machine.run(horizon=longest + 4 * (rows + cols))


def _earliest(ok: Callable[[int], bool], low: int) -> int:
    """The least ``x >= low`` with ``ok(x)``, for a monotone predicate (galloping, then
    bisection)."""
    step = 1
    high = low
    while not ok(high):
        low = high + 1
        high = low + step
        step *= 2
    while low < high:
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid + 1
    return high


def _runs(
    rows: int,
    cols: int,
    stationary: bool,
    folds: list[FoldShape],
    stream: list[int],
    load: list[int],
) -> ArrayRun | None:
    try:
        return execute_folds(rows, cols, stationary, folds, stream, load)
    except Hazard:
        return None


@dataclass(frozen=True, slots=True)
class LayerExecution:
    """A layer's folds executed on the array: cycles, SRAM words and fold statistics.

    ``fold_cycles`` are each fold's cycles from its first word in to its last output out
    (alone on the array, or as scheduled for ``whole`` executions)."""

    cycles: int
    folds: int
    distinct_shapes: int
    executed_cycles: int
    left_reads: int
    top_reads: int
    out_writes: int
    macs: int
    fold_cycles: tuple[int, ...]
    fold_macs: tuple[int, ...]
    fold_pes_used: tuple[int, ...]
    issue_cycles: tuple[int, ...]


def _single(rows: int, cols: int, stationary: bool, shape: FoldShape) -> tuple[int, ArrayRun]:
    """One fold on an empty array: its earliest hazard-free stream issue (relative to its
    first stationary load at cycle 0) and its execution."""
    if not stationary:
        run = execute_folds(rows, cols, False, [shape], [0])
        return 0, run
    delay = _earliest(lambda a: _runs(rows, cols, True, [shape], [a], [0]) is not None, 0)
    return delay, execute_folds(rows, cols, True, [shape], [delay], [0])


def _pair_offsets(
    rows: int, cols: int, stationary: bool, first: FoldShape, second: FoldShape, gap: int
) -> tuple[int, int]:
    """Overlapped issue: the earliest (load, stream) cycles of ``second`` when ``first``
    loads at cycle 0 and streams at ``gap``, found by executing both."""
    far = gap + first.t + 4 * (rows + cols) + second.t + 8
    if not stationary:

        def os_ok(s: int) -> bool:
            return _runs(rows, cols, False, [first, second], [0, s], []) is not None

        return 0, _earliest(os_ok, 1)

    def load_ok(ell: int) -> bool:
        return _runs(rows, cols, True, [first, second], [gap, far + ell], [0, ell]) is not None

    ell = _earliest(load_ok, 1)

    def stream_ok(a: int) -> bool:
        return _runs(rows, cols, True, [first, second], [gap, a], [0, ell]) is not None

    return ell, _earliest(stream_ok, gap + 1)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Issue cycles of every fold (``load`` only for stationary dataflows) and each
    distinct fold shape's lone execution: its stream delay after its load, and its run."""

    stream: tuple[int, ...]
    load: tuple[int, ...]
    singles: dict[FoldShape, tuple[int, ArrayRun]]


def schedule_layer(
    rows: int, cols: int, stationary: bool, shapes: Sequence[FoldShape], overlap: bool
) -> Schedule:
    """Issue every fold at the earliest cycle the array allows.

    Strictly serial (SCALE-Sim): a fold issues the cycle after the previous fold's last
    output left, onto an array whose moving registers are all empty, so its execution is
    its lone execution shifted in time (the active stationary registers still hold the
    previous fold, but the swap overwrites them before they are read). Overlapped: the
    earliest issue for which executing the fold with its predecessor meets no hazard.
    Each distinct shape, and each distinct adjacent pair, is executed once.
    """
    singles: dict[FoldShape, tuple[int, ArrayRun]] = {}
    for shape in shapes:
        if shape not in singles:
            singles[shape] = _single(rows, cols, stationary, shape)
    stream: list[int] = []
    load: list[int] = []
    pairs: dict[tuple[FoldShape, FoldShape, int], tuple[int, int]] = {}
    for index, shape in enumerate(shapes):
        delay = singles[shape][0]
        if index == 0:
            load.append(0)
            stream.append(delay)
            continue
        prev = shapes[index - 1]
        if not overlap:
            prev_delay, prev_run = singles[prev]
            begin = stream[-1] - prev_delay + prev_run.cycles
            load.append(begin)
            stream.append(begin + delay)
            continue
        gap = stream[-1] - load[-1]
        key = (prev, shape, gap)
        if key not in pairs:
            pairs[key] = _pair_offsets(rows, cols, stationary, prev, shape, gap)
        ell, a = pairs[key]
        base = load[-1] if stationary else stream[-1]
        load.append(base + ell if stationary else base + a)
        stream.append(base + a)
    return Schedule(tuple(stream), tuple(load), singles)


def execute_layer(
    rows: int,
    cols: int,
    stationary: bool,
    shapes: Sequence[FoldShape],
    overlap: bool = False,
    whole: bool = False,
) -> LayerExecution:
    """Execute a layer's folds: each distinct fold shape once (``whole=False``) or every
    fold in one continuous execution of the whole schedule (``whole=True``; slow, used
    by the tests to prove the two agree)."""
    shapes = list(shapes)
    plan = schedule_layer(rows, cols, stationary, shapes, overlap)
    starts = plan.load if stationary else plan.stream
    if whole:
        run = execute_folds(rows, cols, stationary, shapes, plan.stream, plan.load)
        return LayerExecution(
            cycles=run.cycles - starts[0],
            folds=len(shapes),
            distinct_shapes=len(plan.singles),
            executed_cycles=run.executed_cycles,
            left_reads=run.left_reads,
            top_reads=run.top_reads,
            out_writes=run.out_writes,
            macs=run.macs,
            fold_cycles=tuple(e - s + 1 for e, s in zip(run.ends, starts, strict=True)),
            fold_macs=run.fold_macs,
            fold_pes_used=run.pes_used,
            issue_cycles=starts,
        )
    runs = {shape: single[1] for shape, single in plan.singles.items()}
    # The last fold ends as its lone execution does, shifted to its stream issue.
    last_delay, last_run = plan.singles[shapes[-1]]
    return LayerExecution(
        cycles=plan.stream[-1] - last_delay + last_run.cycles - starts[0],
        folds=len(shapes),
        distinct_shapes=len(runs),
        executed_cycles=sum(r.executed_cycles for r in runs.values()),
        left_reads=sum(runs[s].left_reads for s in shapes),
        top_reads=sum(runs[s].top_reads for s in shapes),
        out_writes=sum(runs[s].out_writes for s in shapes),
        macs=sum(runs[s].macs for s in shapes),
        fold_cycles=tuple(runs[s].cycles for s in shapes),
        fold_macs=tuple(runs[s].macs for s in shapes),
        fold_pes_used=tuple(runs[s].pes_used[0] for s in shapes),
        issue_cycles=starts,
    )


ENGINE_SYSTOLIC = "sim-systolic"


def simulate_systolic(
    layer: ScaleSimLayer,
    config: ScaleSimConfig,
    *,
    overlap: bool = False,
    layer_index: int = 0,
    whole: bool = False,
) -> SystolicLayerResult:
    """Execute one layer on the array and report it in SCALE-Sim's conventions."""
    low = lower(layer, config)
    rows, cols, stationary = low.rows, low.cols, low.dataflow != "os"
    shapes = [FoldShape(r, c, low.t) for r, c in low.fold_extents()]
    run = execute_layer(rows, cols, stationary, shapes, overlap=overlap, whole=whole)
    if run.macs != layer.macs:
        raise AssertionError(f"executed {run.macs} MACs, the layer has {layer.macs}")
    # Which edge carries which operand: OS streams the IFMAP from the left and the
    # filters from the top; WS holds the filters and streams the IFMAP; IS the reverse.
    if low.dataflow == "is":
        ifmap, filt = run.top_reads, run.left_reads
    else:
        ifmap, filt = run.left_reads, run.top_reads
    pes = rows * cols
    if stationary:
        # SCALE-Sim's WS/IS utilisation divides by its fold length plus cols - 1.
        util_cycles = [c + cols - 1 for c in run.fold_cycles]
        ofmap = run.out_writes
    else:
        util_cycles = list(run.fold_cycles)
        # SCALE-Sim's OS write count adds the padded fold's height and width per fold.
        ofmap = run.out_writes + len(shapes) * (rows + cols)
    compute = sum(m / (pes * u) for m, u in zip(run.fold_macs, util_cycles, strict=True))
    counts = ScaleSimCounts(
        total_cycles=run.cycles - 1,
        sram_ifmap_reads=ifmap,
        sram_filter_reads=filt,
        sram_ofmap_writes=ofmap,
        dram_ifmap_reads=layer.ifmap_words,
        dram_filter_reads=layer.filter_words,
        dram_ofmap_writes=run.out_writes,
        compute_util_pct=100.0 * compute / len(shapes),
        mapping_eff_pct=100.0 * sum(run.fold_pes_used) / (pes * len(shapes)),
    )
    return SystolicLayerResult(
        engine=ENGINE_SYSTOLIC,
        layer=layer.name,
        layer_index=layer_index,
        dataflow=low.dataflow,
        array=f"{rows}x{cols}",
        sr=low.sr,
        sc=low.sc,
        t=low.t,
        folds=len(shapes),
        overlap_folds=overlap,
        runtime_cycles=run.cycles,
        macs=run.macs,
        scalesim=counts,
        metrics=(
            ("utilization", run.macs / (run.cycles * pes)),
            ("distinct_fold_shapes", run.distinct_shapes),
            ("executed_cycles", run.executed_cycles),
            ("sram_ofmap_writes_executed", run.out_writes),
        ),
    )
