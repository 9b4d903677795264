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
import yaml

REPO = Path(__file__).resolve().parent.parent
REGISTRY = "templates/_jinja/levels.jinja"


def _module(name: str) -> Any:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(REPO)).get_template(name).module


def registry() -> dict[int, dict[str, Any]]:
    """Level number -> its entry: folder, label, title, main_job, imports, torch, ..."""
    return dict(_module(REGISTRY).levels)


LEVELS = registry()


def examples(level: int) -> list[str]:
    """Level `level`'s example content: the patterns copier.yml's `_exclude` adds on update.

    copier.yml is their one source (Copier renders that list against older releases too,
    so it cannot import this registry); this renders it as Copier does on `copier update`.
    """
    config = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(REPO))
    on_update_only = [pattern for pattern in config["_exclude"] if "_copier_operation" in pattern]
    return [
        line
        for pattern in on_update_only
        for line in environment.from_string(pattern)
        .render(level=level, _copier_operation="update")
        .splitlines()
        if line
    ]


def needs_torch(level: int) -> bool:
    return bool(LEVELS[level]["torch"])


def folder(level: int) -> Path:
    return REPO / "templates" / LEVELS[level]["folder"]


if __name__ == "__main__":
    if sys.argv[1:] != ["matrix"]:
        sys.exit("usage: python tests/levels.py matrix")
    print(json.dumps(["none", *map(str, sorted(LEVELS))]))
