"""Level 6: `reproduce` runs the grid, then aggregates, tables, figures, checks, paper;
a second `reproduce` keeps every finished run and gives the same results."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import run


def check(project: Path, bin_dir: Path, answers: dict) -> None:
    cli = str(bin_dir / answers["package_name"].replace("_", "-"))
    first = run([cli, "reproduce"], project, timeout=300)
    assert "check-results: all 6 cells match" in first.stderr, first.stderr
    assert "reproduce: done" in first.stderr
    paper = "SKIP paper: no TeX engine found" in first.stderr or "built paper" in first.stderr
    assert paper, first.stderr

    seed_dirs = sorted(project.glob("runs/main/*/default/seed=*"))
    assert len(seed_dirs) == 10, seed_dirs
    for folder in seed_dirs:
        for name in ("config.resolved.yaml", "metrics.json", "log.txt", "env.json"):
            assert (folder / name).is_file(), folder / name
    env = json.loads((seed_dirs[0] / "env.json").read_text(encoding="utf-8"))
    assert env["status"] == "ok"
    assert len(env["config_hash"]) == 64
    assert env["threads"] == 1
    assert env["determinism"]["use_deterministic_algorithms"] is True

    with (project / "results" / "summary.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    accuracy = {r["method"]: r for r in rows if r["metric"] == "test_accuracy"}
    assert set(accuracy) == {"baseline", "label-smoothing"}
    for row in accuracy.values():
        assert (row["n_ok"], row["n_total"], row["ci_method"]) == ("5", "5", "t")
        assert float(row["mean"]) > 0.9, row
        assert float(row["ci_low"]) < float(row["mean"]) < float(row["ci_high"])
    for name in ("metrics", "curves"):
        for suffix in ("png", "pdf"):
            assert (project / "paper" / "figures" / f"{name}.{suffix}").stat().st_size > 1000
    readme = (project / "README.md").read_text(encoding="utf-8")
    table = (project / "results" / "table_main.md").read_text(encoding="utf-8")
    assert table in readme
    compute = (project / "results" / "compute.md").read_text(encoding="utf-8")
    assert compute.startswith("# Compute report: grid main")

    summary = (project / "results" / "summary.csv").read_bytes()
    metrics = (seed_dirs[0] / "metrics.json").read_bytes()
    again = run([cli, "reproduce"], project, timeout=300)
    assert "10 kept from before" in again.stderr, again.stderr
    assert (project / "results" / "summary.csv").read_bytes() == summary
    assert (seed_dirs[0] / "metrics.json").read_bytes() == metrics

    refused = run([cli, "grid", "--method", "nope"], project, check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "method nope" in refused.stderr
