"""Running a grid: one folder per run, failures recorded, finished runs kept.

Each run writes, under runs/<grid>/<method>/<config>/seed=<k>/:

    config.resolved.yaml   every setting the run used
    metrics.json           its results (only when it finished): same config and seed,
                           same bytes, on the CPU
    log.txt                what it printed, and the traceback if it failed
    env.json               status (running, ok, failed), the config hash, git commit and
                           dirty flag, lock-file hash, versions, device, threads,
                           determinism flags, wall time

A run that raises is recorded as failed and the sweep goes on. `resume` runs only what
is missing, failed or changed (its config hash differs); a failed or changed run's old
folder is moved to runs/<grid>/.previous/ first, never deleted.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
import yaml

from . import data
from .atomic import write_json_atomic, write_text_atomic
from .errors import ConfigError
from .grid import Run
from .progress import ProgressBar
from .records import CONFIG_FILE, ENV_FILE, LOG_FILE, METRICS_FILE, read_env
from .runs import write_metrics
from .runtime import environment
from .train import train

LOCK_FILES = ("uv.lock", "pylock.toml", "requirements.lock")


@dataclass(frozen=True)
class Outcome:
    label: str
    status: str  # ok, failed or skipped (finished before, config unchanged)
    wall_seconds: float
    error: str | None
    run_dir: Path


def provenance() -> dict[str, Any]:
    """The code and its locked dependencies: git commit, dirty tree, lock hash."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    lock: dict[str, Any] = {"file": None, "sha256": None}
    for name in LOCK_FILES:
        path = Path(name)
        if path.is_file():
            lock = {
                "file": name,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
            break
    return {
        "git_commit": commit,
        "git_dirty": None if commit is None or status is None else bool(status),
        "lock": lock,
    }


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def is_finished(run: Run) -> bool:
    """A finished run of this very config: status ok, same hash, metrics written."""
    env = read_env(run.run_dir)
    return (
        env is not None
        and env.get("status") == "ok"
        and env.get("config_hash") == run.config_hash
        and (run.run_dir / METRICS_FILE).is_file()
    )


def execute_run(run: Run, context: dict[str, Any]) -> Outcome:
    """Run one training in `run.run_dir` and record it; a failed run does not raise."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        run.run_dir / CONFIG_FILE,
        yaml.safe_dump(run.config.to_dict(), sort_keys=True, allow_unicode=True),
    )
    started = time.perf_counter()
    record: dict[str, Any] = {
        "run": run.label,
        "grid": run.grid,
        "status": "running",
        "config_hash": run.config_hash,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": os.uname().nodename if hasattr(os, "uname") else None,
        "pid": os.getpid(),
        **context,
    }
    write_json_atomic(run.run_dir / ENV_FILE, record, sort_keys=True)
    error = None
    with open(run.run_dir / LOG_FILE, "w", encoding="utf-8") as log_file:
        log = _logger(log_file)
        log(f"run {run.label} (config {run.config_hash[:12]})")
        try:
            metrics = train(run.config, log, Path(context["manifest"]))
            write_metrics(run.run_dir, metrics)
            status = "ok"
        except Exception as exc:  # a failed run is a result to record, not a crash
            status = "failed"
            error = f"{type(exc).__name__}: {exc}"
            log_file.write(traceback.format_exc())
            log(f"failed: {error}")
        wall = time.perf_counter() - started
        log(f"{status} in {wall:.2f} s")
    record.update(
        status=status,
        error=error,
        wall_seconds=round(wall, 3),
        device=run.config.device if run.config.device != "auto" else _device_used(),
        determinism={
            "use_deterministic_algorithms": (
                torch.are_deterministic_algorithms_enabled()
            ),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        },
        **environment(),
    )
    write_json_atomic(run.run_dir / ENV_FILE, record, sort_keys=True)
    return Outcome(run.label, status, wall, error, run.run_dir)


def _device_used() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _logger(file: TextIO) -> Callable[[str], None]:
    def log(line: str) -> None:
        file.write(line + "\n")
        file.flush()

    return log


def plan(runs: Sequence[Run], *, resume: bool) -> tuple[list[Run], list[Run]]:
    """(to run, finished): refuses to touch existing runs unless resuming."""
    finished = [run for run in runs if is_finished(run)]
    pending = [run for run in runs if run not in finished]
    existing = [run for run in runs if run.run_dir.exists()]
    if existing and not resume:
        grid_dir = existing[0].run_dir.parents[2]
        raise ConfigError(
            f"{grid_dir} already holds {len(existing)} of these runs "
            f"({len(finished)} finished): "
            "pass --resume to run only the missing, failed or changed ones "
            "(finished runs are kept)"
        )
    return pending, finished


def archive(run: Run) -> Path | None:
    """Move a failed, unfinished or changed run's folder aside, never deleting it."""
    if not run.run_dir.exists():
        return None
    env = read_env(run.run_dir) or {}
    tag = (
        f"{str(env.get('config_hash', 'unknown'))[:12]}-{env.get('status', 'unknown')}"
    )
    grid_dir = run.run_dir.parents[2]
    target = (
        grid_dir / ".previous" / run.method / run.config_name / run.run_dir.name / tag
    )
    suffix = 1
    while target.exists():
        suffix += 1
        target = target.with_name(f"{tag}-{suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run.run_dir), str(target))
    return target


def run_grid(
    runs: Sequence[Run],
    *,
    resume: bool = False,
    executor: str = "pool",
    jobs: int = 1,
    slurm: dict[str, Any] | None = None,
    manifest: Path = data.MANIFEST,
    show: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """Run what `plan` says, with the chosen executor; one Outcome per run."""
    show = show or (lambda line: print(line, file=sys.stderr))
    # Checked once, before anything runs: every run's dataset against the manifest.
    for name in sorted({run.config.data.name for run in runs}):
        data.load(name, manifest)
    pending, finished = plan(runs, resume=resume)
    outcomes = [
        Outcome(run.label, "skipped", 0.0, None, run.run_dir) for run in finished
    ]
    if finished:
        show(f"{len(finished)} runs finished before with the same config: kept")
    for run in pending:
        moved = archive(run)
        if moved is not None:
            show(f"{run.label}: previous attempt moved to {moved}")
    context = {**provenance(), "manifest": str(manifest), "executor": executor}
    if not pending:
        return outcomes
    if executor == "pool":
        outcomes += _run_pool(pending, context, jobs, show)
    else:
        outcomes += _run_submitit(pending, context, executor, slurm or {}, show)
    return outcomes


def _report(outcome: Outcome, bar: ProgressBar, show: Callable[[str], None]) -> None:
    bar.update(status=outcome.status)
    if outcome.status == "failed":
        show(
            f"FAILED {outcome.label}: {outcome.error} "
            f"(log: {outcome.run_dir / LOG_FILE})"
        )


def _run_pool(
    pending: list[Run], context: dict[str, Any], jobs: int, show: Callable[[str], None]
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with ProgressBar(len(pending), "runs") as bar:
        if jobs == 1:
            for run in pending:
                outcomes.append(execute_run(run, context))
                _report(outcomes[-1], bar, show)
            return outcomes
        # spawn, not fork: a forked copy of a process that already ran torch can hang.
        spawn = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=spawn) as pool:
            futures = {pool.submit(execute_run, run, context): run for run in pending}
            for future in concurrent.futures.as_completed(futures):
                outcomes.append(outcome_of(future, futures[future]))
                _report(outcomes[-1], bar, show)
    return outcomes


def outcome_of(future: concurrent.futures.Future[Outcome], run: Run) -> Outcome:
    """The run's outcome, or a failure if its worker process died under it."""
    try:
        return future.result()
    except Exception as exc:
        return _worker_died(run, f"{type(exc).__name__}: {exc}")


def _worker_died(run: Run, error: str) -> Outcome:
    env = read_env(run.run_dir) or {"run": run.label, "config_hash": run.config_hash}
    env.update(status="failed", error=f"the worker process died: {error}")
    write_json_atomic(run.run_dir / ENV_FILE, env, sort_keys=True)
    return Outcome(run.label, "failed", 0.0, env["error"], run.run_dir)


def _run_submitit(
    pending: list[Run],
    context: dict[str, Any],
    executor: str,
    slurm: dict[str, Any],
    show: Callable[[str], None],
) -> list[Outcome]:
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            f"executor {executor} needs submitit: pip install submitit"
        ) from None
    folder = pending[0].run_dir.parents[2] / ".submitit"
    engine: Any
    if executor == "slurm":
        engine = submitit.AutoExecutor(folder=folder, cluster="slurm")
        engine.update_parameters(**slurm)
    else:
        engine = submitit.LocalExecutor(folder=folder)
        engine.update_parameters(timeout_min=int(slurm.get("timeout_min", 60)))
    work = [engine.submit(execute_run, run, context) for run in pending]
    show(f"submitted {len(work)} runs to {executor} (logs in {folder})")
    outcomes = []
    with ProgressBar(len(pending), "runs") as bar:
        for job, run in zip(work, pending, strict=True):
            try:
                outcome = job.result()
            except Exception as exc:  # submitit raises when the job itself died
                outcome = _worker_died(run, f"{type(exc).__name__}: {str(exc)[:300]}")
            outcomes.append(outcome)
            _report(outcome, bar, show)
    return outcomes
