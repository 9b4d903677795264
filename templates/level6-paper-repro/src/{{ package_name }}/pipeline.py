"""`reproduce`: every step in order, each only if its inputs changed, and nothing
published from results that fail their check.

    grid -> aggregate -> check-results -> tables -> figures -> paper

A failed run or check stops it before the tables, the README, the figures and the
paper. A step is skipped when its inputs have not changed, as make would, by content
instead of dates.

A step is up to date when the sha256 of every input file, its options and the code
(provenance.code_hash) are those recorded when it last ran, and every output it wrote
is still there with the bytes it wrote. The record is runs/.steps.json (not committed:
a fresh clone runs every step once). Editing an output by hand reruns its step.

Why not DVC or Snakemake: the steps are six fixed Python functions run in one process,
their inputs are a few files known in advance, and the run folders already carry their
own provenance; a workflow engine would add a dependency, a second description of the
pipeline to keep in step with this one, and (DVC) a cache and git hooks, for what these
forty lines do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import aggregate, commands, data, expected, paper, provenance, tables
from .atomic import write_json_atomic
from .commands import Paths, RunsFailedError
from .errors import Error
from .grid import Grid, load_grid
from .records import ENV_FILE, METRICS_FILE

log = logging.getLogger(__name__)

STATE_FILE = ".steps.json"


class StoppedError(Error):
    """A run or the check of the results failed: nothing was published (exit 1)."""


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError):
        return None


def fingerprint(inputs: Iterable[Path], options: dict[str, Any]) -> str:
    """One sha256 for the inputs' contents (a missing file counts) and the options."""
    listing = {path.as_posix(): file_hash(path) for path in sorted(set(inputs))}
    text = json.dumps(
        {"inputs": listing, "options": options}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Steps:
    """The record of what each step last ran on and wrote, under the runs folder."""

    def __init__(self, root: Path) -> None:
        self.path = root / STATE_FILE
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            value = {}
        self.state: dict[str, Any] = value if isinstance(value, dict) else {}

    def up_to_date(self, step: str, key: str) -> bool:
        recorded = self.state.get(step)
        if not isinstance(recorded, dict) or recorded.get("key") != key:
            return False
        outputs = recorded.get("outputs")
        return isinstance(outputs, dict) and all(
            file_hash(Path(name)) == digest for name, digest in outputs.items()
        )

    def record(self, step: str, key: str, outputs: Iterable[Path]) -> None:
        self.state[step] = {
            "key": key,
            "outputs": {path.as_posix(): file_hash(path) for path in outputs},
        }
        write_json_atomic(self.path, self.state, sort_keys=True)

    def forget(self, step: str) -> None:
        if self.state.pop(step, None) is not None:
            write_json_atomic(self.path, self.state, sort_keys=True)


def reproduce(
    paths: Paths,
    *,
    ci: str = "t",
    bootstrap_seed: int = 0,
    strict: bool = False,
    overfull_limit: float = paper.OVERFULL_LIMIT_PT,
    executor: str | None = None,
    jobs: int | None = None,
    progress: bool | None = None,
) -> None:
    """Bring every output up to date; StoppedError if a run or the check failed."""
    for name in commands.datasets(paths):
        data.load(name, paths.manifest)
    # One reproduce at a time: two would train the same runs and build the same paper.
    with commands.exclusive(paths.runs):
        _reproduce(
            paths,
            ci=ci,
            bootstrap_seed=bootstrap_seed,
            strict=strict,
            overfull_limit=overfull_limit,
            executor=executor,
            jobs=jobs,
            progress=progress,
        )


def _reproduce(
    paths: Paths,
    *,
    ci: str,
    bootstrap_seed: int,
    strict: bool,
    overfull_limit: float,
    executor: str | None,
    jobs: int | None,
    progress: bool | None,
) -> None:
    started = time.perf_counter()
    grid = load_grid(paths.grid)
    steps = Steps(paths.runs)
    code = provenance.code_hash()
    ran: list[str] = []
    reused: list[str] = []

    log.info("== grid")
    found = provenance.states(grid.runs(paths.runs), paths.manifest)
    failed: str | None = None
    if all(state.reusable for state in found):
        log.info(
            f"all {len(found)} runs finished with this config, code and data: reused"
        )
        reused.append(f"grid ({len(found)} runs)")
    else:
        try:
            commands.run_grid(
                paths, resume=True, executor=executor, jobs=jobs, progress=progress
            )
        except RunsFailedError as error:
            log.warning(str(error))
            failed = "grid"
        ran.append("grid")

    def stage(
        name: str,
        work: Callable[[], None],
        inputs: list[Path],
        options: dict[str, object],
        outputs: Callable[[], list[Path]],
    ) -> None:
        log.info(f"== {name}")
        key = fingerprint(inputs, {**options, "code": code})
        if steps.up_to_date(name, key):
            log.info(f"{name}: inputs unchanged, outputs as written: reused")
            reused.append(name)
            return
        steps.forget(name)
        work()
        ran.append(name)
        steps.record(name, key, [path for path in outputs() if path.is_file()])

    stage(
        "aggregate",
        lambda: commands.aggregate_runs(paths, ci=ci, bootstrap_seed=bootstrap_seed),
        [paths.grid, paths.manifest, *_runs_files(grid, paths.runs)],
        {"ci": ci, "bootstrap_seed": bootstrap_seed},
        lambda: [
            paths.summary,
            paths.tests,
            aggregate.COMPUTE_JSON,
            aggregate.COMPUTE_MD,
        ],
    )
    log.info("== check-results")
    try:
        commands.check_results(paths)
    except expected.MismatchError as error:
        log.warning(str(error))
        failed = failed or "check-results"
    ran.append("check-results")
    if failed is not None:
        raise StoppedError(
            f"reproduce: stopped after {failed} failed, before anything is published "
            "from these results (tables, README, figures and paper unchanged); "
            f"{time.perf_counter() - started:.1f} s"
        )
    stage(
        "tables",
        lambda: commands.write_tables(paths),
        [paths.summary, paths.tests, paths.grid],
        {},
        lambda: [
            tables.TABLE_MD,
            tables.TABLE_TEX,
            tables.TESTS_TEX,
            tables.NUMBERS_TEX,
            tables.README,
        ],
    )
    stage(
        "figures",
        lambda: commands.draw_figures(paths),
        [paths.summary, paths.grid, *_runs_files(grid, paths.runs)],
        {"only": None},
        lambda: sorted(paper.PAPER_DIR.glob("figures/*")),
    )
    log.info("== paper")
    engine = paper.tex_engine()
    inputs = [
        *paper.tex_sources(),
        *sorted(paper.PAPER_DIR.glob("generated/*")),
        *sorted(paper.PAPER_DIR.glob("*.bib")),
        *sorted(paper.PAPER_DIR.glob("figures/*.pdf")),
        paper.CHECKLIST,
    ]
    key = fingerprint(
        inputs,
        {
            "engine": engine,
            "epoch": paper.source_date_epoch(),
            "strict": strict,
            "overfull": overfull_limit,
            "code": code,
        },
    )
    if engine is not None and steps.up_to_date("paper", key):
        log.info("paper: inputs unchanged, paper/ms.pdf as built: reused")
        reused.append("paper")
    else:
        steps.forget("paper")
        paper.check_checklist()
        commands.build_paper(strict=strict, overfull_limit=overfull_limit)
        ran.append("paper" if engine else "paper (skipped: no TeX)")
        if engine is not None:
            steps.record("paper", key, [paper.MAIN_PDF])
    elapsed = time.perf_counter() - started
    log.info(
        f"reproduce: done in {elapsed:.1f} s; ran: {', '.join(ran) or 'nothing'}; "
        f"reused: {', '.join(reused) or 'nothing'}"
    )


def _runs_files(grid: Grid, root: Path) -> list[Path]:
    return [
        run.run_dir / name
        for run in grid.runs(root)
        for name in (ENV_FILE, METRICS_FILE)
    ]
