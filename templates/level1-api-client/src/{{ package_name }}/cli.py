"""Command line: `transcribe` audio files, or run the local `devserver`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

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
    Settings,
    resolve_settings,
)
from ._errors import (
    APIConnectionError,
    AudioInputError,
    ConfigurationError,
    MissingAPIKeyError,
    redact,
)
from ._retry import RetryPolicy
from .atomic import remove_stale_temporaries, write_json_atomic
from .commandline import (
    PROG,
    non_negative_int,
    positive_float,
    positive_int,
    run_command,
)
from .devserver import DEFAULT_ACCEPTED_KEYS, DEFAULT_HOST, DEFAULT_PORT, DevServer
from .errors import EXIT_FAILURE, EXIT_OK, Error
from .progress import ProgressBar

log = logging.getLogger(__package__)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Speech-to-text client, and a local server speaking its protocol.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    transcribe = commands.add_parser(
        "transcribe",
        help="transcribe audio files",
        description=f"Transcribe audio files. The API key comes from {API_KEY_ENV}.",
    )
    transcribe.set_defaults(handler=_transcribe)
    transcribe.add_argument(
        "files", nargs="+", metavar="FILE", help="audio files (WAV, MP3, FLAC, ...)"
    )
    transcribe.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per file (JSON Lines)",
    )
    transcribe.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="also write each transcript to DIR/<file name>.json",
    )
    transcribe.add_argument(
        "--concurrency",
        type=positive_int,
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
        "--language",
        metavar="CODE",
        help="the audio's language, ISO-639-1 (en, de, ...; openai format only)",
    )
    transcribe.add_argument(
        "--prompt",
        help="words and spellings to expect (openai format only)",
    )
    transcribe.add_argument(
        "--temperature",
        type=unit_interval,
        metavar="T",
        help="sampling temperature, 0 to 1 (openai format only)",
    )
    transcribe.add_argument(
        "--wait-for-model",
        action="store_true",
        help="have the service hold requests while the model loads, instead of "
        "answering 503 (huggingface format only)",
    )
    transcribe.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT.read,
        metavar="SECONDS",
        help=f"how long to wait for an answer (default: {DEFAULT_TIMEOUT.read:g})",
    )
    transcribe.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=DEFAULT_MAX_RETRIES,
        metavar="N",
        help=f"retries of a failed request (default: {DEFAULT_MAX_RETRIES})",
    )
    transcribe.add_argument(
        "--max-retry-after",
        type=positive_float,
        default=RetryPolicy.max_retry_after,
        metavar="SECONDS",
        help="the longest Retry-After to wait for; a server asking for longer gets "
        f"an error at once (default: {RetryPolicy.max_retry_after:g})",
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
    devserver.set_defaults(handler=_devserver)
    devserver.add_argument(
        "--host", default=DEFAULT_HOST, help=f"(default: {DEFAULT_HOST})"
    )
    devserver.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"0 picks a free one (default: {DEFAULT_PORT})",
    )
    devserver.add_argument(
        "--accept-key",
        action="append",
        metavar="KEY",
        help="an API key to accept; repeatable (default: 'dev')",
    )
    devserver.add_argument(
        "--model-loading",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="answer huggingface requests with 503 'model is loading' for this long "
        "after start, as a cold hosted model does (default: 0)",
    )
    devserver.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="write the server's log here, not to stderr (appends)",
    )
    return parser


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535."""
    value = non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be 65535 or less, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more: {text}")
    return value


def unit_interval(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


class _Redact(logging.Filter):
    """Blanks the API key in every record, whichever library logged it."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secret)
        record.args = None
        return True


@contextmanager
def _logging_to(stream: TextIO, level: int, secret: str = "") -> Iterator[None]:
    """Send this package's and httpx's log records to `stream` while the block runs."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Redact(secret))
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


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return resolve_settings(None, args.base_url, args.provider)
    except MissingAPIKeyError:
        raise MissingAPIKeyError(
            f"no API key: set the {API_KEY_ENV} environment variable "
            f"(the dev server accepts {DEFAULT_ACCEPTED_KEYS[0]!r})"
        ) from None


def _output_paths(files: Sequence[str], folder: Path | None) -> dict[str, Path]:
    """Where each transcript goes; two inputs with one file name are refused."""
    if folder is None:
        return {}
    paths: dict[str, Path] = {}
    seen: dict[Path, str] = {}
    for file in files:
        path = folder / f"{Path(file).name}.json"
        if path in seen and seen[path] != file:
            raise ConfigurationError(
                f"{seen[path]} and {file} would both be written to {path}: "
                "transcribe them in separate runs"
            )
        seen[path], paths[file] = file, path
    return paths


def _item_record(item: BatchItem) -> dict[str, Any]:
    if item.transcription is not None:
        transcription = item.transcription
        return {
            "file": item.file,
            **transcription.model_dump(),
            "request_id": transcription.request_id,
        }
    error = item.error
    return {
        "file": item.file,
        "error": {
            "type": type(error).__name__,
            "message": str(error),
            "status_code": getattr(error, "status_code", None),
            "request_id": getattr(error, "request_id", None),
        },
    }


def _print_item(item: BatchItem, as_json: bool, with_header: bool, hint: str) -> None:
    if item.error is not None:
        more = hint if isinstance(item.error, APIConnectionError) else ""
        message = str(item.error) or type(item.error).__name__
        print(f"{PROG}: error: {item.file}: {message}{more}", file=sys.stderr)
        if as_json:
            print(json.dumps(_item_record(item), ensure_ascii=False))
        return
    transcription = item.transcription
    assert transcription is not None  # an item holds a transcription or an error
    if as_json:
        print(json.dumps(_item_record(item), ensure_ascii=False))
        return
    if with_header:
        print(f"==> {item.file} <==")
    print(transcription.text)
    for segment in transcription.segments:
        end = "?" if segment.end is None else f"{segment.end:.2f}"
        print(f"  {segment.start:6.2f} - {end:>6}  {segment.text}")


def _devserver_hint(base_url: str) -> str:
    """What to do when the base URL, on this machine, does not answer."""
    url = urlsplit(base_url)
    if url.hostname not in LOOPBACK_HOSTS:
        return ""
    port = url.port or (443 if url.scheme == "https" else 80)
    flag = "" if port == DEFAULT_PORT else f" --port {port}"
    return f" (is the dev server running? start it with `{PROG} devserver{flag}`)"


def _exit_code(error: Exception) -> int:
    return error.exit_code if isinstance(error, Error) else EXIT_FAILURE


def _transcribe(args: argparse.Namespace) -> int:
    missing = [file for file in args.files if not os.path.isfile(file)]
    if missing:
        raise AudioInputError(f"no such file: {', '.join(missing)}")
    outputs = _output_paths(args.files, args.output_dir)
    settings = _settings(args)
    openai_only = {
        "--language": args.language,
        "--prompt": args.prompt,
        "--temperature": args.temperature,
    }
    given = [flag for flag, value in openai_only.items() if value is not None]
    if settings.provider == "huggingface" and given:
        raise ConfigurationError(
            f"{', '.join(given)}: the openai wire format only; the huggingface "
            "format sends the audio bytes alone"
        )
    if settings.provider != "huggingface" and args.wait_for_model:
        raise ConfigurationError(
            "--wait-for-model needs the huggingface wire format: OpenAI has no "
            "models to load"
        )
    if args.output_dir is not None:
        remove_stale_temporaries(args.output_dir)  # what a killed run left
    client = AsyncClient(
        api_key=settings.api_key,
        base_url=settings.base_url,
        provider=settings.provider,
        model=args.model,
        timeout=httpx.Timeout(
            args.timeout, connect=min(DEFAULT_TIMEOUT.connect or 5.0, args.timeout)
        ),
        max_retries=args.max_retries,
        retry_policy=RetryPolicy(max_retry_after=args.max_retry_after),
        wait_for_model=args.wait_for_model,
    )
    level = logging.DEBUG if args.verbose else logging.WARNING
    with _logging_to(sys.stderr, level, settings.api_key):
        log.debug("using %r", client)
        with ProgressBar(
            len(args.files), "transcribe", enabled=False if args.verbose else None
        ) as bar:

            async def run() -> list[BatchItem]:
                async with client:
                    return await transcribe_many(
                        client,
                        args.files,
                        concurrency=args.concurrency,
                        language=args.language,
                        prompt=args.prompt,
                        temperature=args.temperature,
                        on_progress=lambda done, _: bar.update(done - bar.count),
                    )

            items = asyncio.run(run())
    hint = _devserver_hint(settings.base_url)
    for item in items:
        _print_item(item, as_json=args.json, with_header=len(items) > 1, hint=hint)
        if item.transcription is not None and item.file in outputs:
            write_json_atomic(outputs[item.file], _item_record(item))
    # The first failure decides the exit code: one bad file is never a success.
    return next((_exit_code(item.error) for item in items if item.error), EXIT_OK)


def _devserver(args: argparse.Namespace) -> int:
    keys = args.accept_key or list(DEFAULT_ACCEPTED_KEYS)
    with contextlib.ExitStack() as stack:
        if args.log_file is None:
            stream: TextIO = sys.stderr
        else:
            try:
                stream = stack.enter_context(
                    open(args.log_file, "a", encoding="utf-8", buffering=1)
                )
            except OSError as error:
                raise ConfigurationError(
                    f"cannot write the log file {args.log_file}: {error.strerror}"
                ) from None
        try:
            server = DevServer(
                args.host, args.port, keys, model_loading=args.model_loading
            )
        except OSError as error:
            raise Error(
                f"cannot listen on {args.host}:{args.port}: {error.strerror or error}"
            ) from None
        print(
            f"dev server on {server.url}, accepting API keys: {', '.join(keys)} "
            "(Ctrl-C stops it)",
            file=stream,
            flush=True,
        )
        # One line per request, to its own stream: never into another command's output.
        stack.enter_context(_logging_to(stream, logging.INFO))
        with server, contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.handler(args))
