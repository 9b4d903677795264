"""Run folders that never collide, checkpoints written atomically, and the metrics file.

A run folder is `<root>/<YYYYmmdd-HHMMSS>-<name>[-N]`. It is claimed with mkdir, which
fails if anyone else, in any process, took the name first, so two runs started in the
same second get two folders.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from .atomic import (
    atomic_writer,
    os_error_reason,
    remove_stale_temporaries,
    write_json_atomic,
)
from .errors import ConfigError

METRICS_FILE = "metrics.json"


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
