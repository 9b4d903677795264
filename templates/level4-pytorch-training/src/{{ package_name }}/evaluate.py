"""Loss, accuracy and confusion matrix of a model on a dataset; and of a saved run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from . import distributed
from .checkpoint import find_checkpoint, load_checkpoint
from .config import config_from_dict
from .data import build_splits, eval_loader
from .errors import ConfigError
from .model import build_model
from .runtime import autocast, resolve_device, resolve_precision


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    count: int
    confusion: torch.Tensor  # [true class, predicted class] -> number of examples

    def as_dict(self, prefix: str) -> dict[str, float | int]:
        return {
            f"{prefix}_loss": self.loss,
            f"{prefix}_accuracy": self.accuracy,
            f"{prefix}_count": self.count,
        }


@torch.no_grad()
def evaluate_loader(
    model: nn.Module,
    loader: DataLoader,
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
            targets * num_classes + predictions, minlength=num_classes**2
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


def evaluate_run(
    target: str | Path,
    *,
    run_root: str = "runs",
    which: str = "best",
    split: str = "test",
    device_spec: str = "auto",
) -> tuple[Path, dict, Evaluation, list[str]]:
    """Evaluate a saved run (its best checkpoint by default) on one of its data splits.

    The data is rebuilt from the configuration saved in the checkpoint, so the split is
    exactly the one the run was trained and selected on.
    """
    path = find_checkpoint(target, run_root, which=which)
    state = load_checkpoint(path)
    config = config_from_dict(state["config"])
    device = resolve_device(device_spec)
    try:
        amp_dtype = resolve_precision(config.train.precision, device)
    except ConfigError:
        amp_dtype = None  # trained in a precision this device lacks: evaluate in fp32

    splits = build_splits(config.data, config.seed)
    model = build_model(config.model, splits.input_shape, len(splits.class_names))
    model.load_state_dict(state["model"])
    model.to(device)
    loader = eval_loader(
        getattr(splits, split), config.data, pin_memory=device.type == "cuda"
    )
    evaluation = evaluate_loader(
        model, loader, device, len(splits.class_names), amp_dtype=amp_dtype
    )
    return path, state, evaluation, splits.class_names
