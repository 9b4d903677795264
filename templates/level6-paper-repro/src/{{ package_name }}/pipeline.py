"""Skipping a step of `reproduce` whose inputs have not changed, as make would, by
content instead of dates.

A step is up to date when the sha256 of every input file, its options and the code
(provenance.code_hash) are those recorded when it last ran, and every output it wrote
is still there with the bytes it wrote. The record is runs/.steps.json (not committed:
a fresh clone runs every step once). Editing an output by hand reruns its step.

Why not DVC or Snakemake: the steps are six fixed Python functions run in one process,
their inputs are a few files known in advance, and the run folders already carry their
own provenance; a workflow engine would add a dependency, a second description of the
pipeline to keep in step with cli.py, and (DVC) a cache and git hooks, for what these
forty lines do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .atomic import write_json_atomic

STATE_FILE = ".steps.json"


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError):
        return None


def fingerprint(inputs: Iterable[Path], options: dict[str, Any]) -> str:
    """One sha256 for the inputs' contents (a missing file counts) and the options."""
    listing = {path.as_posix(): file_hash(path) for path in sorted(set(inputs))}
    text = json.dumps(
        {"inputs": listing, "options": options}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Steps:
    """The record of what each step last ran on and wrote, under the runs folder."""

    def __init__(self, root: Path) -> None:
        self.path = root / STATE_FILE
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            value = {}
        self.state: dict[str, Any] = value if isinstance(value, dict) else {}

    def up_to_date(self, step: str, key: str) -> bool:
        recorded = self.state.get(step)
        if not isinstance(recorded, dict) or recorded.get("key") != key:
            return False
        outputs = recorded.get("outputs")
        return isinstance(outputs, dict) and all(
            file_hash(Path(name)) == digest for name, digest in outputs.items()
        )

    def record(self, step: str, key: str, outputs: Iterable[Path]) -> None:
        self.state[step] = {
            "key": key,
            "outputs": {path.as_posix(): file_hash(path) for path in outputs},
        }
        write_json_atomic(self.path, self.state, sort_keys=True)

    def forget(self, step: str) -> None:
        if self.state.pop(step, None) is not None:
            write_json_atomic(self.path, self.state, sort_keys=True)
