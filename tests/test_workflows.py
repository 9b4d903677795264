"""GitHub Actions workflows, generated and our own: actionlint-valid and zizmor-clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import AWKWARD_ANSWERS, LEVELS, REPO, render, run, tool


def lint_workflows(folder: Path) -> None:
    workflows = sorted(str(p) for p in folder.glob("*.yml"))
    assert workflows
    run([tool("actionlint"), "-no-color", *workflows], folder)
    run([tool("zizmor"), "--offline", "--no-progress", *workflows], folder)


@pytest.mark.parametrize("level", LEVELS)
def test_generated_workflows_pass_actionlint_and_zizmor(
    copier_template: Path, tmp_path: Path, level: int
) -> None:
    project = render(copier_template, tmp_path / "proj", level, **AWKWARD_ANSWERS)
    names = {p.name for p in (project / ".github/workflows").glob("*.yml")}
    assert {"ci.yml", "template-update.yml"} <= names
    lint_workflows(project / ".github/workflows")


def test_template_repository_workflows_pass_actionlint_and_zizmor() -> None:
    lint_workflows(REPO / ".github/workflows")
