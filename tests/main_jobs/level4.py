"""Level 4: train on digits, then evaluate the run."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run


def check(project: Path, bin_dir: Path, answers: dict) -> None:
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
