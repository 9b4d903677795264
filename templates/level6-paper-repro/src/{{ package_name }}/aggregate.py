"""From run folders to results/summary.csv, and the compute report.

A run counts when its env.json says ok, its config hash is that of the grid as it is
now, and its metrics.json exists; anything else counts against n_ok out of n_total.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_json_atomic, write_text_atomic
from .errors import ConfigError
from .grid import Grid, Run
from .metrics import METRICS
from .records import METRICS_FILE, read_env
from .stats import summarize

RESULTS = Path("results")
SUMMARY = RESULTS / "summary.csv"
COMPUTE_JSON = RESULTS / "compute.json"
COMPUTE_MD = RESULTS / "compute.md"
COLUMNS = (
    "grid",
    "method",
    "config",
    "metric",
    "n_ok",
    "n_total",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "ci_method",
    "seeds",
)


@dataclass(frozen=True)
class Row:
    grid: str
    method: str
    config: str
    metric: str
    n_ok: int
    n_total: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    seeds: list[int]  # the seeds of the good runs

    @property
    def half_width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2


def read_metrics(run: Run) -> dict[str, Any] | None:
    """The run's metrics if it finished with the grid's current config, else None."""
    env = read_env(run.run_dir)
    if (
        env is None
        or env.get("status") != "ok"
        or env.get("config_hash") != run.config_hash
    ):
        return None
    try:
        value = json.loads((run.run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def summarize_grid(
    grid: Grid, root: Path, *, ci: str = "t", seed: int = 0
) -> list[Row]:
    cells: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for run in grid.runs(root):
        metrics = read_metrics(run)
        if metrics is not None:
            cells[run.method, run.config_name].append((run.seed, metrics))
    rows = []
    for method in grid.methods:
        for config in grid.configs:
            good = cells[method, config]
            for metric in METRICS:
                values = [m[metric] for _, m in good if _is_number(m.get(metric))]
                seeds = [s for s, m in good if _is_number(m.get(metric))]
                s = summarize(values, len(grid.seeds), ci=ci, seed=seed)
                rows.append(
                    Row(
                        grid.name,
                        method,
                        config,
                        metric,
                        s.n,
                        s.n_total,
                        s.mean,
                        s.std,
                        s.ci_low,
                        s.ci_high,
                        s.ci_method,
                        seeds,
                    )
                )
    return rows


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def write_summary(rows: list[Row], path: Path = SUMMARY) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.grid,
                row.method,
                row.config,
                row.metric,
                row.n_ok,
                row.n_total,
                _number(row.mean),
                _number(row.std),
                _number(row.ci_low),
                _number(row.ci_high),
                row.ci_method,
                " ".join(map(str, row.seeds)),
            ]
        )
    write_text_atomic(path, buffer.getvalue())
    return path


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def read_summary(path: Path = SUMMARY) -> list[Row]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: missing; `aggregate` writes it from the runs"
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ConfigError(f"{path}: expected the columns {','.join(COLUMNS)}")
    rows = []
    for number, record in enumerate(reader, 2):
        try:
            rows.append(
                Row(
                    record["grid"],
                    record["method"],
                    record["config"],
                    record["metric"],
                    int(record["n_ok"]),
                    int(record["n_total"]),
                    _optional(record["mean"]),
                    _optional(record["std"]),
                    _optional(record["ci_low"]),
                    _optional(record["ci_high"]),
                    record["ci_method"],
                    [int(s) for s in record["seeds"].split()],
                )
            )
        except (TypeError, ValueError):
            raise ConfigError(f"{path}:{number}: not a summary row") from None
    return rows


def _optional(text: str) -> float | None:
    return float(text) if text else None


def compute_report(grid: Grid, root: Path) -> dict[str, Any]:
    """Wall time of every recorded run of the grid, summed (NeurIPS: compute)."""
    runs = grid.runs(root)
    records = [(run, read_env(run.run_dir)) for run in runs]
    recorded = [(run, env) for run, env in records if env is not None]
    by_method: dict[str, float] = defaultdict(float)
    cpu_seconds = 0.0
    for run, env in recorded:
        wall = float(env.get("wall_seconds") or 0.0)
        by_method[run.method] += wall
        cpu_seconds += wall * int(env.get("threads") or 1)
    devices = sorted({str(env.get("gpu") or env.get("device")) for _, env in recorded})
    statuses = [str(env.get("status")) for _, env in recorded]
    return {
        "grid": grid.name,
        "runs_planned": len(runs),
        "runs_recorded": len(recorded),
        "runs_ok": statuses.count("ok"),
        "runs_failed": statuses.count("failed"),
        "wall_seconds": round(sum(by_method.values()), 3),
        "cpu_thread_hours": round(cpu_seconds / 3600, 6),
        "wall_seconds_by_method": {
            k: round(v, 3) for k, v in sorted(by_method.items())
        },
        "devices": devices,
        "threads": sorted({int(env.get("threads") or 1) for _, env in recorded}),
    }


def write_compute_report(report: dict[str, Any]) -> str:
    lines = [
        f"# Compute report: grid {report['grid']}",
        "",
        "Summed from each run's env.json (wall time of the training run itself).",
        "",
        "| quantity | value |",
        "| --- | --- |",
        f"| runs (ok / failed / planned) | {report['runs_ok']} / "
        f"{report['runs_failed']} / "
        f"{report['runs_planned']} |",
        f"| wall time, all runs | {report['wall_seconds']:.1f} s |",
        f"| CPU thread-hours | {report['cpu_thread_hours']:.4f} |",
        f"| devices | {', '.join(report['devices']) or 'none'} |",
        f"| threads per run | {', '.join(map(str, report['threads'])) or 'none'} |",
    ]
    for method, seconds in report["wall_seconds_by_method"].items():
        lines.append(f"| wall time, {method} | {seconds:.1f} s |")
    text = "\n".join(lines) + "\n"
    write_json_atomic(COMPUTE_JSON, report, sort_keys=True)
    write_text_atomic(COMPUTE_MD, text)
    return text
