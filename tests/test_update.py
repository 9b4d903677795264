"""`copier update`, for real: a project made at template version A takes version B.

Each test builds its own template repository from the working tree, tags it 1.0.0,
renders a project, commits it as a user would, then changes the template (a shared
partial and a level file), tags 2.0.0 and updates the project.
"""

from __future__ import annotations

from pathlib import Path

import pathspec
import pytest
import yaml
from copier import run_copy, run_update

import levels
from conftest import LEVELS, copy_template, first_level_fast, fresh_venv, run, tool

MARKERS = ("<" * 7 + " ", ">" * 7 + " ")


def git(cwd: Path, *args: str) -> str:
    return run(["git", *args], cwd).stdout


def commit_all(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "--quiet", "-m", message)


@pytest.fixture
def template(tmp_path: Path) -> Path:
    src = copy_template(tmp_path / "template")
    git(src, "init", "--quiet")
    commit_all(src, "Template A")
    git(src, "tag", "1.0.0")
    return src


def make_project(template: Path, dst: Path, level: int = 1) -> Path:
    run_copy(str(template), dst, data={"level": level}, defaults=True, vcs_ref="1.0.0", quiet=True)
    git(dst, "init", "--quiet")
    commit_all(dst, "Start from ai-levels")
    return dst


def release_b(
    template: Path, level_folder: str = "level1-api-client", *, machinery: bool = True
) -> None:
    gitignore = template / "templates/_shared/common/.gitignore.jinja"
    gitignore.write_text(
        gitignore.read_text(encoding="utf-8").replace("htmlcov/\n", "htmlcov/\n*.prof\n"),
        encoding="utf-8",
    )
    if machinery:
        errors = template / "templates" / level_folder / "src/{{ package_name }}/_errors.py"
        errors.write_text(
            errors.read_text(encoding="utf-8")
            + '\n\nSUPPORT_URL = "https://example.org/support"\n',
            encoding="utf-8",
        )
    commit_all(template, "Template B")
    git(template, "tag", "2.0.0")


def update(project: Path, **data: object) -> None:
    run_update(project, data=data, defaults=True, overwrite=True, skip_answered=True, quiet=True)


def leftovers(project: Path) -> list[str]:
    found = [str(p.relative_to(project)) for p in project.rglob("*.rej")]
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts and ".venv" not in path.parts:
            text = path.read_text(encoding="utf-8", errors="replace")
            if any(line.startswith(MARKERS) for line in text.splitlines()):
                found.append(str(path.relative_to(project)))
    return found


@pytest.mark.slow
def test_update_keeps_user_edits_and_brings_template_changes(
    template: Path, tmp_path: Path
) -> None:
    project = make_project(template, tmp_path / "proj")
    package = project / "src" / "proj"
    # A user's edits: a changed README title, a new module, a line added to a
    # generated module.
    readme = project / "README.md"
    readme.write_text(
        readme.read_text(encoding="utf-8").replace("# proj\n", "# Proj, our speech client\n", 1),
        encoding="utf-8",
    )
    (package / "mine.py").write_text('GREETING = "kept"\n', encoding="utf-8")
    init = package / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + '\nUSER_EDIT = "kept"\n', encoding="utf-8")
    commit_all(project, "User edits")

    release_b(template)
    update(project)

    readme_text = readme.read_text(encoding="utf-8")
    assert readme_text.startswith("# Proj, our speech client\n")
    assert 'SUPPORT_URL = "https://example.org/support"' in (package / "_errors.py").read_text(
        encoding="utf-8"
    )
    assert "*.prof" in (project / ".gitignore").read_text(encoding="utf-8")
    assert (package / "mine.py").read_text(encoding="utf-8") == 'GREETING = "kept"\n'
    assert 'USER_EDIT = "kept"' in init.read_text(encoding="utf-8")
    assert "_commit: 2.0.0" in (project / ".copier-answers.yml").read_text(encoding="utf-8")
    assert leftovers(project) == []

    bin_dir = fresh_venv(project, 1)
    run([str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)


@pytest.mark.slow
def test_conflicting_edit_surfaces_as_markers_never_silent_loss(
    template: Path, tmp_path: Path
) -> None:
    project = make_project(template, tmp_path / "proj")
    gitignore = project / ".gitignore"
    gitignore.write_text(
        gitignore.read_text(encoding="utf-8").replace("htmlcov/\n", "htmlcov/\nmy-cache/\n"),
        encoding="utf-8",
    )
    commit_all(project, "User edit on the lines the template changes next")

    release_b(template)
    update(project)

    text = gitignore.read_text(encoding="utf-8")
    assert "my-cache/" in text  # the user's line is still there...
    assert "*.prof" in text  # ...beside the template's...
    assert leftovers(project) == [".gitignore"]  # ...inside conflict markers

    # The project's own pre-commit hook refuses the commit. Only the config's local
    # hooks are run: the others would clone their repositories from the network.
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    config["repos"] = [repo for repo in config["repos"] if repo["repo"] == "local"]
    local_config = tmp_path / "local-hooks.yaml"
    local_config.write_text(yaml.safe_dump(config), encoding="utf-8")
    git(project, "add", "-A")
    hook = run(
        [tool("pre-commit"), "run", "--config", str(local_config), "no-update-leftovers"],
        project,
        env={"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")},
        check=False,
    )
    assert hook.returncode == 1, hook.stdout
    assert ".gitignore:" in hook.stdout


@pytest.mark.parametrize("level", first_level_fast(LEVELS))
def test_changing_the_level_on_update_is_refused(
    template: Path, tmp_path: Path, level: int
) -> None:
    project = make_project(template, tmp_path / "proj", level)
    other = next(candidate for candidate in LEVELS if candidate != level)
    release_b(template)
    with pytest.raises(ValueError, match=f"created at level {level}") as refused:
        update(project, level=other)
    assert "fixed" in str(refused.value)
    assert git(project, "status", "--porcelain") == ""
    answers = (project / ".copier-answers.yml").read_text(encoding="utf-8")
    assert f"level: {level}" in answers
    assert "_commit: 1.0.0" in answers


@pytest.mark.slow
def test_update_at_the_same_level_with_explicit_answer_is_accepted(
    template: Path, tmp_path: Path
) -> None:
    project = make_project(template, tmp_path / "proj", 1)
    release_b(template)
    update(project, level=1)
    assert "_commit: 2.0.0" in (project / ".copier-answers.yml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_update_message_names_the_project(template: Path, tmp_path: Path) -> None:
    project = make_project(template, tmp_path / "proj")
    release_b(template)
    result = run([tool("copier"), "update", "--defaults", "--skip-answered"], project)
    assert 'Updating "proj".' in result.stdout + result.stderr


LEVELS_WITH_EXAMPLES = [level for level in LEVELS if levels.examples(level)]


@pytest.mark.parametrize("level", first_level_fast(LEVELS_WITH_EXAMPLES))
def test_replaced_examples_never_conflict_and_never_come_back(
    template: Path, tmp_path: Path, level: int
) -> None:
    """A user replaces the example content; the next release changes it and the machinery.

    The examples are the user's (copier.yml's `_exclude` on update): the
    update brings the machinery change, leaves the user's files as they are, and does not
    bring back an example the user deleted.
    """
    project = make_project(template, tmp_path / "proj", level)
    spec = pathspec_of(levels.examples(level))
    examples = sorted(
        path.relative_to(project)
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.parts and spec(path.relative_to(project))
    )
    assert examples, f"level {level} renders none of its examples"
    deleted, *edited = examples
    (project / deleted).unlink()
    for path in edited:
        (project / path).write_bytes((project / path).read_bytes() + b"\nthe user's own\n")
    commit_all(project, "Replace the examples with our own")

    folder = template / "templates" / levels.LEVELS[level]["folder"]
    for source in folder.rglob("*"):
        rendered = Path(str(source.relative_to(folder)).removesuffix(".jinja"))
        if source.is_file() and spec(rendered):
            source.write_bytes(source.read_bytes() + b"\nchanged by release B\n")
    release_b(template, levels.LEVELS[level]["folder"], machinery=level == 1)
    update(project)

    assert not (project / deleted).exists()
    for path in edited:
        text = (project / path).read_bytes()
        assert text.endswith(b"\nthe user's own\n"), path
        assert b"changed by release B" not in text, path
    assert "*.prof" in (project / ".gitignore").read_text(encoding="utf-8")
    assert leftovers(project) == []


def pathspec_of(patterns: list[str]):
    """Match a relative path against gitignore-style patterns, as Copier's _exclude does."""

    spec = pathspec.PathSpec.from_lines("gitignore", patterns)
    return lambda path: spec.match_file(str(path))
