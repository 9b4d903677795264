"""The paper's figures, each made by one function of this module from results only.

`FIGURES` maps each figure to the function that draws it and the inputs it reads
(results/summary.csv, the runs' metrics.json); the paper cites the function next to
each figure. Files are written byte-stably: the Agg backend, fixed fonts and hash salt,
and no dates, tool versions or producer names in the PNG or PDF metadata, so the same
inputs give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .aggregate import SUMMARY, good_runs, read_summary
from .atomic import write_bytes_atomic
from .grid import Grid
from .metrics import METRICS

FIGURE_DIR = Path("paper") / "figures"
PNG_METADATA: dict[str, str | None] = {"Software": None}
PDF_METADATA: dict[str, str | None] = {
    "Creator": None,
    "Producer": None,
    "CreationDate": None,
}


@dataclass(frozen=True)
class FigureSpec:
    draw: Callable[[Grid, Path, Path], Figure]
    inputs: str
    caption: str


def metrics_figure(grid: Grid, summary: Path, runs_root: Path) -> Figure:
    """Each metric's mean and 95% interval per method (one panel per metric)."""
    rows = read_summary(summary)
    figure, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 2.8))
    for axis, (metric, (label, _, scale, _)) in zip(
        np.atleast_1d(axes), METRICS.items(), strict=True
    ):
        chosen = [r for r in rows if r.metric == metric and r.mean is not None]
        names = [
            f"{r.method}\n{r.config}" if len(grid.configs) > 1 else r.method
            for r in chosen
        ]
        means = [r.mean * scale for r in chosen if r.mean is not None]
        errors = [(r.half_width or 0.0) * scale for r in chosen]
        positions = np.arange(len(chosen))
        axis.errorbar(positions, means, yerr=errors, fmt="o", capsize=4, color="black")
        axis.set_xticks(positions, names)
        axis.set_xlim(-0.5, len(chosen) - 0.5)
        axis.set_title(label)
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def curves_figure(grid: Grid, summary: Path, runs_root: Path) -> Figure:
    """Test accuracy per epoch: mean over the good (finished, current) runs of each
    method, min-max band."""
    figure, axis = plt.subplots(figsize=(4.5, 3.0))
    by_cell: dict[str, list[list[float]]] = {}
    for run, metrics in good_runs(grid, runs_root)[0]:
        name = (
            run.method
            if len(grid.configs) == 1
            else f"{run.method} / {run.config_name}"
        )
        curve = _accuracy_curve(metrics)
        if curve is not None:
            by_cell.setdefault(name, []).append(curve)
    for name, curves in by_cell.items():
        # A run that stopped early has a shorter curve: plot the epochs all reached.
        length = min(len(curve) for curve in curves)
        values = np.asarray([curve[:length] for curve in curves]) * 100
        epochs = np.arange(1, values.shape[1] + 1)
        axis.plot(epochs, values.mean(axis=0), label=f"{name} (n={len(curves)})")
        axis.fill_between(epochs, values.min(axis=0), values.max(axis=0), alpha=0.2)
    axis.set_xlabel("epoch")
    axis.set_ylabel("test accuracy (%)")
    axis.grid(alpha=0.3)
    if by_cell:
        axis.legend()
    figure.tight_layout()
    return figure


def _accuracy_curve(metrics: dict[str, Any]) -> list[float] | None:
    """The run's test accuracy per epoch; None where its metrics.json has none (a
    train.py that records no curve, a file edited by hand), which the figure leaves
    out instead of stopping on a KeyError."""
    curve = metrics.get("curve")
    values = curve.get("test_accuracy") if isinstance(curve, dict) else None
    if not isinstance(values, list) or not values:
        return None
    if not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in values
    ):
        return None
    return [float(v) for v in values]


FIGURES: dict[str, FigureSpec] = {
    "metrics": FigureSpec(
        metrics_figure,
        "results/summary.csv",
        "mean and 95% CI of each metric per method",
    ),
    "curves": FigureSpec(
        curves_figure, "runs/<grid>/*/*/seed=*/metrics.json", "test accuracy per epoch"
    ),
}


def render(figure: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    metadata = PNG_METADATA if fmt == "png" else PDF_METADATA
    figure.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def write_figures(
    grid: Grid,
    summary: Path = SUMMARY,
    runs_root: Path = Path("runs"),
    folder: Path = FIGURE_DIR,
    only: list[str] | None = None,
) -> list[Path]:
    written = []
    # Fixed fonts, hash salt and resolution: the same bytes on every machine.
    with matplotlib.rc_context(
        {
            "svg.hashsalt": "fixed",
            "pdf.compression": 6,
            "font.family": "DejaVu Sans",
            "figure.dpi": 100,
            "savefig.dpi": 150,
        }
    ):
        for name, spec in FIGURES.items():
            if only is not None and name not in only:
                continue
            figure = spec.draw(grid, summary, runs_root)
            try:
                for fmt in ("png", "pdf"):
                    path = folder / f"{name}.{fmt}"
                    write_bytes_atomic(path, render(figure, fmt))
                    written.append(path)
            finally:
                plt.close(figure)
    return written


def describe() -> list[str]:
    """One line per figure: its files, the function that draws it, what it reads."""
    return [
        f"{FIGURE_DIR.as_posix()}/{name}.{{png,pdf}}  <-  "
        f"{__name__}.{spec.draw.__name__}"
        f"({spec.inputs}): {spec.caption}"
        for name, spec in FIGURES.items()
    ]
