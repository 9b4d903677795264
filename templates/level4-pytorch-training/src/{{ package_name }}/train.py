"""The training loop: `train` takes a Config and leaves a finished run folder.

Everything a run works with is one `Run` (run.py); each function below takes it and
does one thing. Read top to bottom: one epoch, the end of an epoch (validation, the
best epoch, checkpoints), and `train`, which puts them together and tests the best
epoch. The optimiser and one step are in optimization.py, the files a run writes
besides checkpoints in report.py.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from . import distributed
from .atomic import write_bytes_atomic
from .checkpoint import load_checkpoint, run_dir_of
from .commandline import PROG
from .config import Config
from .data import eval_loader, set_epoch, skip_batches
from .errors import Error
from .evaluate import Evaluation, evaluate_loader
from .history import check_loggers, write_csv
from .locking import hold_folder
from .optimization import backward, optimizer_step
from .progress import ProgressBar
from .report import run_files, write_results
from .run import Run, build_run
from .runs import create_run_dir
from .runtime import resolve_device, resolve_precision

log = logging.getLogger(__name__)


class TrainingDiverged(Error):
    """The loss became NaN or infinite: the run stops and keeps its last good state."""


def train_one_epoch(run: Run) -> tuple[float, float]:
    """Train on the epoch's batches (from where a checkpoint within it left off).

    Every `train.grad_accum_steps` batches make one optimiser step. Returns the mean
    loss and accuracy, over all processes under torchrun.
    """
    progress, settings = run.progress, run.config.train
    run.train_model.train()
    # The loss and correct answers summed on the device: read once per epoch (or for
    # the bar), since reading waits for the GPU. The count of examples is known here.
    sums = torch.tensor(progress.epoch_sums[:2], dtype=torch.float64, device=run.device)
    loss_sum, correct_sum = sums.unbind()
    count = int(progress.epoch_sums[2])
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
            loss_sum.add_(loss, alpha=targets.numel())
            correct_sum.add_(correct)
            count += targets.numel()
            progress.batch = index + 1
            if not steps_now:
                continue
            optimizer_step(run.optimizer, run.scheduler, run.scaler, settings.grad_clip)
            progress.step += 1
            bar.update(1, **_bar_values(bar, sums, count))
            every = settings.checkpoint_every_steps
            if every and progress.step % every == 0 and index + 1 < total:
                seconds = time.perf_counter() - started
                progress.epoch_sums = [*sums.tolist(), count, seconds]
                _check_finite(run, "training loss", _mean_loss(sums, count))
                save(run, improved=False)
    totals = _all_processes(sums, count)
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
    if run.segmentation:
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
        f" mIoU {val.mean_iou:.4f}" if run.segmentation else "",
        row["lr"],
        row["seconds"],
        "  (best)" if improved else "",
    )
    for logger in run.loggers:
        logger.log(row)
    return _stopped_early(run)


def save(run: Run, improved: bool) -> None:
    """Write last.pt (and best.pt) and the CSV; every process takes part."""
    state = run.state_dict()
    if not run.process.is_main:
        return
    # Serialised now, written while the next epoch trains: the bytes are this moment's
    # state, and each file is still replaced atomically.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    checkpoint = buffer.getvalue()
    checkpoints = run.run_dir / "checkpoints"
    run.writer.submit(write_bytes_atomic, checkpoints / "last.pt", checkpoint)
    if improved:
        run.writer.submit(write_bytes_atomic, checkpoints / "best.pt", checkpoint)
    if run.progress.history:
        history = list(run.progress.history)
        run.writer.submit(write_csv, history, run.run_dir / "metrics.csv")


def evaluate_best(run: Run) -> Evaluation:
    """Evaluate the best epoch's weights on the test split and write the results."""
    if run.process.is_main:  # rank 0 reads them; the others receive them
        run.writer.wait()
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
        write_results(run, result)
    return result


def train(
    config: Config,
    *,
    resume_from: Path | None = None,
    progress_bar: bool | None = None,
) -> Path:
    """Train from scratch, or continue the run of checkpoint `resume_from`, then test.

    Returns the run folder. Under torchrun, every process runs this function; rank 0
    alone writes files. `progress_bar`: None draws one on terminals, False never.
    """
    process = distributed.process_from_environment()
    device = resolve_device(config.device, process.local_rank)
    amp_dtype = resolve_precision(config.train.precision, device)
    if process.is_main:
        check_loggers(config)
    distributed.init(process, device)
    try:
        # The run (and its DDP wrapper) is gone when this returns: shutdown needs that.
        return _train(
            build_run(config, process, device, amp_dtype), resume_from, progress_bar
        )
    finally:
        distributed.shutdown()


def _train(run: Run, resume_from: Path | None, progress_bar: bool | None) -> Path:
    """Start or resume, train every epoch, test the best; the files of the run."""
    config, process = run.config, run.process
    run.progress_bar = progress_bar
    if resume_from is not None:
        run.load_state_dict(load_checkpoint(resume_from), source=resume_from)
        run.run_dir = run_dir_of(resume_from)
    else:
        run.run_dir = distributed.broadcast_object(
            create_run_dir(config.run_root, config.run_name)
            if process.is_main
            else None
        )
    # The checkpoint writer finishes, whatever happens: a kill keeps the last one.
    with _held(run), run_files(run), contextlib.closing(run.writer):
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
                "interrupted at epoch %d, step %d; continue with: train --resume %s",
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


def _held(run: Run) -> contextlib.AbstractContextManager[None]:
    """One process trains a run at a time: a second `train --resume` of it, or one
    while the run still trains, would write the same checkpoints and clear the
    other's unfinished writes as stale."""
    if not run.process.is_main:  # the other ranks write nothing
        return contextlib.nullcontext()
    return hold_folder(
        run.run_dir,
        f"another `{PROG} train` of this run",
        "wait for it to finish, or stop it (it can be resumed later)",
    )


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
    run.writer.wait()
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


def _mean_loss(sums: torch.Tensor, count: int) -> float:
    loss_sum, _, total = _all_processes(sums, count)
    return loss_sum / max(total, 1)


def _all_processes(sums: torch.Tensor, count: int) -> list[float]:
    """The loss sum, correct answers and examples of every process, added up."""
    mine = torch.cat((sums, sums.new_tensor([count])))
    totals: list[float] = distributed.all_reduce_sum(mine).tolist()
    return totals


def _bar_values(bar: ProgressBar, sums: torch.Tensor, count: int) -> dict[str, float]:
    # Reading the sums waits for the GPU: only when a bar is shown, every 10 steps.
    if not bar.enabled or bar.count % 10:
        return {}
    loss, correct = sums.tolist()
    return {"loss": loss / count, "accuracy": correct / count}


def _gradient_sync(run: Run, sync: bool) -> contextlib.AbstractContextManager[Any]:
    """Under DDP, average gradients only on the batch that ends an accumulation."""
    if run.ddp is None or sync:
        return contextlib.nullcontext()
    return run.ddp.no_sync()
