"""Run history: each `eval` keeps its reports in `<output>/runs/<run>/`, and copies
them to `<output>/` as the latest, so `compare` can name any two runs."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from . import jsonvalue
from .configfile import display_path, not_a_file
from .errors import ConfigError
from .results import cell_key

RUNS = "runs"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_run_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"--name {name!r}: use letters, digits, '.', '_' and '-', starting with a"
            " letter or digit"
        )
    return name


def new_run_dir(output_dir: Path, name: str | None, now: datetime) -> Path:
    """A folder for this run that no earlier run has: the name if given, else the
    time; `-2`, `-3` ... when it is taken."""
    runs = output_dir / RUNS
    base = name or now.strftime("%Y%m%d-%H%M%S")
    candidate, number = runs / base, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            number += 1
            candidate = runs / f"{base}-{number}"


def list_runs(output_dir: Path) -> list[Path]:
    """Kept runs, oldest first (by the time their results were written)."""
    runs = [p for p in (output_dir / RUNS).glob("*/results.json") if p.is_file()]
    return [
        p.parent
        for p in sorted(runs, key=lambda p: (p.stat().st_mtime_ns, p.parent.name))
    ]


def resolve_results(reference: str, output_dir: Path) -> Path:
    """A results.json from a path to one, a run folder, a run name, or `latest`."""
    kept = list_runs(output_dir)
    if reference == "latest":
        if not kept:
            raise ConfigError(f"no runs kept in {display_path(output_dir / RUNS)} yet")
        return kept[-1] / "results.json"
    path = Path(reference)
    if path.suffix == ".json":
        problem = not_a_file(path)
        if problem:
            raise ConfigError(f"{reference}: {problem}")
        return path
    for folder in (path, output_dir / RUNS / reference):
        if (folder / "results.json").is_file():
            return folder / "results.json"
    names = ", ".join(p.name for p in kept[-8:]) or "none yet"
    if path.is_dir():
        problem = "a folder with no results.json in it"
    elif path.exists():
        problem = "not a results.json nor a run"
    else:
        problem = "no such run and no such file"
    raise ConfigError(
        f"{reference}: {problem} (runs in {display_path(output_dir / RUNS)}: {names})"
    )


def previous_run(
    output_dir: Path, current: Path, cells: set[tuple[str, str, str, str]]
) -> tuple[Path, list[dict[str, Any]]] | None:
    """The latest earlier run that ran any of these cells (suite, case, prompt,
    provider), and its results, read once: a run on other providers or suites has
    nothing to compare with."""
    earlier = [p for p in list_runs(output_dir) if p != current]
    for run_dir in reversed(earlier[-20:]):
        try:
            document = jsonvalue.loads(
                (run_dir / "results.json").read_text(encoding="utf-8")
            )
            results = document["results"]
            if isinstance(results, list) and cells & {cell_key(r) for r in results}:
                return run_dir, results
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged run is no baseline
    return None
