"""Level 4: train on digits as the README says, then evaluate the run and predict."""

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
    assert not list(run_dir.rglob(".*.tmp"))  # no temporary file left behind
    evaluated = run([cli, "evaluate", "latest"], project)
    assert f"test accuracy: {metrics['test_accuracy']:.4f}" in evaluated.stdout
    # A blank 8x8 image and a bright square: two predictions, each a digit.
    inputs = project / "new.npy"
    python = str(bin_dir / "python")
    run(
        [
            python,
            "-c",
            "import numpy; x = numpy.zeros((2, 8, 8), 'float32'); "
            f"x[1, 2:6, 2:6] = 1; numpy.save({str(inputs)!r}, x)",
        ],
        project,
    )
    predicted = run([cli, "predict", "latest", str(inputs)], project)
    lines = predicted.stdout.strip().splitlines()
    assert len(lines) == 2, predicted.stdout
    for line in lines:
        name, label, probability = line.split("\t")
        assert label in [str(digit) for digit in range(10)], line
        assert 0.0 < float(probability) <= 1.0, line
