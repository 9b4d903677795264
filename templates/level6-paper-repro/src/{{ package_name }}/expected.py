"""The committed expected results, and the check of the current results against them.

results/expected.json holds, per method, config and metric, the mean and n_ok that the
paper reports, and a tolerance per metric (absolute, on the mean). `check-results`
compares the current summary with it and prints a difference table; `update-expected`
is the one command that writes it, and it keeps the tolerances already there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aggregate import Row
from .atomic import write_json_atomic
from .errors import ConfigError
from .metrics import METRICS

EXPECTED = Path("results") / "expected.json"
# The same CPU, torch version and seeds give the same bytes; these absorb what other
# machines and library versions change in the last digits of a small run.
DEFAULT_TOLERANCE = {"test_accuracy": 0.01, "test_nll": 0.02, "test_ece": 0.01}


@dataclass(frozen=True)
class Difference:
    cell: str
    expected: str
    got: str
    diff: str
    tolerance: str
    ok: bool


def load_expected(path: Path = EXPECTED) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
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
    ):
        raise ConfigError(f"{path}: expected an object with 'tolerance' and 'cells'")
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
    return value


def cell_key(row: Row) -> str:
    return f"{row.method}/{row.config}/{row.metric}"


def compare(rows: list[Row], expected: dict[str, Any]) -> list[Difference]:
    """One line per cell of either side: expected vs current mean, within tolerance?"""
    current = {cell_key(row): row for row in rows}
    tolerances: dict[str, float] = expected["tolerance"]
    lines = []
    for key in sorted(set(current) | set(expected["cells"])):
        metric = key.rsplit("/", 1)[-1]
        tolerance = float(tolerances.get(metric, DEFAULT_TOLERANCE.get(metric, 0.0)))
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
    return lines


def _show(mean: float | None, n_ok: int) -> str:
    return f"{'-' if mean is None else f'{mean:.6f}'} (n={n_ok})"


def difference_table(lines: list[Difference]) -> str:
    header = ("cell", "expected", "got", "diff", "tolerance", "")
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


def update_expected(rows: list[Row], path: Path = EXPECTED) -> Path:
    """Record the current results, keeping any tolerances already in the file."""
    tolerance = dict(DEFAULT_TOLERANCE)
    if path.exists():
        tolerance.update(load_expected(path)["tolerance"])
    for metric in METRICS:
        tolerance.setdefault(metric, 0.0)
    cells = {cell_key(row): {"mean": row.mean, "n_ok": row.n_ok} for row in rows}
    write_json_atomic(
        path,
        {"grid": rows[0].grid if rows else "", "tolerance": tolerance, "cells": cells},
        sort_keys=True,
    )
    return path
