"""Render every level, install it fresh, and run what a user runs first.

For each level, with default answers and with awkward ones: every TOML/YAML file
parses, nothing unfinished ships, and in a fresh virtual environment built from the
project's own pyproject.toml, `ruff check`, `ruff format --check`, `mypy` and the
command line's dialect check (tests/dialect_probe.py) pass. With default answers the
project's own pytest and its offline main job run too: awkward answers change names and
text, which rendering, linting, type-checking and importing the CLI already exercise.
"""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import levels
from conftest import (
    AWKWARD_ANSWERS,
    LEVELS,
    find_python,
    fresh_venv,
    render,
    run,
    tool,
    type_check,
)

DIALECT_PROBE = Path(__file__).with_name("dialect_probe.py")
UNFINISHED = re.compile(r"TODO|FIXME|XXX|NotImplementedError|placeholder", re.IGNORECASE)

ANSWER_SETS = {
    "defaults": {},
    "awkward": AWKWARD_ANSWERS,
}


def main_job(level: int) -> Callable[[Path, Path, dict], None]:
    """tests/main_jobs/levelN.py: `check(project, bin_dir, answers)` runs level N's main job
    and checks its results; a level without one gets the registry's command run as the
    README gives it, which must exit 0."""
    try:
        return importlib.import_module(f"main_jobs.level{level}").check
    except ModuleNotFoundError as error:
        if error.name != f"main_jobs.level{level}":
            raise
    command = levels.LEVELS[level]["main_job"].partition("#")[0].strip()

    def run_registry_command(project: Path, bin_dir: Path, answers: dict) -> None:
        package = answers["package_name"]
        line = command.replace("{cli}", package.replace("_", "-")).replace("{ENV}", package.upper())
        run(line.replace("uv run ", ""), project, env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})

    return run_registry_command


def test_every_level_has_a_main_job_check() -> None:
    for level in LEVELS:
        assert callable(main_job(level))


@pytest.mark.slow
@pytest.mark.parametrize("answer_set", sorted(ANSWER_SETS))
@pytest.mark.parametrize("level", LEVELS)
def test_generated_project_passes_its_own_checks(
    copier_template: Path, tmp_path: Path, level: int, answer_set: str
) -> None:
    project = render(copier_template, tmp_path / "proj", level, **ANSWER_SETS[answer_set])
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["level"] == answers["created_at_level"] == level

    files = [p for p in project.rglob("*") if p.is_file() and ".git" not in p.parts]
    for path in files:
        if path.suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        if path.suffix in {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ".cfg"}:
            unfinished = UNFINISHED.search(path.read_text(encoding="utf-8"))
            assert unfinished is None, f"{path.relative_to(project)}: {unfinished.group()}"

    readme = (project / "README.md").read_text(encoding="utf-8")
    prose = readme.split("```")[::2]  # outside code blocks
    assert not any("\n\n\n" in part for part in prose), "README has stray blank lines"
    yours = readme.split("## What is yours\n", 1)[1].split("\n## ", 1)[0]
    assert len(yours.strip()) > 80, "the README's 'What is yours' section is empty"

    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == answers["description"]
    assert pyproject["project"]["authors"][0]["name"] == answers["author_name"]

    assert (project / "src" / answers["package_name"] / "py.typed").is_file()

    bin_dir = fresh_venv(project, level)
    run([str(bin_dir / "ruff"), "check", "."], project)
    run([str(bin_dir / "ruff"), "format", "--check", "."], project)
    type_check(project, bin_dir)
    run([str(bin_dir / "python"), str(DIALECT_PROBE), answers["package_name"]], project)
    if answer_set == "defaults":
        run([str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
        main_job(level)(project, bin_dir, answers)


# Levels whose projects need torch stay on the suite's Python: the pinned CPU build of
# torch that test machines carry is for that interpreter only.
LEVELS_WITHOUT_TORCH = [level for level in LEVELS if not levels.needs_torch(level)]


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.10", "3.13"])
@pytest.mark.parametrize("level", LEVELS_WITHOUT_TORCH)
def test_generated_project_runs_on_the_oldest_and_newest_python(
    copier_template: Path, tmp_path: Path, level: int, version: str
) -> None:
    python = find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} installed here")
    answers = {"project_name": "edge-python", "python_min": "3.10"}
    project = render(copier_template, tmp_path / "proj", level, **answers)
    bin_dir = fresh_venv(project, level, python)
    run([str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    main_job(level)(project, bin_dir, {"package_name": "edge_python"})


# The longest package name the template takes (42 characters): imports of the package
# then no longer fit on one line, and ruff would rewrap them unless the template wrote
# them wrappable.
LONG_NAMES = {"project_name": "acme-speech-research-platform-client-tools"}


@pytest.mark.parametrize("level", LEVELS)
def test_a_long_package_name_still_lints_clean(
    copier_template: Path, tmp_path: Path, level: int
) -> None:
    project = render(copier_template, tmp_path / "proj", level, **LONG_NAMES)
    assert (project / "src" / "acme_speech_research_platform_client_tools").is_dir()
    run([tool("ruff"), "check", "--no-cache", "."], project)
    run([tool("ruff"), "format", "--no-cache", "--check", "."], project)
