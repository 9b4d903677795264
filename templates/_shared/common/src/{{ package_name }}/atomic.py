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
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError


@contextlib.contextmanager
def atomic_writer(path: str | Path, *, durable: bool = True) -> Iterator[IO[bytes]]:
    """A binary file that replaces `path` when the block ends without an error."""
    target = Path(path)
    temporary, handle = _new_temporary(target)
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            try:
                file.flush()
                if durable:
                    os.fsync(file.fileno())
            except OSError as error:
                raise _cannot_write(target, error) from None
        try:
            os.replace(temporary, target)
        except OSError as error:
            raise _cannot_write(target, error) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _new_temporary(target: Path) -> tuple[Path, int]:
    """An empty file beside `target`, with the mode `open()` would give a new file (the
    umask's) or the target's own mode: mkstemp's 0600 would hide a report from the
    people and tools the folder is shared with."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = _mode_to_keep(target)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        while True:
            temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
            try:
                handle = os.open(temporary, flags, 0o666)
                break
            except FileExistsError:
                continue  # another writer's temporary, by a one in 4 billion chance
        if mode is not None:
            os.chmod(temporary, mode)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"cannot write {target}: a file sits where a folder must be"
        ) from None
    except OSError as error:
        raise _cannot_write(target, error) from None
    return temporary, handle


def _mode_to_keep(target: Path) -> int | None:
    """The mode of the regular file at `target`, None where nothing is there. Anything
    else is refused: renaming over a device or a pipe (`/dev/stdout`, `/dev/full`)
    would replace it for everyone, where the user meant to write through it."""
    try:
        info = target.stat()
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(
            f"cannot write {target}: a folder sits where the file must be"
        )
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            f"cannot write {target}: not a regular file (a device, pipe or socket);"
            " name a file instead"
        )
    return stat.S_IMODE(info.st_mode)


def _cannot_write(target: Path, error: OSError) -> ConfigError:
    return ConfigError(f"cannot write {target}: {os_error_reason(error)}")


def os_error_reason(error: OSError) -> str:
    """Why the system refused, in words that fit after "cannot write X: "."""
    if isinstance(error, IsADirectoryError):
        return "a folder sits where the file must be"
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or str(error)


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


def make_folder(folder: str | Path) -> Path:
    """`folder`, made if missing, with a file created and removed there to prove it
    takes files: a command calls this before its work (calls that cost money, hours
    of training), so a place it cannot write is refused then, not after."""
    folder = Path(folder)
    # Named as a temporary: remove_stale_temporaries clears one a kill left behind.
    probe = folder / f".write-check.{secrets.token_hex(4)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"cannot write in {folder}: a file sits where a folder must be"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"cannot write in {folder}: {os_error_reason(error)}"
        ) from None
    return folder


def check_file_target(path: str | Path) -> Path:
    """`path`, once it is known that a write there could succeed: its folder takes
    files, and no folder, device or pipe sits at it. A command calls this before its
    work, so that a bad `--output` is refused before the results are computed, not
    after."""
    target = Path(path)
    make_folder(target.parent)
    _mode_to_keep(target)
    return target


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
