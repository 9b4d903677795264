"""A one-line progress bar for a terminal.

A few lines instead of a dependency: it redraws at most ten times a second, and only on
a terminal, so log files, CI output and the extra processes of a torchrun job stay clean
(the per-epoch summary goes to the log instead).
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(
        self,
        total: int,
        label: str,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.count = 0
        self.started = time.perf_counter()
        self._last_draw = 0.0

    def advance(self) -> bool:
        """Count one step; True when it is time to redraw (the caller then draws)."""
        self.count += 1
        if not self.enabled:
            return False
        now = time.perf_counter()
        if now - self._last_draw < 0.1 and self.count < self.total:
            return False
        self._last_draw = now
        return True

    def draw(self, **values: float) -> None:
        elapsed = time.perf_counter() - self.started
        rate = self.count / elapsed if elapsed > 0 else 0.0
        shown = "  ".join(f"{name} {value:.4f}" for name, value in values.items())
        width = 20
        filled = width * self.count // max(self.total, 1)
        bar = "#" * filled + "." * (width - filled)
        line = (
            f"{self.label} [{bar}] {self.count}/{self.total}  {shown}  {rate:.0f} it/s"
        )
        columns = shutil.get_terminal_size().columns
        self.stream.write("\r" + line[: columns - 1].ljust(columns - 1))
        self.stream.flush()

    def close(self) -> None:
        """Clear the line, so the epoch summary that follows starts on a clean one."""
        if self.enabled and self._last_draw:
            columns = shutil.get_terminal_size().columns
            self.stream.write("\r" + " " * (columns - 1) + "\r")
            self.stream.flush()
