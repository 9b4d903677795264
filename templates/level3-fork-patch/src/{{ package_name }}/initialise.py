"""init: start from your own upstream, with the example series, overlay and smoke gone.

`init --upstream URL|PATH --rev REV` pins the upstream (commit, tree, licence), removes
the example content (the patch files, the overlay's files, the bundled example upstream,
the smoke settings, the example's tests), leaves `patches/series` empty and the
`[smoke]` table commented out, then fetches and applies the empty series. It commits
nothing: the user reviews `git status` and commits. What it removes must be committed
first (or `--force` given outside a git repository), so nothing is lost for good.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_text_atomic
from .configfile import validate
from .errors import BlockedError, ConfigError
from .gitcmd import Git, nul_list
from .project import ALLOW_REPLACE, BUNDLED, Pin, Project, write_pin, write_series
from .worktree import (
    DirtyTreeError,
    PinMismatchError,
    apply,
    ensure_work_repository,
    fetch,
    project_status,
    refuse_if_dirty,
    resolve_revision,
    unexported_commits,
)

# Example content outside patches/ and overlay/, relative to the project root.
EXAMPLE_PATHS = (
    "smoke/settings.json",
    "tests/test_example.py",
    "tests/fixtures/example_settings",
)

SMOKE_TEMPLATE = """\
# How `smoke` runs the patched app: {python}, {project}, {work_tree} and {out} are
# filled in. The app must write into {out} and record $FORK_PROVENANCE in its metadata.
# Until this table exists, `smoke --skip` says so and passes; `smoke` refuses.
# [smoke]
# command = ["{python}", "-m", "yourapp", "--out", "{out}"]
# metadata = "run.json"
# settings = "smoke/settings.json"   # validated against the settings schema first
"""

log = logging.getLogger(__name__)

ALLOW_REPLACE_TEXT = """\
# Overlay files that may replace an upstream file whole, one path a line (relative to
# overlay/). Anything not listed here that exists upstream is refused: patch it instead.
"""


@dataclass
class InitResult:
    pin: Pin
    removed: list[str] = field(default_factory=list)


def example_content(project: Project) -> list[Path]:
    """The files and folders `init` removes, those that exist."""
    paths: list[Path] = []
    if project.patches_dir.is_dir():
        paths += sorted(project.patches_dir.glob("*.patch"))
    if project.overlay_dir.is_dir():
        paths += sorted(
            path for path in project.overlay_dir.iterdir() if path.name != ALLOW_REPLACE
        )
    pin = project.load_pin()
    if pin.url.startswith(BUNDLED):
        source = project.bundled_source(pin).resolve()
        if source.is_dir() and source.is_relative_to(project.root.resolve()):
            paths.append(source)
    paths += [project.root / name for name in EXAMPLE_PATHS]
    return [path for path in paths if path.exists()]


def refuse_own_content(project: Project) -> None:
    """Once upstream.toml pins an upstream of yours, patches/ and overlay/ hold your
    work, not the bundled example's: init would delete it."""
    pin = project.load_pin()
    if pin.url.startswith(BUNDLED):
        return
    own = [
        path
        for path in example_content(project)
        if path.parent in (project.patches_dir, project.overlay_dir)
    ]
    if own:
        shown = ", ".join(_relative(project, path) for path in own[:3]) + (
            " ..." if len(own) > 3 else ""
        )
        raise BlockedError(
            f"init: upstream.toml already pins your own upstream ({pin.url}), so"
            f" {shown} are yours, not the example's: init would delete them."
            " Move the pin with `pin URL --rev REV` and the series with"
            " `rebase --onto`, or give --force to start over; nothing was done"
        )


def _relative(project: Project, path: Path) -> str:
    return path.resolve().relative_to(project.root.resolve()).as_posix()


def refuse_unsaved(project: Project, paths: list[Path], force: bool) -> None:
    """What init removes must be recoverable from the project's git history."""
    names = [_relative(project, path) for path in paths]
    status = project_status(project, *names, "upstream.toml", "patches")
    if status is None:
        if force:
            return
        raise BlockedError(
            f"init: {project.root} is not in a git repository, so what init removes"
            " could not be got back: commit the project first (`git init && git add"
            " -A && git commit -m 'Start'`), or give --force; nothing was done"
        )
    if status:
        shown = ", ".join(entry[3:] for entry in status[:5])
        raise DirtyTreeError(
            f"init: uncommitted changes in what init rewrites or removes ({shown}):"
            " commit or discard them first; nothing was done"
        )


def _comment_out_smoke(text: str) -> str:
    """upstream.toml with its [smoke] table replaced by a commented-out sample."""
    match = re.search(r"^\[smoke\][^\n]*\n", text, re.MULTILINE)
    if match is None:
        if "# [smoke]" in text:
            return text
        return text.rstrip("\n") + "\n\n" + SMOKE_TEMPLATE
    start = match.start()
    # Comment lines right above the table belong to it.
    lines = text[:start].split("\n")[:-1]
    while lines and lines[-1].startswith("#"):
        lines.pop()
    start = len("\n".join(lines)) + (1 if lines else 0)
    following = re.search(r"^\[", text[match.end() :], re.MULTILINE)
    end = match.end() + following.start() if following else len(text)
    rest = text[end:]
    return (
        text[:start].rstrip("\n")
        + "\n\n"
        + SMOKE_TEMPLATE
        + ("\n" + rest if rest else "")
    )


# A licence file's name, any case: LICENSE, LICENCE or COPYING, alone or followed by
# an extension or a suffix (LICENSE.rst, LICENCE.txt, COPYING.LESSER, LICENSE-MIT).
LICENSE_NAME = re.compile(r"^(?:licen[cs]e|copying)(?:[.-][^/]*)?$", re.IGNORECASE)


def license_files(git: Git, commit: str) -> list[str]:
    """The licence files at the top of `commit`: plain names first, then the rest."""
    names = nul_list(git.run("ls-tree", "-z", "--name-only", commit).stdout)
    found = [name for name in names if LICENSE_NAME.match(name)]
    return sorted(found, key=lambda name: ("-" in name, name.count("."), name.lower()))


def detect_license(git: Git, commit: str) -> str:
    for name in license_files(git, commit):
        result = git.run("show", f"{commit}:{name}", check=False)
        if result.returncode == 0:
            text = result.stdout.decode("utf-8", "replace")[:2000]
            for marker, spdx in (
                ("MIT License", "MIT"),
                ("Apache License", "Apache-2.0"),
                ("GNU AFFERO GENERAL PUBLIC LICENSE", "AGPL-3.0"),
                ("GNU LESSER GENERAL PUBLIC LICENSE", "LGPL-3.0"),
                (
                    "GNU GENERAL PUBLIC LICENSE",
                    "GPL-3.0" if "Version 3" in text else "GPL-2.0",
                ),
                ("Mozilla Public License", "MPL-2.0"),
                ("BSD", "BSD-3-Clause"),
            ):
                if marker in text:
                    return spdx
            return f"see {name}"
    raise ConfigError(
        "no licence file (LICENSE, LICENCE or COPYING, any case or suffix) in the"
        " upstream: give --license SPDX-ID"
    )


def pin_upstream(
    project: Project, url: str, revision: str, license_: str | None
) -> Pin:
    """Fetch `url`, resolve `revision` and write the pin; nothing else changes."""
    old = project.load_pin()
    if not url.startswith(BUNDLED) and Path(url).exists():
        url = str(Path(url).resolve())
    # A provisional pin, checked as upstream.toml's is: the old commit is not in the
    # new upstream, so its mismatch is expected.
    provisional = validate(
        Pin, {**old.model_dump(), "url": url}, where="command line", overridden=["url"]
    )
    git = ensure_work_repository(project)
    with contextlib.suppress(PinMismatchError):
        fetch(project, provisional)
    commit = resolve_revision(project, revision)
    tree = git.text("rev-parse", f"{commit}^{{tree}}")
    if license_ is None and url == old.url:
        # The same upstream: the licence recorded (perhaps given by hand) stays.
        license_ = old.license
        with contextlib.suppress(ConfigError):
            found = detect_license(git, commit)
            if found != old.license and not found.startswith("see "):
                log.warning(
                    "licence: %s reads as %s at %s; upstream.toml keeps %s"
                    " (give --license to change it)",
                    url,
                    found,
                    commit[:12],
                    old.license,
                )
    license_ = license_ or detect_license(git, commit)
    write_pin(project.pin_file, url=url, commit=commit, tree=tree, license=license_)
    return Pin(url=url, commit=commit, tree=tree, license=license_)


def init(
    project: Project, url: str, revision: str, license_: str | None, force: bool
) -> InitResult:
    refuse_if_dirty(project, "init")
    unexported = unexported_commits(project)
    if unexported:
        raise DirtyTreeError(
            f"init: {len(unexported)} commit(s) in {project.work_tree} are not in"
            " patches/: `export` them (or `apply --discard`) first; nothing was done"
        )
    paths = example_content(project)
    if not force:
        refuse_own_content(project)
    refuse_unsaved(project, paths, force)
    # A fresh work repository (no example branches, tags or overlay records); the old
    # one comes back if the new upstream cannot be fetched or has no such revision.
    kept = project.state_dir / "upstream.before-init"
    shutil.rmtree(kept, ignore_errors=True)
    if project.work_tree.is_dir():
        project.work_tree.rename(kept)
    try:
        pin = pin_upstream(project, url, revision, license_)
    except BaseException:
        shutil.rmtree(project.work_tree, ignore_errors=True)
        if kept.is_dir():
            kept.rename(project.work_tree)
        raise
    shutil.rmtree(kept, ignore_errors=True)
    shutil.rmtree(project.state_dir / "bundled", ignore_errors=True)
    result = InitResult(pin)
    for path in paths:
        result.removed.append(_relative(project, path))
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    project.patches_dir.mkdir(exist_ok=True)
    write_series(project, [])
    project.overlay_dir.mkdir(exist_ok=True)
    write_text_atomic(project.overlay_dir / ALLOW_REPLACE, ALLOW_REPLACE_TEXT)
    text = project.pin_file.read_text(encoding="utf-8")
    write_text_atomic(project.pin_file, _comment_out_smoke(text))
    apply(project)
    return result
