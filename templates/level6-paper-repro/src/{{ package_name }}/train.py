"""One run of the experiment: train a small MLP on the digits, measure it on test.

The two methods of the example grid differ in one setting: the baseline trains with
plain cross-entropy, the variant with label smoothing (Szegedy et al., 2016), and the
question is what that does to accuracy, to the test likelihood and to calibration
(expected calibration error, Guo et al., 2017). Replace this module's model and loop
with your own; keep the contract: `train(config, log)` returns a dict of finite numbers
and lists, and is a pure function of the config on the CPU.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from . import data
from .config import Config
from .errors import Error
from .runtime import (
    configure_determinism,
    make_generator,
    resolve_device,
    seed_everything,
    seed_worker,
)


class DivergedError(Error):
    """The loss stopped being a finite number."""


def build_model(config: Config, inputs: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(inputs, config.model.hidden),
        nn.ReLU(),
        nn.Dropout(config.model.dropout),
        nn.Linear(config.model.hidden, classes),
    )


def expected_calibration_error(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int
) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, by bin size."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64)
    total = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence.double() > low) & (confidence.double() <= high)
        count = int(inside.sum())
        if count:
            gap = correct[inside].mean() - confidence.double()[inside].mean()
            total += count * abs(float(gap))
    return total / len(labels)


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, bins: int
) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        logits = model(x).double()
        nll = float(nn.functional.cross_entropy(logits, y))
        probabilities = logits.softmax(dim=1)
        accuracy = float((logits.argmax(dim=1) == y).double().mean())
    return {
        "test_accuracy": accuracy,
        "test_nll": nll,
        "test_ece": expected_calibration_error(probabilities, y, bins),
    }


def train(
    config: Config, log: Callable[[str], None], manifest: Path = data.MANIFEST
) -> dict[str, Any]:
    """Train and evaluate one run; the result is what metrics.json holds."""
    torch.set_num_threads(config.threads)
    configure_determinism(config.deterministic)
    seed_everything(config.seed)
    device = resolve_device(config.device)

    dataset = data.load(config.data.name, manifest)
    x_train, x_test, y_train, y_test = data.split(
        dataset, config.data.test_fraction, config.data.split_seed
    )
    train_set = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
    loader = DataLoader(
        train_set,
        batch_size=config.train.batch_size,
        shuffle=True,
        generator=make_generator(config.seed),
        worker_init_fn=seed_worker,
    )
    x_eval = torch.from_numpy(x_test).to(device)
    y_eval = torch.from_numpy(y_test).to(device)
    log(f"data {config.data.name}: {len(train_set)} train, {len(y_test)} test samples")

    model = build_model(config, x_train.shape[1], dataset.num_classes).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.train.label_smoothing)
    curve: dict[str, list[float]] = {"train_loss": [], "test_accuracy": []}
    for epoch in range(1, config.train.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            loss = loss_fn(model(inputs), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(labels)
            seen += len(labels)
        train_loss = total / seen
        if not math.isfinite(train_loss):
            raise DivergedError(
                f"the training loss became {train_loss} in epoch {epoch}"
            )
        scores = evaluate(model, x_eval, y_eval, config.train.ece_bins)
        curve["train_loss"].append(train_loss)
        curve["test_accuracy"].append(scores["test_accuracy"])
        log(
            f"epoch {epoch}: train_loss {train_loss:.4f} "
            f"test_accuracy {scores['test_accuracy']:.4f} "
            f"test_nll {scores['test_nll']:.4f}"
        )
    return {**scores, "train_loss": curve["train_loss"][-1], "curve": curve}
