"""Transcribe many files at once: bounded concurrency, progress, per-file errors."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._async_client import AsyncClient
from ._config import ResponseFormat
from ._errors import ConfigurationError
from ._input import AudioInput
from .errors import Error
from .types import Transcription

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (files done, files in all)


@dataclass(frozen=True)
class BatchItem:
    """One input's outcome: a transcription, or the error that stopped it.

    The transcription is what `AsyncClient.transcribe` returns for the response format
    asked for: a Transcription for json and verbose_json, the text itself (a str) for
    text, srt and vtt.

    `error` is one of the client's errors (an `errors.Error`); anything else there is a
    bug, kept with its traceback so that the other inputs' results are not lost to it.
    """

    file: str
    transcription: Transcription | str | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def transcribe_many(
    client: AsyncClient,
    files: Sequence[AudioInput],
    *,
    concurrency: int = 4,
    on_progress: ProgressCallback | None = None,
    language: str | None = None,
    prompt: str | None = None,
    temperature: float | None = None,
    response_format: ResponseFormat | None = None,
) -> list[BatchItem]:
    """Transcribe `files` with at most `concurrency` requests in flight, in input order.

    Every input gets an item: a file that fails (unreadable, refused, retries
    exhausted, a malformed answer) becomes an item with an error and the others go on.
    Only cancellation (Ctrl-C) stops the batch. `language`, `prompt`,
    `temperature` and `response_format` go with every call.
    """
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be 1 or more, not {concurrency}")
    slots = asyncio.Semaphore(concurrency)
    done = 0
    if on_progress is not None:
        on_progress(0, len(files))

    async def one(file: AudioInput) -> BatchItem:
        nonlocal done
        name = describe(file)
        async with slots:
            try:
                transcription = await client.transcribe(
                    file,
                    language=language,
                    prompt=prompt,
                    temperature=temperature,
                    response_format=response_format,
                )
                item = BatchItem(name, transcription=transcription)
            except Error as error:
                item = BatchItem(name, error=error)
            except Exception as error:  # a bug: logged with its traceback, kept
                log.exception("unexpected error transcribing %s", name)
                item = BatchItem(name, error=error)
        done += 1
        if on_progress is not None:
            on_progress(done, len(files))
        return item

    return list(await asyncio.gather(*(one(file) for file in files)))


def describe(file: AudioInput) -> str:
    """A name for an input in results and messages: its path or file name."""
    if isinstance(file, str | os.PathLike):
        return os.fspath(file)
    if isinstance(file, tuple):
        return file[0] or "<audio>"
    if isinstance(file, bytes | bytearray | memoryview):
        return f"<{len(file)} bytes>"
    name = getattr(file, "name", None)
    return name if isinstance(name, str) else "<audio>"
