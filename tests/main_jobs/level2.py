"""Level 2: the bundled suites replayed offline, as the README's Run section says; then
its local-model section, end to end, against the project's stand-in server; then a
promptfoo config run as it is, as its promptfoo section says."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import run


def check(project: Path, bin_dir: Path, answers: dict) -> None:
    package = answers["package_name"]
    cli = str(bin_dir / package.replace("_", "-"))
    result = run([cli, "eval", "--no-progress"], project, env={"OPENAI_API_KEY": ""})
    assert "mode replay" in result.stdout
    # The summary the README's Run section shows, line for line.
    readme = (project / "README.md").read_text(encoding="utf-8").split("## Run\n", 1)[1]
    shown = re.search(r"```text\n(.*?)```", readme, re.DOTALL)
    assert shown, "the README's Run section shows no output"
    assert shown.group(1) in result.stdout, result.stdout
    assert re.search(r"(\d+) cases: \1 passed, 0 failed, 0 errored", result.stdout), result.stdout
    # One row per suite x prompt x provider: the python provider (your app) ran too.
    row = r"^order_lookup\s+support_bot\s+support-bot\s+3\s+0\s+0\s+100%"
    assert re.search(row, result.stdout, re.M)
    report = json.loads((project / "reports/results.json").read_text(encoding="utf-8"))
    assert report["meta"]["mode"] == "replay"
    assert report["summary"]["failed"] == report["summary"]["errored"] == 0
    assert report["summary"]["passed"] >= 14
    calls = [r["tool_calls"] for r in report["results"] if r["suite"] == "order_lookup"]
    assert all(c and c[0]["name"] == "lookup_order" for c in calls)
    assert "<testsuite" in (project / "reports/junit.xml").read_text(encoding="utf-8")
    page = (project / "reports/report.html").read_text(encoding="utf-8")
    assert "class=matrix" in page
    assert "http://" not in page  # self-contained
    assert "https://" not in page
    kept = project / "reports" / "runs" / report["meta"]["run"] / "results.json"
    assert kept.is_file()

    # README, "A local model": an OpenAI-compatible server on OLLAMA_BASE_URL, no key, no
    # prices. The stand-in echoes prompts, so the extraction checks fail (exit 1), but
    # nothing errors: the cost limit is skipped with its reason, the judge answers.
    with subprocess.Popen(
        [str(bin_dir / "python"), "-m", f"{package}.fake_server"],
        cwd=project,
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            base_url = server.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:"), base_url
            readme_line = ["eval", "--live", "--provider", "ollama", "--judge", "ollama"]
            local = run(
                [cli, *readme_line, "--no-progress"],
                project,
                env={"OLLAMA_BASE_URL": base_url, "OPENAI_API_KEY": ""},
                check=False,
            )
        finally:
            server.terminate()
    assert local.returncode == 1, local.stdout + local.stderr
    assert ", 0 errored" in local.stdout, local.stdout
    assert "x cost: skipped: provider 'ollama' sets no price_per_million_tokens" in local.stdout
    assert "mode live" in local.stdout

    # README, "promptfoo configs, as they are": the project's promptfoo fixture, run by
    # the installed command; promptfoo 0.120.27 passed 48 of its 60 cases.
    config = "tests/fixtures/promptfoo/basics/promptfooconfig.yaml"
    borrowed = run([cli, "eval", "--no-progress", config], project, check=False)
    assert borrowed.returncode == 1, borrowed.stdout + borrowed.stderr
    assert "60 cases: 48 passed, 12 failed, 0 errored" in borrowed.stdout
    assert "echo (promptfoo)" in borrowed.stdout  # beside harness.yaml's own echo
