"""A project made by any published release updates to this one, with its user's edits.

The releases are the real commits CHANGELOG.md names, not synthetic ones: each test renders
a project at a published release (tagged here, in a clone of this repository, as the
release tag), makes the edits a user makes, runs a plain `copier update` to the working
tree (tagged as the unreleased version) and checks that the update ran, the edits survived,
nothing conflicted, the project's lint passes and its tests import; its in-process tests run
on the update from each level's oldest release.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from copier import run_copy

import levels
import releases
from conftest import REPO, copy_template, fresh_venv, run, tool
from test_update import MARKERS, commit_all, git, leftovers, pathspec_of

CASES = [
    pytest.param(release, level, id=f"{release.version}-level{level}")
    for release in releases.published()
    if releases.missing_commit_message(release) is None
    for level in releases.levels_at(release)
]

USER_FUNCTION = '\n\ndef user_helper() -> str:\n    """Added by the user."""\n    return "kept"\n'
USER_MODULE = '"""The user\'s own module."""\n\nGREETING = "kept"\n'
USER_README_LINE = "Our team's notes on this project: kept across updates."


def test_every_published_release_is_in_this_clone() -> None:
    missing = [releases.missing_commit_message(release) for release in releases.published()]
    assert not any(missing), "\n".join(filter(None, missing))


def test_the_changelog_lists_releases_newest_first_with_one_unreleased_on_top() -> None:
    every = releases.all_releases()
    assert every[0] == releases.upcoming()
    assert [release.commit is None for release in every].count(True) == 1
    keys = [releases.version_key(release.version) for release in every]
    assert keys == sorted(keys, reverse=True), "CHANGELOG.md's sections are out of order"
    assert releases.published(), "no published release to update from"


@pytest.fixture(scope="session")
def release_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository: every published release tagged at its commit, and the
    working tree committed on top as the unreleased version."""
    clone = tmp_path_factory.mktemp("releases") / "ai-levels"
    run(["git", "clone", "--quiet", "--no-checkout", str(REPO), str(clone)], REPO)
    git(clone, "checkout", "--quiet", "HEAD")
    for release in releases.published():
        git(clone, "tag", "--force", release.tag, release.commit)  # a clone may carry it
    copy_template(clone)
    # Empty when the working tree is clean, as in CI: the tag still names the tree.
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "--allow-empty", "-m", "The working tree, as the release")
    git(clone, "tag", "--force", releases.upcoming().tag)
    return clone


def write_as_a_user(project: Path, package: str) -> None:
    """The user's own writing: a README line, a new module, a function added to an
    existing module."""
    readme = project / "README.md"
    title, rest = readme.read_text(encoding="utf-8").split("\n", 1)
    readme.write_text(f"{title}\n\n{USER_README_LINE}\n{rest}", encoding="utf-8")
    (project / "src" / package / "mine.py").write_text(USER_MODULE, encoding="utf-8")
    init = project / "src" / package / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + USER_FUNCTION, encoding="utf-8")


def files_of(project: Path, level: int) -> tuple[dict[Path, bytes], list[Path]]:
    """The project's files outside .git: the contents of those that are not examples, and
    the paths of the examples."""
    is_example = pathspec_of(levels.examples(level))
    contents, examples = {}, []
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if not path.is_file() or ".git" in relative.parts:
            continue
        if is_example(relative):
            examples.append(relative)
        else:
            contents[relative] = path.read_bytes()
    return contents, examples


def edit_as_a_user(project: Path, package: str, level: int) -> list[Path]:
    """The edits a user makes: their own writing (write_as_a_user), and an example deleted
    together with the tests of the examples (which would fail without it). Returns the
    deleted files."""
    write_as_a_user(project, package)
    _, examples = files_of(project, level)
    tests_of_examples = [path for path in examples if path.parts[0] == "tests"]
    content = [path for path in examples if path.parts[0] != "tests"]
    deleted = content[:1] + tests_of_examples if content else []
    for path in deleted:
        (project / path).unlink()
    return deleted


@pytest.mark.slow
@pytest.mark.parametrize(("release", "level"), CASES)
def test_a_project_from_a_published_release_updates_with_its_edits_kept(
    release_template: Path, tmp_path: Path, release: releases.Release, level: int
) -> None:
    project = tmp_path / "proj"
    run_copy(
        str(release_template),
        project,
        data={"level": level},
        defaults=True,
        vcs_ref=release.tag,
        unsafe=False,
        quiet=True,
    )
    answers_file = project / ".copier-answers.yml"
    assert f"_commit: {release.tag}" in answers_file.read_text(encoding="utf-8")
    git(project, "init", "--quiet")
    commit_all(project, "Start from ai-levels")
    deleted = edit_as_a_user(project, "proj", level)
    assert deleted or not levels.examples(level), "the user deleted no example"
    commit_all(project, "Our edits")

    # Plain `copier update`, as the README and the project's own workflow run it.
    result = run([tool("copier"), "update", "--defaults", "--skip-answered"], project)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output

    answers = yaml.safe_load(answers_file.read_text(encoding="utf-8"))
    assert answers["_commit"] == releases.upcoming().tag
    assert answers["level"] == answers["created_at_level"] == level
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert f"\n{USER_README_LINE}\n" in readme
    assert (project / "src/proj/mine.py").read_text(encoding="utf-8") == USER_MODULE
    init = (project / "src/proj/__init__.py").read_text(encoding="utf-8")
    assert init.endswith(USER_FUNCTION)
    for path in deleted:
        assert not (project / path).exists(), f"{path}, which the user deleted, came back"
    assert leftovers(project) == [], f"conflict markers ({MARKERS[0].strip()}) or .rej files"

    # Past the examples, which are the user's, the updated project is what this release
    # renders, with the user's writing in it: so the full checks of a fresh render
    # (test_generated_projects.py) hold for it too.
    fresh = tmp_path / "fresh" / "proj"
    run_copy(
        str(release_template),
        fresh,
        data={"level": level},
        defaults=True,
        vcs_ref=releases.upcoming().tag,
        unsafe=False,
        quiet=True,
    )
    write_as_a_user(fresh, "proj")
    updated, _ = files_of(project, level)
    expected, _ = files_of(fresh, level)
    differing = sorted(
        str(path)
        for path in updated.keys() | expected.keys()
        if updated.get(path) != expected.get(path)
    )
    assert differing == [], f"the update differs from a fresh render in {differing}"

    bin_dir = fresh_venv(project, level)
    run([str(bin_dir / "ruff"), "check", "."], project)
    run([str(bin_dir / "ruff"), "format", "--check", "."], project)
    # What an update can break (a bad merge, a stale import): every test module must
    # import. The project's in-process tests run on the largest update of each level, from
    # its oldest release: past the import they exercise the new release's machinery, which
    # every fresh render runs in full in test_generated_projects.py, slow tests included.
    pytest = [str(bin_dir / "python"), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
    largest_update = releases.is_oldest_with(release, level)
    run([*pytest, "-m", "not slow"] if largest_update else [*pytest, "--co"], project)


@pytest.mark.slow
def test_a_hand_edited_answers_file_is_recovered_as_the_readme_says(
    release_template: Path, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    run_copy(str(release_template), project, data={"level": 1}, defaults=True, quiet=True)
    git(project, "init", "--quiet")
    commit_all(project, "Start from ai-levels")
    (project / "src/proj/mine.py").write_text(USER_MODULE, encoding="utf-8")
    init = project / "src/proj/__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + USER_FUNCTION, encoding="utf-8")
    answers_file = project / ".copier-answers.yml"
    answers = answers_file.read_text(encoding="utf-8")
    answers_file.write_text(
        "".join(line for line in answers.splitlines(True) if not line.startswith("_commit:")),
        encoding="utf-8",
    )
    commit_all(project, "Our edits, and a hand edit that breaks the answers file")

    refused = run([tool("copier"), "update", "--defaults", "--skip-answered"], project, check=False)
    assert "Traceback" not in refused.stdout + refused.stderr
    assert "Cannot update" in refused.stdout + refused.stderr
    assert git(project, "status", "--porcelain") == "", "a refused update changed files"

    # The README's recovery command, as written there.
    readme = (project / "README.md").read_text(encoding="utf-8")
    command = re.search(r"`uvx (copier recopy [^`]+)`", readme)
    assert command, "the README names no recovery command"
    run([tool("copier"), *command.group(1).split()[1:], "--defaults"], project)

    assert f"_commit: {releases.upcoming().tag}" in answers_file.read_text(encoding="utf-8")
    assert (project / "src/proj/mine.py").read_text(encoding="utf-8") == USER_MODULE
    # The cost the README states: edits to the template's files are overwritten, and
    # `git diff` shows them so the user can take them back.
    assert not init.read_text(encoding="utf-8").endswith(USER_FUNCTION)
    assert "-def user_helper() -> str:" in git(project, "diff", "--", "src/proj/__init__.py")
    git(project, "restore", "--", "src/proj/__init__.py")
    assert init.read_text(encoding="utf-8").endswith(USER_FUNCTION)
    commit_all(project, "Recovered")
    run([tool("copier"), "update", "--defaults", "--skip-answered"], project)
