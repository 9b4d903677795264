"""Command line: `transcribe` audio files, or run the local `devserver`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx

from ._async_client import AsyncClient
from ._batch import BatchItem, transcribe_many
from ._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_TIMEOUT,
    PROVIDER_ENV,
    PROVIDERS,
    RESPONSE_FORMATS,
    Settings,
    resolve_settings,
)
from ._errors import (
    APIConnectionError,
    AudioInputError,
    ConfigurationError,
    MissingAPIKeyError,
)
from .atomic import (
    make_folder,
    remove_stale_temporaries,
    write_json_atomic,
    write_text_atomic,
)
from .commandline import (
    LOGGER_NAME,
    PROG,
    non_negative_int,
    output_options,
    positive_float,
    positive_int,
    progress_enabled,
    run_cli,
)
from .devserver import DEFAULT_ACCEPTED_KEYS, DEFAULT_HOST, DEFAULT_PORT, DevServer
from .errors import EXIT_FAILURE, EXIT_OK, Error
from .http_retry import RetryPolicy
from .progress import ProgressBar

log = logging.getLogger(__name__)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Where --output-dir writes the text formats, by --response-format; .json otherwise.
OUTPUT_SUFFIXES = {"text": ".txt", "srt": ".srt", "vtt": ".vtt"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Speech-to-text client, and a local server speaking its protocol.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_transcribe(commands)
    _add_devserver(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


def _add_transcribe(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    transcribe = commands.add_parser(
        "transcribe",
        help="transcribe audio files",
        description=f"Transcribe audio files. The API key comes from {API_KEY_ENV}.",
        parents=[output_options(progress=True)],
    )
    transcribe.set_defaults(handler=cmd_transcribe)
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
        help="also write each transcript to DIR/<file name>.json (.txt, .srt or .vtt "
        "for those formats)",
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
        "--response-format",
        choices=RESPONSE_FORMATS,
        help="json gives the text, verbose_json its segments too; text, srt and vtt "
        "are printed as the service wrote them (openai format only; default: "
        "verbose_json for whisper-1, json for other models)",
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
        default=RetryPolicy.max_retries,
        metavar="N",
        help=f"retries of a failed request (default: {RetryPolicy.max_retries})",
    )
    transcribe.add_argument(
        "--max-wait",
        "--max-retry-after",
        dest="max_wait",
        type=positive_float,
        default=RetryPolicy.max_wait_s,
        metavar="SECONDS",
        help="the longest wait before a retry; a server asking for longer gets an "
        f"error at once (default: {RetryPolicy.max_wait_s:g})",
    )


def _add_devserver(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    devserver = commands.add_parser(
        "devserver",
        help="run the local development server",
        description="Serve both wire formats on loopback, for offline work and tests.",
        parents=[output_options(progress=False)],
    )
    devserver.set_defaults(handler=cmd_devserver)
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
        raise argparse.ArgumentTypeError(
            f"must be a finite number, 0 or more, got {text}"
        )
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


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return resolve_settings(None, args.base_url, args.provider)
    except MissingAPIKeyError:
        raise MissingAPIKeyError(
            f"no API key: set the {API_KEY_ENV} environment variable "
            f"(the dev server accepts {DEFAULT_ACCEPTED_KEYS[0]!r})"
        ) from None


def _output_paths(
    files: Sequence[str], folder: Path | None, suffix: str
) -> dict[str, Path]:
    """Where each transcript goes; two inputs with one file name are refused."""
    if folder is None:
        return {}
    paths: dict[str, Path] = {}
    seen: dict[Path, str] = {}
    for file in files:
        path = folder / f"{Path(file).name}{suffix}"
        if path in seen and seen[path] != file:
            raise ConfigurationError(
                f"{seen[path]} and {file} would both be written to {path}: "
                "transcribe them in separate runs"
            )
        seen[path], paths[file] = file, path
    return paths


def _item_record(item: BatchItem, response_format: str | None) -> dict[str, Any]:
    transcription = item.transcription
    if isinstance(transcription, str):
        return {
            "file": item.file,
            "response_format": response_format,
            "text": transcription,
        }
    if transcription is not None:
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


def _print_item(item: BatchItem, args: argparse.Namespace, with_header: bool) -> None:
    if args.json:
        print(json.dumps(_item_record(item, args.response_format), ensure_ascii=False))
        return
    transcription = item.transcription
    if transcription is None:
        return  # its error is logged
    if with_header:
        print(f"==> {item.file} <==")
    if isinstance(transcription, str):  # text, srt or vtt: as the service wrote it
        print(transcription, end="" if transcription.endswith("\n") else "\n")
        return
    print(transcription.text)
    for segment in transcription.segments:
        end = "?" if segment.end is None else f"{segment.end:.2f}"
        print(f"  {segment.start:6.2f} - {end:>6}  {segment.text}")


def _write_item(item: BatchItem, path: Path, response_format: str | None) -> None:
    if isinstance(item.transcription, str):
        write_text_atomic(path, item.transcription)
    else:
        write_json_atomic(path, _item_record(item, response_format))


def _not_listening(error: BaseException) -> bool:
    """Whether the error says nothing answered at the address (a server that took the
    connection and then failed is running)."""
    return isinstance(error, APIConnectionError) and isinstance(
        error.__cause__, httpx.ConnectError | httpx.ConnectTimeout
    )


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


def cmd_transcribe(args: argparse.Namespace) -> int:
    missing = [file for file in args.files if not os.path.exists(file)]
    if missing:
        raise AudioInputError(f"no such file: {', '.join(missing)}")
    # A folder is named as one; a device or pipe (/dev/zero) might never end.
    for file in args.files:
        if os.path.isdir(file):
            raise AudioInputError(f"{file} is a folder, not an audio file")
        if not os.path.isfile(file):
            raise AudioInputError(f"{file} is not a regular file, so no audio file")
    suffix = OUTPUT_SUFFIXES.get(args.response_format, ".json")
    outputs = _output_paths(args.files, args.output_dir, suffix)
    settings = _settings(args)
    openai_only = {
        "--language": args.language,
        "--prompt": args.prompt,
        "--temperature": args.temperature,
        "--response-format": args.response_format,
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
        make_folder(args.output_dir)  # before the calls, which cost money
        remove_stale_temporaries(args.output_dir)  # what a killed run left
    client = AsyncClient(
        api_key=settings.api_key,
        base_url=settings.base_url,
        provider=settings.provider,
        model=args.model,
        timeout=httpx.Timeout(
            args.timeout, connect=min(DEFAULT_TIMEOUT.connect or 5.0, args.timeout)
        ),
        retry_policy=RetryPolicy(
            max_retries=args.max_retries, max_wait_s=args.max_wait
        ),
        wait_for_model=args.wait_for_model,
    )
    log.debug("using %r", client)
    # --verbose logs every request on stderr, where the bar would tear its lines.
    drawn = False if args.verbose else progress_enabled(args)
    with ProgressBar(len(args.files), "transcribe", enabled=drawn) as bar:

        async def run() -> list[BatchItem]:
            async with client:
                return await transcribe_many(
                    client,
                    args.files,
                    concurrency=args.concurrency,
                    language=args.language,
                    prompt=args.prompt,
                    temperature=args.temperature,
                    response_format=args.response_format,
                    on_progress=lambda done, _: bar.update(done - bar.count),
                )

        items = asyncio.run(run())
    hint = _devserver_hint(settings.base_url)
    for item in items:
        if item.error is not None:
            more = hint if _not_listening(item.error) else ""
            message = str(item.error) or type(item.error).__name__
            log.error("%s: %s%s", item.file, message, more)
        _print_item(item, args, with_header=len(items) > 1)
        if item.transcription is not None and item.file in outputs:
            _write_item(item, outputs[item.file], args.response_format)
    # The first failure decides the exit code: one bad file is never a success.
    return next((_exit_code(item.error) for item in items if item.error), EXIT_OK)


def cmd_devserver(args: argparse.Namespace) -> int:
    keys = args.accept_key or list(DEFAULT_ACCEPTED_KEYS)
    with contextlib.ExitStack() as stack:
        if args.log_file is not None:
            try:
                stream = stack.enter_context(
                    open(args.log_file, "a", encoding="utf-8", buffering=1)
                )
            except OSError as error:
                raise ConfigurationError(
                    f"cannot write the log file {args.log_file}: {error.strerror}"
                ) from None
            # One line per request, to its own file: never into another command's
            # output in the terminal the server was started from.
            stack.enter_context(_log_to(stream))
        try:
            server = DevServer(
                args.host, args.port, keys, model_loading=args.model_loading
            )
        except OSError as error:
            raise ConfigurationError(
                f"cannot listen on {args.host}:{args.port}: {error.strerror or error}"
            ) from None
        log.info(
            "dev server on %s, accepting API keys: %s (Ctrl-C stops it)",
            server.url,
            ", ".join(keys),
        )
        with server, contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return EXIT_OK


@contextmanager
def _log_to(stream: TextIO) -> Iterator[None]:
    """Point the command's log at `stream` while the block runs."""
    handlers = [
        handler
        for handler in logging.getLogger(LOGGER_NAME).handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    before = [handler.stream for handler in handlers]
    for handler in handlers:
        handler.setStream(stream)
    try:
        yield
    finally:
        for handler, old in zip(handlers, before, strict=True):
            handler.setStream(old)
