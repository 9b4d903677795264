"""smoke: run the patched application's small render twice and check what it wrote.

upstream.toml's [smoke] table gives the command; in it `{python}` is this environment's
interpreter, `{project}` the project root, `{work_tree}` the patched upstream and
`{out}` the folder the run must write into. The run gets FORK_PROVENANCE, a JSON
object with the series fingerprint and the upstream commit, to record in its output
metadata (the example's provenance patch does that). The check: both runs succeed,
write byte-identical files, the metadata file holds only finite numbers, and it
records the provenance.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_json_atomic
from .errors import Error
from .progress import ProgressBar
from .project import Project, fingerprint, series_patches
from .worktree import (
    BASE_REF,
    DirtyTreeError,
    NotAppliedError,
    compare,
    dirty_paths,
    export_patches,
    work_git,
)

PROVENANCE_VARIABLE = "FORK_PROVENANCE"
TIMEOUT_S = 600


class SmokeError(Error):
    """The patched app failed its smoke render; the message says how."""


@dataclass(frozen=True)
class SmokeResult:
    out: Path
    files: dict[str, str]  # name -> sha256
    metadata: dict[str, Any]
    provenance: dict[str, Any]


def provenance(project: Project) -> dict[str, Any]:
    pin = project.load_pin()
    patches = series_patches(project)
    return {
        "series_fingerprint": fingerprint(patches),
        "upstream_commit": pin.commit,
        "upstream_url": pin.url,
        "patches": [name for name, _ in patches],
    }


def check_applied(project: Project) -> None:
    """The work tree must hold exactly the pin plus patches/ and the overlay."""
    pin = project.load_pin()
    git = work_git(project)
    if not (project.work_tree / ".git").is_dir() or git.rev(BASE_REF) != pin.commit:
        raise NotAppliedError(
            "the series is not applied to the pinned commit: run `fetch` and `apply`"
        )
    if dirty_paths(project):
        raise DirtyTreeError(
            "the work tree has uncommitted changes: commit and export, or re-apply"
        )
    if compare(project, export_patches(project)):
        raise DirtyTreeError(
            "the work tree's commits differ from patches/: `export` or `apply` first"
        )


def run_once(
    project: Project, command: Sequence[str], out: Path, env: dict[str, str]
) -> None:
    values = {
        "{python}": sys.executable,
        "{project}": str(project.root),
        "{work_tree}": str(project.work_tree),
        "{out}": str(out),
    }
    args = []
    for part in command:
        for field, value in values.items():
            part = part.replace(field, value)
        args.append(part)
    try:
        result = subprocess.run(
            args,
            cwd=project.work_tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise SmokeError(f"[smoke] command: {args[0]}: no such program") from None
    except subprocess.TimeoutExpired:
        raise SmokeError(f"the smoke render ran over {TIMEOUT_S} s") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise SmokeError(f"the patched app failed (exit {result.returncode}): {last}")


def _digests(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(
            path.read_bytes()
        ).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _refuse_constant(name: str) -> float:
    raise SmokeError(f"the run's metadata holds {name}: a value is not finite")


def smoke(
    project: Project, out: Path, runs: int = 2, *, progress: bool | None = False
) -> SmokeResult:
    """Run the render `runs` times into `out` and check it; `progress` is the bar's
    `enabled` (None: on a terminal), one step a run, since each may take minutes."""
    spec = project.load_smoke()
    check_applied(project)
    record = provenance(project)
    env = {
        **os.environ,
        PROVENANCE_VARIABLE: json.dumps(record, sort_keys=True),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(project.work_tree), os.environ.get("PYTHONPATH")])
        ),
        "PYTHONHASHSEED": "0",
        # Compiled modules go under .work/ rather than into the upstream's tree (where
        # git would see them), and are kept: the next render reuses them, 5 s less for
        # torch when it was installed without bytecode, as uv installs it.
        "PYTHONPYCACHEPREFIX": str(project.state_dir / "pycache"),
    }
    out.mkdir(parents=True, exist_ok=True)
    folders = []
    with ProgressBar(runs, "smoke", enabled=progress) as bar:
        for index in range(1, runs + 1):
            folder = out / f"run-{index}"
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir()
            bar.update(0, run=index)  # drawn at once: a run may take minutes
            run_once(project, spec.command, folder, env)
            folders.append(folder)
            bar.update()
    first = _digests(folders[0])
    if not first:
        raise SmokeError(f"the patched app wrote nothing into {folders[0]}")
    for folder in folders[1:]:
        other = _digests(folder)
        differing = sorted(
            name
            for name in set(first) | set(other)
            if first.get(name) != other.get(name)
        )
        if differing:
            raise SmokeError(
                f"two runs with the same seed differ in {', '.join(differing[:5])}:"
                " the render is not deterministic"
            )
    metadata_path = folders[0] / spec.metadata
    try:
        metadata = json.loads(
            metadata_path.read_text(encoding="utf-8"), parse_constant=_refuse_constant
        )
    except FileNotFoundError:
        raise SmokeError(f"the patched app wrote no {spec.metadata}") from None
    except json.JSONDecodeError as error:
        raise SmokeError(f"{spec.metadata} is not valid JSON: {error}") from None
    recorded = metadata.get("provenance") if isinstance(metadata, dict) else None
    if not isinstance(recorded, dict) or any(
        recorded.get(key) != record[key]
        for key in ("series_fingerprint", "upstream_commit")
    ):
        raise SmokeError(
            f"{spec.metadata} does not record the series fingerprint and upstream"
            f" commit under 'provenance'"
            f" (the app must copy ${PROVENANCE_VARIABLE} there)"
        )
    write_json_atomic(
        out / "smoke.json",
        {"provenance": record, "runs": runs, "files": first},
        sort_keys=True,
    )
    return SmokeResult(out, first, metadata, record)
