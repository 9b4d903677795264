"""Run folders and checkpoints.

A run folder is `<run_root>/<YYYYmmdd-HHMMSS>-<run_name>[-N]`, created atomically with
mkdir, so two runs started in the same second get two folders. It holds:

    config.yaml            the resolved configuration
    train.log              the log
    metrics.csv            one row per epoch (and curves.png, drawn from it)
    metrics.json           the final test metrics
    checkpoints/last.pt    written at the end of every epoch
    checkpoints/best.pt    the epoch with the best monitored validation metric

Checkpoints are written to a temporary file that is then renamed over the old one, so an
interrupted write never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

CHECKPOINT_KEYS = (
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "rng",
    "epoch",
    "step",
    "config",
    "history",
    "best",
    "epochs_without_improvement",
)


def create_run_dir(run_root: str | Path, run_name: str) -> Path:
    root = Path(run_root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while True:
        path = root / (
            f"{stamp}-{run_name}" if suffix == 1 else f"{stamp}-{run_name}-{suffix}"
        )
        try:
            # mkdir fails if another run, in any process, took the name first.
            path.mkdir()
        except FileExistsError:
            suffix += 1
            continue
        (path / "checkpoints").mkdir()
        return path


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        # weights_only: a checkpoint is data, and loading one must not run code.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as error:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(error).__name__}"
        ) from None
    missing = (
        [key for key in CHECKPOINT_KEYS if key not in state]
        if isinstance(state, dict)
        else ["all"]
    )
    if missing:
        raise CheckpointError(
            f"{path} is not a checkpoint of this project "
            f"(missing: {', '.join(missing)})"
        )
    return state


def find_checkpoint(
    target: str | Path, run_root: str | Path, which: str = "last"
) -> Path:
    """Resolve `latest`, a run folder or a checkpoint file to a checkpoint file.

    `latest` is the run under run_root whose last.pt was written most recently.
    """
    if str(target) == "latest":
        candidates = sorted(
            Path(run_root).glob("*/checkpoints/last.pt"),
            key=lambda p: p.stat().st_mtime,
        )
        if not candidates:
            raise CheckpointError(
                f"no run with a checkpoint under {run_root}/ to resume"
            )
        target = candidates[-1].parent.parent
    path = Path(target)
    if path.is_dir():
        path = path / "checkpoints" / f"{which}.pt"
        if not path.is_file():
            raise CheckpointError(
                f"{path} does not exist: is {target} a run folder of this project?"
            )
        return path
    if not path.is_file():
        raise CheckpointError(f"{target} is neither a run folder nor a checkpoint file")
    return path


def run_dir_of(checkpoint_path: Path) -> Path:
    """The run folder of a checkpoint (checkpoints live in <run>/checkpoints/)."""
    return checkpoint_path.resolve().parent.parent
