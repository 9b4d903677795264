"""Command line: `eval` runs suites (the harness's own, or promptfoo configs as they
are), `compare` diffs two runs, `cache clear` empties the cache.

Exit codes: 0 every case passed; 1 a case failed (or `compare` found a regression);
3 no failures but some case errored (the API failed); 2 the command line,
harness.yaml or a suite is wrong (nothing was called); 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from .cache import ResponseCache
from .commandline import PROG, positive_float, positive_int, run_command
from .compare import compare_runs, format_comparison
from .config import DEFAULT_CONFIG, MODES, load_config
from .configfile import display_path
from .history import (
    check_run_name,
    list_runs,
    new_run_dir,
    previous_run,
    publish_latest,
    resolve_results,
)
from .progress import ProgressBar
from .reports import load_results, summary_text, write_reports
from .results import PASSED, CaseResult, cell_key, exit_code
from .runner import Runner, RunOptions
from .suite import discover_suites, load_suites


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"config file (default: {DEFAULT_CONFIG})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Test prompts against chat-completion APIs."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "eval", help="run test suites (all of suites/ by default)"
    )
    run.set_defaults(handler=_eval)
    run.add_argument(
        "suites",
        nargs="*",
        metavar="SUITE",
        help="suite files, or promptfoo configs (default: every suite in suites/)",
    )
    _config_option(run)
    run.add_argument(
        "--provider",
        action="append",
        metavar="NAME",
        help="run these provider profiles instead of each suite's own (repeatable)",
    )
    run.add_argument(
        "--judge",
        metavar="NAME",
        help="grade every llm-judge assertion with this profile",
    )
    run.add_argument(
        "--filter",
        action="append",
        metavar="PATTERN",
        help="run only cases whose id contains PATTERN or matches it as a glob"
        " (suite/id works too; repeatable)",
    )
    modes = run.add_mutually_exclusive_group()
    modes.add_argument(
        "--mode",
        choices=MODES,
        help="replay: recorded responses only (offline); live: call the endpoints;"
        " record: call them and save the responses to recordings/"
        " (default: harness.yaml's mode)",
    )
    modes.add_argument(
        "--record",
        dest="mode",
        action="store_const",
        const="record",
        help="--mode record",
    )
    modes.add_argument(
        "--live", dest="mode", action="store_const", const="live", help="--mode live"
    )
    run.add_argument(
        "--concurrency", type=positive_int, help="most API calls in flight at once"
    )
    run.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        help="run each case N times; reports pass rates",
    )
    run.add_argument(
        "--timeout", type=positive_float, help="seconds allowed for each API call"
    )
    run.add_argument(
        "--output", metavar="DIR", help="where to write the reports (default: reports/)"
    )
    run.add_argument(
        "--name",
        type=check_run_name_arg,
        help="name this run (default: the date and time)",
    )
    run.add_argument(
        "--baseline",
        metavar="RUN",
        help="the run whose results the HTML report compares with"
        " (default: the previous run)",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the response cache",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    compare = commands.add_parser(
        "compare", help="list what regressed and improved between two runs"
    )
    compare.set_defaults(handler=_compare)
    compare.add_argument("old", help="a run name, a run folder or a results.json")
    compare.add_argument(
        "new", nargs="?", default="latest", help="the later run (default: the latest)"
    )
    _config_option(compare)
    compare.add_argument(
        "--output", metavar="DIR", help="where the runs are (default: reports/)"
    )

    runs = commands.add_parser("runs", help="list the runs kept in reports/runs/")
    runs.set_defaults(handler=_runs)
    _config_option(runs)
    runs.add_argument(
        "--output", metavar="DIR", help="where the runs are (default: reports/)"
    )

    cache = commands.add_parser("cache", help="manage the response cache")
    cache.set_defaults(handler=_cache)
    cache.add_argument(
        "action", choices=["clear"], help="clear: delete every cached response"
    )
    _config_option(cache)
    return parser


def check_run_name_arg(text: str) -> str:
    try:
        return check_run_name(text)
    except Exception as exc:
        raise argparse.ArgumentTypeError(
            str(exc).removeprefix(f"--name {text!r}: ")
        ) from None


def _eval(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    paths = [Path(suite) for suite in args.suites] or discover_suites(config)
    suites = load_suites(
        paths, config, args.provider, judge_override=args.judge, case_filter=args.filter
    )
    for suite in suites:
        for note in suite.notes:  # what a promptfoo config has that does not run here
            print(f"{PROG}: note: {note}", file=sys.stderr)
    options = RunOptions.from_config(
        config,
        mode=args.mode,
        concurrency=args.concurrency,
        repeat=args.repeat,
        timeout_s=args.timeout,
        use_cache=not args.no_cache,
        # a filtered run leaves the other cases' recordings alone
        prune_recordings=not args.filter,
    )
    runner = Runner(config, options)
    total = options.repeat * sum(
        len(s.cases) * len(s.prompts) * len(s.providers) for s in suites
    )
    output = Path(args.output) if args.output else config.output_dir
    baseline_path = resolve_results(args.baseline, output) if args.baseline else None
    started = datetime.now().astimezone()
    clock = time.perf_counter()
    with ProgressBar(total, "eval", enabled=False if args.no_progress else None) as bar:
        passed = 0

        def tick(result: CaseResult) -> None:
            nonlocal passed
            passed += result.outcome == PASSED
            bar.update(passed=passed)

        results = asyncio.run(runner.run(suites, tick))
    seconds = time.perf_counter() - clock
    records = [result.to_dict() for result in results]
    run_dir = new_run_dir(output, args.name, started)
    if baseline_path is None:
        previous = previous_run(
            output, run_dir, {cell_key(record) for record in records}
        )
        baseline_path = previous / "results.json" if previous else None
    baseline = load_results(baseline_path)["results"] if baseline_path else None
    meta = {
        "run": run_dir.name,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "mode": options.mode,
        "repeat": options.repeat,
        "concurrency": options.concurrency,
        "suites": [display_path(suite.path) for suite in suites],
        "descriptions": {suite.name: suite.description for suite in suites},
        "filter": args.filter or [],
        "cache_hits": runner.cache_hits,
        "baseline": display_path(baseline_path) if baseline_path else None,
    }
    baseline_name = baseline_path.parent.name if baseline_path else ""
    written = write_reports(records, meta, run_dir, baseline, baseline_name)
    publish_latest(run_dir, output, written)
    print(summary_text(records))
    print(f"{seconds:.2f} s, mode {options.mode}, {runner.cache_hits} cache hits")
    print(
        f"Run {run_dir.name}: {display_path(run_dir)}"
        f" (latest copied to {display_path(output)})"
    )
    if options.mode == "record":
        dropped = (
            f", {runner.recordings_dropped} unused dropped"
            if options.prune_recordings
            else ""
        )
        print(f"Recordings saved in {display_path(config.recordings_dir)}{dropped}")
    return exit_code(records)


def _output_dir(args: argparse.Namespace) -> Path:
    if args.output:
        return Path(args.output)
    config_path = Path(args.config)
    if config_path.is_file():
        return load_config(config_path).output_dir
    return Path("reports")


def _compare(args: argparse.Namespace) -> int:
    output = _output_dir(args)
    old_path = resolve_results(args.old, output)
    new_path = resolve_results(args.new, output)
    comparison = compare_runs(
        load_results(old_path)["results"], load_results(new_path)["results"]
    )
    print(f"{display_path(old_path)} -> {display_path(new_path)}")
    print(format_comparison(comparison))
    return 1 if comparison.regressed else 0


def _runs(args: argparse.Namespace) -> int:
    output = _output_dir(args)
    kept = list_runs(output)
    if not kept:
        print(f"No runs kept in {display_path(output / 'runs')} yet: run `eval` first")
    for run_dir in kept:
        summary = load_results(run_dir / "results.json").get("summary", {})
        counts = ", ".join(
            f"{summary.get(k, 0)} {k}" for k in ("passed", "failed", "errored")
        )
        print(f"{run_dir.name}  {counts}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    removed = ResponseCache(config.cache_dir).clear()
    print(f"Removed {removed} cached responses from {display_path(config.cache_dir)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: int(args.handler(args)))
