"""Per-epoch metrics: a CSV file, a PNG of the curves and, optionally, TensorBoard."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
from pathlib import Path
from typing import Any

from .errors import ConfigError

COLUMNS = (
    "epoch",
    "step",
    "lr",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "seconds",
)


def write_text_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_csv(history: list[dict[str, Any]], path: Path) -> None:
    """Rewrite the whole file from the history kept in the checkpoint.

    So the CSV of a resumed run holds each epoch exactly once.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text_atomically(path, buffer.getvalue())


def write_json(values: dict[str, Any], path: Path) -> None:
    write_text_atomically(path, json.dumps(values, indent=2) + "\n")


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, as a PNG."""
    # A Figure on an Agg canvas never touches pyplot's global GUI backend, so this
    # works headless (servers, CI, torchrun workers).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        axes.plot(
            epochs,
            [row[f"train_{metric}"] for row in history],
            marker="o",
            label="train",
        )
        axes.plot(
            epochs,
            [row[f"val_{metric}"] for row in history],
            marker="o",
            label="validation",
        )
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    loss_axes.set_yscale("log")
    figure.savefig(path, dpi=100)


class TensorBoard:
    """Scalars to TensorBoard (`train.tensorboard=true`, package installed)."""

    def __init__(self, log_dir: Path) -> None:
        self.check_available()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    @staticmethod
    def check_available() -> None:
        """Fail before training starts, not after the first epoch."""
        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError(
                "train.tensorboard=true: the tensorboard package is not installed "
                "(pip install tensorboard)"
            )

    def log(self, row: dict[str, Any]) -> None:
        for name, value in row.items():
            if name not in ("epoch", "step", "seconds"):
                self.writer.add_scalar(name, value, global_step=row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
