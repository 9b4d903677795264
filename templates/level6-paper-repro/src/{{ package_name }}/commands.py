"""The work of each command: one function per step of the pipeline and per check.

cli.py parses the arguments and calls these; `reproduce` (pipeline.py) chains them.
A result goes to stdout (a difference table, a report, the state of each run); what a
user follows goes to the log; a result that is a failure (runs that failed, results
that differ from the expected ones) raises an `Error`, after its table is printed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import aggregate, configfile, data, expected, paper, provenance, tables
from .commandline import PROG
from .errors import BlockedError, ConfigError, Error
from .grid import DEFAULT_GRID, RUNS_ROOT, load_grid
from .locking import hold_folder
from .stats import MIN_BOOTSTRAP

log = logging.getLogger(__name__)


class RunsFailedError(Error):
    """Some runs of the grid failed (exit 1); each one's log.txt says why."""


@contextlib.contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """One `grid`, `reproduce` or `aggregate` at a time in a runs folder. Two grids at
    once trained the same runs into the same folders, each moving the other's
    unfinished runs to .previous/, and their paper builds broke each other; an
    aggregate beside a grid wrote the summary of a half-finished grid."""
    instead = "wait for it to finish, or use another --runs folder"
    running = f"another `{PROG} grid`, `reproduce` or `aggregate`"
    with hold_folder(root, running, instead):
        yield


@dataclass(frozen=True)
class Paths:
    """The files every command reads or writes; each one a command-line option."""

    grid: Path = DEFAULT_GRID
    runs: Path = RUNS_ROOT
    manifest: Path = data.MANIFEST
    summary: Path = aggregate.SUMMARY
    expected: Path = expected.EXPECTED

    @property
    def tests(self) -> Path:
        """The paired tests, written beside the summary."""
        return self.summary.with_name("tests.csv")

    def check(self) -> None:
        """Refuse, before anything runs, a path that cannot be what its option names:
        a file given as the runs folder, a folder given as a file, or a path under a
        file. A missing file is each command's to name (some write it)."""
        files = {
            "--grid": (self.grid, "grid file"),
            "--manifest": (self.manifest, "checksum file"),
            "--summary": (self.summary, "CSV file"),
            "--expected": (self.expected, "file of expected results"),
        }
        for option, (path, kind) in files.items():
            if path.exists() and (why := configfile.not_a_file(path, kind)):
                raise ConfigError(f"{option} {path}: {why}")
            _no_file_above(option, path)
        if self.runs.exists() and not self.runs.is_dir():
            raise ConfigError(
                f"--runs {self.runs}: is a file, not a folder (the run folders go "
                "in it)"
            )
        _no_file_above("--runs", self.runs)


def _no_file_above(option: str, path: Path) -> None:
    """A path under a file names nothing that can be read or written."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {path}: {parent} is a file, not a folder")
            return


def run_grid(
    paths: Paths,
    *,
    resume: bool = False,
    methods: list[str] | None = None,
    configs: list[str] | None = None,
    seeds: list[int] | None = None,
    executor: str | None = None,
    jobs: int | None = None,
    progress: bool | None = None,
) -> None:
    """Run the grid's runs (or the chosen ones), with the grid file's executor unless
    another is given; RunsFailedError if any run failed."""
    grid = load_grid(paths.grid)
    runs = grid.runs(paths.runs, methods=methods, configs=configs, seeds=seeds)
    executor = executor or grid.executor.name
    # One process by default: for runs of a second, starting workers costs more.
    jobs = jobs or grid.executor.jobs
    from . import sweep  # torch: imported by the commands that train only

    started = time.perf_counter()
    # The data first: a changed dataset stops the sweep before the runs folder exists.
    for name in sorted({run.config.data.name for run in runs}):
        data.load(name, paths.manifest)
    with exclusive(paths.runs):
        outcomes = sweep.run_grid(
            runs,
            resume=resume,
            executor=executor,
            jobs=jobs,
            slurm=dict(grid.executor.slurm),
            parallelism=grid.executor.parallelism,
            manifest=paths.manifest,
            progress=progress,
        )
    counts = {
        status: sum(o.status == status for o in outcomes)
        for status in ("ok", "failed", "skipped")
    }
    log.info(
        f"grid {grid.name}: {len(outcomes)} runs: {counts['ok']} ok, "
        f"{counts['failed']} failed, {counts['skipped']} reused "
        f"({time.perf_counter() - started:.1f} s, {executor}"
        + (f", {jobs} jobs)" if executor == "pool" else ")")
    )
    if counts["failed"]:
        raise RunsFailedError(
            f"grid {grid.name}: {counts['failed']} of {len(outcomes)} runs failed "
            "(each one's log.txt says why)"
        )


def aggregate_runs(paths: Paths, *, ci: str = "t", bootstrap_seed: int = 0) -> None:
    """The summary, the paired tests and the compute report, from the current runs."""
    grid = load_grid(paths.grid)
    with exclusive(paths.runs):
        good, stale = aggregate.good_runs(grid, paths.runs, paths.manifest)
        rows = aggregate.summarize_grid(
            grid, paths.runs, ci=ci, seed=bootstrap_seed, good=good
        )
        path = aggregate.write_summary(rows, paths.summary)
        tests_path = aggregate.write_tests(
            aggregate.compare_methods(grid, good), paths.tests
        )
        report = aggregate.compute_report(grid, paths.runs)
        aggregate.write_compute_report(report)
    log.info(
        f"wrote {path} ({len(rows)} rows), {tests_path} and {aggregate.COMPUTE_MD}"
    )
    if stale:
        log.warning(
            f"left out {len(stale)} stale or damaged runs (`{PROG} grid --resume` "
            "reruns them): " + "; ".join(stale)
        )
    incomplete = sorted(
        {
            f"{r.method}/{r.config} {r.n_ok}/{r.n_total}"
            for r in rows
            if r.n_ok < r.n_total
        }
    )
    if incomplete:
        log.warning("incomplete cells (good runs/planned): " + ", ".join(incomplete))
    kept_t = [r for r in rows if ci == "bootstrap" and r.ci_method == "t"]
    if kept_t:
        log.info(
            f"{len(kept_t)} cells have fewer than {MIN_BOOTSTRAP} good runs: "
            "they keep the Student t interval"
        )


def print_compute_report(paths: Paths) -> None:
    report = aggregate.compute_report(load_grid(paths.grid), paths.runs)
    print(aggregate.write_compute_report(report), end="")


def write_tables(paths: Paths) -> None:
    """The Markdown and LaTeX tables, the number macros and the README's table."""
    settings = load_grid(paths.grid).shared_settings()
    for path in tables.write_tables(
        paths.summary, tests=paths.tests, settings=settings
    ):
        log.info(f"wrote {path}")


def draw_figures(paths: Paths, only: list[str] | None = None) -> None:
    from . import figures  # matplotlib: imported by the command that draws only

    unknown = sorted(set(only or []) - set(figures.FIGURES))
    if unknown:
        raise ConfigError(
            f"figure {unknown[0]}: expected one of {', '.join(figures.FIGURES)}"
        )
    grid = load_grid(paths.grid)
    for path in figures.write_figures(grid, paths.summary, paths.runs, only=only):
        log.info(f"wrote {path}")


def list_figures() -> None:
    from . import figures

    print("\n".join(figures.describe()))


def check_results(paths: Paths) -> None:
    """Print the table of every cell and run against the expected results;
    MismatchError if any differs."""
    wanted = expected.load_expected(paths.expected)
    grid = load_grid(paths.grid)
    good, rerun = aggregate.sort_runs(grid, paths.runs, paths.manifest)
    lines = expected.compare(
        aggregate.read_summary(paths.summary),
        wanted,
        [run for run, _ in good],
        left_out={state.run.label: state.state for state in rerun},
    )
    print(expected.difference_table(lines))
    bad = [line for line in lines if not line.ok]
    if bad:
        hint = (
            f"{len(rerun)} runs are stale or damaged ({rerun[0].run.label}: "
            f"{', '.join(rerun[0].reasons)}): `{PROG} reproduce` reruns them"
            if rerun
            else f"if the change is intended, `{PROG} update-expected` records it "
            "(commit it with a reason)"
        )
        raise expected.MismatchError(
            f"check-results: {len(bad)} of {len(lines)} cells and runs differ from "
            f"{paths.expected}; {hint}"
        )
    log.info(f"check-results: all {len(lines)} cells and runs match {paths.expected}")


def update_expected(paths: Paths, tolerance: dict[str, float] | None = None) -> None:
    """Record the summary and every current run as the expected results."""
    expected.check_tolerance_names(tolerance or {})
    rows = aggregate.read_summary(paths.summary)
    grid = load_grid(paths.grid)
    good, stale = aggregate.good_runs(grid, paths.runs, paths.manifest)
    if stale:
        raise BlockedError(
            f"{len(stale)} runs are stale or damaged ({stale[0]}, ...): "
            f"`{PROG} reproduce` first, then update-expected"
        )
    path = expected.update_expected(
        rows, [run for run, _ in good], paths.expected, tolerance
    )
    log.info(f"wrote {path} from {paths.summary} and {len(good)} runs")


def build_paper(*, strict: bool, overfull_limit: float) -> None:
    log.info(paper.build(strict=strict, overfull_limit=overfull_limit))


def print_status(paths: Paths) -> None:
    """A line per run of the grid: ok, stale (and why), failed, damaged (which file),
    unfinished, missing."""
    grid = load_grid(paths.grid)
    found = provenance.states(grid.runs(paths.runs), paths.manifest)
    for state in found:
        why = f" ({', '.join(state.reasons)})" if state.reasons else ""
        print(f"{state.run.label}  {state.state}{why}")
    counts = {
        name: sum(s.state == name for s in found)
        for name in ("ok", "stale", "failed", "damaged", "unfinished", "missing")
    }
    log.info(
        f"grid {grid.name}: {len(found)} runs: "
        + ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    )
    if counts["stale"] + counts["failed"] + counts["damaged"] + counts["unfinished"]:
        log.info(
            f"`{PROG} grid --resume` (or `{PROG} reproduce`) runs the stale, failed, "
            "damaged and unfinished ones again, moving each old folder to "
            f"{paths.runs / grid.name / provenance.ARCHIVE}/ first"
        )


def check_paper() -> None:
    """The paper's macros, the checklist's answers and CITATION.cff."""
    paper.check_macros()
    count = paper.check_checklist()
    problems = paper.check_citation()
    if problems:
        raise paper.PaperError(f"{paper.CITATION}: " + "; ".join(problems))
    log.info(
        f"paper macros defined, {count} checklist answers given, {paper.CITATION} valid"
    )


def verify_data(paths: Paths) -> None:
    """Each dataset the grid uses against its sha256 in the manifest."""
    for name in datasets(paths):
        data.load(name, paths.manifest)
        log.info(f"{name}: sha256 matches {paths.manifest}")


def datasets(paths: Paths) -> list[str]:
    grid = load_grid(paths.grid)
    return sorted({run.config.data.name for run in grid.runs(paths.runs)})


def fetch_full(paths: Paths) -> None:
    log.info(data.fetch_full(manifest=paths.manifest))
