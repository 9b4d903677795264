"""Loss, accuracy, confusion matrix and IoU of a model on a dataset; and of a saved run.

For segmentation every pixel counts as one example: accuracy is pixel accuracy, and
the intersection over union of class c is TP / (TP + FP + FN), read off the confusion
matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from . import distributed
from .checkpoint import find_checkpoint, load_checkpoint, load_weights
from .config import Config, config_from_checkpoint
from .data import SEGMENTATION, Batch, build_splits, eval_loader
from .errors import ConfigError
from .models import build_model
from .runtime import autocast, resolve_device, resolve_precision


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    count: int  # examples (pixels, for segmentation)
    confusion: torch.Tensor  # [true class, predicted class] -> number of examples

    @property
    def iou(self) -> list[float]:
        """Intersection over union per class (NaN for a class absent from both)."""
        true_positive = self.confusion.diagonal().double()
        union = (
            self.confusion.sum(0) + self.confusion.sum(1) - self.confusion.diagonal()
        )
        return (true_positive / union.double()).tolist()

    @property
    def mean_iou(self) -> float:
        present = [value for value in self.iou if value == value]  # drop NaN
        return sum(present) / max(len(present), 1)

    def metrics(self, prefix: str, task: str, class_names: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = {
            f"{prefix}_loss": self.loss,
            f"{prefix}_accuracy": self.accuracy,
            f"{prefix}_count": self.count,
        }
        if task == SEGMENTATION:
            values[f"{prefix}_mean_iou"] = self.mean_iou
            values[f"{prefix}_iou"] = {
                name: round(value, 6) if value == value else None
                for name, value in zip(class_names, self.iou, strict=True)
            }
        return values


@torch.no_grad()
def evaluate_loader(
    model: nn.Module,
    loader: DataLoader[Batch],
    device: torch.device,
    num_classes: int,
    *,
    amp_dtype: torch.dtype | None = None,
    limit_batches: int = 0,
) -> Evaluation:
    """Evaluate on every batch of `loader` (or the first `limit_batches`).

    Under torchrun each process sees its own share; the sums are added up over
    processes, so every process returns the metrics of the whole dataset.
    """
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    for index, (inputs, targets) in enumerate(loader):
        if limit_batches and index >= limit_batches:
            break
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            logits = model(inputs)
        loss_sum += F.cross_entropy(logits.float(), targets, reduction="sum")
        predictions = logits.argmax(dim=1)
        confusion += torch.bincount(
            (targets * num_classes + predictions).flatten(), minlength=num_classes**2
        ).view(num_classes, num_classes)
    model.train(was_training)
    distributed.all_reduce_sum(loss_sum)
    distributed.all_reduce_sum(confusion)
    confusion = confusion.cpu()
    count = int(confusion.sum())
    correct = int(confusion.diagonal().sum())
    return Evaluation(
        loss=float(loss_sum) / max(count, 1),
        accuracy=correct / max(count, 1),
        count=count,
        confusion=confusion,
    )


def format_confusion(confusion: torch.Tensor, class_names: list[str]) -> str:
    """The confusion matrix as text: rows are true classes, columns predictions."""
    width = (
        max(len(str(int(confusion.max()))), *(len(name) for name in class_names)) + 1
    )
    label_width = max(len(name) for name in class_names) + 1
    header = " " * label_width + "".join(name.rjust(width) for name in class_names)
    rows = [
        name.rjust(label_width) + "".join(str(int(value)).rjust(width) for value in row)
        for name, row in zip(class_names, confusion, strict=True)
    ]
    return "\n".join([header, *rows])


@dataclass
class SavedModel:
    """A trained model read back from a checkpoint, ready for inference."""

    path: Path
    state: dict[str, Any]
    config: Config
    model: nn.Module
    device: torch.device
    amp_dtype: torch.dtype | None
    input_shape: tuple[int, ...]
    class_names: list[str]
    task: str


def load_saved_model(
    target: str | Path, *, run_root: str, which: str, device_spec: str
) -> SavedModel:
    path = find_checkpoint(target, run_root, which=which)
    state = load_checkpoint(path)
    config = config_from_checkpoint(state["config"], f"checkpoint {path}")
    device = resolve_device(device_spec)
    try:
        amp_dtype = resolve_precision(config.train.precision, device)
    except ConfigError:
        amp_dtype = None  # trained in a precision this device lacks: run in fp32
    info = state["data"]
    input_shape = tuple(info["input_shape"])
    default = "unet" if info["task"] == SEGMENTATION else "cnn"
    model = build_model(
        config.model, input_shape, len(info["class_names"]), default=default
    )
    load_weights(model, state["model"], path)
    model.to(device).eval()
    return SavedModel(
        path,
        state,
        config,
        model,
        device,
        amp_dtype,
        input_shape,
        list(info["class_names"]),
        info["task"],
    )


def evaluate_run(
    target: str | Path,
    *,
    run_root: str = "runs",
    which: str = "best",
    split: str = "test",
    device_spec: str = "auto",
) -> tuple[SavedModel, Evaluation]:
    """Evaluate a saved run (its best checkpoint by default) on one of its data splits.

    The data is rebuilt from the configuration saved in the checkpoint, so the split is
    exactly the one the run was trained and selected on.
    """
    saved = load_saved_model(
        target, run_root=run_root, which=which, device_spec=device_spec
    )
    splits = build_splits(saved.config.data, saved.config.seed)
    loader = eval_loader(
        getattr(splits, split),
        saved.config.data,
        pin_memory=saved.device.type == "cuda",
    )
    evaluation = evaluate_loader(
        saved.model,
        loader,
        saved.device,
        len(saved.class_names),
        amp_dtype=saved.amp_dtype,
    )
    return saved, evaluation
