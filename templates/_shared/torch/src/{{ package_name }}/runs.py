"""Run folders that never collide, checkpoints written atomically, and the metrics file.

A run folder is `<root>/<YYYYmmdd-HHMMSS>-<name>[-N]`. It is claimed with mkdir, which
fails if anyone else, in any process, took the name first, so two runs started in the
same second get two folders. A folder that a command goes on writing into (a run that
is resumed, a runs folder a grid fills) is held by one process at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .atomic import (
    atomic_writer,
    os_error_reason,
    remove_stale_temporaries,
    write_json_atomic,
)
from .errors import BlockedError, ConfigError

METRICS_FILE = "metrics.json"
LOCK_FILE = ".lock"
_held: set[Path] = set()  # the folders this process holds, so it may nest holds

log = logging.getLogger(__name__)


def prepare_run_root(root: str | Path) -> Path:
    """The folder runs go in, made if missing; ConfigError if it cannot be, so a
    command can check it before its work rather than after."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"run root {root} is a file, or lies under one") from None
    except OSError as error:  # permission denied, a place that takes no folders (/proc)
        reason = os_error_reason(error).lower()
        raise ConfigError(f"cannot create run root {root}: {reason}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot create a run folder in {root}: permission denied")
    return root


def create_run_dir(root: str | Path, name: str) -> Path:
    """Claim a new, empty run folder under `root` (made if missing)."""
    root = prepare_run_root(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in range(1, 10_000):
        stem = f"{stamp}-{name}" if suffix == 1 else f"{stamp}-{name}-{suffix}"
        path = root / stem
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as error:  # permission denied, a full disk
            reason = os_error_reason(error).lower()
            raise ConfigError(
                f"cannot create a run folder in {root}: {reason}"
            ) from None
        return path
    raise ConfigError(f"{root} already holds 9999 runs named {stamp}-{name}")


def latest_run(root: str | Path, holding: str) -> Path:
    """The run folder under `root` whose file `holding` was written most recently."""
    candidates = sorted(
        Path(root).glob(f"*/{holding}"), key=lambda path: path.stat().st_mtime
    )
    if not candidates:
        raise ConfigError(f"no run under {root}/ has a {holding}")
    return candidates[-1].parents[len(Path(holding).parts) - 1]


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """torch.save, atomically: a kill leaves the previous checkpoint intact, and the
    temporary file of an earlier killed write is cleared first."""
    path = Path(path)
    if path.parent.is_dir():
        remove_stale_temporaries(path.parent)
    with atomic_writer(path) as file:
        torch.save(state, file)


def write_metrics(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """The run's `metrics.json`: sorted keys, so equal results are equal bytes."""
    path = Path(run_dir) / METRICS_FILE
    write_json_atomic(path, metrics, sort_keys=True)
    return path


@contextlib.contextmanager
def hold_folder(folder: Path, running: str, instead: str) -> Iterator[None]:
    """Hold `folder` against every other process for as long as the block runs, or
    raise BlockedError: "<folder>: <running> is running here (pid N); <instead>".

    The lock is the system's (flock on the folder's .lock), so a killed process holds
    it no longer. Windows has no flock: there the user keeps to one at a time.
    """
    key = folder.resolve()
    if sys.platform == "win32" or key in _held:
        yield
        return
    import fcntl

    try:
        handle = open(folder / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115
    except OSError as error:
        reason = os_error_reason(error).lower()
        raise ConfigError(f"cannot lock {folder}: {reason}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise BlockedError(
                f"{folder}: {running} is running here (pid {holder}); {instead}"
            ) from None
        except OSError as error:  # a file system without locks (some NFS, FUSE)
            reason = os_error_reason(error).lower()
            log.warning(
                "%s: not locked (%s); run one command there at a time", folder, reason
            )
            yield
            return
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
