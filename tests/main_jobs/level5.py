"""Level 5: the gradient checks (smooth parts and exact straight-through Jacobians) and
the BitNet-vs-float training comparison, then a small benchmark whose JSON report is
checked."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run


def check(project: Path, bin_dir: Path, answers: dict) -> None:
    cli = str(bin_dir / answers["package_name"].replace("_", "-"))
    result = run([cli, "check"], project, timeout=300)
    assert "ternary weight STE, saturated weights too" in result.stdout
    assert "Jacobian exact" in result.stdout
    assert "FAIL" not in result.stdout
    # What it is doing goes to stderr through logging; the results alone to stdout.
    assert "training BitNet and its float twin" in result.stderr
    assert "training BitNet" not in result.stdout
    (report_file,) = project.glob("runs/*-check/metrics.json")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["passed"] is True, report
    checks = report["gradient_checks"]
    assert all(item["passed"] for item in checks)
    assert sum(item["check"] == "Jacobian exact" for item in checks) >= 4
    assert len(checks) >= 15
    training = report["training"]
    assert training["accuracy_ratio"] >= 0.9, training
    assert training["float"]["accuracy"] >= 0.9, training
    bitnet = training["bitnet"]
    assert bitnet["final_loss"] <= 0.5 * bitnet["first_loss"], bitnet

    bench_args = ["--shape", "4x256x256", "--repeats", "3", "--device", "cpu"]
    quiet = run([cli, "bench", *bench_args, "--skip-transformers", "--quiet"], project)
    assert quiet.stderr == "", quiet.stderr
    assert "report: runs/" in quiet.stdout
    (bench_file,) = project.glob("runs/*-bench/bench.json")
    bench = json.loads(bench_file.read_text(encoding="utf-8"))
    (entry,) = bench["shapes"]
    assert entry["bytes"]["bf16_over_packed"] == 8.0
    assert set(entry["eval_forward"]) == {"linear", "bitlinear", "integer"}
    assert entry["ratios"]["eval_forward_vs_linear"]["bitlinear"] > 0
    assert entry["integer_kernel"] in ("int8", "float32")
    assert bench["environment"]["threads"] == 1
    assert bench["sqnr"]["int8_per_token_d1024_db"] >= 38
