"""Level 5: the gradient checks and the BitNet-vs-float training comparison, then a
small benchmark whose JSON report is checked."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run


def check(project: Path, bin_dir: Path, answers: dict) -> None:
    cli = str(bin_dir / answers["package_name"].replace("_", "-"))
    result = run([cli, "check"], project, timeout=300)
    assert "rounded forward with STE (must fail)" in result.stdout
    assert "WRONG" not in result.stdout
    (report_file,) = project.glob("runs/*-check/metrics.json")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["passed"] is True, report
    assert all(item["ok"] for item in report["gradient_checks"])
    assert len(report["gradient_checks"]) >= 10
    training = report["training"]
    assert training["accuracy_ratio"] >= 0.9, training
    assert training["float"]["accuracy"] >= 0.9, training
    bitnet = training["bitnet"]
    assert bitnet["final_loss"] <= 0.5 * bitnet["first_loss"], bitnet

    run([cli, "bench", "--shape", "4x256x256", "--repeats", "3", "--device", "cpu"], project)
    (bench_file,) = project.glob("runs/*-bench/bench.json")
    bench = json.loads(bench_file.read_text(encoding="utf-8"))
    (entry,) = bench["shapes"]
    assert entry["bytes"]["bf16_over_packed"] == 8.0
    assert entry["ratios"]["bitlinear_vs_linear_forward"] > 0
    assert bench["sqnr"]["int8_per_token_d1024_db"] >= 38
