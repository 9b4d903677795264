"""The committed expected results, and the check of the current results against them.

results/expected.json holds what the paper reports and what it came from:

- cells: per method, config and metric, the mean and n_ok of the summary;
- runs: per run, the sha256 of its metrics.json and its content;
- tolerance: per metric, how far a number may move before it is a mismatch, derived
  from the measured spread: `TOLERANCE_SHARE` of the smallest seed-to-seed standard
  deviation of the metric, at least `TOLERANCE_FLOOR` (far tighter than a confidence
  interval, far looser than the last-digit noise of another CPU);
- sha256: a hash of all of the above. `update-expected` is the one command that writes
  the file; `check-results` refuses a file whose content does not match its hash, so
  a tolerance widened by hand is refused, not applied.

`check-results` compares the summary's cells with `cells`, and every run's metrics.json
with `runs`: the same bytes, or every number within the tolerance (another machine's
rounding); one seed's number moved by more is a mismatch, whatever the mean does.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aggregate import Row
from .atomic import write_json_atomic
from .errors import BlockedError, ConfigError, Error
from .grid import Run
from .metrics import METRICS
from .records import METRICS_FILE

EXPECTED = Path("results") / "expected.json"
TOLERANCE_SHARE = 0.1
TOLERANCE_FLOOR = 1e-6
# Numbers of metrics.json that are not a metric (training loss, curves) may differ by
# this share of their size, what floating-point order changes on other hardware.
OTHER_RELATIVE = 1e-6


class MismatchError(Error):
    """The results differ from the expected ones (exit 1); the table says where."""


class EditedByHandError(BlockedError):
    """The expected file is not what `update-expected` wrote: it must be written again
    (or restored from git) before anything is checked against it."""


@dataclass(frozen=True)
class Difference:
    cell: str
    expected: str
    got: str
    diff: str
    tolerance: str
    ok: bool


def content_hash(value: dict[str, Any]) -> str:
    """sha256 of everything in the expected file but its own hash, canonically."""
    body = {k: v for k, v in value.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _no_constant(name: str) -> Any:
    """`update-expected` never writes NaN or Infinity; Python's json reads them, and
    the hash check then failed on them with a traceback."""
    raise ValueError(f"{name} is not a number JSON allows")


def load_expected(path: Path = EXPECTED) -> dict[str, Any]:
    try:
        value = json.loads(
            path.read_text(encoding="utf-8"), parse_constant=_no_constant
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: missing; `update-expected` records the current results"
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("tolerance"), dict)
        or not isinstance(value.get("cells"), dict)
        or not isinstance(value.get("runs"), dict)
    ):
        raise ConfigError(
            f"{path}: expected an object with 'tolerance', 'cells', 'runs' and "
            "'sha256'; `update-expected` writes it"
        )
    if value.get("sha256") != content_hash(value):
        raise EditedByHandError(
            f"{path}: its content does not match its recorded sha256: it was edited "
            "by hand; only `update-expected` writes it (restore it from git, or "
            "record the current results with `update-expected`)"
        )
    for metric, tolerance in value["tolerance"].items():
        if (
            not isinstance(tolerance, (int, float))
            or isinstance(tolerance, bool)
            or tolerance < 0
        ):
            raise ConfigError(
                f"{path}: tolerance.{metric}={tolerance!r}: expected a number >= 0"
            )
    for key, cell in value["cells"].items():
        if (
            not isinstance(cell, dict)
            or not isinstance(cell.get("n_ok"), int)
            or not (
                cell.get("mean") is None or isinstance(cell.get("mean"), (int, float))
            )
        ):
            raise ConfigError(
                f"{path}: cells.{key}: expected {{'mean': number, 'n_ok': int}}"
            )
    for key, record in value["runs"].items():
        if not isinstance(record, dict) or not isinstance(
            record.get("metrics_sha256"), str
        ):
            raise ConfigError(f"{path}: runs.{key}: expected a metrics_sha256")
    return value


def cell_key(row: Row) -> str:
    return f"{row.method}/{row.config}/{row.metric}"


def derived_tolerance(rows: list[Row]) -> dict[str, float]:
    """Per metric: TOLERANCE_SHARE x its smallest seed-to-seed std, 2 digits, up."""
    tolerance = {}
    for metric in METRICS:
        spreads = [r.std for r in rows if r.metric == metric and r.std]
        value = TOLERANCE_SHARE * min(spreads) if spreads else 0.0
        if value > 0:
            scale = 10 ** (math.floor(math.log10(value)) - 1)
            value = math.ceil(value / scale) * scale
        tolerance[metric] = float(f"{max(value, TOLERANCE_FLOOR):.2g}")
    return tolerance


def run_record(run: Run) -> dict[str, Any] | None:
    """The run's metrics.json: its sha256 and content (None if missing)."""
    try:
        content = (run.run_dir / METRICS_FILE).read_bytes()
    except FileNotFoundError:
        return None
    try:
        metrics = json.loads(content)
    except ValueError:
        metrics = None
    return {
        "metrics_sha256": hashlib.sha256(content).hexdigest(),
        "metrics": metrics if isinstance(metrics, dict) else {},
    }


def _numbers(value: Any, path: str = "") -> dict[str, float]:
    """Every number in a metrics object, by a path such as curve.test_accuracy[3]."""
    found: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            found.update(_numbers(item, f"{path}.{key}" if path else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_numbers(item, f"{path}[{index}]"))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        found[path] = float(value)
    return found


def _leaf(path: str) -> str:
    return path.split("[")[0].rsplit(".", 1)[-1]


def compare_run(
    label: str,
    want: dict[str, Any] | None,
    got: dict[str, Any] | None,
    tolerances: dict[str, float],
    missing: str = "absent",
) -> Difference:
    """One run's metrics.json against the recorded one: same bytes, or within reach.
    `missing` is what the table says where the run has no result (absent, stale,
    damaged)."""
    if want is None or got is None:
        return Difference(
            label,
            "absent" if want is None else want["metrics_sha256"][:12],
            missing if got is None else got["metrics_sha256"][:12],
            "",
            "",
            False,
        )
    if want["metrics_sha256"] == got["metrics_sha256"]:
        short = got["metrics_sha256"][:12]
        return Difference(label, short, short, "same bytes", "", True)
    expected_numbers = _numbers(want.get("metrics", {}))
    got_numbers = _numbers(got["metrics"])
    worst, worst_path, ok = 0.0, "", set(expected_numbers) == set(got_numbers)
    for path in sorted(set(expected_numbers) & set(got_numbers)):
        delta = got_numbers[path] - expected_numbers[path]
        leaf = _leaf(path)
        limit = tolerances.get(
            leaf, OTHER_RELATIVE * max(1.0, abs(expected_numbers[path]))
        )
        if abs(delta) > limit:
            ok = False
        if abs(delta) >= abs(worst):
            worst, worst_path = delta, path
    return Difference(
        label,
        want["metrics_sha256"][:12],
        got["metrics_sha256"][:12],
        f"{worst_path} {worst:+.2e}" if worst_path else "other keys",
        "per number",
        ok,
    )


def compare(
    rows: list[Row],
    expected: dict[str, Any],
    runs: list[Run] | None = None,
    left_out: dict[str, str] | None = None,
) -> list[Difference]:
    """One line per cell of either side (mean and n_ok within the tolerance?), then
    one per run of either side (metrics.json the same, or within the tolerance?).
    `left_out` names the state of runs not in `runs` that the table shows by it
    (stale, damaged) instead of "absent"."""
    current = {cell_key(row): row for row in rows}
    tolerances: dict[str, float] = {
        k: float(v) for k, v in expected["tolerance"].items()
    }
    lines = []
    for key in sorted(set(current) | set(expected["cells"])):
        metric = key.rsplit("/", 1)[-1]
        tolerance = tolerances.get(metric, 0.0)
        want = expected["cells"].get(key)
        row = current.get(key)
        if want is None or row is None:
            lines.append(
                Difference(
                    key,
                    "absent" if want is None else _show(want["mean"], want["n_ok"]),
                    "absent" if row is None else _show(row.mean, row.n_ok),
                    "",
                    f"{tolerance:g}",
                    False,
                )
            )
            continue
        if want["mean"] is None or row.mean is None:
            ok = want["mean"] is None and row.mean is None and want["n_ok"] == row.n_ok
            diff = ""
        else:
            delta = row.mean - float(want["mean"])
            ok = abs(delta) <= tolerance and want["n_ok"] == row.n_ok
            diff = f"{delta:+.2e}"
        lines.append(
            Difference(
                key,
                _show(want["mean"], want["n_ok"]),
                _show(row.mean, row.n_ok),
                diff,
                f"{tolerance:g}",
                ok,
            )
        )
    if runs is not None:
        got = {run.label: run_record(run) for run in runs}
        for label in sorted(set(got) | set(expected["runs"])):
            lines.append(
                compare_run(
                    label,
                    expected["runs"].get(label),
                    got.get(label),
                    tolerances,
                    (left_out or {}).get(label, "absent"),
                )
            )
    return lines


def _show(mean: float | None, n_ok: int) -> str:
    return f"{'-' if mean is None else f'{mean:.6f}'} (n={n_ok})"


def difference_table(lines: list[Difference]) -> str:
    header = ("cell or run", "expected", "got", "diff", "tolerance", "")
    table = [header] + [
        (d.cell, d.expected, d.got, d.diff, d.tolerance, "ok" if d.ok else "MISMATCH")
        for d in lines
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            value.ljust(width) for value, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in table
    )


def check_tolerance_names(tolerance: dict[str, float]) -> None:
    """A tolerance given by hand names a metric of metrics.py: one for another name
    was written to the file and never applied. Its value is finite and 0 or more:
    JSON has no infinity, and a negative tolerance fails every comparison."""
    for name, value in tolerance.items():
        if name not in METRICS:
            close = difflib.get_close_matches(name, list(METRICS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"--tolerance {name}: not a metric of metrics.py{hint}; expected one "
                f"of {', '.join(METRICS)}"
            )
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(
                f"--tolerance {name}: must be a finite number of 0 or more, "
                f"got {value:g}"
            )


def update_expected(
    rows: list[Row],
    runs: list[Run],
    path: Path = EXPECTED,
    tolerance: dict[str, float] | None = None,
) -> Path:
    """Record the current results; tolerances derived from their spread unless given."""
    check_tolerance_names(tolerance or {})
    chosen = derived_tolerance(rows)
    chosen.update(tolerance or {})
    cells = {cell_key(row): {"mean": row.mean, "n_ok": row.n_ok} for row in rows}
    records = {}
    for run in runs:
        record = run_record(run)
        if record is not None:
            records[run.label] = {
                "metrics_sha256": record["metrics_sha256"],
                "metrics": record["metrics"],
            }
    value: dict[str, Any] = {
        "grid": rows[0].grid if rows else "",
        "tolerance": chosen,
        "tolerance_rule": (
            f"{TOLERANCE_SHARE:g} x the smallest seed-to-seed standard deviation of "
            f"the metric, at least {TOLERANCE_FLOOR:g}"
        ),
        "cells": cells,
        "runs": records,
    }
    value["sha256"] = content_hash(value)
    write_json_atomic(path, value, sort_keys=True)
    return path
