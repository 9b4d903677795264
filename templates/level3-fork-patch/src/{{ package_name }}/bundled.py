"""Turn a folder of example releases (plain files) into a git repository, stable ids.

The folder holds one subfolder per release and a `RELEASES` file naming them, oldest
first. Each release becomes one commit on `main` (the previous release its parent) and a
tag of the same name. Authors, committers, dates, messages and file modes are fixed and
line endings are read as LF, so the commit and tree ids are the same on every machine
and can be pinned in upstream.toml like any other upstream's.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .errors import ConfigError
from .gitcmd import Git

AUTHOR = "tinyforum authors <authors@tinyforum.invalid>"
FIRST_DATE = 1704067200  # 2024-01-01T00:00:00Z
RELEASE_INTERVAL = 30 * 86400
SKIPPED = {"__pycache__", ".DS_Store", ".ruff_cache", ".mypy_cache", ".pytest_cache"}


def release_names(source: Path) -> list[str]:
    listing = source / "RELEASES"
    try:
        names = [
            line.strip() for line in listing.read_text(encoding="utf-8").splitlines()
        ]
    except FileNotFoundError:
        raise ConfigError(
            f"{listing}: not found (one release folder name a line)"
        ) from None
    names = [name for name in names if name]
    if not names:
        raise ConfigError(f"{listing}: names no release")
    for name in names:
        if not (source / name).is_dir():
            raise ConfigError(
                f"{listing}: release {name!r} has no folder {source / name}"
            )
    return names


def release_files(folder: Path) -> list[tuple[str, bytes]]:
    """(path, bytes) of every file of a release, sorted, with CRLF read as LF."""
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or SKIPPED & set(relative.parts) or path.suffix == ".pyc":
            continue
        files.append((relative.as_posix(), path.read_bytes().replace(b"\r\n", b"\n")))
    return files


def fast_import_stream(source: Path) -> bytes:
    chunks: list[bytes] = []
    for index, name in enumerate(release_names(source)):
        date = FIRST_DATE + index * RELEASE_INTERVAL
        message = f"Release {name}\n".encode()
        chunks.append(b"commit refs/heads/main\n")
        chunks.append(f"mark :{index + 1}\n".encode())
        chunks.append(f"author {AUTHOR} {date} +0000\n".encode())
        chunks.append(f"committer {AUTHOR} {date} +0000\n".encode())
        chunks.append(f"data {len(message)}\n".encode() + message)
        if index:
            chunks.append(f"from :{index}\n".encode())
        chunks.append(b"deleteall\n")
        for path, data in release_files(source / name):
            quoted = '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
            chunks.append(f"M 100644 inline {quoted}\n".encode())
            chunks.append(f"data {len(data)}\n".encode() + data + b"\n")
        chunks.append(b"\n")
        chunks.append(f"reset refs/tags/{name}\nfrom :{index + 1}\n\n".encode())
    return b"".join(chunks)


def build_bundled_repository(source: Path, target: Path) -> Path:
    """(Re)build the bare repository at `target` from the releases in `source`."""
    if not source.is_dir():
        raise ConfigError(f"{source}: the bundled upstream's folder does not exist")
    stream = fast_import_stream(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        git = Git(building, building)
        git.run("init", "--quiet", "--bare", ".")
        git.run("fast-import", "--quiet", "--date-format=raw", input=stream)
        git.run("symbolic-ref", "HEAD", "refs/heads/main")
        if target.exists():
            shutil.rmtree(target)
        building.rename(target)
    finally:
        if building.exists():
            shutil.rmtree(building)
    return target
