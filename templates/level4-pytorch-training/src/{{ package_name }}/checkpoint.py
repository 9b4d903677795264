"""Checkpoints: reading them, finding them, fitting them to a model, resuming a run.

A run folder (made by runs.create_run_dir) holds:

    config.yaml            the resolved configuration
    train.log              the log
    metrics.csv            one row per epoch (and curves.png, drawn from it)
    metrics.json           the final test metrics, written when the run is finished
                           (then curves.png, and segmentation.png for segmentation)
    checkpoints/last.pt    written at the end of every epoch (and every N steps if set)
    checkpoints/best.pt    the epoch with the best monitored validation metric

runs.save_checkpoint writes them atomically: a kill never leaves a torn checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
)
from torch import nn

from .config import Config, config_from_checkpoint
from .configfile import flat_keys, flatten, merge, parse_overrides, validate
from .data import SEGMENTATION
from .errors import ConfigError
from .history import CURVES_FILE, SEGMENTATION_FILE
from .runs import METRICS_FILE, latest_run

CHECKPOINT_KEYS = (
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "rng",
    "epoch",
    "step",
    "batch",
    "epoch_sums",
    "config",
    "data",
    "history",
    "best",
    "epochs_without_improvement",
)

# Settings a resumed run may change: where and how it runs, never what it computes.
RESUME_MAY_CHANGE = (
    "device",
    "run_root",
    "deterministic",
    "threads",
    "data.num_workers",
    "data.eval_batch_size",
    "train.compile",
    "train.checkpoint_every_steps",
    "train.tensorboard",
    "train.logger",
)


class _DataInfo(BaseModel):
    model_config = ConfigDict(strict=True)

    input_shape: list[PositiveInt] = Field(min_length=1)
    class_names: list[str] = Field(min_length=1)
    task: Literal["classification", "segmentation"]


class _Best(BaseModel):
    model_config = ConfigDict(strict=True)

    epoch: NonNegativeInt | None
    value: float | None


class _Fields(BaseModel):
    """The kinds of value a checkpoint holds, checked before anything reads them: a
    checkpoint edited by hand, or made by something else, is one line, not a traceback
    from deep in a resume. (The optimiser's and schedule's insides are checked where
    torch loads them.)"""

    model_config = ConfigDict(strict=True, arbitrary_types_allowed=True)

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]
    rng: list[dict[str, Any]] = Field(min_length=1)  # one per process
    epoch: NonNegativeInt
    step: NonNegativeInt
    batch: NonNegativeInt
    epoch_sums: list[list[float]] = Field(min_length=1)  # one per process
    config: dict[str, Any]
    data: _DataInfo
    history: list[dict[str, Any]]
    best: _Best
    epochs_without_improvement: NonNegativeInt


class CheckpointError(ConfigError):
    """A checkpoint or run folder that is missing, unreadable or does not fit: an
    input the user named, so a usage error like any other bad input."""


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        # weights_only: a checkpoint is data, and loading one must not run code.
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as error:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {_first_sentence(error)} (damaged, cut "
            "short, or not a checkpoint of tensors and plain data)"
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
    try:
        _Fields.model_validate({key: state[key] for key in CHECKPOINT_KEYS})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        reason = first["msg"][:120]
        raise CheckpointError(
            f"{path} is not a checkpoint of this project: {where}: {reason}"
        ) from None
    return state


def _first_sentence(error: Exception) -> str:
    """torch's reasons run to paragraphs of advice (weights_only's, miniz's): the
    first sentence says what failed, on the one line an error gets."""
    text = " ".join(str(error).split())
    return text.split(". ")[0].rstrip(".")[:200] or type(error).__name__


def load_weights(
    model: nn.Module, weights: dict[str, torch.Tensor], path: Path
) -> None:
    """Load a checkpoint's weights, or say in one line why they do not fit the model."""
    expected = model.state_dict()
    for name, tensor in weights.items():
        if name in expected and expected[name].shape != tensor.shape:
            raise CheckpointError(
                f"{path} does not fit this model: {name} has shape "
                f"{list(tensor.shape)} there, {list(expected[name].shape)} here "
                "(is the model configuration the one the checkpoint was trained with?)"
            )
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    if missing or unexpected:
        names = ", ".join((missing or unexpected)[:3])
        raise CheckpointError(
            f"{path} does not fit this model: "
            f"{'missing' if missing else 'unexpected'} weights {names}"
        )
    model.load_state_dict(weights)


def find_checkpoint(
    target: str | Path, run_root: str | Path, which: str = "last"
) -> Path:
    """Resolve `latest`, a run folder or a checkpoint file to a checkpoint file.

    `latest` is the run under run_root whose last.pt was written most recently.
    """
    if str(target) == "latest":
        try:
            target = latest_run(run_root, "checkpoints/last.pt")
        except ConfigError:
            raise CheckpointError(
                f"no run with a checkpoint under {run_root}/"
            ) from None
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
    """The run folder of a checkpoint (checkpoints live in <run>/checkpoints/). A
    checkpoint kept anywhere else has none: two folders up from it may be any folder
    (your home, for ~/Downloads/last.pt), and a resumed run would write there."""
    if not in_checkpoints_folder(checkpoint_path):
        raise CheckpointError(
            f"{checkpoint_path} is not in the checkpoints/ folder of a run"
            " (<run>/checkpoints/last.pt): a run resumes in its own folder; to train"
            f" from these weights, start a run with init_from={checkpoint_path}"
        )
    return checkpoint_path.resolve().parent.parent


def in_checkpoints_folder(path: Path) -> bool:
    """Whether `path` is a file (there or not yet) in the checkpoints/ folder of a
    run, which holds a config.yaml."""
    folder = path.resolve().parent
    return folder.name == "checkpoints" and (folder.parent / "config.yaml").is_file()


def export_dir_of(checkpoint_path: Path) -> Path:
    """Where `export` writes by default: <run>/export/, or export/ beside a
    checkpoint kept outside a run folder."""
    try:
        return run_dir_of(checkpoint_path) / "export"
    except CheckpointError:
        return checkpoint_path.resolve().parent / "export"


def plan_resume(path: Path, overrides: list[str]) -> tuple[Config, str]:
    """The configuration a resumed run continues with, and a line saying what it will
    do; refuses what cannot continue the same run (a finished run, a new schedule)."""
    run_dir = run_dir_of(path)
    state = load_checkpoint(path)
    where = f"checkpoint {path}"
    saved = config_from_checkpoint(state["config"], where)
    changes = parse_overrides(Config, overrides)
    config = validate(
        Config,
        merge(saved.model_dump(), changes),
        where=where,
        overridden=flat_keys(changes),
    )
    fine_tune = (
        f"to train longer, fine-tune from its weights with a schedule of its own: "
        f"train init_from={run_dir / 'checkpoints' / 'best.pt'} train.epochs=N"
    )
    old, new = flatten(saved.model_dump()), flatten(config.model_dump())
    for key in new:
        if new[key] != old[key] and key not in RESUME_MAY_CHANGE:
            # It must end as if it had never stopped.
            raise ConfigError(
                f"command line: {key}: a resumed run keeps its own ({old[key]!r}),"
                f" got {new[key]!r}; {fine_tune}"
            )
    epoch, epochs = state["epoch"], config.train.epochs
    patience = config.train.early_stopping_patience
    stopped_early = bool(patience) and state["epochs_without_improvement"] >= patience
    # A kill after metrics.json but before a picture was drawn leaves one to draw:
    # testing again draws them all.
    pictures = [CURVES_FILE]
    if state["data"]["task"] == SEGMENTATION:
        pictures.append(SEGMENTATION_FILE)
    tested = all((run_dir / name).is_file() for name in [METRICS_FILE, *pictures])
    if (epoch >= epochs or stopped_early) and tested:
        how = "stopped early" if stopped_early and epoch < epochs else "finished"
        raise ConfigError(
            f"run {run_dir} {how} after {epoch} of {epochs} epochs and was tested: "
            f"nothing to resume; {fine_tune}"
        )
    if epoch >= epochs or stopped_early:
        plan = f"every epoch is done ({epoch} of {epochs}): testing only"
    elif state["batch"]:
        plan = (
            f"continuing epoch {epoch + 1} of {epochs} after batch {state['batch']} "
            f"(step {state['step']})"
        )
    else:
        plan = f"{epoch} of {epochs} epochs done: training epochs {epoch + 1}-{epochs}"
    return config, f"resuming {run_dir}: {plan}"
