"""A training run as one object: what it trains, with what, on what, where it stands.

`build_run` makes a new one from a Config; `Run.state_dict()` is its checkpoint and
`Run.load_state_dict()` continues from one, so each checkpoint key is written in one
place: here (checkpoint.CHECKPOINT_KEYS lists them for readers of old files).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader

from . import distributed
from .background import Writer
from .checkpoint import CheckpointError, load_checkpoint, load_weights
from .config import Config
from .data import SEGMENTATION, Batch, Splits, build_splits, eval_loader, train_loader
from .errors import ConfigError
from .history import Logger
from .models import build_model
from .optimization import build_optimizer, build_scheduler, one_parameter_group
from .runtime import (
    configure_determinism,
    configure_matmul_precision,
    get_rng_state,
    needs_grad_scaler,
    seed_everything,
    set_rng_state,
)

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where a run stands: what a checkpoint saves besides the tensors. Each field is
    a key of the checkpoint."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken
    batch: int = 0  # batches done in the current epoch (a checkpoint every N steps)
    # This process's loss sum, correct answers, examples and seconds in that epoch.
    epoch_sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    history: list[dict[str, Any]] = field(default_factory=list)  # a row per epoch
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "value": None})
    epochs_without_improvement: int = 0


@dataclass(kw_only=True)
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
    writer: Writer = field(default_factory=Writer)  # checkpoints, behind the loop

    @property
    def num_classes(self) -> int:
        return len(self.splits.class_names)

    @property
    def precision(self) -> str:
        return "fp32" if self.amp_dtype is None else str(self.amp_dtype)[6:]

    @property
    def segmentation(self) -> bool:
        return self.splits.task == SEGMENTATION

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint. Under torchrun every process calls this: it gathers each
        one's random state and running sums, so a resumed run draws the same."""
        progress = dataclasses.asdict(self.progress)
        progress["epoch_sums"] = distributed.gather_objects(self.progress.epoch_sums)
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": distributed.gather_objects(get_rng_state()),
            "config": self.config.model_dump(),
            "data": self.splits.info(),
            **progress,
        }

    def load_state_dict(self, state: dict[str, Any], *, source: Path) -> None:
        """Continue from a checkpoint (read from `source`): weights, optimiser,
        schedule, scaler, random states and progress, so the run ends as if it had
        never stopped."""
        load_weights(self.model, state["model"], source)
        fused = self.optimizer.param_groups[0]["fused"]
        foreach = self.optimizer.param_groups[0]["foreach"]
        try:
            optimizer, scheduler = one_parameter_group(
                state["optimizer"], state["scheduler"], self.optimizer
            )
            self.optimizer.load_state_dict(optimizer)
            self.scheduler.load_state_dict(scheduler)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            # Weights that fit, with an optimiser state of another model or one edited
            # by hand: torch's own message, on one line.
            raise CheckpointError(
                f"{source} does not fit this run: its optimiser or schedule state "
                f"cannot be loaded ({type(error).__name__}: {error})"
            ) from None
        for group in self.optimizer.param_groups:
            # This device's kernels, not the saved run's.
            group["fused"], group["foreach"] = fused, foreach
        saved = {f.name: state[f.name] for f in dataclasses.fields(Progress)}
        rank, world_size = self.process.rank, self.process.world_size
        same_processes = len(state["rng"]) == world_size
        try:
            if self.scaler.is_enabled() and state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            if same_processes:
                set_rng_state(state["rng"][rank])
                saved["epoch_sums"] = list(saved["epoch_sums"][rank])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(
                f"{source} does not fit this run: its scaler or random state cannot"
                f" be loaded ({type(error).__name__}: {error})"
            ) from None
        if not same_processes:
            # A different number of processes cannot continue the old random streams.
            log.warning(
                "resuming with %d processes instead of %d: reseeding",
                world_size,
                len(state["rng"]),
            )
            seed_everything(self.config.seed + rank + state["epoch"])
            saved["epoch_sums"], saved["batch"] = [0.0, 0.0, 0.0, 0.0], 0
        self.progress = Progress(**saved)


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
            "train.monitor: val_mean_iou is only for segmentation (use val_loss),"
            " got 'val_mean_iou'"
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
                    f"train.sync_batchnorm: needs CUDA GPUs, not {device.type},"
                    " got true"
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
    settings = config.train
    train_batches = train_loader(
        splits.train, config.data, config.seed, pin_memory=pin_memory, **shard
    )
    batches = len(train_batches)
    if settings.limit_train_batches:
        batches = min(batches, settings.limit_train_batches)
    steps = math.ceil(batches / settings.grad_accum_steps)
    optimizer = build_optimizer(model, settings)
    run = Run(
        config=config,
        process=process,
        device=device,
        amp_dtype=amp_dtype,
        splits=splits,
        model=model,
        train_model=train_model,
        ddp=ddp,
        optimizer=optimizer,
        scheduler=build_scheduler(
            optimizer,
            warmup_steps=round(settings.warmup_epochs * steps),
            total_steps=settings.epochs * steps,
            min_ratio=settings.min_lr / settings.lr,
        ),
        # Only fp16 needs loss scaling; a disabled scaler passes everything through.
        scaler=torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(amp_dtype)),
        train_batches=train_batches,
        val_batches=eval_loader(
            splits.val, config.data, pin_memory=pin_memory, **shard
        ),
        batches_per_epoch=batches,
        steps_per_epoch=steps,
    )
    # Each process draws its own dropout masks.
    seed_everything(config.seed + process.rank)
    return run
