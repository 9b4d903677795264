"""Render every level, install it fresh, and run what a user runs first.

For each level, with default answers and with awkward ones: every TOML/YAML file
parses, nothing unfinished ships, and in a fresh virtual environment built from the
project's own pyproject.toml, `ruff check`, `ruff format --check`, the project's own
pytest and its offline main job all pass.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import (
    AWKWARD_ANSWERS,
    LEVELS,
    REPO,
    find_python,
    fresh_venv,
    needs_torch,
    render,
    run,
)

UNFINISHED = re.compile(r"TODO|FIXME|XXX|NotImplementedError|placeholder", re.IGNORECASE)

ANSWER_SETS = {
    "defaults": {},
    "awkward": AWKWARD_ANSWERS,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main_job_level1(project: Path, bin_dir: Path, answers: dict) -> None:
    package = answers["package_name"]
    cli = str(bin_dir / package.replace("_", "-"))
    port = free_port()
    server = subprocess.Popen(
        [cli, "devserver", "--port", str(port)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        env = {
            f"{package.upper()}_API_KEY": "dev",
            f"{package.upper()}_BASE_URL": f"http://127.0.0.1:{port}",
        }
        deadline = time.monotonic() + 20
        while True:  # the server needs a moment to bind
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "dev server did not start"
            time.sleep(0.1)
        result = run([cli, "transcribe", "samples/hello.wav", "--json"], project, env=env)
        transcription = json.loads(result.stdout)
        assert transcription["text"].strip()
        assert transcription["segments"], transcription
        for segment in transcription["segments"]:
            assert 0 <= segment["start"] < segment["end"]
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()


def main_job_level2(project: Path, bin_dir: Path, answers: dict) -> None:
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


def main_job_level4(project: Path, bin_dir: Path, answers: dict) -> None:
    cli = str(bin_dir / answers["package_name"].replace("_", "-"))
    run([cli, "train"], project, timeout=300)
    (metrics_file,) = project.glob("runs/*/metrics.json")
    metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    assert metrics["test_accuracy"] >= 0.95, metrics
    assert metrics["test_loss"] < 0.5, metrics
    run_dir = metrics_file.parent
    for name in ("config.yaml", "metrics.csv", "curves.png", "checkpoints/last.pt"):
        assert (run_dir / name).is_file(), name
    evaluated = run([cli, "evaluate", "latest"], project)
    assert "test accuracy:" in evaluated.stdout


MAIN_JOBS = {1: main_job_level1, 2: main_job_level2, 4: main_job_level4}


def test_every_offered_level_has_a_main_job() -> None:
    assert sorted(MAIN_JOBS) == LEVELS


@pytest.mark.parametrize("answer_set", sorted(ANSWER_SETS))
@pytest.mark.parametrize("level", LEVELS)
def test_generated_project_passes_its_own_checks(
    copier_template: Path, tmp_path: Path, level: int, answer_set: str
) -> None:
    project = render(copier_template, tmp_path / "proj", level, **ANSWER_SETS[answer_set])
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["level"] == answers["created_at_level"] == level

    files = [p for p in project.rglob("*") if p.is_file() and ".git" not in p.parts]
    for path in files:
        if path.suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        if path.suffix in {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ".cfg"}:
            unfinished = UNFINISHED.search(path.read_text(encoding="utf-8"))
            assert unfinished is None, f"{path.relative_to(project)}: {unfinished.group()}"

    readme = (project / "README.md").read_text(encoding="utf-8")
    prose = readme.split("```")[::2]  # outside code blocks
    assert not any("\n\n\n" in part for part in prose), "README has stray blank lines"

    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == answers["description"]
    assert pyproject["project"]["authors"][0]["name"] == answers["author_name"]

    bin_dir = fresh_venv(project)
    run([str(bin_dir / "ruff"), "check", "."], project)
    run([str(bin_dir / "ruff"), "format", "--check", "."], project)
    run([str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    MAIN_JOBS[level](project, bin_dir, answers)


# Levels whose projects need torch stay on the suite's Python: the pinned CPU build of
# torch that test machines carry is for that interpreter only.
LEVELS_WITHOUT_TORCH = [
    level
    for level in LEVELS
    if not needs_torch(
        next((REPO / "templates").glob(f"level{level}-*/pyproject.toml.jinja")).read_text(
            encoding="utf-8"
        )
    )
]


@pytest.mark.parametrize("version", ["3.10", "3.13"])
@pytest.mark.parametrize("level", LEVELS_WITHOUT_TORCH)
def test_generated_project_runs_on_the_oldest_and_newest_python(
    copier_template: Path, tmp_path: Path, level: int, version: str
) -> None:
    python = find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} installed here")
    answers = {"project_name": "edge-python", "python_min": "3.10"}
    project = render(copier_template, tmp_path / "proj", level, **answers)
    bin_dir = fresh_venv(project, python)
    run([str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    MAIN_JOBS[level](project, bin_dir, {"package_name": "edge_python"})
