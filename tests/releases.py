"""The template's releases, read from CHANGELOG.md's headings.

A heading `## X.Y.Z (commit <sha>)` is a published release a user's project may have been
rendered from; `## X.Y.Z (unreleased)` is the one being prepared (the working tree). The
update tests render a project at each published release and update it to the working tree.
"""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import levels

REPO = Path(__file__).resolve().parent.parent
HEADING = re.compile(r"^## (\d+\.\d+\.\d+) \((?:commit ([0-9a-f]{40})|unreleased)\)$", re.M)


@dataclass(frozen=True)
class Release:
    version: str
    commit: str | None  # None: the release being prepared

    @property
    def tag(self) -> str:
        return f"v{self.version}"


def all_releases() -> list[Release]:
    """Every release in CHANGELOG.md, newest first."""
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    return [Release(version, commit or None) for version, commit in HEADING.findall(text)]


def published() -> list[Release]:
    return [release for release in all_releases() if release.commit]


def upcoming() -> Release:
    release = all_releases()[0]
    assert release.commit is None, "CHANGELOG.md's first section is the unreleased one"
    return release


def missing_commit_message(release: Release) -> str | None:
    """Why `release`'s commit cannot be read from this clone, or None when it can."""
    probe = subprocess.run(
        ["git", "cat-file", "-e", f"{release.commit}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if probe.returncode == 0:
        return None
    return (
        f"release {release.version}'s commit {release.commit} is not in this clone of the "
        "template: the update tests render projects at every published release, so they "
        "need the full history (`git fetch --unshallow --tags`, or a clone without --depth)"
    )


@functools.cache
def levels_at(release: Release) -> list[int]:
    """The levels whose template folder exists at `release`'s commit."""
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{release.commit}:templates"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return [number for number, entry in levels.LEVELS.items() if entry["folder"] in listing]


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def is_oldest_with(release: Release, level: int) -> bool:
    """Whether `release` is the oldest published release that has `level`: the update
    from it is the largest a project of that level can make."""
    having = [r for r in published() if level in levels_at(r)]
    return release == min(having, key=lambda r: version_key(r.version))
