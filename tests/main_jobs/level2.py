"""Level 2: the bundled suites, replayed offline."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import run


def check(project: Path, bin_dir: Path, answers: dict) -> None:
    cli = str(bin_dir / answers["package_name"].replace("_", "-"))
    result = run([cli, "eval", "--no-progress"], project, env={"OPENAI_API_KEY": ""})
    assert "mode replay" in result.stdout
    assert re.search(r"(\d+) cases: \1 passed, 0 failed, 0 errored", result.stdout), result.stdout
    report = json.loads((project / "reports/results.json").read_text(encoding="utf-8"))
    assert report["meta"]["mode"] == "replay"
    assert report["summary"]["failed"] == report["summary"]["errored"] == 0
    assert report["summary"]["passed"] > 0
    assert "<testsuite" in (project / "reports/junit.xml").read_text(encoding="utf-8")
    assert (project / "reports/report.html").stat().st_size > 0
