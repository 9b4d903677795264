"""The pool of mypy caches hands on the largest cache for each target Python, and never
overwrites a project's own."""

from __future__ import annotations

from pathlib import Path

import mypy_cache


def project_with_cache(root: Path, **databases: bytes) -> Path:
    """A project whose .mypy_cache holds one database per target Python (`v3_11=...`)."""
    for version, content in databases.items():
        folder = root / ".mypy_cache" / version.removeprefix("v").replace("_", ".")
        folder.mkdir(parents=True)
        (folder / "cache.0.db").write_bytes(content)
    return root


def database(project: Path, version: str) -> bytes:
    return (project / ".mypy_cache" / version / "cache.0.db").read_bytes()


def test_the_largest_cache_for_each_python_is_handed_on(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    mypy_cache.offer(project_with_cache(tmp_path / "a", v3_11=b"torch" * 100), pool)
    mypy_cache.offer(project_with_cache(tmp_path / "b", v3_11=b"httpx"), pool)
    mypy_cache.offer(project_with_cache(tmp_path / "c", v3_10=b"3.10 only"), pool)

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    mypy_cache.seed(pool, fresh)
    assert database(fresh, "3.11") == b"torch" * 100
    assert database(fresh, "3.10") == b"3.10 only"

    mypy_cache.offer(project_with_cache(tmp_path / "d", v3_11=b"torch+mpl" * 100), pool)
    later = tmp_path / "later"
    later.mkdir()
    mypy_cache.seed(pool, later)
    assert database(later, "3.11") == b"torch+mpl" * 100
    # No half-made copy is ever in sight of a reader.
    assert not list(pool.glob("*/.*"))


def test_a_project_with_a_cache_of_its_own_keeps_it(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    mypy_cache.offer(project_with_cache(tmp_path / "a", v3_11=b"torch" * 100), pool)
    own = project_with_cache(tmp_path / "own", v3_11=b"mine")
    mypy_cache.seed(pool, own)
    assert database(own, "3.11") == b"mine"


def test_an_empty_pool_seeds_nothing(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    mypy_cache.seed(tmp_path / "pool", project)
    mypy_cache.offer(project, tmp_path / "pool")
    assert not (project / ".mypy_cache").exists()
    assert not (tmp_path / "pool").exists()
