"""The scalar results of a run that tables, figures and checks read.

key -> (label in tables and figures, better when higher, scale for display, decimals).
Keys are those of a run's metrics.json; change them together with train.py.
NOTES: a line under the tables per metric that needs one; {key} is a setting of the
runs (config.py), the same in every run of the grid.
"""

from __future__ import annotations

METRICS: dict[str, tuple[str, bool, float, int]] = {
    "test_accuracy": ("Accuracy (%)", True, 100.0, 2),
    "test_nll": ("NLL", False, 1.0, 3),
    "test_ece": ("ECE (%)", False, 100.0, 2),
}
NOTES: dict[str, str] = {
    "test_ece": "ECE: expected calibration error over {train.ece_bins} equal-width "
    "confidence bins",
}
