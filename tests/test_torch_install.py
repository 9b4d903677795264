"""Installing a PyTorch level when PyTorch's own index cannot be reached.

The generated pyproject takes torch from download.pytorch.org for uv (`[tool.uv.sources]`),
so behind a proxy or with a mirror of PyPI only, `uv sync` and `uv run` stop there. The
README's way out is `UV_NO_SOURCES=1` (or `--no-sources`): uv then takes torch from the
ordinary index, like every other package. These tests make PyPI's index the only one that
answers, by pointing the project's PyTorch indexes at a port nothing listens on, and check
that the default route fails there while the documented one installs, runs and imports.

PyPI's Linux torch is the CUDA build, gigabytes. The folder of wheels the suite already
installs torch from (PIP_FIND_LINKS) stands in for PyPI's torch, and the project is held to
the suite's torch pin, so nothing large is downloaded; without such a folder the tests skip.

Every PyTorch level's pyproject takes these tables from one file
(templates/_jinja/torch_uv.toml.jinja): the first test checks that each level renders them
alike, and the two install routes then run on one level, the one with most dependencies.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

import levels
from conftest import TORCH_PIN, run, share_compiled_modules, tool

TORCH_LEVELS = [level for level in sorted(levels.LEVELS) if levels.needs_torch(level)]
UNREACHABLE = "http://127.0.0.1:9/whl"  # the discard port: connection refused at once
FIND_LINKS = os.environ.get("PIP_FIND_LINKS", "").split()

needs_find_links = pytest.mark.skipif(
    not FIND_LINKS,
    reason="needs PIP_FIND_LINKS, a folder holding the CPU torch wheel that stands in "
    "for PyPI's (PyPI's Linux torch is GBs of CUDA libraries)",
)


def torch_settings(project: Path) -> dict[str, object]:
    """What decides where a project's torch comes from: uv's tables, the `pytorch-index`
    extra, and the README's way round an unreachable PyTorch index."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    readme = (project / "README.md").read_text(encoding="utf-8")
    commands = re.search(r"```console\n[^`]*UV_NO_SOURCES=1[^`]*```", readme)
    return {
        "tool.uv": pyproject["tool"]["uv"],
        "extra": pyproject["project"]["optional-dependencies"]["pytorch-index"],
        "readme": commands.group() if commands else None,
    }


@pytest.fixture(scope="module")
def rendered(default_project: Callable[[int], Path]) -> dict[int, Path]:
    return {level: default_project(level) for level in TORCH_LEVELS}


def test_every_pytorch_level_takes_torch_from_the_same_settings(
    rendered: dict[int, Path],
) -> None:
    settings = {level: torch_settings(project) for level, project in rendered.items()}
    first = settings[TORCH_LEVELS[0]]
    assert first["readme"], "the README does not say how to install without PyTorch's index"
    for level, found in settings.items():
        assert found == first, f"level {level} takes torch differently from level {TORCH_LEVELS[0]}"


def most_dependencies(rendered: dict[int, Path]) -> int:
    """The PyTorch level whose install resolves the most packages besides torch."""

    def count(level: int) -> int:
        text = (rendered[level] / "pyproject.toml").read_text(encoding="utf-8")
        project = tomllib.loads(text)["project"]
        extras = project.get("optional-dependencies", {}).values()
        return len(project["dependencies"]) + sum(map(len, extras))

    return max(TORCH_LEVELS, key=count)


def own_copy(rendered: dict[int, Path], tmp_path: Path) -> Path:
    """A copy of the level with most dependencies, for a test to change."""
    return Path(shutil.copytree(rendered[most_dependencies(rendered)], tmp_path / "proj"))


def cut_off_pytorch_index(project: Path) -> None:
    """Point every PyTorch index of the project's pyproject at a dead address, and hold
    torch to the suite's pin so that uv picks the wheel folder's build."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    text, count = re.subn(r"https://download\.pytorch\.org/whl", UNREACHABLE, text)
    assert count >= 1, "the project names no PyTorch index"
    text += f'\n[tool.uv]\nconstraint-dependencies = ["{TORCH_PIN}"]\n'
    pyproject.write_text(text, encoding="utf-8")


def uv_env(**extra: str) -> dict[str, str]:
    return {
        "UV_FIND_LINKS": " ".join(FIND_LINKS),
        "UV_HTTP_RETRIES": "0",
        "UV_PYTHON_DOWNLOADS": "never",
        **extra,
    }


@pytest.mark.slow
@needs_find_links
def test_uv_with_no_sources_installs_and_runs_without_pytorchs_index(
    tmp_path: Path, rendered: dict[int, Path]
) -> None:
    project = own_copy(rendered, tmp_path)
    cut_off_pytorch_index(project)
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "UV_NO_SOURCES=1" in readme

    default = run([tool("uv"), "lock"], project, env=uv_env(), check=False)
    assert default.returncode != 0
    assert "127.0.0.1:9" in default.stderr

    no_sources = uv_env(UV_NO_SOURCES="1")
    run([tool("uv"), "sync"], project, env=no_sources)
    share_compiled_modules(project / ".venv")
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    assert "127.0.0.1" not in lock
    version = run(
        [tool("uv"), "run", "python", "-c", "import torch; print(torch.__version__)"],
        project,
        env=no_sources,
    ).stdout.strip()
    assert version.startswith(TORCH_PIN.split("==")[1]), version
    package = next(path.name for path in (project / "src").iterdir() if path.is_dir())
    run([tool("uv"), "run", "python", "-c", f"import {package}"], project, env=no_sources)
    run([tool("uv"), "run", "--no-sources", "pytest", "--co", "-q"], project, env=uv_env())


@pytest.mark.slow
@needs_find_links
def test_pip_without_the_index_url_line_resolves_from_the_plain_index(
    tmp_path: Path, rendered: dict[int, Path]
) -> None:
    project = own_copy(rendered, tmp_path)
    cut_off_pytorch_index(project)
    run([tool("uv"), "venv", "--quiet", "--seed", ".venv"], project)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(TORCH_PIN + "\n", encoding="utf-8")
    pip = [str(project / ".venv" / "bin" / "python"), "-m", "pip"]
    result = run(
        [*pip, "install", "--dry-run", "-e", ".", "--group", "dev"],
        project,
        env={"PIP_CONSTRAINT": str(constraints), "PIP_FIND_LINKS": " ".join(FIND_LINKS)},
    )
    assert re.search(r"Would install .*\btorch-2\.\d+\.\d+", result.stdout), result.stdout
