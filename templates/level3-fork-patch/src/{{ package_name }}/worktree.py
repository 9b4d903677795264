"""fetch, apply, export and status: the pinned upstream, the series and the overlay.

The work repository is `.work/upstream`. `apply` checks out the pinned commit on the
branch `patched`, records it as `refs/patches/upstream-head`, applies the series with
`git am` (no fuzz, no 3-way) one patch at a time, then copies the overlay. `export`
turns the commits after `refs/patches/upstream-head` back into patch files, one
`format-patch` call per commit, so that a patch's bytes depend on that commit alone.
`refs/patches/exported` marks the last commit whose series is in patches/ (set by
`apply` and `export`): `apply` refuses to throw away commits made after it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from .bundled import build_bundled_repository
from .commandline import PROG
from .configfile import read_text
from .errors import BlockedError, ConfigError, Error, ServiceError
from .gitcmd import (
    Git,
    GitError,
    attributes_file,
    complaints,
    last_line,
    nul_list,
    output_lines,
)
from .patchfile import (
    add_filename_trailer,
    line_ending_problem,
    name_problem,
    parse_patch,
    slug_name,
    split_mbox,
    take_filename_trailer,
)
from .progress import ProgressBar
from .project import (
    ALLOW_REPLACE,
    PIN_FILE,
    Pin,
    Project,
    fingerprint,
    read_series,
    series_patches,
    write_series,
)

StateT = TypeVar("StateT")

log = logging.getLogger(__name__)

BASE_REF = "refs/patches/upstream-head"
PREVIOUS_REF = "refs/patches/previous"
EXPORTED_REF = "refs/patches/exported"
BRANCH = "patched"
# Commits fetched from the upstream by id, on none of its branches or tags.
FETCHED_PREFIX = "refs/patches/fetched/"
OVERLAY_RECORD = "fork-overlay.json"
# Present while the work tree holds only part of the series (an `apply` that stopped).
PARTIAL_RECORD = "fork-partial-apply.json"
# In .work/ while a rebase is under way, from before it changes anything.
REBASE_STATE = "rebase.json"
EXCLUDE_MARK = "# overlay files copied by the fork tooling (rewritten by apply)"

# Flags that make format-patch output independent of git's defaults and user config.
FORMAT_PATCH_FLAGS = (
    "--stdout",
    "--zero-commit",
    "--full-index",
    "--no-signature",
    "--no-stat",
    "--keep-subject",
    "--no-numbered",
    "--no-thread",
    "--no-cover-letter",
    "--no-add-header",
    "--no-to",
    "--no-cc",
    "--no-from",
    "--no-base",
    "--no-notes",
    "--encode-email-headers",
    "--no-renames",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--diff-algorithm=myers",
    "--indent-heuristic",
    "--unified=3",
    "--inter-hunk-context=0",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--binary",
    "--encoding=UTF-8",
)
# An object id as a user may give one: 7 to 40 lower-case hex digits.
HEX_ID = re.compile(r"^[0-9a-f]{7,40}$")
AM_FLAGS = ("am", "--keep-cr", "--keep-non-patch", "--no-3way", "--whitespace=nowarn")
# Commits the tooling makes carry the author's date as their committer date.
AM_DATE = ("--committer-date-is-author-date",)


class DirtyTreeError(BlockedError):
    """The work tree holds what a command would overwrite (uncommitted changes,
    commits patches/ lacks, a `git am` under way): nothing was done."""


class NotAppliedError(BlockedError):
    """The command needs a fetched pin or an applied series first: nothing was done."""


class PatchError(Error):
    """A patch of the series does not apply; the message names it and the file.

    Exit 1, not 2: `apply` has run (the patches before it are applied), and what
    failed is the series against its pin, which `rebase` or an edited patch fixes."""


class PinMismatchError(ConfigError):
    """upstream.toml pins a commit the upstream lacks, or with another tree."""


class FetchError(ServiceError):
    """The upstream could not be fetched: unreachable, refused, or not a repository."""


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    overlay: list[str] = field(default_factory=list)
    base: str = ""
    kept: str | None = None  # the discarded head, at refs/patches/previous


def work_git(project: Project) -> Git:
    return Git(project.work_tree)


def ensure_work_repository(project: Project) -> Git:
    git = work_git(project)
    if not (project.work_tree / ".git").is_dir():
        project.work_tree.mkdir(parents=True, exist_ok=True)
        git.run("init", "--quiet")
    attributes_file(git.git_dir)
    return git


def fetch(
    project: Project, pin: Pin | None = None, revisions: tuple[str, ...] = ()
) -> str:
    """Fetch the upstream into the work repository; check the pin (or `pin`)."""
    pin = pin or project.load_pin()
    if pin.url.startswith("bundled:"):
        build_bundled_repository(
            project.bundled_source(pin), project.bundled_repository(pin)
        )
    url = project.upstream_url(pin)
    git = ensure_work_repository(project)
    refspecs = ["+refs/heads/*:refs/remotes/upstream/*", "+refs/tags/*:refs/tags/*"]
    # --prune: a branch or tag deleted upstream goes here too, so that its name
    # never resolves to what it once was.
    result = git.run(
        "fetch",
        "--quiet",
        "--prune",
        "--no-write-fetch-head",
        "--",  # a URL starting with "-" is a path, never an option (--upload-pack=)
        url,
        *refspecs,
        check=False,
        network=True,
    )
    if result.returncode != 0:
        raise FetchError(f"cannot fetch {pin.url}: {complaints(result)}")
    # Remember the upstream's default branch (`latest`), whatever its name.
    listed = git.run("ls-remote", "--", url, "HEAD", check=False, network=True)
    head = listed.stdout.split()
    if head and git.ok("cat-file", "-e", head[0].decode() + "^{commit}"):
        git.run("update-ref", "refs/remotes/upstream/HEAD", head[0].decode())
    for wanted in (pin.commit, *revisions):
        if not git.ok("cat-file", "-e", f"{wanted}^{{commit}}"):
            # Not on a branch or tag: ask for the commit itself (servers that allow it),
            # and remember that the upstream has it (`resolve_revision` asks).
            fetched = git.run(
                "fetch",
                "--quiet",
                "--no-write-fetch-head",
                "--",
                url,
                wanted,
                check=False,
                network=True,
            )
            commit = git.rev(f"{wanted}^{{commit}}")
            if fetched.returncode == 0 and commit:
                git.run("update-ref", f"{FETCHED_PREFIX}{commit}", commit)
    check_pin(git, pin)
    if not _in_upstream(git, pin.commit):
        # Kept from an earlier fetch: this clone still has it, a fresh one cannot.
        log.warning(
            "%s no longer has the pinned commit %s on a branch or tag (history"
            " rewritten?): a fresh clone cannot fetch it; `rebase --onto` a commit"
            " it has",
            pin.url,
            pin.commit[:12],
        )
    return pin.commit


def check_pin(git: Git, pin: Pin) -> None:
    # Exit 2, not 1: nothing is applied, and what is wrong is a setting, the pin,
    # which `pin` or `rebase --onto` rewrites.
    if not git.ok("cat-file", "-e", f"{pin.commit}^{{commit}}"):
        raise PinMismatchError(
            f"{PIN_FILE}: upstream.commit: not a commit of {pin.url},"
            f" got {pin.commit!r}"
        )
    tree = git.text("rev-parse", f"{pin.commit}^{{tree}}")
    if tree != pin.tree:
        raise PinMismatchError(
            f"{PIN_FILE}: upstream.tree: the commit has tree {tree} in {pin.url}"
            " (its history was rewritten, or the pin is wrong), got"
            f" {pin.tree!r}"
        )


def read_state(
    path: Path, build: Callable[[dict[str, Any]], StateT], consequence: str = ""
) -> StateT:
    """A JSON object the tool keeps under .work/ (written atomically, so damaged only
    by a hand's edit or the disk), built into what it records. Damaged: one line
    saying how to recover, as upstream.toml and patches/ still hold the series."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return build(data)
    except (UnicodeDecodeError, ValueError, TypeError) as error:
        raise BlockedError(
            f"{path} is damaged ({error}){consequence}: delete it, then"
            f" `{PROG} apply --discard` rebuilds the work tree from upstream.toml and"
            " patches/"
        ) from None


def _overlay_record(git: Git) -> dict[str, str]:
    """The overlay files `apply` copied into the work tree, and their sha256."""
    path = git.git_dir / OVERLAY_RECORD
    if not path.is_file():
        return {}
    return read_state(path, lambda data: {str(k): str(v) for k, v in data.items()})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dirty_paths(project: Project) -> list[str]:
    """What in the work tree holds changes not in a commit, as `git status` lines."""
    git = work_git(project)
    if not (project.work_tree / ".git").is_dir():
        return []
    status = git.run(
        "status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=all"
    ).stdout
    lines = nul_list(status)
    for path, digest in sorted(_overlay_record(git).items()):
        target = project.work_tree / path
        if not target.is_file():
            lines.append(f" D {path} (overlay copy)")
        elif _sha256(target) != digest:
            lines.append(f" M {path} (overlay copy: edit overlay/{path} instead)")
    return lines


def am_in_progress(git: Git) -> bool:
    return (git.git_dir / "rebase-apply").exists()


def give_up_am(git: Git) -> None:
    """End a `git am` under way. `--abort` can fail on a session a kill left half
    written ("cannot resume"); `--quit` then forgets it, the files as they are."""
    if am_in_progress(git):
        git.run("am", "--abort", check=False)
        if am_in_progress(git):
            git.run("am", "--quit", check=False)


def rebase_under_way(project: Project) -> bool:
    return (project.state_dir / REBASE_STATE).is_file()


def refuse_rebase_under_way(project: Project, action: str) -> None:
    """Refuse to apply or export over a rebase: its work tree is on its way to
    another upstream commit, which only the rebase itself may export."""
    if rebase_under_way(project):
        raise DirtyTreeError(
            f"{action}: a rebase is under way: `rebase --continue`, `rebase --skip`"
            " or `rebase --abort` first; nothing was done"
        )


def refuse_if_dirty(project: Project, action: str) -> None:
    git = work_git(project)
    if (project.work_tree / ".git").is_dir() and am_in_progress(git):
        if rebase_under_way(project):
            how = "`rebase --continue`, `rebase --skip` or `rebase --abort`"
        elif partial_apply(project) is not None:
            how = "`apply --discard` gives up the one an interrupted `apply` left"
        else:
            how = f"`git -C {project.work_tree} am --continue` or `am --abort`"
        raise DirtyTreeError(
            f"{action}: a `git am` is in progress in {project.work_tree}:"
            f" finish or give it up first ({how})"
        )
    dirty = dirty_paths(project)
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:5]) + (
            " ..." if len(dirty) > 5 else ""
        )
        partial = partial_apply(project)
        if partial is not None:
            what = (
                f"the series is applied there only in part ({partial}):"
                " `apply --discard` sets them aside in git's stash and applies it"
            )
        else:
            what = "commit them (then `export`) or discard them first"
        raise DirtyTreeError(
            f"{action}: {project.work_tree} has uncommitted changes ({shown}):"
            f" {what}; nothing was done"
        )


def _remove_overlay_copies(project: Project, git: Git) -> None:
    for path in _overlay_record(git):
        target = project.work_tree / path
        if git.ok("ls-files", "--error-unmatch", "--", path):
            git.run("update-index", "--no-skip-worktree", "--", path)
            git.run("checkout", "--quiet", "--", path)
        else:
            target.unlink(missing_ok=True)
    (git.git_dir / OVERLAY_RECORD).unlink(missing_ok=True)


def overlay_files(project: Project) -> list[str]:
    """Paths (relative, POSIX) of the overlay's files, ALLOW_REPLACE aside."""
    if not project.overlay_dir.is_dir():
        return []
    files = []
    for path in sorted(project.overlay_dir.rglob("*")):
        relative = path.relative_to(project.overlay_dir)
        if "__pycache__" in relative.parts:
            continue
        # Copied into .git/, a file would be git's own settings or hooks, run by
        # every later git command in the work tree.
        if any(part.lower() == ".git" for part in relative.parts):
            raise ConfigError(
                f"overlay/{relative.as_posix()}: .git is git's own folder, not the"
                " application's: remove it from overlay/"
            )
        # Followed, a link would copy whatever it points at into the work tree.
        if path.is_symlink():
            raise ConfigError(
                f"overlay/{relative.as_posix()} is a symbolic link: the overlay holds"
                " files; put the file itself there, or add the link with a patch"
            )
        if path.is_file() and relative.as_posix() != ALLOW_REPLACE:
            files.append(relative.as_posix())
    return files


def allowed_replacements(project: Project) -> set[str]:
    path = project.overlay_dir / ALLOW_REPLACE
    if not path.is_file():
        return set()
    lines = read_text(path).splitlines()
    return {
        line.strip()
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    }


def copy_overlay(project: Project, git: Git) -> list[str]:
    """Copy the overlay over the patched tree; replacing a file needs ALLOW_REPLACE."""
    files = overlay_files(project)
    allowed = allowed_replacements(project)
    tracked = set(nul_list(git.run("ls-files", "-z").stdout))
    for path in files:
        if path in tracked and path not in allowed:
            raise ConfigError(
                f"overlay/{path} would replace the upstream file {path}:"
                f" patch it instead, or list it in overlay/{ALLOW_REPLACE}"
                " to replace it whole"
            )
    record: dict[str, str] = {}
    new_files = []
    for path in files:
        target = project.work_tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project.overlay_dir / path, target)
        record[path] = _sha256(target)
        if path in tracked:
            git.run("update-index", "--skip-worktree", "--", path)
        else:
            new_files.append(path)
    _write_exclude(git, new_files)
    write_json_atomic(git.git_dir / OVERLAY_RECORD, record, sort_keys=True)
    return files


def _write_exclude(git: Git, paths: list[str]) -> None:
    exclude = git.git_dir / "info" / "exclude"
    kept = []
    if exclude.is_file():
        text = exclude.read_text(encoding="utf-8")
        kept = text.split(EXCLUDE_MARK)[0].rstrip("\n").splitlines()
    lines = [*kept, EXCLUDE_MARK, *("/" + _escape_pattern(path) for path in paths)]
    exclude.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(exclude, "\n".join(lines) + "\n")


def _escape_pattern(path: str) -> str:
    return re.sub(r"([\\*?\[\]! #])", r"\\\1", path)


def _failed_file(lines: list[str]) -> str:
    """The file git could not patch, or else git's own complaint, quoted."""
    for line in lines:
        for pattern in (
            r"^error: patch failed: (.+):\d+$",
            r"^error: (.+): does not exist in index$",
            r"^error: (.+): already exists in (?:index|working directory)$",
            r"^error: (.+): patch does not apply$",
            r"^error: (.+): does not match index$",
        ):
            match = re.match(pattern, line)
            if match:
                return match.group(1)
    complaints = [line for line in lines if line.startswith(("error:", "fatal:"))]
    if complaints:
        # "corrupt patch at line 20" and its like name no file: say what git said.
        return "git says " + "; ".join(dict.fromkeys(c.strip() for c in complaints))
    return "git named no file"


def am_one(git: Git, name: str, data: bytes, *extra: str) -> tuple[bool, list[str]]:
    """`git am` one patch, tagged with its file name; (applied, git's output lines)."""
    mbox = add_filename_trailer(data, name)
    result = git.run(*AM_FLAGS, *AM_DATE, *extra, input=mbox, check=False)
    return result.returncode == 0, list(output_lines(result))


def checked_patches(project: Project) -> list[tuple[str, bytes]]:
    """The series' patches, each refused up front if it is not a patch file."""
    patches = series_patches(project)
    seen: set[str] = set()
    for position, (name, data) in enumerate(patches, start=1):
        if name in seen:
            raise ConfigError(
                f"patch {position}/{len(patches)} {name} is listed twice in"
                " patches/series: keep one of its lines; nothing was done"
            )
        seen.add(name)
        problem = name_problem(name)
        if problem:
            raise ConfigError(
                f"patch {position}/{len(patches)} {problem}: rename it (and its line"
                " in patches/series); nothing was done"
            )
        problem = line_ending_problem(data)
        try:
            if problem is None:
                parse_patch(data)
                add_filename_trailer(data, name)
                problem = corrupt_problem(project, data)
        except ValueError as error:
            problem = str(error)
        if problem:
            raise ConfigError(
                f"patch {position}/{len(patches)} {name}: {problem}; nothing was done"
            )
    return patches


def corrupt_problem(project: Project, data: bytes) -> str | None:
    """Why git cannot read the patch's diff (truncated, hunk counts that do not add
    up), or None. `git apply --numstat` reads the whole diff and applies nothing."""
    git = Git(project.root, fixed_attributes=False)
    result = git.run("apply", "--numstat", "-", input=data, check=False)
    if result.returncode == 0:
        return None
    return f"is corrupt (truncated or edited by hand?): git says {last_line(result)}"


def unexported_commits(project: Project) -> list[str]:
    """Subjects of the work tree's commits that patches/ does not hold (oldest first).

    Empty when nothing was committed since the last `apply` or `export`, or when a
    fresh export of the commits equals patches/ as it is.
    """
    git = work_git(project)
    if not (project.work_tree / ".git").is_dir():
        return []
    head, base = git.rev("HEAD"), git.rev(BASE_REF)
    if head is None or base is None or head == base:
        return []
    if git.rev(EXPORTED_REF) == head or am_in_progress(git):
        return []
    if partial_apply(project) is not None:
        # A stopped `apply` leaves the first patches of the series: nothing to lose
        # while the work tree's commits export to exactly those.
        exported_now = export_patches(project)
        names = exported_now.names
        if names == read_series(project)[: len(names)] and not [
            d for d in compare(project, exported_now) if d.name in names
        ]:
            return []
    elif not compare(project, export_patches(project)):
        return []
    exported = git.rev(EXPORTED_REF)
    since = (
        exported
        if exported and git.ok("merge-base", "--is-ancestor", base, exported)
        else base
    )
    log = git.run("log", "-z", "--reverse", "--format=%s", f"{since}..HEAD").stdout
    return nul_list(log) or ["(commits rewritten since the last export)"]


def apply(
    project: Project, *, discard: bool = False, progress: bool | None = False
) -> ApplyResult:
    """Check out the pin, apply the series strictly, copy the overlay.

    Commits in the work tree that patches/ lacks are refused unless `discard`; then
    they stay reachable at refs/patches/previous. `progress` is the bar's `enabled`
    (None: on a terminal).
    """
    refuse_rebase_under_way(project, "apply")
    pin = project.load_pin()
    patches = checked_patches(project)
    git = work_git(project)
    if not (project.work_tree / ".git").is_dir() or not git.ok(
        "cat-file", "-e", f"{pin.commit}^{{commit}}"
    ):
        raise NotAppliedError(
            f"the pinned commit {pin.commit[:12]} is not fetched: run `fetch` first"
        )
    check_pin(git, pin)
    if discard and partial_apply(project) is not None:
        _clear_interrupted_apply(project, git)
    refuse_if_dirty(project, "apply")
    unexported = [] if discard else unexported_commits(project)
    if unexported:
        shown = "; ".join(repr(subject) for subject in unexported[:3]) + (
            " ..." if len(unexported) > 3 else ""
        )
        stopped = partial_apply(project)
        keep = (
            f"`export` cannot keep them while the work tree holds only part of the"
            f" series ({stopped}): `apply --discard` drops them"
            if stopped is not None
            else "run `export` to keep them, or `apply --discard` to drop them"
        )
        raise DirtyTreeError(
            f"apply: {len(unexported)} commit(s) in {project.work_tree} are not in"
            f" patches/ ({shown}): {keep} (kept at {PREVIOUS_REF}); nothing was done"
        )
    attributes_file(git.git_dir)
    head = git.rev("HEAD")
    base = git.rev(BASE_REF)
    if head and base and head != base:
        git.run("update-ref", PREVIOUS_REF, head)
    _remove_overlay_copies(project, git)
    # Until the last patch is in, the work tree holds part of the series: a kill
    # leaves this record, and `export` refuses to write the part over the whole.
    _write_partial(git, "apply was interrupted")
    git.run("checkout", "--quiet", "--force", "-B", BRANCH, pin.commit)
    git.run("update-ref", BASE_REF, pin.commit)
    result = ApplyResult(base=pin.commit)
    with ProgressBar(len(patches), "apply", enabled=progress) as bar:
        for position, (name, data) in enumerate(patches, start=1):
            ok, lines = am_one(git, name, data)
            if not ok:
                git.run("am", "--abort", check=False)
                # The patches applied so far came from patches/: nothing to lose.
                git.run("update-ref", EXPORTED_REF, git.text("rev-parse", "HEAD"))
                where = f"patch {position}/{len(patches)} {name}"
                _write_partial(git, f"apply stopped at {where}")
                before = {1: "no patch is applied", 2: "patch 1 is applied"}.get(
                    position, f"patches 1-{position - 1} are applied"
                )
                raise PatchError(
                    f"{where} does not apply to {pin.commit[:12]}:"
                    f" {_failed_file(lines)}; {before}: fix the patch (or"
                    " `rebase --onto` an upstream it fits) and run `apply` again"
                )
            result.applied.append(name)
            bar.update()
    git.run("update-ref", EXPORTED_REF, git.text("rev-parse", "HEAD"))
    clear_partial(git)
    result.overlay = copy_overlay(project, git)
    result.kept = head if discard and head and head != base else None
    if result.kept is None and head and head != base and _trees_differ(git, head):
        # patches/ changed since the work tree was made from it or exported: by hand,
        # or put back from the project's git, which may have dropped commits.
        log.warning(
            "apply: the work tree's files before this apply differ from patches/;"
            " its commits are kept at %s (`git -C %s log -p %s`)",
            PREVIOUS_REF,
            project.work_tree,
            PREVIOUS_REF,
        )
    return result


def _trees_differ(git: Git, commit: str) -> bool:
    return git.rev(f"{commit}^{{tree}}") != git.rev("HEAD^{tree}")


def _clear_interrupted_apply(project: Project, git: Git) -> None:
    """Give up what an `apply` killed midway left: its `git am` session, and files its
    checkout wrote in part. Those are stashed, not deleted: they may hold edits."""
    give_up_am(git)
    if git.run("status", "--porcelain", "--untracked-files=all").stdout.strip():
        message = "uncommitted changes that apply --discard found after an interruption"
        git.run("stash", "push", "--quiet", "--include-untracked", "-m", message)
        log.warning(
            "apply --discard: the uncommitted changes in %s are kept in its git"
            " stash (`git -C %s stash show -p` shows them)",
            project.work_tree,
            project.work_tree,
        )


def _write_partial(git: Git, why: str) -> None:
    write_json_atomic(git.git_dir / PARTIAL_RECORD, {"why": why})


def clear_partial(git: Git) -> None:
    (git.git_dir / PARTIAL_RECORD).unlink(missing_ok=True)


def partial_apply(project: Project) -> str | None:
    """Why the work tree holds only part of the series, or None when it is whole."""
    path = project.work_tree / ".git" / PARTIAL_RECORD
    if not path.is_file():
        return None
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["why"])
    except (ValueError, KeyError, TypeError):
        return "apply was interrupted"


def refuse_partial(project: Project, action: str) -> None:
    """Refuse to export a work tree that holds only the first patches of the series:
    written over patches/, it would drop the rest."""
    why = partial_apply(project)
    if why is not None:
        raise DirtyTreeError(
            f"{action}: the work tree holds only part of the series ({why}), and"
            " exporting it would drop the rest from patches/: fix the patch and run"
            " `apply` again (`apply --discard` if it names commits of yours);"
            " nothing was done"
        )


def refuse_other_base(project: Project, action: str) -> None:
    """Refuse when the work tree's series sits on another commit than the pin."""
    git = work_git(project)
    base = git.rev(BASE_REF) if (project.work_tree / ".git").is_dir() else None
    pin = project.load_pin()
    if base is not None and base != pin.commit:
        raise DirtyTreeError(
            f"{action}: the work tree's series is based on {base[:12]}, but"
            f" {PIN_FILE} pins {pin.commit[:12]}: run `apply` for the pin (or finish"
            " the rebase under way: `rebase --continue` or `rebase --abort`);"
            " nothing was done"
        )


@dataclass(frozen=True)
class Exported:
    names: list[str]
    files: dict[str, bytes]


def export_patches(project: Project) -> Exported:
    """The patch files the work tree's commits give, named as they were applied."""
    git = work_git(project)
    base = git.rev(BASE_REF) if (project.work_tree / ".git").is_dir() else None
    if base is None:
        raise NotAppliedError(
            "the work tree has no applied series: run `fetch` and `apply` first"
        )
    if am_in_progress(git):
        raise DirtyTreeError(
            "export: a `git am` is in progress: finish or abort it first"
        )
    merges = git.text("rev-list", "--merges", f"{base}..HEAD")
    if merges:
        raise ConfigError(
            f"export: commit {merges.split()[0][:12]} is a merge:"
            " keep the series linear"
        )
    commits = git.text("rev-list", "--reverse", f"{base}..HEAD").split()
    names: list[str] = []
    files: dict[str, bytes] = {}
    for commit in commits:
        # One commit a call: in a stream, the last patch would end differently.
        stream = git.run("format-patch", *FORMAT_PATCH_FLAGS, "-1", commit).stdout
        chunks = split_mbox(stream)
        if len(chunks) != 1:
            subject = git.text("log", "-1", "--format=%s", commit)
            raise ConfigError(
                f"export: commit {commit[:12]} ({subject!r}) changes nothing:"
                " drop it (`git rebase -i`) or give it a change"
            )
        data, name = take_filename_trailer(chunks[0])
        if name is not None and name_problem(name):
            raise ConfigError(
                f"export: commit {commit[:12]} has Patch-Filename: {name_problem(name)}"
            )
        try:
            info = parse_patch(data)
        except ValueError as error:
            raise ConfigError(f"export: commit {commit[:12]}: {error}") from None
        if name is None or name in files:
            name = slug_name(info.subject, set(files))
        names.append(name)
        files[name] = data
    return Exported(names, files)


@dataclass(frozen=True)
class Difference:
    name: str
    change: str  # "changed", "new", "removed", "order"


def compare(project: Project, exported: Exported) -> list[Difference]:
    """How the committed patches differ from a fresh export, patch by patch."""
    differences = []
    current = read_series(project) if project.series_file.is_file() else []
    for name in exported.names:
        path = project.patches_dir / name
        if not path.is_file():
            differences.append(Difference(name, "new"))
        elif path.read_bytes() != exported.files[name]:
            differences.append(Difference(name, "changed"))
    for name in current:
        if name not in exported.files:
            differences.append(Difference(name, "removed"))
    for path in sorted(project.patches_dir.glob("*.patch")):
        if path.name not in exported.files and path.name not in current:
            differences.append(Difference(path.name, "removed"))
    if not differences and current != exported.names:
        differences.append(Difference("series", "order"))
    return differences


def write_export(
    project: Project, exported: Exported, folder: Path | None = None
) -> None:
    """Write the exported patches and series into `folder` (default patches/)."""
    target = folder or project.patches_dir
    for name in exported.names:
        write_bytes_atomic(target / name, exported.files[name])
    if folder is None:
        for path in target.glob("*.patch"):
            if path.name not in exported.files:
                path.unlink()
        write_series(project, exported.names)
        git = work_git(project)
        head = git.rev("HEAD")
        if head:
            git.run("update-ref", EXPORTED_REF, head)
    else:
        text = "".join(f"{name}\n" for name in exported.names)
        write_bytes_atomic(target / "series", text.encode("utf-8"))


def refuse_unsaved_patch_edits(project: Project) -> None:
    """Refuse to overwrite patches/ while the project's git has uncommitted edits."""
    status = project_status(project, "patches")
    if status:
        first = status[0][3:]
        raise DirtyTreeError(
            f"export: patches/ has uncommitted edits ({first}):"
            " commit or discard them first, or use `export --check --output-dir DIR`"
            " to write elsewhere"
        )


def project_status(project: Project, *paths: str) -> list[str] | None:
    """`git status` entries of the project's own repository, None outside one.

    The project is the user's repository: it runs with the user's git configuration
    and attributes (LFS and other filters included), and the tooling writes nothing
    into its `.git`.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")
    }
    try:
        result = subprocess.run(
            [
                "git",
                "--no-optional-locks",
                "status",
                "--porcelain=v1",
                "-z",
                "--no-renames",
                "--untracked-files=all",
                "--",
                *paths,
            ],
            cwd=project.root,
            env=env,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    if result.returncode != 0:
        return None
    return nul_list(result.stdout)


@dataclass(frozen=True)
class PatchStatus:
    name: str
    subject: str
    upstream_status: str
    files: list[str]


@dataclass(frozen=True)
class Status:
    url: str
    commit: str
    tree: str
    license: str
    fingerprint: str
    patches: list[PatchStatus]
    # "absent", "not applied", "clean", "dirty", "partial" (an `apply` stopped part
    # of the way), "other base" (the series sits on another commit than the pin)
    work_tree: str
    head: str | None
    commits_after_base: int | None
    base: str | None = None
    note: str = ""


def status(project: Project) -> Status:
    pin = project.load_pin()
    patches = series_patches(project)
    described = []
    for name, data in patches:
        try:
            info = parse_patch(data)
        except ValueError as error:
            raise ConfigError(f"patches/{name}: {error}") from None
        upstream = info.trailers().get("Upstream-Status", ["(none)"])[-1]
        described.append(PatchStatus(name, info.subject, upstream, info.files))
    git = work_git(project)
    state, head, count, base, note = "absent", None, None, None, ""
    if (project.work_tree / ".git").is_dir():
        head = git.rev("HEAD")
        base = git.rev(BASE_REF)
        if base is None or head is None:
            state = "not applied"
        else:
            count = int(git.text("rev-list", "--count", f"{base}..HEAD"))
            state = "dirty" if dirty_paths(project) or am_in_progress(git) else "clean"
            partial = partial_apply(project)
            if rebase_under_way(project):
                note = "a rebase is under way: `rebase --continue`, --skip or --abort"
            elif base != pin.commit:
                state = "other base"
                note = (
                    f"the series is based on {base[:12]}, not on the pinned"
                    f" {pin.commit[:12]}: run `apply`"
                )
            elif partial is not None:
                state = "partial"
                note = f"{partial}: fix the patch and run `apply` again"
    return Status(
        url=pin.url,
        commit=pin.commit,
        tree=pin.tree,
        license=pin.license,
        fingerprint=fingerprint(patches),
        patches=described,
        work_tree=state,
        head=head,
        commits_after_base=count,
        base=base,
        note=note,
    )


def resolve_revision(project: Project, revision: str) -> str:
    """A commit id for `revision`: a tag, a branch of upstream, `latest`, or the id
    of a commit in the upstream's history. Names are looked up among the upstream's
    refs only: `HEAD`, `patched` or `HEAD~2` name commits of the work repository (the
    patched tree), never of the upstream, and are refused."""
    git = work_git(project)
    if revision == "latest":
        for candidate in (
            "refs/remotes/upstream/HEAD",
            "refs/remotes/upstream/main",
            "refs/remotes/upstream/master",
        ):
            commit = git.rev(f"{candidate}^{{commit}}")
            if commit:
                return commit
        if not git.text("for-each-ref", "--count=1", "refs/remotes/upstream/"):
            raise ConfigError("'latest': the upstream has no commits to pin")
        raise ConfigError(
            "'latest': the fetched upstream has no default branch (HEAD, main or"
            " master): name a branch, tag or commit instead"
        )
    # `HEAD` is the work tree's; the upstream's default branch is `latest`.
    if revision.startswith(("refs/tags/", "refs/remotes/upstream/")):
        candidates = [revision]
    elif revision not in ("", "HEAD") and not revision.startswith(("-", "refs/")):
        candidates = [f"refs/tags/{revision}", f"refs/remotes/upstream/{revision}"]
    else:
        candidates = []
    for candidate in candidates:
        if git.ok("check-ref-format", candidate):
            commit = git.rev(f"{candidate}^{{commit}}")
            if commit:
                return commit
    if HEX_ID.match(revision):
        commit = git.rev(f"{revision}^{{commit}}")
        if commit and _in_upstream(git, commit):
            return commit
        if commit:
            raise ConfigError(
                f"{revision!r} is a commit on no branch or tag of the upstream"
                " (a commit of the work tree?): give a tag, an upstream branch, the id"
                " of an upstream commit, or 'latest'"
            )
    elif not revision.startswith("-") and git.rev(f"{revision}^{{commit}}"):
        raise ConfigError(
            f"{revision!r} names a commit of the work repository, not of the"
            " upstream: give a tag, an upstream branch, the id of an upstream commit,"
            " or 'latest'"
        )
    raise ConfigError(f"{revision!r} names no commit of the fetched upstream")


def _in_upstream(git: Git, commit: str) -> bool:
    """Whether a branch or tag of the upstream holds `commit`, or it was fetched
    from the upstream by its id."""
    if git.rev(f"{FETCHED_PREFIX}{commit}") == commit:
        return True
    found = git.text(
        "for-each-ref",
        "--count=1",
        "--format=%(refname)",
        f"--contains={commit}",
        "refs/remotes/upstream/",
        "refs/tags/",
    )
    return bool(found)
