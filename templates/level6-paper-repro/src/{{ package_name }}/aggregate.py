"""From run folders to results/summary.csv, results/tests.csv and the compute report.

A run counts when it finished (env.json says ok, metrics.json exists and both can be
read) with the grid's config, the code and the data as they are now (provenance.py); a
failed, unfinished, damaged or stale run counts against n_ok out of n_total. tests.csv
compares every two methods of a config, seed by seed (stats.paired_test), the p-values
Holm-adjusted over the table.
Numbers are written to 6 significant digits: far finer than any interval, and coarse
enough that the last-digit noise of another CPU does not change the committed files.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from . import configfile
from .atomic import write_json_atomic, write_text_atomic
from .data import MANIFEST
from .errors import ConfigError
from .grid import Grid, Run
from .metrics import METRICS
from .provenance import RunState, states
from .records import METRICS_FILE, read_env
from .stats import holm, paired_test, summarize

RESULTS = Path("results")
SUMMARY = RESULTS / "summary.csv"
TESTS = RESULTS / "tests.csv"
DIGITS = 6
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
    """The metrics.json of a finished run, else None (its provenance not checked)."""
    env = read_env(run.run_dir)
    if env is None or env.get("status") != "ok":
        return None
    try:
        value = json.loads((run.run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def sort_runs(
    grid: Grid, root: Path, manifest: Path = MANIFEST
) -> tuple[list[tuple[Run, dict[str, Any]]], list[RunState]]:
    """(run, metrics) of every current finished run; and the state of every run that
    finished once but must run again: stale, or damaged (a record that cannot be
    read)."""
    good, rerun = [], []
    for state in states(grid.runs(root), manifest):
        if state.state in ("stale", "damaged"):
            rerun.append(state)
        if not state.reusable:
            continue
        metrics = read_metrics(state.run)
        if metrics is not None:
            good.append((state.run, metrics))
    return good, rerun


def good_runs(
    grid: Grid, root: Path, manifest: Path = MANIFEST
) -> tuple[list[tuple[Run, dict[str, Any]]], list[str]]:
    """(run, metrics) of every current finished run; and one line per stale or
    damaged run, with the reason."""
    good, rerun = sort_runs(grid, root, manifest)
    return good, [f"{s.run.label} ({', '.join(s.reasons)})" for s in rerun]


def summarize_grid(
    grid: Grid,
    root: Path,
    *,
    ci: str = "t",
    seed: int = 0,
    good: list[tuple[Run, dict[str, Any]]] | None = None,
) -> list[Row]:
    if good is None:
        good = good_runs(grid, root)[0]
    cells: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for run, metrics in good:
        cells[run.method, run.config_name].append((run.seed, metrics))
    rows = []
    for method in grid.methods:
        for config in grid.configs:
            found = cells[method, config]
            for metric in METRICS:
                values = [m[metric] for _, m in found if _is_number(m.get(metric))]
                seeds = [s for s, m in found if _is_number(m.get(metric))]
                s = summarize(values, len(grid.seeds), ci=ci, seed=seed)
                rows.append(
                    Row(
                        grid.name,
                        method,
                        config,
                        metric,
                        s.n,
                        s.n_total,
                        _rounded(s.mean),
                        _rounded(s.std),
                        _rounded(s.ci_low),
                        _rounded(s.ci_high),
                        s.ci_method,
                        seeds,
                    )
                )
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.{DIGITS}g}")


@dataclass(frozen=True)
class Comparison:
    """method - versus under one config and metric, over the seeds both finished."""

    grid: str
    config: str
    metric: str
    method: str
    versus: str
    n: int
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    t_p: float | None
    t_p_holm: float | None
    wilcoxon_p: float | None
    wilcoxon_p_holm: float | None
    seeds: list[int]


TEST_COLUMNS = (
    "grid",
    "config",
    "metric",
    "method",
    "versus",
    "n",
    "mean_diff",
    "ci_low",
    "ci_high",
    "t_p",
    "t_p_holm",
    "wilcoxon_p",
    "wilcoxon_p_holm",
    "seeds",
)


def compare_methods(
    grid: Grid, good: list[tuple[Run, dict[str, Any]]]
) -> list[Comparison]:
    """Every later method against every earlier one (the baseline first), per config
    and metric; Holm's correction over all of them, for each test."""
    values: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for run, metrics in good:
        for metric in METRICS:
            if _is_number(metrics.get(metric)):
                values[run.method, run.config_name, metric][run.seed] = float(
                    metrics[metric]
                )
    raw = []
    methods = list(grid.methods)
    for config in grid.configs:
        for metric in METRICS:
            for i, versus in enumerate(methods):
                for method in methods[i + 1 :]:
                    a = values[method, config, metric]
                    b = values[versus, config, metric]
                    seeds = sorted(set(a) & set(b))
                    test = paired_test([a[s] for s in seeds], [b[s] for s in seeds])
                    raw.append((config, metric, method, versus, seeds, test))
    t_holm = holm([test.t_p for *_, test in raw])
    w_holm = holm([test.wilcoxon_p for *_, test in raw])
    return [
        Comparison(
            grid.name,
            config,
            metric,
            method,
            versus,
            test.n,
            _rounded(test.mean_diff),
            _rounded(test.ci_low),
            _rounded(test.ci_high),
            _rounded(test.t_p),
            _rounded(t_p),
            _rounded(test.wilcoxon_p),
            _rounded(w_p),
            seeds,
        )
        for (config, metric, method, versus, seeds, test), t_p, w_p in zip(
            raw, t_holm, w_holm, strict=True
        )
    ]


def write_tests(comparisons: list[Comparison], path: Path = TESTS) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TEST_COLUMNS)
    for c in comparisons:
        writer.writerow(
            [
                c.grid,
                c.config,
                c.metric,
                c.method,
                c.versus,
                c.n,
                *(
                    _number(v)
                    for v in (
                        c.mean_diff,
                        c.ci_low,
                        c.ci_high,
                        c.t_p,
                        c.t_p_holm,
                        c.wilcoxon_p,
                        c.wilcoxon_p_holm,
                    )
                ),
                " ".join(map(str, c.seeds)),
            ]
        )
    write_text_atomic(path, buffer.getvalue())
    return path


def read_tests(path: Path = TESTS) -> list[Comparison]:
    reader = _csv_records(path, TEST_COLUMNS)
    found = []
    for number, r in enumerate(reader, 2):
        _check_record(r, path, number)
        try:
            found.append(
                Comparison(
                    r["grid"],
                    r["config"],
                    r["metric"],
                    r["method"],
                    r["versus"],
                    int(r["n"]),
                    _optional(r["mean_diff"]),
                    _optional(r["ci_low"]),
                    _optional(r["ci_high"]),
                    _optional(r["t_p"]),
                    _optional(r["t_p_holm"]),
                    _optional(r["wilcoxon_p"]),
                    _optional(r["wilcoxon_p_holm"]),
                    [int(s) for s in r["seeds"].split()],
                )
            )
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"{path}:{number}: not a row of tests ({error})"
            ) from None
    return found


def _is_number(value: Any) -> TypeGuard[int | float]:
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
    return "" if value is None else f"{value:.{DIGITS}g}"


def _csv_records(path: Path, columns: tuple[str, ...]) -> csv.DictReader[str]:
    """The records of a CSV file `aggregate` wrote; its header must be `columns`."""
    if path.exists() and (why := configfile.not_a_file(path, "CSV file")):
        raise ConfigError(f"{path}: {why}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: missing; `aggregate` writes it from the runs"
        ) from None
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: not UTF-8 text; `aggregate` writes it again from the runs"
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != columns:
        raise ConfigError(f"{path}: expected the columns {','.join(columns)}")
    return reader


def _check_record(record: dict[Any, Any], path: Path, number: int) -> None:
    """What the tables would otherwise trip over, from a file cut short or edited by
    hand: a row with fields missing (their values are None) or too many (kept under
    the key None), and a metric that metrics.py no longer lists (a KeyError)."""
    if None in record or None in record.values():
        raise ConfigError(
            f"{path}:{number}: expected {len(record) - (None in record)} fields "
            "in each row; `aggregate` writes the file again from the runs"
        )
    if record["metric"] not in METRICS:
        raise ConfigError(
            f"{path}:{number}: metric {record['metric']!r} is not one of metrics.py's "
            f"({', '.join(METRICS)}); `aggregate` writes the file again from the runs"
        )


def read_summary(path: Path = SUMMARY) -> list[Row]:
    reader = _csv_records(path, COLUMNS)
    rows = []
    for number, record in enumerate(reader, 2):
        _check_record(record, path, number)
        try:
            if not 0 <= int(record["n_ok"]) <= int(record["n_total"]):
                raise ValueError("n_ok must lie between 0 and n_total")
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
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{path}:{number}: not a summary row ({error})") from None
    return rows


def _optional(text: str) -> float | None:
    """A number of the file, or None for an empty field. `aggregate` never writes nan
    or inf: one there was edited in, and the tables would print it in the paper."""
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def compute_report(grid: Grid, root: Path) -> dict[str, Any]:
    """Wall time of every recorded run of the grid, summed (NeurIPS: compute), with
    the start-up of the processes that ran them (first use of torch) apart."""
    runs = grid.runs(root)
    records = [(run, read_env(run.run_dir)) for run in runs]
    recorded = [(run, env) for run, env in records if env is not None]
    by_method: dict[str, float] = defaultdict(float)
    cpu_seconds = 0.0
    startup = 0.0
    for run, env in recorded:
        wall = _env_number(env, "wall_seconds")
        by_method[run.method] += wall
        cpu_seconds += wall * _threads(env)
        startup += _env_number(env, "startup_seconds")
    devices = sorted({str(env.get("gpu") or env.get("device")) for _, env in recorded})
    statuses = [str(env.get("status")) for _, env in recorded]
    return {
        "grid": grid.name,
        "runs_planned": len(runs),
        "runs_recorded": len(recorded),
        "runs_ok": statuses.count("ok"),
        "runs_failed": statuses.count("failed"),
        "wall_seconds": round(sum(by_method.values()), 3),
        "startup_seconds": round(startup, 3),
        "processes": sum(1 for _, env in recorded if env.get("startup_seconds")),
        "cpu_thread_hours": round(cpu_seconds / 3600, 6),
        "wall_seconds_by_method": {
            k: round(v, 3) for k, v in sorted(by_method.items())
        },
        "devices": devices,
        "threads": sorted({_threads(env) for _, env in recorded}),
    }


def _env_number(env: dict[str, Any], key: str) -> float:
    """A number of a run's env.json, 0 where it is missing or no finite number (a
    record edited by hand): the report sums the rest instead of a traceback."""
    value = env.get(key)
    return float(value) if _is_number(value) else 0.0


def _threads(env: dict[str, Any]) -> int:
    return int(_env_number(env, "threads")) or 1


def write_compute_report(report: dict[str, Any]) -> str:
    lines = [
        f"# Compute report: grid {report['grid']}",
        "",
        "Summed from each run's env.json: the wall time of the training runs, and",
        "apart from it the start-up of the processes that ran them (first torch use).",
        "",
        "| quantity | value |",
        "| --- | --- |",
        f"| runs (ok / failed / planned) | {report['runs_ok']} / "
        f"{report['runs_failed']} / "
        f"{report['runs_planned']} |",
        f"| wall time, all runs | {report['wall_seconds']:.1f} s |",
        f"| process start-up, {report.get('processes', 0)} processes | "
        f"{report.get('startup_seconds', 0.0):.1f} s |",
        f"| CPU thread-hours (runs) | {report['cpu_thread_hours']:.4f} |",
        f"| devices | {', '.join(report['devices']) or 'none'} |",
        f"| threads per run | {', '.join(map(str, report['threads'])) or 'none'} |",
    ]
    for method, seconds in report["wall_seconds_by_method"].items():
        lines.append(f"| wall time, {method} | {seconds:.1f} s |")
    text = "\n".join(lines) + "\n"
    write_json_atomic(COMPUTE_JSON, report, sort_keys=True)
    write_text_atomic(COMPUTE_MD, text)
    return text
