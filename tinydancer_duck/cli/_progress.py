"""A dependency-free progress bar for long CLI jobs (training, ingest, simulation).

On a terminal it redraws one line; in a log (not a TTY) it prints a line at most every 10% so CI logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class ProgressBar:
    """Call with (done, total, metrics) after each unit of work; ``close()`` ends the line."""

    def __init__(self, label: str, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.perf_counter()
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int, metrics: dict[str, Any] | None = None) -> None:
        fraction = min(max(done / total, 0.0), 1.0) if total else 1.0
        filled = round(fraction * self.width)
        shown = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in (metrics or {}).items())
        line = (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
                f"{time.perf_counter() - self.started:.1f}s  {shown}")
        if self._tty:
            self.stream.write("\r" + line.ljust(100)[:160])
        elif int(fraction * 10) > self._last_decile or done == total:
            self._last_decile = int(fraction * 10)
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
