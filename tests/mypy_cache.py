"""mypy's cache shared by the projects of one test run.

A project's first `mypy` builds a cache of every module it reads: for a PyTorch level
that is torch's own annotations, about 12 s of CPU, and the run type-checks several such
projects. mypy checks each cached module against its source (size, then content hash
where the path or time differ), so a cache left by another project is safe to start
from: the project's own modules, and anything that changed, are checked again.

The pool keeps, for each Python version mypy targets, the largest cache a project of
this run has left (the one that read the most libraries). It only ever grows by adding
a new, larger copy, so a copy that is there is never written to while others read it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _largest(pool: Path, version: str) -> Path | None:
    # Copies are named by their size, zero-padded, so the last name is the largest.
    copies = sorted((pool / version).glob("[0-9]*")) if (pool / version).is_dir() else []
    return copies[-1] if copies else None


def seed(pool: Path, project: Path) -> None:
    """Start `project`'s mypy cache from the pool's, where the project has none yet."""
    cache = project / ".mypy_cache"
    if cache.exists() or not pool.is_dir():
        return
    for version in pool.iterdir():
        largest = _largest(pool, version.name)
        if largest is not None:
            shutil.copytree(largest, cache / version.name)


def offer(project: Path, pool: Path) -> None:
    """Add `project`'s mypy cache to the pool where it is larger than what the pool has."""
    cache = project / ".mypy_cache"
    if not cache.is_dir():
        return
    for version in cache.iterdir():
        if not version.is_dir():
            continue
        size = _size(version)
        largest = _largest(pool, version.name)
        if largest is not None and int(largest.name.split("-")[0]) >= size:
            continue
        staging = pool / version.name / f".{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(version, staging)
        # A rename is atomic: readers see the whole copy or none of it.
        staging.rename(pool / version.name / f"{size:015d}-{os.getpid()}")
