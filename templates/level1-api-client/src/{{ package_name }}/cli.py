"""Command line: `transcribe` audio files, or run the local `devserver`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

import httpx

from ._batch import BatchItem, transcribe_many
from ._client import AsyncClient
from ._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    PROVIDER_ENV,
    PROVIDERS,
)
from ._errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    PermissionDeniedError,
    RateLimitError,
)
from .devserver import DEFAULT_ACCEPTED_KEYS, DEFAULT_HOST, DEFAULT_PORT, DevServer

# Exit codes, one per cause a script may want to tell apart (the README lists them).
EXIT_OK = 0
EXIT_FAILED = 1  # the service refused or failed in another way
EXIT_USAGE = 2  # bad arguments or configuration (argparse exits 2 as well)
EXIT_NO_FILE = 3  # an input file is missing or unreadable
EXIT_UNREACHABLE = 4  # no connection to the service, or no answer in time
EXIT_AUTH = 5  # the API key was refused
EXIT_RATE_LIMITED = 6  # still rate limited after the retries
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

log = logging.getLogger(__package__)


def exit_code_for(error: Exception) -> int:
    if isinstance(error, OSError):
        return EXIT_NO_FILE
    if isinstance(error, APIConnectionError):
        return EXIT_UNREACHABLE
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return EXIT_AUTH
    if isinstance(error, RateLimitError):
        return EXIT_RATE_LIMITED
    return EXIT_FAILED


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]) if sys.argv[0] else None,
        description="Speech-to-text client, and a local server speaking its protocol.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    transcribe = commands.add_parser(
        "transcribe",
        help="transcribe audio files",
        description=f"Transcribe audio files. The API key comes from {API_KEY_ENV}.",
    )
    transcribe.add_argument(
        "files", nargs="+", metavar="FILE", help="audio files (WAV)"
    )
    transcribe.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per file (JSON Lines)",
    )
    transcribe.add_argument(
        "--concurrency",
        type=_positive_int,
        default=4,
        metavar="N",
        help="files in flight at once (default: 4)",
    )
    transcribe.add_argument(
        "--base-url", help=f"service URL (default: {BASE_URL_ENV} or built in)"
    )
    transcribe.add_argument(
        "--provider",
        choices=PROVIDERS,
        help=f"wire format (default: {PROVIDER_ENV} or built in)",
    )
    transcribe.add_argument(
        "--model", help="model name (default: the provider's usual one)"
    )
    transcribe.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT.read,
        metavar="SECONDS",
        help=f"how long to wait for an answer (default: {DEFAULT_TIMEOUT.read:g})",
    )
    transcribe.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=DEFAULT_MAX_RETRIES,
        metavar="N",
        help=f"retries of a failed request (default: {DEFAULT_MAX_RETRIES})",
    )
    transcribe.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log requests and retries on stderr",
    )

    devserver = commands.add_parser(
        "devserver",
        help="run the local development server",
        description="Serve both wire formats on loopback, for offline work and tests.",
    )
    devserver.add_argument(
        "--host", default=DEFAULT_HOST, help=f"(default: {DEFAULT_HOST})"
    )
    devserver.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"(default: {DEFAULT_PORT})"
    )
    devserver.add_argument(
        "--accept-key",
        action="append",
        metavar="KEY",
        help="an API key to accept; repeatable (default: 'dev')",
    )
    return parser


@contextmanager
def _logging_to(stream: TextIO, level: int) -> Iterator[None]:
    """Send this package's and httpx's log records to `stream` while the block runs."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    loggers = [log, logging.getLogger("httpx")]
    saved = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old_level in saved:
            logger.removeHandler(handler)
            logger.setLevel(old_level)


class ProgressBar:
    """A one-line bar on a terminal, redrawn in place."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, done: int, total: int) -> None:
        filled = self.WIDTH * done // max(total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        end = "\n" if done == total else ""
        self.stream.write(f"\r[{bar}] {done}/{total}{end}")
        self.stream.flush()


def _print_item(item: BatchItem, as_json: bool, with_header: bool) -> None:
    if item.error is not None:
        print(f"error: {item.file}: {item.error}", file=sys.stderr)
        if as_json:
            error = {
                "type": type(item.error).__name__,
                "message": str(item.error),
                "status_code": getattr(item.error, "status_code", None),
                "request_id": getattr(item.error, "request_id", None),
            }
            print(json.dumps({"file": item.file, "error": error}))
        return
    transcription = item.transcription
    assert transcription is not None  # an item holds a transcription or an error
    if as_json:
        print(
            json.dumps(
                {"file": item.file, **transcription.model_dump()}, ensure_ascii=False
            )
        )
        return
    if with_header:
        print(f"==> {item.file} <==")
    print(transcription.text)
    for segment in transcription.segments:
        end = "?" if segment.end is None else f"{segment.end:.2f}"
        print(f"  {segment.start:6.2f} - {end:>6}  {segment.text}")


def _transcribe(args: argparse.Namespace) -> int:
    missing = [file for file in args.files if not os.path.isfile(file)]
    for file in missing:
        print(f"error: no such file: {file}", file=sys.stderr)
    if missing:
        return EXIT_NO_FILE
    try:
        client = AsyncClient(
            base_url=args.base_url,
            provider=args.provider,
            model=args.model,
            timeout=httpx.Timeout(
                args.timeout, connect=min(DEFAULT_TIMEOUT.connect, args.timeout)
            ),
            max_retries=args.max_retries,
        )
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    log.debug("using %r", client)
    progress = (
        ProgressBar(sys.stderr) if sys.stderr.isatty() and not args.verbose else None
    )

    async def run() -> list[BatchItem]:
        async with client:
            return await transcribe_many(
                client, args.files, concurrency=args.concurrency, on_progress=progress
            )

    items = asyncio.run(run())
    for item in items:
        _print_item(item, as_json=args.json, with_header=len(items) > 1)
    # The first failure decides the exit code: one bad file is never a success.
    return next((exit_code_for(item.error) for item in items if item.error), EXIT_OK)


def _devserver(args: argparse.Namespace) -> int:
    keys = args.accept_key or list(DEFAULT_ACCEPTED_KEYS)
    try:
        server = DevServer(args.host, args.port, keys)
    except OSError as error:
        print(
            f"error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr
        )
        return EXIT_FAILED
    print(
        f"dev server on {server.url}, accepting API keys: {', '.join(keys)} "
        "(Ctrl-C stops it)",
        file=sys.stderr,
        flush=True,
    )
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING
    if args.command == "devserver":
        level = logging.INFO  # one line per request
    with _logging_to(sys.stderr, level):
        if args.command == "devserver":
            return _devserver(args)
        try:
            return _transcribe(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
