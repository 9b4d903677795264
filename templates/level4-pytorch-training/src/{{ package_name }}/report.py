"""What a run writes besides its checkpoints: train.log, config.yaml and the
experiment loggers while it trains; metrics.json and the pictures when it is done."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from .atomic import remove_stale_temporaries, write_text_atomic
from .background import draw_later
from .evaluate import Evaluation
from .history import (
    CURVES_FILE,
    SEGMENTATION_FILE,
    open_loggers,
    plot_curves,
    plot_segmentation,
)
from .run import Run
from .runs import write_metrics
from .runtime import autocast

log = logging.getLogger(__name__)


@contextlib.contextmanager
def run_files(run: Run) -> Iterator[None]:
    """The log file, the experiment loggers and config.yaml, for the run's duration."""
    package_log = logging.getLogger(__package__)
    if not run.process.is_main:  # one voice: the other ranks report only problems
        package_log.setLevel(logging.WARNING)
        yield
        return
    (run.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    for folder in (run.run_dir, run.run_dir / "checkpoints"):
        remove_stale_temporaries(folder)  # what a killed write left
    # train.log keeps the whole story whatever --quiet or --verbose tell the terminal:
    # the console handlers keep the level they had, the file takes info and up.
    level = package_log.level
    console = {handler: handler.level for handler in package_log.handlers}
    for existing in console:
        existing.setLevel(max(existing.level, package_log.getEffectiveLevel()))
    package_log.setLevel(min(package_log.getEffectiveLevel(), logging.INFO))
    handler = logging.FileHandler(run.run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    package_log.addHandler(handler)
    run.loggers = open_loggers(run.config, run.run_dir)
    try:
        config_text = yaml.safe_dump(run.config.model_dump(), sort_keys=False)
        write_text_atomic(run.run_dir / "config.yaml", config_text)
        log.info(
            "%s run %s on %s (%s, %d process%s)",
            "continuing" if run.progress.step else "starting",
            run.run_dir,
            run.device,
            run.precision,
            run.process.world_size,
            "" if run.process.world_size == 1 else "es",
        )
        yield
    finally:
        for logger in run.loggers:
            logger.close()
        package_log.removeHandler(handler)
        handler.close()
        package_log.setLevel(level)
        for existing, console_level in console.items():
            existing.setLevel(console_level)


def write_results(run: Run, result: Evaluation) -> None:
    """metrics.json of the test split, then the curves (and masks) as pictures."""
    progress, config = run.progress, run.config
    metrics = {
        **result.metrics("test", run.splits.task, run.splits.class_names),
        "task": run.splits.task,
        "best_epoch": progress.best["epoch"],
        f"best_{config.train.monitor}": progress.best["value"],
        "epochs": progress.epoch,
        "steps": progress.step,
        "stopped_early": progress.epoch < config.train.epochs,
        "train_seconds": round(sum(row["seconds"] for row in progress.history), 3),
        "device": str(run.device),
        "precision": run.precision,
        "world_size": run.process.world_size,
        "test_confusion_matrix": result.confusion.tolist(),
    }
    write_metrics(run.run_dir, metrics)
    summary = f"  mean IoU {result.mean_iou:.4f}" if run.segmentation else ""
    log.info(
        "test accuracy %.4f  loss %.4f%s  (%d examples; weights of epoch %s)",
        result.accuracy,
        result.loss,
        summary,
        result.count,
        progress.best["epoch"],
    )
    # The pictures are drawn on another thread, after every number is safe on disk:
    # matplotlib's import and drawing take longer than the test split. The command
    # line waits for them (background.wait_for_pictures) before it exits.
    draw_later(CURVES_FILE, plot_curves, progress.history, run.run_dir / CURVES_FILE)
    if run.segmentation:
        images, masks, predicted = _masks(run)
        draw_later(
            SEGMENTATION_FILE,
            plot_segmentation,
            images,
            masks,
            predicted,
            run.splits.class_names,
            run.run_dir / SEGMENTATION_FILE,
        )
    log.info("run folder: %s", run.run_dir)


@torch.no_grad()
def _masks(run: Run, count: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first test images, their true masks and the model's, as arrays."""
    loader: DataLoader[Any] = DataLoader(run.splits.test, batch_size=count)
    images, masks = next(iter(loader))
    run.model.eval()
    with autocast(run.device, run.amp_dtype):
        logits = run.model(images.to(run.device))
    predicted = logits.argmax(dim=1).cpu()
    return images.numpy(), masks.numpy(), predicted.numpy()
