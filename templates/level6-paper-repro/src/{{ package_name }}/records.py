"""The files of a run folder, and reading its JSON records (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.resolved.yaml"
ENV_FILE = "env.json"
LOG_FILE = "log.txt"
METRICS_FILE = "metrics.json"  # written by runs.write_metrics


def read_env(run_dir: Path) -> dict[str, Any] | None:
    """The run's env.json, or None if it is missing or damaged."""
    return read_record(run_dir / ENV_FILE)[0]


def read_record(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON record of a run (env.json, metrics.json): (its content, None); (None,
    None) where the file is missing; (None, why) where it is there but damaged: cut
    short by a kill or a full disk, edited into something else, or no file."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except UnicodeDecodeError:
        return None, f"{path.name}: not UTF-8 text"
    except json.JSONDecodeError as error:
        return None, (
            f"{path.name}: not valid JSON at line {error.lineno} column "
            f"{error.colno}, cut short or edited"
        )
    except OSError as error:
        return None, f"{path.name}: cannot be read ({error.strerror or error})"
    if not isinstance(value, dict):
        return None, f"{path.name}: not a JSON object"
    return value, None
