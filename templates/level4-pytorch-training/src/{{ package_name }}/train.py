"""The training loop: `train` takes a Config and leaves a finished run folder.

Read top to bottom: the optimiser and schedule, one optimisation step, one epoch, then
the whole run (set-up, resume, the epoch loop with validation, checkpoints and early
stopping, and the final test evaluation).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR

from . import distributed
from .checkpoint import create_run_dir, load_checkpoint, run_dir_of, save_checkpoint
from .config import Config, TrainConfig
from .data import build_splits, eval_loader, set_epoch, train_loader
from .evaluate import evaluate_loader
from .history import (
    TensorBoard,
    plot_curves,
    write_csv,
    write_json,
    write_text_atomically,
)
from .model import build_model
from .progress import ProgressBar
from .runtime import (
    autocast,
    configure_determinism,
    get_rng_state,
    resolve_device,
    resolve_precision,
    seed_everything,
    set_rng_state,
)

log = logging.getLogger(__name__)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # On CUDA the fused kernel updates every parameter in one launch instead of several.
    on_cuda = all(parameter.is_cuda for parameter in model.parameters())
    return torch.optim.AdamW(
        model.parameters(),
        lr=config.lr,
        weight_decay=config.weight_decay,
        fused=True if on_cuda else None,
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> LambdaLR:
    """Linear warm-up for `warmup_steps`, then cosine decay to zero at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


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
    """One optimisation step; returns the mean loss and the number of correct answers.

    Both stay on the device: reading them (`.item()`) would wait for the GPU every step.
    """
    with autocast(device, amp_dtype):
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad(set_to_none=True)
    # For fp16 the scaler multiplies the loss so small gradients survive; else a no-op.
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return loss.detach(), (logits.argmax(dim=1) == targets).sum()


def train_one_epoch(
    model: nn.Module,
    batches: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    scaler: torch.amp.GradScaler,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    grad_clip: float,
    limit_batches: int = 0,
    progress: ProgressBar | None = None,
) -> tuple[float, float]:
    """Train on every batch (or the first `limit_batches`).

    Returns mean loss and accuracy, over all processes under torchrun.
    """
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    for index, (inputs, targets) in enumerate(batches):
        if limit_batches and index >= limit_batches:
            break
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        loss, batch_correct = train_step(
            model,
            inputs,
            targets,
            optimizer,
            scheduler,
            scaler,
            device=device,
            amp_dtype=amp_dtype,
            grad_clip=grad_clip,
        )
        loss_sum.add_(loss, alpha=targets.size(0))
        correct += batch_correct
        count += targets.size(0)
        if progress is not None and progress.advance():
            progress.draw(loss=float(loss_sum) / count, accuracy=float(correct) / count)
    if progress is not None:
        progress.close()
    totals = distributed.all_reduce_sum(
        torch.stack([loss_sum, correct.double(), torch.tensor(count, device=device)])
    )
    total_loss, total_correct, total_count = totals.tolist()
    return total_loss / max(total_count, 1), total_correct / max(total_count, 1)


def train(config: Config, *, resume_from: Path | None = None) -> Path:
    """Train from scratch, or continue the run of checkpoint `resume_from`.

    Returns the run folder.

    Under torchrun, every process runs this function; rank 0 alone writes files.
    """
    process = distributed.process_from_environment()
    device = resolve_device(config.device, process.local_rank)
    amp_dtype = resolve_precision(config.train.precision, device)
    if config.train.tensorboard and process.is_main:
        TensorBoard.check_available()
    distributed.init(process, device)
    try:
        return _run(config, process, device, amp_dtype, resume_from)
    finally:
        distributed.shutdown()


def _run(
    config: Config,
    process: distributed.Process,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    resume_from: Path | None,
) -> Path:
    configure_determinism(config.deterministic)
    # The same seed on every process: the same split and initial weights.
    seed_everything(config.seed)
    splits = build_splits(config.data, config.seed)
    num_classes = len(splits.class_names)
    model = build_model(config.model, splits.input_shape, num_classes).to(device)

    pin_memory = device.type == "cuda"
    train_batches = train_loader(
        splits.train,
        config.data,
        config.seed,
        rank=process.rank,
        world_size=process.world_size,
        pin_memory=pin_memory,
    )
    val_batches = eval_loader(
        splits.val,
        config.data,
        rank=process.rank,
        world_size=process.world_size,
        pin_memory=pin_memory,
    )
    steps_per_epoch = len(train_batches)
    if config.train.limit_train_batches:
        steps_per_epoch = min(steps_per_epoch, config.train.limit_train_batches)
    optimizer = build_optimizer(model, config.train)
    scheduler = build_scheduler(
        optimizer,
        warmup_steps=round(config.train.warmup_epochs * steps_per_epoch),
        total_steps=config.train.epochs * steps_per_epoch,
    )
    # Only fp16 needs loss scaling; a disabled scaler passes everything through.
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    # What a checkpoint carries besides the weights, optimiser, schedule and scaler.
    progress_state: dict[str, Any] = {
        "epoch": 0,  # epochs completed
        "step": 0,  # optimiser steps taken
        "history": [],  # one row of metrics per epoch
        "best": {"epoch": None, "value": None},
        "epochs_without_improvement": 0,
    }
    if resume_from is not None:
        saved = load_checkpoint(resume_from)
        model.load_state_dict(saved["model"])
        fused = optimizer.param_groups[0]["fused"]
        optimizer.load_state_dict(saved["optimizer"])
        for group in optimizer.param_groups:
            group["fused"] = fused  # this device's kernel, not the saved run's
        scheduler.load_state_dict(saved["scheduler"])
        if scaler.is_enabled() and saved["scaler"]:
            scaler.load_state_dict(saved["scaler"])
        if len(saved["rng"]) == process.world_size:
            set_rng_state(saved["rng"][process.rank])
        else:
            # A different number of processes cannot continue the old random streams.
            log.warning(
                "resuming with %d processes instead of %d: reseeding",
                process.world_size,
                len(saved["rng"]),
            )
            seed_everything(config.seed + process.rank + saved["epoch"])
        progress_state = {key: saved[key] for key in progress_state}
        run_dir = run_dir_of(resume_from)
    else:
        # Each process draws its own dropout masks.
        seed_everything(config.seed + process.rank)
        run_dir = distributed.broadcast_object(
            create_run_dir(config.run_root, config.run_name)
            if process.is_main
            else None
        )

    log_file = _start_logging(process, run_dir)
    tensorboard = (
        TensorBoard(run_dir / "tensorboard")
        if config.train.tensorboard and process.is_main
        else None
    )
    try:
        if process.is_main:
            config_text = yaml.safe_dump(config.to_dict(), sort_keys=False)
            write_text_atomically(run_dir / "config.yaml", config_text)
        log.info(
            "%s run %s on %s (%s, %d process%s)",
            "resuming" if resume_from else "starting",
            run_dir,
            device,
            "fp32" if amp_dtype is None else str(amp_dtype).removeprefix("torch."),
            process.world_size,
            "" if process.world_size == 1 else "es",
        )
        # DDP averages gradients across processes; compile wraps whatever it is given.
        train_model: nn.Module = model
        if process.distributed:
            train_model = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        if config.train.compile:
            train_model = torch.compile(train_model)

        try:
            _epochs(
                config,
                process,
                model,
                train_model,
                train_batches,
                val_batches,
                optimizer,
                scheduler,
                scaler,
                progress_state,
                run_dir,
                device=device,
                amp_dtype=amp_dtype,
                steps_per_epoch=steps_per_epoch,
                num_classes=num_classes,
                tensorboard=tensorboard,
            )
        except KeyboardInterrupt:
            log.warning(
                "interrupted after %d epoch(s); continue with: "
                "python -m %s train --resume %s",
                progress_state["epoch"],
                __package__,
                run_dir,
            )
            raise

        # Test the best epoch's weights (rank 0 reads them; the others receive them).
        if process.is_main:
            model.load_state_dict(
                load_checkpoint(run_dir / "checkpoints" / "best.pt")["model"]
            )
        distributed.broadcast_tensors(list(model.state_dict().values()))
        test = evaluate_loader(
            model,
            eval_loader(
                splits.test,
                config.data,
                rank=process.rank,
                world_size=process.world_size,
                pin_memory=pin_memory,
            ),
            device,
            num_classes,
            amp_dtype=amp_dtype,
            limit_batches=config.train.limit_eval_batches,
        )
        if process.is_main:
            history = progress_state["history"]
            best = progress_state["best"]
            metrics = {
                "test_accuracy": test.accuracy,
                "test_loss": test.loss,
                "test_count": test.count,
                "best_epoch": best["epoch"],
                f"best_{config.train.monitor}": best["value"],
                "epochs": progress_state["epoch"],
                "steps": progress_state["step"],
                "stopped_early": progress_state["epoch"] < config.train.epochs,
                "train_seconds": round(sum(row["seconds"] for row in history), 3),
                "device": str(device),
                "precision": "fp32"
                if amp_dtype is None
                else str(amp_dtype).removeprefix("torch."),
                "world_size": process.world_size,
                "test_confusion_matrix": test.confusion.tolist(),
            }
            write_json(metrics, run_dir / "metrics.json")
            plot_curves(history, run_dir / "curves.png")
            log.info(
                "test accuracy %.4f  loss %.4f  (%d examples; weights of epoch %s)",
                test.accuracy,
                test.loss,
                test.count,
                best["epoch"],
            )
            log.info("run folder: %s", run_dir)
        # Leave together: a process that tears down its process group while another
        # still writes the results can abort the job.
        distributed.barrier()
        return run_dir
    finally:
        if tensorboard is not None:
            tensorboard.close()
        if log_file is not None:
            logging.getLogger(__package__).removeHandler(log_file)
            log_file.close()


def _epochs(
    config: Config,
    process: distributed.Process,
    model: nn.Module,
    train_model: nn.Module,
    train_batches: Any,
    val_batches: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    scaler: torch.amp.GradScaler,
    progress_state: dict[str, Any],
    run_dir: Path,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    steps_per_epoch: int,
    num_classes: int,
    tensorboard: TensorBoard | None,
) -> None:
    """The epoch loop: train, validate, checkpoint; stop early if validation stalls."""
    settings = config.train
    patience = settings.early_stopping_patience
    monitor_lower_is_better = settings.monitor.endswith("loss")
    for epoch in range(progress_state["epoch"], settings.epochs):
        if patience and progress_state["epochs_without_improvement"] >= patience:
            break  # a resumed run that had already stopped early
        started = time.perf_counter()
        set_epoch(train_batches, epoch, config.seed)
        train_loss, train_accuracy = train_one_epoch(
            train_model,
            train_batches,
            optimizer,
            scheduler,
            scaler,
            device=device,
            amp_dtype=amp_dtype,
            grad_clip=settings.grad_clip,
            limit_batches=settings.limit_train_batches,
            progress=ProgressBar(
                steps_per_epoch,
                f"epoch {epoch + 1}/{settings.epochs}",
                enabled=settings.progress and process.is_main,
            ),
        )
        # Each process updates batch-norm statistics on its own batches: validate,
        # and save, rank 0's everywhere.
        distributed.broadcast_tensors(list(model.buffers()))
        val = evaluate_loader(
            model,
            val_batches,
            device,
            num_classes,
            amp_dtype=amp_dtype,
            limit_batches=settings.limit_eval_batches,
        )
        progress_state["epoch"] = epoch + 1
        progress_state["step"] += steps_per_epoch
        row = {
            "epoch": epoch + 1,
            "step": progress_state["step"],
            "lr": scheduler.get_last_lr()[0],
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "val_loss": val.loss,
            "val_accuracy": val.accuracy,
            "seconds": round(time.perf_counter() - started, 3),
        }
        progress_state["history"].append(row)

        value, best = row[settings.monitor], progress_state["best"]["value"]
        improved = best is None or (
            value < best if monitor_lower_is_better else value > best
        )
        if improved:
            progress_state["best"] = {"epoch": epoch + 1, "value": value}
            progress_state["epochs_without_improvement"] = 0
        else:
            progress_state["epochs_without_improvement"] += 1
        stop_early = (
            patience > 0 and progress_state["epochs_without_improvement"] >= patience
        )

        # Every process's random state, to resume each.
        rng_states = distributed.gather_objects(get_rng_state())
        if process.is_main:
            checkpoint = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_states,
                "config": config.to_dict(),
                **progress_state,
            }
            save_checkpoint(checkpoint, run_dir / "checkpoints" / "last.pt")
            if improved:
                save_checkpoint(checkpoint, run_dir / "checkpoints" / "best.pt")
            write_csv(progress_state["history"], run_dir / "metrics.csv")
            if tensorboard is not None:
                tensorboard.log(row)
        log.info(
            "epoch %d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f  "
            "lr %.2e  %.1fs%s",
            epoch + 1,
            settings.epochs,
            train_loss,
            train_accuracy,
            val.loss,
            val.accuracy,
            row["lr"],
            row["seconds"],
            "  (best)" if improved else "",
        )
        if stop_early:
            log.info(
                "early stop: %s has not improved for %d epochs",
                settings.monitor,
                patience,
            )
            break


def _start_logging(
    process: distributed.Process, run_dir: Path
) -> logging.Handler | None:
    """Rank 0 logs at INFO to the console and train.log; other processes only warn."""
    package_log = logging.getLogger(__package__)
    package_log.setLevel(logging.INFO if process.is_main else logging.WARNING)
    if not process.is_main:
        return None
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    package_log.addHandler(handler)
    return handler
