"""The documentation site builds cleanly and its options reference matches copier.yml."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from conftest import COPIER_CONFIG, REPO, run


def test_docs_build_strict(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs") or str(Path(sys.executable).with_name("mkdocs"))
    run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], REPO)
    assert (tmp_path / "site" / "index.html").is_file()


def test_reference_lists_every_question_once() -> None:
    reference = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\|\s*`([a-z_]+)`\s*\|", reference, re.MULTILINE)
    questions = [name for name in COPIER_CONFIG if not name.startswith("_")]
    assert sorted(documented) == sorted(questions)
