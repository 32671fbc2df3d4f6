"""The L1s' next-touch table under LRU: each output element's last touch, found per step
translation before the step's keys are expanded (see docs/simulator.md, *Speed*).

A step touches its geometry key's output keys moved by its base's flat output
translation ``T``: the key's keys relative to a zero translation (``rel``) plus ``T``.
Geometry keys with equal ``rel`` (neighbours classed differently; the passes of a loop
the outputs do not follow, such as an input channel loop) form one class, and within a
class a step translated by ``T`` touches exactly the keys every other step translated by
``T`` touches. So each class's last step per translation, found over its steps (a code
per step rather than per touched key), touches last every key it touches within the
class; the classes' keys then meet only where different ``rel`` overlap, which the
table's reduction to each key's last touch settles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

__all__ = ["LastTouches", "last_output_touches", "last_touches"]

_CHUNK = 1 << 20
"""About how many values one array of expanded steps or codes holds (peak memory)."""


def last_output_touches(
    keys: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    runs: tuple[np.ndarray, np.ndarray, np.ndarray],
    span: int,
) -> Iterator[np.ndarray]:
    """Codes ``key * span + step`` holding every output key's last touch (and maybe
    earlier ones), each array as sorted runs. ``keys``: per geometry key its output keys
    relative to a zero translation (sorted), and per step with that key the step's flat
    output translation, index and run; ``runs``: per run the output translation of one
    repetition, its steps and how many times it comes (a step comes once per
    repetition)."""
    shift, m, count = runs
    classes: dict[bytes, tuple[np.ndarray, LastTouches]] = {}
    for rel, moved, index, run in keys:
        if not rel.size:
            continue
        found = classes.get(rel.tobytes())
        if found is None:
            found = classes[rel.tobytes()] = (rel, LastTouches(span))
        for part in _step_codes(int(rel[0]), moved, index, shift[run], m[run], count[run], span):
            found[1].add(part)
    for rel, last in classes.values():
        steps = last.result()
        # Per relative key a sorted run: the class's last steps, each step's keys moved.
        width = (rel - rel[0]) * span
        per = max(1, _CHUNK // max(1, steps.size))
        for lo in range(0, width.size, per):
            yield (steps[None, :] + width[lo : lo + per, None]).ravel()


def _step_codes(
    first: int,
    moved: np.ndarray,
    index: np.ndarray,
    shift: np.ndarray,
    m: np.ndarray,
    count: np.ndarray,
    span: int,
) -> Iterator[np.ndarray]:
    """Per step and repetition the code ``(first + T) * span + step`` (``first``: the
    class's lowest relative key, so the code is a key's): a repetition that does not move
    the outputs touches the same keys again, so only its last counts."""
    fixed = shift == 0
    index = np.where(fixed, index + (count - 1) * m, index)
    count = np.where(fixed, 1, count)
    # In runs of about a million repetitions (less peak memory).
    ends = np.cumsum(count)
    start = 0
    while start < count.size:
        reach = int(ends[start] - count[start]) + _CHUNK
        stop = max(start + 1, int(np.searchsorted(ends, reach, side="right")))
        c = count[start:stop]
        rep = np.repeat(np.arange(start, stop), c)
        r = np.arange(rep.size) - np.repeat(np.cumsum(c) - c, c)
        yield (first + moved[rep] + r * shift[rep]) * span + index[rep] + r * m[rep]
        start = stop


class LastTouches:
    """Codes ``key * span + step`` added in parts, reduced to each key's last touch in
    bounded batches."""

    def __init__(self, span: int) -> None:
        self.span = span
        self.parts: list[np.ndarray] = []
        self.held = self.kept = 0

    def add(self, part: np.ndarray) -> None:
        """Take ``part`` (it may be sorted in place later)."""
        self.parts.append(part)
        self.held += part.size
        # Reduced once the new codes outnumber the kept ones (and a few million): each
        # kept code is sorted again only about as often as a new one.
        if self.held - self.kept > max(1 << 22, self.kept):
            self.parts = [last_touches(np.concatenate(self.parts), self.span)]
            self.held = self.kept = self.parts[0].size

    def result(self) -> np.ndarray:
        """The codes reduced to each key's last, sorted (the parts are let go)."""
        codes = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int64)
        self.parts.clear()
        return last_touches(codes, self.span)


def last_touches(codes: np.ndarray, span: int) -> np.ndarray:
    """The ``key * span + step`` codes reduced to each key's last step, sorted (``codes``
    is sorted in place)."""
    # The codes come as sorted runs (a step's keys), which a merge sort exploits.
    codes.sort(kind="stable")
    key = codes // span
    keep = np.empty(codes.size, dtype=bool)
    np.not_equal(key[1:], key[:-1], out=keep[:-1])
    keep[-1:] = True
    return codes[keep]
