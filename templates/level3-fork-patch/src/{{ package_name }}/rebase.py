"""rebase --onto: move the series to a new upstream commit, 3-way merging where needed.

Each patch is tried strictly first (`clean`), then with `git am --3way`, which needs the
blobs of the old base: both bases are fetched. A patch whose changes upstream already
has leaves no commit (`empty_now_upstream`), as does one whose conflict was resolved to
upstream's own text; a `--skip`ped patch leaves none either. The first conflict stops
the rebase with the commands to continue or skip; the state waits in
`.work/rebase.json`. When every patch is through, the pin in upstream.toml moves to the
new commit and the series is re-exported: a patch that left no commit leaves the series,
and its old text is kept in `patches/.dropped/`, which the report and the command name.
`--abort` puts back the work tree as it was, overlay included.
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import write_bytes_atomic, write_json_atomic
from .commandline import PROG
from .errors import BlockedError, ConfigError, Error
from .gitcmd import Git, last_line, nul_list
from .progress import ProgressBar
from .project import DROPPED_DIR, Project, write_pin
from .worktree import (
    BASE_REF,
    BRANCH,
    PREVIOUS_REF,
    REBASE_STATE,
    DirtyTreeError,
    _failed_file,
    _remove_overlay_copies,
    am_in_progress,
    am_one,
    checked_patches,
    clear_partial,
    compare,
    copy_overlay,
    export_patches,
    fetch,
    give_up_am,
    partial_apply,
    read_state,
    refuse_if_dirty,
    resolve_revision,
    unexported_commits,
    work_git,
    write_export,
)

CLEAN = "clean"
THREE_WAY = "three_way"
CONFLICT = "conflict"
EMPTY = "empty_now_upstream"
SKIPPED = "skipped"
RESOLVED = "conflict_resolved"
NOT_TRIED = "not_tried"
STATE_FILE = REBASE_STATE
DEFAULT_REPORT = "rebase-report.json"
# Statuses of a patch that ends with no commit, so leaves the series.
LEAVES_SERIES = (EMPTY, SKIPPED)

log = logging.getLogger(__name__)


class RebaseStopped(Error):
    """A patch conflicts: the rebase ran up to it and waits; the message says what to
    do next. Exit 1, as `git rebase` gives: the command ran, and stopped."""


class RebaseBlocked(BlockedError):
    """A rebase waits for the user (started, or stopped at a conflict not yet
    resolved): nothing was done."""


@dataclass
class RebaseState:
    onto: str
    previous: str
    previous_head: str
    names: list[str]
    statuses: dict[str, str] = field(default_factory=dict)
    report: str = ""
    # The patch being tried and the commit before it: a rebase killed in the middle
    # of `git am` goes back there and tries the patch again.
    current: str = ""
    before: str = ""
    # The files of the conflict it stopped at, checked for markers at --continue.
    conflicted: list[str] = field(default_factory=list)
    # Set once every patch is through and the pin and patches/ start to change.
    finishing: bool = False
    # Set once the work tree is on `onto`. The state is saved before that, so a
    # kill while switching leaves a rebase to continue or abort, never a work tree
    # whose new upstream commits `export` would take for the user's. (A state saved
    # by a release before this field existed was saved after the switch.)
    switched: bool = True

    def save(self, project: Project) -> None:
        write_json_atomic(project.state_dir / STATE_FILE, self.__dict__, sort_keys=True)

    @classmethod
    def load(cls, project: Project) -> RebaseState:
        path = project.state_dir / STATE_FILE
        if not path.is_file():
            raise ConfigError("no rebase is in progress")
        # upstream.toml and patches/ change only once every patch is through.
        consequence = ", so the rebase cannot go on or be given up"
        return read_state(path, lambda data: cls(**data), consequence)


@dataclass(frozen=True)
class PatchOutcome:
    name: str
    status: str


@dataclass(frozen=True)
class Dropped:
    """A patch that left the series, why, and where its old text is kept."""

    name: str
    status: str
    kept: str  # relative to the project root; empty until the rebase has finished


@dataclass(frozen=True)
class RebaseReport:
    """What the JSON report holds: one status per patch, in series order."""

    previous: str
    onto: str
    finished: bool
    patches: list[PatchOutcome]
    dropped: list[Dropped]


def report_data(
    state: RebaseState, finished: bool, kept: dict[str, str] | None = None
) -> RebaseReport:
    kept = kept or {}
    return RebaseReport(
        previous=state.previous,
        onto=state.onto,
        finished=finished,
        patches=[
            PatchOutcome(name, state.statuses.get(name, NOT_TRIED))
            for name in state.names
        ],
        dropped=[
            Dropped(name, state.statuses[name], kept.get(name, ""))
            for name in state.names
            if state.statuses.get(name) in LEAVES_SERIES
        ],
    )


def _write_report(
    project: Project,
    state: RebaseState,
    finished: bool,
    kept: dict[str, str] | None = None,
) -> Path:
    path = Path(state.report) if state.report else project.state_dir / DEFAULT_REPORT
    write_json_atomic(path, asdict(report_data(state, finished, kept)))
    return path


def start(
    project: Project,
    revision: str,
    report: Path | None = None,
    *,
    progress: bool | None = False,
) -> RebaseReport:
    """Rebase the series onto `revision` (commit id, tag, upstream branch, `latest`).

    `progress` is the bar's `enabled`: None draws it on a terminal."""
    if (project.state_dir / STATE_FILE).is_file():
        raise RebaseBlocked(
            "a rebase is already in progress:"
            " `rebase --continue`, `--skip` or `--abort`"
        )
    pin = project.load_pin()
    git = work_git(project)
    if (project.work_tree / ".git").is_dir():
        refuse_if_dirty(project, "rebase")
        stopped = partial_apply(project)
        if stopped is not None and unexported_commits(project):
            # The series is applied only in part: its commits cannot be exported.
            raise DirtyTreeError(
                f"rebase: the work tree holds commits patches/ lacks on top of part of"
                f" the series ({stopped}): `apply --discard` drops them first"
            )
        if (
            stopped is None
            and git.rev(BASE_REF) is not None
            and compare(project, export_patches(project))
        ):
            raise DirtyTreeError(
                "rebase: the work tree's commits differ from patches/: run `export`"
                " to keep them, or `apply` to drop them, first"
            )
    fetch(project, revisions=(revision,) if _looks_like_id(revision) else ())
    onto = resolve_revision(project, revision)
    patches = checked_patches(project)
    state = RebaseState(
        onto=onto,
        previous=pin.commit,
        previous_head=git.rev("HEAD") or pin.commit,
        names=[name for name, _ in patches],
        report=str(report.resolve()) if report else "",
        switched=False,
    )
    state.save(project)
    _switch(project, git, state)
    return _run(project, state, dict(patches), progress)


def _switch(project: Project, git: Git, state: RebaseState) -> None:
    """Put the work tree on `onto`, the commits it held kept at PREVIOUS_REF."""
    _remove_overlay_copies(project, git)
    git.run("update-ref", PREVIOUS_REF, state.previous_head)
    git.run("checkout", "--quiet", "--force", "-B", BRANCH, state.onto)
    git.run("update-ref", BASE_REF, state.onto)
    state.switched = True
    state.save(project)


def _looks_like_id(revision: str) -> bool:
    return len(revision) >= 7 and all(c in "0123456789abcdef" for c in revision)


def _run(
    project: Project,
    state: RebaseState,
    data: dict[str, bytes],
    progress: bool | None,
) -> RebaseReport:
    git = work_git(project)
    with ProgressBar(len(state.names), "rebase", enabled=progress) as bar:
        bar.update(len(state.statuses))
        for position, name in enumerate(state.names, start=1):
            if name in state.statuses:
                continue
            _rebase_one(project, git, state, position, name, data[name])
            bar.update(last=state.statuses[name])
    return _finish(project, state)


def _rebase_one(
    project: Project,
    git: Git,
    state: RebaseState,
    position: int,
    name: str,
    data: bytes,
) -> None:
    before = git.rev("HEAD")
    state.current, state.before = name, before or ""
    state.save(project)
    ok, _ = am_one(git, name, data)
    if ok:
        state.statuses[name] = CLEAN
    else:
        git.run("am", "--abort", check=False)
        ok, lines = am_one(git, name, data, "--3way")
        if ok:
            state.statuses[name] = EMPTY if git.rev("HEAD") == before else THREE_WAY
        else:
            state.statuses[name] = CONFLICT
            state.conflicted = _unmerged(git)
            state.save(project)
            report = _write_report(project, state, finished=False)
            raise RebaseStopped(
                _instructions(project, git, name, position, state, lines, report)
            )
    log.debug("%d/%d %s: %s", position, len(state.names), name, state.statuses[name])
    state.save(project)


def _instructions(
    project: Project,
    git: Git,
    name: str,
    position: int,
    state: RebaseState,
    lines: list[str],
    report: Path,
) -> str:
    unmerged = _unmerged(git)
    where = project.work_tree
    in_work_tree = f"git -C {shlex.quote(str(where))}"
    if unmerged:
        files = ", ".join(unmerged)
        marked = [path for path in unmerged if _has_markers(where / path)]
    else:
        files, marked = _failed_file(lines), ["FILE"]
    steps = []
    if marked:
        add = " ".join(shlex.quote(path) for path in marked)
        steps.append(
            f"Resolve the conflict markers in {where},"
            f" then run `{in_work_tree} add {add}`"
        )
    # A file one side deleted (or renamed) and the other changed has no markers: the
    # choice is to keep it or to leave it out.
    for path in (path for path in unmerged if path not in marked):
        quoted = shlex.quote(path)
        steps.append(
            f"{path} has no markers, as one side deleted or renamed it: keep it with"
            f" `{in_work_tree} add {quoted}` or leave it out with"
            f" `{in_work_tree} rm {quoted}`"
        )
    return (
        f"patch {position}/{len(state.names)} {name} conflicts with"
        f" {state.onto[:12]} in {files}. {'; '.join(steps)};"
        f" then `{PROG} rebase --continue`;"
        f" or drop this patch with `{PROG} rebase --skip`; or give up with"
        f" `{PROG} rebase --abort`. Report so far: {report}"
    )


def _has_markers(path: Path) -> bool:
    return path.is_file() and b"\n<<<<<<< " in b"\n" + path.read_bytes()


def _unmerged(git: Git) -> list[str]:
    paths = nul_list(git.run("diff", "--name-only", "-z", "--diff-filter=U").stdout)
    return list(dict.fromkeys(paths))


def proceed(
    project: Project, action: str, *, progress: bool | None = False
) -> RebaseReport:
    """`--continue` (after resolving) or `--skip` the patch the rebase stopped at.

    A conflict resolved to upstream's own text leaves nothing to commit: `--continue`
    then records the patch as empty_now_upstream, as a clean run would have.
    """
    state = RebaseState.load(project)
    git = work_git(project)
    stopped = next((n for n in state.names if state.statuses.get(n) == CONFLICT), None)
    if stopped is None:
        return _resume(project, git, state, action, progress)
    status = SKIPPED if action == "skip" else RESOLVED
    if am_in_progress(git):
        unmerged = _unmerged(git)
        if action == "continue" and unmerged:
            raise RebaseBlocked(
                f"rebase --continue: {stopped} is not finished (unresolved:"
                f" {', '.join(unmerged)}): resolve, `git add`, then try again"
            )
        marked = _marked(git, state.conflicted) if action == "continue" else []
        if marked:
            raise RebaseBlocked(
                f"rebase --continue: {stopped} is not finished: conflict markers are"
                f" left in {', '.join(marked)}: resolve them, `git add`, then try"
                " again"
            )
        if action == "continue" and git.ok("diff", "--cached", "--quiet", "HEAD"):
            action, status = "skip", EMPTY
        result = git.run("am", f"--{action}", check=False)
        if result.returncode != 0:
            raise RebaseBlocked(
                f"rebase --{action}: {stopped} is not finished"
                f" ({last_line(result)}): resolve, `git add`, then try again"
            )
    state.statuses[stopped] = status
    state.save(project)
    data = dict(checked_patches(project))
    return _run(project, state, data, progress)


def _resume(
    project: Project,
    git: Git,
    state: RebaseState,
    action: str,
    progress: bool | None,
) -> RebaseReport:
    """Go on with a rebase that was interrupted (a kill, Ctrl-C) rather than stopped
    at a conflict: the patch it was trying is tried again from where it started."""
    if action == "skip":
        raise RebaseBlocked(
            "rebase --skip: no patch stopped at a conflict (the rebase was"
            " interrupted): `rebase --continue` goes on where it was, `rebase --abort`"
            " gives it up"
        )
    give_up_am(git)
    if not state.switched:
        _switch(project, git, state)
    elif state.current and state.current not in state.statuses and state.before:
        git.run("reset", "--quiet", "--hard", state.before)
    log.info("rebase: resuming an interrupted rebase onto %s", state.onto[:12])
    data = dict(checked_patches(project))
    return _run(project, state, data, progress)


def _marked(git: Git, paths: list[str]) -> list[str]:
    """Which of `paths` (all staged files when empty) still hold conflict markers in
    what is staged: `diff --check` names each leftover marker line."""
    result = git.run("diff", "--cached", "--check", "HEAD", "--", *paths, check=False)
    found = []
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        match = re.match(r"^(.+):\d+: leftover conflict marker$", line)
        if match:
            found.append(match.group(1))
    return list(dict.fromkeys(found))


def abort(project: Project) -> None:
    """Give the rebase up: back to the previous pin and work tree commits."""
    state = RebaseState.load(project)
    git = work_git(project)
    give_up_am(git)
    git.run("checkout", "--quiet", "--force", "-B", BRANCH, state.previous_head)
    git.run("update-ref", BASE_REF, state.previous)
    _remove_overlay_copies(project, git)
    copy_overlay(project, git)
    if state.finishing:
        # Interrupted while writing the result: put the pin and patches/ back too.
        # The work tree's commits are what patches/ held when the rebase started.
        if project.load_pin().commit != state.previous:
            tree = git.text("rev-parse", f"{state.previous}^{{tree}}")
            write_pin(project.pin_file, commit=state.previous, tree=tree)
        if not partial_apply(project):
            exported = export_patches(project)
            if compare(project, exported):
                write_export(project, exported)
    (project.state_dir / STATE_FILE).unlink()


def keep_dropped(project: Project, names: list[str]) -> dict[str, str]:
    """Copy each patch file in `names` into patches/.dropped/; name -> where it went."""
    kept: dict[str, str] = {}
    folder = project.patches_dir / DROPPED_DIR
    for name in names:
        source = project.patches_dir / name
        if not source.is_file():
            continue
        data = source.read_bytes()
        target, counter = folder / name, 2
        while target.exists() and target.read_bytes() != data:
            target, counter = folder / f"{name}.{counter}", counter + 1
        write_bytes_atomic(target, data)
        kept[name] = target.relative_to(project.root).as_posix()
    return kept


def _finish(project: Project, state: RebaseState) -> RebaseReport:
    """Write the result: the series re-exported first, the pin moved last, so that
    an interrupted finish never leaves the new pin over the old patches."""
    git = work_git(project)
    state.finishing = True
    state.save(project)
    _remove_overlay_copies(project, git)
    copy_overlay(project, git)
    tree = git.text("rev-parse", f"{state.onto}^{{tree}}")
    leaving = [n for n in state.names if state.statuses.get(n) in LEAVES_SERIES]
    kept = keep_dropped(project, leaving)
    write_export(project, export_patches(project))
    write_pin(project.pin_file, commit=state.onto, tree=tree)
    clear_partial(git)
    (project.state_dir / STATE_FILE).unlink()
    _write_report(project, state, finished=True, kept=kept)
    return report_data(state, finished=True, kept=kept)
