"""Per-epoch records: metrics.csv, a PNG of the curves, a PNG of predicted masks, and
optional experiment loggers (TensorBoard, MLflow, Weights & Biases)."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .atomic import write_bytes_atomic, write_text_atomic
from .config import Config
from .configfile import flatten
from .errors import ConfigError

# The pictures of a finished run, drawn after its metrics.json.
CURVES_FILE = "curves.png"
SEGMENTATION_FILE = "segmentation.png"


def write_csv(history: list[dict[str, Any]], path: Path) -> None:
    """Rewrite the whole file from the history kept in the checkpoint.

    So the CSV of a resumed run holds each epoch exactly once.
    """
    buffer = io.StringIO()
    columns = list(history[0]) if history else []
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buffer.getvalue())


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, as a PNG."""
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    figure = _figure((10, 4))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        for split, label in (("train", "train"), ("val", "validation")):
            axes.plot(
                epochs, [row[f"{split}_{metric}"] for row in history], "o-", label=label
            )
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    if "val_mean_iou" in history[0]:
        accuracy_axes.plot(
            epochs, [row["val_mean_iou"] for row in history], "o-", label="val mean IoU"
        )
        accuracy_axes.legend()
    loss_axes.set_yscale("log")
    _save(figure, path)


def plot_segmentation(
    images: np.ndarray,
    true_masks: np.ndarray,
    predicted_masks: np.ndarray,
    class_names: list[str],
    path: Path,
) -> None:
    """One row per example: the input, the true mask, the predicted mask."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colours = ["#222222", "#e6550d", "#3182bd", "#31a354", "#fdd0a2", "#9e9ac8"]
    colours = (colours * len(class_names))[: len(class_names)]
    cmap = ListedColormap(colours)
    rows = len(images)
    figure = _figure((6, 2 * rows + 0.6))
    axes = figure.subplots(rows, 3, squeeze=False)
    for row in range(rows):
        panels = (images[row, 0], true_masks[row], predicted_masks[row])
        for column, (panel, title) in enumerate(
            zip(panels, ("input", "true mask", "predicted"), strict=True)
        ):
            axis = axes[row, column]
            if column == 0:
                axis.imshow(panel, cmap="gray", vmin=0, vmax=1)
            else:
                axis.imshow(panel, cmap=cmap, vmin=0, vmax=len(class_names) - 1)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title)
    figure.legend(
        handles=[
            Patch(color=colour, label=name)
            for colour, name in zip(colours, class_names, strict=True)
        ],
        loc="outside lower center",
        ncol=len(class_names),
        frameon=False,
    )
    _save(figure, path)


def _save(figure: Any, path: Path) -> None:
    # Whole or not at all: pictures are drawn on a thread the process may not wait for.
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(path, buffer.getvalue())


def _figure(size: tuple[float, float]) -> Any:
    # A Figure on an Agg canvas never touches pyplot's global GUI backend, so this
    # works headless (servers, CI, torchrun workers).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


class Logger(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


# Each optional logger: the module it imports and how to install it.
_PACKAGES = {
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "mlflow": ("mlflow", "pip install mlflow"),
    "wandb": ("wandb", "pip install wandb"),
}


def check_loggers(config: Config) -> None:
    """Fail before training starts, not after the first epoch."""
    for name in _wanted(config):
        module, install = _PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            key = f"train.logger={name}"
            if name == "tensorboard":
                key = "train.tensorboard=true"
            raise ConfigError(
                f"{key}: the {module} package is not installed ({install})"
            )


def open_loggers(config: Config, run_dir: Path) -> list[Logger]:
    openers: dict[str, Callable[[Config, Path], Logger]] = {
        "tensorboard": TensorBoard,
        "mlflow": MLflow,
        "wandb": WandB,
    }
    return [openers[name](config, run_dir) for name in _wanted(config)]


def _wanted(config: Config) -> list[str]:
    names = ["tensorboard"] if config.train.tensorboard else []
    return names + ([config.train.logger] if config.train.logger != "none" else [])


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in row.items()
        if name not in ("epoch", "seconds") and isinstance(value, (int, float))
    }


class TensorBoard:
    """Scalars to TensorBoard, in the run folder: `tensorboard --logdir runs`."""

    def __init__(self, config: Config, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(self, row: dict[str, Any]) -> None:
        for name, value in _scalars(row).items():
            self.writer.add_scalar(name, value, global_step=row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MLflow:
    """Parameters and per-epoch metrics to MLflow: to MLFLOW_TRACKING_URI if set,
    else to `mlruns/` in the run folder (`mlflow ui --backend-store-uri <that>`)."""

    def __init__(self, config: Config, run_dir: Path) -> None:
        self.mlflow = importlib.import_module("mlflow")
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            self.mlflow.set_tracking_uri((run_dir / "mlruns").resolve().as_uri())
        self.mlflow.start_run(run_name=run_dir.name)
        self.mlflow.log_params(flatten(config.model_dump()))

    def log(self, row: dict[str, Any]) -> None:
        self.mlflow.log_metrics(_scalars(row), step=row["epoch"])

    def close(self) -> None:
        self.mlflow.end_run()


class WandB:
    """Config and per-epoch metrics to Weights & Biases, offline unless WANDB_MODE
    says otherwise (`wandb sync` uploads an offline run later)."""

    def __init__(self, config: Config, run_dir: Path) -> None:
        wandb = importlib.import_module("wandb")
        self.run = wandb.init(
            project=config.run_name,
            name=run_dir.name,
            dir=str(run_dir),
            config=config.model_dump(),
            mode=os.environ.get("WANDB_MODE", "offline"),
        )

    def log(self, row: dict[str, Any]) -> None:
        self.run.log(_scalars(row), step=row["epoch"])

    def close(self) -> None:
        self.run.finish()
