"""The training loop: `train` takes a Config and leaves a finished run folder.

Everything a run works with (model, optimiser, schedule, loaders, where it stands) is
one `Run`; each function below takes it and does one thing. Read top to bottom: the
optimiser and schedule, one step, one epoch, the end of an epoch (validation, the best
epoch, checkpoints), and `train`, which puts them together and tests the best epoch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader

from . import distributed
from .atomic import remove_stale_temporaries, write_text_atomic
from .checkpoint import load_checkpoint, load_weights, run_dir_of
from .config import Config, TrainConfig
from .data import (
    SEGMENTATION,
    Batch,
    Splits,
    build_splits,
    eval_loader,
    set_epoch,
    skip_batches,
    train_loader,
)
from .errors import ConfigError, Error
from .evaluate import Evaluation, evaluate_loader
from .history import (
    Logger,
    check_loggers,
    open_loggers,
    plot_curves,
    plot_segmentation,
    write_csv,
)
from .models import build_model
from .progress import ProgressBar
from .runs import create_run_dir, save_checkpoint, write_metrics
from .runtime import (
    autocast,
    configure_determinism,
    configure_matmul_precision,
    get_rng_state,
    needs_grad_scaler,
    resolve_device,
    resolve_precision,
    seed_everything,
    set_rng_state,
)

log = logging.getLogger(__name__)


class TrainingDiverged(Error):
    """The loss became NaN or infinite: the run stops and keeps its last good state."""


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on weight matrices and kernels only: biases and norm
    scales (the 1-d parameters) are not pulled towards zero, as in nanoGPT."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [
        {"params": [p for p in parameters if p.ndim >= 2]},
        {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
    ]
    # On CUDA the fused kernel updates every parameter in one launch instead of several.
    on_cuda = all(parameter.is_cuda for parameter in parameters)
    return torch.optim.AdamW(
        groups,
        lr=config.lr,
        weight_decay=config.weight_decay,
        fused=True if on_cuda else None,
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float = 0.0,
) -> LambdaLR:
    """Linear warm-up for `warmup_steps`, then cosine decay until `total_steps`, from
    the full learning rate down to `min_ratio` of it (train.min_lr / train.lr)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def backward(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    scaler: torch.amp.GradScaler,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward of one batch; returns its mean loss and correct answers
    (correct pixels, for segmentation). Both stay on the device: reading them
    (`.item()`) would wait for the GPU every step."""
    with autocast(device, amp_dtype):
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
    # For fp16 the scaler multiplies the loss so small gradients survive; else a no-op.
    scaled: torch.Tensor = scaler.scale(loss * scale if scale != 1.0 else loss)
    scaled.backward()  # type: ignore[no-untyped-call]
    return loss.detach(), (logits.argmax(dim=1) == targets).sum()


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    scaler: torch.amp.GradScaler,
    grad_clip: float,
) -> None:
    """Clip, step, clear the gradients and move the schedule on."""
    if grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()


def train_step(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    scaler: torch.amp.GradScaler,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    grad_clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on one batch: `backward`, then `optimizer_step`."""
    result = backward(
        model, inputs, targets, scaler, device=device, amp_dtype=amp_dtype
    )
    optimizer_step(model, optimizer, scheduler, scaler, grad_clip)
    return result


@dataclass
class Progress:
    """Where a run stands: what a checkpoint saves besides the tensors."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken
    batch: int = 0  # batches done in the current epoch (a checkpoint every N steps)
    # This process's loss sum, correct answers, examples and seconds in that epoch.
    epoch_sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    history: list[dict[str, Any]] = field(default_factory=list)  # a row per epoch
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "value": None})
    epochs_without_improvement: int = 0


@dataclass
class Run:
    """One training run: what it trains, with what, on what, and where it stands."""

    config: Config
    process: distributed.Process
    device: torch.device
    amp_dtype: torch.dtype | None  # None: fp32
    splits: Splits
    model: nn.Module  # the plain model: saved and evaluated
    train_model: nn.Module  # what trains: the model, in DDP and compiled if asked
    ddp: DistributedDataParallel | None
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    scaler: torch.amp.GradScaler
    train_batches: DataLoader[Batch]
    val_batches: DataLoader[Batch]
    batches_per_epoch: int
    steps_per_epoch: int
    progress: Progress = field(default_factory=Progress)
    run_dir: Path = Path()
    loggers: list[Logger] = field(default_factory=list)  # TensorBoard, MLflow, W&B
    progress_bar: bool | None = None  # None: on terminals; False: never

    @property
    def num_classes(self) -> int:
        return len(self.splits.class_names)

    @property
    def precision(self) -> str:
        return "fp32" if self.amp_dtype is None else str(self.amp_dtype)[6:]


def build_run(
    config: Config,
    process: distributed.Process,
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> Run:
    """Data, model, optimiser and schedule of a new run; no files yet."""
    if config.threads:
        torch.set_num_threads(config.threads)
    configure_determinism(config.deterministic)
    configure_matmul_precision(device)
    # The same seed on every process: the same split and initial weights.
    seed_everything(config.seed)
    splits = build_splits(config.data, config.seed)
    if config.train.monitor == "val_mean_iou" and splits.task != SEGMENTATION:
        raise ConfigError(
            "train.monitor=val_mean_iou: only for segmentation (use val_loss)"
        )
    model = build_model(
        config.model, splits.input_shape, len(splits.class_names), default=splits.model
    )
    if config.init_from:  # fine-tuning: the weights only, with a schedule of its own
        path = Path(config.init_from)
        load_weights(model, load_checkpoint(path)["model"], path)
    model.to(device)
    ddp = None
    if process.distributed:
        if config.train.sync_batchnorm:
            if device.type != "cuda":
                raise ConfigError(
                    f"train.sync_batchnorm=true: needs CUDA GPUs, not {device.type}"
                )
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
        # DDP averages gradients across processes.
        ddp = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    train_model: nn.Module = ddp if ddp is not None else model
    if config.train.compile:
        train_model = torch.compile(train_model)  # type: ignore[assignment]

    pin_memory = device.type == "cuda"
    shard = {"rank": process.rank, "world_size": process.world_size}
    train_batches = train_loader(
        splits.train, config.data, config.seed, pin_memory=pin_memory, **shard
    )
    val_batches = eval_loader(splits.val, config.data, pin_memory=pin_memory, **shard)
    settings = config.train
    batches = len(train_batches)
    if settings.limit_train_batches:
        batches = min(batches, settings.limit_train_batches)
    steps = math.ceil(batches / settings.grad_accum_steps)
    optimizer = build_optimizer(model, settings)
    scheduler = build_scheduler(
        optimizer,
        warmup_steps=round(settings.warmup_epochs * steps),
        total_steps=settings.epochs * steps,
        min_ratio=settings.min_lr / settings.lr,
    )
    # Only fp16 needs loss scaling; a disabled scaler passes everything through.
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(amp_dtype))
    # Each process draws its own dropout masks.
    seed_everything(config.seed + process.rank)
    return Run(
        config, process, device, amp_dtype, splits, model, train_model, ddp,
        optimizer, scheduler, scaler, train_batches, val_batches, batches, steps,
    )  # fmt: skip


def resume(run: Run, path: Path) -> None:
    """Continue where checkpoint `path` stopped: weights, optimiser, schedule, scaler,
    random states and progress, so the run ends as if it had never stopped."""
    saved = load_checkpoint(path)
    load_weights(run.model, saved["model"], path)
    fused = run.optimizer.param_groups[0]["fused"]
    run.optimizer.load_state_dict(saved["optimizer"])
    for group in run.optimizer.param_groups:
        group["fused"] = fused  # this device's kernel, not the saved run's
    run.scheduler.load_state_dict(saved["scheduler"])
    if run.scaler.is_enabled() and saved["scaler"]:
        run.scaler.load_state_dict(saved["scaler"])
    rank, world_size = run.process.rank, run.process.world_size
    if len(saved["rng"]) == world_size:
        set_rng_state(saved["rng"][rank])
        epoch_sums = saved["epoch_sums"][rank]
    else:
        # A different number of processes cannot continue the old random streams.
        log.warning(
            "resuming with %d processes instead of %d: reseeding",
            world_size,
            len(saved["rng"]),
        )
        seed_everything(run.config.seed + rank + saved["epoch"])
        epoch_sums, saved["batch"] = [0.0, 0.0, 0.0, 0.0], 0
    run.progress = Progress(
        epoch=saved["epoch"],
        step=saved["step"],
        batch=saved["batch"],
        epoch_sums=list(epoch_sums),
        history=saved["history"],
        best=saved["best"],
        epochs_without_improvement=saved["epochs_without_improvement"],
    )
    run.run_dir = run_dir_of(path)


def train_one_epoch(run: Run) -> tuple[float, float]:
    """Train on the epoch's batches (from where a checkpoint within it left off).

    Every `train.grad_accum_steps` batches make one optimiser step. Returns the mean
    loss and accuracy, over all processes under torchrun.
    """
    progress, settings = run.progress, run.config.train
    run.train_model.train()
    sums = torch.tensor(progress.epoch_sums[:3], dtype=torch.float64, device=run.device)
    accumulate, total = settings.grad_accum_steps, run.batches_per_epoch
    batches = skip_batches(run.train_batches, progress.batch)
    started = time.perf_counter() - progress.epoch_sums[3]
    label = f"epoch {progress.epoch + 1}/{settings.epochs}"
    show = run.progress_bar if run.process.is_main else False
    with ProgressBar(run.steps_per_epoch, label, enabled=show) as bar:
        bar.count = progress.batch // accumulate
        for index in range(progress.batch, total):
            inputs, targets = next(batches)
            inputs = inputs.to(run.device, non_blocking=True)
            targets = targets.to(run.device, non_blocking=True)
            first = index - index % accumulate
            group = min(accumulate, total - first)  # the last group may be short
            steps_now = index == first + group - 1
            with _gradient_sync(run, steps_now):
                loss, correct = backward(
                    run.train_model,
                    inputs,
                    targets,
                    run.scaler,
                    device=run.device,
                    amp_dtype=run.amp_dtype,
                    scale=1.0 / group,
                )
            sums[0] += loss * targets.numel()
            sums[1] += correct
            sums[2] += targets.numel()
            progress.batch = index + 1
            if not steps_now:
                continue
            optimizer_step(
                run.model, run.optimizer, run.scheduler, run.scaler, settings.grad_clip
            )
            progress.step += 1
            bar.update(1, **_bar_values(bar, sums))
            every = settings.checkpoint_every_steps
            if every and progress.step % every == 0 and index + 1 < total:
                progress.epoch_sums = [*sums.tolist(), time.perf_counter() - started]
                _check_finite(run, "training loss", _mean_loss(sums))
                save(run, improved=False)
    totals = _all_processes(sums)
    progress.batch, progress.epoch_sums = (
        0,
        [0.0, 0.0, 0.0, time.perf_counter() - started],
    )
    return totals[0] / max(totals[2], 1), totals[1] / max(totals[2], 1)


def end_epoch(run: Run, train_loss: float, train_accuracy: float) -> bool:
    """Validate, record the epoch, keep the best, checkpoint; True to stop early."""
    progress, settings = run.progress, run.config.train
    # Each process updates batch-norm statistics on its own batches: validate, and
    # save, rank 0's everywhere.
    distributed.broadcast_tensors(list(run.model.buffers()))
    val = evaluate_loader(
        run.model,
        run.val_batches,
        run.device,
        run.num_classes,
        amp_dtype=run.amp_dtype,
        limit_batches=settings.limit_eval_batches,
    )
    _check_finite(run, "training loss", train_loss)
    _check_finite(run, "validation loss", val.loss)
    progress.epoch += 1
    row: dict[str, Any] = {
        "epoch": progress.epoch,
        "step": progress.step,
        "lr": run.scheduler.get_last_lr()[0],
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "val_loss": val.loss,
        "val_accuracy": val.accuracy,
    }
    if run.splits.task == SEGMENTATION:
        row["val_mean_iou"] = val.mean_iou
    row["seconds"] = round(progress.epoch_sums[3], 3)
    progress.epoch_sums = [0.0, 0.0, 0.0, 0.0]
    progress.history.append(row)
    improved = _record_best(run, row[settings.monitor])
    save(run, improved)
    log.info(
        "epoch %d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f%s  lr %.2e  "
        "%.1fs%s",
        progress.epoch,
        settings.epochs,
        train_loss,
        train_accuracy,
        val.loss,
        val.accuracy,
        f" mIoU {val.mean_iou:.4f}" if run.splits.task == SEGMENTATION else "",
        row["lr"],
        row["seconds"],
        "  (best)" if improved else "",
    )
    for logger in run.loggers:
        logger.log(row)
    return _stopped_early(run)


def save(run: Run, improved: bool) -> None:
    """Write last.pt (and best.pt) with every process's random state, and the CSV."""
    rng_states = distributed.gather_objects(get_rng_state())
    epoch_sums = distributed.gather_objects(run.progress.epoch_sums)
    if not run.process.is_main:
        return
    progress = run.progress
    checkpoint = {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "rng": rng_states,
        "config": run.config.model_dump(),
        "data": run.splits.info(),
        "epoch": progress.epoch,
        "step": progress.step,
        "batch": progress.batch,
        "epoch_sums": epoch_sums,
        "history": progress.history,
        "best": progress.best,
        "epochs_without_improvement": progress.epochs_without_improvement,
    }
    save_checkpoint(checkpoint, run.run_dir / "checkpoints" / "last.pt")
    if improved:
        save_checkpoint(checkpoint, run.run_dir / "checkpoints" / "best.pt")
    if progress.history:
        write_csv(progress.history, run.run_dir / "metrics.csv")


def evaluate_best(run: Run) -> Evaluation:
    """Evaluate the best epoch's weights on the test split and write the results."""
    if run.process.is_main:  # rank 0 reads them; the others receive them
        best = run.run_dir / "checkpoints" / "best.pt"
        run.model.load_state_dict(load_checkpoint(best)["model"])
    distributed.broadcast_tensors(list(run.model.state_dict().values()))
    loader = eval_loader(
        run.splits.test,
        run.config.data,
        rank=run.process.rank,
        world_size=run.process.world_size,
        pin_memory=run.device.type == "cuda",
    )
    result = evaluate_loader(
        run.model,
        loader,
        run.device,
        run.num_classes,
        amp_dtype=run.amp_dtype,
        limit_batches=run.config.train.limit_eval_batches,
    )
    if run.process.is_main:
        _write_results(run, result)
    return result


def train(
    config: Config,
    *,
    resume_from: Path | None = None,
    progress_bar: bool | None = None,
) -> Path:
    """Train from scratch, or continue the run of checkpoint `resume_from`, then test.

    Returns the run folder. Under torchrun, every process runs this function; rank 0
    alone writes files.
    """
    process = distributed.process_from_environment()
    device = resolve_device(config.device, process.local_rank)
    amp_dtype = resolve_precision(config.train.precision, device)
    if process.is_main:
        check_loggers(config)
    distributed.init(process, device)
    try:
        run = build_run(config, process, device, amp_dtype)
        run.progress_bar = progress_bar
        if resume_from is not None:
            resume(run, resume_from)
        else:
            run.run_dir = distributed.broadcast_object(
                create_run_dir(config.run_root, config.run_name)
                if process.is_main
                else None
            )
        with _run_files(run):
            try:
                while not _finished(run):
                    set_epoch(run.train_batches, run.progress.epoch, config.seed)
                    train_loss, train_accuracy = train_one_epoch(run)
                    if end_epoch(run, train_loss, train_accuracy):
                        log.info(
                            "early stop: %s has not improved for %d epochs",
                            config.train.monitor,
                            config.train.early_stopping_patience,
                        )
            except KeyboardInterrupt:
                log.warning(
                    "interrupted at epoch %d, step %d; continue with: "
                    "train --resume %s",
                    run.progress.epoch,
                    run.progress.step,
                    run.run_dir,
                )
                raise
            evaluate_best(run)
        # Leave together: a process that tears down its process group while another
        # still writes the results can abort the job.
        distributed.barrier()
        return run.run_dir
    finally:
        distributed.shutdown()


def _finished(run: Run) -> bool:
    return run.progress.epoch >= run.config.train.epochs or _stopped_early(run)


def _stopped_early(run: Run) -> bool:
    patience = run.config.train.early_stopping_patience
    return patience > 0 and run.progress.epochs_without_improvement >= patience


def _record_best(run: Run, value: float) -> bool:
    progress = run.progress
    best = progress.best["value"]
    lower_is_better = run.config.train.monitor.endswith("loss")
    improved = best is None or (value < best if lower_is_better else value > best)
    if improved:
        progress.best = {"epoch": progress.epoch, "value": value}
        progress.epochs_without_improvement = 0
    else:
        progress.epochs_without_improvement += 1
    return improved


def _check_finite(run: Run, what: str, value: float) -> None:
    """Stop a run whose loss became NaN or infinite; its last checkpoint stays good."""
    if math.isfinite(value):
        return
    last = run.run_dir / "checkpoints" / "last.pt"
    kept = (
        f"{last} keeps the last good state (step {load_checkpoint(last)['step']})"
        if last.is_file()
        else "no checkpoint was written"
    )
    raise TrainingDiverged(
        f"the {what} became {value} at step {run.progress.step} of epoch "
        f"{run.progress.epoch + 1}: stopped; {kept}. Lower train.lr or raise "
        "train.warmup_epochs, then train again"
    )


def _mean_loss(sums: torch.Tensor) -> float:
    loss_sum, _, count = _all_processes(sums)
    return loss_sum / max(count, 1)


def _all_processes(sums: torch.Tensor) -> list[float]:
    totals: list[float] = distributed.all_reduce_sum(sums.clone()).tolist()
    return totals


def _bar_values(bar: ProgressBar, sums: torch.Tensor) -> dict[str, float]:
    # Reading the sums waits for the GPU: only when a bar is shown, every 10 steps.
    if not bar.enabled or bar.count % 10:
        return {}
    loss, correct, count = sums.tolist()
    return {"loss": loss / count, "accuracy": correct / count}


def _gradient_sync(run: Run, sync: bool) -> contextlib.AbstractContextManager[Any]:
    """Under DDP, average gradients only on the batch that ends an accumulation."""
    if run.ddp is None or sync:
        return contextlib.nullcontext()
    return run.ddp.no_sync()


@contextlib.contextmanager
def _run_files(run: Run) -> Iterator[None]:
    """The log file, the experiment loggers and config.yaml, for the run's duration."""
    package_log = logging.getLogger(__package__)
    if not run.process.is_main:  # one voice: the other ranks report only problems
        package_log.setLevel(logging.WARNING)
        yield
        return
    (run.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run.run_dir)  # what a killed write left
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


def _write_results(run: Run, result: Evaluation) -> None:
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
    plot_curves(progress.history, run.run_dir / "curves.png")
    if run.splits.task == SEGMENTATION:
        _plot_masks(run, run.run_dir / "segmentation.png")
    summary = (
        f"  mean IoU {result.mean_iou:.4f}" if run.splits.task == SEGMENTATION else ""
    )
    log.info(
        "test accuracy %.4f  loss %.4f%s  (%d examples; weights of epoch %s)",
        result.accuracy,
        result.loss,
        summary,
        result.count,
        progress.best["epoch"],
    )
    log.info("run folder: %s", run.run_dir)


@torch.no_grad()
def _plot_masks(run: Run, path: Path, count: int = 6) -> None:
    loader = DataLoader(run.splits.test, batch_size=count)
    images, masks = next(iter(loader))
    run.model.eval()
    with autocast(run.device, run.amp_dtype):
        logits = run.model(images.to(run.device))
    predicted = logits.argmax(dim=1).cpu()
    plot_segmentation(
        images.numpy(), masks.numpy(), predicted.numpy(), run.splits.class_names, path
    )
