"""A one-line progress bar for a terminal.

A few lines instead of a dependency. It draws only on a terminal and at most ten times
a second, so log files, CI output and the extra processes of a multi-process job stay
clean; what the bar showed that matters is printed or logged by its caller at the end.
"""

from __future__ import annotations

import shutil
import sys
import time
from types import TracebackType
from typing import TextIO


class ProgressBar:
    """`with ProgressBar(total, "train") as bar: ... bar.update(loss=0.12)`."""

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.count = 0
        self.values: dict[str, float | int | str] = {}
        self._started = time.perf_counter()
        self._last_draw = 0.0

    def update(self, count: int = 1, **values: float | int | str) -> None:
        """Count `count` more steps and show `values` (a loss, a pass count...)."""
        self.count += count
        self.values.update(values)
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw >= 0.1 or self.count >= self.total:
            self._last_draw = now
            self._draw(now)

    def close(self) -> None:
        """Clear the line, so whatever is printed next starts on a clean one."""
        if self.enabled and self._last_draw:
            self.stream.write("\r" + " " * (self._columns() - 1) + "\r")
            self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _draw(self, now: float) -> None:
        elapsed = now - self._started
        rate = self.count / elapsed if elapsed > 0 else 0.0
        width = 20
        filled = width * min(self.count, self.total) // max(self.total, 1)
        bar = "#" * filled + "." * (width - filled)
        shown = "  ".join(
            f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
            for name, value in self.values.items()
        )
        label = f"{self.label} " if self.label else ""
        line = f"{label}[{bar}] {self.count}/{self.total}  {shown}  {rate:.1f}/s"
        columns = self._columns()
        self.stream.write("\r" + line[: columns - 1].ljust(columns - 1))
        self.stream.flush()

    @staticmethod
    def _columns() -> int:
        return shutil.get_terminal_size().columns
