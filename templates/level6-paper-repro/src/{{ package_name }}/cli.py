"""The command line: each step of the pipeline a command; `reproduce` runs them all.

reproduce = grid -> aggregate -> check-results -> tables -> figures -> paper

The results are checked before anything is published from them: a failed check (or a
failed run) stops `reproduce` before the tables, the README, the figures and the paper.
A step whose inputs are unchanged is reused (pipeline.py), and a finished run whose
config, code and data are unchanged is kept (provenance.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import aggregate, data, expected, paper, pipeline, provenance, tables
from .commandline import PROG, positive_float, positive_int, run_command
from .errors import EXIT_FAILURE, EXIT_OK, ConfigError
from .grid import (
    DEFAULT_GRID,
    EXECUTORS,
    RUNS_ROOT,
    Grid,
    load_grid,
    parse_list,
    parse_seeds,
)
from .records import ENV_FILE, METRICS_FILE
from .stats import MIN_BOOTSTRAP


def say(line: str) -> None:
    print(line, file=sys.stderr)


def _listed(
    parse: Callable[[str], list[str]] | Callable[[str], list[int]],
) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return parse(text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def cmd_grid(args: argparse.Namespace) -> int:
    grid = load_grid(args.grid)
    runs = grid.runs(
        args.runs, methods=args.method, configs=args.config, seeds=args.seeds
    )
    executor = args.executor or str(grid.executor.get("name", "pool"))
    # One process by default: for runs of a second, starting workers costs more.
    jobs = args.jobs or int(grid.executor.get("jobs", 1))
    from . import sweep  # torch: imported by the commands that train only

    started = time.perf_counter()
    outcomes = sweep.run_grid(
        runs,
        resume=args.resume,
        executor=executor,
        jobs=jobs,
        slurm=dict(grid.executor.get("slurm") or {}),
        parallelism=grid.executor.get("parallelism"),
        manifest=args.manifest,
    )
    counts = {
        status: sum(o.status == status for o in outcomes)
        for status in ("ok", "failed", "skipped")
    }
    say(
        f"grid {grid.name}: {len(outcomes)} runs: {counts['ok']} ok, "
        f"{counts['failed']} failed, {counts['skipped']} reused "
        f"({time.perf_counter() - started:.1f} s, {executor}"
        + (f", {jobs} jobs)" if executor == "pool" else ")")
    )
    return EXIT_FAILURE if counts["failed"] else EXIT_OK


def cmd_aggregate(args: argparse.Namespace) -> int:
    grid = load_grid(args.grid)
    good, stale = aggregate.good_runs(grid, args.runs, args.manifest)
    rows = aggregate.summarize_grid(
        grid, args.runs, ci=args.ci, seed=args.bootstrap_seed, good=good
    )
    path = aggregate.write_summary(rows, args.summary)
    tests_path = aggregate.write_tests(
        aggregate.compare_methods(grid, good), args.summary.with_name("tests.csv")
    )
    incomplete = sorted(
        {
            f"{r.method}/{r.config} {r.n_ok}/{r.n_total}"
            for r in rows
            if r.n_ok < r.n_total
        }
    )
    say(f"wrote {path} ({len(rows)} rows) and {tests_path}")
    if stale:
        say(
            f"left out {len(stale)} stale runs (`{PROG} grid --resume` reruns them): "
            + "; ".join(stale)
        )
    if incomplete:
        say("incomplete cells (good runs/planned): " + ", ".join(incomplete))
    kept_t = [r for r in rows if args.ci == "bootstrap" and r.ci_method == "t"]
    if kept_t:
        say(
            f"{len(kept_t)} cells have fewer than {MIN_BOOTSTRAP} good runs: "
            "they keep the Student t interval"
        )
    say(
        aggregate.write_compute_report(
            aggregate.compute_report(grid, args.runs)
        ).splitlines()[0]
    )
    return EXIT_OK


def cmd_compute_report(args: argparse.Namespace) -> int:
    grid = load_grid(args.grid)
    print(
        aggregate.write_compute_report(aggregate.compute_report(grid, args.runs)),
        end="",
    )
    return EXIT_OK


def cmd_tables(args: argparse.Namespace) -> int:
    settings = load_grid(args.grid).shared_settings()
    tests = args.summary.with_name("tests.csv")
    for path in tables.write_tables(args.summary, tests=tests, settings=settings):
        say(f"wrote {path}")
    return EXIT_OK


def cmd_figures(args: argparse.Namespace) -> int:
    from . import figures  # matplotlib: imported by the command that draws only

    if args.list:
        print("\n".join(figures.describe()))
        return EXIT_OK
    unknown = sorted(set(args.only or []) - set(figures.FIGURES))
    if unknown:
        raise ConfigError(
            f"figure {unknown[0]}: expected one of {', '.join(figures.FIGURES)}"
        )
    grid = load_grid(args.grid)
    for path in figures.write_figures(grid, args.summary, args.runs, only=args.only):
        say(f"wrote {path}")
    return EXIT_OK


def cmd_check_results(args: argparse.Namespace) -> int:
    wanted = expected.load_expected(args.expected)
    grid = load_grid(args.grid)
    good, _ = aggregate.good_runs(grid, args.runs, args.manifest)
    lines = expected.compare(
        aggregate.read_summary(args.summary), wanted, [run for run, _ in good]
    )
    print(expected.difference_table(lines))
    bad = [line for line in lines if not line.ok]
    if bad:
        say(
            f"check-results: {len(bad)} of {len(lines)} cells and runs differ from "
            f"{args.expected}; if the change is intended, `{PROG} update-expected` "
            "records it (commit it with a reason)"
        )
        return EXIT_FAILURE
    say(f"check-results: all {len(lines)} cells and runs match {args.expected}")
    return EXIT_OK


def _tolerance(text: str) -> tuple[str, float]:
    metric, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not sep or not metric or not number >= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected metric=number, such as test_accuracy=0.001"
        )
    return metric, number


def cmd_update_expected(args: argparse.Namespace) -> int:
    rows = aggregate.read_summary(args.summary)
    grid = load_grid(args.grid)
    good, stale = aggregate.good_runs(grid, args.runs, args.manifest)
    if stale:
        raise ConfigError(
            f"{len(stale)} runs are stale ({stale[0]}, ...): "
            f"`{PROG} reproduce` first, then update-expected"
        )
    path = expected.update_expected(
        rows, [run for run, _ in good], args.expected, dict(args.tolerance or [])
    )
    say(f"wrote {path} from {args.summary} and {len(good)} runs")
    return EXIT_OK


def cmd_paper(args: argparse.Namespace) -> int:
    say(paper.build(strict=args.strict, overfull_limit=args.overfull_limit))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    grid = load_grid(args.grid)
    found = provenance.states(grid.runs(args.runs), args.manifest)
    for state in found:
        why = f" ({', '.join(state.reasons)})" if state.reasons else ""
        print(f"{state.run.label}  {state.state}{why}")
    counts = {
        name: sum(s.state == name for s in found)
        for name in ("ok", "stale", "failed", "unfinished", "missing")
    }
    say(
        f"grid {grid.name}: {len(found)} runs: "
        + ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    )
    return EXIT_OK


def cmd_check_paper(args: argparse.Namespace) -> int:
    paper.check_macros()
    count = paper.check_checklist()
    problems = paper.check_citation()
    if problems:
        raise paper.PaperError(f"{paper.CITATION}: " + "; ".join(problems))
    say(
        f"paper macros defined, {count} checklist answers given, {paper.CITATION} valid"
    )
    return EXIT_OK


def cmd_verify_data(args: argparse.Namespace) -> int:
    grid = load_grid(args.grid)
    for name in sorted({run.config.data.name for run in grid.runs(args.runs)}):
        data.load(name, args.manifest)
        say(f"{name}: sha256 matches {args.manifest}")
    return EXIT_OK


def cmd_fetch_full(args: argparse.Namespace) -> int:
    say(data.fetch_full(manifest=args.manifest))
    return EXIT_OK


def _runs_files(grid: Grid, root: Path) -> list[Path]:
    return [
        run.run_dir / name
        for run in grid.runs(root)
        for name in (ENV_FILE, METRICS_FILE)
    ]


def cmd_reproduce(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    grid = load_grid(args.grid)
    steps = pipeline.Steps(args.runs)
    code = provenance.code_hash()
    ran: list[str] = []
    reused: list[str] = []

    say("== grid")
    for name in sorted({run.config.data.name for run in grid.runs(args.runs)}):
        data.load(name, args.manifest)
    found = provenance.states(grid.runs(args.runs), args.manifest)
    grid_ok = True
    if all(state.reusable for state in found):
        say(f"all {len(found)} runs finished with this config, code and data: reused")
        reused.append(f"grid ({len(found)} runs)")
    else:
        grid_ok = cmd_grid(args) == EXIT_OK
        ran.append("grid")

    def stage(
        name: str,
        handler: Callable[[argparse.Namespace], int],
        inputs: list[Path],
        options: dict[str, object],
        outputs: Callable[[], list[Path]],
    ) -> bool:
        say(f"== {name}")
        key = pipeline.fingerprint(inputs, {**options, "code": code})
        if steps.up_to_date(name, key):
            say(f"{name}: inputs unchanged, outputs as written: reused")
            reused.append(name)
            return True
        steps.forget(name)
        ok = handler(args) == EXIT_OK
        ran.append(name)
        if ok:
            steps.record(name, key, [path for path in outputs() if path.is_file()])
        return ok

    tests_csv = args.summary.with_name("tests.csv")
    ok = stage(
        "aggregate",
        cmd_aggregate,
        [args.grid, args.manifest, *_runs_files(grid, args.runs)],
        {"ci": args.ci, "bootstrap_seed": args.bootstrap_seed},
        lambda: [
            args.summary,
            tests_csv,
            aggregate.COMPUTE_JSON,
            aggregate.COMPUTE_MD,
        ],
    )
    say("== check-results")
    checked = ok and cmd_check_results(args) == EXIT_OK
    ran.append("check-results")
    if not (grid_ok and checked):
        failed = "grid" if not grid_ok else "check-results"
        say(
            f"reproduce: stopped after {failed} failed, before anything is published "
            "from these results (tables, README, figures and paper unchanged); "
            f"{time.perf_counter() - started:.1f} s"
        )
        return EXIT_FAILURE
    published = stage(
        "tables",
        cmd_tables,
        [args.summary, tests_csv, args.grid],
        {},
        lambda: [
            tables.TABLE_MD,
            tables.TABLE_TEX,
            tables.TESTS_TEX,
            tables.NUMBERS_TEX,
            tables.README,
        ],
    ) and stage(
        "figures",
        cmd_figures,
        [args.summary, args.grid, *_runs_files(grid, args.runs)],
        {"only": args.only},
        lambda: sorted(paper.PAPER_DIR.glob("figures/*")),
    )
    if not published:
        return EXIT_FAILURE
    say("== paper")
    engine = paper.tex_engine()
    inputs = [
        *paper.tex_sources(),
        *sorted(paper.PAPER_DIR.glob("generated/*")),
        *sorted(paper.PAPER_DIR.glob("*.bib")),
        *sorted(paper.PAPER_DIR.glob("figures/*.pdf")),
        paper.CHECKLIST,
    ]
    key = pipeline.fingerprint(
        inputs,
        {
            "engine": engine,
            "epoch": paper.source_date_epoch(),
            "strict": args.strict,
            "overfull": args.overfull_limit,
            "code": code,
        },
    )
    if engine is not None and steps.up_to_date("paper", key):
        say("paper: inputs unchanged, paper/ms.pdf as built: reused")
        reused.append("paper")
    else:
        steps.forget("paper")
        paper.check_checklist()
        say(paper.build(strict=args.strict, overfull_limit=args.overfull_limit))
        ran.append("paper" if engine else "paper (skipped: no TeX)")
        if engine is not None:
            steps.record("paper", key, [paper.MAIN_PDF])
    elapsed = time.perf_counter() - started
    say(
        f"reproduce: done in {elapsed:.1f} s; ran: {', '.join(ran) or 'nothing'}; "
        f"reused: {', '.join(reused) or 'nothing'}"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Experiments x seeds -> summary -> tables, figures -> checked "
        "results -> paper.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    paths = argparse.ArgumentParser(add_help=False)
    paths.add_argument(
        "--grid",
        type=Path,
        default=DEFAULT_GRID,
        help="grid file (default: %(default)s)",
    )
    paths.add_argument(
        "--runs",
        type=Path,
        default=RUNS_ROOT,
        help="run folders root (default: %(default)s)",
    )
    paths.add_argument(
        "--manifest", type=Path, default=data.MANIFEST, help="dataset checksums"
    )
    paths.add_argument(
        "--summary", type=Path, default=aggregate.SUMMARY, help="summary CSV"
    )
    paths.add_argument(
        "--expected", type=Path, default=expected.EXPECTED, help="expected results"
    )

    running = argparse.ArgumentParser(add_help=False)
    running.add_argument(
        "--jobs", type=positive_int, help="parallel runs (pool executor)"
    )
    running.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="pool (this machine), slurm or submitit-local (default: the grid file's)",
    )
    selecting = argparse.ArgumentParser(add_help=False)
    selecting.add_argument(
        "--method", type=_listed(parse_list), help="only these methods (a,b)"
    )
    selecting.add_argument(
        "--config", type=_listed(parse_list), help="only these configs (a,b)"
    )
    selecting.add_argument(
        "--seeds", type=_listed(parse_seeds), help="only these seeds (0,1 or 0-4)"
    )
    stats = argparse.ArgumentParser(add_help=False)
    stats.add_argument(
        "--ci",
        choices=("t", "bootstrap"),
        default="t",
        help="confidence interval: Student t, or a seeded bootstrap (n >= 10)",
    )
    stats.add_argument(
        "--bootstrap-seed", type=int, default=0, help="seed of the bootstrap"
    )
    drawing = argparse.ArgumentParser(add_help=False)
    drawing.add_argument(
        "--only", type=_listed(parse_list), help="only these figures (a,b)"
    )
    drawing.add_argument(
        "--list", action="store_true", help="list each figure and its script"
    )
    building = argparse.ArgumentParser(add_help=False)
    building.add_argument(
        "--strict",
        action="store_true",
        help="fail, instead of skipping, when no TeX engine is installed",
    )
    building.add_argument(
        "--overfull-limit",
        type=positive_float,
        default=paper.OVERFULL_LIMIT_PT,
        metavar="PT",
        help="fail on a box this many points past the margin (default: %(default)s)",
    )

    def add(
        name: str,
        handler: Callable[[argparse.Namespace], int],
        text: str,
        *parents: argparse.ArgumentParser,
    ) -> None:
        sub = commands.add_parser(
            name, help=text, description=text, parents=[paths, *parents]
        )
        sub.set_defaults(handler=handler)

    add(
        "reproduce",
        cmd_reproduce,
        "everything, in order, each step only if its inputs changed: grid (missing, "
        "failed or stale runs), aggregate, check-results, tables, figures, paper",
        running,
        stats,
        building,
    )
    # reproduce brings everything up to date: like `make`, it reruns only what changed.
    commands.choices["reproduce"].set_defaults(
        resume=True, method=None, config=None, seeds=None, only=None, list=False
    )
    add(
        "grid",
        cmd_grid,
        "run the grid's runs (each its own folder)",
        running,
        selecting,
    )
    commands.choices["grid"].add_argument(
        "--resume",
        action="store_true",
        help="run only missing, failed or changed runs; finished ones are kept",
    )
    add(
        "aggregate",
        cmd_aggregate,
        "summarize the runs into results/summary.csv and the compute report",
        stats,
    )
    add("compute-report", cmd_compute_report, "print the compute the grid's runs used")
    add(
        "tables",
        cmd_tables,
        "write the Markdown and LaTeX tables, the number macros and README's table",
    )
    add("figures", cmd_figures, "draw the paper's figures (PNG and PDF)", drawing)
    add(
        "check-results",
        cmd_check_results,
        "compare the summary and every run's metrics with results/expected.json",
    )
    add(
        "update-expected",
        cmd_update_expected,
        "record the summary and every run's metrics hash as results/expected.json "
        "(the only command that writes it)",
    )
    commands.choices["update-expected"].add_argument(
        "--tolerance",
        type=_tolerance,
        action="append",
        metavar="METRIC=NUMBER",
        help="a tolerance instead of the one derived from the spread (repeatable)",
    )
    add(
        "status",
        cmd_status,
        "list every run of the grid: ok, stale (and why), failed, unfinished, missing",
    )
    add("paper", cmd_paper, "build paper/ms.pdf with latexmk or tectonic", building)
    add(
        "check-paper",
        cmd_check_paper,
        "paper macros, checklist answers and CITATION.cff",
    )
    add(
        "verify-data",
        cmd_verify_data,
        "check each dataset against data/MANIFEST.sha256",
    )
    add(
        "fetch-full",
        cmd_fetch_full,
        "download the full-size data set (never part of reproduce)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return run_command(lambda: handler(args))
