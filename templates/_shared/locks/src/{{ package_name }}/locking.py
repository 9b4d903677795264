"""Locks between processes on the folders that commands share, so that two at once
neither write over each other's work nor clear each other's temporary files as stale.

A lock is `flock` on a file in the folder (`.lock`, or `.<something>.lock`; the
project's .gitignore leaves those out of commits). The system lets it go when its
process ends, so a command that was killed never leaves a lock behind that the next one
waits on. Where the file system takes no locks (some NFS and FUSE mounts), commands
run unguarded, with a warning.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .atomic import make_folder, os_error_reason
from .errors import BlockedError, ConfigError

LOCK_FILE = ".lock"
_held: set[Path] = set()  # the folders this process holds, so it may nest holds

log = logging.getLogger(__name__)


def _open(path: Path) -> int:
    make_folder(path.parent)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise ConfigError(f"cannot lock {path}: {os_error_reason(error)}") from None


if sys.platform == "win32":  # no shared locks there: every lock is exclusive
    import msvcrt

    def _acquire(handle: int, *, shared: bool, wait: bool) -> bool:
        while True:
            try:
                msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not wait:
                    return False
                time.sleep(0.05)

    def _release(handle: int) -> None:
        with contextlib.suppress(OSError):
            msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _acquire(handle: int, *, shared: bool, wait: bool) -> bool:
        operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(handle, operation | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        except OSError as error:  # a file system without locks (some NFS, FUSE)
            _warn_unlocked(os_error_reason(error).lower())
        return True

    def _release(handle: int) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_UN)


@functools.cache  # once a process
def _warn_unlocked(reason: str) -> None:
    log.warning(
        "the project's folders cannot be locked here (%s): run one command at a time",
        reason,
    )


@contextlib.contextmanager
def locked(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Holds the lock on the file `path` (made if missing) while the block runs,
    waiting for it if another process holds it: exclusive, or `shared` with the
    other shared holders."""
    handle = _open(path)
    try:
        _acquire(handle, shared=shared, wait=True)
        try:
            yield
        finally:
            _release(handle)
    finally:
        os.close(handle)


class SharedLock:
    """A lock held shared for as long as a run uses its folder (`open` to `close`):
    `open` tells whether this run is the only one, when it may clear what killed runs
    left, before it goes shared."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: int | None = None

    def open(self) -> bool:
        """Take the lock; True if no other run held it (then it is held exclusive,
        until `share`)."""
        self._handle = _open(self.path)
        if _acquire(self._handle, shared=False, wait=False):
            return True
        _acquire(self._handle, shared=True, wait=True)
        return False

    def share(self) -> None:
        """Let other runs in beside this one."""
        if self._handle is not None and sys.platform != "win32":
            _acquire(self._handle, shared=True, wait=True)

    def close(self) -> None:
        if self._handle is not None:
            _release(self._handle)
            os.close(self._handle)
            self._handle = None


@contextlib.contextmanager
def hold_folder(folder: Path, running: str, instead: str) -> Iterator[None]:
    """Hold `folder` against every other process for as long as the block runs, or
    raise BlockedError at once: "<folder>: <running> is running here (pid N);
    <instead>". The lock file holds the holder's pid, for that message. On Windows,
    whose locks keep others from reading it, the user keeps to one at a time."""
    key = folder.resolve()
    if sys.platform == "win32" or key in _held:
        yield
        return
    handle = _open(folder / LOCK_FILE)
    try:
        if not _acquire(handle, shared=False, wait=False):
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip()
            raise BlockedError(
                f"{folder}: {running} is running here (pid {holder or 'unknown'});"
                f" {instead}"
            )
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
            _release(handle)
    finally:
        os.close(handle)
