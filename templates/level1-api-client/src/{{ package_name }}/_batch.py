"""Transcribe many files at once: bounded concurrency, progress, per-file errors."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._client import AsyncClient
from ._errors import APIError
from .types import Transcription

ProgressCallback = Callable[[int, int], None]  # (files done, files in all)


@dataclass(frozen=True)
class BatchItem:
    """One file's outcome: a transcription, or the error that stopped it."""

    file: str
    transcription: Transcription | None = None
    error: APIError | OSError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def transcribe_many(
    client: AsyncClient,
    files: Sequence[str | os.PathLike[str]],
    *,
    concurrency: int = 4,
    on_progress: ProgressCallback | None = None,
) -> list[BatchItem]:
    """Transcribe `files` with at most `concurrency` requests in flight, in input order.

    A file that fails (unreadable, refused, retries exhausted) becomes an item with an
    error; the others go on. Other exceptions (bugs, cancellation) do propagate.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be 1 or more, got {concurrency}")
    slots = asyncio.Semaphore(concurrency)
    done = 0
    if on_progress is not None:
        on_progress(0, len(files))

    async def one(file: str | os.PathLike[str]) -> BatchItem:
        nonlocal done
        async with slots:
            try:
                item = BatchItem(
                    os.fspath(file), transcription=await client.transcribe(file)
                )
            except (APIError, OSError) as error:
                item = BatchItem(os.fspath(file), error=error)
        done += 1
        if on_progress is not None:
            on_progress(done, len(files))
        return item

    return list(await asyncio.gather(*(one(file) for file in files)))
