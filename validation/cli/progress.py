"""A progress bar on stderr for long runs: redrawn in place on a terminal, a line every
tenth of the way otherwise, silent for runs that finish within ``delay_s`` seconds.
A count that goes down starts a new phase (the harness's explaining re-runs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """Call with (done, total, label) as work completes; call :meth:`close` at the end."""

    def __init__(self, title: str, stream: TextIO | None = None, delay_s: float = 2.0) -> None:
        self.title = title
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.delay_s = delay_s
        self.tty = self.stream.isatty()
        self.last_tenth = -1
        self.last_done = 0
        self.drawn = False

    def __call__(self, done: int, total: int, label: object = "") -> None:
        elapsed = time.monotonic() - self.started
        if done < self.last_done:  # a new phase of work (e.g. the explaining re-runs)
            self.last_tenth = -1
        self.last_done = done
        if elapsed < self.delay_s and done < total:
            return
        fraction = done / total if total else 1.0
        if self.tty:
            width = 30
            bar = "#" * int(fraction * width) + "." * (width - int(fraction * width))
            text = f"\r{self.title} [{bar}] {done}/{total} {elapsed:5.0f}s {str(label)[:40]:<40}"
            self.stream.write(text)
            self.drawn = True
        elif int(fraction * 10) > self.last_tenth:
            self.last_tenth = int(fraction * 10)
            self.stream.write(
                f"{self.title}: {done}/{total} ({fraction:.0%}) after {elapsed:.0f}s\n"
            )
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
