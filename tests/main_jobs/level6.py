"""Level 6: `reproduce` runs the grid, aggregates, checks, then publishes tables, figures
and the paper; as a reviewer would try it, on a fresh render under git:

- the first run leaves the clone clean (the committed results are the machine's bytes);
- a second run reuses every step and every output keeps its bytes, the PDF included;
- one seed's metrics moved by one test sample stop it before anything is published;
- a change of code without a change of config makes every run stale: a reproduce killed
  mid-grid has archived them all (not deleted) and the next one resumes, rerunning only
  what the killed one had not finished, to the same results;
- a method whose runs fail stops it before the tables and the paper."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import run

OUTPUTS = (
    "results/*.csv",
    "results/*.json",
    "results/*.md",
    "paper/generated/*",
    "paper/figures/*",
    "paper/ms.pdf",
    "README.md",
    "runs/main/*/*/*/metrics.json",
)


def outputs(project: Path) -> dict[str, bytes]:
    found = {}
    for pattern in OUTPUTS:
        for path in sorted(project.glob(pattern)):
            if path.is_file() and not path.name.startswith("compute."):
                found[path.relative_to(project).as_posix()] = path.read_bytes()
    return found


def archived_metrics(project: Path) -> list[Path]:
    return sorted(project.glob("runs/main/.previous/*/*/*/*/metrics.json"))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def git(project: Path, *args: str) -> str:
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@e.st", *args], project).stdout


def check(project: Path, bin_dir: Path, answers: dict) -> None:
    cli = str(bin_dir / answers["package_name"].replace("_", "-"))
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "rendered")

    first = run([cli, "reproduce"], project, timeout=600)
    assert "check-results: all 16 cells and runs match" in first.stderr, first.stderr
    assert "ran: grid, aggregate, check-results, tables, figures, paper" in first.stderr
    built = "built paper/ms.pdf" in first.stderr
    assert built or "SKIP paper: no TeX engine found" in first.stderr, first.stderr
    # The committed results, tables, README and macros are what this machine produces.
    assert git(project, "status", "--porcelain") == "", git(project, "status", "--porcelain")

    seed_dirs = sorted(project.glob("runs/main/*/default/seed=*"))
    assert len(seed_dirs) == 10, seed_dirs
    for folder in seed_dirs:
        for name in ("config.resolved.yaml", "metrics.json", "log.txt", "env.json"):
            assert (folder / name).is_file(), folder / name
    env = json.loads((seed_dirs[0] / "env.json").read_text(encoding="utf-8"))
    assert env["status"] == "ok"
    assert len(env["config_hash"]) == len(env["code_sha256"]) == 64
    assert env["threads"] == 1
    assert env["determinism"]["use_deterministic_algorithms"] is True
    assert {"scikit-learn", "matplotlib", "torch"} <= set(env["distributions"])

    with (project / "results" / "summary.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    accuracy = {r["method"]: r for r in rows if r["metric"] == "test_accuracy"}
    assert set(accuracy) == {"baseline", "label-smoothing"}
    for row in accuracy.values():
        assert (row["n_ok"], row["n_total"], row["ci_method"]) == ("5", "5", "t")
        assert float(row["mean"]) > 0.9, row
        assert float(row["ci_low"]) < float(row["mean"]) < float(row["ci_high"])
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert (project / "results" / "table_main.md").read_text(encoding="utf-8") in readme
    compute = (project / "results" / "compute.md").read_text(encoding="utf-8")
    assert compute.startswith("# Compute report: grid main")
    assert "| process start-up, 1 processes |" in compute
    paper = (project / "paper" / "ms.tex").read_text(encoding="utf-8")
    assert f"\\author{{{answers.get('author_name', '')}}}" in paper

    # Nothing changed: every step reused, every output the same bytes.
    published = outputs(project)
    again = run([cli, "reproduce"], project, timeout=300)
    assert "reused: grid (10 runs), aggregate, tables, figures" in again.stderr, again.stderr
    seconds = float(re.search(r"reproduce: done in ([\d.]+) s", again.stderr)[1])
    assert seconds < 5, again.stderr
    assert outputs(project) == published
    # --quiet: the check's table on stdout, nothing on stderr when all is well.
    quiet = run([cli, "reproduce", "--quiet"], project, timeout=300)
    assert quiet.stderr == "", quiet.stderr
    assert "baseline/default/seed=0" in quiet.stdout
    if built:  # built again from scratch: the same PDF bytes
        (project / "paper" / "ms.pdf").unlink()
        run([cli, "paper"], project, timeout=300)
        assert outputs(project) == published

    # One seed's accuracy raised by one test sample of 539: refused, nothing published.
    metrics_file = project / "runs/main/baseline/default/seed=2/metrics.json"
    honest = metrics_file.read_bytes()
    metrics = json.loads(honest)
    metrics["test_accuracy"] += 1 / 539
    metrics_file.write_text(json.dumps(metrics, sort_keys=True), encoding="utf-8")
    tampered = run([cli, "reproduce"], project, check=False, timeout=300)
    assert tampered.returncode == 1, tampered.stderr
    assert "baseline/default/seed=2" in tampered.stdout
    assert "stopped after check-results failed" in tampered.stderr
    # The summary shows what the runs now say (the check's input); nothing made from it
    # changed: tables, macros, README, figures, paper.
    now = outputs(project)
    for name, content in published.items():
        if not name.startswith(("runs/", "results/summary.csv", "results/tests.csv")):
            assert now[name] == content, name
    metrics_file.write_bytes(honest)

    # The code changes, the config does not: every run is stale. A reproduce killed in
    # the middle of the grid has archived all ten old runs (kept, not deleted) and rerun
    # some; the next one resumes: it reuses those and reruns the rest, to the same results.
    train = project / "src" / answers["package_name"] / "train.py"
    train.write_text(train.read_text(encoding="utf-8") + "# a change\n", encoding="utf-8")
    status = run([cli, "status"], project)
    assert status.stdout.count("stale (code changed)") == 10, status.stdout
    process = subprocess.Popen(
        [cli, "reproduce"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and (
            len(archived_metrics(project)) < 10
            or len(list(project.glob("runs/main/*/default/seed=*/metrics.json"))) < 3
        ):
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    archived = archived_metrics(project)
    assert len(archived) == 10, archived
    for path in archived:  # runs/main/.previous/<method>/<config>/<seed>/<stamp>/
        method, config, seed = path.parts[-5:-2]
        assert path.read_bytes() == published[f"runs/main/{method}/{config}/{seed}/metrics.json"]
    rerun = [
        record["status"] == "ok"
        for record in map(read_json, project.glob("runs/main/*/default/seed=*/env.json"))
    ].count(True)
    assert 1 <= rerun < 10, rerun
    resumed = run([cli, "reproduce"], project, timeout=600)
    assert "finished before with this config, code and data: reused" in resumed.stderr
    assert f"{10 - rerun} ok, 0 failed, {rerun} reused" in resumed.stderr, resumed.stderr
    assert "check-results: all 16" in resumed.stderr
    codes = {
        read_json(path)["code_sha256"]
        for path in project.glob("runs/main/*/default/seed=*/env.json")
    }
    assert len(codes) == 1, codes  # every run of the grid, rerun with the changed code
    assert env["code_sha256"] not in codes, codes
    assert outputs(project) == published  # same numbers: the check passed, same files

    # A method whose runs fail: recorded, and nothing is published from the grid.
    grid = project / "configs" / "grid.yaml"
    grid.write_text(
        grid.read_text(encoding="utf-8").replace(
            "configs:\n", "  diverging:\n    train.lr: 1.0e+30\nconfigs:\n", 1
        ),
        encoding="utf-8",
    )
    failing = run([cli, "reproduce"], project, check=False, timeout=600)
    assert failing.returncode == 1, failing.stderr
    prog = Path(cli).name
    assert f"{prog}: warning: FAILED diverging/default/seed=0: DivergedError" in failing.stderr
    last = failing.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{prog}: error: reproduce: stopped after grid failed"), last
    for name in ("paper/generated/numbers.tex", "results/table_main.md", "README.md"):
        assert (project / name).read_bytes() == published[name], name

    refused = run([cli, "grid", "--method", "nope"], project, check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "method nope" in refused.stderr
