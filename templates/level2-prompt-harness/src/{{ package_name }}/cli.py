"""Command line: `eval` runs suites, `compare` diffs two runs, `cache clear` empties
the cache.

Exit codes: 0 every case passed; 1 a case failed; 3 no failures but the API errored on
some case; 2 the command line, harness.yaml or a suite is wrong (nothing was called).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path

from .cache import ResponseCache
from .compare import compare_runs, format_comparison
from .config import DEFAULT_CONFIG, MODES, ConfigError, display_path, load_config
from .reports import Progress, load_json, summary_text, write_reports
from .results import exit_code
from .runner import Runner, RunOptions
from .suite import SuiteError, discover_suites, load_suites

PROG = (__package__ or "harness").replace("_", "-")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value:g}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Test prompts against chat-completion APIs."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "eval", help="run test suites (all of suites/ by default)"
    )
    run.add_argument(
        "suites",
        nargs="*",
        metavar="SUITE",
        help="suite files (default: every suite in suites/)",
    )
    run.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"config file (default: {DEFAULT_CONFIG})",
    )
    run.add_argument(
        "--provider",
        action="append",
        metavar="NAME",
        help="run these provider profiles instead of each suite's own (repeatable)",
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
        help="same as --mode record",
    )
    modes.add_argument(
        "--live",
        dest="mode",
        action="store_const",
        const="live",
        help="same as --mode live",
    )
    run.add_argument(
        "--concurrency", type=_positive_int, help="most API calls in flight at once"
    )
    run.add_argument(
        "--repeat",
        type=_positive_int,
        default=1,
        help="run each case N times; reports pass rates",
    )
    run.add_argument(
        "--timeout", type=_positive_float, help="seconds allowed for each API call"
    )
    run.add_argument(
        "--output", metavar="DIR", help="where to write the reports (default: reports/)"
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the response cache",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress line")

    compare = commands.add_parser(
        "compare", help="list what regressed and improved between two runs"
    )
    compare.add_argument("old", type=Path, help="results.json of the earlier run")
    compare.add_argument("new", type=Path, help="results.json of the later run")

    cache = commands.add_parser("cache", help="manage the response cache")
    cache.add_argument(
        "action", choices=["clear"], help="clear: delete every cached response"
    )
    cache.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"config file (default: {DEFAULT_CONFIG})",
    )
    return parser


def _eval(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    paths = [Path(suite) for suite in args.suites] or discover_suites(config)
    suites = load_suites(paths, config, args.provider)
    options = RunOptions.from_config(
        config,
        mode=args.mode,
        concurrency=args.concurrency,
        repeat=args.repeat,
        timeout_s=args.timeout,
        use_cache=not args.no_cache,
    )
    runner = Runner(config, options)
    total = options.repeat * sum(
        len(s.cases) * len(s.prompts) * len(s.providers) for s in suites
    )
    progress = Progress(total, enabled=False if args.no_progress else None)
    started = datetime.now().astimezone()
    clock = time.perf_counter()
    try:
        results = asyncio.run(runner.run(suites, progress.update))
    finally:
        progress.close()
    seconds = time.perf_counter() - clock
    records = [result.to_dict() for result in results]
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "mode": options.mode,
        "repeat": options.repeat,
        "concurrency": options.concurrency,
        "suites": [display_path(suite.path) for suite in suites],
        "cache_hits": runner.cache_hits,
    }
    output = Path(args.output) if args.output else config.output_dir
    written = write_reports(records, meta, output)
    print(summary_text(records))
    print(f"{seconds:.2f} s, mode {options.mode}, {runner.cache_hits} cache hits")
    print("Reports: " + ", ".join(display_path(path) for path in written))
    if options.mode == "record":
        print(f"Recordings saved in {display_path(config.recordings_dir)}")
    return exit_code(records)


def _compare(args: argparse.Namespace) -> int:
    documents = []
    for path in (args.old, args.new):
        try:
            documents.append(load_json(path)["results"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path}: not a results.json written by `eval` ({exc})"
            ) from None
    comparison = compare_runs(*documents)
    print(format_comparison(comparison))
    return 1 if comparison.regressed else 0


def _cache(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    removed = ResponseCache(config.cache_dir).clear()
    print(f"Removed {removed} cached responses from {display_path(config.cache_dir)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the problem
        return int(exc.code or 0)
    handlers = {"eval": _eval, "compare": _compare, "cache": _cache}
    try:
        return handlers[args.command](args)
    except SuiteError as exc:
        count = len(exc.problems)
        print(
            f"error: {count} problem{'s' if count > 1 else ''} found, nothing was run:",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
