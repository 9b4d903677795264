"""The level registry is the one place a level is declared, and the shared files reach
every level that takes them as stubs, never as copies.

Rules (docs/contributing.md): templates/_shared/<group>/<path> is rendered into a project
at <path>. A level that takes <group> (its registry entry's `shared`) has, at
<path> (with `.jinja` added when missing), a stub whose first line includes or extends
exactly that shared file, and nothing else may stand there.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jinja2
import pytest
import yaml

import levels
from conftest import (
    COPIER_CONFIG,
    LEVELS,
    REPO,
    copy_template,
    fresh_venv,
    render,
    run,
    type_check,
)

SHARED = REPO / "templates" / "_shared"
GROUPS = sorted(path.name for path in SHARED.iterdir() if path.is_dir())
STUB = re.compile(r'\{%-? (include|extends) "templates/_shared/([^"]+)" -?%\}')


def shared_files(group: str) -> list[Path]:
    return sorted(p.relative_to(SHARED / group) for p in (SHARED / group).rglob("*") if p.is_file())


def stub_path(relative: Path) -> Path:
    return relative if relative.suffix == ".jinja" else relative.with_name(relative.name + ".jinja")


def test_every_level_folder_has_an_entry_and_every_entry_a_folder() -> None:
    folders = {p.name for p in (REPO / "templates").iterdir() if p.name.startswith("level")}
    assert folders == {entry["folder"] for entry in levels.LEVELS.values()}
    for number, entry in levels.LEVELS.items():
        assert entry["folder"].startswith(f"level{number}-"), entry["folder"]
        assert set(entry["shared"]) <= set(GROUPS), entry["shared"]
        assert "common" in entry["shared"]


def test_the_level_prompt_offers_exactly_the_registered_levels(
    default_project: Callable[[int], Path],
) -> None:
    # The choices are a Jinja-rendered YAML mapping; render it the way Copier does.
    project = default_project(1)
    assert (project / ".copier-answers.yml").is_file()
    choices = COPIER_CONFIG["level"]["choices"]
    loader = jinja2.FileSystemLoader(REPO)
    rendered = yaml.safe_load(jinja2.Environment(loader=loader).from_string(choices).render())
    assert rendered == {f"{n} - {e['label']}": n for n, e in levels.LEVELS.items()}


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_has_a_stub_for_every_shared_file_it_takes(level: int) -> None:
    folder = levels.folder(level)
    taken = levels.LEVELS[level]["shared"]
    for group in GROUPS:
        for relative in shared_files(group):
            stub = folder / stub_path(relative)
            plain = folder / str(relative).removesuffix(".jinja")
            if group not in taken:
                assert not stub.exists(), f"{stub}: level {level} does not take '{group}'"
                continue
            assert stub.is_file(), f"level {level} lacks {stub_path(relative)}"
            assert plain == stub or not plain.exists(), f"{plain} copies a shared file"
            match = STUB.match(stub.read_text(encoding="utf-8"))
            assert match, f"{stub} must start by including or extending its shared file"
            assert match.group(2) == f"{group}/{relative}", f"{stub} includes {match.group(2)}"


@pytest.mark.parametrize("level", LEVELS)
def test_stubs_only_point_at_their_own_path(level: int) -> None:
    """A level file that includes a shared file must sit at that file's path."""
    folder = levels.folder(level)
    for path in folder.rglob("*.jinja"):
        match = STUB.match(path.read_text(encoding="utf-8"))
        if match is None:
            continue
        _, _, relative = match.group(2).partition("/")
        assert path.relative_to(folder) == stub_path(Path(relative)), path


def test_every_level_has_a_docs_page_in_the_nav() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    for number in levels.LEVELS:
        assert (REPO / "docs" / "levels" / f"level{number}.md").is_file()
        assert f"levels/level{number}.md" in nav


def test_the_ci_matrix_comes_from_the_registry() -> None:
    printed = subprocess.run(
        [sys.executable, str(REPO / "tests" / "levels.py"), "matrix"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(printed) == ["none", *map(str, LEVELS)]
    workflow = (REPO / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert "tests/levels.py matrix" in workflow


THROWAWAY_ENTRY = """    7: {
        "folder": "level7-audio-agent",
        "label": "Audio agent (a throwaway level of the registry's test)",
        "title": "audio agent",
        "main_job": "uv run {cli} version",
        "imports": ["pytest", "ruff", "mypy"],
        "torch": false,
        "shared": ["common", "http"],
    },
"""


@pytest.mark.slow
def test_a_new_level_is_its_folder_and_one_registry_entry(tmp_path: Path) -> None:
    """The registry claim: scaffold a folder, add one entry, and the level renders, installs
    and passes its checks, with nothing else in the repository touched."""
    root = copy_template(tmp_path / "template")
    scaffold = [sys.executable, str(REPO / "tests" / "levels.py"), "scaffold", "7"]
    run([*scaffold, "audio-agent", "--shared", "common,http", "--root", str(root)], REPO)
    registry = root / levels.REGISTRY
    text = registry.read_text(encoding="utf-8")
    end = text.rindex("} -%}")
    registry.write_text(text[:end] + THROWAWAY_ENTRY + text[end:], encoding="utf-8")

    folder = root / "templates" / "level7-audio-agent"
    for group in ("common", "http"):
        for relative in shared_files(group):
            match = STUB.match((folder / stub_path(relative)).read_text(encoding="utf-8"))
            assert match, relative
            assert match.group(2) == f"{group}/{relative}", relative

    project = render(root, tmp_path / "proj", 7)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["level"] == answers["created_at_level"] == 7
    assert (project / "src/proj/http_retry.py").is_file()
    assert not (project / "src/proj/runtime.py").exists()
    bin_dir = fresh_venv(project, 1)
    run([str(bin_dir / "ruff"), "check", "."], project)
    run([str(bin_dir / "ruff"), "format", "--check", "."], project)
    type_check(project, bin_dir)
    run([str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    assert run([str(bin_dir / "proj"), "version"], project).stdout.strip() == "0.1.0"


def table_levels(text: str, row: str) -> list[int]:
    """The level numbers of a Markdown table's rows that match `row` (a regex, one group)."""
    return [int(number) for number in re.findall(row, text, re.MULTILINE)]


def test_every_table_of_levels_lists_exactly_the_registered_ones() -> None:
    """Tables of levels are written by hand for their prose, and checked here against the
    registry: a new level that is missing from one fails, and so does a stale row."""
    registered = sorted(levels.LEVELS)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert table_levels(readme, r"^\| (\d+) \| .* \| available \|$") == registered
    index = (REPO / "docs" / "index.md").read_text(encoding="utf-8")
    assert table_levels(index, r"^\| (\d+) \| .*\]\(levels/level\1\.md\)") == registered
    assert table_levels(index, r"^\| (\d+) \| `") == registered  # the main jobs
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    pages = next(item["Levels"] for item in nav if "Levels" in item)
    assert pages == [
        {f"Level {number}: {entry['title']}": f"levels/level{number}.md"}
        for number, entry in sorted(levels.LEVELS.items())
    ]
