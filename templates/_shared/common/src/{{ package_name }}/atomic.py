"""Writes that a crash or a kill cannot leave half done.

Each write goes to a temporary file in the target's folder, is flushed to disk, then
renamed over the target: a reader sees the old file or the new one, never a torn one.
`durable=False` skips the flush to disk (an fsync, milliseconds each) for files that
are cheap to lose in a power cut, such as cache entries: a kill still never tears them.
A process killed mid-write can leave only its temporary file, which is named
`.<target>.<random>.tmp`; `remove_stale_temporaries` clears those on the next run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError


@contextlib.contextmanager
def atomic_writer(path: str | Path, *, durable: bool = True) -> Iterator[IO[bytes]]:
    """A binary file that replaces `path` when the block ends without an error."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"cannot write {target}: a file sits where a folder must be"
        ) from None
    except PermissionError:
        raise ConfigError(f"cannot write {target}: permission denied") from None
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            if durable:
                os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_writer(path, durable=durable) as file:
        file.write(data)


def write_text_atomic(path: str | Path, text: str, *, durable: bool = True) -> None:
    """UTF-8 with the newlines as given, on every platform."""
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_json_atomic(path: str | Path, value: Any, *, sort_keys: bool = False) -> None:
    """Indented JSON with a final newline; NaN and infinity are refused, not written."""
    _check_finite(value, str(path))
    text = json.dumps(value, indent=2, sort_keys=sort_keys, ensure_ascii=False)
    write_text_atomic(path, text + "\n")


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files that killed writes left in `folder` (not below it)."""
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: refusing to write the non-finite number {value}")
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item, where)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_finite(item, where)
