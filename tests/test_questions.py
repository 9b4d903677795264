"""The questionnaire: validators refuse bad answers with a useful message, and the
offered levels are exactly the levels that exist."""

from __future__ import annotations

import keyword
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import levels
from conftest import COPIER_CONFIG, LEVELS, render, reserved_names


def refusal(template_folder: Path, tmp_path: Path, **answers: object) -> str:
    """The validator's message for `answers`; fails if they are accepted."""
    with pytest.raises(ValueError, match="Validation error") as error:
        render(template_folder, tmp_path / "proj", answers.pop("level", 1), **answers)
    assert not (tmp_path / "proj" / "pyproject.toml").exists()
    return str(error.value)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_name": ""}, "project name is empty"),
        ({"project_name": "   "}, "project name is empty"),
        ({"project_name": "my project"}, "not a valid distribution name"),
        ({"project_name": "-leading-dash"}, "not a valid distribution name"),
        ({"project_name": "Ünïcode"}, "not a valid distribution name"),
        ({"package_name": ""}, "package name is empty"),
        ({"package_name": "2fast"}, "not a valid package name"),
        ({"package_name": "My_Package"}, "not a valid package name"),
        ({"package_name": "has-dash"}, "not a valid package name"),
        ({"package_name": "a" * 43}, "is 43 characters long: use at most 42"),
        ({"project_name": "a-very-long-project-name-for-wrapping-checks"}, "at most 42"),
        ({"package_name": "class"}, "is a Python keyword"),
        ({"package_name": "json"}, "is a standard-library module"),
        ({"package_name": "asyncio"}, "is a standard-library module"),
        ({"package_name": "httpx"}, "library that generated projects depend on"),
        ({"package_name": "torch"}, "library that generated projects depend on"),
        ({"description": ""}, "description is empty"),
        ({"description": "two\nlines"}, "single line"),
        ({"description": "x" * 201}, "at most 200"),
        ({"description": "two\u2028lines"}, "single line"),
        ({"author_name": "Ada\x85Lovelace"}, "single line"),
        ({"copyright_year": "{{ 7*7 }}"}, "is not a year"),
        ({"author_name": " "}, "author name is empty"),
        ({"author_email": "nobody"}, "does not look like an e-mail address"),
        ({"author_email": "a@b"}, "does not look like an e-mail address"),
        ({"author_email": "a b@example.org"}, "does not look like an e-mail address"),
        ({"api_base_url": "ftp://example.org"}, "not an http(s) base URL"),
        ({"api_base_url": "https://example.org/v1?key=1"}, "not an http(s) base URL"),
    ],
)
def test_validator_refuses_bad_answer(
    template_folder: Path, tmp_path: Path, answers: dict, message: str
) -> None:
    assert message in refusal(template_folder, tmp_path, **answers)


@pytest.mark.parametrize(
    "answers",
    [
        # Answers that each pass their own validator, two renders in all.
        {
            "project_name": "Speech.Client_2",
            "package_name": "_private_ok",
            "author_email": "first.last+tag@sub.example.co.uk",
            "api_base_url": "https://api.example.com/v1",
        },
        {"project_name": "x", "package_name": "match"},  # a soft keyword is importable
    ],
)
def test_validator_accepts_good_answer(
    template_folder: Path, tmp_path: Path, answers: dict
) -> None:
    assert (render(template_folder, tmp_path / "p", 1, **answers) / "pyproject.toml").exists()


def test_free_text_reaches_the_citation_file_as_written(
    template_folder: Path, tmp_path: Path
) -> None:
    # Astral-plane characters, quotes and backslashes: the file is YAML that libyaml
    # reads (as GitHub's citation reader and the project itself do).
    answers = {
        "description": 'Speech \U0001f3a4 model, "quoted" \\ Zoë',
        "author_name": "Zoë 😀 Ünïcødé",
    }
    project = render(template_folder, tmp_path / "p", 6, **answers)
    text = (project / "CITATION.cff").read_text(encoding="utf-8")
    citation = yaml.load(text, Loader=yaml.CSafeLoader)
    assert citation["abstract"] == answers["description"]
    assert citation["authors"][0]["given-names"] == "Zoë"
    assert citation["authors"][0]["family-names"] == "😀 Ünïcødé"
    assert "\\u" not in text  # written as themselves, not escaped


def test_package_name_defaults_from_project_name(template_folder: Path, tmp_path: Path) -> None:
    project = render(template_folder, tmp_path / "p", 1, project_name="Speech.Client-2")
    assert (project / "src" / "speech_client_2").is_dir()


def test_project_name_defaults_to_the_folder_name(template_folder: Path, tmp_path: Path) -> None:
    project = render(template_folder, tmp_path / "voice-notes", 1)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == "voice-notes"


def test_reserved_names_cover_this_python() -> None:
    public = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    names = reserved_names()
    assert public <= set(names["stdlib_modules"])
    assert set(keyword.kwlist) == set(names["python_keywords"])


# Distributions whose import name differs from their normalised project name.
IMPORT_NAMES = {
    "pyyaml": "yaml",
    "pillow": "PIL",
    "scikit-learn": "sklearn",
    "pytest-httpserver": "pytest_httpserver",
}


@pytest.mark.parametrize("level", LEVELS)
def test_dependency_import_names_are_reserved(
    default_project: Callable[[int], Path], level: int
) -> None:
    """The package-name validator must know every library the level depends on."""
    project = default_project(level)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = pyproject["project"]["dependencies"] + pyproject["dependency-groups"]["dev"]
    names = {re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower() for req in requirements}
    # types-* distributions carry type stubs only: nothing to import, nothing to shadow.
    imports = {
        IMPORT_NAMES.get(name, name.replace("-", "_"))
        for name in names
        if not name.startswith("types-")
    }
    assert imports == set(levels.LEVELS[level]["imports"])


def test_template_needs_no_trust() -> None:
    assert "_tasks" not in COPIER_CONFIG
    assert "_jinja_extensions" not in COPIER_CONFIG
    assert "_migrations" not in COPIER_CONFIG or all(
        "when" in step for step in COPIER_CONFIG["_migrations"]
    )


def test_every_free_text_question_has_a_validator() -> None:
    for name, question in COPIER_CONFIG.items():
        if name.startswith("_") or "choices" in question or question.get("ask") is False:
            continue
        assert "validator" in question, f"{name} has no validator"


@pytest.mark.parametrize("level", LEVELS)
def test_level_questions_are_asked_only_for_their_level(
    default_project: Callable[[int], Path], level: int
) -> None:
    project = default_project(level)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    for name, question in COPIER_CONFIG.items():
        when = question.get("when", "") if isinstance(question, dict) else ""
        if match := re.fullmatch(r"\{\{ level == (\d) \}\}", str(when)):
            assert (name in answers) == (int(match.group(1)) == level), name
