"""Compiled modules shared by the fresh virtual environments of one test run.

Every environment the tests make is new, so each would compile what its processes import:
about 5 s of CPU for torch alone, and the run makes more than a dozen such environments.
uv links each installed file from its cache, so a file of a package has the same size and
modification time in every environment, and those are what Python checks before it uses a
compiled module. A module compiled in one environment is therefore valid in the next;
where it is not (another version, a copied file), Python compiles it again as usual.

Only modules whose source is such a link (more than one name for the file) are shared:
files uv writes at install time, like an editable project's import hook, differ from one
environment to the next and keep their own compiled copy.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path


def site_packages(venv: Path) -> Path:
    (site,) = venv.glob("lib/python3.*/site-packages")
    return site


def _cache_tag(site: Path) -> str:
    major, minor = site.parent.name.removeprefix("python").split(".")
    return f"cpython-{major}{minor}"


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Already there (another worker was first), or another file system: left as it is.
    with suppress(OSError):
        os.link(source, target)


def link_into(store: Path, venv: Path) -> None:
    """Give `venv` the compiled modules `store` holds for its Python and its packages."""
    site = site_packages(venv)
    for compiled in store.rglob(f"*.{_cache_tag(site)}*.pyc"):
        target = site / compiled.relative_to(store)
        if target.parent.parent.is_dir() and not target.exists():
            _link(compiled, target)


def collect_from(venv: Path, store: Path) -> None:
    """Add to `store` what `venv`'s processes compiled from files linked from uv's cache."""
    site = site_packages(venv)
    for compiled in site.rglob("__pycache__/*.pyc"):
        source = compiled.parent.parent / (compiled.name.split(".", 1)[0] + ".py")
        target = store / compiled.relative_to(site)
        if not target.exists() and source.is_file() and source.stat().st_nlink > 1:
            _link(compiled, target)
