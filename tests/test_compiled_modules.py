"""The pool of compiled modules shares only what is the same in every environment."""

from __future__ import annotations

import os
from pathlib import Path

import compiled_modules


def environment(root: Path, python: str = "python3.11") -> Path:
    venv = root / ".venv"
    (venv / "lib" / python / "site-packages").mkdir(parents=True)
    return venv


def add_module(site: Path, relative: str, *, from_cache: Path | None, tag: str) -> Path:
    """A module's source (a link to `from_cache` as uv makes, or a file of its own) and
    the module Python compiled from it."""
    source = site / relative
    source.parent.mkdir(parents=True, exist_ok=True)
    if from_cache is None:
        source.write_text("MAPPING = {'proj': '/this/environment/src'}\n", encoding="utf-8")
    else:
        os.link(from_cache, source)
    compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
    compiled.parent.mkdir(exist_ok=True)
    compiled.write_bytes(b"compiled " + relative.encode())
    return compiled


def test_only_modules_of_files_linked_from_uvs_cache_are_pooled_and_handed_on(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "uv-cache" / "functional.py"
    cache.parent.mkdir()
    cache.write_text("def relu(x): return x\n", encoding="utf-8")
    pool = tmp_path / "pool"

    first = environment(tmp_path / "first")
    site = compiled_modules.site_packages(first)
    add_module(site, "torch/nn/functional.py", from_cache=cache, tag="cpython-311")
    # Written by uv at install time, different in each environment: never shared.
    add_module(site, "__editable___proj_finder.py", from_cache=None, tag="cpython-311")
    compiled_modules.collect_from(first, pool)
    pooled = sorted(path.relative_to(pool).as_posix() for path in pool.rglob("*.pyc"))
    assert pooled == ["torch/nn/__pycache__/functional.cpython-311.pyc"]

    second = environment(tmp_path / "second")
    second_site = compiled_modules.site_packages(second)
    (second_site / "torch" / "nn").mkdir(parents=True)
    compiled_modules.link_into(pool, second)
    handed = second_site / "torch/nn/__pycache__/functional.cpython-311.pyc"
    assert handed.read_bytes() == b"compiled torch/nn/functional.py"
    assert not list(second_site.glob("__pycache__/*"))

    # Another Python, or an environment without the package, gets nothing.
    other_python = environment(tmp_path / "other", "python3.10")
    other_site = compiled_modules.site_packages(other_python)
    (other_site / "torch" / "nn").mkdir(parents=True)
    without_torch = environment(tmp_path / "without")
    compiled_modules.link_into(pool, other_python)
    compiled_modules.link_into(pool, without_torch)
    assert not list(other_site.rglob("*.pyc"))
    assert not list(compiled_modules.site_packages(without_torch).rglob("*.pyc"))


def test_a_module_already_compiled_in_the_environment_is_left_as_it_is(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache.py"
    cache.write_text("X = 1\n", encoding="utf-8")
    pool = tmp_path / "pool"
    first = environment(tmp_path / "first")
    add_module(
        compiled_modules.site_packages(first), "pkg/m.py", from_cache=cache, tag="cpython-311"
    )
    compiled_modules.collect_from(first, pool)

    second = environment(tmp_path / "second")
    own = add_module(
        compiled_modules.site_packages(second), "pkg/m.py", from_cache=cache, tag="cpython-311"
    )
    own.write_bytes(b"compiled here")
    compiled_modules.link_into(pool, second)
    assert own.read_bytes() == b"compiled here"
    compiled_modules.collect_from(second, pool)  # the pool keeps the first it was given
    assert (pool / "pkg/__pycache__/m.cpython-311.pyc").read_bytes() == b"compiled pkg/m.py"
