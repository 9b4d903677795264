"""What a run's result depends on, and whether a recorded run still stands for it.

A run is reused only when three things are as they were when it ran:

- its resolved config (config_hash),
- the code: every source file of this package plus the lock file, if any (code_sha256),
- its dataset: the sha256 that data/MANIFEST.sha256 lists for it, which every sweep
  checks the data against before anything runs (data_sha256).

Anything else is stale: `grid --resume` and `reproduce` run it again after moving the
old folder to runs/<grid>/.previous/ (never deleting it), `aggregate` leaves it out of
the summary, and `status` lists it with the reason. A damaged run, whose env.json or
metrics.json cannot be read (cut short by a kill or a full disk, edited by hand), is
treated the same way. No torch here: a `reproduce` with
nothing to do decides that in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import data
from .errors import ConfigError
from .grid import Run
from .records import ENV_FILE, METRICS_FILE, read_env, read_record

PACKAGE_DIR = Path(__file__).resolve().parent
LOCK_FILES = ("uv.lock", "pylock.toml", "requirements.lock")
ARCHIVE = ".previous"


def lock_file() -> dict[str, Any]:
    """The first lock file found in the project folder, with its sha256."""
    for name in LOCK_FILES:
        path = Path(name)
        if path.is_file():
            return {"file": name, "sha256": _sha256(path.read_bytes())}
    return {"file": None, "sha256": None}


def code_hash(package: Path = PACKAGE_DIR) -> str:
    """sha256 over the package's Python sources (path and bytes) and the lock file."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0")
        digest.update(_sha256(path.read_bytes()).encode("ascii") + b"\n")
    lock = lock_file()
    digest.update(f"lock {lock['file']} {lock['sha256']}\n".encode())
    return digest.hexdigest()


def data_hashes(runs: Sequence[Run], manifest: Path = data.MANIFEST) -> dict[str, str]:
    """The manifest's sha256 of every dataset the runs use."""
    entries = data.read_manifest(manifest)
    hashes = {}
    for name in sorted({run.config.data.name for run in runs}):
        if name not in entries:
            raise ConfigError(f"{manifest}: no sha256 for the dataset {name}")
        hashes[name] = entries[name]
    return hashes


def git_state() -> dict[str, Any]:
    """The git commit and whether tracked files differ from it (None outside git)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": commit,
        "git_dirty": None if commit is None or status is None else bool(status),
    }


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class RunState:
    run: Run
    state: str  # ok, stale, failed, damaged, unfinished or missing
    reasons: tuple[str, ...]  # why it is stale, failed, damaged or unfinished

    @property
    def reusable(self) -> bool:
        return self.state == "ok"


def run_state(run: Run, code: str, datasets: dict[str, str]) -> RunState:
    """Whether the run's folder holds a finished run of this config, code and data.
    An env.json or metrics.json that cannot be read makes the run damaged: rerun
    like an unfinished one, never reused or aggregated."""
    env, problem = read_record(run.run_dir / ENV_FILE)
    if problem is not None:
        return RunState(run, "damaged", (problem,))
    if env is None:
        state = "missing" if not run.run_dir.exists() else "unfinished"
        return RunState(run, state, () if state == "missing" else ("no env.json",))
    status = env.get("status")
    if status == "failed":
        return RunState(run, "failed", (str(env.get("error") or "failed"),))
    metrics, problem = (
        read_record(run.run_dir / METRICS_FILE) if status == "ok" else (None, None)
    )
    if problem is not None:
        return RunState(run, "damaged", (problem,))
    if metrics is None:
        return RunState(run, "unfinished", (f"status {status}, no metrics",))
    reasons = []
    if env.get("config_hash") != run.config_hash:
        reasons.append("config changed")
    if env.get("code_sha256") != code:
        reasons.append("code changed")
    if env.get("data_sha256") != datasets.get(run.config.data.name):
        reasons.append("data changed")
    return RunState(run, "stale" if reasons else "ok", tuple(reasons))


def states(runs: Sequence[Run], manifest: Path = data.MANIFEST) -> list[RunState]:
    code = code_hash()
    datasets = data_hashes(runs, manifest)
    return [run_state(run, code, datasets) for run in runs]


def archive(run: Run, state: str | None = None) -> Path | None:
    """Move a run's folder to runs/<grid>/.previous/..., never deleting it. The
    folder's name ends in the run's status, or `damaged` for a damaged run."""
    if not run.run_dir.exists():
        return None
    env = read_env(run.run_dir) or {}
    status = "damaged" if state == "damaged" else env.get("status", "unknown")
    tag = (
        f"{str(env.get('config_hash', 'unknown'))[:12]}-"
        f"{str(env.get('code_sha256', 'unknown'))[:12]}-{status}"
    )
    grid_dir = run.run_dir.parents[2]
    target = grid_dir / ARCHIVE / run.method / run.config_name / run.run_dir.name / tag
    suffix = 1
    while target.exists():
        suffix += 1
        target = target.with_name(f"{tag}-{suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run.run_dir), str(target))
    return target
