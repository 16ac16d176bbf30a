"""A dependency-free progress bar for long CLI jobs (training, ingest, simulation).

On a terminal it redraws one line; in a log (not a TTY) it prints a line at most every 10% so CI logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class ProgressBar:
    """Call with (done, total, metrics) after each unit of work; ``close()`` ends the line."""

    def __init__(self, label: str, *, stream: TextIO | None = None, width: int = 30, unit: str = "") -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.perf_counter()
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int, metrics: dict[str, Any] | None = None) -> None:
        fraction = min(max(done / total, 0.0), 1.0) if total else 1.0
        filled = round(fraction * self.width)
        shown = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in (metrics or {}).items())
        elapsed = time.perf_counter() - self.started
        eta = f" ETA {elapsed / done * (total - done):.1f}s" if 0 < done < total else ""
        unit = f"{self.unit} " if self.unit else ""
        line = (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {unit}{done}/{total} "
                f"{elapsed:.1f}s{eta}  {shown}")
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


def stopping_note(epochs_run: int, best_epoch: int, max_epochs: int) -> str:
    """How a training run ended, in words: stopped early (patience ran out: no better validation loss for several
    epochs), or ran out of epochs, and then whether it was still improving at the last one."""
    if epochs_run < max_epochs:
        return (f"stopped early at epoch {epochs_run} of {max_epochs} (best {best_epoch}): no better validation loss "
                "for the patience window")
    if best_epoch >= epochs_run:
        return (f"{epochs_run} epochs (best {best_epoch}): still improving at the last epoch; more --epochs may "
                "help")
    return f"{epochs_run} epochs (best {best_epoch}): ran every epoch; the best came {epochs_run - best_epoch} before the end"
