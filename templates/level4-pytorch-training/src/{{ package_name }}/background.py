"""Work the training loop need not wait for: writing checkpoints, drawing pictures.

Both are done on other threads; the GIL is released while a file is flushed to disk
and inside torch, so on a machine with a core to spare they overlap with training.

A `Writer` runs the jobs given to it one after another on a thread of its own, so a
checkpoint goes to disk (and is flushed there, which is the slow part) while the next
epoch trains. Each job is an atomic write of bytes made beforehand, so what reaches
the disk is the state at the moment of `submit`, whatever the run does next.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_Job = tuple[Callable[..., object], tuple[Any, ...]]


class Writer:
    """Jobs run in the order submitted, on one thread. `wait()` returns when all
    are done, and raises the first error one met (later jobs are then skipped)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, job: Callable[..., object], *args: Any) -> None:
        if self._thread is None:
            # Not a daemon: the interpreter waits for it rather than cut a write.
            self._thread = threading.Thread(target=self._work, name="writer")
            self._thread.start()
        self._jobs.put((job, args))

    def wait(self) -> None:
        """Block until every job submitted so far is done."""
        self._jobs.join()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Finish the jobs, then end the thread; the error of a job is raised."""
        if self._thread is None:
            return
        self._jobs.put(None)
        self._thread.join()
        self._thread = None
        self.wait()

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            try:
                if item is None:
                    return
                job, args = item
                if self._error is None:
                    job(*args)
            except BaseException as error:  # handed to the thread that waits
                self._error = error
            finally:
                self._jobs.task_done()


_drawing: list[threading.Thread] = []


def draw_later(what: str, draw: Callable[..., object], *args: Any) -> None:
    """Run `draw(*args)` on a thread of its own and return at once. Not a daemon:
    the interpreter waits for it on exit; `wait_for_pictures` waits sooner.

    Each picture starts once the one before it is done: two first imports of
    matplotlib on two threads at once deadlock on its module locks, and Python
    breaks the deadlock by failing one import, so a picture went missing."""
    before = _drawing[-1] if _drawing else None

    def work() -> None:
        if before is not None:
            before.join()
        try:
            draw(*args)
        except Exception as error:  # a picture is a convenience: the run stands
            log.warning("could not draw %s: %s", what, error)

    thread = threading.Thread(target=work, name=f"draw {what}")
    thread.start()
    _drawing.append(thread)


def wait_for_pictures() -> None:
    """Block until every picture `draw_later` started is on disk."""
    while _drawing:
        _drawing.pop().join()
