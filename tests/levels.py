"""The level registry (templates/_jinja/levels.jinja), read as Copier reads it.

The template's tests import it, and the template's CI runs it to build its job matrix:
`python tests/levels.py matrix` prints the JSON list of jobs, one per level plus "none".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jinja2

REPO = Path(__file__).resolve().parent.parent
REGISTRY = "templates/_jinja/levels.jinja"


def _module(name: str) -> Any:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(REPO)).get_template(name).module


def registry() -> dict[int, dict[str, Any]]:
    """Level number -> its entry: folder, label, title, main_job, imports, torch, ..."""
    return dict(_module(REGISTRY).levels)


LEVELS = registry()


def needs_torch(level: int) -> bool:
    return bool(LEVELS[level]["torch"])


def folder(level: int) -> Path:
    return REPO / "templates" / LEVELS[level]["folder"]


if __name__ == "__main__":
    if sys.argv[1:] != ["matrix"]:
        sys.exit("usage: python tests/levels.py matrix")
    print(json.dumps(["none", *map(str, sorted(LEVELS))]))
