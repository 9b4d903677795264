"""The eval use case, whole: load the suites, run them, keep the run, write its reports.

The command line parses the options into an `EvalRequest`, calls `evaluate`, and prints
what the returned `Evaluation` says; everything in between lives here, beside `Runner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .atomic import make_folder, remove_stale_temporaries
from .config import Config
from .configfile import display_path
from .history import (
    RUNS,
    new_run_dir,
    previous_run,
    resolve_results,
)
from .locking import locked
from .progress import ProgressBar
from .reports import load_results, write_reports
from .results import PASSED, CaseResult, cell_key
from .runner import Runner, RunOptions
from .suite import Suite, discover_suites, load_suites

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalRequest:
    """What to run and where to keep it; None takes harness.yaml's setting."""

    suites: tuple[Path, ...] = ()  # none: every suite in suites_dir
    providers: tuple[str, ...] = ()  # none: each suite's own
    judge: str | None = None
    case_filter: tuple[str, ...] = ()
    mode: str | None = None
    concurrency: int | None = None
    repeat: int = 1
    timeout_s: float | None = None
    use_cache: bool = True
    output_dir: Path | None = None
    name: str | None = None
    baseline: str | None = None  # a run name or results.json; none: the previous run


@dataclass(frozen=True)
class Evaluation:
    """One finished run: its results (as results.json holds them) and where it went."""

    records: list[dict[str, Any]]
    run_dir: Path
    output_dir: Path
    seconds: float
    options: RunOptions
    cache_hits: int
    recordings_dropped: int


# Runs that write their reports into one output folder take turns under this lock.
REPORTS_LOCK = ".reports.lock"


def clear_stale_reports(output: Path) -> None:
    """Remove the temporary files that a run killed while writing its reports left in
    `output` and its runs; called under REPORTS_LOCK, so no write is in progress."""
    remove_stale_temporaries(output)
    for run in (output / RUNS).glob("*"):
        if run.is_dir():
            remove_stale_temporaries(run)


def load_request_suites(config: Config, request: EvalRequest) -> list[Suite]:
    paths = list(request.suites) or discover_suites(config)
    suites = load_suites(
        paths,
        config,
        list(request.providers) or None,
        judge_override=request.judge,
        case_filter=list(request.case_filter) or None,
    )
    for suite in suites:
        for note in suite.notes:  # what a promptfoo config has that does not run here
            log.warning(note)
    return suites


def evaluate(
    config: Config, request: EvalRequest, *, progress: bool | None = None
) -> Evaluation:
    """Run the request's suites and keep the run in output_dir/runs/, with its
    reports compared against the baseline; `progress` is the bar's `enabled`."""
    suites = load_request_suites(config, request)
    options = RunOptions.from_config(
        config,
        mode=request.mode,
        concurrency=request.concurrency,
        repeat=request.repeat,
        timeout_s=request.timeout_s,
        use_cache=request.use_cache,
        # a filtered run leaves the other cases' recordings alone
        prune_recordings=not request.case_filter,
    )
    output = request.output_dir or config.output_dir
    # Read before any call: a wrong --baseline costs nothing.
    baseline_path = (
        resolve_results(request.baseline, output) if request.baseline else None
    )
    baseline: list[dict[str, Any]] | None = None
    if baseline_path is not None:
        baseline = load_results(baseline_path)["results"]
    make_folder(output)  # before the calls, which cost money, not after
    runner = Runner(config, options)
    total = options.repeat * sum(
        len(s.cases) * len(s.prompts) * len(s.providers) for s in suites
    )
    started = datetime.now().astimezone()
    clock = time.perf_counter()
    with ProgressBar(total, "eval", enabled=progress) as bar:
        passed = 0

        def tick(result: CaseResult) -> None:
            nonlocal passed
            passed += result.outcome == PASSED
            bar.update(passed=passed)

        results = asyncio.run(runner.run(suites, tick))
    seconds = time.perf_counter() - clock
    records = [result.to_dict() for result in results]
    run_dir = new_run_dir(output, request.name, started)
    if baseline_path is None:
        previous = previous_run(
            output, run_dir, {cell_key(record) for record in records}
        )
        if previous is not None:
            baseline_path, baseline = previous[0] / "results.json", previous[1]
    meta = {
        "run": run_dir.name,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "mode": options.mode,
        "repeat": options.repeat,
        "concurrency": options.concurrency,
        "suites": [display_path(suite.path) for suite in suites],
        "descriptions": {suite.name: suite.description for suite in suites},
        "filter": list(request.case_filter),
        "cache_hits": runner.cache_hits,
        "baseline": display_path(baseline_path) if baseline_path else None,
    }
    baseline_name = baseline_path.parent.name if baseline_path else ""
    try:
        with locked(output / REPORTS_LOCK):
            clear_stale_reports(output)
            write_reports(
                records, meta, run_dir, baseline, baseline_name, copy_to=output
            )
    except BaseException:
        # A run folder left empty by a failed write would stand among the runs as
        # a broken one.
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only if empty: a report half written stays to be seen
        raise
    return Evaluation(
        records=records,
        run_dir=run_dir,
        output_dir=output,
        seconds=seconds,
        options=options,
        cache_hits=runner.cache_hits,
        recordings_dropped=runner.recordings_dropped,
    )
