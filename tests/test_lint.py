"""The template's own code (the suite, its helpers) lints as clean as what it generates."""

from __future__ import annotations

from conftest import REPO, run, tool


def test_the_suite_passes_ruff_check_and_format() -> None:
    run([tool("ruff"), "check", "--no-cache", "."], REPO)
    run([tool("ruff"), "format", "--no-cache", "--check", "."], REPO)
