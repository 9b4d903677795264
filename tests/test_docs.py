"""The documentation site builds cleanly and its options reference matches copier.yml."""

from __future__ import annotations

import re
from pathlib import Path

import levels
from conftest import COPIER_CONFIG, REPO, run, tool


def test_docs_build_strict(tmp_path: Path) -> None:
    run([tool("mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")], REPO)
    assert (tmp_path / "site" / "index.html").is_file()


def test_reference_lists_every_question_once() -> None:
    reference = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\|\s*`([a-z_]+)`\s*\|", reference, re.MULTILINE)
    questions = [name for name in COPIER_CONFIG if not name.startswith("_")]
    assert sorted(documented) == sorted(questions)


def test_reference_names_every_reserved_dependency() -> None:
    reference = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    row = next(line for line in reference.splitlines() if line.startswith("| `package_name`"))
    reserved = {name for entry in levels.LEVELS.values() for name in entry["imports"]}
    assert reserved == set(re.findall(r"`([A-Za-z_0-9]+)`", row.split("which it would shadow")[1]))


def test_the_docs_show_each_level_s_main_job_as_the_registry_has_it() -> None:
    index = (REPO / "docs" / "index.md").read_text(encoding="utf-8")
    for number, entry in levels.LEVELS.items():
        command = entry["main_job"].replace("{cli}", "myproj").replace("{ENV}", "MYPROJ")
        command = command.partition("#")[0].strip()
        assert f"| {number} | `{command}` |" in index, number
