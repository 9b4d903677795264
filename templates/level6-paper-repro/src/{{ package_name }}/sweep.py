"""Running a grid: one folder per run, failures recorded, finished runs kept.

Each run writes, under runs/<grid>/<method>/<config>/seed=<k>/:

    config.resolved.yaml   every setting the run used
    metrics.json           its results (only when it finished): same config and seed,
                           same bytes, on the CPU
    log.txt                what it printed, and the traceback if it failed
    env.json               status (running, ok, failed); what the result depends on
                           (config hash, code hash, data sha256, git commit and dirty
                           flag, lock-file hash, every installed distribution); device,
                           threads, determinism flags; wall time of the run and, apart,
                           the start-up of its process

A run that raises is recorded as failed and the sweep goes on. `resume` runs only what
is missing, failed, unfinished, damaged (an env.json or metrics.json that cannot be
read) or stale (provenance.py: config, code or data changed); the old folder is moved
to runs/<grid>/.previous/ first, never deleted.
"""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
import logging
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
import yaml

from . import data, provenance
from .atomic import write_json_atomic, write_text_atomic
from .errors import BlockedError, ConfigError
from .grid import Run
from .progress import ProgressBar
from .provenance import RunState, archive, states
from .records import CONFIG_FILE, ENV_FILE, LOG_FILE, read_env
from .runs import write_metrics
from .runtime import environment
from .train import train

log = logging.getLogger(__name__)

# Runs submitted to submitit-local at once, unless the grid file says: one per core.
LOCAL_PARALLELISM = max(
    1,
    len(os.sched_getaffinity(0))
    if hasattr(os, "sched_getaffinity")
    else (os.cpu_count() or 1),
)
# Runs a SLURM array keeps running at once, unless the grid file says.
SLURM_PARALLELISM = 32


@dataclass(frozen=True)
class Outcome:
    label: str
    status: str  # ok, failed or skipped (finished before, nothing changed)
    wall_seconds: float
    error: str | None
    run_dir: Path


def distributions() -> dict[str, str]:
    """Every installed distribution and its version, by normalised name."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower().replace("_", "-")] = dist.version
    return dict(sorted(found.items()))


_startup: dict[str, float | None] = {"seconds": None}


def warm_up() -> float:
    """Use torch once in this process (seconds): its first-use set-up is start-up, not
    the first run's time. Returns 0 after the first call."""
    if _startup["seconds"] is not None:
        return 0.0
    started = time.perf_counter()
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    loss = loss_fn(model(torch.zeros(2, 4)), torch.zeros(2, dtype=torch.long))
    loss.backward()
    optimizer.step()
    seconds = time.perf_counter() - started
    _startup["seconds"] = seconds
    return seconds


def execute_run(run: Run, context: dict[str, Any]) -> Outcome:
    """Run one training in `run.run_dir` and record it; a failed run does not raise."""
    startup = warm_up()
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
        "data_sha256": context["datasets"].get(run.config.data.name),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": os.uname().nodename if hasattr(os, "uname") else None,
        "pid": os.getpid(),
        "startup_seconds": round(startup, 3),
        **{k: v for k, v in context.items() if k != "datasets"},
    }
    write_json_atomic(run.run_dir / ENV_FILE, record, sort_keys=True)
    error = None
    with open(run.run_dir / LOG_FILE, "w", encoding="utf-8") as log_file:
        run_log = _file_writer(log_file)
        run_log(f"run {run.label} (config {run.config_hash[:12]})")
        try:
            metrics = train(run.config, run_log, Path(context["manifest"]))
            write_metrics(run.run_dir, metrics)
            status = "ok"
        except Exception as exc:  # a failed run is a result to record, not a crash
            status = "failed"
            error = f"{type(exc).__name__}: {exc}"
            log_file.write(traceback.format_exc())
            run_log(f"failed: {error}")
        wall = time.perf_counter() - started
        run_log(f"{status} in {wall:.2f} s")
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
        distributions=distributions(),
        **environment(),
    )
    write_json_atomic(run.run_dir / ENV_FILE, record, sort_keys=True)
    return Outcome(run.label, status, wall, error, run.run_dir)


def _device_used() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _file_writer(file: TextIO) -> Callable[[str], None]:
    """train()'s `log`: the run's own lines go to its log.txt, not to the console."""

    def write(line: str) -> None:
        file.write(line + "\n")
        file.flush()

    return write


def plan(
    runs: Sequence[Run], *, resume: bool, manifest: Path = data.MANIFEST
) -> tuple[list[RunState], list[RunState]]:
    """(to run, reused): refuses to touch existing runs unless resuming."""
    found = states(runs, manifest)
    reused = [s for s in found if s.reusable]
    pending = [s for s in found if not s.reusable]
    existing = [s for s in found if s.state != "missing"]
    if existing and not resume:
        grid_dir = existing[0].run.run_dir.parents[2]
        raise BlockedError(
            f"{grid_dir} already holds {len(existing)} of these runs "
            f"({len(reused)} finished and current): "
            "pass --resume to run only the missing, failed, damaged or stale ones "
            "(finished runs are kept, stale ones moved to .previous/)"
        )
    return pending, reused


def run_grid(
    runs: Sequence[Run],
    *,
    resume: bool = False,
    executor: str = "pool",
    jobs: int = 1,
    slurm: dict[str, Any] | None = None,
    parallelism: int | None = None,
    manifest: Path = data.MANIFEST,
    progress: bool | None = None,
) -> list[Outcome]:
    """Run what `plan` says, with the chosen executor; one Outcome per run. `progress`
    is the bar's `enabled`: None draws it on a terminal only."""
    # Checked once, before anything runs: every run's dataset against the manifest.
    for name in sorted({run.config.data.name for run in runs}):
        data.load(name, manifest)
    pending, reused = plan(runs, resume=resume, manifest=manifest)
    outcomes = [
        Outcome(s.run.label, "skipped", 0.0, None, s.run.run_dir) for s in reused
    ]
    if reused:
        log.info(
            f"{len(reused)} runs finished before with this config, code and data: "
            "reused"
        )
    for state in pending:
        moved = archive(state.run, state.state)
        if moved is not None:
            why = ", ".join(state.reasons) or state.state
            log.info(f"{state.run.label}: {state.state} ({why}); moved to {moved}")
    if not pending:
        return outcomes
    context = {
        **provenance.git_state(),
        "lock": provenance.lock_file(),
        "code_sha256": provenance.code_hash(),
        "datasets": provenance.data_hashes(runs, manifest),
        "manifest": str(manifest),
        "executor": executor,
    }
    to_run = [state.run for state in pending]
    if executor == "pool":
        outcomes += _run_pool(to_run, context, jobs, progress)
    else:
        outcomes += _run_submitit(
            to_run, context, executor, slurm or {}, parallelism, progress
        )
    return outcomes


def _report(outcome: Outcome, bar: ProgressBar) -> None:
    bar.update(status=outcome.status)
    if outcome.status == "failed":
        log.warning(
            f"FAILED {outcome.label}: {outcome.error} "
            f"(log: {outcome.run_dir / LOG_FILE})"
        )


def _run_pool(
    pending: list[Run], context: dict[str, Any], jobs: int, progress: bool | None
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with ProgressBar(len(pending), "runs", enabled=progress) as bar:
        if jobs == 1:
            for run in pending:
                outcomes.append(execute_run(run, context))
                _report(outcomes[-1], bar)
            return outcomes
        # spawn, not fork: a forked copy of a process that already ran torch can hang.
        spawn = multiprocessing.get_context("spawn")
        pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=spawn)
        try:
            futures = {pool.submit(execute_run, run, context): run for run in pending}
            for future in concurrent.futures.as_completed(futures):
                outcomes.append(outcome_of(future, futures[future]))
                _report(outcomes[-1], bar)
        except BaseException:
            stop_pool(pool)
            raise
        pool.shutdown()
    return outcomes


def stop_pool(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Drop the queued runs and stop the workers now. On Ctrl-C the pool's own
    shutdown would wait until every queued run had trained (and a second Ctrl-C
    during that wait hung the process); a run stopped half way stays unfinished,
    and the next `--resume` runs it again."""
    # The executor has no public way to stop a running task before Python 3.14, and
    # shutdown forgets its processes: take them first.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


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


def submit_throttled(
    engine: Any,
    function: Callable[..., Outcome],
    pending: list[Run],
    context: dict[str, Any],
    limit: int,
    on_done: Callable[[Run, Any], None],
    poll_seconds: float = 0.2,
) -> None:
    """Submit one job per run, at most `limit` running at once, in the grid's order.

    submitit's LocalExecutor starts every job it is given at once; on a laptop, ten
    processes that each start torch share two cores and each takes twenty times longer.
    """
    waiting = list(pending)
    running: list[tuple[Any, Run]] = []
    while waiting or running:
        while waiting and len(running) < limit:
            run = waiting.pop(0)
            running.append((engine.submit(function, run, context), run))
        finished = [(job, run) for job, run in running if job.done()]
        if not finished:
            time.sleep(poll_seconds)
            continue
        for job, run in finished:
            running.remove((job, run))
            on_done(run, job)


def _run_submitit(
    pending: list[Run],
    context: dict[str, Any],
    executor: str,
    slurm: dict[str, Any],
    parallelism: int | None,
    progress: bool | None,
) -> list[Outcome]:
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            f"executor {executor} needs submitit: pip install submitit"
        ) from None
    folder = pending[0].run_dir.parents[2] / ".submitit"
    outcomes: list[Outcome] = []
    engine: Any

    def collect(run: Run, job: Any) -> None:
        try:
            outcome = job.result()
        except Exception as exc:  # submitit raises when the job itself died
            outcome = _worker_died(run, f"{type(exc).__name__}: {str(exc)[:300]}")
        outcomes.append(outcome)
        _report(outcome, bar)

    with ProgressBar(len(pending), "runs", enabled=progress) as bar:
        if executor == "slurm":
            limit = parallelism or SLURM_PARALLELISM
            engine = submitit.AutoExecutor(folder=folder, cluster="slurm")
            # One array job; SLURM itself keeps at most `limit` of its tasks running.
            engine.update_parameters(**slurm, slurm_array_parallelism=limit)
            jobs = engine.map_array(execute_run, pending, [context] * len(pending))
            log.info(
                f"submitted {len(jobs)} runs to slurm as one array, at most {limit} "
                f"at once (logs in {folder})"
            )
            for job, run in zip(jobs, pending, strict=True):
                collect(run, job)
        else:
            limit = parallelism or LOCAL_PARALLELISM
            engine = submitit.LocalExecutor(folder=folder)
            engine.update_parameters(timeout_min=int(slurm.get("timeout_min", 60)))
            log.info(
                f"running {len(pending)} runs with submitit-local, "
                f"at most {limit} at once"
            )
            submit_throttled(engine, execute_run, pending, context, limit, collect)
    order = {run.label: number for number, run in enumerate(pending)}
    return sorted(outcomes, key=lambda outcome: order[outcome.label])
