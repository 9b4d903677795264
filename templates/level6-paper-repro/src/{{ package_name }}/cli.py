"""The command line: each step of the pipeline a command; `reproduce` runs them all.

reproduce = grid -> aggregate -> check-results -> tables -> figures -> paper

The handlers turn the options into calls of commands.py (the work of each command) and
pipeline.py (`reproduce`), which say what they do on the log and print their results.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from . import aggregate, commands, data, expected, paper, pipeline
from .commandline import (
    PROG,
    non_negative_int,
    output_options,
    positive_float,
    positive_int,
    progress_enabled,
    run_cli,
)
from .commands import Paths
from .errors import ConfigError
from .grid import (
    DEFAULT_GRID,
    EXECUTORS,
    MAX_JOBS,
    RUNS_ROOT,
    parse_list,
    parse_seeds,
)

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def paths(args: argparse.Namespace) -> Paths:
    """The file options, each refused now if it cannot be what it names."""
    found = Paths(args.grid, args.runs, args.manifest, args.summary, args.expected)
    found.check()
    return found


def cmd_reproduce(args: argparse.Namespace) -> int:
    pipeline.reproduce(
        paths(args),
        ci=args.ci,
        bootstrap_seed=args.bootstrap_seed,
        strict=args.strict,
        overfull_limit=args.overfull_limit,
        executor=args.executor,
        jobs=args.jobs,
        progress=progress_enabled(args),
    )
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    commands.run_grid(
        paths(args),
        resume=args.resume,
        methods=args.method,
        configs=args.config,
        seeds=args.seeds,
        executor=args.executor,
        jobs=args.jobs,
        progress=progress_enabled(args),
    )
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    commands.aggregate_runs(paths(args), ci=args.ci, bootstrap_seed=args.bootstrap_seed)
    return 0


def cmd_compute_report(args: argparse.Namespace) -> int:
    commands.print_compute_report(paths(args))
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    commands.write_tables(paths(args))
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    if args.list:
        commands.list_figures()
    else:
        commands.draw_figures(paths(args), args.only)
    return 0


def cmd_check_results(args: argparse.Namespace) -> int:
    commands.check_results(paths(args))
    return 0


def cmd_update_expected(args: argparse.Namespace) -> int:
    tolerance: dict[str, float] = {}
    for metric, number in args.tolerance or []:
        # dict() would keep the last silently, and the first may be the one meant.
        if metric in tolerance:
            raise ConfigError(
                f"--tolerance {metric}: given twice ({tolerance[metric]:g} and "
                f"{number:g}); give each metric once"
            )
        tolerance[metric] = number
    commands.update_expected(paths(args), tolerance)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    commands.print_status(paths(args))
    return 0


def cmd_paper(args: argparse.Namespace) -> int:
    commands.build_paper(strict=args.strict, overfull_limit=args.overfull_limit)
    return 0


def cmd_check_paper(args: argparse.Namespace) -> int:
    commands.check_paper()
    return 0


def cmd_verify_data(args: argparse.Namespace) -> int:
    commands.verify_data(paths(args))
    return 0


def cmd_fetch_full(args: argparse.Namespace) -> int:
    commands.fetch_full(paths(args))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Experiments x seeds -> summary -> tables, figures -> checked "
        "results -> paper.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_reproduce(commands)
    _add_grid(commands)
    _add_aggregate(commands)
    _add_compute_report(commands)
    _add_tables(commands)
    _add_figures(commands)
    _add_check_results(commands)
    _add_update_expected(commands)
    _add_status(commands)
    _add_paper(commands)
    _add_check_paper(commands)
    _add_verify_data(commands)
    _add_fetch_full(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


def _command(
    commands: Commands, name: str, text: str, *, progress: bool = False
) -> argparse.ArgumentParser:
    """A subcommand with the output options and the file options every command takes;
    `progress` where it draws a bar."""
    parents = [output_options(progress=progress), _path_options()]
    return commands.add_parser(name, help=text, description=text, parents=parents)


def _add_reproduce(commands: Commands) -> None:
    sub = _command(
        commands,
        "reproduce",
        "everything, in order, each step only if its inputs changed: grid (missing, "
        "failed or stale runs), aggregate, check-results, tables, figures, paper",
        progress=True,
    )
    sub.set_defaults(handler=cmd_reproduce)
    _executor_options(sub)
    _stats_options(sub)
    _paper_options(sub)


def _add_grid(commands: Commands) -> None:
    text = "run the grid's runs (each its own folder)"
    sub = _command(commands, "grid", text, progress=True)
    sub.set_defaults(handler=cmd_grid)
    _executor_options(sub)
    sub.add_argument(
        "--method", type=_listed(parse_list), help="only these methods (a,b)"
    )
    sub.add_argument(
        "--config", type=_listed(parse_list), help="only these configs (a,b)"
    )
    sub.add_argument(
        "--seeds", type=_listed(parse_seeds), help="only these seeds (0,1 or 0-4)"
    )
    sub.add_argument(
        "--resume",
        action="store_true",
        help="run only missing, failed or changed runs; finished ones are kept",
    )


def _add_aggregate(commands: Commands) -> None:
    text = "summarize the runs into results/summary.csv and the compute report"
    sub = _command(commands, "aggregate", text)
    sub.set_defaults(handler=cmd_aggregate)
    _stats_options(sub)


def _add_compute_report(commands: Commands) -> None:
    text = "print the compute the grid's runs used"
    sub = _command(commands, "compute-report", text)
    sub.set_defaults(handler=cmd_compute_report)


def _add_tables(commands: Commands) -> None:
    text = "write the Markdown and LaTeX tables, the number macros and README's table"
    sub = _command(commands, "tables", text)
    sub.set_defaults(handler=cmd_tables)


def _add_figures(commands: Commands) -> None:
    sub = _command(commands, "figures", "draw the paper's figures (PNG and PDF)")
    sub.set_defaults(handler=cmd_figures)
    sub.add_argument(
        "--only", type=_listed(parse_list), help="only these figures (a,b)"
    )
    sub.add_argument(
        "--list", action="store_true", help="list each figure and its script"
    )


def _add_check_results(commands: Commands) -> None:
    text = "compare the summary and every run's metrics with results/expected.json"
    sub = _command(commands, "check-results", text)
    sub.set_defaults(handler=cmd_check_results)


def _add_update_expected(commands: Commands) -> None:
    text = (
        "record the summary and every run's metrics hash as results/expected.json "
        "(the only command that writes it)"
    )
    sub = _command(commands, "update-expected", text)
    sub.set_defaults(handler=cmd_update_expected)
    sub.add_argument(
        "--tolerance",
        type=_tolerance,
        action="append",
        metavar="METRIC=NUMBER",
        help="a tolerance instead of the one derived from the spread (repeatable)",
    )


def _add_status(commands: Commands) -> None:
    text = (
        "list every run of the grid: ok, stale (and why), failed, unfinished or missing"
    )
    sub = _command(commands, "status", text)
    sub.set_defaults(handler=cmd_status)


def _add_paper(commands: Commands) -> None:
    sub = _command(commands, "paper", "build paper/ms.pdf with latexmk or tectonic")
    sub.set_defaults(handler=cmd_paper)
    _paper_options(sub)


def _add_check_paper(commands: Commands) -> None:
    text = "paper macros, checklist answers and CITATION.cff"
    sub = _command(commands, "check-paper", text)
    sub.set_defaults(handler=cmd_check_paper)


def _add_verify_data(commands: Commands) -> None:
    text = "check each dataset against data/MANIFEST.sha256"
    sub = _command(commands, "verify-data", text)
    sub.set_defaults(handler=cmd_verify_data)


def _add_fetch_full(commands: Commands) -> None:
    text = "download the full-size data set (never part of reproduce)"
    sub = _command(commands, "fetch-full", text)
    sub.set_defaults(handler=cmd_fetch_full)


def _path_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("files")
    group.add_argument(
        "--grid",
        type=Path,
        default=DEFAULT_GRID,
        help="grid file (default: %(default)s)",
    )
    group.add_argument(
        "--runs",
        type=Path,
        default=RUNS_ROOT,
        help="run folders root (default: %(default)s)",
    )
    group.add_argument(
        "--manifest", type=Path, default=data.MANIFEST, help="dataset checksums"
    )
    group.add_argument(
        "--summary", type=Path, default=aggregate.SUMMARY, help="summary CSV"
    )
    group.add_argument(
        "--expected", type=Path, default=expected.EXPECTED, help="expected results"
    )
    return parent


def _executor_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--jobs", type=_jobs, help="parallel runs (pool executor)")
    sub.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="pool (this machine), slurm or submitit-local (default: the grid file's)",
    )


def _stats_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--ci",
        choices=("t", "bootstrap"),
        default="t",
        help="confidence interval: Student t, or a seeded bootstrap (n >= 10)",
    )
    # NumPy's generator refuses a negative seed (a traceback, before this type).
    sub.add_argument(
        "--bootstrap-seed",
        type=non_negative_int,
        default=0,
        help="seed of the bootstrap",
    )


def _paper_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--strict",
        action="store_true",
        help="fail, instead of skipping, when no TeX engine is installed",
    )
    sub.add_argument(
        "--overfull-limit",
        type=positive_float,
        default=paper.OVERFULL_LIMIT_PT,
        metavar="PT",
        help="fail on a box this many points past the margin (default: %(default)s)",
    )


def _listed(
    parse: Callable[[str], list[str]] | Callable[[str], list[int]],
) -> Callable[[str], object]:
    """The list parser as an argparse type: a bad list is argparse's usage error."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _jobs(text: str) -> int:
    """The pool's processes, bounded as the grid file's executor.jobs is."""
    value = positive_int(text)
    if value > MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be {MAX_JOBS} or less, got {value}")
    return value


def _tolerance(text: str) -> tuple[str, float]:
    """METRIC=NUMBER; expected.check_tolerance_names checks the name and the value."""
    metric, sep, value = text.partition("=")
    number: float | None
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or not metric or number is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected metric=number, such as test_accuracy=0.001"
        )
    return metric, number
