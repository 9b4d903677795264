"""Command line: `eval` runs suites (the harness's own, or promptfoo configs as they
are), `compare` diffs two runs, `runs` lists them, `cache clear` empties the cache.

Exit codes, as in errors.py: 0 every case passed; 1 a case failed (or `compare` found a
regression); 2 the command line, harness.yaml or a suite is wrong (nothing was called);
3 nothing failed but some case got no verdict (the API failed it); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from .commandline import (
    PROG,
    output_options,
    positive_float,
    positive_int,
    progress_enabled,
    run_cli,
    terminal_safe,
)
from .config import DEFAULT_CONFIG, MODES, load_config
from .configfile import display_path
from .errors import EXIT_FAILURE, EXIT_OK, ConfigError, ServiceError
from .history import check_run_name, list_runs, resolve_results
from .results import ERRORED, FAILED

log = logging.getLogger(__name__)

# Enough runs of a case for a pass rate to two decimals; a mistyped 10000000000 would
# otherwise hold the machine while the runs are laid out.
MAX_REPEAT = 1000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Test prompts against chat-completion APIs."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_eval(commands)
    _add_compare(commands)
    _add_runs(commands)
    _add_cache(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"config file (default: {DEFAULT_CONFIG})",
    )


def _runs_folder_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", metavar="DIR", help="where the runs are (default: reports/)"
    )


def _add_eval(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "eval",
        help="run test suites (all of suites/ by default)",
        parents=[output_options(progress=True)],
    )
    run.set_defaults(handler=cmd_eval)
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
        type=repeat_count,
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


def _add_compare(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    compare = commands.add_parser(
        "compare",
        help="list what regressed and improved between two runs",
        parents=[output_options(progress=False)],
    )
    compare.set_defaults(handler=cmd_compare)
    compare.add_argument("old", help="a run name, a run folder or a results.json")
    compare.add_argument(
        "new", nargs="?", default="latest", help="the later run (default: the latest)"
    )
    _config_option(compare)
    _runs_folder_option(compare)


def _add_runs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    runs = commands.add_parser(
        "runs",
        help="list the runs kept in reports/runs/",
        parents=[output_options(progress=False)],
    )
    runs.set_defaults(handler=cmd_runs)
    _config_option(runs)
    _runs_folder_option(runs)


def _add_cache(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cache = commands.add_parser(
        "cache",
        help="manage the response cache",
        parents=[output_options(progress=False)],
    )
    cache.set_defaults(handler=cmd_cache)
    cache.add_argument(
        "action", choices=["clear"], help="clear: delete every cached response"
    )
    _config_option(cache)


def check_run_name_arg(text: str) -> str:
    try:
        return check_run_name(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(
            str(exc).removeprefix(f"--name {text!r}: ")
        ) from None


def repeat_count(text: str) -> int:
    """An argparse type: how many times to run each case, 1 to MAX_REPEAT."""
    value = positive_int(text)
    if value > MAX_REPEAT:
        raise argparse.ArgumentTypeError(f"must be {MAX_REPEAT} or less, got {value}")
    return value


def cmd_eval(args: argparse.Namespace) -> int:
    # Imported here: `compare`, `runs` and --help need none of the running machinery.
    from .evaluate import EvalRequest, evaluate
    from .reports import summary_text

    config = load_config(args.config)
    request = EvalRequest(
        suites=tuple(Path(suite) for suite in args.suites),
        providers=tuple(args.provider or ()),
        judge=args.judge,
        case_filter=tuple(args.filter or ()),
        mode=args.mode,
        concurrency=args.concurrency,
        repeat=args.repeat,
        timeout_s=args.timeout,
        use_cache=not args.no_cache,
        output_dir=Path(args.output) if args.output else None,
        name=args.name,
        baseline=args.baseline,
    )
    done = evaluate(config, request, progress=progress_enabled(args))
    options = done.options
    # Outputs and errors quoted here are the model's and the server's own words.
    print(terminal_safe(summary_text(done.records)))
    print(f"{done.seconds:.2f} s, mode {options.mode}, {done.cache_hits} cache hits")
    print(
        f"Run {done.run_dir.name}: {display_path(done.run_dir)}"
        f" (latest copied to {display_path(done.output_dir)})"
    )
    if options.mode == "record":
        dropped = (
            f", {done.recordings_dropped} unused dropped"
            if options.prune_recordings
            else ""
        )
        print(f"Recordings saved in {display_path(config.recordings_dir)}{dropped}")
    outcomes = [record["outcome"] for record in done.records]
    if FAILED in outcomes:
        return EXIT_FAILURE
    if ERRORED in outcomes:
        raise ServiceError(
            f"{outcomes.count(ERRORED)} of {len(outcomes)} cases got no verdict:"
            " the provider failed them (their errors are in the report above)"
        )
    return EXIT_OK


def _output_dir(args: argparse.Namespace) -> Path:
    if args.output:
        return Path(args.output)
    config_path = Path(args.config)
    if config_path.is_file():
        return load_config(config_path).output_dir
    return Path("reports")


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs, format_comparison
    from .reports import load_results

    output = _output_dir(args)
    old_path = resolve_results(args.old, output)
    new_path = resolve_results(args.new, output)
    comparison = compare_runs(
        load_results(old_path)["results"], load_results(new_path)["results"]
    )
    print(f"{display_path(old_path)} -> {display_path(new_path)}")
    print(terminal_safe(format_comparison(comparison)))
    return EXIT_FAILURE if comparison.regressed else EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from .reports import load_results

    output = _output_dir(args)
    kept = list_runs(output)
    if not kept:
        shown = display_path(output / "runs")
        log.info(f"No runs kept in {shown} yet: run `eval` first")
    damaged = 0
    for run_dir in kept:
        path = run_dir / "results.json"
        try:
            summary = load_results(path).get("summary", {})
            if not isinstance(summary, dict):
                raise ConfigError(f"{path}: its 'summary' is not a mapping")
        except ConfigError as exc:  # one damaged run hides none of the others
            log.warning(str(exc))
            damaged += 1
            print(f"{run_dir.name}  damaged")
            continue
        counts = ", ".join(
            f"{summary.get(k, 0)} {k}" for k in ("passed", "failed", "errored")
        )
        print(f"{run_dir.name}  {counts}")
    return EXIT_FAILURE if damaged else EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    from .cache import ResponseCache

    config = load_config(args.config)
    removed = ResponseCache(config.cache_dir).clear()
    print(f"Removed {removed} cached responses from {display_path(config.cache_dir)}")
    return EXIT_OK
