"""The files of a run folder, and reading its environment record (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.resolved.yaml"
ENV_FILE = "env.json"
LOG_FILE = "log.txt"
METRICS_FILE = "metrics.json"  # written by runs.write_metrics


def read_env(run_dir: Path) -> dict[str, Any] | None:
    """The run's env.json, or None if it is missing or torn."""
    try:
        value = json.loads((run_dir / ENV_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None
