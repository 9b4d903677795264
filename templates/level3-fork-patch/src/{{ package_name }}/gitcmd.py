"""Every git call of the tooling, isolated from the user's and the machine's git config.

Patches must come out byte-identical on any machine and under any configuration, so no
git call here reads the system or global config or inherits `GIT_*` variables from the
environment: the settings that change what git writes are given on the command line, and
attributes come from one fixed file (no user `xfuncname`, no filters, no end-of-line
conversion). The work repository's own `.git/info/attributes` holds the same lines,
so an upstream's `.gitattributes` cannot change them either. Only repositories the
tooling owns get that file: `Git(..., fixed_attributes=False)` leaves a repository's
`info/attributes` alone (the project's own repository is the user's).

Calls that reach the upstream (`fetch`, `ls-remote`) are the exception: they read the
user's git config and git's network variables, so that whatever reaches the upstream
from a shell (a credential helper, `url.<base>.insteadOf`, a proxy, `core.sshCommand`,
`GIT_SSH_COMMAND`) reaches it here too. Nothing they do shapes a patch.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .atomic import write_text_atomic
from .errors import BlockedError, Error

# Highest-precedence attributes for every path: no conversions, no textconv or diff
# drivers, the built-in hunk headers.
FIXED_ATTRIBUTES = """\
* -text !eol !diff !filter !ident !working-tree-encoding !export-subst
"""

# Author and committer of everything the tooling commits itself.
TOOL_NAME = "fork-patch tooling"
TOOL_EMAIL = "fork-patch@localhost"

# `-c` settings for every call. Those that shape a patch override any config file.
CONFIG = {
    "core.autocrlf": "false",
    "core.safecrlf": "false",
    "core.eol": "lf",
    "core.abbrev": "40",
    "core.quotePath": "true",
    "core.fileMode": "true",
    "core.precomposeUnicode": "false",
    "core.hooksPath": os.devnull,
    "core.pager": "cat",
    "color.ui": "false",
    "commit.gpgSign": "false",
    "tag.gpgSign": "false",
    "diff.noprefix": "false",
    "diff.mnemonicPrefix": "false",
    "diff.algorithm": "myers",
    "diff.renames": "false",
    # Patches stay rename-free (a rename is a deletion and an addition), but a 3-way
    # merge follows a file upstream renamed: it would otherwise take `diff.renames`,
    # and a patch that deletes that file would pass for one upstream already has.
    "merge.renames": "true",
    "diff.relative": "false",
    "diff.context": "3",
    "diff.interHunkContext": "0",
    "diff.indentHeuristic": "true",
    "diff.suppressBlankEmpty": "false",
    "diff.orderFile": os.devnull,
    "format.signature": "",
    "format.numbered": "false",
    "format.thread": "false",
    "format.coverLetter": "false",
    "format.subjectPrefix": "PATCH",
    "am.keepCR": "true",
    "am.threeWay": "false",
    "am.messageId": "false",
    "mailinfo.scissors": "false",
    "apply.whitespace": "nowarn",
    "advice.detachedHead": "false",
    "gc.auto": "0",
    "init.defaultBranch": "main",
    "user.name": TOOL_NAME,
    "user.email": TOOL_EMAIL,
    "user.useConfigOnly": "false",
    "protocol.file.allow": "always",
    "i18n.commitEncoding": "UTF-8",
    "i18n.logOutputEncoding": "UTF-8",
}


log = logging.getLogger(__name__)


class GitError(Error):
    """A git command failed; the message quotes git's last line of complaint."""


class LockedRepositoryError(BlockedError):
    """A git lock file is in the way: left by a git that was killed, or held by a
    git running now. Only the user can tell which, so nothing deletes it."""


# How git refuses when another git holds (or a killed one left) a lock file.
LOCK_EXISTS = re.compile(r"Unable to create '(.+\.lock)': File exists")


# The variables a network call keeps: how to reach and log in to the upstream.
NETWORK_VARIABLES = (
    "GIT_CONFIG",  # which config files to read (GIT_CONFIG_GLOBAL, ...)
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSH_VARIANT",
    "GIT_ASKPASS",
    "GIT_PROXY_COMMAND",
    "GIT_SSL_",
    "GIT_HTTP_",
)
# A server that accepts the connection and then says nothing would hold a fetch for
# ever: over HTTP(S), git gives up after this many seconds below 1 byte a second.
STALLED_AFTER_S = "60"


def git_environment(
    extra: Mapping[str, str] | None = None, *, network: bool = False
) -> dict[str, str]:
    """The process environment less every GIT_* variable, plus isolation settings;
    for a `network` call, with the user's git config and network variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") or (network and key.startswith(NETWORK_VARIABLES))
    }
    if network:
        # A calling git's `-c` settings, passed down to hooks: not the user's config.
        env.pop("GIT_CONFIG_PARAMETERS", None)
        env.setdefault("GIT_HTTP_LOW_SPEED_LIMIT", "1")
        env.setdefault("GIT_HTTP_LOW_SPEED_TIME", STALLED_AFTER_S)
    else:
        env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})
        env.pop("XDG_CONFIG_HOME", None)
    env.update(
        {
            "GIT_ATTR_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_EDITOR": "true",
            "GIT_PAGER": "cat",
            "LC_ALL": "C",
            "LANG": "C",
            "LANGUAGE": "C",
            "TZ": "UTC",
        }
    )
    env.update(extra or {})
    return env


def attributes_file(git_dir: Path) -> Path:
    """The fixed attributes file of a repository, written if missing or changed."""
    path = git_dir / "info" / "attributes"
    if not path.is_file() or path.read_text(encoding="utf-8") != FIXED_ATTRIBUTES:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, FIXED_ATTRIBUTES)
    return path


class Git:
    """git in one repository (`cwd`), with the fixed configuration above."""

    def __init__(
        self, cwd: Path, git_dir: Path | None = None, *, fixed_attributes: bool = True
    ) -> None:
        self.cwd = cwd
        self.git_dir = git_dir if git_dir is not None else cwd / ".git"
        self.fixed_attributes = fixed_attributes

    def command(self, *args: str) -> list[str]:
        flags: list[str] = []
        for key, value in CONFIG.items():
            flags += ["-c", f"{key}={value}"]
        if self.fixed_attributes and self.git_dir.is_dir():
            flags += ["-c", f"core.attributesFile={attributes_file(self.git_dir)}"]
        return ["git", *flags, *args]

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        network: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        # The -c settings are the same for every call: --verbose shows the rest.
        log.debug("git %s (in %s)", " ".join(args), self.cwd)
        try:
            result = subprocess.run(
                self.command(*args),
                cwd=self.cwd,
                input=input,
                env=git_environment(env, network=network),
                capture_output=True,
                check=False,
            )
        except FileNotFoundError:
            raise GitError("git is not installed (or not on PATH)") from None
        if result.returncode != 0:
            # Before `check`: a caller that reads a failure as "the patch does not
            # apply" must not read a lock file that way.
            locked = LOCK_EXISTS.search(result.stderr.decode("utf-8", "replace"))
            if locked:
                raise LockedRepositoryError(
                    f"git {args[0]}: {locked.group(1)} exists: a git command was"
                    f" killed there, or one is running in {self.cwd} now; when none"
                    " is, delete the file and run the command again"
                )
        if check and result.returncode != 0:
            raise GitError(f"git {args[0]} failed: {last_line(result)}")
        return result

    def text(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """stdout of a git command that must succeed, decoded and stripped."""
        return self.run(*args, env=env).stdout.decode("utf-8", "replace").strip()

    def ok(self, *args: str) -> bool:
        """Whether a git command succeeds (for questions like `cat-file -e`)."""
        return self.run(*args, check=False).returncode == 0

    def rev(self, revision: str) -> str | None:
        """The object id `revision` names, or None when there is none."""
        result = self.run("rev-parse", "--verify", "--quiet", revision, check=False)
        return result.stdout.decode().strip() if result.returncode == 0 else None


def nul_list(data: bytes) -> list[str]:
    """The entries of NUL-separated git output (`-z`), decoded, none dropped or cut."""
    return [entry.decode("utf-8", "replace") for entry in data.split(b"\0") if entry]


def last_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The most telling line git printed: its last `error:`/`fatal:` line, or last."""
    lines = [
        line.strip()
        for line in (result.stderr + result.stdout)
        .decode("utf-8", "replace")
        .splitlines()
        if line.strip()
    ]
    for line in reversed(lines):
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else f"exit status {result.returncode}"


def complaints(result: subprocess.CompletedProcess[bytes]) -> str:
    """Every `fatal:`/`error:` line git printed, in order, joined: for a failed fetch
    the first one says why (not a repository, dubious ownership) and the last only
    that the remote could not be read."""
    lines = [
        line.strip()
        for line in result.stderr.decode("utf-8", "replace").splitlines()
        if line.strip().startswith(("fatal:", "error:"))
    ]
    return "; ".join(dict.fromkeys(lines)) if lines else last_line(result)


def output_lines(result: subprocess.CompletedProcess[bytes]) -> Sequence[str]:
    return (result.stdout + result.stderr).decode("utf-8", "replace").splitlines()
